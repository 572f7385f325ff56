func.func @dim_size_not_scalar(%x: tensor<?x3xf32>) -> tensor<1xf32> {
  %0 = kiln.dim_size %x, [0] : tensor<?x3xf32> -> tensor<1xf32>
  return %0 : tensor<1xf32>
}
