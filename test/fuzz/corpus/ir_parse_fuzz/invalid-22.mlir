func.func @compare_predicate(%a: tensor<2xf32>) -> tensor<2xi1> {
  %0 = kiln.compare "bigger", %a, %a : tensor<2xf32>
  return %0 : tensor<2xi1>
}
