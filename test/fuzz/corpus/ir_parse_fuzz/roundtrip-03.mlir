func.func @reductions_and_matmul(%a: tensor<4x2x3xf32>, %b: tensor<4x3x5xf32>) -> (tensor<4x2x5xf32>, tensor<4x1x5xf32>, tensor<f32>, tensor<4x5xi32>) {
  %m = kiln.matmul %a, %b : tensor<4x2x3xf32>, tensor<4x3x5xf32> -> tensor<4x2x5xf32>
  %at = kiln.transpose %a, [0, 2, 1] : tensor<4x2x3xf32> -> tensor<4x3x2xf32>
  %m2 = kiln.matmul %at, %b {transpose_a} : tensor<4x3x2xf32>, tensor<4x3x5xf32> -> tensor<4x2x5xf32>
  %s = kiln.reduce_sum %m2, [1] keepdims : tensor<4x2x5xf32> -> tensor<4x1x5xf32>
  %x = kiln.reduce_max %m, [0, 1, 2] : tensor<4x2x5xf32> -> tensor<f32>
  %i = kiln.argmax %m, 1 : tensor<4x2x5xf32> -> tensor<4x5xi32>
  return %m, %s, %x, %i : tensor<4x2x5xf32>, tensor<4x1x5xf32>, tensor<f32>, tensor<4x5xi32>
}
