// RUN: not kiln-opt %s -kiln-autodiff 2>&1 | FileCheck %s
// A gradient that reaches an op without a VJP is an error naming the op and the
// user's call site (the op's location), never a silently missing gradient.
// (Integer results and kiln.stop_gradient stop gradients quietly: stop-gradient.mlir.)

// Random numbers keyed by a value computed from x: d/dx is not defined.
// CHECK: train.cpp:42:0: error: cannot differentiate through 'kiln.rng_uniform': it has no vector-Jacobian product
func.func @through_rng(%x: tensor<2xf32>) -> tensor<2xf32> {
  %key = kiln.cast %x : tensor<2xf32> -> tensor<2xi64>
  %u = kiln.rng_uniform %key : tensor<2xi64> -> tensor<4xf32> loc("train.cpp":42:0)
  %s = kiln.reduce_sum %u, [0] : tensor<4xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %x : tensor<f32>, tensor<2xf32>
  return %g : tensor<2xf32>
}
