// Pooling gradients as library calls (KILN_GEMM=blas): -kiln-lower-to-linalg's conv-calls
// lowers kiln.pool2d_grad to one all-parallel linalg.generic over gx, ins(x, gy), marked
// kiln.pool2d_grad with its kind, window, strides and pads (its body states the semantics:
// each window's first in-bounds maximum, or gy / (kh * kw) over the window);
// -kiln-matmul-to-blas (in -kiln-lower-to-llvm) makes it a call of kiln_pool2d_grad_*
// (runtime/src/pool_kernels.cpp). Without conv-calls (KILN_GEMM=codegen, kilnc) it stays
// loops: a window argmax and a gather generic.
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-linalg="conv-calls=true" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-linalg="conv-calls=true" -kiln-lower-to-llvm="parallel=false" | FileCheck %s --check-prefix=CALLS
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-linalg | FileCheck %s --check-prefix=LOOPS

// CHECK-DAG:   #[[$ID:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[$GY:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, 0, 0)>
// CHECK-LABEL: func.func @max_pool_grad
// CHECK:         %[[Z:.*]] = linalg.fill
// CHECK:         linalg.generic {indexing_maps = [#[[$ID]], #[[$GY]], #[[$ID]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%arg0, %arg1 : tensor<2x3x4x6xf32>, tensor<2x3x2x3xf32>) outs(%[[Z]] : tensor<2x3x4x6xf32>)
// CHECK-SAME:      kiln.pool2d_grad = {kind = "max", ksize = array<i64: 2, 2>, pad = array<i64: 0, 0>, stride = array<i64: 2, 2>}
// CHECK:           scf.for
// CHECK:             tensor.extract %arg1
// CHECK:             scf.for
// CHECK:               tensor.extract %arg0
// CHECK:               arith.cmpf ogt
// CALLS-LABEL:   llvm.func @max_pool_grad
// CALLS-NOT:       llvm.fcmp
// CALLS:           llvm.call @kiln_pool2d_grad_f32
// CALLS-NOT:       llvm.fcmp
// CALLS-LABEL:   llvm.func @_mlir_ciface_max_pool_grad
// LOOPS-LABEL:   func.func @max_pool_grad
// LOOPS-NOT:       kiln.pool2d_grad =
// LOOPS:           linalg.generic
// LOOPS:           arith.cmpf ogt
func.func @max_pool_grad(%x: tensor<2x3x4x6xf32>, %gy: tensor<2x3x2x3xf32>) -> tensor<2x3x4x6xf32> {
  %0 = kiln.pool2d_grad "max", %x, %gy {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<2x3x4x6xf32>, tensor<2x3x2x3xf32> -> tensor<2x3x4x6xf32>
  return %0 : tensor<2x3x4x6xf32>
}

// -----

// Average pooling with padding and overlapping windows, in f64: the same call (kind 1).
// CHECK-LABEL: func.func @avg_pool_grad
// CHECK:         linalg.generic
// CHECK-SAME:      kiln.pool2d_grad = {kind = "avg", ksize = array<i64: 3, 2>, pad = array<i64: 1, 1>, stride = array<i64: 1, 2>}
// CHECK:           arith.mulf
// CHECK-NOT:       arith.cmpf
// CHECK:         return
// CALLS-LABEL:   llvm.func @avg_pool_grad
// CALLS:           %[[KIND:.*]] = llvm.mlir.constant(1 : i32) : i32
// CALLS:           llvm.call @kiln_pool2d_grad_f64
// CALLS-LABEL:   llvm.func @_mlir_ciface_avg_pool_grad
// LOOPS-LABEL:   func.func @avg_pool_grad
// LOOPS-NOT:       kiln.pool2d_grad =
func.func @avg_pool_grad(%x: tensor<1x2x5x5xf64>, %gy: tensor<1x2x5x3xf64>) -> tensor<1x2x5x5xf64> {
  %0 = kiln.pool2d_grad "avg", %x, %gy {ksize = array<i64: 3, 2>, stride = array<i64: 1, 2>, pad = array<i64: 1, 1>} : tensor<1x2x5x5xf64>, tensor<1x2x5x3xf64> -> tensor<1x2x5x5xf64>
  return %0 : tensor<1x2x5x5xf64>
}

// -----

// The symbolic batch: x, gy and gx are ? in dimension 0.
// CHECK-LABEL: func.func @dynamic_batch
// CHECK:         linalg.generic
// CHECK-SAME:      ins(%arg0, %arg1 : tensor<?x4x8x8xf32>, tensor<?x4x4x4xf32>)
// CHECK-SAME:      kiln.pool2d_grad
// CALLS-LABEL:   llvm.func @dynamic_batch
// CALLS:           llvm.call @kiln_pool2d_grad_f32
func.func @dynamic_batch(%x: tensor<?x4x8x8xf32>, %gy: tensor<?x4x4x4xf32>) -> tensor<?x4x8x8xf32> {
  %0 = kiln.pool2d_grad "max", %x, %gy {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<?x4x8x8xf32>, tensor<?x4x4x4xf32> -> tensor<?x4x8x8xf32>
  return %0 : tensor<?x4x8x8xf32>
}

// -----

// Pooling's forward: linalg.pooling_nchw_max over the -inf-padded x, written onto a fill of
// -inf, is one call of kiln_pool2d_f32 (kind 0) that overwrites y (accumulate 0, the fill
// dropped); no max loops remain.
// CALLS-LABEL:   llvm.func @max_pool
// CALLS-NOT:       llvm.intr.maximum
// CALLS:           llvm.call @kiln_pool2d_f32
// CALLS-NOT:       llvm.intr.maximum
// CALLS-LABEL:   llvm.func @_mlir_ciface_max_pool
// LOOPS-LABEL:   func.func @max_pool
// LOOPS:           linalg.pooling_nchw_max
func.func @max_pool(%x: tensor<2x3x5x6xf32>) -> tensor<2x3x3x3xf32> {
  %0 = kiln.pool2d "max", %x {ksize = array<i64: 3, 2>, stride = array<i64: 2, 2>, pad = array<i64: 1, 0>} : tensor<2x3x5x6xf32> -> tensor<2x3x3x3xf32>
  return %0 : tensor<2x3x3x3xf32>
}

// -----

// Average pooling's forward in f64: the window sums (linalg.pooling_nchw_sum) are a call
// of kind 1; the division by kh * kw stays a loop.
// CALLS-LABEL:   llvm.func @avg_pool
// CALLS:           llvm.call @kiln_pool2d_f64
// CALLS:           llvm.fdiv
// CALLS-LABEL:   llvm.func @_mlir_ciface_avg_pool
func.func @avg_pool(%x: tensor<1x2x5x5xf64>) -> tensor<1x2x5x3xf64> {
  %0 = kiln.pool2d "avg", %x {ksize = array<i64: 3, 2>, stride = array<i64: 1, 2>, pad = array<i64: 1, 1>} : tensor<1x2x5x5xf64> -> tensor<1x2x5x3xf64>
  return %0 : tensor<1x2x5x3xf64>
}
