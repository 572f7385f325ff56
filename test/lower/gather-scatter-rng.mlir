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
