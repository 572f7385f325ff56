// RUN: kiln-opt %s -split-input-file -verify-diagnostics
// Verifier errors of kiln.custom.

func.func @forward_args(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{forward region arguments must match the inputs one to one in type}}
  %y = kiln.custom "f" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
  ^bb0(%a: tensor<3xf64>):
    %c = kiln.constant dense<1.0> : tensor<3xf32>
    kiln.yield %c : tensor<3xf32>
  } backward {
  ^bb0(%a: tensor<3xf32>, %r: tensor<3xf32>, %g: tensor<3xf32>):
    kiln.yield %g : tensor<3xf32>
  }
  return %y : tensor<3xf32>
}

// -----

func.func @forward_yield(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{forward region must yield one value of the result type}}
  %y = kiln.custom "f" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
  ^bb0(%a: tensor<3xf32>):
    kiln.yield %a, %a : tensor<3xf32>, tensor<3xf32>
  } backward {
  ^bb0(%a: tensor<3xf32>, %r: tensor<3xf32>, %g: tensor<3xf32>):
    kiln.yield %g : tensor<3xf32>
  }
  return %y : tensor<3xf32>
}

// -----

func.func @backward_args(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{backward region arguments must be the inputs' types, then the result type twice}}
  %y = kiln.custom "f" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
  ^bb0(%a: tensor<3xf32>):
    kiln.yield %a : tensor<3xf32>
  } backward {
  ^bb0(%a: tensor<3xf32>, %g: tensor<3xf32>):
    kiln.yield %g : tensor<3xf32>
  }
  return %y : tensor<3xf32>
}

// -----

func.func @backward_yield(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-error @+1 {{backward region must yield one cotangent per input, of the input's type}}
  %y = kiln.custom "f" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
  ^bb0(%a: tensor<3xf32>):
    kiln.yield %a : tensor<3xf32>
  } backward {
  ^bb0(%a: tensor<3xf32>, %r: tensor<3xf32>, %g: tensor<3xf32>):
    %s = kiln.reduce_sum %g, [0] : tensor<3xf32> -> tensor<f32>
    kiln.yield %s : tensor<f32>
  }
  return %y : tensor<3xf32>
}

// -----

func.func @isolated(%x: tensor<3xf32>) -> tensor<3xf32> {
  // expected-note @+1 {{required by region isolation constraints}}
  %y = kiln.custom "f" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
  ^bb0(%a: tensor<3xf32>):
    // expected-error @+1 {{using value defined outside the region}}
    %e = kiln.exp %x : tensor<3xf32>
    kiln.yield %e : tensor<3xf32>
  } backward {
  ^bb0(%a: tensor<3xf32>, %r: tensor<3xf32>, %g: tensor<3xf32>):
    kiln.yield %g : tensor<3xf32>
  }
  return %y : tensor<3xf32>
}
