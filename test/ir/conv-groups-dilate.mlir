// RUN: kiln-opt %s -split-input-file -verify-diagnostics | FileCheck %s
// conv2d's dilate and groups: printed only where they are not 1 (a plain
// convolution's IR is unchanged), and checked by the verifiers.

// CHECK-LABEL: func.func @defaults_elided
// CHECK: kiln.conv2d %{{.*}}, %{{.*}} {pad = array<i64: 1, 1>, stride = array<i64: 1, 1>} :
func.func @defaults_elided(%x: tensor<2x4x9x9xf32>, %w: tensor<6x4x3x3xf32>) -> tensor<2x6x9x9xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>, dilate = array<i64: 1, 1>, groups = 1} : tensor<2x4x9x9xf32>, tensor<6x4x3x3xf32> -> tensor<2x6x9x9xf32>
  return %0 : tensor<2x6x9x9xf32>
}

// -----

// Dilated extent 2*(3-1)+1 = 5: (9 + 2 - 5) / 2 + 1 = 4; W's in-channels are 4 / 2.
// CHECK-LABEL: func.func @grouped_dilated
// CHECK: kiln.conv2d %{{.*}}, %{{.*}} {dilate = array<i64: 2, 2>, groups = 2 : i64, pad = array<i64: 1, 1>, stride = array<i64: 2, 2>}
// CHECK: kiln.conv2d_grad_input %{{.*}}, %{{.*}} {dilate = array<i64: 2, 2>, groups = 2 : i64,
// CHECK: kiln.conv2d_grad_filter %{{.*}}, %{{.*}} {dilate = array<i64: 2, 2>, groups = 2 : i64,
func.func @grouped_dilated(%x: tensor<2x4x9x9xf32>, %w: tensor<6x2x3x3xf32>) -> (tensor<2x4x9x9xf32>, tensor<6x2x3x3xf32>) {
  %y = kiln.conv2d %x, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<2x4x9x9xf32>, tensor<6x2x3x3xf32> -> tensor<2x6x4x4xf32>
  %gx = kiln.conv2d_grad_input %y, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<2x6x4x4xf32>, tensor<6x2x3x3xf32> -> tensor<2x4x9x9xf32>
  %gw = kiln.conv2d_grad_filter %x, %y {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<2x4x9x9xf32>, tensor<2x6x4x4xf32> -> tensor<6x2x3x3xf32>
  return %gx, %gw : tensor<2x4x9x9xf32>, tensor<6x2x3x3xf32>
}

// -----

func.func @groups_not_dividing_output(%x: tensor<1x4x8x8xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<1x3x6x6xf32> {
  // expected-error @+2 {{conv2d channels (input 4, output 3) not divisible by groups 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, groups = 2} : tensor<1x4x8x8xf32>, tensor<3x2x3x3xf32> -> tensor<1x3x6x6xf32>
  return %0 : tensor<1x3x6x6xf32>
}

// -----

func.func @filter_channels_times_groups(%x: tensor<1x4x8x8xf32>, %w: tensor<4x4x3x3xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+2 {{conv2d channels differ: input 4, filter 4 x groups 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, groups = 2} : tensor<1x4x8x8xf32>, tensor<4x4x3x3xf32> -> tensor<1x4x6x6xf32>
  return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @dilate_zero(%gy: tensor<1x4x6x6xf32>, %w: tensor<4x3x3x3xf32>) -> tensor<1x3x8x8xf32> {
  // expected-error @+1 {{dilate entries must be >= 1, got 0}}
  %0 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, dilate = array<i64: 0, 1>} : tensor<1x4x6x6xf32>, tensor<4x3x3x3xf32> -> tensor<1x3x8x8xf32>
  return %0 : tensor<1x3x8x8xf32>
}

// -----

// With dilate 2 the 3x3 filter spans 5: an 8x8 input gives a 4x4 gy, not 6x6.
func.func @grad_filter_dilated_shape(%x: tensor<1x3x8x8xf32>, %gy: tensor<1x4x6x6xf32>) -> tensor<4x3x3x3xf32> {
  // expected-error @+1 {{conv2d output shape (1, 4, 6, 6) expected (1, 4, 4, 4)}}
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, dilate = array<i64: 2, 2>} : tensor<1x3x8x8xf32>, tensor<1x4x6x6xf32> -> tensor<4x3x3x3xf32>
  return %0 : tensor<4x3x3x3xf32>
}

// -----

func.func @groups_zero(%x: tensor<1x3x8x8xf32>, %gy: tensor<1x4x6x6xf32>) -> tensor<4x3x3x3xf32> {
  // expected-error @+1 {{conv2d groups must be >= 1, got 0}}
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>, groups = 0} : tensor<1x3x8x8xf32>, tensor<1x4x6x6xf32> -> tensor<4x3x3x3xf32>
  return %0 : tensor<4x3x3x3xf32>
}
