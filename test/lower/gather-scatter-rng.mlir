// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// gather: a generic reading the table with tensor.extract; scatter_add: scf.for
// loops on tensors; rng_uniform: Philox-4x32-10 in arith inside a generic.

// CHECK-DAG: #[[$IDS:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>

// Ids are clamped to [0, rows - 1].
// CHECK-LABEL: func.func @gather
// CHECK: linalg.generic {indexing_maps = [#[[$IDS]], #{{.*}}]
// CHECK-SAME: ins(%{{.*}} : tensor<2x3xi32>) outs(%{{.*}} : tensor<2x3x6xf32>)
// CHECK: arith.index_cast %{{.*}} : i32 to index
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: %[[J:.*]] = linalg.index 2 : index
// CHECK: tensor.extract %{{.*}}[%{{.*}}, %[[J]]] : tensor<4x6xf32>
func.func @gather(%t: tensor<4x6xf32>, %ids: tensor<2x3xi32>) -> tensor<2x3x6xf32> {
  %0 = kiln.gather %t, %ids : tensor<4x6xf32>, tensor<2x3xi32> -> tensor<2x3x6xf32>
  return %0 : tensor<2x3x6xf32>
}

// CHECK-LABEL: func.func @scatter_add
// CHECK: tensor.collapse_shape %{{.*}} : tensor<2x3xi32> into tensor<6xi32>
// CHECK: tensor.collapse_shape %{{.*}} : tensor<2x3x6xf32> into tensor<6x6xf32>
// CHECK: %[[Z:.*]] = linalg.fill
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ACC:.*]] = %[[Z]]) -> (tensor<4x6xf32>)
// CHECK: scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[ROW:.*]] = %[[ACC]]) -> (tensor<4x6xf32>)
// CHECK: arith.select
// CHECK: tensor.extract %[[ROW]]
// CHECK: arith.addf
// CHECK: tensor.insert %{{.*}} into %[[ROW]]
func.func @scatter_add(%ids: tensor<2x3xi32>, %u: tensor<2x3x6xf32>) -> tensor<4x6xf32> {
  %0 = kiln.scatter_add %ids, %u : tensor<2x3xi32>, tensor<2x3x6xf32> -> tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// With a base the loops start from it (no fill).
// CHECK-LABEL: func.func @scatter_add_base
// CHECK-SAME: %[[BASE:[^:]*]]: tensor<4x6xf32>
// CHECK-NOT: linalg.fill
// CHECK: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%{{.*}} = %[[BASE]]) -> (tensor<4x6xf32>)
// CHECK: arith.addf
func.func @scatter_add_base(%ids: tensor<2x3xi32>, %u: tensor<2x3x6xf32>, %base: tensor<4x6xf32>) -> tensor<4x6xf32> {
  %0 = kiln.scatter_add %ids, %u base(%base) : tensor<2x3xi32>, tensor<2x3x6xf32>, tensor<4x6xf32> -> tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// CHECK-LABEL: func.func @rng
// CHECK: %[[SEED:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<2xi64>
// CHECK: %[[OFF:.*]] = tensor.extract %{{.*}}[%{{.*}}] : tensor<2xi64>
// CHECK: linalg.generic
// CHECK-SAME: outs(%{{.*}} : tensor<2x3xf32>)
// CHECK: arith.addi %[[OFF]], %{{.*}} : i64
// CHECK-COUNT-20: arith.mului_extended
// CHECK: arith.shrui
// CHECK: arith.uitofp %{{.*}} : i32 to f32
// CHECK: arith.constant 5.96046448E-8 : f32
// CHECK-NEXT: arith.mulf
func.func @rng(%key: tensor<2xi64>) -> tensor<2x3xf32> {
  %0 = kiln.rng_uniform %key : tensor<2xi64> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// check_range: x passes through; the status is [first bad flat index, its value]
// (or [-1, 0]) from a reduction over every dimension into two 0-d accumulators.
// CHECK-LABEL: func.func @check_range
// CHECK-SAME: (%[[T:.*]]: tensor<2x3xi32>)
// CHECK-DAG: %[[M1:.*]] = arith.constant -1 : i64
// CHECK-DAG: %[[I:.*]] = linalg.fill ins(%[[M1]] : i64) outs(%{{.*}} : tensor<i64>)
// CHECK-DAG: %[[V:.*]] = linalg.fill ins(%{{.*}} : i64) outs(%{{.*}} : tensor<i64>)
// CHECK: %[[R:.*]]:2 = linalg.generic
// CHECK-SAME: iterator_types = ["reduction", "reduction"]
// CHECK-SAME: ins(%[[T]] : tensor<2x3xi32>) outs(%[[I]], %[[V]] : tensor<i64>, tensor<i64>)
// CHECK: ^bb0(%[[X:[a-z0-9_]+]]: i32, %[[FIRST:[a-z0-9_]+]]: i64, %[[VAL:[a-z0-9_]+]]: i64):
// CHECK: %[[X64:.*]] = arith.extsi %[[X]] : i32 to i64
// CHECK: linalg.index 0
// CHECK: linalg.index 1
// CHECK: %[[FLAT:.*]] = arith.index_cast %{{.*}} : index to i64
// CHECK: %[[LO:.*]] = arith.cmpi slt, %[[X64]], %{{.*}} : i64
// CHECK: %[[C10:.*]] = arith.constant 10 : i64
// CHECK: %[[HI:.*]] = arith.cmpi sge, %[[X64]], %[[C10]] : i64
// CHECK: %[[OUT:.*]] = arith.ori %[[LO]], %[[HI]] : i1
// CHECK: %[[IGN:.*]] = arith.cmpi ne, %[[X64]], %{{.*}} : i64
// CHECK: %[[BAD:.*]] = arith.andi %[[OUT]], %[[IGN]] : i1
// CHECK: %[[TAKE:.*]] = arith.andi %[[BAD]], %{{.*}} : i1
// CHECK: %[[NI:.*]] = arith.select %[[TAKE]], %[[FLAT]], %[[FIRST]] : i64
// CHECK: %[[NV:.*]] = arith.select %[[TAKE]], %[[X64]], %[[VAL]] : i64
// CHECK: linalg.yield %[[NI]], %[[NV]] : i64, i64
// CHECK: %[[E0:.*]] = tensor.extract %[[R]]#0[] : tensor<i64>
// CHECK: %[[E1:.*]] = tensor.extract %[[R]]#1[] : tensor<i64>
// CHECK: %[[S:.*]] = tensor.from_elements %[[E0]], %[[E1]] : tensor<2xi64>
// CHECK: return %[[T]], %[[S]] : tensor<2x3xi32>, tensor<2xi64>
func.func @check_range(%t: tensor<2x3xi32>) -> (tensor<2x3xi32>, tensor<2xi64>) {
  %r, %s = kiln.check_range %t, limit = 10, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<2x3xi32>
  return %r, %s : tensor<2x3xi32>, tensor<2xi64>
}

// Without `ignore`, nothing but the range; a dynamic (batch) dimension is read with tensor.dim.
// CHECK-LABEL: func.func @check_range_dynamic
// CHECK: tensor.dim
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["reduction"]
// CHECK-NOT: arith.cmpi ne
// CHECK: linalg.yield
func.func @check_range_dynamic(%t: tensor<?xi64>) -> (tensor<?xi64>, tensor<2xi64>) {
  %r, %s = kiln.check_range %t, limit = 3 {function = "embed_id", operand = "x"} : tensor<?xi64>
  return %r, %s : tensor<?xi64>, tensor<2xi64>
}
