// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-emit-cuda -o /dev/null | FileCheck %s
//
// Convolutions are implicit GEMMs on shared-memory tiles: 64x64 tiles of the result per
// block of 16x16 threads (a 4x4 register micro-tile each), K in steps of 16, the im2col
// indices computed while the tiles load (bounds and padding checks), one GEMM per group
// (grid z); the region's epilogue (bias, activation) at the accumulators before the store.

// conv2d + bias + relu, stride 2, pad 1, dilate (2, 1), 2 groups: per group
// y[n, bz 3 + m, oh, ow] = sum over k = (ci, kh, kw) of w[bz 3 + m, k] x[n, bz 2 + ci, ih, iw].
// CHECK-LABEL: CUDA program of @conv_bias_relu: 1 kernels
// CHECK: // launch kiln_0_contraction_conv2d_add_relu: implicit-gemm, block 16, buffers in 1 0 2 out 3
// CHECK: // kernel 0:contraction:conv2d+add+relu (implicit-gemm)
// CHECK-NEXT: extern "C" __global__ void kiln_0_contraction_conv2d_add_relu(const float* __restrict__ in0, const float* __restrict__ in1, const float* __restrict__ in2, float* __restrict__ out0, long long batch) {
// CHECK-NEXT: __shared__ float As[16][64 + 1];  // As[k][m]
// CHECK-NEXT: __shared__ float Bs[16][64 + 1];  // Bs[k][n]
// CHECK-NEXT: const long long M = 3, N = (batch * 4 * 4), K = (2 * 3 * 3), count = 2;
// CHECK: for (long long bz = blockIdx.z; bz < count; bz += gridDim.z) {
// CHECK: for (long long k0 = 0; k0 < K; k0 += 16) {
// CHECK-NEXT: for (int e = tid; e < 16 * 64; e += 256) {
// The filter tile: its row is the output channel, k the tap (ci, kh, kw).
// CHECK: const int mm = e / 16, kk = e % 16;
// CHECK: if (gm < M && gk < K) {
// CHECK-NEXT: const long long ci = gk / (3 * 3), kh = (gk / 3) % 3, kw = gk % 3;
// CHECK-NEXT: const float [[W:v[0-9]+]] = in0[((((bz * 3 + gm)) * 2 + ci) * 3 + kh) * 3 + kw];
// CHECK: As[kk][mm] = [[TA:t[0-9]+]];
// The input tile: im2col on the fly, zero where the tap falls on the padding.
// CHECK: const int kb = e / 64, nn = e % 64;
// CHECK: const long long c_ = gkb / (3 * 3), kh = (gkb / 3) % 3, kw = gkb % 3;
// CHECK-NEXT: const long long n_ = gn / (4 * 4), oh = (gn / 4) % 4, ow = gn % 4;
// CHECK-NEXT: n = n_; ci = c_;
// CHECK-NEXT: ih = oh * 2 - 1 + kh * 2;
// CHECK-NEXT: iw = ow * 2 - 1 + kw * 1;
// CHECK-NEXT: inside = ih >= 0 && ih < 9 && iw >= 0 && iw < 8;
// CHECK: if (inside) {
// CHECK-NEXT: const float [[X:v[0-9]+]] = in1[(((n) * 4 + (bz * 2 + ci)) * 9 + ih) * 8 + iw];
// CHECK: Bs[kb][nn] = [[TB:t[0-9]+]];
// CHECK: __syncthreads();
// CHECK-NEXT: for (int kk = 0; kk < 16; ++kk) {
// CHECK: acc[r][c] += ra[r] * rb[c];
// CHECK: __syncthreads();
// The epilogue at each accumulator of the micro-tile, then the one store.
// CHECK: if (gm < M && gn < N) {
// CHECK-NEXT: const long long n = gn / (4 * 4), oh = (gn / 4) % 4, ow = gn % 4;
// CHECK-NEXT: const long long o = bz * 3 + gm;
// CHECK-NEXT: const float [[B:v[0-9]+]] = in2[o];
// CHECK-NEXT: const float [[S:v[0-9]+]] = (acc[r][c] + [[B]]);
// CHECK-NEXT: const float [[R:v[0-9]+]] = ((!([[S]] <= 0.0f)) ? [[S]] : 0.0f);
// CHECK-NEXT: out0[(((n) * 6 + o) * 4 + oh) * 4 + ow] = [[R]];
func.func @conv_bias_relu(%x: tensor<?x4x9x8xf32>, %w: tensor<6x2x3x3xf32>, %b: tensor<6xf32>) -> tensor<?x6x4x4xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 1>, groups = 2} : tensor<?x4x9x8xf32>, tensor<6x2x3x3xf32> -> tensor<?x6x4x4xf32>
  %1 = kiln.reshape %b : tensor<6xf32> -> tensor<1x6x1x1xf32>
  %2 = kiln.broadcast_to %1 : tensor<1x6x1x1xf32> -> tensor<?x6x4x4xf32>
  %3 = kiln.add %0, %2 : tensor<?x6x4x4xf32>
  %4 = kiln.relu %3 : tensor<?x6x4x4xf32>
  return %4 : tensor<?x6x4x4xf32>
}

// -----

// The data gradient (deconvolution_2d's forward): per group, the GEMM of the filter's
// transpose and gy over k = (o, kh, kw), a tap reaching (ih, iw) from the output position
// (ih + p - kh d) / s where the stride divides it. f64.
// CHECK-LABEL: CUDA program of @grad_input: 1 kernels
// CHECK: // launch kiln_0_op_conv2d_grad_input: implicit-gemm, block 16
// CHECK: __shared__ double As[16][64 + 1];  // As[k][m]
// CHECK: const long long M = 2, N = (batch * 9 * 8), K = (3 * 3 * 3), count = 2;
// CHECK: const long long o = gk / (3 * 3), kh = (gk / 3) % 3, kw = gk % 3;
// CHECK-NEXT: const double {{v[0-9]+}} = in0[((((bz * 3 + o)) * 2 + gm) * 3 + kh) * 3 + kw];
// CHECK: const long long th = ih + 1 - kh * 2, tw = iw + 1 - kw * 1;
// CHECK-NEXT: n = n_; o = o_; oh = th / 2; ow = tw / 2;
// CHECK-NEXT: inside = th >= 0 && tw >= 0 && th % 2 == 0 && tw % 2 == 0 && oh < 4 && ow < 4;
// CHECK: const double {{v[0-9]+}} = in1[(((n) * 6 + (bz * 3 + o)) * 4 + oh) * 4 + ow];
// CHECK: const long long ch = bz * 2 + gm;
// CHECK-NEXT: out0[(((n) * 4 + ch) * 9 + ih) * 8 + iw] = acc[r][c];
func.func @grad_input(%gy: tensor<?x6x4x4xf64>, %w: tensor<6x2x3x3xf64>) -> tensor<?x4x9x8xf64> {
  %0 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 1>, groups = 2} : tensor<?x6x4x4xf64>, tensor<6x2x3x3xf64> -> tensor<?x4x9x8xf64>
  return %0 : tensor<?x4x9x8xf64>
}

// -----

// The filter gradient: per group, gy x im2col(x) reduced over k = (n, oh, ow), the whole
// reduction in the block of each result tile (no split-K, no atomics: deterministic).
// CHECK-LABEL: CUDA program of @grad_filter: 1 kernels
// CHECK: // launch kiln_0_op_conv2d_grad_filter: implicit-gemm, block 16
// CHECK: const long long M = 3, N = (2 * 3 * 3), K = (batch * 4 * 4), count = 2;
// CHECK: const long long n = gk / (4 * 4), oh = (gk / 4) % 4, ow = gk % 4;
// CHECK: const int nn = e / 16, kb = e % 16;
// CHECK: const long long c_ = gn / (3 * 3), kh = (gn / 3) % 3, kw = gn % 3;
// CHECK-NEXT: const long long n_ = gkb / (4 * 4), oh = (gkb / 4) % 4, ow = gkb % 4;
// CHECK: const long long o = bz * 3 + gm;
// CHECK-NEXT: out0[(((o) * 2 + ci) * 3 + kh) * 3 + kw] = acc[r][c];
// CHECK-NOT: atomicAdd
func.func @grad_filter(%x: tensor<?x4x9x8xf32>, %gy: tensor<?x6x4x4xf32>) -> tensor<6x2x3x3xf32> {
  %0 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 1>, groups = 2} : tensor<?x4x9x8xf32>, tensor<?x6x4x4xf32> -> tensor<6x2x3x3xf32>
  return %0 : tensor<6x2x3x3xf32>
}
