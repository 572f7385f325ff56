// The register tiles come from the target's vector registers (default: the host's);
// these runs name them: AVX-512 (32 x 512 bits; CHECK) and AVX2 (16 x 256 bits; AVX2).
// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls="vector-bits=512 vector-registers=32" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls="vector-bits=256 vector-registers=16" | FileCheck %s --check-prefix=AVX2
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=false gemm-blas=false vector-bits=512 vector-registers=32" | FileCheck %s --check-prefix=LLVM
// The default on AVX-512 (gemm-blas with generate-matmuls): the matmuls this pass takes
// are generated, the others (a dynamic n) stay OpenBLAS calls.
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=false generate-matmuls=true vector-bits=512 vector-registers=32" | FileCheck %s --check-prefix=MIXED

// 512^3: 128x256 output blocks (scf.forall, 16 register rows), a 256-deep k panel,
// 8x32 register tiles whose accumulator is carried across the k loop as a
// vector<8x32xf32>, updated by eight 32-wide FMAs per k step. Each k panel of B
// (256x256) is packed first into 8 strips of 32 columns, each 256 rows of 32
// contiguous elements (a tensor<8x256x32xf32> made once per block, before the k
// loop; a vector row at a time), and the kernel reads its row of B from its strip.
// CHECK-LABEL: func.func @square
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (512, 512) step (128, 256)
// CHECK:           %[[BUF:.*]] = tensor.empty() : tensor<8x256x32xf32>
// CHECK:           scf.for %{{.*}} = %c0 to %c512 step %c256
// CHECK:             %[[PACKED:.*]] = scf.for %[[J:.*]] = %c0 to %c8 step %c1 iter_args(%{{.*}} = %[[BUF]]) -> (tensor<8x256x32xf32>)
// CHECK:               scf.for %[[K:.*]] = %c0 to %c256 step %c1
// CHECK:                 %[[ROW:.*]] = vector.transfer_read {{.*}} : tensor<256x256xf32>, vector<32xf32>
// CHECK:                 vector.transfer_write %[[ROW]], %{{.*}}[%[[J]], %[[K]], %c0] {{.*}} : vector<32xf32>, tensor<8x256x32xf32>
// CHECK:             scf.for %{{.*}} = %c0 to %c128 step %c8
// CHECK:               scf.for %{{.*}} = %c0 to %c256 step %c32
// CHECK:                 vector.transfer_read {{.*}} : tensor<8x32xf32>, vector<8x32xf32>
// CHECK:                 scf.for %{{.*}} = %c0 to %c256 step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK:                   tensor.extract_slice %[[PACKED]][{{.*}}] [1, 1, 32] [1, 1, 1] : tensor<8x256x32xf32> to tensor<1x32xf32>
// CHECK-COUNT-8:           vector.fma {{.*}} : vector<32xf32>
// CHECK:                   scf.yield {{.*}} : vector<8x32xf32>
// CHECK:                 vector.transfer_write {{.*}} : vector<8x32xf32>, tensor<8x32xf32>
// CHECK-NOT:     linalg.matmul
// With AVX2's 16 registers an 8x32 tile would spill (32 accumulators): 6x16 is 12
// accumulators + 2 for B's row + 1 broadcast. 6 does not divide 512, so the row loop
// of each block is peeled: full 6-row tiles, then the rest one row at a time; the six
// row blocks 16-tile ones would need are made nearly equal (5 x 90 + 62 rows, not
// 5 x 96 + 32), so that the threads, which take the blocks in order, get equal work.
// B's strips are 16 wide.
// AVX2-LABEL: func.func @square
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (512, 512) step (90, 256)
// AVX2:           tensor.empty() : tensor<16x256x16xf32>
// AVX2:               scf.for %{{.*}} = %c0 to %c256 step %c16
// AVX2:                 scf.for %{{.*}} = %c0 to %c256 step %c1 iter_args({{.*}}) -> (vector<6x16xf32>)
// AVX2-COUNT-6:           vector.fma {{.*}} : vector<16xf32>
// AVX2:                   scf.yield {{.*}} : vector<6x16xf32>
// AVX2-NOT:     linalg.matmul
// LLVM-LABEL:  llvm.func @square
// LLVM-NOT:      kiln_gemm
// MIXED-LABEL: llvm.func @square
// MIXED-NOT:     kiln_gemm
// MIXED:         llvm.intr.fmuladd({{.*}}) : (vector<32xf32>, vector<32xf32>, vector<32xf32>) -> vector<32xf32>
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
// 10 columns are two 8-lane vectors on AVX2 machines, so 6 rows (peeled from 64).
// AVX2-LABEL: func.func @odd
// AVX2:         scf.for %{{.*}} = %c0 to %c196 step %c1 iter_args({{.*}}) -> (vector<6x10xf32>)
// AVX2-COUNT-6:   vector.fma {{.*}} : vector<10xf32>
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
// MIXED-LABEL: llvm.func @dynamic(
// MIXED:         llvm.call @kiln_gemm_f32
func.func @dynamic(%a: tensor<?x?xf32>, %b: tensor<?x?xf32>, %c: tensor<?x?xf32>) -> tensor<?x?xf32> {
  %r = linalg.matmul ins(%a, %b : tensor<?x?xf32>, tensor<?x?xf32>) outs(%c : tensor<?x?xf32>) -> tensor<?x?xf32>
  return %r : tensor<?x?xf32>
}

// -----

// A dynamic m (the symbolic batch size): 128-row blocks, and in each the
// register loop over rows is peeled: full 8-row tiles are vectorized with the
// accumulator in registers, the last partial tile (fewer than 8 rows) one
// vectorized row at a time.
// CHECK-LABEL: func.func @dynamic_rows
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 32) step (128, 32)
// CHECK:           scf.for %{{.*}} = %c0 to %[[FULL:.*]] step %c8
// CHECK:             scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK-COUNT-8:       vector.fma {{.*}} : vector<32xf32>
// CHECK:           scf.for %{{.*}} = %[[FULL]] to %{{.*}} step %c8
// CHECK:             scf.for
// CHECK:               scf.for %{{.*}} = %c0 to %{{.*}} step %c1
// CHECK:                 vector.fma {{.*}} : vector<32xf32>
// CHECK-NOT:     linalg.matmul
// LLVM-LABEL:  llvm.func @dynamic_rows
// LLVM:          llvm.intr.fmuladd({{.*}}) : (vector<32xf32>, vector<32xf32>, vector<32xf32>) -> vector<32xf32>
func.func @dynamic_rows(%a: tensor<?x64xf32>, %b: tensor<64x32xf32>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %a, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%m) : tensor<?x32xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %r = linalg.matmul ins(%a, %b : tensor<?x64xf32>, tensor<64x32xf32>) outs(%f : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// -----

// A dynamic k (a weight gradient over the batch): k panels of at most 256 rows, the
// register kernel's k loop runs to the panel's run-time size. B's panel, read by the
// block's 8 register rows, is packed into a buffer of the panel's static bound; A is read
// in place (a block one register tile wide reads its A panel once).
// CHECK-LABEL: func.func @dynamic_depth
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (64, 32) step (64, 32)
// CHECK:           tensor.empty() : tensor<1x256x32xf32>
// CHECK-NOT:       tensor<{{.*}}x256x8xf32>
// CHECK:           scf.for %{{.*}} = %c0 to %{{.*}} step %c256
// CHECK:           scf.for %{{.*}} = %c0 to %c64 step %c8
// CHECK:             scf.for %{{.*}} = %c0 to %[[K:.*]] step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK-COUNT-8:       vector.fma {{.*}} : vector<32xf32>
// CHECK-NOT:     linalg.matmul
func.func @dynamic_depth(%a: tensor<?x64xf32>, %b: tensor<?x32xf32>) -> tensor<64x32xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x32xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x32xf32>) -> tensor<64x32xf32>
  %r = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>, affine_map<(d0, d1, d2) -> (d2, d1)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
         ins(%a, %b : tensor<?x64xf32>, tensor<?x32xf32>) outs(%f : tensor<64x32xf32>) -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}

// -----

// x W^T (a Linear's forward: B's map is (n, k)): each k panel of B's output block is
// packed into strips as a plain B is, each strip a transposed copy (linalg.transpose of
// 32 rows of W into a 196x32 strip), and the register kernel reads the strips with the
// plain map: contiguous 32-wide loads, no strided scalars.
// CHECK-LABEL: func.func @transposed_b
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (64, 256) step (64, 256)
// CHECK:           tensor.empty() : tensor<8x196x32xf32>
// CHECK:           scf.for %{{.*}} = %c0 to %c784 step %c196
// CHECK:             %[[P:.*]] = scf.for %{{.*}} = %c0 to %c8 step %c1 iter_args({{.*}}) -> (tensor<8x196x32xf32>)
// CHECK:               linalg.transpose ins(%{{.*}} : tensor<32x196xf32>) outs(%{{.*}} : tensor<196x32xf32>) permutation = [1, 0]
// CHECK:             scf.for %{{.*}} = %c0 to %c64 step %c8
// CHECK:                 scf.for %{{.*}} = %c0 to %c196 step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK:                   tensor.extract_slice %[[P]]
// CHECK-COUNT-8:           vector.fma {{.*}} : vector<32xf32>
// CHECK-NOT:     linalg.matmul
func.func @transposed_b(%a: tensor<64x784xf32>, %w: tensor<256x784xf32>, %c: tensor<64x256xf32>) -> tensor<64x256xf32> {
  %r = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
         ins(%a, %w : tensor<64x784xf32>, tensor<256x784xf32>) outs(%c : tensor<64x256xf32>) -> tensor<64x256xf32>
  return %r : tensor<64x256xf32>
}

// -----

// n = 1000 is no multiple of two vectors (32 f32 with AVX-512, 16 with AVX2): the
// matmul is split at 992 into a 992-wide part with two-vector register tiles and an
// 8-wide rest of one (narrower) vector, each inserted into its columns of the result,
// instead of one 25-wide tile for all of it. Blocks of 16 register rows (128 with a
// dynamic m), so B's packed (here transposed) copy is made once per 128 rows.
// CHECK-LABEL: func.func @split_columns
// CHECK:         tensor.extract_slice %{{.*}}[0, 0] [992, 64] [1, 1] : tensor<1000x64xf32> to tensor<992x64xf32>
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 992) step (128, 32)
// CHECK:           scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK:         tensor.insert_slice %{{.*}} into %{{.*}}[0, 0] [%{{.*}}, 992] [1, 1] : tensor<?x992xf32> into tensor<?x1000xf32>
// CHECK:         tensor.extract_slice %{{.*}}[992, 0] [8, 64] [1, 1] : tensor<1000x64xf32> to tensor<8x64xf32>
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 8) step (128, 8)
// CHECK:           scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<8x8xf32>)
// CHECK:         tensor.insert_slice %{{.*}} into %{{.*}}[0, 992] [%{{.*}}, 8] [1, 1] : tensor<?x8xf32> into tensor<?x1000xf32>
// CHECK-NOT:     linalg.matmul
// AVX2-LABEL: func.func @split_columns
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 992) step (96, 32)
// AVX2:               scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<6x16xf32>)
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 8) step (128, 8)
// AVX2:           scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args({{.*}}) -> (vector<8x8xf32>)
// AVX2-NOT:     linalg.matmul
// MIXED-LABEL: llvm.func @split_columns
// MIXED-NOT:     kiln_gemm
// MIXED-COUNT-2: llvm.intr.fmuladd({{.*}}) : (vector<32xf32>, vector<32xf32>, vector<32xf32>) -> vector<32xf32>
// LLVM-LABEL:  llvm.func @split_columns
// LLVM:          llvm.intr.fmuladd({{.*}}) : (vector<32xf32>, vector<32xf32>, vector<32xf32>) -> vector<32xf32>
// LLVM:          llvm.intr.fmuladd({{.*}}) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
func.func @split_columns(%a: tensor<?x64xf32>, %w: tensor<1000x64xf32>) -> tensor<?x1000xf32> {
  %c0 = arith.constant 0 : index
  %m = tensor.dim %a, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%m) : tensor<?x1000xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<?x1000xf32>) -> tensor<?x1000xf32>
  %r = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d1, d2)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
         ins(%a, %w : tensor<?x64xf32>, tensor<1000x64xf32>) outs(%f : tensor<?x1000xf32>) -> tensor<?x1000xf32>
  return %r : tensor<?x1000xf32>
}

// -----

// Three-vector rows are not used (LLVM splits a vector<48xf32> FMA into odd pieces
// and spills): 768 = 24 x 32 gets 8x32 tiles, not 8x48.
// CHECK-LABEL: func.func @no_three_vector_rows
// CHECK:         scf.for %{{.*}} = %c0 to %c128 step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK-NOT:     vector<8x48xf32>
func.func @no_three_vector_rows(%a: tensor<64x128xf32>, %b: tensor<128x768xf32>, %c: tensor<64x768xf32>) -> tensor<64x768xf32> {
  %r = linalg.matmul ins(%a, %b : tensor<64x128xf32>, tensor<128x768xf32>) outs(%c : tensor<64x768xf32>) -> tensor<64x768xf32>
  return %r : tensor<64x768xf32>
}

// -----

// gy^T x (a weight gradient: A read down its columns, k the dynamic batch): k runs in
// panels of at most 256 (the last one partial); each output block packs its k panel of
// A into mr-wide strips (tensor<NI x 256 x mr>, a vector row of mr contiguous elements
// per k step) and of B into nr-wide strips, both buffers of the panel's static bound
// made before the k loop, and the register kernel reads both packed. 992 columns have no
// divisor of four or more register tiles up to 256 (992 = 31 x 32), so they are split
// at 768 first: 256- and 224-wide blocks, each packed A panel read by 8 and 7 tiles.
// CHECK-LABEL: func.func @packed_a
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (48, 768) step (48, 256)
// CHECK:           tensor.empty() : tensor<6x256x8xf32>
// CHECK:           tensor.empty() : tensor<8x256x32xf32>
// CHECK:           scf.for %{{.*}} = %c0 to %[[K:.*]] step %c256
// CHECK:             %[[PA:.*]] = scf.for %{{.*}} = %c0 to %c6 step %c1 iter_args({{.*}}) -> (tensor<6x256x8xf32>)
// CHECK:               vector.transfer_read {{.*}} : tensor<?x48xf32>, vector<8xf32>
// CHECK:             %[[PB:.*]] = scf.for %{{.*}} = %c0 to %c8 step %c1 iter_args({{.*}}) -> (tensor<8x256x32xf32>)
// CHECK:               vector.transfer_read {{.*}} : tensor<?x256xf32>, vector<32xf32>
// CHECK:             scf.for %{{.*}} = %c0 to %c48 step %c8
// CHECK:               scf.for %{{.*}} = %c0 to %c256 step %c32
// CHECK:                 scf.for %{{.*}} = %c0 to %{{.*}} step %c1 iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK:                   tensor.extract_slice %[[PA]][{{.*}}] [1, 1, 8] [1, 1, 1] : tensor<6x256x8xf32> to tensor<1x8xf32>
// CHECK:                   tensor.extract_slice %[[PB]][{{.*}}] [1, 1, 32] [1, 1, 1] : tensor<8x256x32xf32> to tensor<1x32xf32>
// CHECK-COUNT-8:           vector.fma {{.*}} : vector<32xf32>
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (48, 224) step (48, 224)
// CHECK:           tensor.empty() : tensor<6x256x8xf32>
// CHECK:           tensor.empty() : tensor<7x256x32xf32>
// CHECK-NOT:     linalg.matmul
// AVX2's 6x16 tiles divide the 48 rows as well: 6-wide strips of A, 16-wide of B.
// AVX2-LABEL: func.func @packed_a
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (48, 768) step (48, 256)
// AVX2:           tensor.empty() : tensor<8x256x6xf32>
// AVX2:           tensor.empty() : tensor<16x256x16xf32>
// AVX2:                 scf.for %{{.*}} = %c0 to %{{.*}} step %c1 iter_args({{.*}}) -> (vector<6x16xf32>)
// AVX2:                   tensor.extract_slice %{{.*}} [1, 1, 6] [1, 1, 1] : tensor<8x256x6xf32> to tensor<1x6xf32>
// AVX2-COUNT-6:           vector.fma {{.*}} : vector<16xf32>
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (48, 224) step (48, 224)
// AVX2-NOT:     linalg.matmul
// LLVM-LABEL:  llvm.func @packed_a
// LLVM:          llvm.intr.fmuladd({{.*}}) : (vector<32xf32>, vector<32xf32>, vector<32xf32>) -> vector<32xf32>
func.func @packed_a(%a: tensor<?x48xf32>, %b: tensor<?x992xf32>) -> tensor<48x992xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<48x992xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<48x992xf32>) -> tensor<48x992xf32>
  %r = linalg.matmul indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0)>, affine_map<(d0, d1, d2) -> (d2, d1)>,
                                      affine_map<(d0, d1, d2) -> (d0, d1)>]
         ins(%a, %b : tensor<?x48xf32>, tensor<?x992xf32>) outs(%f : tensor<48x992xf32>) -> tensor<48x992xf32>
  return %r : tensor<48x992xf32>
}

// -----

// One k panel (k = 10: gy W of the MLP's last layer): no fill of the output at all. The
// fill is split with the columns (992 + 8), fused into each output block and then into
// each register tile, whose accumulator starts as the zero vector instead of a read of a
// zeroed block. With AVX2 the rows are peeled (128 = 21 x 6 + 2): each block is filled
// right before its k loop, while it is in cache, not the whole output first.
// CHECK-LABEL: func.func @single_panel
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<8x32xf32>
// CHECK-DAG:     %[[ZERO8:.*]] = arith.constant dense<0.000000e+00> : vector<8x8xf32>
// CHECK-NOT:     linalg.fill
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (128, 992) step (128, 32)
// CHECK:           scf.for {{.*}} step %c8
// CHECK:             scf.for {{.*}} to %c10 step %c1 iter_args(%{{.*}} = %[[ZERO]]) -> (vector<8x32xf32>)
// CHECK-COUNT-8:       vector.fma {{.*}} : vector<32xf32>
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (128, 8) step (128, 8)
// CHECK:             scf.for {{.*}} to %c10 step %c1 iter_args(%{{.*}} = %[[ZERO8]]) -> (vector<8x8xf32>)
// CHECK-NOT:     linalg.fill
// CHECK:         return
// AVX2-LABEL: func.func @single_panel
// AVX2-NOT:     linalg.fill {{.*}} -> tensor<128x1000xf32>
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (128, 992) step (66, 32)
// AVX2:           linalg.fill {{.*}} -> tensor<?x32xf32>
// AVX2:           scf.for
// AVX2:         return
func.func @single_panel(%a: tensor<128x10xf32>, %b: tensor<10x1000xf32>) -> tensor<128x1000xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<128x1000xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<128x1000xf32>) -> tensor<128x1000xf32>
  %r = linalg.matmul ins(%a, %b : tensor<128x10xf32>, tensor<10x1000xf32>) outs(%f : tensor<128x1000xf32>) -> tensor<128x1000xf32>
  return %r : tensor<128x1000xf32>
}
