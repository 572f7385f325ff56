// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-unfuse | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-unfuse | FileCheck %s --check-prefix=INLINE
// -kiln-fuse followed by -kiln-unfuse gives back the original ops.

// CHECK-LABEL: func.func @roundtrip_mlp_layer
// CHECK-NEXT: %[[Y:.*]] = kiln.matmul %arg0, %arg1 : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
// CHECK-NEXT: %[[BB:.*]] = kiln.broadcast_to %arg2 : tensor<4xf32> -> tensor<2x4xf32>
// CHECK-NEXT: %[[A:.*]] = kiln.add %[[Y]], %[[BB]] : tensor<2x4xf32>
// CHECK-NEXT: %[[R:.*]] = kiln.relu %[[A]] : tensor<2x4xf32>
// CHECK-NEXT: %[[M:.*]] = kiln.reduce_max %[[R]], [1] keepdims : tensor<2x4xf32> -> tensor<2x1xf32>
// CHECK-NEXT: %[[MB:.*]] = kiln.broadcast_to %[[M]] : tensor<2x1xf32> -> tensor<2x4xf32>
// CHECK-NEXT: %[[S:.*]] = kiln.sub %[[R]], %[[MB]] : tensor<2x4xf32>
// CHECK-NEXT: %[[E:.*]] = kiln.exp %[[S]] : tensor<2x4xf32>
// CHECK-NEXT: %[[Z:.*]] = kiln.reduce_sum %[[E]], [1] keepdims : tensor<2x4xf32> -> tensor<2x1xf32>
// CHECK-NEXT: %[[ZB:.*]] = kiln.broadcast_to %[[Z]] : tensor<2x1xf32> -> tensor<2x4xf32>
// CHECK-NEXT: %[[P:.*]] = kiln.div %[[E]], %[[ZB]] : tensor<2x4xf32>
// CHECK-NEXT: %[[T:.*]] = kiln.transpose %[[P]], [1, 0] : tensor<2x4xf32> -> tensor<4x2xf32>
// CHECK-NEXT: %[[TWO:.*]] = kiln.constant dense<2.000000e+00> : tensor<4x2xf32>
// CHECK-NEXT: %[[Q:.*]] = kiln.mul %[[T]], %[[TWO]] : tensor<4x2xf32>
// CHECK-NEXT: return %[[R]], %[[Q]]
func.func @roundtrip_mlp_layer(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>, %b: tensor<4xf32>) -> (tensor<2x4xf32>, tensor<4x2xf32>) {
  %y = kiln.matmul %x, %w : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  %bb = kiln.broadcast_to %b : tensor<4xf32> -> tensor<2x4xf32>
  %a = kiln.add %y, %bb : tensor<2x4xf32>
  %r = kiln.relu %a : tensor<2x4xf32>
  %m = kiln.reduce_max %r, [1] keepdims : tensor<2x4xf32> -> tensor<2x1xf32>
  %mb = kiln.broadcast_to %m : tensor<2x1xf32> -> tensor<2x4xf32>
  %s = kiln.sub %r, %mb : tensor<2x4xf32>
  %e = kiln.exp %s : tensor<2x4xf32>
  %z = kiln.reduce_sum %e, [1] keepdims : tensor<2x4xf32> -> tensor<2x1xf32>
  %zb = kiln.broadcast_to %z : tensor<2x1xf32> -> tensor<2x4xf32>
  %p = kiln.div %e, %zb : tensor<2x4xf32>
  %t = kiln.transpose %p, [1, 0] : tensor<2x4xf32> -> tensor<4x2xf32>
  %two = kiln.constant dense<2.0> : tensor<4x2xf32>
  %q = kiln.mul %t, %two : tensor<4x2xf32>
  return %r, %q : tensor<2x4xf32>, tensor<4x2xf32>
}

// -----

// A hand-written region with two results is inlined in place.
// INLINE-LABEL: func.func @inline_two_results
// INLINE-NEXT: %[[E:.*]] = kiln.exp %arg0 : tensor<3xf32>
// INLINE-NEXT: %[[S:.*]] = kiln.reduce_sum %[[E]], [0] : tensor<3xf32> -> tensor<f32>
// INLINE-NEXT: %[[N:.*]] = kiln.neg %[[S]] : tensor<f32>
// INLINE-NEXT: return %[[E]], %[[N]]
func.func @inline_two_results(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<f32>) {
  %f:2 = kiln.fusion "reduction" ins(%x : tensor<3xf32>) -> (tensor<3xf32>, tensor<f32>) {
  ^bb0(%a: tensor<3xf32>):
    %e = kiln.exp %a : tensor<3xf32>
    %s = kiln.reduce_sum %e, [0] : tensor<3xf32> -> tensor<f32>
    kiln.yield %e, %s : tensor<3xf32>, tensor<f32>
  }
  %n = kiln.neg %f#1 : tensor<f32>
  return %f#0, %n : tensor<3xf32>, tensor<f32>
}
