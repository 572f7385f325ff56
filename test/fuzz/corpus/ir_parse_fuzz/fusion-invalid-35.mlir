func.func @yield_outside(%x: tensor<3xf32>) -> tensor<3xf32> {
  kiln.yield %x : tensor<3xf32>
}
