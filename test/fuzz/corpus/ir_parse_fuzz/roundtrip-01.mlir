func.func @elementwise(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.add %a, %b : tensor<2x3xf32>
  %1 = kiln.sub %0, %b : tensor<2x3xf32>
  %2 = kiln.mul %1, %b : tensor<2x3xf32>
  %3 = kiln.div %2, %b : tensor<2x3xf32>
  %4 = kiln.max %3, %b : tensor<2x3xf32>
  %5 = kiln.min %4, %b : tensor<2x3xf32>
  %6 = kiln.pow %5, %b : tensor<2x3xf32>
  %7 = kiln.neg %6 : tensor<2x3xf32>
  %8 = kiln.exp %7 : tensor<2x3xf32>
  %9 = kiln.log %8 : tensor<2x3xf32>
  %10 = kiln.relu %9 : tensor<2x3xf32>
  %11 = kiln.sqrt %10 : tensor<2x3xf32>
  %12 = kiln.tanh %11 : tensor<2x3xf32>
  %13 = kiln.sigmoid %12 : tensor<2x3xf32>
  %14 = kiln.abs %13 : tensor<2x3xf32>
  %15 = kiln.sign %14 : tensor<2x3xf32>
  %16 = kiln.log1p %15 : tensor<2x3xf32>
  %17 = kiln.expm1 %16 : tensor<2x3xf32>
  %18 = kiln.erf %17 : tensor<2x3xf32>
  %19 = kiln.compare "lt", %18, %a : tensor<2x3xf32>
  %20 = kiln.select %19, %18, %a : tensor<2x3xi1>, tensor<2x3xf32>
  return %20 : tensor<2x3xf32>
}
