// RUN: kiln-opt %s -split-input-file -kiln-autodiff -canonicalize -cse | FileCheck %s
// kiln.stop_gradient (values computed under no_backprop_mode): no cotangent
// flows through it, and -kiln-autodiff removes it.

// d/dw sum(stop_gradient(x*w) * w) = x*w (only the direct use of w).
// The seed's broadcast times x*w, and no other use of w (the blocked path's w*seed*w).
// CHECK-LABEL: func.func @one_path_blocked
// CHECK-NOT: kiln.stop_gradient
// CHECK: %[[XW:.*]] = kiln.mul %arg0, %arg1 : tensor<3xf32>
// CHECK-NOT: %arg1
// CHECK: %[[G:.*]] = kiln.mul %{{.*}}, %[[XW]] : tensor<3xf32>
// CHECK-NOT: %arg1
// CHECK: return %[[G]]
func.func @one_path_blocked(%x: tensor<3xf32>, %w: tensor<3xf32>) -> tensor<3xf32> {
  %xw = kiln.mul %x, %w : tensor<3xf32>
  %f = kiln.stop_gradient %xw : tensor<3xf32>
  %y = kiln.mul %f, %w : tensor<3xf32>
  %s = kiln.reduce_sum %y, [0] : tensor<3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %w : tensor<f32>, tensor<3xf32>
  return %g : tensor<3xf32>
}

// -----

// Every path blocked: the gradient is zero.
// CHECK-LABEL: func.func @all_paths_blocked
// CHECK-NOT: kiln.stop_gradient
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<3xf32>
// CHECK: return %[[Z]]
func.func @all_paths_blocked(%w: tensor<3xf32>) -> tensor<3xf32> {
  %e = kiln.exp %w : tensor<3xf32>
  %f = kiln.stop_gradient %e : tensor<3xf32>
  %s = kiln.reduce_sum %f, [0] : tensor<3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %w : tensor<f32>, tensor<3xf32>
  return %g : tensor<3xf32>
}

// -----

// Without a gradient request it is only removed.
// CHECK-LABEL: func.func @no_request
// CHECK-NEXT: %[[E:.*]] = kiln.exp %arg0
// CHECK-NEXT: return %[[E]]
func.func @no_request(%w: tensor<3xf32>) -> tensor<3xf32> {
  %e = kiln.exp %w : tensor<3xf32>
  %f = kiln.stop_gradient %e : tensor<3xf32>
  return %f : tensor<3xf32>
}
