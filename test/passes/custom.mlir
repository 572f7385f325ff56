// RUN: kiln-opt %s -split-input-file -kiln-autodiff | FileCheck %s --check-prefix=AD
// RUN: kiln-opt %s -split-input-file -kiln-inline-custom | FileCheck %s --check-prefix=INLINE
// RUN: kiln-opt %s -split-input-file -kiln-frontend-pipeline | FileCheck %s --check-prefix=PIPE
// kiln.custom: -kiln-autodiff uses its backward region as the VJP (cloned in
// place, arguments bound to the inputs, the result and its cotangent);
// -kiln-inline-custom replaces it by its forward region's ops.

// A straight-through estimator: sign forward, gradient passed where |x| <= 1.
// AD-LABEL: func.func @ste
// AD: %[[Y:.*]] = kiln.custom "ste" ins(%arg0 : tensor<3xf32>)
// AD: kiln.sign
// AD: } backward {
// AD: kiln.yield
// AD-NEXT: }
// AD-DAG: %[[ONE:.*]] = kiln.constant dense<1.000000e+00> : tensor<3xf32>
// AD-DAG: %[[ABS:.*]] = kiln.abs %arg0 : tensor<3xf32>
// AD: %[[M:.*]] = kiln.compare "le", %[[ABS]], %[[ONE]]
// AD: %[[GX:.*]] = kiln.select %[[M]], %{{.*}}, %{{.*}} : tensor<3xi1>, tensor<3xf32>
// AD-NOT: kiln.grad
// AD-NOT: kiln.sign
// AD: return %[[Y]], %[[GX]]
// INLINE-LABEL: func.func @ste
// INLINE-NOT: kiln.custom
// INLINE: %[[S:.*]] = kiln.sign %arg0 : tensor<3xf32>
// INLINE-NOT: kiln.abs
// INLINE: %[[R:.*]] = kiln.reduce_sum %[[S]]
// INLINE: kiln.grad %[[R]]
// INLINE: return %[[S]]
// PIPE-LABEL: func.func @ste
// PIPE-NOT: kiln.custom
// PIPE-DAG: kiln.sign %arg0
// PIPE-DAG: kiln.abs %arg0
// PIPE-NOT: kiln.custom
// PIPE: return
func.func @ste(%x: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
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
  %s = kiln.reduce_sum %y, [0] : tensor<3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %x : tensor<f32>, tensor<3xf32>
  return %y, %g : tensor<3xf32>, tensor<3xf32>
}

// -----

// The backward reads the result (exp: gx = gy * y) and gives the integer input
// no gradient; after inlining, the result is the forward's value.
// AD-LABEL: func.func @uses_result
// AD: %[[Y:.*]] = kiln.custom "my_exp"
// AD: } backward {
// AD: kiln.yield
// AD-NEXT: }
// AD: %[[GX:.*]] = kiln.mul %arg2, %[[Y]] : tensor<2xf32>
// AD: return %[[GX]]
// PIPE-LABEL: func.func @uses_result
// PIPE: %[[E:.*]] = kiln.exp %arg0 : tensor<2xf32>
// PIPE: %[[GX:.*]] = kiln.mul %arg2, %[[E]] : tensor<2xf32>
// PIPE: return %[[GX]]
func.func @uses_result(%x: tensor<2xf32>, %k: tensor<2xi32>, %gy: tensor<2xf32>) -> tensor<2xf32> {
  %y = kiln.custom "my_exp" ins(%x, %k : tensor<2xf32>, tensor<2xi32>) -> tensor<2xf32> forward {
  ^bb0(%a: tensor<2xf32>, %b: tensor<2xi32>):
    %e = kiln.exp %a : tensor<2xf32>
    kiln.yield %e : tensor<2xf32>
  } backward {
  ^bb0(%a: tensor<2xf32>, %b: tensor<2xi32>, %r: tensor<2xf32>, %g: tensor<2xf32>):
    %ga = kiln.mul %g, %r : tensor<2xf32>
    %zero = kiln.constant dense<0> : tensor<2xi32>
    kiln.yield %ga, %zero : tensor<2xf32>, tensor<2xi32>
  }
  %g = kiln.grad %y, %gy, %x : tensor<2xf32>, tensor<2xf32>
  return %g : tensor<2xf32>
}

// -----

// A custom op nested in another's forward region is inlined too.
// INLINE-LABEL: func.func @nested
// INLINE-NOT: kiln.custom
// INLINE: %[[E:.*]] = kiln.exp %arg0
// INLINE: %[[N:.*]] = kiln.neg %[[E]]
// INLINE: return %[[N]]
func.func @nested(%x: tensor<2xf32>) -> tensor<2xf32> {
  %y = kiln.custom "outer" ins(%x : tensor<2xf32>) -> tensor<2xf32> forward {
  ^bb0(%a: tensor<2xf32>):
    %i = kiln.custom "inner" ins(%a : tensor<2xf32>) -> tensor<2xf32> forward {
    ^bb0(%b: tensor<2xf32>):
      %e = kiln.exp %b : tensor<2xf32>
      kiln.yield %e : tensor<2xf32>
    } backward {
    ^bb0(%b: tensor<2xf32>, %r: tensor<2xf32>, %g: tensor<2xf32>):
      kiln.yield %g : tensor<2xf32>
    }
    %n = kiln.neg %i : tensor<2xf32>
    kiln.yield %n : tensor<2xf32>
  } backward {
  ^bb0(%a: tensor<2xf32>, %r: tensor<2xf32>, %g: tensor<2xf32>):
    %i = kiln.custom "inner2" ins(%g : tensor<2xf32>) -> tensor<2xf32> forward {
    ^bb0(%b: tensor<2xf32>):
      kiln.yield %b : tensor<2xf32>
    } backward {
    ^bb0(%b: tensor<2xf32>, %r2: tensor<2xf32>, %g2: tensor<2xf32>):
      kiln.yield %g2 : tensor<2xf32>
    }
    kiln.yield %i : tensor<2xf32>
  }
  return %y : tensor<2xf32>
}
