func.func @no_inputs() {
  %f:2 = kiln.fusion "elementwise" -> (tensor<2xf32>, tensor<2xf32>) {
    %c = kiln.constant dense<1.0> : tensor<2xf32>
    %e = kiln.exp %c : tensor<2xf32>
    kiln.yield %c, %e : tensor<2xf32>, tensor<2xf32>
  }
  return
}
