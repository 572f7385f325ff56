func.func @cnn(%x: tensor<2x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> (tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<2x4x4x4xf32>) {
  %y = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x4x8x8xf32>
  %gx = kiln.conv2d_grad_input %y, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<2x4x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x3x8x8xf32>
  %gw = kiln.conv2d_grad_filter %x, %y {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<2x4x8x8xf32> -> tensor<4x3x3x3xf32>
  %p = kiln.pool2d "max", %y {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<2x4x8x8xf32> -> tensor<2x4x4x4xf32>
  %pg = kiln.pool2d_grad "avg", %y, %p {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<2x4x8x8xf32>, tensor<2x4x4x4xf32> -> tensor<2x4x8x8xf32>
  return %gx, %gw, %p : tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<2x4x4x4xf32>
}
