// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// A kiln.fusion region is one kernel: its matmul, then ONE linalg.generic for
// the whole epilogue (bias add and relu in one loop body, the bias read through
// a broadcast map), named after the region.

// CHECK-LABEL: func.func @fused_epilogue
// CHECK-NOT: kiln.
// CHECK: linalg.matmul
// CHECK-NOT: linalg.generic
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %arg2 : tensor<2x4xf32>, tensor<4xf32>)
// CHECK-SAME: kiln.kernel = "0:contraction:matmul+add+relu (fusion.mlir:{{[0-9]+}})"
// CHECK: arith.addf
// CHECK-NEXT: arith.constant
// CHECK-NEXT: arith.cmpf ugt
// CHECK-NEXT: arith.select
// CHECK-NEXT: linalg.yield
// CHECK-NOT: linalg.generic
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
