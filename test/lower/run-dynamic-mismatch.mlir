// RUN: kiln-opt %s -kiln-lower-to-linalg \
// RUN: | mlir-opt --one-shot-bufferize="bufferize-function-boundaries" --convert-linalg-to-loops --lower-affine \
// RUN:     --convert-scf-to-cf --convert-math-to-llvm --expand-strided-metadata --convert-to-llvm \
// RUN:     --reconcile-unrealized-casts \
// RUN: | not --crash mlir-runner -e main -entry-point-result=void
// Every `?` of a lowered kiln function is the batch size: calling one with
// dynamic arguments of different sizes (3 and 4 rows) aborts at the entry's
// cf.assert instead of computing with a wrong size.

func.func @add(%x: tensor<?x2xf32>, %y: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %0 = kiln.add %x, %y : tensor<?x2xf32>
  return %0 : tensor<?x2xf32>
}
func.func @main() {
  %a = arith.constant dense<1.0> : tensor<3x2xf32>
  %b = arith.constant dense<2.0> : tensor<4x2xf32>
  %ad = tensor.cast %a : tensor<3x2xf32> to tensor<?x2xf32>
  %bd = tensor.cast %b : tensor<4x2xf32> to tensor<?x2xf32>
  %r = func.call @add(%ad, %bd) : (tensor<?x2xf32>, tensor<?x2xf32>) -> tensor<?x2xf32>
  return
}
