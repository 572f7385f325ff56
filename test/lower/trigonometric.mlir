// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// The trigonometric and rounding ops lower through their scalar expressions to math ops
// (sin, cos, tan, asin, acos, atan, atan2, floor, ceil), operands in order.

// CHECK-LABEL: func.func @trig_f32
// CHECK: math.sin
// CHECK: math.cos
// CHECK: math.tan
// CHECK: math.asin
// CHECK: math.acos
// CHECK: math.atan {{.*}} : f32
// CHECK: ^bb0(%[[Y:[a-z0-9_]+]]: f32, %[[X:[a-z0-9_]+]]: f32, %{{.*}}: f32):
// CHECK: math.atan2 %[[Y]], %[[X]] : f32
// CHECK-NOT: kiln.
func.func @trig_f32(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.sin %a : tensor<4xf32>
  %1 = kiln.cos %0 : tensor<4xf32>
  %2 = kiln.tan %1 : tensor<4xf32>
  %3 = kiln.asin %2 : tensor<4xf32>
  %4 = kiln.acos %3 : tensor<4xf32>
  %5 = kiln.atan %4 : tensor<4xf32>
  %6 = kiln.atan2 %5, %b : tensor<4xf32>
  return %6 : tensor<4xf32>
}

// floor and ceil of floats are math.floor / math.ceil; of integers they are computed in f64
// (float-only primitives) and converted back.
// CHECK-LABEL: func.func @rounding
// CHECK: math.floor {{.*}} : f64
// CHECK: arith.sitofp
// CHECK: math.ceil {{.*}} : f64
// CHECK: arith.fptosi
func.func @rounding(%a: tensor<3xf64>, %i: tensor<3xi32>) -> (tensor<3xf64>, tensor<3xi32>) {
  %0 = kiln.floor %a : tensor<3xf64>
  %1 = kiln.ceil %i : tensor<3xi32>
  return %0, %1 : tensor<3xf64>, tensor<3xi32>
}
