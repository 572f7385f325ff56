// Convolutions as library calls (KILN_GEMM=blas): -kiln-lower-to-linalg's conv-calls
// lowers conv2d and its input gradient to linalg.conv_2d_nchw_fchw and its filter
// gradient to a generic marked kiln.conv2d_grad_filter; -kiln-matmul-to-blas (in
// -kiln-lower-to-llvm) makes them calls of kiln_conv2d_* (runtime/src/conv_kernels.cpp).
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-linalg="conv-calls=true" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-linalg="conv-calls=true" -kiln-lower-to-llvm="parallel=false" | FileCheck %s --check-prefix=CALLS
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-linalg | FileCheck %s --check-prefix=GEMM

// CHECK-LABEL: func.func @conv2d
// CHECK:         %[[P:.*]] = tensor.pad %arg0 low[0, 0, 1, 1] high[0, 0, 1, 1]
// CHECK:         linalg.conv_2d_nchw_fchw {dilations = dense<[1, 2]> : tensor<2xi64>, strides = dense<[2, 1]> : tensor<2xi64>} ins(%[[P]], %arg1 : tensor<2x3x10x10xf32>, tensor<4x3x3x3xf32>) outs(%{{.*}} : tensor<2x4x4x6xf32>)
// CALLS-LABEL:   llvm.func @conv2d
// CALLS:           llvm.call @kiln_conv2d_f32
// CALLS-NOT:       llvm.fmul
// CALLS-LABEL:   llvm.func @_mlir_ciface_conv2d
// GEMM-LABEL:  func.func @conv2d
// GEMM-NOT:      linalg.conv_2d_nchw_fchw
// GEMM:          linalg.batch_matmul
func.func @conv2d(%x: tensor<2x3x8x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<2x4x4x6xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 2, 1>, pad = array<i64: 1, 1>, dilate = array<i64: 1, 2>} : tensor<2x3x8x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x4x4x6xf32>
  return %0 : tensor<2x4x4x6xf32>
}

// -----

// The input gradient: a stride-1 convolution of the dilated gy with the flipped filter.
// CHECK-LABEL: func.func @conv2d_grad_input
// CHECK:         %[[D:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 1, 1] [2, 4, 4, 8] [1, 1, 2, 1]
// CHECK:         %[[F:.*]] = linalg.generic
// CHECK:         linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>} ins(%[[D]], %[[F]] : tensor<2x4x10x10xf32>, tensor<3x4x3x3xf32>)
// CALLS-LABEL:   llvm.func @conv2d_grad_input
// CALLS:           llvm.call @kiln_conv2d_f32
func.func @conv2d_grad_input(%gy: tensor<2x4x4x8xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<2x3x8x8xf32> {
  %0 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 1>, pad = array<i64: 1, 1>} : tensor<2x4x4x8xf32>, tensor<4x3x3x3xf32> -> tensor<2x3x8x8xf32>
  return %0 : tensor<2x3x8x8xf32>
}

// -----

// The filter gradient: one generic over (f, c, i, j | n, y, x), marked with its strides and dilations.
// CHECK-DAG:   #[[$X:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d4, d1, d5 * 2 + d2, d3 + d6)>
// CHECK-DAG:   #[[$GY:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d4, d0, d5, d6)>
// CHECK-LABEL: func.func @conv2d_grad_filter
// CHECK:         linalg.generic {indexing_maps = [#[[$X]], #[[$GY]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]}
// CHECK-SAME:      kiln.conv2d_grad_filter = {dilations = array<i64: 1, 1>, strides = array<i64: 2, 1>}
// CHECK:           arith.mulf
// CHECK:           arith.addf
// CALLS-LABEL:   llvm.func @conv2d_grad_filter
// CALLS:           llvm.call @kiln_conv2d_grad_filter_f32
// CALLS-NOT:       llvm.fmul
// CALLS-LABEL:   llvm.func @_mlir_ciface_conv2d_grad_filter
func.func @conv2d_grad_filter(%x: tensor<2x3x8x8xf32>, %gy: tensor<2x4x4x8xf32>) -> tensor<4x3x3x3xf32> {
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 2, 1>, pad = array<i64: 1, 1>} : tensor<2x3x8x8xf32>, tensor<2x4x4x8xf32> -> tensor<4x3x3x3xf32>
  return %0 : tensor<4x3x3x3xf32>
}

// -----

// Grouped convolutions keep im2col + GEMM (a batch_matmul over the groups).
// CHECK-LABEL: func.func @grouped
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         linalg.batch_matmul
func.func @grouped(%x: tensor<1x4x5x5xf32>, %w: tensor<6x2x3x3xf32>) -> tensor<1x6x3x3xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, groups = 2 : i64} : tensor<1x4x5x5xf32>, tensor<6x2x3x3xf32> -> tensor<1x6x3x3xf32>
  return %0 : tensor<1x6x3x3xf32>
}
