// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// kiln.fusion regions are inlined and their ops lowered like the others.

// CHECK-LABEL: func.func @fused_epilogue
// CHECK-NOT: kiln.
// CHECK: linalg.matmul
// CHECK: linalg.generic
// CHECK: arith.addf
// CHECK: linalg.generic
// CHECK: arith.cmpf ugt
// CHECK: return
func.func @fused_epilogue(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<2x4xf32> {
  %r = kiln.fusion "contraction" ins(%x, %w, %b : tensor<2x3xf32>, tensor<3x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>) {
  ^bb0(%a: tensor<2x3xf32>, %c: tensor<3x4xf32>, %d: tensor<4xf32>):
    %y = kiln.matmul %a, %c : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
    %e = kiln.broadcast_to %d : tensor<4xf32> -> tensor<2x4xf32>
    %s = kiln.add %y, %e : tensor<2x4xf32>
    %t = kiln.relu %s : tensor<2x4xf32>
    kiln.yield %t : tensor<2x4xf32>
  }
  return %r : tensor<2x4xf32>
}
