func.func @yield_mismatch(%x: tensor<3xf32>) -> tensor<3xf32> {
  %f = kiln.fusion "elementwise" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    %s = kiln.reduce_sum %a, [0] : tensor<3xf32> -> tensor<f32>
    kiln.yield %s : tensor<f32>
  }
  return %f : tensor<3xf32>
}
