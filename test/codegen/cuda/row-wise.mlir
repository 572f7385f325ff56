// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-emit-cuda -o /dev/null | FileCheck %s
//
// Row-wise regions (every reduction over the same innermost axis, in sequence) are ONE
// CUDA kernel: a block per row (a warp for rows of at most 32), each reduction a block
// reduction through warp shuffles and shared memory, the per-row scalars in registers.
// The graphs are those Chainer's functions trace (gradient_check_test), after autodiff.

// Layer norm (mean -> variance -> normalize * gamma + beta) over rows of 4: ONE kernel,
// one warp per row (block 32); the two means are block reductions (warp shuffles, shared
// memory), the counts n = 4 constants (-kiln-fuse folds static dim_size and 1 / n).
// CHECK-LABEL: CUDA program of @layer_norm: 1 kernels
// CHECK: // launch kiln_0_reduction_reduce_sum_mul_sub_add_sqrt_div: row-reduction, block 32, buffers in 0 1 2 out 3
// CHECK: __global__ void kiln_0_reduction_reduce_sum_mul_sub_add_sqrt_div(
// CHECK: for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
// CHECK-NOT: __global__
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: __global__
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: __global__
// CHECK: out0[(r_0) * 4 + j_0] =
// CHECK: #ifdef KILN_CUDA_EMULATE
func.func @layer_norm(%arg0: tensor<3x4xf64>, %arg1: tensor<4xf64>, %arg2: tensor<4xf64>) -> tensor<3x4xf64> {
  %0 = kiln.constant dense<1.000000e-05> : tensor<3x1xf64>
  %1 = kiln.constant dense<1.000000e+00> : tensor<f64>
  %2 = kiln.reduce_sum %arg0, [1] keepdims : tensor<3x4xf64> -> tensor<3x1xf64>
  %3 = kiln.dim_size %arg0, [1] : tensor<3x4xf64> -> tensor<f64>
  %4 = kiln.div %1, %3 : tensor<f64>
  %5 = kiln.broadcast_to %4 : tensor<f64> -> tensor<3x1xf64>
  %6 = kiln.mul %2, %5 : tensor<3x1xf64>
  %7 = kiln.broadcast_to %6 : tensor<3x1xf64> -> tensor<3x4xf64>
  %8 = kiln.sub %arg0, %7 : tensor<3x4xf64>
  %9 = kiln.mul %8, %8 : tensor<3x4xf64>
  %10 = kiln.reduce_sum %9, [1] keepdims : tensor<3x4xf64> -> tensor<3x1xf64>
  %11 = kiln.dim_size %9, [1] : tensor<3x4xf64> -> tensor<f64>
  %12 = kiln.div %1, %11 : tensor<f64>
  %13 = kiln.broadcast_to %12 : tensor<f64> -> tensor<3x1xf64>
  %14 = kiln.mul %10, %13 : tensor<3x1xf64>
  %15 = kiln.add %14, %0 : tensor<3x1xf64>
  %16 = kiln.sqrt %15 : tensor<3x1xf64>
  %17 = kiln.broadcast_to %16 : tensor<3x1xf64> -> tensor<3x4xf64>
  %18 = kiln.div %8, %17 : tensor<3x4xf64>
  %19 = kiln.reshape %arg1 : tensor<4xf64> -> tensor<1x4xf64>
  %20 = kiln.broadcast_to %19 : tensor<1x4xf64> -> tensor<3x4xf64>
  %21 = kiln.mul %18, %20 : tensor<3x4xf64>
  %22 = kiln.reshape %arg2 : tensor<4xf64> -> tensor<1x4xf64>
  %23 = kiln.broadcast_to %22 : tensor<1x4xf64> -> tensor<3x4xf64>
  %24 = kiln.add %21, %23 : tensor<3x4xf64>
  return %24 : tensor<3x4xf64>
}


// -----

// Layer norm's forward and backward (y, dx): the whole row-wise chain, the two forward
// means and the backward's two row sums, in ONE kernel. The other kernels: the output
// gradient's seed, dgamma / dbeta (sums over the batch) and the loss sum.
// CHECK-LABEL: CUDA program of @layer_norm_grad: 9 kernels
// CHECK: // launch kiln_1_reduction_reduce_sum_mul_sub_add_sqrt_div_neg: row-reduction, block 32, buffers in 0 3 1 2 out 5 6 7 8 9
// CHECK: __global__ void kiln_1_reduction_reduce_sum_mul_sub_add_sqrt_div_neg(
// CHECK: for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
// CHECK-NOT: __global__
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: __global__
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: __global__
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: __global__
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: __global__
// CHECK: out4[(r_0) * 4 + j_0] =
// CHECK: __global__ void kiln_2_reduction_reduce_sum(
func.func @layer_norm_grad(%arg0: tensor<?x4xf64>, %arg1: tensor<4xf64>, %arg2: tensor<4xf64>, %arg3: tensor<?x4xf64>) -> (tensor<?x4xf64>, tensor<4xf64>, tensor<4xf64>, tensor<?x4xf64>, tensor<f64>, tensor<f64>) {
  %0 = kiln.constant dense<5.000000e-01> : tensor<f64>
  %1 = kiln.constant dense<1.000000e-05> : tensor<f64>
  %2 = kiln.constant dense<1.000000e+00> : tensor<f64>
  %3 = kiln.reduce_sum %arg0, [1] keepdims : tensor<?x4xf64> -> tensor<?x1xf64>
  %4 = kiln.dim_size %arg0, [1] : tensor<?x4xf64> -> tensor<f64>
  %5 = kiln.div %2, %4 : tensor<f64>
  %6 = kiln.broadcast_to %5 : tensor<f64> -> tensor<?x1xf64>
  %7 = kiln.mul %3, %6 : tensor<?x1xf64>
  %8 = kiln.broadcast_to %7 : tensor<?x1xf64> -> tensor<?x4xf64>
  %9 = kiln.sub %arg0, %8 : tensor<?x4xf64>
  %10 = kiln.mul %9, %9 : tensor<?x4xf64>
  %11 = kiln.reduce_sum %10, [1] keepdims : tensor<?x4xf64> -> tensor<?x1xf64>
  %12 = kiln.dim_size %10, [1] : tensor<?x4xf64> -> tensor<f64>
  %13 = kiln.div %2, %12 : tensor<f64>
  %14 = kiln.broadcast_to %13 : tensor<f64> -> tensor<?x1xf64>
  %15 = kiln.mul %11, %14 : tensor<?x1xf64>
  %16 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?x1xf64>
  %17 = kiln.add %15, %16 : tensor<?x1xf64>
  %18 = kiln.sqrt %17 : tensor<?x1xf64>
  %19 = kiln.broadcast_to %18 : tensor<?x1xf64> -> tensor<?x4xf64>
  %20 = kiln.div %9, %19 : tensor<?x4xf64>
  %21 = kiln.reshape %arg1 : tensor<4xf64> -> tensor<1x4xf64>
  %22 = kiln.broadcast_to %21 : tensor<1x4xf64> -> tensor<?x4xf64>
  %23 = kiln.mul %20, %22 : tensor<?x4xf64>
  %24 = kiln.reshape %arg2 : tensor<4xf64> -> tensor<1x4xf64>
  %25 = kiln.broadcast_to %24 : tensor<1x4xf64> -> tensor<?x4xf64>
  %26 = kiln.add %23, %25 : tensor<?x4xf64>
  %27 = kiln.mul %26, %arg3 : tensor<?x4xf64>
  %28 = kiln.reduce_sum %27, [0, 1] : tensor<?x4xf64> -> tensor<f64>
  %29 = kiln.reshape %2 : tensor<f64> -> tensor<1x1xf64>
  %30 = kiln.broadcast_to %29 : tensor<1x1xf64> -> tensor<?x4xf64>
  %31 = kiln.mul %30, %arg3 : tensor<?x4xf64>
  %32 = kiln.reduce_sum %31, [0] : tensor<?x4xf64> -> tensor<4xf64>
  %33 = kiln.reshape %32 : tensor<4xf64> -> tensor<1x4xf64>
  %34 = kiln.reshape %33 : tensor<1x4xf64> -> tensor<4xf64>
  %35 = kiln.mul %31, %22 : tensor<?x4xf64>
  %36 = kiln.mul %31, %20 : tensor<?x4xf64>
  %37 = kiln.reduce_sum %36, [0] : tensor<?x4xf64> -> tensor<4xf64>
  %38 = kiln.reshape %37 : tensor<4xf64> -> tensor<1x4xf64>
  %39 = kiln.reshape %38 : tensor<1x4xf64> -> tensor<4xf64>
  %40 = kiln.div %35, %19 : tensor<?x4xf64>
  %41 = kiln.mul %40, %20 : tensor<?x4xf64>
  %42 = kiln.neg %41 : tensor<?x4xf64>
  %43 = kiln.reduce_sum %42, [1] : tensor<?x4xf64> -> tensor<?xf64>
  %44 = kiln.reshape %43 : tensor<?xf64> -> tensor<?x1xf64>
  %45 = kiln.broadcast_to %0 : tensor<f64> -> tensor<?x1xf64>
  %46 = kiln.mul %44, %45 : tensor<?x1xf64>
  %47 = kiln.div %46, %18 : tensor<?x1xf64>
  %48 = kiln.mul %47, %14 : tensor<?x1xf64>
  %49 = kiln.broadcast_to %48 : tensor<?x1xf64> -> tensor<?x4xf64>
  %50 = kiln.mul %49, %9 : tensor<?x4xf64>
  %51 = kiln.add %40, %50 : tensor<?x4xf64>
  %52 = kiln.add %51, %50 : tensor<?x4xf64>
  %53 = kiln.neg %52 : tensor<?x4xf64>
  %54 = kiln.reduce_sum %53, [1] : tensor<?x4xf64> -> tensor<?xf64>
  %55 = kiln.reshape %54 : tensor<?xf64> -> tensor<?x1xf64>
  %56 = kiln.mul %55, %6 : tensor<?x1xf64>
  %57 = kiln.broadcast_to %56 : tensor<?x1xf64> -> tensor<?x4xf64>
  %58 = kiln.add %52, %57 : tensor<?x4xf64>
  return %58, %39, %34, %26, %28, %2 : tensor<?x4xf64>, tensor<4xf64>, tensor<4xf64>, tensor<?x4xf64>, tensor<f64>, tensor<f64>
}


// -----

// softmax_cross_entropy: ONE kernel. The row-wise log_softmax and the label's pick (max ->
// sum(exp) -> picked sum) with the row in registers (rc0: one read of x per element); the
// class ids (kiln.iota) are the inner index; the label's range check and the mean over the
// batch are the grid epilogue: thread 0 of each block sums its rows' losses and valid
// counts and keeps its first bad label, the last block done combines the blocks' partials
// in block order and writes the loss and check_range's status.
// CHECK-LABEL: CUDA program of @softmax_cross_entropy: 1 kernels
// CHECK: // launch [[K:kiln_1_reduction_compare_reduce_max_sub_exp_reduce_sum_log_select_neg_cast_reduce_sum_max_div]]: row-reduction, block 32, buffers in 1 0 out 2 3
// CHECK: KILN_GRID_STATE unsigned int [[K]]_grid_done = 0;
// CHECK: __global__ void [[K]](const double* __restrict__ in0, const int32_t* __restrict__ in1, double* __restrict__ out0, int64_t* __restrict__ out1, long long batch)
// CHECK: if (blockIdx.x >= kiln_blocks) return;
// CHECK: for (long long row = blockIdx.x; row < rows; row += kiln_blocks) {
// CHECK: double rc0[1];
// CHECK: rc0[e] = in0[(r_0) * 3 + j_0];
// CHECK-NOT: in0[
// CHECK: kiln_block_max(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: static_cast<int32_t>(j_0);
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK: if (threadIdx.x == 0) {
// CHECK: grid0 += v{{[0-9]+}};
// CHECK: grid1 += v{{[0-9]+}};
// CHECK: if (first2 < 0 && (v{{[0-9]+}} < 0 || v{{[0-9]+}} >= (3LL)) && v{{[0-9]+}} != (-1LL)) {
// CHECK: __threadfence();
// CHECK: if (atomicAdd(&[[K]]_grid_done, 1u) == kiln_blocks - 1) {
// CHECK: total{{[0-9]+}} += static_cast<volatile double*>([[K]]_grid_0)[b];
// CHECK: out0[0] =
// CHECK: out1[0] = [[FIRST:first[0-9]+]];
// CHECK: out1[1] = [[FIRST]] < 0 ? 0LL : static_cast<long long>(in1[[[FIRST]]]);
// CHECK: [[K]]_grid_done = 0;
// CHECK-NOT: __global__
// CHECK: #ifdef KILN_CUDA_EMULATE
func.func @softmax_cross_entropy(%arg0: tensor<?xi32>, %arg1: tensor<?x3xf64>) -> (tensor<f64>, tensor<2xi64>) {
  %0 = kiln.constant dense<1.000000e+00> : tensor<f64>
  %1 = kiln.constant dense<0.000000e+00> : tensor<f64>
  %2 = kiln.constant dense<-1> : tensor<i32>
  %result, %status = kiln.check_range %arg0, limit = 3, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<?xi32>
  %3 = kiln.broadcast_to %2 : tensor<i32> -> tensor<?xi32>
  %4 = kiln.compare "ne", %result, %3 : tensor<?xi32>
  %5 = kiln.iota dim = 1 : tensor<?x3xi32>
  %6 = kiln.reshape %result : tensor<?xi32> -> tensor<?x1xi32>
  %7 = kiln.broadcast_to %6 : tensor<?x1xi32> -> tensor<?x3xi32>
  %8 = kiln.compare "eq", %5, %7 : tensor<?x3xi32>
  %9 = kiln.reduce_max %arg1, [1] keepdims : tensor<?x3xf64> -> tensor<?x1xf64>
  %10 = kiln.broadcast_to %9 : tensor<?x1xf64> -> tensor<?x3xf64>
  %11 = kiln.sub %arg1, %10 : tensor<?x3xf64>
  %12 = kiln.exp %11 : tensor<?x3xf64>
  %13 = kiln.reduce_sum %12, [1] keepdims : tensor<?x3xf64> -> tensor<?x1xf64>
  %14 = kiln.log %13 : tensor<?x1xf64>
  %15 = kiln.broadcast_to %14 : tensor<?x1xf64> -> tensor<?x3xf64>
  %16 = kiln.sub %11, %15 : tensor<?x3xf64>
  %17 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?x3xf64>
  %18 = kiln.select %8, %16, %17 : tensor<?x3xi1>, tensor<?x3xf64>
  %19 = kiln.reduce_sum %18, [1] : tensor<?x3xf64> -> tensor<?xf64>
  %20 = kiln.neg %19 : tensor<?xf64>
  %21 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?xf64>
  %22 = kiln.select %4, %20, %21 : tensor<?xi1>, tensor<?xf64>
  %23 = kiln.reduce_sum %22, [0] : tensor<?xf64> -> tensor<f64>
  %24 = kiln.cast %4 : tensor<?xi1> -> tensor<?xf64>
  %25 = kiln.reduce_sum %24, [0] : tensor<?xf64> -> tensor<f64>
  %26 = kiln.max %25, %0 : tensor<f64>
  %27 = kiln.div %23, %26 : tensor<f64>
  return %27, %status : tensor<f64>, tensor<2xi64>
}


// -----

// Its forward and backward: the loss's row-wise part, dx (softmax - one-hot, scaled) with
// all five row reductions, the label check and the loss's mean over the batch in ONE kernel.
// The others: the count of valid labels (dx's scale: every row needs it before dx, so it is
// a kernel before the rows), the loss's seed (a sum over no axes) and the constant 1.
// CHECK-LABEL: CUDA program of @softmax_cross_entropy_grad: 4 kernels
// CHECK: // launch kiln_0_op_constant:
// CHECK: // launch kiln_2_reduction_compare_cast_reduce_sum_max_mul_div: row-reduction, block 128
// CHECK: // launch [[K:kiln_3_reduction_compare_reduce_max_sub_exp_reduce_sum_log_select_neg_div_mul_add_reduce_sum_div_mul]]: row-reduction, block 32
// CHECK: // launch kiln_4_reduction_reduce_sum:
// CHECK: __global__ void [[K]](
// CHECK: for (long long row = blockIdx.x; row < rows; row += kiln_blocks) {
// CHECK: rc0[e] = in0[(r_0) * 3 + j_0];
// CHECK-NOT: in0[
// CHECK: kiln_block_max(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: kiln_block_sum(red{{[0-9]+}}, scratch_double);
// CHECK-NOT: in0[
// CHECK: out0[(r_0) * 3 + j_0] =
// CHECK: if (atomicAdd(&[[K]]_grid_done, 1u) == kiln_blocks - 1) {
// CHECK: out1[0] =
// CHECK: __global__ void kiln_4_reduction_reduce_sum(
func.func @softmax_cross_entropy_grad(%arg0: tensor<?xi32>, %arg1: tensor<?x3xf64>, %arg2: tensor<f64>) -> (tensor<?x3xf64>, tensor<f64>, tensor<f64>, tensor<f64>, tensor<2xi64>) {
  %0 = kiln.constant dense<1.000000e+00> : tensor<f64>
  %1 = kiln.constant dense<0.000000e+00> : tensor<f64>
  %2 = kiln.constant dense<-1> : tensor<i32>
  %result, %status = kiln.check_range %arg0, limit = 3, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<?xi32>
  %3 = kiln.broadcast_to %2 : tensor<i32> -> tensor<?xi32>
  %4 = kiln.compare "ne", %result, %3 : tensor<?xi32>
  %5 = kiln.iota dim = 1 : tensor<?x3xi32>
  %6 = kiln.reshape %result : tensor<?xi32> -> tensor<?x1xi32>
  %7 = kiln.broadcast_to %6 : tensor<?x1xi32> -> tensor<?x3xi32>
  %8 = kiln.compare "eq", %5, %7 : tensor<?x3xi32>
  %9 = kiln.reduce_max %arg1, [1] keepdims : tensor<?x3xf64> -> tensor<?x1xf64>
  %10 = kiln.broadcast_to %9 : tensor<?x1xf64> -> tensor<?x3xf64>
  %11 = kiln.sub %arg1, %10 : tensor<?x3xf64>
  %12 = kiln.exp %11 : tensor<?x3xf64>
  %13 = kiln.reduce_sum %12, [1] keepdims : tensor<?x3xf64> -> tensor<?x1xf64>
  %14 = kiln.log %13 : tensor<?x1xf64>
  %15 = kiln.broadcast_to %14 : tensor<?x1xf64> -> tensor<?x3xf64>
  %16 = kiln.sub %11, %15 : tensor<?x3xf64>
  %17 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?x3xf64>
  %18 = kiln.select %8, %16, %17 : tensor<?x3xi1>, tensor<?x3xf64>
  %19 = kiln.reduce_sum %18, [1] : tensor<?x3xf64> -> tensor<?xf64>
  %20 = kiln.neg %19 : tensor<?xf64>
  %21 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?xf64>
  %22 = kiln.select %4, %20, %21 : tensor<?xi1>, tensor<?xf64>
  %23 = kiln.reduce_sum %22, [0] : tensor<?xf64> -> tensor<f64>
  %24 = kiln.cast %4 : tensor<?xi1> -> tensor<?xf64>
  %25 = kiln.reduce_sum %24, [0] : tensor<?xf64> -> tensor<f64>
  %26 = kiln.max %25, %0 : tensor<f64>
  %27 = kiln.div %23, %26 : tensor<f64>
  %28 = kiln.mul %27, %arg2 : tensor<f64>
  %29 = kiln.reduce_sum %28, [] : tensor<f64> -> tensor<f64>
  %30 = kiln.mul %0, %arg2 : tensor<f64>
  %31 = kiln.div %30, %26 : tensor<f64>
  %32 = kiln.reshape %31 : tensor<f64> -> tensor<1xf64>
  %33 = kiln.broadcast_to %32 : tensor<1xf64> -> tensor<?xf64>
  %34 = kiln.select %4, %33, %21 : tensor<?xi1>, tensor<?xf64>
  %35 = kiln.neg %34 : tensor<?xf64>
  %36 = kiln.reshape %35 : tensor<?xf64> -> tensor<?x1xf64>
  %37 = kiln.broadcast_to %36 : tensor<?x1xf64> -> tensor<?x3xf64>
  %38 = kiln.select %8, %37, %17 : tensor<?x3xi1>, tensor<?x3xf64>
  %39 = kiln.neg %38 : tensor<?x3xf64>
  %40 = kiln.reduce_sum %39, [1] : tensor<?x3xf64> -> tensor<?xf64>
  %41 = kiln.reshape %40 : tensor<?xf64> -> tensor<?x1xf64>
  %42 = kiln.div %41, %13 : tensor<?x1xf64>
  %43 = kiln.broadcast_to %42 : tensor<?x1xf64> -> tensor<?x3xf64>
  %44 = kiln.mul %43, %12 : tensor<?x3xf64>
  %45 = kiln.add %38, %44 : tensor<?x3xf64>
  %46 = kiln.neg %45 : tensor<?x3xf64>
  %47 = kiln.reduce_sum %46, [1] : tensor<?x3xf64> -> tensor<?xf64>
  %48 = kiln.reshape %47 : tensor<?xf64> -> tensor<?x1xf64>
  %49 = kiln.broadcast_to %48 : tensor<?x1xf64> -> tensor<?x3xf64>
  %50 = kiln.compare "eq", %arg1, %10 : tensor<?x3xf64>
  %51 = kiln.select %50, %49, %17 : tensor<?x3xi1>, tensor<?x3xf64>
  %52 = kiln.add %45, %51 : tensor<?x3xf64>
  return %52, %27, %29, %0, %status : tensor<?x3xf64>, tensor<f64>, tensor<f64>, tensor<f64>, tensor<2xi64>
}
