// RUN: kiln-opt %s -split-input-file -kiln-fuse-elementwise | FileCheck %s
// Elementwise producers fuse into their consumers as upstream's
// -linalg-fuse-elementwise-ops does, but a contraction stays a linalg.matmul:
// the reshape between an im2col gather and its GEMM is not folded into the GEMM.

#win = affine_map<(d0, d1, d2, d3) -> (d2, d0, d3 + d1)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @im2col_then_gemm
// CHECK: %[[WIN:.*]] = linalg.generic
// CHECK: %[[COLS:.*]] = tensor.collapse_shape %[[WIN]]
// CHECK: linalg.matmul ins(%{{.*}}, %[[COLS]] : tensor<4x6xf32>, tensor<6x10xf32>)
func.func @im2col_then_gemm(%x: tensor<2x2x7xf32>, %w: tensor<4x6xf32>) -> tensor<4x10xf32> {
  %e = tensor.empty() : tensor<2x3x2x5xf32>
  %windows = linalg.generic {indexing_maps = [#win, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<2x2x7xf32>) outs(%e : tensor<2x3x2x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<2x3x2x5xf32>
  %cols = tensor.collapse_shape %windows [[0, 1], [2, 3]] : tensor<2x3x2x5xf32> into tensor<6x10xf32>
  %zero = arith.constant 0.0 : f32
  %ce = tensor.empty() : tensor<4x10xf32>
  %c = linalg.fill ins(%zero : f32) outs(%ce : tensor<4x10xf32>) -> tensor<4x10xf32>
  %mm = linalg.matmul ins(%w, %cols : tensor<4x6xf32>, tensor<6x10xf32>) outs(%c : tensor<4x10xf32>) -> tensor<4x10xf32>
  return %mm : tensor<4x10xf32>
}

// -----

#id = affine_map<(d0) -> (d0)>
// Two elementwise generics become one.
// CHECK-LABEL: func.func @elementwise_chain
// CHECK: linalg.generic
// CHECK: arith.addf
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic
func.func @elementwise_chain(%a: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<8xf32> {
  %e = tensor.empty() : tensor<8xf32>
  %s = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%a, %b : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %r = arith.addf %x, %y : f32
    linalg.yield %r : f32
  } -> tensor<8xf32>
  %p = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%s, %b : tensor<8xf32>, tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %r = arith.mulf %x, %y : f32
    linalg.yield %r : f32
  } -> tensor<8xf32>
  return %p : tensor<8xf32>
}
