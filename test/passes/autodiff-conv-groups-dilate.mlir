// RUN: kiln-opt %s -split-input-file -kiln-autodiff -canonicalize -cse | FileCheck %s
// The conv2d family's VJPs keep dilate and groups: the gradients of a grouped,
// dilated convolution are the grouped, dilated gradient ops, and those of a
// deconvolution the convolution and the filter gradient.

// CHECK-LABEL: func.func @conv_grads
// CHECK-DAG: kiln.conv2d_grad_input %arg2, %arg1 {dilate = array<i64: 2, 2>, groups = 2 : i64, pad = array<i64: 1, 1>, stride = array<i64: 2, 2>} : tensor<1x6x2x2xf32>, tensor<6x2x3x3xf32> -> tensor<1x4x6x6xf32>
// CHECK-DAG: kiln.conv2d_grad_filter %arg0, %arg2 {dilate = array<i64: 2, 2>, groups = 2 : i64, pad = array<i64: 1, 1>, stride = array<i64: 2, 2>} : tensor<1x4x6x6xf32>, tensor<1x6x2x2xf32> -> tensor<6x2x3x3xf32>
func.func @conv_grads(%x: tensor<1x4x6x6xf32>, %w: tensor<6x2x3x3xf32>, %gy: tensor<1x6x2x2xf32>) -> (tensor<1x4x6x6xf32>, tensor<6x2x3x3xf32>) {
  %y = kiln.conv2d %x, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<1x4x6x6xf32>, tensor<6x2x3x3xf32> -> tensor<1x6x2x2xf32>
  %gx = kiln.grad %y, %gy, %x : tensor<1x6x2x2xf32>, tensor<1x4x6x6xf32>
  %gw = kiln.grad %y, %gy, %w : tensor<1x6x2x2xf32>, tensor<6x2x3x3xf32>
  return %gx, %gw : tensor<1x4x6x6xf32>, tensor<6x2x3x3xf32>
}

// -----

// The deconvolution (conv2d_grad_input) differentiates to a conv2d and a
// conv2d_grad_filter with the same attributes.
// CHECK-LABEL: func.func @deconv_grads
// CHECK-DAG: kiln.conv2d %arg2, %arg1 {dilate = array<i64: 3, 1>, groups = 3 : i64, pad = array<i64: 0, 0>, stride = array<i64: 1, 1>}
// CHECK-DAG: kiln.conv2d_grad_filter %arg2, %arg0 {dilate = array<i64: 3, 1>, groups = 3 : i64, pad = array<i64: 0, 0>, stride = array<i64: 1, 1>}
func.func @deconv_grads(%x: tensor<1x3x4x4xf32>, %w: tensor<3x2x2x2xf32>, %gy: tensor<1x6x7x5xf32>) -> (tensor<1x3x4x4xf32>, tensor<3x2x2x2xf32>) {
  %y = kiln.conv2d_grad_input %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, dilate = array<i64: 3, 1>, groups = 3} : tensor<1x3x4x4xf32>, tensor<3x2x2x2xf32> -> tensor<1x6x7x5xf32>
  %gx = kiln.grad %y, %gy, %x : tensor<1x6x7x5xf32>, tensor<1x3x4x4xf32>
  %gw = kiln.grad %y, %gy, %w : tensor<1x6x7x5xf32>, tensor<3x2x2x2xf32>
  return %gx, %gw : tensor<1x3x4x4xf32>, tensor<3x2x2x2xf32>
}
