func.func @bad_kind(%x: tensor<3xf32>) -> tensor<3xf32> {
  %f = kiln.fusion "loop" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    %e = kiln.exp %a : tensor<3xf32>
    kiln.yield %e : tensor<3xf32>
  }
  return %f : tensor<3xf32>
}
