// RUN: kiln-opt %s -split-input-file -kiln-autodiff -canonicalize -cse | FileCheck %s
// The backward graphs -kiln-autodiff builds from each op's VJP.

// Linear + ReLU + sum: dW = x^T-contraction of the relu mask.
// CHECK-LABEL: func.func @matmul_relu
// CHECK-DAG: %[[ZERO:.*]] = kiln.constant dense<0.000000e+00> : tensor<2x4xf32>
// CHECK-DAG: %[[Y:.*]] = kiln.matmul %arg0, %arg1 : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
// CHECK: %[[R:.*]] = kiln.relu %[[Y]]
// CHECK: %[[MASK:.*]] = kiln.compare "gt", %[[R]], %[[ZERO]]
// CHECK: %[[G:.*]] = kiln.select %[[MASK]], %{{.*}}, %[[ZERO]]
// CHECK: %[[DW:.*]] = kiln.matmul %arg0, %[[G]] {transpose_a}
// CHECK-NOT: kiln.grad
// CHECK: return %{{.*}}, %[[DW]]
func.func @matmul_relu(%x: tensor<2x3xf32>, %w: tensor<3x4xf32>) -> (tensor<f32>, tensor<3x4xf32>) {
  %y = kiln.matmul %x, %w : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  %r = kiln.relu %y : tensor<2x4xf32>
  %s = kiln.reduce_sum %r, [0, 1] : tensor<2x4xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %w : tensor<f32>, tensor<3x4xf32>
  return %s, %g : tensor<f32>, tensor<3x4xf32>
}

// -----

// Broadcast's VJP sums over the broadcast dimensions and reshapes back.
// CHECK-LABEL: func.func @broadcast_bias
// CHECK: %[[S:.*]] = kiln.reduce_sum %arg2, [0] : tensor<5x3xf32> -> tensor<3xf32>
// CHECK: return %[[S]]
func.func @broadcast_bias(%x: tensor<5x3xf32>, %b: tensor<3xf32>, %gy: tensor<5x3xf32>) -> tensor<3xf32> {
  %bb = kiln.broadcast_to %b : tensor<3xf32> -> tensor<5x3xf32>
  %y = kiln.add %x, %bb : tensor<5x3xf32>
  %g = kiln.grad %y, %gy, %b : tensor<5x3xf32>, tensor<3xf32>
  return %g : tensor<3xf32>
}

// -----

// A value used twice gets the sum of both cotangents: d(x*x)/dx = gy*x + gy*x.
// CHECK-LABEL: func.func @fanout
// CHECK: %[[M:.*]] = kiln.mul %arg1, %arg0
// CHECK: %[[A:.*]] = kiln.add %[[M]], %[[M]]
// CHECK: return %[[A]]
func.func @fanout(%x: tensor<4xf32>, %gy: tensor<4xf32>) -> tensor<4xf32> {
  %y = kiln.mul %x, %x : tensor<4xf32>
  %g = kiln.grad %y, %gy, %x : tensor<4xf32>, tensor<4xf32>
  return %g : tensor<4xf32>
}

// -----

// No path from x to y: the gradient is zeros.
// CHECK-LABEL: func.func @unrelated
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<2xf32>
// CHECK: return %[[Z]]
func.func @unrelated(%x: tensor<2xf32>, %y: tensor<3xf32>, %gy: tensor<3xf32>) -> tensor<2xf32> {
  %e = kiln.exp %y : tensor<3xf32>
  %g = kiln.grad %e, %gy, %x : tensor<3xf32>, tensor<2xf32>
  return %g : tensor<2xf32>
}

// -----

// Softmax-style max-shift + exp + sum: max's VJP masks the arg-max positions.
// CHECK-LABEL: func.func @reduce_max
// CHECK: kiln.reduce_max %arg0, [1] : tensor<2x3xf32> -> tensor<2xf32>
// CHECK: kiln.compare "eq", %arg0
// CHECK: kiln.select
func.func @reduce_max(%x: tensor<2x3xf32>, %gy: tensor<2xf32>) -> tensor<2x3xf32> {
  %m = kiln.reduce_max %x, [1] : tensor<2x3xf32> -> tensor<2xf32>
  %g = kiln.grad %m, %gy, %x : tensor<2xf32>, tensor<2x3xf32>
  return %g : tensor<2x3xf32>
}

// -----

// Convolution: input and filter gradients.
// CHECK-LABEL: func.func @conv
// CHECK-DAG: kiln.conv2d_grad_input %arg2, %arg1 {pad = array<i64: 1, 1>, stride = array<i64: 2, 2>}
// CHECK-DAG: kiln.conv2d_grad_filter %arg0, %arg2 {pad = array<i64: 1, 1>, stride = array<i64: 2, 2>}
func.func @conv(%x: tensor<1x2x5x5xf32>, %w: tensor<3x2x3x3xf32>, %gy: tensor<1x3x3x3xf32>) -> (tensor<1x2x5x5xf32>, tensor<3x2x3x3xf32>) {
  %y = kiln.conv2d %x, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<1x2x5x5xf32>, tensor<3x2x3x3xf32> -> tensor<1x3x3x3xf32>
  %gx = kiln.grad %y, %gy, %x : tensor<1x3x3x3xf32>, tensor<1x2x5x5xf32>
  %gw = kiln.grad %y, %gy, %w : tensor<1x3x3x3xf32>, tensor<3x2x3x3xf32>
  return %gx, %gw : tensor<1x2x5x5xf32>, tensor<3x2x3x3xf32>
}

// -----

// Max pooling's VJP routes gy to the window maxima.
// CHECK-LABEL: func.func @max_pool
// CHECK: kiln.pool2d_grad "max", %arg0, %arg1
func.func @max_pool(%x: tensor<1x1x4x4xf32>, %gy: tensor<1x1x2x2xf32>) -> tensor<1x1x4x4xf32> {
  %y = kiln.pool2d "max", %x {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x1x4x4xf32> -> tensor<1x1x2x2xf32>
  %g = kiln.grad %y, %gy, %x : tensor<1x1x2x2xf32>, tensor<1x1x4x4xf32>
  return %g : tensor<1x1x4x4xf32>
}

// -----

// The second-order rule of max pooling: the gradient of pool2d_grad with respect to gy
// reads ggx at each window's first in-bounds maximum: x and ggx padded, one strided
// slice of each per tap, scanned with strict "gt" (ties keep the earlier tap); i1 masks
// keep padding taps out and start each window at its first in-bounds tap.
// CHECK-LABEL: func.func @max_pool_second_order
// CHECK-NOT: kiln.pool2d_grad
// CHECK-DAG: %[[XP:.*]] = kiln.pad %arg0 {{.*}}low = array<i64: 0, 0, 1, 1>
// CHECK-DAG: %[[GP:.*]] = kiln.pad %arg2 {{.*}}low = array<i64: 0, 0, 1, 1>
// CHECK-COUNT-3: kiln.compare "gt"
// CHECK: %[[LAST:.*]] = kiln.slice %[[GP]] {limit = array<i64: 1, 1, 4, 4>, start = array<i64: 0, 0, 1, 1>, step = array<i64: 1, 1, 2, 2>}
// CHECK: kiln.compare "gt"
// CHECK: %[[PICK:.*]] = kiln.select %{{.*}}, %[[LAST]], %{{.*}} : tensor<1x1x2x2xi1>, tensor<1x1x2x2xf32>
// CHECK: return %[[PICK]]
func.func @max_pool_second_order(%x: tensor<1x1x3x3xf32>, %gy: tensor<1x1x2x2xf32>, %ggx: tensor<1x1x3x3xf32>) -> tensor<1x1x2x2xf32> {
  %gx = kiln.pool2d_grad "max", %x, %gy {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<1x1x3x3xf32>, tensor<1x1x2x2xf32> -> tensor<1x1x3x3xf32>
  %g = kiln.grad %gx, %ggx, %gy : tensor<1x1x3x3xf32>, tensor<1x1x2x2xf32>
  return %g : tensor<1x1x2x2xf32>
}

// -----

// Strided slice's VJP is an interior pad.
// CHECK-LABEL: func.func @strided_slice
// CHECK: kiln.pad %arg1 {high = array<i64: 1>, interior = array<i64: 1>, low = array<i64: 1>, value = 0.000000e+00 : f64} : tensor<3xf32> -> tensor<7xf32>
func.func @strided_slice(%x: tensor<7xf32>, %gy: tensor<3xf32>) -> tensor<7xf32> {
  %y = kiln.slice %x {start = array<i64: 1>, limit = array<i64: 6>, step = array<i64: 2>} : tensor<7xf32> -> tensor<3xf32>
  %g = kiln.grad %y, %gy, %x : tensor<3xf32>, tensor<7xf32>
  return %g : tensor<7xf32>
}

// -----

// No dependence on a value of a symbolic (batch) shape: its zero gradient is a
// 0-d constant broadcast to the run-time shape.
// CHECK-LABEL: func.func @zero_gradient_of_symbolic_shape
// CHECK: %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[B:.*]] = kiln.broadcast_to %[[Z]] : tensor<f32> -> tensor<?x4xf32>
// CHECK: return %[[B]]
func.func @zero_gradient_of_symbolic_shape(%x: tensor<?x4xf32>, %y: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %s = kiln.reduce_sum %y, [0, 1] : tensor<?x4xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %x : tensor<f32>, tensor<?x4xf32>
  return %g : tensor<?x4xf32>
}

// -----

// An embedding read at three time steps: its per-step gradients (scatter_adds) accumulate
// onto one buffer, each scatter_add starting from the previous one's result (no full-size
// adds, one zero table).
// CHECK-LABEL: func.func @embed_three_steps
// CHECK: %[[S0:.*]] = kiln.scatter_add %arg2, %{{.*}} : tensor<2xi32>, tensor<2x3xf32> -> tensor<5x3xf32>
// CHECK: %[[S1:.*]] = kiln.scatter_add %arg1, %{{.*}} base(%[[S0]]) : tensor<2xi32>, tensor<2x3xf32>, tensor<5x3xf32> -> tensor<5x3xf32>
// CHECK: %[[S2:.*]] = kiln.scatter_add %arg1, %{{.*}} base(%[[S1]]) : tensor<2xi32>, tensor<2x3xf32>, tensor<5x3xf32> -> tensor<5x3xf32>
// CHECK-NOT: kiln.add
// CHECK: return %{{.*}}, %[[S2]]
func.func @embed_three_steps(%w: tensor<5x3xf32>, %a: tensor<2xi32>, %b: tensor<2xi32>) -> (tensor<f32>, tensor<5x3xf32>) {
  %e0 = kiln.gather %w, %a : tensor<5x3xf32>, tensor<2xi32> -> tensor<2x3xf32>
  %e1 = kiln.gather %w, %a : tensor<5x3xf32>, tensor<2xi32> -> tensor<2x3xf32>
  %e2 = kiln.gather %w, %b : tensor<5x3xf32>, tensor<2xi32> -> tensor<2x3xf32>
  %m = kiln.mul %e0, %e1 : tensor<2x3xf32>
  %y = kiln.add %m, %e2 : tensor<2x3xf32>
  %s = kiln.reduce_sum %y, [0, 1] : tensor<2x3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %w : tensor<f32>, tensor<5x3xf32>
  return %s, %g : tensor<f32>, tensor<5x3xf32>
}
