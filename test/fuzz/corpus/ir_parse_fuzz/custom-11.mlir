func.func @two_inputs(%x: tensor<2xf64>, %k: tensor<2xi32>) -> tensor<2xf64> {
  %y = kiln.custom "scale" ins(%x, %k : tensor<2xf64>, tensor<2xi32>) -> tensor<2xf64> attributes {note = "x"} forward {
  ^bb0(%a: tensor<2xf64>, %b: tensor<2xi32>):
    %c = kiln.cast %b : tensor<2xi32> -> tensor<2xf64>
    %p = kiln.mul %a, %c : tensor<2xf64>
    kiln.yield %p : tensor<2xf64>
  } backward {
  ^bb0(%a: tensor<2xf64>, %b: tensor<2xi32>, %r: tensor<2xf64>, %g: tensor<2xf64>):
    %c = kiln.cast %b : tensor<2xi32> -> tensor<2xf64>
    %ga = kiln.mul %g, %c : tensor<2xf64>
    %zero = kiln.constant dense<0> : tensor<2xi32>
    kiln.yield %ga, %zero : tensor<2xf64>, tensor<2xi32>
  }
  return %x : tensor<2xf64>
}
