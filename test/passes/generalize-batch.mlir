// RUN: kiln-opt %s -split-input-file -kiln-generalize-batch -verify-diagnostics | FileCheck %s
// -kiln-generalize-batch: the batch size of the marked data arguments becomes
// `?` through each op's batch-dimension rule; the marks are removed.

// A linear layer: the data's rows are the batch, W's 8 rows are not, although
// W has 8 rows too; the bias broadcast takes the batch from the add.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<?x3xf32>, %[[W:.*]]: tensor<8x3xf32>, %[[B:.*]]: tensor<3xf32>) -> tensor<?x3xf32>
// CHECK-NOT: kiln.batch_candidate
// CHECK: kiln.matmul %[[X]], %[[W]] {transpose_b} : tensor<?x3xf32>, tensor<8x3xf32> -> tensor<?x8xf32>
// CHECK: kiln.broadcast_to %[[B]] : tensor<3xf32> -> tensor<?x3xf32>
func.func @linear(%x: tensor<8x3xf32> {kiln.batch_candidate = 2 : i64}, %w: tensor<8x3xf32> {kiln.state},
                  %b: tensor<3xf32> {kiln.state}) -> tensor<8x3xf32> {
  %h = kiln.matmul %x, %w {transpose_b} : tensor<8x3xf32>, tensor<8x3xf32> -> tensor<8x8xf32>
  %s = kiln.reduce_sum %h, [1] : tensor<8x8xf32> -> tensor<8xf32>
  %bb = kiln.broadcast_to %b : tensor<3xf32> -> tensor<8x3xf32>
  %y = kiln.add %x, %bb : tensor<8x3xf32>
  return %y : tensor<8x3xf32>
}

// -----

// A splat constant of the batch's shape becomes a 0-d constant broadcast to it;
// a mean's count is kiln.dim_size, computed at run time.
// CHECK-LABEL: func.func @splat_constant
// CHECK-SAME: -> (tensor<?x4xf32>, tensor<f32>)
// CHECK: %[[C:.*]] = kiln.constant dense<2.000000e+00> : tensor<f32>
// CHECK: %[[S:.*]] = kiln.broadcast_to %[[C]] : tensor<f32> -> tensor<?x4xf32>
// CHECK: kiln.mul %arg0, %[[S]] : tensor<?x4xf32>
// CHECK: kiln.dim_size %arg0, [0] : tensor<?x4xf32> -> tensor<f32>
func.func @splat_constant(%x: tensor<5x4xf32> {kiln.batch_candidate = 2 : i64}) -> (tensor<5x4xf32>, tensor<f32>) {
  %c = kiln.constant dense<2.0> : tensor<5x4xf32>
  %y = kiln.mul %x, %c : tensor<5x4xf32>
  %n = kiln.dim_size %x, [0] : tensor<5x4xf32> -> tensor<f32>
  return %y, %n : tensor<5x4xf32>, tensor<f32>
}

// -----

// A slice that keeps the batch whole gets the dynamic limit; a reshape keeps
// the batch in its place; a reduction over the batch has none.
// CHECK-LABEL: func.func @slice_reshape_reduce
// CHECK: kiln.slice %arg0 {limit = array<i64: -9223372036854775808, 4>, start = array<i64: 0, 2>, step = array<i64: 1, 1>} : tensor<?x6xf32> -> tensor<?x2xf32>
// CHECK: kiln.reshape %{{.*}} : tensor<?x2xf32> -> tensor<?x2x1xf32>
// CHECK: kiln.reduce_sum %{{.*}}, [0] : tensor<?x2x1xf32> -> tensor<2x1xf32>
func.func @slice_reshape_reduce(%x: tensor<6x6xf32> {kiln.batch_candidate = 2 : i64}) -> tensor<2x1xf32> {
  %s = kiln.slice %x {start = array<i64: 0, 2>, limit = array<i64: 6, 4>, step = array<i64: 1, 1>} : tensor<6x6xf32> -> tensor<6x2xf32>
  %r = kiln.reshape %s : tensor<6x2xf32> -> tensor<6x2x1xf32>
  %t = kiln.reduce_sum %r, [0] : tensor<6x2x1xf32> -> tensor<2x1xf32>
  return %t : tensor<2x1xf32>
}

// -----

// The batch size is the leading dimension most data arguments share; state
// (and its gradient) never holds it, even at the same size.
// CHECK-LABEL: func.func @majority_and_state
// CHECK-SAME: (%{{.*}}: tensor<?x2xf32>, %{{.*}}: tensor<?x2xf32>, %{{.*}}: tensor<3x2xf32>, %{{.*}}: tensor<4x2xf32>)
func.func @majority_and_state(%a: tensor<4x2xf32> {kiln.batch_candidate = 2 : i64},
                              %b: tensor<4x2xf32> {kiln.batch_candidate = 2 : i64},
                              %c: tensor<3x2xf32> {kiln.batch_candidate = 2 : i64},
                              %w: tensor<4x2xf32> {kiln.state}) -> tensor<4x2xf32> {
  %y = kiln.add %a, %b : tensor<4x2xf32>
  return %y : tensor<4x2xf32>
}

// -----

// A grad request and a check_range pass the batch through.
// CHECK-LABEL: func.func @grad_and_check
// CHECK: kiln.check_range %arg1, limit = 3 {function = "f", operand = "t"} : tensor<?xi32>
// CHECK: kiln.grad %{{.*}}, %{{.*}}, %arg0 : tensor<f32>, tensor<?x3xf32>
func.func @grad_and_check(%x: tensor<7x3xf32> {kiln.batch_candidate = 2 : i64},
                          %t: tensor<7xi32> {kiln.batch_candidate = 2 : i64}) -> (tensor<7x3xf32>, tensor<7xi32>) {
  %t2, %status = kiln.check_range %t, limit = 3 {function = "f", operand = "t"} : tensor<7xi32>
  %s = kiln.reduce_sum %x, [0, 1] : tensor<7x3xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %g = kiln.grad %s, %one, %x : tensor<f32>, tensor<7x3xf32>
  return %g, %t2 : tensor<7x3xf32>, tensor<7xi32>
}

// -----

// A user-defined function: its regions take the batch by value.
// CHECK-LABEL: func.func @custom
// CHECK: kiln.custom "square" ins(%arg0 : tensor<?x3xf32>) -> tensor<?x3xf32>
// CHECK: ^bb0(%{{.*}}: tensor<?x3xf32>):
// CHECK: ^bb0(%{{.*}}: tensor<?x3xf32>, %{{.*}}: tensor<?x3xf32>, %{{.*}}: tensor<?x3xf32>):
func.func @custom(%x: tensor<5x3xf32> {kiln.batch_candidate = 2 : i64}) -> tensor<5x3xf32> {
  %y = kiln.custom "square" ins(%x : tensor<5x3xf32>) -> tensor<5x3xf32> forward {
  ^bb0(%a: tensor<5x3xf32>):
    %s = kiln.mul %a, %a : tensor<5x3xf32>
    kiln.yield %s : tensor<5x3xf32>
  } backward {
  ^bb0(%a: tensor<5x3xf32>, %r: tensor<5x3xf32>, %g: tensor<5x3xf32>):
    %two = kiln.constant dense<2.0> : tensor<5x3xf32>
    %d = kiln.mul %a, %two : tensor<5x3xf32>
    %e = kiln.mul %g, %d : tensor<5x3xf32>
    kiln.yield %e : tensor<5x3xf32>
  }
  return %y : tensor<5x3xf32>
}

// -----

// Part of the batch sliced: the function keeps its concrete shapes, and says why.
// CHECK-LABEL: func.func @part_of_the_batch
// CHECK-SAME: (%{{.*}}: tensor<5x3xf32>) -> tensor<2x3xf32>
func.func @part_of_the_batch(%x: tensor<5x3xf32> {kiln.batch_candidate = 2 : i64}) -> tensor<2x3xf32> {
  // expected-remark @+1 {{the batch size stays concrete: 'kiln.slice' cannot take a symbolic batch size with operands (B, 3)}}
  %s = kiln.slice %x {start = array<i64: 0, 0>, limit = array<i64: 2, 3>, step = array<i64: 1, 1>} : tensor<5x3xf32> -> tensor<2x3xf32>
  return %s : tensor<2x3xf32>
}

// -----

// A convolution whose channels are the batch stays concrete.
// CHECK-LABEL: func.func @conv_channels
// CHECK-SAME: tensor<2x4x5x5xf32>
func.func @conv_channels(%x: tensor<2x4x5x5xf32> {kiln.batch_candidate = 2 : i64},
                         %w: tensor<3x2x3x3xf32> {kiln.state}) -> tensor<3x3x3x3xf32> {
  %t = kiln.transpose %x, [1, 0, 2, 3] : tensor<2x4x5x5xf32> -> tensor<4x2x5x5xf32>
  // expected-remark @+1 {{'kiln.conv2d' cannot take a symbolic batch size with operands (4, B, 5, 5), (3, 2, 3, 3)}}
  %y = kiln.conv2d %t, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<4x2x5x5xf32>, tensor<3x2x3x3xf32> -> tensor<4x3x3x3xf32>
  %s = kiln.reduce_sum %y, [0] : tensor<4x3x3x3xf32> -> tensor<3x3x3xf32>
  %r = kiln.reshape %s : tensor<3x3x3xf32> -> tensor<3x3x3x1xf32>
  %b = kiln.broadcast_to %r : tensor<3x3x3x1xf32> -> tensor<3x3x3x3xf32>
  return %b : tensor<3x3x3x3xf32>
}

// -----

// Batch size 1 stays concrete (it is also what broadcasting stretches); the marks go.
// CHECK-LABEL: func.func @batch_of_one
// CHECK-SAME: (%{{.*}}: tensor<1x3xf32>) -> tensor<1x3xf32>
// CHECK-NOT: kiln.batch_candidate
func.func @batch_of_one(%x: tensor<1x3xf32> {kiln.batch_candidate = 2 : i64}) -> tensor<1x3xf32> {
  %y = kiln.neg %x : tensor<1x3xf32>
  return %y : tensor<1x3xf32>
}

// -----

// An op without a batch-dimension rule keeps the function concrete.
// CHECK-LABEL: func.func @no_rule
// CHECK-SAME: (%{{.*}}: tensor<4x3xf32>) -> tensor<4x3xf32>
func.func @no_rule(%x: tensor<4x3xf32> {kiln.batch_candidate = 2 : i64}) -> tensor<4x3xf32> {
  // expected-remark @+1 {{the batch size stays concrete: 'kiln.fusion' has no batch-dimension rule (BatchDimOpInterface)}}
  %r = kiln.fusion "elementwise" ins(%x : tensor<4x3xf32>) -> (tensor<4x3xf32>) {
  ^bb0(%a: tensor<4x3xf32>):
    %n = kiln.neg %a : tensor<4x3xf32>
    kiln.yield %n : tensor<4x3xf32>
  }
  return %r : tensor<4x3xf32>
}
