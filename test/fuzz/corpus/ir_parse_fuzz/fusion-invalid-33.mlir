func.func @opaque_inside(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %f = kiln.fusion "elementwise" ins(%x : tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  ^bb0(%a: tensor<2x3xf32>):
    %t = kiln.transpose %a, [1, 0] : tensor<2x3xf32> -> tensor<3x2xf32>
    kiln.yield %t : tensor<3x2xf32>
  }
  return %f : tensor<3x2xf32>
}
