func.func @bad_element_type(%x: tensor<2xf16>) -> tensor<2xf16> {
  %0 = kiln.exp %x : tensor<2xf16>
  return %0 : tensor<2xf16>
}
