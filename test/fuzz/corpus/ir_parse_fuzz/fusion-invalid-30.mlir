func.func @arg_mismatch(%x: tensor<3xf32>) -> tensor<3xf32> {
  %f = kiln.fusion "elementwise" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf64>):
    %e = kiln.exp %a : tensor<3xf64>
    %c = kiln.cast %e : tensor<3xf64> -> tensor<3xf32>
    kiln.yield %c : tensor<3xf32>
  }
  return %f : tensor<3xf32>
}
