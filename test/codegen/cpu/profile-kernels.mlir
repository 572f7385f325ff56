// RUN: kiln-opt %s -kiln-profile-kernels | FileCheck %s
// KILN_PROFILE: each kernel (a run of ops of one kiln.fusion region, named by
// their locations; an op of no region alone) is wrapped in kiln_profile_begin/end,
// with the bytes its memrefs span and 2 * the iteration space of its matmuls,
// from the run-time batch size where it is dynamic.

// CHECK-DAG: llvm.mlir.global internal constant @kiln_profile_name_{{[0-9]+}}("0:contraction:matmul+add (m.cpp:3)\00")
// CHECK-DAG: llvm.mlir.global internal constant @kiln_profile_name_{{[0-9]+}}("linalg.generic (m.cpp:9)\00")
// CHECK-DAG: func.func private @kiln_profile_begin(!llvm.ptr)
// CHECK-DAG: func.func private @kiln_profile_end(!llvm.ptr, i64, i64)
// CHECK-LABEL: func.func @step
// CHECK:      %[[N:.*]] = llvm.mlir.addressof @kiln_profile_name_
// CHECK-NEXT: call @kiln_profile_begin(%[[N]])
// CHECK-NEXT: linalg.matmul
// CHECK-NEXT: linalg.generic
// CHECK:      memref.dim %arg0
// CHECK:      arith.muli
// CHECK:      call @kiln_profile_end(
// CHECK:      call @kiln_profile_begin(
// CHECK-NEXT: linalg.generic
// CHECK:      call @kiln_profile_end(
// CHECK-NEXT: return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @step(%x: memref<?x3xf32>, %w: memref<3x4xf32>, %y: memref<?x4xf32>, %z: memref<?x4xf32>) {
  linalg.matmul ins(%x, %w : memref<?x3xf32>, memref<3x4xf32>) outs(%y : memref<?x4xf32>) loc(#k0)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%y : memref<?x4xf32>) outs(%y : memref<?x4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %a : f32
    linalg.yield %s : f32
  } loc(#k0)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%y : memref<?x4xf32>) outs(%z : memref<?x4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %e = math.exp %a : f32
    linalg.yield %e : f32
  } loc("m.cpp":9:0)
  return
}
#k0 = loc("kernel 0:contraction:matmul+add (m.cpp:3)"("m.cpp":3:0))

// A generated GEMM (-kiln-tile-matmuls) is an scf.forall over its output blocks that
// states the matmul's depth and output shape: 2 * depth FLOPs per output element, a
// dynamic size being the extent of the loop's non-constant upper bound. Here the loop
// lost its static dimension of one iteration (16 columns in one block) to canonicalization;
// the output shape still counts it.
// CHECK-LABEL: func.func @tiled
// CHECK:       call @kiln_profile_begin(
// CHECK:       scf.forall
// CHECK:       } {kiln.matmul_depth = 7 : i64, kiln.matmul_output = array<i64: -1, 16>}
// CHECK:       %[[TWOK:.*]] = arith.constant 14 : index
// CHECK:       %[[E:.*]] = arith.subi %dim, %c0{{.*}} : index
// CHECK:       %[[W:.*]] = arith.muli %[[TWOK]], %[[E]] : index
// CHECK:       %[[N:.*]] = arith.constant 16 : index
// CHECK:       arith.muli %[[W]], %[[N]] : index
// CHECK:       call @kiln_profile_end(
func.func @tiled(%a: memref<?x7xf32>, %c: memref<?x16xf32>) {
  %c0 = arith.constant 0 : index
  %c0f = arith.constant 0.0 : f32
  %m = memref.dim %c, %c0 : memref<?x16xf32>
  scf.forall (%i) = (0) to (%m) step (8) {
    %s = memref.subview %c[%i, 0] [1, 16] [1, 1] : memref<?x16xf32> to memref<1x16xf32, strided<[16, 1], offset: ?>>
    linalg.fill ins(%c0f : f32) outs(%s : memref<1x16xf32, strided<[16, 1], offset: ?>>)
  } {kiln.matmul_depth = 7 : i64, kiln.matmul_output = array<i64: -1, 16>}
  return
}
