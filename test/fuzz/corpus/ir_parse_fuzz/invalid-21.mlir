func.func @pool_window(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x1x1xf32> {
  %0 = kiln.pool2d "max", %x {ksize = array<i64: 3, 3>, stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x1x2x2xf32> -> tensor<1x1x1x1xf32>
  return %0 : tensor<1x1x1x1xf32>
}
