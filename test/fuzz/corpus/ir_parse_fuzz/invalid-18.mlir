func.func @reduce_axis(%x: tensor<2x3xf32>) -> tensor<2xf32> {
  %0 = kiln.reduce_sum %x, [2] : tensor<2x3xf32> -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
