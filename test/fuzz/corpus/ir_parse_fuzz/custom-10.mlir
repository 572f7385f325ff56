func.func @ste(%x: tensor<3xf32>) -> tensor<3xf32> {
  %y = kiln.custom "ste" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
  ^bb0(%a: tensor<3xf32>):
    %s = kiln.sign %a : tensor<3xf32>
    kiln.yield %s : tensor<3xf32>
  } backward {
  ^bb0(%a: tensor<3xf32>, %r: tensor<3xf32>, %g: tensor<3xf32>):
    %c = kiln.constant dense<1.0> : tensor<3xf32>
    %abs = kiln.abs %a : tensor<3xf32>
    %m = kiln.compare "le", %abs, %c : tensor<3xf32>
    %z = kiln.constant dense<0.0> : tensor<3xf32>
    %gx = kiln.select %m, %g, %z : tensor<3xi1>, tensor<3xf32>
    kiln.yield %gx : tensor<3xf32>
  }
  return %y : tensor<3xf32>
}
