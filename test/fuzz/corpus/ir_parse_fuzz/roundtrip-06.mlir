func.func @generators_and_grad(%x: tensor<3xf32>, %key: tensor<2xi64>) -> (tensor<2x3xi32>, tensor<4xf32>, tensor<3xf32>) {
  %i = kiln.iota dim = 1 : tensor<2x3xi32>
  %r = kiln.rng_uniform %key : tensor<2xi64> -> tensor<4xf32>
  %y = kiln.reduce_sum %x, [0] : tensor<3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %y, %one, %x : tensor<f32>, tensor<3xf32>
  return %i, %r, %g : tensor<2x3xi32>, tensor<4xf32>, tensor<3xf32>
}
