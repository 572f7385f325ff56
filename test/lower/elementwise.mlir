// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// Elementwise kiln ops become parallel linalg.generic ops with arith/math bodies: one
// pattern for every op with ScalarOpInterface emits the op's scalar expression from
// KilnOps.td (e.g. relu's `(select (gtu x 0) x 0)`), operands left to right.

// CHECK-LABEL: func.func @add_f32
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2x3xf32>
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel"]
// CHECK-SAME: ins(%{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<2x3xf32>) outs(%[[E]] : tensor<2x3xf32>)
// CHECK: arith.addf
// CHECK-NOT: kiln.
func.func @add_f32(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = kiln.add %a, %b : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// max is `(select (lt x y) y x)` for integers too.
// CHECK-LABEL: func.func @int_div_max
// CHECK: arith.divsi
// CHECK: %[[LT:.*]] = arith.cmpi slt, %[[Q:.*]], %[[B:.*]] : i32
// CHECK: arith.select %[[LT]], %[[B]], %[[Q]] : i32
func.func @int_div_max(%a: tensor<4xi32>, %b: tensor<4xi32>) -> tensor<4xi32> {
  %0 = kiln.div %a, %b : tensor<4xi32>
  %1 = kiln.max %0, %b : tensor<4xi32>
  return %1 : tensor<4xi32>
}

// Integer division never traps (NumPy's answers): the divisor is made safe
// (0 and -1 become 1), then d == -1 gives 0 - x (MIN / -1 wraps to MIN) and d == 0 gives 0.
// CHECK-LABEL: func.func @int_div_safe
// CHECK: ^bb0(%[[X:[a-z0-9_]+]]: i32, %[[D:[a-z0-9_]+]]: i32, %{{.*}}: i32):
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i32
// CHECK-DAG: %[[ONE:.*]] = arith.constant 1 : i32
// CHECK-DAG: %[[MONE:.*]] = arith.constant -1 : i32
// CHECK: %[[BY0:.*]] = arith.cmpi eq, %[[D]], %[[ZERO]] : i32
// CHECK: %[[BYM1:.*]] = arith.cmpi eq, %[[D]], %[[MONE]] : i32
// CHECK: %[[UNSAFE:.*]] = arith.ori %[[BY0]], %[[BYM1]] : i1
// CHECK: %[[SAFE:.*]] = arith.select %[[UNSAFE]], %[[ONE]], %[[D]] : i32
// CHECK: %[[Q:.*]] = arith.divsi %[[X]], %[[SAFE]] : i32
// CHECK: %[[NEG:.*]] = arith.subi %[[ZERO]], %[[X]] : i32
// CHECK: %[[Q1:.*]] = arith.select %[[BYM1]], %[[NEG]], %[[Q]] : i32
// CHECK: %[[Q2:.*]] = arith.select %[[BY0]], %[[ZERO]], %[[Q1]] : i32
// CHECK: linalg.yield %[[Q2]] : i32
func.func @int_div_safe(%a: tensor<4xi32>, %b: tensor<4xi32>) -> tensor<4xi32> {
  %0 = kiln.div %a, %b : tensor<4xi32>
  return %0 : tensor<4xi32>
}

// Float division stays IEEE (x / 0 is inf or NaN): no selects.
// CHECK-LABEL: func.func @float_div
// CHECK: arith.divf
// CHECK-NOT: arith.select
// CHECK: linalg.yield
func.func @float_div(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = kiln.div %a, %b : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// relu keeps NaN: the unordered compare `ugt` is true for NaN.
// CHECK-LABEL: func.func @relu_nan
// CHECK: ^bb0(%[[X:[a-z0-9_]+]]: f32, %{{.*}}: f32):
// CHECK: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[K:.*]] = arith.cmpf ugt, %[[X]], %[[Z]] : f32
// CHECK: arith.select %[[K]], %[[X]], %[[Z]] : f32
func.func @relu_nan(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.relu %x : tensor<3xf32>
  return %0 : tensor<3xf32>
}

// std::max/min semantics: a select on an ordered compare.
// CHECK-LABEL: func.func @float_max_min
// CHECK: %[[LT:.*]] = arith.cmpf olt, %[[A:.*]], %[[B:.*]] : f32
// CHECK: arith.select %[[LT]], %[[B]], %[[A]] : f32
// CHECK: arith.cmpf olt
// CHECK: arith.select
func.func @float_max_min(%a: tensor<3xf32>, %b: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.max %a, %b : tensor<3xf32>
  %1 = kiln.min %0, %b : tensor<3xf32>
  return %1 : tensor<3xf32>
}

// CHECK-LABEL: func.func @unary_math
// CHECK: math.exp
// CHECK: math.log
// CHECK: math.sqrt
// CHECK: math.tanh
// CHECK: math.log1p
// CHECK: math.expm1
// CHECK: math.erf
// CHECK: math.absf
// CHECK: arith.negf
func.func @unary_math(%x: tensor<3xf64>) -> tensor<3xf64> {
  %0 = kiln.exp %x : tensor<3xf64>
  %1 = kiln.log %0 : tensor<3xf64>
  %2 = kiln.sqrt %1 : tensor<3xf64>
  %3 = kiln.tanh %2 : tensor<3xf64>
  %4 = kiln.log1p %3 : tensor<3xf64>
  %5 = kiln.expm1 %4 : tensor<3xf64>
  %6 = kiln.erf %5 : tensor<3xf64>
  %7 = kiln.abs %6 : tensor<3xf64>
  %8 = kiln.neg %7 : tensor<3xf64>
  return %8 : tensor<3xf64>
}

// sigmoid = 1 / (1 + exp(-x)); relu = x > 0 || isnan(x) ? x : 0.
// CHECK-LABEL: func.func @sigmoid_relu
// CHECK: arith.negf
// CHECK-NEXT: math.exp
// CHECK-NEXT: arith.addf
// CHECK-NEXT: arith.divf
// CHECK: arith.cmpf ugt
// CHECK-NEXT: arith.select
func.func @sigmoid_relu(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.sigmoid %x : tensor<3xf32>
  %1 = kiln.relu %0 : tensor<3xf32>
  return %1 : tensor<3xf32>
}

// Integer ops without a native form are computed in f64, as the interpreter does.
// CHECK-LABEL: func.func @int_pow_via_f64
// CHECK: arith.sitofp %{{.*}} : i32 to f64
// CHECK: math.powf %{{.*}}, %{{.*}} : f64
// CHECK: arith.fptosi %{{.*}} : f64 to i32
func.func @int_pow_via_f64(%a: tensor<4xi32>, %b: tensor<4xi32>) -> tensor<4xi32> {
  %0 = kiln.pow %a, %b : tensor<4xi32>
  return %0 : tensor<4xi32>
}

// CHECK-LABEL: func.func @compare_select
// CHECK: arith.cmpf une
// CHECK: -> tensor<2x2xi1>
// CHECK: arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
func.func @compare_select(%a: tensor<2x2xf32>, %b: tensor<2x2xf32>) -> tensor<2x2xf32> {
  %c = kiln.compare "ne", %a, %b : tensor<2x2xf32>
  %0 = kiln.select %c, %a, %b : tensor<2x2xi1>, tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// CHECK-LABEL: func.func @int_compare
// CHECK: arith.cmpi slt
func.func @int_compare(%a: tensor<2xi64>, %b: tensor<2xi64>) -> tensor<2xi1> {
  %c = kiln.compare "lt", %a, %b : tensor<2xi64>
  return %c : tensor<2xi1>
}

// CHECK-LABEL: func.func @casts
// CHECK: arith.fptosi %{{.*}} : f32 to i32
// CHECK: arith.cmpi ne, %{{.*}}, %{{.*}} : i32
// CHECK: arith.uitofp %{{.*}} : i1 to f64
// CHECK: arith.truncf %{{.*}} : f64 to f32
func.func @casts(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.cast %x : tensor<3xf32> -> tensor<3xi32>
  %1 = kiln.cast %0 : tensor<3xi32> -> tensor<3xi1>
  %2 = kiln.cast %1 : tensor<3xi1> -> tensor<3xf64>
  %3 = kiln.cast %2 : tensor<3xf64> -> tensor<3xf32>
  return %3 : tensor<3xf32>
}

// CHECK-LABEL: func.func @constant_iota
// CHECK: arith.constant dense<{{\[}}1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK: linalg.generic
// CHECK: %[[I:.*]] = linalg.index 1 : index
// CHECK: arith.index_cast %[[I]] : index to i64
// CHECK: arith.sitofp
func.func @constant_iota() -> (tensor<2xf32>, tensor<2x3xf32>) {
  %c = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %i = kiln.iota dim = 1 : tensor<2x3xf32>
  return %c, %i : tensor<2xf32>, tensor<2x3xf32>
}

// sign is `(select (gt x 0) 1 (select (lt x 0) -1 0))`: each constant once.
// CHECK-LABEL: func.func @sign_f32
// CHECK: ^bb0(%[[X:[a-z0-9_]+]]: f32, %{{.*}}: f32):
// CHECK-NEXT: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT: %[[GT:.*]] = arith.cmpf ogt, %[[X]], %[[Z]] : f32
// CHECK-NEXT: %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT: %[[LT:.*]] = arith.cmpf olt, %[[X]], %[[Z]] : f32
// CHECK-NEXT: %[[MONE:.*]] = arith.constant -1.000000e+00 : f32
// CHECK-NEXT: %[[IN:.*]] = arith.select %[[LT]], %[[MONE]], %[[Z]] : f32
// CHECK-NEXT: %[[S:.*]] = arith.select %[[GT]], %[[ONE]], %[[IN]] : f32
// CHECK-NEXT: linalg.yield %[[S]] : f32
func.func @sign_f32(%x: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.sign %x : tensor<3xf32>
  return %0 : tensor<3xf32>
}

// compare "ne" is C's != (true for NaN); the others are ordered. Booleans compare unsigned.
// CHECK-LABEL: func.func @compares
// CHECK: arith.cmpf une
// CHECK: arith.cmpf ole
// CHECK: arith.cmpi ult
func.func @compares(%a: tensor<3xf32>, %b: tensor<3xf32>, %c: tensor<3xi1>) -> (tensor<3xi1>, tensor<3xi1>, tensor<3xi1>) {
  %0 = kiln.compare "ne", %a, %b : tensor<3xf32>
  %1 = kiln.compare "le", %a, %b : tensor<3xf32>
  %2 = kiln.compare "lt", %c, %0 : tensor<3xi1>
  return %0, %1, %2 : tensor<3xi1>, tensor<3xi1>, tensor<3xi1>
}

// Arithmetic on booleans is computed in f64 and converted back (`!= 0`).
// CHECK-LABEL: func.func @bool_add_via_f64
// CHECK: arith.uitofp %{{.*}} : i1 to f64
// CHECK: arith.addf %{{.*}}, %{{.*}} : f64
// CHECK: arith.cmpf une
func.func @bool_add_via_f64(%a: tensor<3xi1>, %b: tensor<3xi1>) -> tensor<3xi1> {
  %0 = kiln.add %a, %b : tensor<3xi1>
  return %0 : tensor<3xi1>
}

// Integer abs: a select (math.absi has no libm lowering).
// CHECK-LABEL: func.func @int_abs
// CHECK: arith.subi
// CHECK: arith.cmpi slt
// CHECK: arith.select
func.func @int_abs(%x: tensor<3xi64>) -> tensor<3xi64> {
  %0 = kiln.abs %x : tensor<3xi64>
  return %0 : tensor<3xi64>
}
