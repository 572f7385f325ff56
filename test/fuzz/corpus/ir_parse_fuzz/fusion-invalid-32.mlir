func.func @no_results(%x: tensor<3xf32>) {
  "kiln.fusion"(%x) <{kind = "elementwise"}> ({
  ^bb0(%a: tensor<3xf32>):
    "kiln.yield"() : () -> ()
  }) : (tensor<3xf32>) -> ()
  return
}
