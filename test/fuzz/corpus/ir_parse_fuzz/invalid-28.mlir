func.func @reshape_dynamic_count(%x: tensor<?x4xf32>) -> tensor<8xf32> {
  %0 = kiln.reshape %x : tensor<?x4xf32> -> tensor<8xf32>
  return %0 : tensor<8xf32>
}
