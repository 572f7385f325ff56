// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-emit-cuda=generated-gemms=1 -o /dev/null | FileCheck %s
//
// -kiln-emit-cuda prints one CUDA C++ program per function: one extern "C" __global__
// kernel per kiln.fusion region, named after the region, with its launch. (generated-gemms:
// every matmul a generated kernel; library-gemm.mlir has the cuBLASLt steps.)

// A Linear + ReLU layer: one tiled shared-memory GEMM whose epilogue (bias, relu) is
// applied to the accumulators before the only store.
// CHECK-LABEL: CUDA program of @linear_relu: 1 kernels
// CHECK: // launch kiln_0_contraction_matmul_add_relu: gemm, block 16, buffers in 0 1 2 out 3
// CHECK: typedef long long int64_t;
// CHECK: // kernel 0:contraction:matmul+add+relu (gemm)
// CHECK-NEXT: extern "C" __global__ void kiln_0_contraction_matmul_add_relu(const float* __restrict__ in0, const float* __restrict__ in1, const float* __restrict__ in2, float* __restrict__ out0, long long batch) {
// CHECK: __shared__ float As[16][64 + 1];
// CHECK: const long long M = batch, N = 5, K = 3, count = 1;
// CHECK: __syncthreads();
// CHECK: acc[r][c] += ra[r] * rb[c];
// CHECK: if (gm < M && gn < N) {
// CHECK-NEXT: const float [[B:v[0-9]+]] = in2[gn];
// CHECK-NEXT: const float [[S:v[0-9]+]] = (acc[r][c] + [[B]]);
// CHECK-NEXT: const float [[R:v[0-9]+]] = ((!([[S]] <= 0.0f)) ? [[S]] : 0.0f);
// CHECK-NEXT: out0[(bz * M + gm) * N + gn] = [[R]];
// CHECK: #ifdef KILN_CUDA_EMULATE
// CHECK: extern "C" void kiln_0_contraction_matmul_add_relu__emulate(
func.func @linear_relu(%x: tensor<?x3xf32>, %w: tensor<3x5xf32>, %b: tensor<5xf32>) -> tensor<?x5xf32> {
  %0 = kiln.matmul %x, %w : tensor<?x3xf32>, tensor<3x5xf32> -> tensor<?x5xf32>
  %1 = kiln.broadcast_to %b : tensor<5xf32> -> tensor<?x5xf32>
  %2 = kiln.add %0, %1 : tensor<?x5xf32>
  %3 = kiln.relu %2 : tensor<?x5xf32>
  return %3 : tensor<?x5xf32>
}

// -----

// Softmax over rows: ONE kernel, a block per row (a warp for rows of 10); max then sum
// through warp shuffles and shared memory (kiln_block_max / kiln_block_sum), then the
// normalized store.
// CHECK-LABEL: CUDA program of @softmax: 1 kernels
// CHECK: // launch kiln_0_reduction_reduce_max_sub_exp_reduce_sum_div: row-reduction, block 32, buffers in 0 out 1
// CHECK: v = kiln_max_nan(v, __shfl_down_sync(0xffffffffu, v, offset));
// CHECK: __global__ void kiln_0_reduction_reduce_max_sub_exp_reduce_sum_div(
// CHECK: __shared__ float scratch_float[32];
// CHECK: for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
// CHECK: red0 = kiln_max_nan(red0,
// CHECK: red0 = kiln_block_max(red0, scratch_float);
// CHECK: expf(
// CHECK: red{{[0-9]+}} = kiln_block_sum(red{{[0-9]+}}, scratch_float);
// CHECK: out0[(r_0) * 10 + j_0] =
func.func @softmax(%x: tensor<?x10xf32>) -> tensor<?x10xf32> {
  %0 = kiln.reduce_max %x, [1] keepdims : tensor<?x10xf32> -> tensor<?x1xf32>
  %1 = kiln.broadcast_to %0 : tensor<?x1xf32> -> tensor<?x10xf32>
  %2 = kiln.sub %x, %1 : tensor<?x10xf32>
  %3 = kiln.exp %2 : tensor<?x10xf32>
  %4 = kiln.reduce_sum %3, [1] keepdims : tensor<?x10xf32> -> tensor<?x1xf32>
  %5 = kiln.broadcast_to %4 : tensor<?x1xf32> -> tensor<?x10xf32>
  %6 = kiln.div %3, %5 : tensor<?x10xf32>
  return %6 : tensor<?x10xf32>
}

// -----

// An elementwise chain of whole operands: a grid-stride loop with 128-bit loads and
// stores when every pointer is 16-byte aligned, then the tail element by element.
// CHECK-LABEL: CUDA program of @axpy: 1 kernels
// CHECK: // launch kiln_0_elementwise_mul_add: elementwise-vectorized, block 256, buffers in 0 1 out 2
// CHECK: __global__ void kiln_0_elementwise_mul_add(
// CHECK: if (((reinterpret_cast<unsigned long long>(in0) | reinterpret_cast<unsigned long long>(in1) | reinterpret_cast<unsigned long long>(out0) | 0ULL) & 15ULL) == 0) {
// CHECK: const float4 a0 = reinterpret_cast<const float4*>(in0)[q];
// CHECK: r0.w =
// CHECK: reinterpret_cast<float4*>(out0)[q] = r0;
// CHECK: for (long long i = start; i < n; i += stride) {
func.func @axpy(%x: tensor<1000xf32>, %y: tensor<1000xf32>) -> tensor<1000xf32> {
  %a = kiln.constant dense<2.0> : tensor<1000xf32>
  %0 = kiln.mul %a, %x : tensor<1000xf32>
  %1 = kiln.add %0, %y : tensor<1000xf32>
  return %1 : tensor<1000xf32>
}

// -----

// Dropout's mask: the Philox stream of kiln/philox.h, element i at counter offset + i.
// CHECK-LABEL: CUDA program of @rng
// CHECK: __device__ __forceinline__ double kiln_philox_uniform(
// CHECK: kiln_philox_uniform(static_cast<unsigned long long>(in0[0]), static_cast<unsigned long long>(in0[1]) + static_cast<unsigned long long>(i0))
func.func @rng(%k: tensor<2xi64>) -> tensor<4xf32> {
  %0 = kiln.rng_uniform %k : tensor<2xi64> -> tensor<4xf32>
  return %0 : tensor<4xf32>
}


// -----

// embed_id's gradient: a fill kernel zeroes the table, then one thread per update element
// adds it at its id's row with atomicAdd. Kernels are named after their Link (kiln.scope).
// CHECK-LABEL: CUDA program of @embed_grad: 2 kernels
// CHECK: // launch kiln_0_embed_op_scatter_add_zero: fill, block 256, buffers in out 2
// CHECK: // launch kiln_0_embed_op_scatter_add: scatter-add, block 256, buffers in 0 1 out 2
// CHECK: // kernel 0:embed/op:scatter_add+zero ({{.*}}) (fill)
// CHECK: out0[i] = float(0);
// CHECK: // kernel 0:embed/op:scatter_add ({{.*}}) (scatter-add)
// CHECK: const long long n = (batch * 3 * 5);
// CHECK: id{{[0-9]+}} = id{{[0-9]+}} < 0 ? 0 : id{{[0-9]+}} > 10 - 1 ? 10 - 1 : id{{[0-9]+}};
// CHECK: atomicAdd(&out0[id{{[0-9]+}} * 5 + i2], v{{[0-9]+}});
func.func @embed_grad(%ids: tensor<?x3xi32>, %gy: tensor<?x3x5xf32>) -> tensor<10x5xf32> {
  %0 = kiln.scatter_add %ids, %gy {kiln.scope = "embed"} : tensor<?x3xi32>, tensor<?x3x5xf32> -> tensor<10x5xf32>
  return %0 : tensor<10x5xf32>
}

// -----

// An embedding gradient onto a base (the previous time step's): a kernel copies the base
// into the output, then the same atomics add the updates.
// CHECK-LABEL: CUDA program of @embed_grad_base: 2 kernels
// CHECK: // launch kiln_0_embed_op_scatter_add_base: copy, block 256, buffers in 2 out 3
// CHECK: // launch kiln_0_embed_op_scatter_add: scatter-add, block 256, buffers in 0 1 out 3
// CHECK: // kernel 0:embed/op:scatter_add+base ({{.*}}) (copy)
// CHECK: void kiln_0_embed_op_scatter_add_base(const float* __restrict__ in0, float* __restrict__ out0, long long batch)
// CHECK: out0[i] = in0[i];
// CHECK: // kernel 0:embed/op:scatter_add ({{.*}}) (scatter-add)
// CHECK: atomicAdd(&out0[id{{[0-9]+}} * 5 + i2], v{{[0-9]+}});
func.func @embed_grad_base(%ids: tensor<?x3xi32>, %gy: tensor<?x3x5xf32>, %table: tensor<10x5xf32>) -> tensor<10x5xf32> {
  %0 = kiln.scatter_add %ids, %gy base(%table) {kiln.scope = "embed"} : tensor<?x3xi32>, tensor<?x3x5xf32>, tensor<10x5xf32> -> tensor<10x5xf32>
  return %0 : tensor<10x5xf32>
}

// -----

// A reduction region no one row reduction computes (outputs over the columns, the rows
// and the input): one row-reduction kernel and one elementwise kernel, <index>.<part>.
// CHECK-LABEL: CUDA program of @split_reduction: 2 kernels
// CHECK: // launch kiln_0_0_reduction_sqrt_div_reduce_sum: row-reduction, block 128, buffers in 0 1 out 2
// CHECK: // launch kiln_0_1_reduction_sqrt_div_reduce_sum: elementwise, block 256, buffers in 1 0 out 3 4
// CHECK: red0 = kiln_block_sum(red0, scratch_float);
func.func @split_reduction(%x: tensor<?x6xf32>, %s: tensor<?x1xf32>) -> (tensor<6xf32>, tensor<?x1xf32>, tensor<?x6xf32>) {
  %0:3 = kiln.fusion "reduction" ins(%x, %s : tensor<?x6xf32>, tensor<?x1xf32>) -> (tensor<6xf32>, tensor<?x1xf32>, tensor<?x6xf32>) {
  ^bb0(%a: tensor<?x6xf32>, %b: tensor<?x1xf32>):
    %1 = kiln.sqrt %b : tensor<?x1xf32>
    %2 = kiln.broadcast_to %1 : tensor<?x1xf32> -> tensor<?x6xf32>
    %3 = kiln.div %a, %2 : tensor<?x6xf32>
    %4 = kiln.reduce_sum %3, [0] : tensor<?x6xf32> -> tensor<6xf32>
    kiln.yield %4, %1, %3 : tensor<6xf32>, tensor<?x1xf32>, tensor<?x6xf32>
  }
  return %0#0, %0#1, %0#2 : tensor<6xf32>, tensor<?x1xf32>, tensor<?x6xf32>
}
