func.func @slice_bounds(%x: tensor<4xf32>) -> tensor<2xf32> {
  %0 = kiln.slice %x {start = array<i64: 2>, limit = array<i64: 6>, step = array<i64: 2>} : tensor<4xf32> -> tensor<2xf32>
  return %0 : tensor<2xf32>
}
