// RUN: kiln-opt %s -split-input-file -kiln-matmul-to-blas -cse | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=false" | FileCheck %s --check-prefix=LLVM
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=false gemm-blas=false" | FileCheck %s --check-prefix=LOOPS

// A plain matmul on memrefs: operands cast to fully dynamic strided layouts,
// transposition flags 0, one declaration with a C interface.
// CHECK-LABEL: func.func private @kiln_gemm_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, i32, i32, i32)
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @plain
// CHECK-DAG:     %[[A:.*]] = memref.cast %{{.*}} : memref<4x3xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK-DAG:     %[[B:.*]] = memref.cast %{{.*}} : memref<3x5xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK-DAG:     %[[C:.*]] = memref.cast %{{.*}} : memref<4x5xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK:         call @kiln_gemm_f32(%[[A]], %[[B]], %[[C]], %c0_i32, %c0_i32, %c1_i32)
// CHECK-NOT:     linalg.matmul
// LLVM-LABEL:  llvm.func @plain
// LLVM:          llvm.call @kiln_gemm_f32
// LLVM-NOT:      llvm.fmul
// LLVM-LABEL:  llvm.func @_mlir_ciface_plain
// LLVM:        llvm.func @_mlir_ciface_kiln_gemm_f32(!llvm.ptr, !llvm.ptr, !llvm.ptr, i32, i32, i32)
// LOOPS-LABEL: llvm.func @plain
// LOOPS-NOT:     kiln_gemm
// LOOPS:         llvm.fmul
// LOOPS-NOT:     kiln_gemm
func.func @plain(%a: memref<4x3xf32>, %b: memref<3x5xf32>, %c: memref<4x5xf32>) {
  linalg.matmul ins(%a, %b : memref<4x3xf32>, memref<3x5xf32>) outs(%c : memref<4x5xf32>)
  return
}

// -----

// Transposes as -kiln-lower-to-linalg writes them (indexing_maps); a strided
// operand (a subview) is fine too.
// CHECK-LABEL: func.func @transposed
// CHECK:         call @kiln_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c1_i32, %c1_i32, %c1_i32)
// CHECK:         call @kiln_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c1_i32, %c0_i32, %c1_i32)
// CHECK:         memref.cast %{{.*}} : memref<4x3xf32, strided<[10, 1], offset: 2>> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK:         call @kiln_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c1_i32, %c1_i32)
// CHECK-NOT:     linalg.matmul
// LLVM-LABEL:  llvm.func @transposed
// LLVM-COUNT-3:  llvm.call @kiln_gemm_f32
#ta = affine_map<(d0, d1, d2) -> (d2, d0)>
#tb = affine_map<(d0, d1, d2) -> (d1, d2)>
#a = affine_map<(d0, d1, d2) -> (d0, d2)>
#b = affine_map<(d0, d1, d2) -> (d2, d1)>
#c = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @transposed(%at: memref<3x4xf32>, %bt: memref<5x3xf32>, %b: memref<3x5xf32>, %big: memref<4x10xf32>,
                      %c: memref<4x5xf32>) {
  linalg.matmul indexing_maps = [#ta, #tb, #c] ins(%at, %bt : memref<3x4xf32>, memref<5x3xf32>) outs(%c : memref<4x5xf32>)
  linalg.matmul indexing_maps = [#ta, #b, #c] ins(%at, %b : memref<3x4xf32>, memref<3x5xf32>) outs(%c : memref<4x5xf32>)
  %a = memref.subview %big[0, 2] [4, 3] [1, 1] : memref<4x10xf32> to memref<4x3xf32, strided<[10, 1], offset: 2>>
  linalg.matmul indexing_maps = [#a, #tb, #c] ins(%a, %bt : memref<4x3xf32, strided<[10, 1], offset: 2>>, memref<5x3xf32>) outs(%c : memref<4x5xf32>)
  return
}

// -----

// Batched, plain and with B transposed; f64.
// CHECK-LABEL: func.func private @kiln_batch_gemm_f32(memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, i32, i32, i32)
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func private @kiln_gemm_f64(memref<?x?xf64, strided<[?, ?], offset: ?>>, memref<?x?xf64, strided<[?, ?], offset: ?>>, memref<?x?xf64, strided<[?, ?], offset: ?>>, i32, i32, i32)
// CHECK-LABEL: func.func @batched
// CHECK:         call @kiln_batch_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c0_i32, %c1_i32)
// CHECK:         call @kiln_batch_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c1_i32, %c1_i32)
// CHECK:         call @kiln_gemm_f64(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c0_i32, %c1_i32)
// CHECK-NOT:     linalg.batch_matmul
// LLVM-LABEL:  llvm.func @batched
// LLVM-COUNT-2:  llvm.call @kiln_batch_gemm_f32
// LLVM:          llvm.call @kiln_gemm_f64
#bm_a = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
#bm_bt = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>
#bm_c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @batched(%a: memref<6x4x5xf32>, %b: memref<6x5x3xf32>, %bt: memref<6x3x5xf32>, %c: memref<6x4x3xf32>,
                   %x: memref<2x2xf64>, %y: memref<2x2xf64>) {
  linalg.batch_matmul ins(%a, %b : memref<6x4x5xf32>, memref<6x5x3xf32>) outs(%c : memref<6x4x3xf32>)
  linalg.batch_matmul indexing_maps = [#bm_a, #bm_bt, #bm_c] ins(%a, %bt : memref<6x4x5xf32>, memref<6x3x5xf32>) outs(%c : memref<6x4x3xf32>)
  linalg.matmul ins(%x, %x : memref<2x2xf64>, memref<2x2xf64>) outs(%y : memref<2x2xf64>)
  return
}

// -----

// Left to the loops: integers, mixed element types, a broadcast operand, tensors.
// CHECK-LABEL: func.func @unsupported
// CHECK-NOT:     call @kiln_
// CHECK-COUNT-3: linalg.matmul
// CHECK:         linalg.matmul {{.*}} -> tensor<2x2xf32>
// CHECK-NOT:     call @kiln_
#bcast = affine_map<(d0, d1, d2) -> (d2)>
#b = affine_map<(d0, d1, d2) -> (d2, d1)>
#c = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @unsupported(%i: memref<2x2xi32>, %ci: memref<2x2xi32>, %h: memref<2x2xf16>, %f: memref<2x2xf32>,
                       %v: memref<2xf32>, %t: tensor<2x2xf32>) -> tensor<2x2xf32> {
  linalg.matmul ins(%i, %i : memref<2x2xi32>, memref<2x2xi32>) outs(%ci : memref<2x2xi32>)
  linalg.matmul ins(%h, %h : memref<2x2xf16>, memref<2x2xf16>) outs(%f : memref<2x2xf32>)
  linalg.matmul indexing_maps = [#bcast, #b, #c] ins(%v, %f : memref<2xf32>, memref<2x2xf32>) outs(%f : memref<2x2xf32>)
  %r = linalg.matmul ins(%t, %t : tensor<2x2xf32>, tensor<2x2xf32>) outs(%t : tensor<2x2xf32>) -> tensor<2x2xf32>
  return %r : tensor<2x2xf32>
}

// -----

// C just filled with zeros: the fill is removed and BLAS overwrites C (accumulate 0).
// A fill with another value, or a use of C in between, keeps the fill.
// CHECK-LABEL: func.func @overwrite
// CHECK-NOT:     linalg.fill
// CHECK:         call @kiln_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c0_i32, %c0_i32)
// CHECK-LABEL: func.func @keep_fill
// CHECK:         linalg.fill ins(%{{.*}} : f32)
// CHECK:         call @kiln_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c0_i32, %c1_i32)
// CHECK:         linalg.fill
// CHECK:         memref.copy
// CHECK:         call @kiln_gemm_f32(%{{.*}}, %{{.*}}, %{{.*}}, %c0_i32, %c0_i32, %c1_i32)
func.func @overwrite(%a: memref<4x3xf32>, %b: memref<3x5xf32>, %c: memref<4x5xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x5xf32>)
  linalg.matmul ins(%a, %b : memref<4x3xf32>, memref<3x5xf32>) outs(%c : memref<4x5xf32>)
  return
}
func.func @keep_fill(%a: memref<4x3xf32>, %b: memref<3x5xf32>, %c: memref<4x5xf32>, %d: memref<4x5xf32>) {
  %one = arith.constant 1.0 : f32
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%one : f32) outs(%c : memref<4x5xf32>)
  linalg.matmul ins(%a, %b : memref<4x3xf32>, memref<3x5xf32>) outs(%c : memref<4x5xf32>)
  linalg.fill ins(%zero : f32) outs(%d : memref<4x5xf32>)
  memref.copy %c, %d : memref<4x5xf32> to memref<4x5xf32>
  linalg.matmul ins(%a, %b : memref<4x3xf32>, memref<3x5xf32>) outs(%d : memref<4x5xf32>)
  return
}
