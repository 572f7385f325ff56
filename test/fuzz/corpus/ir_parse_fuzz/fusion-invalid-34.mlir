func.func @implicit_capture(%x: tensor<3xf32>, %y: tensor<3xf32>) -> tensor<3xf32> {
  %f = kiln.fusion "elementwise" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    %s = kiln.add %a, %y : tensor<3xf32>
    kiln.yield %s : tensor<3xf32>
  }
  return %f : tensor<3xf32>
}
