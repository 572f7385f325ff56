func.func @grad_seed(%y: tensor<2xf32>, %s: tensor<3xf32>, %x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = kiln.grad %y, %s, %x : tensor<2xf32>, tensor<2xf32>
  return %0 : tensor<2xf32>
}
