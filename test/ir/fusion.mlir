// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s -canonicalize | FileCheck %s --check-prefix=DCE
// kiln.fusion parses and prints back, and is pure when its ops are
// (RecursiveMemoryEffects): an unused region is removed as dead code.

// CHECK-LABEL: func.func @matmul_bias_relu
// CHECK: %[[F:.*]] = kiln.fusion "contraction" ins(%arg0, %arg1, %arg2 : tensor<2x3xf32>, tensor<3x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>) {
// CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<2x3xf32>, %[[C:.*]]: tensor<3x4xf32>, %[[D:.*]]: tensor<4xf32>):
// CHECK-NEXT:   %[[Y:.*]] = kiln.matmul %[[A]], %[[C]]
// CHECK-NEXT:   %[[E:.*]] = kiln.broadcast_to %[[D]]
// CHECK-NEXT:   %[[S:.*]] = kiln.add %[[Y]], %[[E]]
// CHECK-NEXT:   %[[T:.*]] = kiln.relu %[[S]]
// CHECK-NEXT:   kiln.yield %[[T]] : tensor<2x4xf32>
// CHECK-NEXT: }
// CHECK-NEXT: return %[[F]]
// DCE-LABEL: func.func @matmul_bias_relu
// DCE: kiln.fusion "contraction"
func.func @matmul_bias_relu(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>, %b: tensor<4xf32>) -> tensor<2x4xf32> {
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

// A region without inputs (only a constant inside) and with two results.
// CHECK-LABEL: func.func @no_inputs
// CHECK: %[[F:.*]]:2 = kiln.fusion "elementwise" -> (tensor<2xf32>, tensor<2xf32>) {
// CHECK-NEXT:   kiln.constant
// CHECK-NEXT:   kiln.exp
// CHECK-NEXT:   kiln.yield
// DCE-LABEL: func.func @no_inputs
// DCE-NOT: kiln.fusion
// DCE: return
func.func @no_inputs() {
  %f:2 = kiln.fusion "elementwise" -> (tensor<2xf32>, tensor<2xf32>) {
    %c = kiln.constant dense<1.0> : tensor<2xf32>
    %e = kiln.exp %c : tensor<2xf32>
    kiln.yield %c, %e : tensor<2xf32>, tensor<2xf32>
  }
  return
}
