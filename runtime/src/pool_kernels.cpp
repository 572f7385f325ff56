// Pooling gradients for compiled graphs (KILN_GEMM=blas): the functions that
// -kiln-matmul-to-blas calls for the linalg.generic marked kiln.pool2d_grad
// (kiln/gemm_abi.h). One pass over x, gy and gx per (n, c) plane, planes
// spread over the runtime's worker threads. Max pooling routes each window's
// gradient to its first in-bounds maximum in window order (Chainer's, and the
// interpreter's, choice on ties); average pooling spreads gy / (kh * kw) over
// the window's in-bounds taps (padding counts in the divisor).
#include <algorithm>
#include <cstdint>

#include "kiln/gemm_abi.h"
#include "parallel.h"

namespace {

using kiln::gemm_abi::StridedMemRef;
template <typename T>
using M4 = StridedMemRef<T, 4>;

struct Window {
  int64_t kh, kw, sh, sw, ph, pw;
};

// One (n, c) plane: x and gx are h x w with row stride xs/gs and column stride
// xc/gc, gy is oh x ow with strides ys, yc.
template <typename T>
struct Plane {
  const T* x;
  const T* gy;
  T* gx;
  int64_t xs, xc, ys, yc, gs, gc;
};

// The window's tap range along one dimension: [lo, hi) of input indices.
inline void tapRange(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size, int64_t* lo, int64_t* hi) {
  *lo = std::max<int64_t>(o * stride - pad, 0);
  *hi = std::min<int64_t>(o * stride - pad + k, size);
}

template <typename T>
void zeroPlane(const Plane<T>& p, int64_t h, int64_t w) {
  for (int64_t i = 0; i < h; ++i) {
    T* row = p.gx + i * p.gs;
    if (p.gc == 1)
      std::fill(row, row + w, T(0));
    else
      for (int64_t j = 0; j < w; ++j) row[j * p.gc] = T(0);
  }
}

// 2x2 windows at stride 2 without padding (the usual CNN pooling), unit column
// strides: each pair of rows of x gives one row of gx's pairs; no accumulation
// between windows, so gx is written once (or added to once).
template <typename T>
void maxGrad2x2(const Plane<T>& p, int64_t oh, int64_t ow, bool accumulate) {
  for (int64_t oy = 0; oy < oh; ++oy) {
    const T* x0 = p.x + 2 * oy * p.xs;
    const T* x1 = x0 + p.xs;
    const T* g = p.gy + oy * p.ys;
    T* d0 = p.gx + 2 * oy * p.gs;
    T* d1 = d0 + p.gs;
    for (int64_t ox = 0; ox < ow; ++ox) {
      const T a = x0[2 * ox], b = x0[2 * ox + 1], c = x1[2 * ox], d = x1[2 * ox + 1];
      const T v = g[ox];
      // First maximum in window order a, b, c, d: a later tap wins only when strictly greater.
      T best = a;
      int t = 0;
      if (b > best) best = b, t = 1;
      if (c > best) best = c, t = 2;
      if (d > best) best = d, t = 3;
      const T r0 = t == 0 ? v : T(0), r1 = t == 1 ? v : T(0), r2 = t == 2 ? v : T(0), r3 = t == 3 ? v : T(0);
      if (accumulate) {
        d0[2 * ox] += r0, d0[2 * ox + 1] += r1, d1[2 * ox] += r2, d1[2 * ox + 1] += r3;
      } else {
        d0[2 * ox] = r0, d0[2 * ox + 1] = r1, d1[2 * ox] = r2, d1[2 * ox + 1] = r3;
      }
    }
  }
}

template <typename T>
void maxGrad(const Plane<T>& p, int64_t h, int64_t w, int64_t oh, int64_t ow, const Window& k) {
  for (int64_t oy = 0; oy < oh; ++oy) {
    int64_t y0, y1;
    tapRange(oy, k.sh, k.ph, k.kh, h, &y0, &y1);
    for (int64_t ox = 0; ox < ow; ++ox) {
      int64_t x0, x1;
      tapRange(ox, k.sw, k.pw, k.kw, w, &x0, &x1);
      if (y0 >= y1 || x0 >= x1) continue;  // all padding: the gradient goes nowhere
      int64_t by = y0, bx = x0;
      T best = p.x[y0 * p.xs + x0 * p.xc];
      for (int64_t i = y0; i < y1; ++i)
        for (int64_t j = (i == y0 ? x0 + 1 : x0); j < x1; ++j) {
          const T v = p.x[i * p.xs + j * p.xc];
          if (v > best) best = v, by = i, bx = j;
        }
      p.gx[by * p.gs + bx * p.gc] += p.gy[oy * p.ys + ox * p.yc];
    }
  }
}

template <typename T>
void averageGrad(const Plane<T>& p, int64_t h, int64_t w, int64_t oh, int64_t ow, const Window& k) {
  const T scale = T(1) / static_cast<T>(k.kh * k.kw);
  for (int64_t oy = 0; oy < oh; ++oy) {
    int64_t y0, y1;
    tapRange(oy, k.sh, k.ph, k.kh, h, &y0, &y1);
    for (int64_t ox = 0; ox < ow; ++ox) {
      int64_t x0, x1;
      tapRange(ox, k.sw, k.pw, k.kw, w, &x0, &x1);
      const T v = p.gy[oy * p.ys + ox * p.yc] * scale;
      for (int64_t i = y0; i < y1; ++i)
        for (int64_t j = x0; j < x1; ++j) p.gx[i * p.gs + j * p.gc] += v;
    }
  }
}

template <typename T>
void pool2dGrad(const M4<T>* x, const M4<T>* gy, const M4<T>* gx, int32_t kind, const Window& k, bool accumulate) {
  const int64_t n = gx->sizes[0], c = gx->sizes[1], h = gx->sizes[2], w = gx->sizes[3];
  const int64_t oh = gy->sizes[2], ow = gy->sizes[3];
  if (n == 0 || c == 0 || h == 0 || w == 0) return;
  const bool max = kind == kiln::gemm_abi::kPoolMax;
  const bool twoByTwo = max && k.kh == 2 && k.kw == 2 && k.sh == 2 && k.sw == 2 && k.ph == 0 && k.pw == 0 &&
                        2 * oh == h && 2 * ow == w && x->strides[3] == 1 && gx->strides[3] == 1 && gy->strides[3] == 1;
  // Planes in chunks of at least ~32K elements per worker task.
  const int64_t grain = std::max<int64_t>(1, 32768 / (h * w));
  kiln::runtime::parallel_for(n * c, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; ++q) {
      const int64_t b = q / c, ch = q % c;
      Plane<T> p{x->aligned + x->offset + b * x->strides[0] + ch * x->strides[1],
                 gy->aligned + gy->offset + b * gy->strides[0] + ch * gy->strides[1],
                 gx->aligned + gx->offset + b * gx->strides[0] + ch * gx->strides[1],
                 x->strides[2], x->strides[3], gy->strides[2], gy->strides[3], gx->strides[2], gx->strides[3]};
      if (twoByTwo) {
        maxGrad2x2(p, oh, ow, accumulate);
        continue;
      }
      if (!accumulate) zeroPlane(p, h, w);
      if (max)
        maxGrad(p, h, w, oh, ow, k);
      else
        averageGrad(p, h, w, oh, ow, k);
    }
  });
}

}  // namespace

#define KILN_EXPORT extern "C" __attribute__((visibility("default")))

KILN_EXPORT void _mlir_ciface_kiln_pool2d_grad_f32(M4<float>* x, M4<float>* gy, M4<float>* gx, int32_t kind,
                                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                                   int64_t pw, int32_t accumulate) {
  pool2dGrad(x, gy, gx, kind, Window{kh, kw, sh, sw, ph, pw}, accumulate != 0);
}
KILN_EXPORT void _mlir_ciface_kiln_pool2d_grad_f64(M4<double>* x, M4<double>* gy, M4<double>* gx, int32_t kind,
                                                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
                                                   int64_t pw, int32_t accumulate) {
  pool2dGrad(x, gy, gx, kind, Window{kh, kw, sh, sw, ph, pw}, accumulate != 0);
}
