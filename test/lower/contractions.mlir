// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// Matmul and pooling become named linalg ops, convolutions and their gradients
// im2col + one GEMM per image (a linalg.batch_matmul over the images), pooling
// gradients generics.

// CHECK-DAG: #[[$TA:.*]] = affine_map<(d0, d1, d2) -> (d2, d0)>
// CHECK-DAG: #[[$TB:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$C:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// The conv2d im2col below (stride 2, 1): cols[n, (c, i, j), y, x] = xpad[n, c, 2y + i, x + j].
// CHECK-DAG: #[[$WIN:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2, d3 + d5)>
// The filter broadcast over the images (TB's map), and the sum of the filter gradient's per-image products.
// CHECK-DAG: #[[$ID3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-DAG: #[[$BT:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3)>

// CHECK-LABEL: func.func @matmul
// CHECK: %[[Z:.*]] = linalg.fill
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<2x3xf32>, tensor<3x4xf32>) outs(%[[Z]] : tensor<2x4xf32>)
func.func @matmul(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %0 = kiln.matmul %a, %b : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// CHECK-LABEL: func.func @matmul_transposed
// CHECK: linalg.matmul indexing_maps = [#[[$TA]], #[[$TB]], #[[$C]]] ins(%{{.*}}, %{{.*}} : tensor<3x2xf32>, tensor<4x3xf32>)
func.func @matmul_transposed(%a: tensor<3x2xf32>, %b: tensor<4x3xf32>) -> tensor<2x4xf32> {
  %0 = kiln.matmul %a, %b {transpose_a, transpose_b} : tensor<3x2xf32>, tensor<4x3xf32> -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// A 2-d b shared by a batch of a, and the sum over a batch: one linalg.matmul over the rows of
// every matrix (collapsed, the batch's `?` with them).
// CHECK-LABEL: func.func @matmul_shared_b
// CHECK: %[[A:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<3x?x4xf32> into tensor<?x4xf32>
// CHECK: %[[Y:.*]] = linalg.matmul indexing_maps = [{{.*}}, #[[$TB]], #[[$C]]] ins(%[[A]], %arg1 : tensor<?x4xf32>, tensor<8x4xf32>) outs(%{{.*}} : tensor<?x8xf32>)
// CHECK: tensor.expand_shape %[[Y]] {{\[\[}}0, 1], [2]] output_shape [3, %{{.*}}, 8] : tensor<?x8xf32> into tensor<3x?x8xf32>
func.func @matmul_shared_b(%a: tensor<3x?x4xf32>, %w: tensor<8x4xf32>) -> tensor<3x?x8xf32> {
  %0 = kiln.matmul %a, %w {transpose_b} : tensor<3x?x4xf32>, tensor<8x4xf32> -> tensor<3x?x8xf32>
  return %0 : tensor<3x?x8xf32>
}

// CHECK-LABEL: func.func @matmul_sum_batch
// CHECK: %[[A:.*]] = tensor.collapse_shape %arg0 {{\[\[}}0, 1], [2]] : tensor<3x?x8xf32> into tensor<?x8xf32>
// CHECK: %[[B:.*]] = tensor.collapse_shape %arg1 {{\[\[}}0, 1], [2]] : tensor<3x?x4xf32> into tensor<?x4xf32>
// CHECK: linalg.matmul indexing_maps = [#[[$TA]], {{.*}}, #[[$C]]] ins(%[[A]], %[[B]] : tensor<?x8xf32>, tensor<?x4xf32>) outs(%{{.*}} : tensor<8x4xf32>)
func.func @matmul_sum_batch(%gy: tensor<3x?x8xf32>, %x: tensor<3x?x4xf32>) -> tensor<8x4xf32> {
  %0 = kiln.matmul %gy, %x {sum_batch, transpose_a} : tensor<3x?x8xf32>, tensor<3x?x4xf32> -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// CHECK-LABEL: func.func @batch_matmul
// CHECK: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<4x2x3xf32>, tensor<4x3x5xf32>) outs(%{{.*}} : tensor<4x2x5xf32>)
func.func @batch_matmul(%a: tensor<4x2x3xf32>, %b: tensor<4x3x5xf32>) -> tensor<4x2x5xf32> {
  %0 = kiln.matmul %a, %b : tensor<4x2x3xf32>, tensor<4x3x5xf32> -> tensor<4x2x5xf32>
  return %0 : tensor<4x2x5xf32>
}

// Several batch dims are collapsed into one.
// CHECK-LABEL: func.func @batch_matmul_rank4
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0, 1], [2], [3]] : tensor<2x3x4x5xf32> into tensor<6x4x5xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0, 1], [2], [3]] : tensor<2x3x6x5xf32> into tensor<6x6x5xf32>
// CHECK: %[[M:.*]] = linalg.batch_matmul indexing_maps = [{{.*}}] ins({{.*}} : tensor<6x4x5xf32>, tensor<6x6x5xf32>) outs(%{{.*}} : tensor<6x4x6xf32>)
// CHECK: tensor.expand_shape %[[M]] {{\[}}[0, 1], [2], [3]] output_shape [2, 3, 4, 6] : tensor<6x4x6xf32> into tensor<2x3x4x6xf32>
func.func @batch_matmul_rank4(%a: tensor<2x3x4x5xf32>, %b: tensor<2x3x6x5xf32>) -> tensor<2x3x4x6xf32> {
  %0 = kiln.matmul %a, %b {transpose_b} : tensor<2x3x4x5xf32>, tensor<2x3x6x5xf32> -> tensor<2x3x4x6xf32>
  return %0 : tensor<2x3x4x6xf32>
}

// im2col: cols[n, (c, i, j), y, x] = xpad[n, c, 2y + i, x + j], then per image one GEMM
// w[f, c*3*3] * cols[n] (a batch_matmul, the filter broadcast over the images) whose
// results are the NCHW planes: no transpose.
// CHECK-LABEL: func.func @conv2d
// CHECK: %[[P:.*]] = tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[WIN:.*]] = linalg.generic {indexing_maps = [#[[$WIN]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%[[P]] : tensor<2x3x10x10xf32>) outs(%{{.*}} : tensor<2x3x3x3x4x8xf32>)
// CHECK: %[[COLS:.*]] = tensor.collapse_shape %[[WIN]] {{\[}}[0], [1, 2, 3], [4], [5]] : tensor<2x3x3x3x4x8xf32> into tensor<2x27x4x8xf32>
// CHECK: %[[W:.*]] = tensor.collapse_shape %arg1 {{\[}}[0], [1, 2, 3]] : tensor<4x3x3x3xf32> into tensor<4x27xf32>
// CHECK: %[[WS:.*]] = linalg.generic {indexing_maps = [#[[$TB]], #[[$ID3]]], {{.*}} ins(%[[W]] : tensor<4x27xf32>) outs(%{{.*}} : tensor<2x4x27xf32>)
// CHECK: %[[IMAGES:.*]] = tensor.collapse_shape %[[COLS]] {{\[}}[0], [1], [2, 3]] : tensor<2x27x4x8xf32> into tensor<2x27x32xf32>
// CHECK: %[[MM:.*]] = linalg.batch_matmul ins(%[[WS]], %[[IMAGES]] : tensor<2x4x27xf32>, tensor<2x27x32xf32>) outs(%{{.*}} : tensor<2x4x32xf32>)
// CHECK: tensor.expand_shape %[[MM]] {{\[}}[0], [1], [2, 3]] output_shape [2, 4, 4, 8]
// CHECK-NOT: linalg.conv
func.func @conv2d(%x: tensor<2x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<2x4x4x8xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 2, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x4x4x8xf32>
  return %0 : tensor<2x4x4x8xf32>
}

// gy dilated by the stride into a zero buffer, then a stride-1 convolution (im2col + GEMM) with the flipped filter.
// CHECK-LABEL: func.func @conv2d_grad_input
// CHECK: %[[D:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 1, 1] [2, 4, 4, 8] [1, 1, 2, 1] : tensor<2x4x4x8xf32> into tensor<2x4x10x10xf32>
// CHECK: %[[F:.*]] = linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}]
// CHECK-SAME: ins(%{{.*}} : tensor<4x3x3x3xf32>) outs(%{{.*}} : tensor<3x4x3x3xf32>)
// CHECK: %[[WIN:.*]] = linalg.generic {{.*}} ins(%[[D]] : tensor<2x4x10x10xf32>) outs(%{{.*}} : tensor<2x4x3x3x8x8xf32>)
// CHECK: %[[COLS:.*]] = tensor.collapse_shape %[[WIN]] {{.*}} into tensor<2x36x8x8xf32>
// CHECK: %[[FM:.*]] = tensor.collapse_shape %[[F]] {{.*}} into tensor<3x36xf32>
// CHECK: %[[FS:.*]] = linalg.generic {{.*}} ins(%[[FM]] : tensor<3x36xf32>) outs(%{{.*}} : tensor<2x3x36xf32>)
// CHECK: %[[IMAGES:.*]] = tensor.collapse_shape %[[COLS]] {{.*}} into tensor<2x36x64xf32>
// CHECK: linalg.batch_matmul ins(%[[FS]], %[[IMAGES]] : tensor<2x3x36xf32>, tensor<2x36x64xf32>) outs(%{{.*}} : tensor<2x3x64xf32>)
func.func @conv2d_grad_input(%gy: tensor<2x4x4x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<2x3x8x8xf32> {
  %0 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 1>, pad = array<i64: 1, 1>} : tensor<2x4x4x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x3x8x8xf32>
  return %0 : tensor<2x3x8x8xf32>
}

// Per image one GEMM gy[n][f, y*x] * cols[n]^T over the forward's im2col, then the sum over the images.
// CHECK-LABEL: func.func @conv2d_grad_filter
// CHECK: %[[P:.*]] = tensor.pad
// CHECK: %[[WIN:.*]] = linalg.generic {{.*}} ins(%[[P]] : tensor<2x3x10x10xf32>) outs(%{{.*}} : tensor<2x3x3x3x4x8xf32>)
// CHECK: %[[COLS:.*]] = tensor.collapse_shape %[[WIN]] {{.*}} into tensor<2x27x4x8xf32>
// CHECK: %[[GY:.*]] = tensor.collapse_shape %arg1 {{.*}} into tensor<2x4x32xf32>
// CHECK: %[[IMAGES:.*]] = tensor.collapse_shape %[[COLS]] {{.*}} into tensor<2x27x32xf32>
// CHECK: %[[PROD:.*]] = linalg.batch_matmul indexing_maps = [#{{.*}}, #[[$BT]], #{{.*}}] ins(%[[GY]], %[[IMAGES]] : tensor<2x4x32xf32>, tensor<2x27x32xf32>) outs(%{{.*}} : tensor<2x4x27xf32>)
// CHECK: %[[GW:.*]] = linalg.generic {indexing_maps = [#[[$ID3]], #[[$TB]]], iterator_types = ["reduction", "parallel", "parallel"]} ins(%[[PROD]] : tensor<2x4x27xf32>) outs(%{{.*}} : tensor<4x27xf32>)
// CHECK: arith.addf
// CHECK: tensor.expand_shape %[[GW]] {{\[}}[0], [1, 2, 3]] output_shape [4, 3, 3, 3]
func.func @conv2d_grad_filter(%x: tensor<2x3x8x8xf32>, %gy: tensor<2x4x4x8xf32>) -> tensor<4x3x3x3xf32> {
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 2, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<2x4x4x8xf32> -> tensor<4x3x3x3xf32>
  return %0 : tensor<4x3x3x3xf32>
}

// CHECK-LABEL: func.func @max_pool
// CHECK: %[[NEG:.*]] = arith.constant 0xFF800000 : f32
// CHECK: tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK-NEXT: ^bb0
// CHECK-NEXT: tensor.yield %[[NEG]]
// CHECK: linalg.pooling_nchw_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
func.func @max_pool(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %0 = kiln.pool2d "max", %x {ksize = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<1x2x4x4xf32> -> tensor<1x2x2x2xf32>
  return %0 : tensor<1x2x2x2xf32>
}

// CHECK-LABEL: func.func @avg_pool
// CHECK: %[[S:.*]] = linalg.pooling_nchw_sum
// CHECK: linalg.generic {{.*}} ins(%[[S]] : tensor<1x2x2x2xf32>)
// CHECK: arith.constant 4.000000e+00 : f32
// CHECK-NEXT: arith.divf
func.func @avg_pool(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x2x2xf32> {
  %0 = kiln.pool2d "avg", %x {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x2x4x4xf32> -> tensor<1x2x2x2xf32>
  return %0 : tensor<1x2x2x2xf32>
}

// Max: per-window first-maximum index, then each x position gathers from the windows that chose it.
// Overlapping windows (stride 1): the argmax per window, then per x element a
// loop over the taps that cover it.
// CHECK-LABEL: func.func @max_pool_grad
// CHECK: %[[ARG:.*]]:2 = linalg.generic
// CHECK-SAME: outs(%{{.*}}, %{{.*}} : tensor<1x2x3x3xf32>, tensor<1x2x3x3xi32>)
// CHECK: linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]
// CHECK: tensor.extract %{{.*}}[
// CHECK: tensor.extract %[[ARG]]#1[
func.func @max_pool_grad(%x: tensor<1x2x4x4xf32>, %gy: tensor<1x2x3x3xf32>) -> tensor<1x2x4x4xf32> {
  %0 = kiln.pool2d_grad "max", %x, %gy {ksize = array<i64: 2, 2>, stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x2x4x4xf32>, tensor<1x2x3x3xf32> -> tensor<1x2x4x4xf32>
  return %0 : tensor<1x2x4x4xf32>
}

// Windows that tile x (stride = window, no padding): one parallel pass over gx
// viewed as [n, c, oy, ky, ox, kx], gy where the tap is the window's argmax.
// CHECK-LABEL: func.func @max_pool_grad_tiling
// CHECK: %[[ARG:.*]]:2 = linalg.generic
// CHECK: %[[T:.*]] = linalg.generic
// CHECK-SAME: iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]
// CHECK-SAME: ins(%arg1, %[[ARG]]#1 : tensor<1x2x2x2xf32>, tensor<1x2x2x2xi32>) outs(%{{.*}} : tensor<1x2x2x2x2x2xf32>)
// CHECK: arith.cmpi eq
// CHECK: arith.select
// CHECK-NOT: tensor.extract
// CHECK: tensor.collapse_shape %[[T]] {{\[}}[0], [1], [2, 3], [4, 5]] : tensor<1x2x2x2x2x2xf32> into tensor<1x2x4x4xf32>
func.func @max_pool_grad_tiling(%x: tensor<1x2x4x4xf32>, %gy: tensor<1x2x2x2xf32>) -> tensor<1x2x4x4xf32> {
  %0 = kiln.pool2d_grad "max", %x, %gy {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x2x4x4xf32>, tensor<1x2x2x2xf32> -> tensor<1x2x4x4xf32>
  return %0 : tensor<1x2x4x4xf32>
}

// CHECK-LABEL: func.func @avg_pool_grad
// CHECK: linalg.generic
// CHECK: arith.constant 2.500000e-01 : f32
// CHECK-NEXT: arith.mulf
func.func @avg_pool_grad(%x: tensor<1x2x4x4xf32>, %gy: tensor<1x2x2x2xf32>) -> tensor<1x2x4x4xf32> {
  %0 = kiln.pool2d_grad "avg", %x, %gy {ksize = array<i64: 2, 2>, stride = array<i64: 2, 2>, pad = array<i64: 0, 0>} : tensor<1x2x4x4xf32>, tensor<1x2x2x2xf32> -> tensor<1x2x4x4xf32>
  return %0 : tensor<1x2x4x4xf32>
}
