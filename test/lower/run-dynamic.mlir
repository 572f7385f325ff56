// RUN: kiln-opt %s -kiln-lower-to-linalg \
// RUN: | mlir-opt --one-shot-bufferize="bufferize-function-boundaries" --convert-linalg-to-loops --lower-affine \
// RUN:     --convert-scf-to-cf --convert-math-to-libm --convert-math-to-llvm \
// RUN:     --expand-strided-metadata --convert-to-llvm --reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:     -shared-libs=/usr/lib/llvm-22/lib/libmlir_runner_utils.so,/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so \
// RUN: | FileCheck %s
// One lowered function with a dynamic batch dimension, called with batch
// sizes 2 and 4: hand-computed results, including the run-time mean.

func.func private @printMemrefF32(tensor<*xf32>)

// y = x * w^T + b, and mean(y) over every element (dim_size: the run-time count).
func.func @linear_mean(%x: tensor<?x2xf32>, %w: tensor<3x2xf32>, %b: tensor<3xf32>) -> (tensor<?x3xf32>, tensor<f32>) {
  %0 = kiln.matmul %x, %w {transpose_b} : tensor<?x2xf32>, tensor<3x2xf32> -> tensor<?x3xf32>
  %1 = kiln.broadcast_to %b : tensor<3xf32> -> tensor<?x3xf32>
  %y = kiln.add %0, %1 : tensor<?x3xf32>
  %s = kiln.reduce_sum %y, [0, 1] : tensor<?x3xf32> -> tensor<f32>
  %n = kiln.dim_size %y, [0, 1] : tensor<?x3xf32> -> tensor<f32>
  %m = kiln.div %s, %n : tensor<f32>
  return %y, %m : tensor<?x3xf32>, tensor<f32>
}

func.func @show(%x: tensor<?x2xf32>) {
  %w = kiln.constant dense<[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]> : tensor<3x2xf32>
  %b = kiln.constant dense<[0.0, 10.0, 100.0]> : tensor<3xf32>
  %y, %m = func.call @linear_mean(%x, %w, %b) : (tensor<?x2xf32>, tensor<3x2xf32>, tensor<3xf32>) -> (tensor<?x3xf32>, tensor<f32>)
  %yu = tensor.cast %y : tensor<?x3xf32> to tensor<*xf32>
  call @printMemrefF32(%yu) : (tensor<*xf32>) -> ()
  %mu = tensor.cast %m : tensor<f32> to tensor<*xf32>
  call @printMemrefF32(%mu) : (tensor<*xf32>) -> ()
  return
}

func.func @main() {
  // CHECK: sizes = [2, 3]
  // CHECK: [1, 12, 103]
  // CHECK-NEXT: [3, 14, 107]
  // (1 + 12 + 103 + 3 + 14 + 107) / 6 = 40
  // CHECK: [40]
  %a = arith.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  %ad = tensor.cast %a : tensor<2x2xf32> to tensor<?x2xf32>
  call @show(%ad) : (tensor<?x2xf32>) -> ()
  // CHECK: sizes = [4, 3]
  // CHECK: [0, 10, 100]
  // CHECK-NEXT: [1, 10, 101]
  // CHECK-NEXT: [0, 11, 101]
  // CHECK-NEXT: [2, 12, 104]
  // (110 + 112 + 112 + 118) / 12 = 37.6667
  // CHECK: [37.6667]
  %c = arith.constant dense<[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]> : tensor<4x2xf32>
  %cd = tensor.cast %c : tensor<4x2xf32> to tensor<?x2xf32>
  call @show(%cd) : (tensor<?x2xf32>) -> ()
  return
}
