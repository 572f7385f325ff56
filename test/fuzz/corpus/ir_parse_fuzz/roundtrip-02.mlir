func.func @shapes(%x: tensor<3xf64>, %m: tensor<2x3xi32>) -> (tensor<2x3xf64>, tensor<3x2xf64>, tensor<6xi32>, tensor<2x3xf32>) {
  %c = kiln.constant dense<1.0> : tensor<2x3xf64>
  %b = kiln.broadcast_to %x : tensor<3xf64> -> tensor<2x3xf64>
  %s = kiln.add %b, %c : tensor<2x3xf64>
  %t = kiln.transpose %s, [1, 0] : tensor<2x3xf64> -> tensor<3x2xf64>
  %r = kiln.reshape %m : tensor<2x3xi32> -> tensor<6xi32>
  %f = kiln.cast %m : tensor<2x3xi32> -> tensor<2x3xf32>
  return %s, %t, %r, %f : tensor<2x3xf64>, tensor<3x2xf64>, tensor<6xi32>, tensor<2x3xf32>
}
