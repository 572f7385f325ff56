// Convolutions for compiled graphs (KILN_GEMM=blas): the functions that
// -kiln-matmul-to-blas calls for linalg.conv_2d_nchw_fchw and for kiln's
// filter-gradient generic (kiln/gemm_abi.h). Each is one im2col pass into a
// contiguous [C*kh*kw, N*oh*ow] matrix (row copies, on the runtime's worker
// threads), one cblas GEMM over the whole batch (OpenBLAS's threads), and one
// layout pass between NCHW planes and GEMM rows. Inputs arrive padded (the
// graph pads), so every window tap is in bounds.
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

// cols[(c*kh + i)*kw + j][(n*oh + y)*ow + x] = x[n, c, y*sh + i*dh, x*sw + j*dw].
template <typename T>
void im2col(const M4<T>* x, int64_t kh, int64_t kw, int64_t oh, int64_t ow, int64_t sh, int64_t sw, int64_t dh,
            int64_t dw, T* cols) {
  const int64_t n = x->sizes[0], c = x->sizes[1], plane = oh * ow, np = n * plane;
  const int64_t s0 = x->strides[0], s1 = x->strides[1], s2 = x->strides[2], s3 = x->strides[3];
  const T* xb = base(x);
  kiln::runtime::parallel_for(c * kh * kw, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t ch = r / (kh * kw), i = (r / kw) % kh, j = r % kw;
      T* row = cols + r * np;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t y = 0; y < oh; ++y) {
          const T* src = xb + b * s0 + ch * s1 + (y * sh + i * dh) * s2 + j * dw * s3;
          T* dst = row + b * plane + y * ow;
          const int64_t step = sw * s3;
          if (step == 1)
            std::memcpy(dst, src, static_cast<size_t>(ow) * sizeof(T));
          else
            for (int64_t q = 0; q < ow; ++q) dst[q] = src[q * step];
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

// y[n, f, y, x] (+)= sum over c, i, j of x[n, c, y*sh + i*dh, x*sw + j*dw] * w[f, c, i, j].
template <typename T>
void conv2d(const M4<T>* x, const M4<T>* w, const M4<T>* y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
            bool accumulate) {
  const int64_t n = y->sizes[0], f = y->sizes[1], oh = y->sizes[2], ow = y->sizes[3];
  const int64_t kh = w->sizes[2], kw = w->sizes[3], k = w->sizes[1] * kh * kw, plane = oh * ow, np = n * plane;
  if (np == 0 || f == 0) return;
  kiln::runtime::applyThreadSetting();
  T* cols = scratch<T>(0, std::max<int64_t>(k * np, 1));
  im2col(x, kh, kw, oh, ow, sh, sw, dh, dw, cols);
  int64_t ldw = 0;
  const T* wm = filterMatrix(w, &ldw);
  thread_local std::vector<T> product;
  if (static_cast<int64_t>(product.size()) < f * np) product.assign(static_cast<size_t>(f * np), T(0));
  if (k == 0)
    std::fill(product.begin(), product.begin() + f * np, T(0));
  else
    gemmCall(false, f, np, k, wm, ldw, cols, np, T(0), product.data(), np);
  // out[f][n*plane + p] -> y[n, f, p]
  const T* out = product.data();
  T* yb = base(y);
  const bool planes = y->strides[3] == 1 && y->strides[2] == ow;
  kiln::runtime::parallel_for(n * f, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / f, o = r % f;
      const T* src = out + o * np + b * plane;
      T* dst = yb + b * y->strides[0] + o * y->strides[1];
      if (planes && !accumulate) {
        std::memcpy(dst, src, static_cast<size_t>(plane) * sizeof(T));
      } else if (planes) {
        for (int64_t p = 0; p < plane; ++p) dst[p] += src[p];
      } else {
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx) {
            T& d = dst[yy * y->strides[2] + xx * y->strides[3]];
            d = accumulate ? d + src[yy * ow + xx] : src[yy * ow + xx];
          }
      }
    }
  });
}

// gw[f, c, i, j] (+)= sum over n, y, x of x[n, c, y*sh + i*dh, x*sw + j*dw] * gy[n, f, y, x].
template <typename T>
void conv2dGradFilter(const M4<T>* x, const M4<T>* gy, const M4<T>* gw, int64_t sh, int64_t sw, int64_t dh,
                      int64_t dw, bool accumulate) {
  const int64_t n = gy->sizes[0], f = gy->sizes[1], oh = gy->sizes[2], ow = gy->sizes[3];
  const int64_t c = gw->sizes[1], kh = gw->sizes[2], kw = gw->sizes[3], k = c * kh * kw;
  const int64_t plane = oh * ow, np = n * plane;
  T* gwb = base(gw);
  const bool direct = innerContiguous(gw) && (f <= 1 || gw->strides[0] == k);
  if (np == 0 || k == 0) {
    if (!accumulate)
      for (int64_t o = 0; o < f; ++o)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j)
              gwb[o * gw->strides[0] + ch * gw->strides[1] + i * gw->strides[2] + j * gw->strides[3]] = T(0);
    return;
  }
  kiln::runtime::applyThreadSetting();
  T* cols = scratch<T>(0, k * np);
  im2col(x, kh, kw, oh, ow, sh, sw, dh, dw, cols);
  // gyT[f][n*plane + p] = gy[n, f, p]
  T* gyt = scratch<T>(1, f * np);
  const T* gyb = base(gy);
  const bool planes = gy->strides[3] == 1 && gy->strides[2] == ow;
  kiln::runtime::parallel_for(n * f, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t b = r / f, o = r % f;
      const T* src = gyb + b * gy->strides[0] + o * gy->strides[1];
      T* dst = gyt + o * np + b * plane;
      if (planes)
        std::memcpy(dst, src, static_cast<size_t>(plane) * sizeof(T));
      else
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx) dst[yy * ow + xx] = src[yy * gy->strides[2] + xx * gy->strides[3]];
    }
  });
  if (direct) {
    gemmCall(true, f, k, np, gyt, np, cols, np, T(accumulate ? 1 : 0), gwb, k);
    return;
  }
  std::vector<T> result(static_cast<size_t>(f * k));
  gemmCall(true, f, k, np, gyt, np, cols, np, T(0), result.data(), k);
  for (int64_t o = 0; o < f; ++o)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          T& d = gwb[o * gw->strides[0] + ch * gw->strides[1] + i * gw->strides[2] + j * gw->strides[3]];
          T v = result[static_cast<size_t>(((o * c + ch) * kh + i) * kw + j)];
          d = accumulate ? d + v : v;
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
