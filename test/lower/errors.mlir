// RUN: kiln-opt %s -kiln-lower-to-linalg -split-input-file -verify-diagnostics
// The pass fails with an error naming the op it cannot lower.

func.func @grad_left(%x: tensor<3xf32>) -> tensor<3xf32> {
  %y = kiln.reduce_sum %x, [0] : tensor<3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  // expected-error @+1 {{'kiln.grad' must be removed by -kiln-autodiff before lowering}}
  %g = kiln.grad %y, %one, %x : tensor<f32>, tensor<3xf32>
  return %g : tensor<3xf32>
}

// -----

// A dynamic dimension is the batch size, read from an argument: here there is none.
// expected-error @+1 {{dynamic dimensions need an argument with a dynamic (batch) dimension}}
func.func @dynamic_without_source(%x: tensor<3xf32>) -> tensor<?x3xf32> {
  %y = kiln.broadcast_to %x : tensor<3xf32> -> tensor<?x3xf32>
  return %y : tensor<?x3xf32>
}
