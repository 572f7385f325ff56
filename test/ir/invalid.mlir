// RUN: kiln-opt %s -split-input-file -verify-diagnostics
// Verifier errors of kiln ops.

// expected-note @+1 {{prior use here}}
func.func @add_mismatch(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{use of value '%b' expects different type than prior uses}}
  %0 = kiln.add %a, %b : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

func.func @matmul_inner(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) -> tensor<2x5xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul inner dimensions differ: 3 vs 4}}
  %0 = kiln.matmul %a, %b : tensor<2x3xf32>, tensor<4x5xf32> -> tensor<2x5xf32>
  return %0 : tensor<2x5xf32>
}

// -----

func.func @matmul_sum_batch_flags(%a: tensor<2x3x4xf32>, %b: tensor<2x3x5xf32>) -> tensor<4x5xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul sum_batch needs operands of one rank > 2, transpose_a and not transpose_b, got ranks 3 and 3}}
  %0 = kiln.matmul %a, %b {sum_batch} : tensor<2x3x4xf32>, tensor<2x3x5xf32> -> tensor<4x5xf32>
  return %0 : tensor<4x5xf32>
}

// -----

func.func @matmul_shared_b_transposed_a(%a: tensor<2x3x4xf32>, %b: tensor<3x5xf32>) -> tensor<2x4x5xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul with a 2-d b shared by a batch of 3-d a takes a untransposed, got transpose_a}}
  %0 = kiln.matmul %a, %b {transpose_a} : tensor<2x3x4xf32>, tensor<3x5xf32> -> tensor<2x4x5xf32>
  return %0 : tensor<2x4x5xf32>
}

// -----

func.func @matmul_wrong_result(%a: tensor<2x3xf32>, %b: tensor<3x5xf32>) -> tensor<2x4xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{inferred type(s) 'tensor<2x5xf32>' are incompatible with return type(s) of operation 'tensor<2x4xf32>'}}
  %0 = kiln.matmul %a, %b : tensor<2x3xf32>, tensor<3x5xf32> -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @broadcast_bad(%x: tensor<3xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{cannot broadcast shape (3,) to (2, 4)}}
  %0 = kiln.broadcast_to %x : tensor<3xf32> -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}

// -----

func.func @reshape_size(%x: tensor<2x3xf32>) -> tensor<7xf32> {
  // expected-error @+1 {{cannot reshape (2, 3) to (7,)}}
  %0 = kiln.reshape %x : tensor<2x3xf32> -> tensor<7xf32>
  return %0 : tensor<7xf32>
}

// -----

func.func @transpose_perm(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{permutation axis 1 repeated}}
  %0 = kiln.transpose %x, [1, 1] : tensor<2x3xf32> -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// -----

func.func @reduce_axis(%x: tensor<2x3xf32>) -> tensor<2xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reduction axis 2 out of range for rank 2}}
  %0 = kiln.reduce_sum %x, [2] : tensor<2x3xf32> -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @bad_element_type(%x: tensor<2xf16>) -> tensor<2xf16> {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit float or 64-bit float or 32-bit signless integer or 64-bit signless integer or 1-bit signless integer values}}
  %0 = kiln.exp %x : tensor<2xf16>
  return %0 : tensor<2xf16>
}

// -----

func.func @conv_channels(%x: tensor<1x3x8x8xf32>, %w: tensor<4x2x3x3xf32>) -> tensor<1x4x6x6xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{conv2d channels differ: input 3, filter 2}}
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x3x8x8xf32>, tensor<4x2x3x3xf32> -> tensor<1x4x6x6xf32>
  return %0 : tensor<1x4x6x6xf32>
}

// -----

func.func @pool_window(%x: tensor<1x1x2x2xf32>) -> tensor<1x1x1x1xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{pooling window larger than padded input}}
  %0 = kiln.pool2d "max", %x {ksize = array<i64: 3, 3>, stride = array<i64: 1, 1>, pad = array<i64: 0, 0>} : tensor<1x1x2x2xf32> -> tensor<1x1x1x1xf32>
  return %0 : tensor<1x1x1x1xf32>
}

// -----

func.func @compare_predicate(%a: tensor<2xf32>) -> tensor<2xi1> {
  // expected-error @+1 {{unknown predicate 'bigger'}}
  %0 = kiln.compare "bigger", %a, %a : tensor<2xf32>
  return %0 : tensor<2xi1>
}

// -----

// expected-note @+1 {{prior use here}}
func.func @grad_seed(%y: tensor<2xf32>, %s: tensor<3xf32>, %x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error @+1 {{use of value '%s' expects different type than prior uses}}
  %0 = kiln.grad %y, %s, %x : tensor<2xf32>, tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @slice_bounds(%x: tensor<4xf32>) -> tensor<2xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice [2, 6) out of bounds for dimension 0 of size 4}}
  %0 = kiln.slice %x {start = array<i64: 2>, limit = array<i64: 6>, step = array<i64: 2>} : tensor<4xf32> -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @dim_size_not_scalar(%x: tensor<?x3xf32>) -> tensor<1xf32> {
  // expected-error @+1 {{result must be 0-d}}
  %0 = kiln.dim_size %x, [0] : tensor<?x3xf32> -> tensor<1xf32>
  return %0 : tensor<1xf32>
}

// -----

func.func @dim_size_axis(%x: tensor<?x3xf32>) -> tensor<f32> {
  // expected-error @+1 {{dim_size axis 2 out of range for rank 2}}
  %0 = kiln.dim_size %x, [2] : tensor<?x3xf32> -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @slice_dynamic_part(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{a dynamic dimension (0) can only be kept whole}}
  %0 = kiln.slice %x {start = array<i64: 1, 0>, limit = array<i64: -9223372036854775808, 3>, step = array<i64: 1, 1>} : tensor<?x3xf32> -> tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}

// -----

func.func @reshape_dynamic_count(%x: tensor<?x4xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{cannot reshape (?, 4) to (8,)}}
  %0 = kiln.reshape %x : tensor<?x4xf32> -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

func.func @check_range_negative_limit(%t: tensor<4xi32>) -> tensor<2xi64> {
  // expected-error @+1 {{limit must be >= 0, got -1}}
  %r, %s = kiln.check_range %t, limit = -1 {function = "f", operand = "t"} : tensor<4xi32>
  return %s : tensor<2xi64>
}

// -----

func.func @check_range_float(%t: tensor<4xf32>) -> tensor<2xi64> {
  // expected-error @+1 {{operand #0 must be ranked tensor of 32-bit signless integer or 64-bit signless integer values}}
  %r, %s = kiln.check_range %t, limit = 3 {function = "f", operand = "t"} : tensor<4xf32>
  return %s : tensor<2xi64>
}

// -----

// kiln.collective_start: the graph must not read a bucket after handing it to the communicator.
func.func @read_after_start(%g: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'kiln.collective_start' op result may only be returned}}
  %b = kiln.collective_start %g, bucket = 0 : tensor<4xf32>
  %c = kiln.add %b, %b : tensor<4xf32>
  return %c : tensor<4xf32>
}

// -----

func.func @not_flat(%g: tensor<2x2xf32>) -> tensor<2x2xf32> {
  // expected-error @+1 {{'kiln.collective_start' op x must be a flat (rank-1) bucket}}
  %b = kiln.collective_start %g, bucket = 0 : tensor<2x2xf32>
  return %b : tensor<2x2xf32>
}
