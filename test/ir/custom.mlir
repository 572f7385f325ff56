// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s -canonicalize | FileCheck %s --check-prefix=DCE
// kiln.custom (a kiln::FunctionNode) parses and prints back; it is pure when
// its ops are (RecursiveMemoryEffects): an unused one is removed as dead code.

// CHECK-LABEL: func.func @ste
// CHECK: %[[Y:.*]] = kiln.custom "ste" ins(%arg0 : tensor<3xf32>) -> tensor<3xf32> forward {
// CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<3xf32>):
// CHECK-NEXT:   %[[S:.*]] = kiln.sign %[[A]] : tensor<3xf32>
// CHECK-NEXT:   kiln.yield %[[S]] : tensor<3xf32>
// CHECK-NEXT: } backward {
// CHECK-NEXT: ^bb0(%[[B:.*]]: tensor<3xf32>, %[[R:.*]]: tensor<3xf32>, %[[G:.*]]: tensor<3xf32>):
// CHECK-NEXT:   %[[ONE:.*]] = kiln.constant dense<1.000000e+00> : tensor<3xf32>
// CHECK-NEXT:   %[[ABS:.*]] = kiln.abs %[[B]] : tensor<3xf32>
// CHECK-NEXT:   %[[M:.*]] = kiln.compare "le", %[[ABS]], %[[ONE]] : tensor<3xf32>
// CHECK-NEXT:   %[[Z:.*]] = kiln.constant dense<0.000000e+00> : tensor<3xf32>
// CHECK-NEXT:   %[[GX:.*]] = kiln.select %[[M]], %[[G]], %[[Z]] : tensor<3xi1>, tensor<3xf32>
// CHECK-NEXT:   kiln.yield %[[GX]] : tensor<3xf32>
// CHECK-NEXT: }
// CHECK-NEXT: return %[[Y]]
// DCE-LABEL: func.func @ste
// DCE: kiln.custom "ste"
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

// Two inputs (one integer), an attribute dictionary, and an unused result.
// CHECK-LABEL: func.func @two_inputs
// CHECK: kiln.custom "scale" ins(%arg0, %arg1 : tensor<2xf64>, tensor<2xi32>) -> tensor<2xf64> attributes {note = "x"} forward {
// CHECK: ^bb0(%{{.*}}: tensor<2xf64>, %{{.*}}: tensor<2xi32>):
// CHECK: kiln.cast %{{.*}} : tensor<2xi32> -> tensor<2xf64>
// CHECK: } backward {
// CHECK: ^bb0(%{{.*}}: tensor<2xf64>, %{{.*}}: tensor<2xi32>, %{{.*}}: tensor<2xf64>, %{{.*}}: tensor<2xf64>):
// CHECK: kiln.yield %{{.*}}, %{{.*}} : tensor<2xf64>, tensor<2xi32>
// DCE-LABEL: func.func @two_inputs
// DCE-NOT: kiln.custom
// DCE: return
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
