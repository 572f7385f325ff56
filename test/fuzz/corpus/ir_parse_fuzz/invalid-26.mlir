func.func @dim_size_axis(%x: tensor<?x3xf32>) -> tensor<f32> {
  %0 = kiln.dim_size %x, [2] : tensor<?x3xf32> -> tensor<f32>
  return %0 : tensor<f32>
}
