// RUN: kiln-opt %s -split-input-file -kiln-autodiff -canonicalize -cse -kiln-batch-matmuls -cse | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-autodiff -canonicalize -cse -kiln-batch-matmuls -cse | FileCheck %s --check-prefix=LATERAL
// -kiln-batch-matmuls on a 3-step unrolled recurrence h_t = tanh(x_t W^T + h_{t-1} U^T), loss sum(h_3).

// The input projections x_t W^T become one matmul of W shared by the stacked x_t, sliced back per
// step; the weight gradient dW = sum_t dY_t^T x_t one sum_batch matmul; the lateral products
// h_{t-1} U^T depend on each other's results and stay three, like dU's terms h_{t-1} (one of
// them the argument %h0, two computed from it: all independent of dU's chain, so batched too).
// CHECK-LABEL: func.func @rnn3
// CHECK: %[[X:.*]] = kiln.concat %{{.*}}, %{{.*}}, %{{.*}} {axis = 0 : i64} : tensor<1x?x4xf32>, tensor<1x?x4xf32>, tensor<1x?x4xf32> -> tensor<3x?x4xf32>
// CHECK: %[[P:.*]] = kiln.matmul %[[X]], %arg3 {transpose_b} : tensor<3x?x4xf32>, tensor<8x4xf32> -> tensor<3x?x8xf32>
// CHECK: kiln.slice %[[P]] {limit = array<i64: 1, -9223372036854775808, 8>, start = array<i64: 0, 0, 0>, step = array<i64: 1, 1, 1>} : tensor<3x?x8xf32> -> tensor<1x?x8xf32>
// CHECK-NOT: kiln.matmul %{{.*}}, %arg3 {transpose_b} : tensor<?x4xf32>
// CHECK: %[[HS:.*]] = kiln.concat {{.*}} -> tensor<3x?x8xf32>
// CHECK: %[[GY:.*]] = kiln.concat {{.*}} -> tensor<3x?x8xf32>
// CHECK: %[[DU:.*]] = kiln.matmul %[[GY]], %[[HS]] {sum_batch, transpose_a} : tensor<3x?x8xf32>, tensor<3x?x8xf32> -> tensor<8x8xf32>
// CHECK: %[[DW:.*]] = kiln.matmul %[[GY]], %{{.*}} {sum_batch, transpose_a} : tensor<3x?x8xf32>, tensor<3x?x4xf32> -> tensor<8x4xf32>
// CHECK: return %{{.*}}, %[[DW]], %[[DU]] : tensor<f32>, tensor<8x4xf32>, tensor<8x8xf32>
// LATERAL-LABEL: func.func @rnn3
// LATERAL-COUNT-3: kiln.matmul %{{.*}}, %arg4 {transpose_b} : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
// LATERAL-NOT: kiln.matmul %{{.*}}, %arg4 {transpose_b}
// LATERAL-LABEL: func.func @no_batch_dependent
func.func @rnn3(%x0: tensor<?x4xf32>, %x1: tensor<?x4xf32>, %x2: tensor<?x4xf32>, %w: tensor<8x4xf32>,
                %u: tensor<8x8xf32>, %h0: tensor<?x8xf32>) -> (tensor<f32>, tensor<8x4xf32>, tensor<8x8xf32>) {
  %p0 = kiln.matmul %x0, %w {transpose_b} : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<?x8xf32>
  %l0 = kiln.matmul %h0, %u {transpose_b} : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  %s0 = kiln.add %p0, %l0 : tensor<?x8xf32>
  %h1 = kiln.tanh %s0 : tensor<?x8xf32>
  %p1 = kiln.matmul %x1, %w {transpose_b} : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<?x8xf32>
  %l1 = kiln.matmul %h1, %u {transpose_b} : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  %s1 = kiln.add %p1, %l1 : tensor<?x8xf32>
  %h2 = kiln.tanh %s1 : tensor<?x8xf32>
  %p2 = kiln.matmul %x2, %w {transpose_b} : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<?x8xf32>
  %l2 = kiln.matmul %h2, %u {transpose_b} : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf32>
  %s2 = kiln.add %p2, %l2 : tensor<?x8xf32>
  %h3 = kiln.tanh %s2 : tensor<?x8xf32>
  %loss = kiln.reduce_sum %h3, [0, 1] : tensor<?x8xf32> -> tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %gw = kiln.grad %loss, %one, %w : tensor<f32>, tensor<8x4xf32>
  %gu = kiln.grad %loss, %one, %u : tensor<f32>, tensor<8x8xf32>
  return %loss, %gw, %gu : tensor<f32>, tensor<8x4xf32>, tensor<8x8xf32>
}

// -----

// A chain: each step's input is the previous product, so nothing is batched.
// CHECK-LABEL: func.func @no_batch_dependent
// CHECK-COUNT-3: kiln.matmul %{{.*}}, %arg1 : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
// CHECK-NOT: kiln.concat
func.func @no_batch_dependent(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> tensor<4x8xf32> {
  %y0 = kiln.matmul %x, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %y1 = kiln.matmul %y0, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  %y2 = kiln.matmul %y1, %w : tensor<4x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return %y2 : tensor<4x8xf32>
}

// -----

// Matmuls of 512 static rows are full GEMMs already (max-rows 256): they stay.
// CHECK-LABEL: func.func @no_batch_large
// CHECK-COUNT-2: kiln.matmul %{{.*}}, %arg2 : tensor<512x8xf32>, tensor<8x8xf32> -> tensor<512x8xf32>
// CHECK-NOT: kiln.concat
func.func @no_batch_large(%x0: tensor<512x8xf32>, %x1: tensor<512x8xf32>, %w: tensor<8x8xf32>) -> (tensor<512x8xf32>, tensor<512x8xf32>) {
  %y0 = kiln.matmul %x0, %w : tensor<512x8xf32>, tensor<8x8xf32> -> tensor<512x8xf32>
  %y1 = kiln.matmul %x1, %w : tensor<512x8xf32>, tensor<8x8xf32> -> tensor<512x8xf32>
  return %y0, %y1 : tensor<512x8xf32>, tensor<512x8xf32>
}
