// The C ABI of the GEMM functions that compiled graphs call (KILN_GEMM=blas): one
// definition for the pass that emits the calls (-kiln-matmul-to-blas), the runtime
// that defines them (runtime/src/blas_kernels.cpp) and the tests. No MLIR here.
//
// Each function is the C interface (`llvm.emit_c_interface`, hence the
// `_mlir_ciface_` prefix) of a function declared by the pass as
//   func.func private @kiln_gemm_f32(memref<?x?xf32, strided<[?, ?], offset: ?>> A, B, C,
//                                    i32 transpose_a, i32 transpose_b, i32 accumulate)
// and computes C += op(A) * op(B) (linalg's semantics), or C = op(A) * op(B)
// when `accumulate` is 0. The batched forms take rank-3 memrefs and loop over
// the leading dimension.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kiln::gemm_abi {

// MLIR's descriptor of a ranked memref: {allocated, aligned, offset, sizes[N], strides[N]}.
template <typename T, int N>
struct StridedMemRef {
  T* allocated;
  T* aligned;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];
};

// The symbol names without the `_mlir_ciface_` prefix, as the pass declares them:
// <prefix><element type>, the element type "f32" or "f64".
inline constexpr const char* kGemmPrefix = "kiln_gemm_";
inline constexpr const char* kBatchGemmPrefix = "kiln_batch_gemm_";
// The parameters, in order: the memrefs A, B and C, then the i32 flags
// transpose_a, transpose_b and accumulate.
inline constexpr int kNumMemRefParams = 3;
inline constexpr int kNumFlagParams = 3;
inline constexpr int kNumParams = kNumMemRefParams + kNumFlagParams;

// Convolutions (linalg.conv_2d_nchw_fchw, and the filter-gradient generic that
// -kiln-lower-to-linalg marks with kiln.conv2d_grad_filter): <prefix><f32|f64>,
// parameters the NCHW memrefs (x, w, y) or (x, gy, gw), then the i64 strides
// (sh, sw), the i64 dilations (dh, dw) and the i32 accumulate flag. x is padded
// already: every tap x[n, c, y*sh + i*dh, x*sw + j*dw] is in bounds.
//   conv2d:             y[n,f,y,x] (+)= sum_{c,i,j} x[n,c,y*sh+i*dh,x*sw+j*dw] * w[f,c,i,j]
//   conv2d_grad_filter: gw[f,c,i,j] (+)= sum_{n,y,x} x[n,c,y*sh+i*dh,x*sw+j*dw] * gy[n,f,y,x]
inline constexpr const char* kConvPrefix = "kiln_conv2d_";
inline constexpr const char* kConvGradFilterPrefix = "kiln_conv2d_grad_filter_";
inline constexpr int kConvNumMemRefParams = 3;
inline constexpr int kConvNumIndexParams = 4;
inline constexpr int kConvNumParams = kConvNumMemRefParams + kConvNumIndexParams + 1;

// Pooling gradients (the linalg.generic that -kiln-lower-to-linalg marks with
// kiln.pool2d_grad): <prefix><f32|f64>, parameters the NCHW memrefs (x, gy, gx),
// the i32 kind (kPoolMax or kPoolAverage), the i64 window (kh, kw), strides
// (sh, sw) and pads (ph, pw), then the i32 accumulate flag. x is not padded: a
// tap x[n, c, oy*sh - ph + i, ox*sw - pw + j] outside x is padding.
//   max: gx[x at the first in-bounds maximum of window (oy, ox), in window order] (+)= gy[n, c, oy, ox]
//   avg: gx[every in-bounds tap of window (oy, ox)] (+)= gy[n, c, oy, ox] / (kh * kw)
inline constexpr const char* kPool2DGradPrefix = "kiln_pool2d_grad_";
inline constexpr int32_t kPoolMax = 0;
inline constexpr int32_t kPoolAverage = 1;
inline constexpr int kPoolNumMemRefParams = 3;
inline constexpr int kPoolNumIndexParams = 6;
inline constexpr int kPoolNumParams = kPoolNumMemRefParams + 1 + kPoolNumIndexParams + 1;

// Pooling (linalg.pooling_nchw_max / linalg.pooling_nchw_sum): <prefix><f32|f64>,
// parameters the NCHW memrefs (x, y), the i32 kind (kPoolMax or kPoolSum), the i64
// window (kh, kw), strides (sh, sw) and dilations (dh, dw), then the i32 accumulate
// flag. x is padded already: every tap is in bounds.
//   max: y[n,c,oy,ox] = max(y or -inf, x[n,c,oy*sh+i*dh,ox*sw+j*dw] for i < kh, j < kw), NaN-propagating
//   sum: y[n,c,oy,ox] (+)= the sum of the same taps
inline constexpr const char* kPool2DPrefix = "kiln_pool2d_";
inline constexpr int32_t kPoolSum = 1;
inline constexpr int kPool2DNumMemRefParams = 2;
inline constexpr int kPool2DNumIndexParams = 6;
inline constexpr int kPool2DNumParams = kPool2DNumMemRefParams + 1 + kPool2DNumIndexParams + 1;

template <typename R, typename... Args>
constexpr int arity(R (*)(Args...)) {
  return static_cast<int>(sizeof...(Args));
}

}  // namespace kiln::gemm_abi

extern "C" {
void _mlir_ciface_kiln_gemm_f32(kiln::gemm_abi::StridedMemRef<float, 2>* a,
                                kiln::gemm_abi::StridedMemRef<float, 2>* b,
                                kiln::gemm_abi::StridedMemRef<float, 2>* c, int32_t transpose_a,
                                int32_t transpose_b, int32_t accumulate);
void _mlir_ciface_kiln_gemm_f64(kiln::gemm_abi::StridedMemRef<double, 2>* a,
                                kiln::gemm_abi::StridedMemRef<double, 2>* b,
                                kiln::gemm_abi::StridedMemRef<double, 2>* c, int32_t transpose_a,
                                int32_t transpose_b, int32_t accumulate);
void _mlir_ciface_kiln_batch_gemm_f32(kiln::gemm_abi::StridedMemRef<float, 3>* a,
                                      kiln::gemm_abi::StridedMemRef<float, 3>* b,
                                      kiln::gemm_abi::StridedMemRef<float, 3>* c, int32_t transpose_a,
                                      int32_t transpose_b, int32_t accumulate);
void _mlir_ciface_kiln_batch_gemm_f64(kiln::gemm_abi::StridedMemRef<double, 3>* a,
                                      kiln::gemm_abi::StridedMemRef<double, 3>* b,
                                      kiln::gemm_abi::StridedMemRef<double, 3>* c, int32_t transpose_a,
                                      int32_t transpose_b, int32_t accumulate);
void _mlir_ciface_kiln_conv2d_f32(kiln::gemm_abi::StridedMemRef<float, 4>* x,
                                  kiln::gemm_abi::StridedMemRef<float, 4>* w,
                                  kiln::gemm_abi::StridedMemRef<float, 4>* y, int64_t sh, int64_t sw,
                                  int64_t dh, int64_t dw, int32_t accumulate);
void _mlir_ciface_kiln_conv2d_f64(kiln::gemm_abi::StridedMemRef<double, 4>* x,
                                  kiln::gemm_abi::StridedMemRef<double, 4>* w,
                                  kiln::gemm_abi::StridedMemRef<double, 4>* y, int64_t sh, int64_t sw,
                                  int64_t dh, int64_t dw, int32_t accumulate);
void _mlir_ciface_kiln_conv2d_grad_filter_f32(kiln::gemm_abi::StridedMemRef<float, 4>* x,
                                              kiln::gemm_abi::StridedMemRef<float, 4>* gy,
                                              kiln::gemm_abi::StridedMemRef<float, 4>* gw, int64_t sh,
                                              int64_t sw, int64_t dh, int64_t dw, int32_t accumulate);
void _mlir_ciface_kiln_conv2d_grad_filter_f64(kiln::gemm_abi::StridedMemRef<double, 4>* x,
                                              kiln::gemm_abi::StridedMemRef<double, 4>* gy,
                                              kiln::gemm_abi::StridedMemRef<double, 4>* gw, int64_t sh,
                                              int64_t sw, int64_t dh, int64_t dw, int32_t accumulate);
void _mlir_ciface_kiln_pool2d_f32(kiln::gemm_abi::StridedMemRef<float, 4>* x,
                                  kiln::gemm_abi::StridedMemRef<float, 4>* y, int32_t kind, int64_t kh, int64_t kw,
                                  int64_t sh, int64_t sw, int64_t dh, int64_t dw, int32_t accumulate);
void _mlir_ciface_kiln_pool2d_f64(kiln::gemm_abi::StridedMemRef<double, 4>* x,
                                  kiln::gemm_abi::StridedMemRef<double, 4>* y, int32_t kind, int64_t kh, int64_t kw,
                                  int64_t sh, int64_t sw, int64_t dh, int64_t dw, int32_t accumulate);
void _mlir_ciface_kiln_pool2d_grad_f32(kiln::gemm_abi::StridedMemRef<float, 4>* x,
                                       kiln::gemm_abi::StridedMemRef<float, 4>* gy,
                                       kiln::gemm_abi::StridedMemRef<float, 4>* gx, int32_t kind, int64_t kh,
                                       int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                       int32_t accumulate);
void _mlir_ciface_kiln_pool2d_grad_f64(kiln::gemm_abi::StridedMemRef<double, 4>* x,
                                       kiln::gemm_abi::StridedMemRef<double, 4>* gy,
                                       kiln::gemm_abi::StridedMemRef<double, 4>* gx, int32_t kind, int64_t kh,
                                       int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                                       int32_t accumulate);
}

static_assert(kiln::gemm_abi::arity(&_mlir_ciface_kiln_pool2d_f32) == kiln::gemm_abi::kPool2DNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_pool2d_f64) == kiln::gemm_abi::kPool2DNumParams,
              "the pooling declarations and kPool2DNumParams disagree");
static_assert(kiln::gemm_abi::arity(&_mlir_ciface_kiln_pool2d_grad_f32) == kiln::gemm_abi::kPoolNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_pool2d_grad_f64) == kiln::gemm_abi::kPoolNumParams,
              "the pooling declarations and kPoolNumParams disagree");
static_assert(kiln::gemm_abi::arity(&_mlir_ciface_kiln_conv2d_f32) == kiln::gemm_abi::kConvNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_conv2d_grad_filter_f64) == kiln::gemm_abi::kConvNumParams,
              "the convolution declarations and kConvNumParams disagree");
static_assert(kiln::gemm_abi::arity(&_mlir_ciface_kiln_gemm_f32) == kiln::gemm_abi::kNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_gemm_f64) == kiln::gemm_abi::kNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_batch_gemm_f32) == kiln::gemm_abi::kNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_batch_gemm_f64) == kiln::gemm_abi::kNumParams,
              "the GEMM declarations and kNumParams disagree");
