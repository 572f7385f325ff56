// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// Dilated and grouped convolutions: the im2col gather steps by stride and
// dilation, and every image and group multiplies as one linalg.batch_matmul over
// reshapes of the im2col matrices and the filter broadcast over the images. A 1x1 filter at stride 1 without padding is
// a GEMM of the images as they are (no im2col).

// cols[n, (c, i, j), y, x] = xpad[n, c, 2y + 2i, 2x + 2j] (stride 2, dilate 2).
// CHECK-DAG: #[[$DIL:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2 * 2, d5 * 2 + d3 * 2)>
// Stride 1, dilate 2 (the input gradient's convolution).
// CHECK-DAG: #[[$DIL1:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 + d2 * 2, d5 + d3 * 2)>
// Per group: the filter flipped and its O and C swapped.
// CHECK-DAG: #[[$FLIP:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d2, d1, -d3 + 2, -d4 + 2)>
// The filter broadcast over the images.
// CHECK-DAG: #[[$BCAST:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>

// CHECK-LABEL: func.func @conv2d_grouped_dilated
// CHECK: %[[P:.*]] = tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK: %[[WIN:.*]] = linalg.generic {indexing_maps = [#[[$DIL]], #{{.*}}]{{.*}} ins(%[[P]] : tensor<2x4x11x11xf32>) outs(%{{.*}} : tensor<2x4x3x3x4x4xf32>)
// CHECK: %[[COLS:.*]] = tensor.collapse_shape %[[WIN]] {{.*}} into tensor<2x36x4x4xf32>
// CHECK: %[[W:.*]] = tensor.collapse_shape %arg1 {{.*}} into tensor<6x18xf32>
// CHECK: linalg.generic {indexing_maps = [#[[$BCAST]], #{{.*}}]{{.*}} ins(%[[W]] : tensor<6x18xf32>) outs(%{{.*}} : tensor<2x6x18xf32>)
// CHECK: %[[MM:.*]] = linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<4x3x18xf32>, tensor<4x18x16xf32>) outs(%{{.*}} : tensor<4x3x16xf32>)
// CHECK: tensor.expand_shape %{{.*}} output_shape [2, 6, 4, 4] : tensor<192xf32> into tensor<2x6x4x4xf32>
// CHECK-NOT: linalg.matmul
// CHECK: return
func.func @conv2d_grouped_dilated(%x: tensor<2x4x9x9xf32>, %w: tensor<6x2x3x3xf32>) -> tensor<2x6x4x4xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<2x4x9x9xf32>, tensor<6x2x3x3xf32> -> tensor<2x6x4x4xf32>
  return %0 : tensor<2x6x4x4xf32>
}

// gy dilated by the stride and padded by 2*(3-1) - 1 = 3, the filter flipped per group
// (6x2 -> 2 groups of 2x3), then a stride-1 dilation-2 grouped convolution.
// CHECK-LABEL: func.func @conv2d_grad_input_grouped_dilated
// CHECK: %[[D:.*]] = tensor.insert_slice %arg0 into %{{.*}}[0, 0, 3, 3] [2, 6, 4, 4] [1, 1, 2, 2] : tensor<2x6x4x4xf32> into tensor<2x6x13x13xf32>
// CHECK: %[[B:.*]] = tensor.expand_shape %arg1 {{\[}}[0, 1], [2], [3], [4]] output_shape [2, 3, 2, 3, 3]
// CHECK: %[[F:.*]] = linalg.generic {indexing_maps = [#[[$FLIP]], #{{.*}}]{{.*}} ins(%[[B]] : tensor<2x3x2x3x3xf32>) outs(%{{.*}} : tensor<2x2x3x3x3xf32>)
// CHECK: tensor.collapse_shape %[[F]] {{.*}} into tensor<4x3x3x3xf32>
// CHECK: linalg.generic {indexing_maps = [#[[$DIL1]], #{{.*}}]{{.*}} ins(%[[D]] : tensor<2x6x13x13xf32>) outs(%{{.*}} : tensor<2x6x3x3x9x9xf32>)
// CHECK: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<4x2x27xf32>, tensor<4x27x81xf32>) outs(%{{.*}} : tensor<4x2x81xf32>)
func.func @conv2d_grad_input_grouped_dilated(%gy: tensor<2x6x4x4xf32>, %w: tensor<6x2x3x3xf32>) -> tensor<2x4x9x9xf32> {
  %0 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<2x6x4x4xf32>, tensor<6x2x3x3xf32> -> tensor<2x4x9x9xf32>
  return %0 : tensor<2x4x9x9xf32>
}

// Per image and group: gy[n][o, y*x] * cols[n]^T over the forward's im2col, summed over the images.
// CHECK-LABEL: func.func @conv2d_grad_filter_grouped_dilated
// CHECK: linalg.generic {indexing_maps = [#[[$DIL]], #{{.*}}]{{.*}} outs(%{{.*}} : tensor<2x4x3x3x4x4xf32>)
// CHECK: %[[GW:.*]] = linalg.batch_matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<4x3x16xf32>, tensor<4x18x16xf32>) outs(%{{.*}} : tensor<4x3x18xf32>)
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}} iterator_types = ["reduction", "parallel", "parallel"]} ins(%{{.*}} : tensor<2x6x18xf32>) outs(%{{.*}} : tensor<6x18xf32>)
// CHECK: tensor.expand_shape %[[SUM]] {{\[}}[0], [1, 2, 3]] output_shape [6, 2, 3, 3]
func.func @conv2d_grad_filter_grouped_dilated(%x: tensor<2x4x9x9xf32>, %gy: tensor<2x6x4x4xf32>) -> tensor<6x2x3x3xf32> {
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<2x4x9x9xf32>, tensor<2x6x4x4xf32> -> tensor<6x2x3x3xf32>
  return %0 : tensor<6x2x3x3xf32>
}

// One image: w[o, c] * x[c, h*w], one linalg.matmul of reshapes, nothing copied.
// CHECK-LABEL: func.func @conv2d_1x1_one_image
// CHECK-NOT: linalg.generic
// CHECK: %[[W:.*]] = tensor.collapse_shape %arg1 {{\[}}[0], [1, 2, 3]] : tensor<4x8x1x1xf32> into tensor<4x8xf32>
// CHECK: %[[X:.*]] = tensor.collapse_shape %arg0 {{\[}}[0, 1], [2, 3]] : tensor<1x8x4x4xf32> into tensor<8x16xf32>
// CHECK-NOT: linalg.generic
// CHECK: %[[MM:.*]] = linalg.matmul ins(%[[W]], %[[X]] : tensor<4x8xf32>, tensor<8x16xf32>) outs(%{{.*}} : tensor<4x16xf32>)
// CHECK-NOT: linalg.generic
// CHECK: %[[Y:.*]] = tensor.expand_shape %[[MM]] {{\[}}[0, 1], [2, 3]] output_shape [1, 4, 4, 4]
// CHECK-NEXT: return %[[Y]]
func.func @conv2d_1x1_one_image(%x: tensor<1x8x4x4xf32>, %w: tensor<4x8x1x1xf32>) -> tensor<1x4x4x4xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x8x4x4xf32>, tensor<4x8x1x1xf32> -> tensor<1x4x4x4xf32>
  return %0 : tensor<1x4x4x4xf32>
}

// A batch of images (here dynamic): the filter broadcast over them and one
// batch_matmul w[o, c] * x[n][c, h*w] straight into NCHW (no im2col, no transposes).
// CHECK-LABEL: func.func @conv2d_1x1_batch
// CHECK: %[[W:.*]] = tensor.collapse_shape %arg1 {{.*}} into tensor<4x8xf32>
// CHECK: %[[WB:.*]] = linalg.generic {indexing_maps = [#[[$BCAST]], #{{.*}}]{{.*}} ins(%[[W]] : tensor<4x8xf32>) outs(%{{.*}} : tensor<?x4x8xf32>)
// CHECK: %[[X:.*]] = tensor.collapse_shape %arg0 {{\[}}[0], [1], [2, 3]] : tensor<?x8x4x4xf32> into tensor<?x8x16xf32>
// CHECK: %[[MM:.*]] = linalg.batch_matmul ins(%[[WB]], %[[X]] : tensor<?x4x8xf32>, tensor<?x8x16xf32>) outs(%{{.*}} : tensor<?x4x16xf32>)
// CHECK-NOT: linalg.generic
// CHECK: tensor.expand_shape %[[MM]] {{\[}}[0], [1], [2, 3]] {{.*}} : tensor<?x4x16xf32> into tensor<?x4x4x4xf32>
func.func @conv2d_1x1_batch(%x: tensor<?x8x4x4xf32>, %w: tensor<4x8x1x1xf32>) -> tensor<?x4x4x4xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<?x8x4x4xf32>, tensor<4x8x1x1xf32> -> tensor<?x4x4x4xf32>
  return %0 : tensor<?x4x4x4xf32>
}

// Its gradients on one image: gx = w^T gy and gw = gy x^T, one linalg.matmul each.
// CHECK-LABEL: func.func @conv2d_1x1_grads
// CHECK-NOT: linalg.generic
// CHECK: linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<4x16xf32>, tensor<8x16xf32>) outs(%{{.*}} : tensor<4x8xf32>)
// CHECK-NOT: linalg.generic
// CHECK: linalg.matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<4x16xf32>) outs(%{{.*}} : tensor<8x16xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return
func.func @conv2d_1x1_grads(%x: tensor<1x8x4x4xf32>, %gy: tensor<1x4x4x4xf32>, %w: tensor<4x8x1x1xf32>) -> (tensor<4x8x1x1xf32>, tensor<1x8x4x4xf32>) {
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x8x4x4xf32>, tensor<1x4x4x4xf32> -> tensor<4x8x1x1xf32>
  %1 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x4x4x4xf32>, tensor<4x8x1x1xf32> -> tensor<1x8x4x4xf32>
  return %0, %1 : tensor<4x8x1x1xf32>, tensor<1x8x4x4xf32>
}
