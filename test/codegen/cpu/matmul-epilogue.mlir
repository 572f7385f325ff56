// Epilogue fusion in the generated GEMM: a matmul's elementwise epilogue (the rest of its
// kiln.fusion region) is tiled into the matmul's output blocks, and the matmul and the
// fill of its accumulator are fused into each block, so the block is zeroed, accumulated
// (register tiles, k loop) and finished by the epilogue in one scf.forall: no second loop
// nest over the output. Register tiles from the target: AVX-512 (CHECK) and AVX2 (AVX2);
// fuse-epilogues=false keeps the epilogue a loop nest of its own (OFF; the pipeline's default,
// measured, unless KILN_FUSE_EPILOGUES=1), except that of a weight gradient gy^T x (its SGD
// update: fuse-update-epilogues, on unless KILN_FUSE_EPILOGUES=0; NOUPD turns it off too).
// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls="vector-bits=512 vector-registers=32" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls="vector-bits=256 vector-registers=16" | FileCheck %s --check-prefix=AVX2
// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls="vector-bits=512 vector-registers=32 fuse-epilogues=false" | FileCheck %s --check-prefix=OFF
// RUN: kiln-opt %s -split-input-file -kiln-tile-matmuls="vector-bits=512 vector-registers=32 fuse-epilogues=false fuse-update-epilogues=false" | FileCheck %s --check-prefix=NOUPD
// The whole pipeline with fuse-epilogues: one parallel loop per matmul region, no OpenBLAS call.
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="gemm-blas=false fuse-epilogues=true vector-bits=512 vector-registers=32" | FileCheck %s --check-prefix=LLVM

#mapA = affine_map<(d0, d1, d2) -> (d0, d2)>
#mapBt = affine_map<(d0, d1, d2) -> (d1, d2)>
#mapC = affine_map<(d0, d1, d2) -> (d0, d1)>
#mapAt = affine_map<(d0, d1, d2) -> (d2, d0)>
#mapB = affine_map<(d0, d1, d2) -> (d2, d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
#scalar = affine_map<(d0, d1) -> ()>
// A linear layer's forward (x W^T + b, relu, and the relu mask the backward reads): bias
// row and mask read per block, both outputs written by the block.
// CHECK-LABEL: func.func @linear_relu
// CHECK-NOT:     linalg.matmul
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 256) step (128, 256) shared_outs({{.*}}) -> (tensor<?x256xf32>, tensor<?x256xi1>)
// CHECK:           linalg.fill {{.*}} -> tensor<?x256xf32>
// CHECK:           scf.for {{.*}} iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK-COUNT-8:     vector.fma {{.*}} : vector<32xf32>
// CHECK:           tensor.extract_slice %{{.*}}[%{{.*}}] [256] [1] : tensor<256xf32> to tensor<256xf32>
// CHECK:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x256xf32>, tensor<256xf32>) outs({{.*}} : tensor<?x256xf32>, tensor<?x256xi1>)
// CHECK:             arith.addf
// CHECK:             arith.select
// CHECK:           scf.forall.in_parallel
// CHECK-COUNT-2:     tensor.parallel_insert_slice
// CHECK-NOT:     linalg.generic
// CHECK:         return
// AVX2-LABEL: func.func @linear_relu
// AVX2-NOT:     linalg.matmul
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 256) step (96, 256)
// AVX2:           linalg.fill
// AVX2:           scf.for {{.*}} iter_args({{.*}}) -> (vector<6x16xf32>)
// AVX2-COUNT-6:     vector.fma {{.*}} : vector<16xf32>
// AVX2:           linalg.generic {{.*}} outs({{.*}} : tensor<?x256xf32>, tensor<?x256xi1>)
// AVX2:           scf.forall.in_parallel
// AVX2-NOT:     linalg.generic
// AVX2:         return
// OFF-LABEL: func.func @linear_relu
// OFF:         scf.forall
// OFF:           vector.fma
// OFF:           scf.forall.in_parallel
// OFF:         linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x256xf32>, tensor<256xf32>)
// LLVM-LABEL: llvm.func @linear_relu(
// LLVM-COUNT-1: omp.parallel
// LLVM-NOT:     omp.parallel
// LLVM-NOT:     kiln_gemm
// LLVM:         llvm.return
func.func @linear_relu(%x: tensor<?x64xf32>, %w: tensor<256x64xf32>, %b: tensor<256xf32>) -> (tensor<?x256xf32>, tensor<?x256xi1>) {
  %c0 = arith.constant 0 : index
  %z = arith.constant 0.0 : f32
  %m = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%m) : tensor<?x256xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<?x256xf32>) -> tensor<?x256xf32>
  %y = linalg.matmul indexing_maps = [#mapA, #mapBt, #mapC] ins(%x, %w : tensor<?x64xf32>, tensor<256x64xf32>) outs(%f : tensor<?x256xf32>) -> tensor<?x256xf32>
  %o = tensor.empty(%m) : tensor<?x256xf32>
  %mk = tensor.empty(%m) : tensor<?x256xi1>
  %r:2 = linalg.generic {indexing_maps = [#id, #row, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%y, %b : tensor<?x256xf32>, tensor<256xf32>) outs(%o, %mk : tensor<?x256xf32>, tensor<?x256xi1>) {
  ^bb0(%in: f32, %bias: f32, %out: f32, %out2: i1):
    %s = arith.addf %in, %bias : f32
    %p = arith.cmpf ugt, %s, %z : f32
    %v = arith.select %p, %s, %z : f32
    linalg.yield %v, %p : f32, i1
  } -> (tensor<?x256xf32>, tensor<?x256xi1>)
  return %r#0, %r#1 : tensor<?x256xf32>, tensor<?x256xi1>
}

// -----

#mapA = affine_map<(d0, d1, d2) -> (d0, d2)>
#mapBt = affine_map<(d0, d1, d2) -> (d1, d2)>
#mapC = affine_map<(d0, d1, d2) -> (d0, d1)>
#mapAt = affine_map<(d0, d1, d2) -> (d2, d0)>
#mapB = affine_map<(d0, d1, d2) -> (d2, d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
#scalar = affine_map<(d0, d1) -> ()>
// The backward through a relu: gy W (n = 40, split at the last multiple of two vectors,
// 32 + 8) masked by the forward's relu mask; the epilogue is split alike, each part in
// its matmul's blocks.
// CHECK-LABEL: func.func @relu_grad
// CHECK-NOT:     linalg.matmul
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 32) step (128, 32)
// CHECK:           vector.fma {{.*}} : vector<32xf32>
// CHECK:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x32xi1>, tensor<?x32xf32>)
// CHECK:             arith.select
// CHECK:           scf.forall.in_parallel
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 8) step (128, 8)
// CHECK:           vector.fma {{.*}} : vector<8xf32>
// CHECK:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x8xi1>, tensor<?x8xf32>)
// CHECK:           scf.forall.in_parallel
// CHECK-NOT:     linalg.generic
// CHECK:         return
// AVX2-LABEL: func.func @relu_grad
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 32) step (96, 32)
// AVX2:           scf.for {{.*}} iter_args({{.*}}) -> (vector<6x16xf32>)
// AVX2:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x32xi1>, tensor<?x32xf32>)
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (%{{.*}}, 8) step (128, 8)
// AVX2:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x8xi1>, tensor<?x8xf32>)
// AVX2-NOT:     linalg.generic
// AVX2:         return
// OFF-LABEL: func.func @relu_grad
// OFF:         scf.forall
// OFF:         scf.forall
// OFF:         linalg.generic {{.*}} ins(%{{.*}}, %{{.*}} : tensor<?x40xi1>, tensor<?x40xf32>)
func.func @relu_grad(%gy: tensor<?x10xf32>, %w: tensor<10x40xf32>, %mask: tensor<?x40xi1>) -> tensor<?x40xf32> {
  %c0 = arith.constant 0 : index
  %z = arith.constant 0.0 : f32
  %m = tensor.dim %gy, %c0 : tensor<?x10xf32>
  %e = tensor.empty(%m) : tensor<?x40xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<?x40xf32>) -> tensor<?x40xf32>
  %g = linalg.matmul ins(%gy, %w : tensor<?x10xf32>, tensor<10x40xf32>) outs(%f : tensor<?x40xf32>) -> tensor<?x40xf32>
  %o = tensor.empty(%m) : tensor<?x40xf32>
  %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%mask, %g : tensor<?x40xi1>, tensor<?x40xf32>) outs(%o : tensor<?x40xf32>) {
  ^bb0(%k: i1, %in: f32, %out: f32):
    %v = arith.select %k, %in, %z : f32
    linalg.yield %v : f32
  } -> tensor<?x40xf32>
  return %r : tensor<?x40xf32>
}

// -----

#mapA = affine_map<(d0, d1, d2) -> (d0, d2)>
#mapBt = affine_map<(d0, d1, d2) -> (d1, d2)>
#mapC = affine_map<(d0, d1, d2) -> (d0, d1)>
#mapAt = affine_map<(d0, d1, d2) -> (d2, d0)>
#mapB = affine_map<(d0, d1, d2) -> (d2, d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
#scalar = affine_map<(d0, d1) -> ()>
// A weight gradient gy^T x (k the dynamic batch) whose only use is its SGD update
// W - lr * gW: the parameter block and the learning rate read per block.
// CHECK-LABEL: func.func @sgd
// CHECK-NOT:     linalg.matmul
// CHECK:         scf.forall ({{.*}}) = (0, 0) to (256, 64) step (128, 64)
// CHECK:           scf.for {{.*}} iter_args({{.*}}) -> (vector<8x32xf32>)
// CHECK:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<f32>, tensor<128x64xf32>, tensor<128x64xf32>)
// CHECK:             arith.mulf
// CHECK:             arith.subf
// CHECK:           scf.forall.in_parallel
// CHECK-NOT:     linalg.generic
// CHECK:         return
// AVX2-LABEL: func.func @sgd
// AVX2:         scf.forall ({{.*}}) = (0, 0) to (256, 64) step (90, 64)
// AVX2:           scf.for {{.*}} iter_args({{.*}}) -> (vector<6x16xf32>)
// AVX2:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<f32>, tensor<?x64xf32>, tensor<?x64xf32>)
// AVX2:             arith.subf
// AVX2:           scf.forall.in_parallel
// AVX2-NOT:     linalg.generic
// AVX2:         return
// The weight gradient's update is fused with fuse-epilogues=false too (fuse-update-epilogues):
// no fill of the whole gradient, no pass over it and W after the GEMM.
// OFF-LABEL: func.func @sgd
// OFF-NOT:     linalg.fill {{.*}} -> tensor<256x64xf32>
// OFF:         scf.forall ({{.*}}) = (0, 0) to (256, 64) step (128, 64)
// OFF:           linalg.fill {{.*}} -> tensor<128x64xf32>
// OFF:           scf.for {{.*}} iter_args({{.*}}) -> (vector<8x32xf32>)
// OFF:           linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<f32>, tensor<128x64xf32>, tensor<128x64xf32>)
// OFF:           scf.forall.in_parallel
// OFF-NOT:     linalg.generic
// OFF:         return
// Without the update fused, the gradient's fill is still done per output block (each
// block zeroed right before its first k panel), not over the whole gradient first.
// NOUPD-LABEL: func.func @sgd
// NOUPD-NOT:     linalg.fill {{.*}} -> tensor<256x64xf32>
// NOUPD:         scf.forall
// NOUPD:           linalg.fill {{.*}} -> tensor<128x64xf32>
// NOUPD:           scf.for
// NOUPD:         linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<f32>, tensor<256x64xf32>, tensor<256x64xf32>)
func.func @sgd(%gy: tensor<?x256xf32>, %x: tensor<?x64xf32>, %w: tensor<256x64xf32>, %lr: tensor<f32>) -> tensor<256x64xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<256x64xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<256x64xf32>) -> tensor<256x64xf32>
  %g = linalg.matmul indexing_maps = [#mapAt, #mapB, #mapC] ins(%gy, %x : tensor<?x256xf32>, tensor<?x64xf32>) outs(%f : tensor<256x64xf32>) -> tensor<256x64xf32>
  %o = tensor.empty() : tensor<256x64xf32>
  %r = linalg.generic {indexing_maps = [#scalar, #id, #id, #id], iterator_types = ["parallel", "parallel"]} ins(%lr, %g, %w : tensor<f32>, tensor<256x64xf32>, tensor<256x64xf32>) outs(%o : tensor<256x64xf32>) {
  ^bb0(%l: f32, %in: f32, %p: f32, %out: f32):
    %d = arith.mulf %l, %in : f32
    %v = arith.subf %p, %d : f32
    linalg.yield %v : f32
  } -> tensor<256x64xf32>
  return %r : tensor<256x64xf32>
}

// -----

#mapA = affine_map<(d0, d1, d2) -> (d0, d2)>
#mapBt = affine_map<(d0, d1, d2) -> (d1, d2)>
#mapC = affine_map<(d0, d1, d2) -> (d0, d1)>
#mapAt = affine_map<(d0, d1, d2) -> (d2, d0)>
#mapB = affine_map<(d0, d1, d2) -> (d2, d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
#scalar = affine_map<(d0, d1) -> ()>
// A result with a second use keeps its epilogue a loop nest of its own.
// CHECK-LABEL: func.func @two_uses
// CHECK:         scf.forall
// CHECK:           vector.fma
// CHECK:           scf.forall.in_parallel
// CHECK:         linalg.generic
func.func @two_uses(%a: tensor<64x64xf32>, %b: tensor<64x64xf32>) -> (tensor<64x64xf32>, tensor<64x64xf32>) {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x64xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x64xf32>) -> tensor<64x64xf32>
  %c = linalg.matmul ins(%a, %b : tensor<64x64xf32>, tensor<64x64xf32>) outs(%f : tensor<64x64xf32>) -> tensor<64x64xf32>
  %o = tensor.empty() : tensor<64x64xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%c : tensor<64x64xf32>) outs(%o : tensor<64x64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %v = arith.maximumf %in, %z : f32
    linalg.yield %v : f32
  } -> tensor<64x64xf32>
  return %c, %r : tensor<64x64xf32>, tensor<64x64xf32>
}
