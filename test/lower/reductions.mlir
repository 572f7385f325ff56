// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// Reductions become linalg.reduce (with expand_shape for keepdims); argmax a two-output generic.

// CHECK-LABEL: func.func @sum_keepdims
// CHECK: %[[Z:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: %[[INIT:.*]] = linalg.fill ins(%[[Z]] : f32) outs(%{{.*}} : tensor<4x5xf32>)
// CHECK: %[[R:.*]] = linalg.reduce ins(%{{.*}} : tensor<4x2x5xf32>) outs(%[[INIT]] : tensor<4x5xf32>) dimensions = [1]
// CHECK: arith.addf
// CHECK: tensor.expand_shape %[[R]] {{.*}} output_shape [4, 1, 5] : tensor<4x5xf32> into tensor<4x1x5xf32>
func.func @sum_keepdims(%x: tensor<4x2x5xf32>) -> tensor<4x1x5xf32> {
  %0 = kiln.reduce_sum %x, [1] keepdims : tensor<4x2x5xf32> -> tensor<4x1x5xf32>
  return %0 : tensor<4x1x5xf32>
}

// CHECK-LABEL: func.func @max_all
// CHECK: arith.constant 0xFF800000 : f32
// CHECK: linalg.reduce ins(%{{.*}} : tensor<4x2x5xf32>) outs(%{{.*}} : tensor<f32>) dimensions = [0, 1, 2]
// CHECK: arith.maximumf
func.func @max_all(%x: tensor<4x2x5xf32>) -> tensor<f32> {
  %0 = kiln.reduce_max %x, [2, 0, 1] : tensor<4x2x5xf32> -> tensor<f32>
  return %0 : tensor<f32>
}

// CHECK-LABEL: func.func @int_sum
// CHECK: linalg.reduce
// CHECK: arith.addi
func.func @int_sum(%x: tensor<3x4xi64>) -> tensor<3xi64> {
  %0 = kiln.reduce_sum %x, [1] : tensor<3x4xi64> -> tensor<3xi64>
  return %0 : tensor<3xi64>
}

// First maximum: keep the larger value, on ties the smaller index.
// CHECK-LABEL: func.func @argmax
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "reduction", "parallel"]
// CHECK-SAME: outs(%{{.*}}, %{{.*}} : tensor<4x5xf32>, tensor<4x5xi32>)
// CHECK: linalg.index 1
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf oeq
// CHECK: arith.cmpi slt
// CHECK: linalg.yield
func.func @argmax(%x: tensor<4x2x5xf32>) -> tensor<4x5xi32> {
  %0 = kiln.argmax %x, 1 : tensor<4x2x5xf32> -> tensor<4x5xi32>
  return %0 : tensor<4x5xi32>
}

// NaN is the largest (NumPy: the first NaN's index): with a NaN kept, only an
// earlier NaN replaces it; else a NaN x is taken, or the ordered rule above.
// CHECK-LABEL: func.func @argmax_nan
// CHECK: ^bb0(%[[X:[a-z0-9_]+]]: f32, %[[BEST:[a-z0-9_]+]]: f32, %[[IDX:[a-z0-9_]+]]: i32):
// CHECK: %[[K:.*]] = arith.index_cast
// CHECK: %[[EARLIER:.*]] = arith.cmpi slt, %[[K]], %[[IDX]] : i32
// CHECK: %[[ORDERED:.*]] = arith.ori
// CHECK: %[[XNAN:.*]] = arith.cmpf uno, %[[X]], %[[X]] : f32
// CHECK: %[[BNAN:.*]] = arith.cmpf uno, %[[BEST]], %[[BEST]] : f32
// CHECK: %[[EARLYNAN:.*]] = arith.andi %[[XNAN]], %[[EARLIER]] : i1
// CHECK: %[[ANYNAN:.*]] = arith.ori %[[XNAN]], %[[ORDERED]] : i1
// CHECK: %[[TAKE:.*]] = arith.select %[[BNAN]], %[[EARLYNAN]], %[[ANYNAN]] : i1
// CHECK: arith.select %[[TAKE]], %[[X]], %[[BEST]] : f32
// CHECK: arith.select %[[TAKE]], %[[K]], %[[IDX]] : i32
func.func @argmax_nan(%x: tensor<3x4xf32>) -> tensor<3xi32> {
  %0 = kiln.argmax %x, 1 : tensor<3x4xf32> -> tensor<3xi32>
  return %0 : tensor<3xi32>
}

// Integers have no NaN: no unordered compare.
// CHECK-LABEL: func.func @argmax_int
// CHECK-NOT: arith.cmpf
// CHECK: linalg.yield
func.func @argmax_int(%x: tensor<3x4xi32>) -> tensor<3xi32> {
  %0 = kiln.argmax %x, 1 : tensor<3x4xi32> -> tensor<3xi32>
  return %0 : tensor<3xi32>
}
