// RUN: kiln-opt %s -split-input-file -verify-diagnostics
// Verifier errors of kiln.fusion and kiln.yield.

func.func @bad_kind(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{kind must be "elementwise", "reduction" or "contraction", got "loop"}}
  %f = kiln.fusion "loop" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    %e = kiln.exp %a : tensor<3xf32>
    kiln.yield %e : tensor<3xf32>
  }
  return %f : tensor<3xf32>
}

// -----

func.func @arg_mismatch(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{region arguments must match the inputs one to one in type}}
  %f = kiln.fusion "elementwise" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf64>):
    %e = kiln.exp %a : tensor<3xf64>
    %c = kiln.cast %e : tensor<3xf64> -> tensor<3xf32>
    kiln.yield %c : tensor<3xf32>
  }
  return %f : tensor<3xf32>
}

// -----

func.func @yield_mismatch(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{yielded types must match the result types}}
  %f = kiln.fusion "elementwise" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    %s = kiln.reduce_sum %a, [0] : tensor<3xf32> -> tensor<f32>
    kiln.yield %s : tensor<f32>
  }
  return %f : tensor<3xf32>
}

// -----

func.func @no_results(%x: tensor<3xf32>) {
  // expected-error @+1 {{must return at least one value}}
  "kiln.fusion"(%x) <{kind = "elementwise"}> ({
  ^bb0(%a: tensor<3xf32>):
    "kiln.yield"() : () -> ()
  }) : (tensor<3xf32>) -> ()
  return
}

// -----

func.func @opaque_inside(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %f = kiln.fusion "elementwise" ins(%x : tensor<2x3xf32>) -> (tensor<3x2xf32>) {
  ^bb0(%a: tensor<2x3xf32>):
    // expected-error @+1 {{cannot be fused}}
    %t = kiln.transpose %a, [1, 0] : tensor<2x3xf32> -> tensor<3x2xf32>
    kiln.yield %t : tensor<3x2xf32>
  }
  return %f : tensor<3x2xf32>
}

// -----

func.func @implicit_capture(%x: tensor<3xf32>, %y: tensor<3xf32>) -> tensor<3xf32> {
  // expected-note @+1 {{required by region isolation constraints}}
  %f = kiln.fusion "elementwise" ins(%x : tensor<3xf32>) -> (tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    // expected-error @+1 {{using value defined outside the region}}
    %s = kiln.add %a, %y : tensor<3xf32>
    kiln.yield %s : tensor<3xf32>
  }
  return %f : tensor<3xf32>
}

// -----

func.func @yield_outside(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{expects parent op to be one of 'kiln.fusion, kiln.custom'}}
  kiln.yield %x : tensor<3xf32>
}
