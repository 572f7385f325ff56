func.func @data_movement(%x: tensor<4x6xf32>, %ids: tensor<3xi32>) -> (tensor<2x2xf32>, tensor<9x6xf32>, tensor<4x6xf32>, tensor<8x6xf32>, tensor<3x6xf32>, tensor<4x6xf32>) {
  %s = kiln.slice %x {start = array<i64: 1, 0>, limit = array<i64: 4, 6>, step = array<i64: 2, 3>} : tensor<4x6xf32> -> tensor<2x2xf32>
  %p = kiln.pad %x {low = array<i64: 1, 0>, high = array<i64: 1, 0>, interior = array<i64: 1, 0>, value = 0.0 : f64} : tensor<4x6xf32> -> tensor<9x6xf32>
  %r = kiln.reverse %x, [0] : tensor<4x6xf32>
  %c = kiln.concat %x, %r {axis = 0 : i64} : tensor<4x6xf32>, tensor<4x6xf32> -> tensor<8x6xf32>
  %g = kiln.gather %x, %ids : tensor<4x6xf32>, tensor<3xi32> -> tensor<3x6xf32>
  %sa = kiln.scatter_add %ids, %g : tensor<3xi32>, tensor<3x6xf32> -> tensor<4x6xf32>
  %sb = kiln.scatter_add %ids, %g base(%sa) : tensor<3xi32>, tensor<3x6xf32>, tensor<4x6xf32> -> tensor<4x6xf32>
  return %s, %p, %r, %c, %g, %sb : tensor<2x2xf32>, tensor<9x6xf32>, tensor<4x6xf32>, tensor<8x6xf32>, tensor<3x6xf32>, tensor<4x6xf32>
}
