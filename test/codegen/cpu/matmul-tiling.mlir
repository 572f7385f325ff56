// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=false gemm-blas=false" | FileCheck %s --check-prefix=LLVM

// 512^3: 64x256 output blocks (scf.forall), a 256-deep k panel, 8x32 register
// tiles whose accumulator is carried across the k loop as a vector<8x32xf32>,
// updated by eight 32-wide FMAs per k step.
// CHECK-LABEL: func.func @square
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (512, 512) step (64, 256)
// CHECK:           scf.for %{{.*}} = %c0 to %c512 step %c256
// CHECK:             scf.for %{{.*}} = %c0 to %c64 step %c8
// CHECK:               scf.for %{{.*}} = %c0 to %c256 step %c32
// CHECK:                 vector.transfer_read {{.*}} : tensor<8x32xf32>, vector<8x32xf32>
// CHECK:                 scf.for %{{.*}} = %c0 to %c256 step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK-COUNT-8:           vector.fma {{.*}} : vector<32xf32>
// CHECK:                   scf.yield {{.*}} : vector<8x32xf32>
// CHECK:                 vector.transfer_write {{.*}} : vector<8x32xf32>, tensor<8x32xf32>
// CHECK-NOT:     linalg.matmul
// LLVM-LABEL:  llvm.func @square
// LLVM-NOT:      kiln_gemm
// LLVM:          llvm.intr.fmuladd({{.*}}) : (vector<32xf32>, vector<32xf32>, vector<32xf32>) -> vector<32xf32>
func.func @square(%a: tensor<512x512xf32>, %b: tensor<512x512xf32>) -> tensor<512x512xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<512x512xf32>
  %c = linalg.fill ins(%z : f32) outs(%e : tensor<512x512xf32>) -> tensor<512x512xf32>
  %r = linalg.matmul ins(%a, %b : tensor<512x512xf32>, tensor<512x512xf32>) outs(%c : tensor<512x512xf32>) -> tensor<512x512xf32>
  return %r : tensor<512x512xf32>
}

// -----

// Sizes that are not multiples of the preferred tiles (an MNIST layer, 784 -> 10):
// the tiles divide them (no partial tiles), N = 10 is one 10-wide register tile.
// CHECK-LABEL: func.func @odd
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (64, 10) step (64, 10)
// CHECK:           scf.for %{{.*}} = %c0 to %c784 step %c196
// CHECK:             scf.for %{{.*}} = %c0 to %c64 step %c8
// CHECK:               scf.for %{{.*}} = %c0 to %c196 step %c1 iter_args({{.*}}) -> (vector<8x10xf32>)
// CHECK-COUNT-8:         vector.fma {{.*}} : vector<10xf32>
// CHECK-NOT:     linalg.matmul
func.func @odd(%a: tensor<64x784xf32>, %b: tensor<784x10xf32>, %c: tensor<64x10xf32>) -> tensor<64x10xf32> {
  %r = linalg.matmul ins(%a, %b : tensor<64x784xf32>, tensor<784x10xf32>) outs(%c : tensor<64x10xf32>) -> tensor<64x10xf32>
  return %r : tensor<64x10xf32>
}

// -----

// A batched matmul: the batch dim is one more forall dim, tiled by 1.
// CHECK-LABEL: func.func @batched
// CHECK:         scf.forall ({{.*}}) = (0, 0, 0) to (4, 1000, 16) step (1, 40, 16)
// CHECK:           vector.fma {{.*}} : vector<16xf64>
// CHECK-NOT:     linalg.batch_matmul
func.func @batched(%a: tensor<4x1000x24xf64>, %b: tensor<4x24x16xf64>, %c: tensor<4x1000x16xf64>) -> tensor<4x1000x16xf64> {
  %r = linalg.batch_matmul ins(%a, %b : tensor<4x1000x24xf64>, tensor<4x24x16xf64>) outs(%c : tensor<4x1000x16xf64>) -> tensor<4x1000x16xf64>
  return %r : tensor<4x1000x16xf64>
}

// -----

// Dynamic shapes are left to the plain loops.
// CHECK-LABEL: func.func @dynamic
// CHECK:         linalg.matmul
// CHECK-NOT:     scf.forall
func.func @dynamic(%a: tensor<?x?xf32>, %b: tensor<?x?xf32>, %c: tensor<?x?xf32>) -> tensor<?x?xf32> {
  %r = linalg.matmul ins(%a, %b : tensor<?x?xf32>, tensor<?x?xf32>) outs(%c : tensor<?x?xf32>) -> tensor<?x?xf32>
  return %r : tensor<?x?xf32>
}
