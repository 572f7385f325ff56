// Convolutions for compiled graphs (KILN_GEMM=blas): the functions that
// -kiln-matmul-to-blas calls for linalg.conv_2d_nchw_fchw and for kiln's
// filter-gradient generic (kiln/gemm_abi.h). Each is one im2col pass into a
// [C*kh*kw, oh*ow] matrix per image (row copies, on the runtime's worker
// threads), then one cblas GEMM per image (OpenBLAS's threads) that reads or
// writes the NCHW planes in place. Inputs arrive padded (the graph pads), so
// every window tap is in bounds.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kiln/gemm_abi.h"
#include "parallel.h"

namespace {

using kiln::gemm_abi::StridedMemRef;
template <typename T>
using M4 = StridedMemRef<T, 4>;

void gemmCall(bool tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
              float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, beta, c,
              ldc);
}
void gemmCall(bool tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda, const double* b, int64_t ldb,
              double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb, beta, c,
              ldc);
}

// Grow-only scratch buffers of the calling thread (slot 0: im2col, 1: GEMM result or operand).
template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> buffers[2];
  std::vector<T>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) {
    b.clear();
    b.shrink_to_fit();
    b.resize(static_cast<size_t>(n));
  }
  return b.data();
}

template <typename T>
T* base(const M4<T>* m) {
  return m->aligned + m->offset;
}

// Whether the last three dimensions of `m` are contiguous row-major (dimension 0 any stride).
template <typename T>
bool innerContiguous(const M4<T>* m) {
  return m->strides[3] == 1 && m->strides[2] == m->sizes[3] && m->strides[1] == m->sizes[2] * m->sizes[3];
}

// Per image n, the [C*kh*kw, oh*ow] matrix cols_n at cols + n*K*P:
// cols_n[(c*kh + i)*kw + j][y*ow + x] = x[n, c, y*sh + i*dh, x*sw + j*dw].
template <typename T>
void im2col(const M4<T>* x, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t dh,
            int64_t dw, T* cols) {
  const int64_t n = x->sizes[0], c = x->sizes[1], plane = oh * ow, k = c * kh * kw;
  const int64_t s0 = x->strides[0], s1 = x->strides[1], s2 = x->strides[2], s3 = x->strides[3];
  const T* xb = base(x);
  kiln::runtime::parallel_for(n * k, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; ++q) {
      const int64_t b = q / k, r = q % k;
      const int64_t ch = r / (kh * kw), i = (r / kw) % kh, j = r % kw;
      T* row = cols + (b * k + r) * plane;
      const int64_t step = sw * s3;
      for (int64_t y = 0; y < oh; ++y) {
        const T* src = xb + b * s0 + ch * s1 + (y * sh + i * dh) * s2 + j * dw * s3;
        T* dst = row + y * ow;
        if (step == 1)
          std::memcpy(dst, src, static_cast<size_t>(ow) * sizeof(T));
        else
          for (int64_t q2 = 0; q2 < ow; ++q2) dst[q2] = src[q2 * step];
      }
    }
  });
}

// The [F, C*kh*kw] matrix of the filter w (F, C, kh, kw) and its leading dimension.
template <typename T>
const T* filterMatrix(const M4<T>* w, int64_t* ld) {
  const int64_t f = w->sizes[0], k = w->sizes[1] * w->sizes[2] * w->sizes[3];
  if (innerContiguous(w) && (f <= 1 || w->strides[0] >= k)) {
    *ld = f <= 1 ? std::max<int64_t>(k, 1) : w->strides[0];
    return base(w);
  }
  T* packed = scratch<T>(1, f * k);
  for (int64_t o = 0; o < f; ++o)
    for (int64_t c = 0; c < w->sizes[1]; ++c)
      for (int64_t i = 0; i < w->sizes[2]; ++i)
        for (int64_t j = 0; j < w->sizes[3]; ++j)
          packed[((o * w->sizes[1] + c) * w->sizes[2] + i) * w->sizes[3] + j] =
              base(w)[o * w->strides[0] + c * w->strides[1] + i * w->strides[2] + j * w->strides[3]];
  *ld = std::max<int64_t>(k, 1);
  return packed;
}

// y[n, f, y, x] (+)= sum over c, i, j of x[n, c, y*sh + i*dh, x*sw + j*dw] * w[f, c, i, j]:
// one GEMM per image, W[F, K] * cols_n[K, P], written into y's image n (NCHW
// planes are the GEMM's rows; measured faster here than one [F, N*P] GEMM and a transpose).
template <typename T>
void conv2d(const M4<T>* x, const M4<T>* w, const M4<T>* y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
            bool accumulate) {
  const int64_t n = y->sizes[0], f = y->sizes[1], oh = y->sizes[2], ow = y->sizes[3];
  const int64_t kh = w->sizes[2], kw = w->sizes[3], k = w->sizes[1] * kh * kw, plane = oh * ow;
  if (n == 0 || plane == 0 || f == 0) return;
  kiln::runtime::applyThreadSetting();
  T* yb = base(y);
  const bool planes = y->strides[3] == 1 && y->strides[2] == ow && (f <= 1 || y->strides[1] >= plane);
  if (k == 0) {
    if (!accumulate)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < f; ++o)
          for (int64_t yy = 0; yy < oh; ++yy)
            for (int64_t xx = 0; xx < ow; ++xx)
              yb[b * y->strides[0] + o * y->strides[1] + yy * y->strides[2] + xx * y->strides[3]] = T(0);
    return;
  }
  T* cols = scratch<T>(0, k * n * plane);
  im2col(x, kh, kw, oh, ow, sh, sw, dh, dw, cols);
  int64_t ldw = 0;
  const T* wm = filterMatrix(w, &ldw);
  const T beta = accumulate ? T(1) : T(0);
  if (planes) {
    const int64_t ldy = f <= 1 ? plane : y->strides[1];
    for (int64_t b = 0; b < n; ++b)
      gemmCall(false, f, plane, k, wm, ldw, cols + b * k * plane, plane, beta, yb + b * y->strides[0], ldy);
    return;
  }
  std::vector<T> image(static_cast<size_t>(f * plane));
  for (int64_t b = 0; b < n; ++b) {
    gemmCall(false, f, plane, k, wm, ldw, cols + b * k * plane, plane, T(0), image.data(), plane);
    for (int64_t o = 0; o < f; ++o)
      for (int64_t yy = 0; yy < oh; ++yy)
        for (int64_t xx = 0; xx < ow; ++xx) {
          T& d = yb[b * y->strides[0] + o * y->strides[1] + yy * y->strides[2] + xx * y->strides[3]];
          T v = image[static_cast<size_t>(o * plane + yy * ow + xx)];
          d = accumulate ? d + v : v;
        }
  }
}

// gw[f, c, i, j] (+)= sum over n, y, x of x[n, c, y*sh + i*dh, x*sw + j*dw] * gy[n, f, y, x]:
// GEMMs gy_n[F, P] * cols_n[K, P]^T accumulated over the images.
template <typename T>
void conv2dGradFilter(const M4<T>* x, const M4<T>* gy, const M4<T>* gw, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw, bool accumulate) {
  const int64_t n = gy->sizes[0], f = gy->sizes[1], oh = gy->sizes[2], ow = gy->sizes[3];
  const int64_t c = gw->sizes[1], kh = gw->sizes[2], kw = gw->sizes[3], k = c * kh * kw;
  const int64_t plane = oh * ow;
  T* gwb = base(gw);
  auto at = [&](int64_t o, int64_t ch, int64_t i, int64_t j) -> T& {
    return gwb[o * gw->strides[0] + ch * gw->strides[1] + i * gw->strides[2] + j * gw->strides[3]];
  };
  if (f == 0 || k == 0) return;
  if (n == 0 || plane == 0) {
    if (!accumulate)
      for (int64_t o = 0; o < f; ++o)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) at(o, ch, i, j) = T(0);
    return;
  }
  kiln::runtime::applyThreadSetting();
  T* cols = scratch<T>(0, k * n * plane);
  im2col(x, kh, kw, oh, ow, sh, sw, dh, dw, cols);
  // gy's image n as a [F, P] matrix: in place when its planes are contiguous, else packed.
  const bool planes = gy->strides[3] == 1 && gy->strides[2] == ow && (f <= 1 || gy->strides[1] >= plane);
  T* packed = planes ? nullptr : scratch<T>(1, f * plane);
  const bool direct = innerContiguous(gw) && (f <= 1 || gw->strides[0] == k);
  std::vector<T> result(direct ? 0 : static_cast<size_t>(f * k));
  T* out = direct ? gwb : result.data();
  for (int64_t b = 0; b < n; ++b) {
    const T* g = base(gy) + b * gy->strides[0];
    int64_t ldg = f <= 1 ? plane : gy->strides[1];
    if (!planes) {
      for (int64_t o = 0; o < f; ++o)
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx)
            packed[o * plane + yy * ow + xx] = g[o * gy->strides[1] + yy * gy->strides[2] + xx * gy->strides[3]];
      g = packed;
      ldg = plane;
    }
    const T beta = b > 0 || (direct && accumulate) ? T(1) : T(0);
    gemmCall(true, f, k, plane, g, ldg, cols + b * k * plane, plane, beta, out, k);
  }
  if (direct) return;
  for (int64_t o = 0; o < f; ++o)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          T v = result[static_cast<size_t>(((o * c + ch) * kh + i) * kw + j)];
          at(o, ch, i, j) = accumulate ? at(o, ch, i, j) + v : v;
        }
}

}  // namespace

#define KILN_EXPORT extern "C" __attribute__((visibility("default")))

KILN_EXPORT void _mlir_ciface_kiln_conv2d_f32(M4<float>* x, M4<float>* w, M4<float>* y, int64_t sh, int64_t sw,
                                              int64_t dh, int64_t dw, int32_t accumulate) {
  conv2d(x, w, y, sh, sw, dh, dw, accumulate != 0);
}
KILN_EXPORT void _mlir_ciface_kiln_conv2d_f64(M4<double>* x, M4<double>* w, M4<double>* y, int64_t sh, int64_t sw,
                                              int64_t dh, int64_t dw, int32_t accumulate) {
  conv2d(x, w, y, sh, sw, dh, dw, accumulate != 0);
}
KILN_EXPORT void _mlir_ciface_kiln_conv2d_grad_filter_f32(M4<float>* x, M4<float>* gy, M4<float>* gw, int64_t sh,
                                                          int64_t sw, int64_t dh, int64_t dw, int32_t accumulate) {
  conv2dGradFilter(x, gy, gw, sh, sw, dh, dw, accumulate != 0);
}
KILN_EXPORT void _mlir_ciface_kiln_conv2d_grad_filter_f64(M4<double>* x, M4<double>* gy, M4<double>* gw, int64_t sh,
                                                          int64_t sw, int64_t dh, int64_t dw, int32_t accumulate) {
  conv2dGradFilter(x, gy, gw, sh, sw, dh, dw, accumulate != 0);
}
