// A static 2-d transpose (the generated GEMM's copy of a B read across its rows) becomes
// squares of one vector register's lanes, each a register transpose: 16x16 f32 with
// AVX-512 (the unpack/shuffle network), 8x8 f32 with AVX2 (shuffles and blends), 8x8
// f64 with AVX-512 (one shuffle). Ragged edges stay a linalg.transpose (loops later).
// RUN: kiln-opt %s -split-input-file -kiln-vectorize-transposes="vector-bits=512" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-vectorize-transposes="vector-bits=256" | FileCheck %s --check-prefix=AVX2

// CHECK-LABEL: func.func @tiles
// CHECK:         scf.for %{{.*}} = %c0 to %c48 step %c16
// CHECK:           scf.for %{{.*}} = %c0 to %c32 step %c16
// CHECK:             %[[R:.*]] = vector.transfer_read %{{.*}} : tensor<16x16xf32>, vector<16x16xf32>
// CHECK-COUNT-64:    vector.shuffle {{.*}} : vector<16xf32>, vector<16xf32>
// CHECK:             vector.transfer_write %{{.*}} : vector<16x16xf32>, tensor<16x16xf32>
// CHECK-NOT:     linalg.transpose
// CHECK:         return
// AVX2-LABEL: func.func @tiles
// AVX2:         scf.for %{{.*}} step %c8
// AVX2:           vector.transfer_read %{{.*}} : tensor<8x8xf32>, vector<8x8xf32>
// AVX2:           vector.shuffle {{.*}} : vector<8xf32>, vector<8xf32>
// AVX2:           llvm.inline_asm {{.*}}"vblendps
// AVX2:           vector.transfer_write %{{.*}} : vector<8x8xf32>, tensor<8x8xf32>
// AVX2-NOT:     linalg.transpose
func.func @tiles(%a: tensor<32x48xf32>) -> tensor<48x32xf32> {
  %e = tensor.empty() : tensor<48x32xf32>
  %t = linalg.transpose ins(%a : tensor<32x48xf32>) outs(%e : tensor<48x32xf32>) permutation = [1, 0]
  return %t : tensor<48x32xf32>
}

// -----

// 20 rows: one full 16-row square, then a ragged one of 4 rows left to loops.
// CHECK-LABEL: func.func @ragged
// AVX2-LABEL: func.func @ragged
// CHECK:         %[[ROWS:.*]] = affine.min
// CHECK:         linalg.transpose ins(%{{.*}} : tensor<?x16xf32>) outs(%{{.*}} : tensor<16x?xf32>)
func.func @ragged(%a: tensor<20x16xf32>) -> tensor<16x20xf32> {
  %e = tensor.empty() : tensor<16x20xf32>
  %t = linalg.transpose ins(%a : tensor<20x16xf32>) outs(%e : tensor<16x20xf32>) permutation = [1, 0]
  return %t : tensor<16x20xf32>
}

// -----

// CHECK-LABEL: func.func @f64
// CHECK:         vector.transfer_read %{{.*}} : tensor<8x8xf64>, vector<8x8xf64>
// CHECK:         vector.shuffle {{.*}} : vector<64xf64>, vector<64xf64>
// CHECK-NOT:     linalg.transpose
func.func @f64(%a: tensor<16x16xf64>) -> tensor<16x16xf64> {
  %e = tensor.empty() : tensor<16x16xf64>
  %t = linalg.transpose ins(%a : tensor<16x16xf64>) outs(%e : tensor<16x16xf64>) permutation = [1, 0]
  return %t : tensor<16x16xf64>
}

// -----

// Narrower than one square: left alone.
// CHECK-LABEL: func.func @narrow
// CHECK-NOT:     vector.transfer_read
// CHECK:         linalg.transpose ins(%{{.*}} : tensor<4x16xf32>)
func.func @narrow(%a: tensor<4x16xf32>) -> tensor<16x4xf32> {
  %e = tensor.empty() : tensor<16x4xf32>
  %t = linalg.transpose ins(%a : tensor<4x16xf32>) outs(%e : tensor<16x4xf32>) permutation = [1, 0]
  return %t : tensor<16x4xf32>
}
