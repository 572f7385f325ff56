func.func @symbolic_batch(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>) -> (tensor<?x3xf32>, tensor<f32>, tensor<?x2xf32>) {
  %y = kiln.matmul %x, %w {transpose_b} : tensor<?x4xf32>, tensor<3x4xf32> -> tensor<?x3xf32>
  %n = kiln.dim_size %y, [0, 1] : tensor<?x3xf32> -> tensor<f32>
  %r = kiln.reshape %x : tensor<?x4xf32> -> tensor<?x2x2xf32>
  %s = kiln.slice %x {start = array<i64: 0, 1>, limit = array<i64: -9223372036854775808, 3>, step = array<i64: 1, 1>} : tensor<?x4xf32> -> tensor<?x2xf32>
  return %y, %n, %s : tensor<?x3xf32>, tensor<f32>, tensor<?x2xf32>
}
