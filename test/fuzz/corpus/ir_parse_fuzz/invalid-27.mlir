func.func @slice_dynamic_part(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
  %0 = kiln.slice %x {start = array<i64: 1, 0>, limit = array<i64: -9223372036854775808, 3>, step = array<i64: 1, 1>} : tensor<?x3xf32> -> tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}
