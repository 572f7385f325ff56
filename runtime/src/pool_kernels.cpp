// Pooling and its gradients for compiled graphs (KILN_GEMM=blas, and by default):
// the functions that -kiln-matmul-to-blas calls for linalg.pooling_nchw_max / _sum
// and for the linalg.generic marked kiln.pool2d_grad (kiln/gemm_abi.h). One pass
// over each (n, c) plane, planes spread over the runtime's worker threads. Max pooling routes each window's
// gradient to its first in-bounds maximum in window order (Chainer's, and the
// interpreter's, choice on ties); average pooling spreads gy / (kh * kw) over
// the window's in-bounds taps (padding counts in the divisor).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

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

// The rows of output row oy's 2x2 windows: x's and gx's rows 2 oy and 2 oy + 1, gy's row oy.
template <typename T>
struct RowPair {
  const T *x0, *x1, *g;
  T *d0, *d1;
};
template <typename T>
inline RowPair<T> rowPair(const Plane<T>& p, int64_t oy) {
  const T* x0 = p.x + 2 * oy * p.xs;
  T* d0 = p.gx + 2 * oy * p.gs;
  return {x0, x0 + p.xs, p.gy + oy * p.ys, d0, d0 + p.gs};
}

// 2x2 windows at stride 2 without padding (the usual CNN pooling), unit column
// strides: each pair of rows of x gives one row of gx's pairs; no accumulation
// between windows, so gx is written once (or added to once). This scalar form
// serves f64, row tails and hosts without AVX2 (GCC does not vectorize it: the
// compares may trap under -ftrapping-math); the f32 kernels below do the same
// selects with AVX-512F / AVX2 intrinsics, picked at run time from the host's
// CPU (the runtime itself is built for the baseline ISA).
template <typename T, bool kAccumulate>
inline __attribute__((always_inline)) void maxGrad2x2Rows(const Plane<T>& p, int64_t oh, int64_t ow) {
  for (int64_t oy = 0; oy < oh; ++oy) {
    const auto [x0, x1, g, d0, d1] = rowPair(p, oy);
    for (int64_t ox = 0; ox < ow; ++ox) {
      const T a = x0[2 * ox], b = x0[2 * ox + 1], c = x1[2 * ox], d = x1[2 * ox + 1];
      const T v = g[ox];
      // First maximum in window order a, b, c, d: a later tap wins only when strictly greater.
      const bool tb = b > a;
      T best = tb ? b : a;
      const bool tc = c > best;
      best = tc ? c : best;
      const bool td = d > best;
      const T r3 = td ? v : T(0);
      const T r2 = (tc & !td) ? v : T(0);  // & not &&: no branches, so the loop if-converts
      const T r1 = (tb & !tc & !td) ? v : T(0);
      const T r0 = (!tb & !tc & !td) ? v : T(0);
      if (kAccumulate) {
        d0[2 * ox] += r0, d0[2 * ox + 1] += r1, d1[2 * ox] += r2, d1[2 * ox + 1] += r3;
      } else {
        d0[2 * ox] = r0, d0[2 * ox + 1] = r1, d1[2 * ox] = r2, d1[2 * ox + 1] = r3;
      }
    }
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KILN_POOL_X86 1
#include <immintrin.h>

// One AVX-512 step: 16 windows of rows x0/x1 at columns [2 * ox, 2 * ox + 32),
// n <= 16 of them in bounds (masked loads and stores for the rest of the row).
template <bool kAccumulate>
__attribute__((target("avx512f"))) inline void maxGrad2x2Avx512Step(const float* x0, const float* x1,
                                                                    const float* g, float* d0, float* d1,
                                                                    int64_t n) {
  auto bits = [](int64_t k) -> __mmask16 { return k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << k) - 1); };
  const __mmask16 mg = bits(n), m0 = bits(std::min<int64_t>(2 * n, 16)), m1 = bits(std::max<int64_t>(2 * n - 16, 0));
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512 x0a = _mm512_maskz_loadu_ps(m0, x0), x0b = _mm512_maskz_loadu_ps(m1, x0 + 16);
  const __m512 x1a = _mm512_maskz_loadu_ps(m0, x1), x1b = _mm512_maskz_loadu_ps(m1, x1 + 16);
  const __m512 a = _mm512_permutex2var_ps(x0a, even, x0b), b = _mm512_permutex2var_ps(x0a, odd, x0b);
  const __m512 c = _mm512_permutex2var_ps(x1a, even, x1b), d = _mm512_permutex2var_ps(x1a, odd, x1b);
  const __m512 v = _mm512_maskz_loadu_ps(mg, g);
  // First maximum in window order a, b, c, d (ordered compares: NaN never wins, as in the scalar code).
  const __mmask16 tb = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ);
  __m512 best = _mm512_mask_blend_ps(tb, a, b);
  const __mmask16 tc = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ);
  best = _mm512_mask_blend_ps(tc, best, c);
  const __mmask16 td = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ);
  const __m512 r3 = _mm512_maskz_mov_ps(td, v), r2 = _mm512_maskz_mov_ps(tc & ~td, v);
  const __m512 r1 = _mm512_maskz_mov_ps(tb & ~tc & ~td, v), r0 = _mm512_maskz_mov_ps(~(tb | tc | td), v);
  __m512 d0a = _mm512_permutex2var_ps(r0, lo, r1), d0b = _mm512_permutex2var_ps(r0, hi, r1);
  __m512 d1a = _mm512_permutex2var_ps(r2, lo, r3), d1b = _mm512_permutex2var_ps(r2, hi, r3);
  if (kAccumulate) {
    d0a = _mm512_add_ps(d0a, _mm512_maskz_loadu_ps(m0, d0)), d0b = _mm512_add_ps(d0b, _mm512_maskz_loadu_ps(m1, d0 + 16));
    d1a = _mm512_add_ps(d1a, _mm512_maskz_loadu_ps(m0, d1)), d1b = _mm512_add_ps(d1b, _mm512_maskz_loadu_ps(m1, d1 + 16));
  }
  _mm512_mask_storeu_ps(d0, m0, d0a), _mm512_mask_storeu_ps(d0 + 16, m1, d0b);
  _mm512_mask_storeu_ps(d1, m0, d1a), _mm512_mask_storeu_ps(d1 + 16, m1, d1b);
}

template <bool kAccumulate>
__attribute__((target("avx512f"))) void maxGrad2x2Avx512(const Plane<float>& p, int64_t oh, int64_t ow) {
  for (int64_t oy = 0; oy < oh; ++oy) {
    const auto [x0, x1, g, d0, d1] = rowPair(p, oy);
    for (int64_t ox = 0; ox < ow; ox += 16)
      maxGrad2x2Avx512Step<kAccumulate>(x0 + 2 * ox, x1 + 2 * ox, g + ox, d0 + 2 * ox, d1 + 2 * ox,
                                        std::min<int64_t>(16, ow - ox));
  }
}

// AVX2: the even and odd columns of the 16 floats at r (shuffle within 128-bit
// lanes, then put the 64-bit halves in order), and back.
__attribute__((target("avx2"))) inline void splitEvenOdd(const float* r, __m256* even, __m256* odd) {
  const __m256 u = _mm256_loadu_ps(r), w = _mm256_loadu_ps(r + 8);
  *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(u, w, 0x88)), 0xD8));
  *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(u, w, 0xDD)), 0xD8));
}
template <bool kAccumulate>
__attribute__((target("avx2"))) inline void mergeEvenOdd(float* r, __m256 even, __m256 odd) {
  const __m256 l = _mm256_unpacklo_ps(even, odd), h = _mm256_unpackhi_ps(even, odd);
  __m256 u = _mm256_permute2f128_ps(l, h, 0x20), w = _mm256_permute2f128_ps(l, h, 0x31);
  if (kAccumulate) u = _mm256_add_ps(u, _mm256_loadu_ps(r)), w = _mm256_add_ps(w, _mm256_loadu_ps(r + 8));
  _mm256_storeu_ps(r, u), _mm256_storeu_ps(r + 8, w);
}

// AVX2: 8 windows a step over full steps, the row's rest in scalar code.
template <bool kAccumulate>
__attribute__((target("avx2"))) void maxGrad2x2Avx2(const Plane<float>& p, int64_t oh, int64_t ow) {
  const int64_t full = ow / 8 * 8;
  for (int64_t oy = 0; oy < oh; ++oy) {
    const auto [x0, x1, g, d0, d1] = rowPair(p, oy);
    for (int64_t ox = 0; ox < full; ox += 8) {
      __m256 a, b, c, d;
      splitEvenOdd(x0 + 2 * ox, &a, &b);
      splitEvenOdd(x1 + 2 * ox, &c, &d);
      const __m256 v = _mm256_loadu_ps(g + ox), zero = _mm256_setzero_ps();
      const __m256 tb = _mm256_cmp_ps(b, a, _CMP_GT_OQ);
      __m256 best = _mm256_blendv_ps(a, b, tb);
      const __m256 tc = _mm256_cmp_ps(c, best, _CMP_GT_OQ);
      best = _mm256_blendv_ps(best, c, tc);
      const __m256 td = _mm256_cmp_ps(d, best, _CMP_GT_OQ);
      const __m256 r3 = _mm256_and_ps(td, v), r2 = _mm256_andnot_ps(td, _mm256_and_ps(tc, v));
      const __m256 r1 = _mm256_andnot_ps(_mm256_or_ps(tc, td), _mm256_and_ps(tb, v));
      const __m256 r0 = _mm256_blendv_ps(v, zero, _mm256_or_ps(tb, _mm256_or_ps(tc, td)));
      mergeEvenOdd<kAccumulate>(d0 + 2 * ox, r0, r1);
      mergeEvenOdd<kAccumulate>(d1 + 2 * ox, r2, r3);
    }
    if (full < ow) {
      Plane<float> rest{x0 + 2 * full, g + full, d0 + 2 * full, p.xs, 1, p.ys, 1, p.gs, 1};
      maxGrad2x2Rows<float, kAccumulate>(rest, 1, ow - full);
    }
  }
}

// The ISA level of the host, read once: 2 AVX-512F, 1 AVX2, 0 neither.
// KILN_POOL_ISA_LEVEL caps it when the runtime is built for tests of the lower paths.
int hostIsaLevel() {
  static const int level = [] {
    int l = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
#ifdef KILN_POOL_ISA_LEVEL
    l = std::min(l, KILN_POOL_ISA_LEVEL);
#endif
    return l;
  }();
  return level;
}
#endif

void maxGrad2x2(const Plane<float>& p, int64_t oh, int64_t ow, bool accumulate) {
#ifdef KILN_POOL_X86
  switch (hostIsaLevel()) {
    case 2:
      return accumulate ? maxGrad2x2Avx512<true>(p, oh, ow) : maxGrad2x2Avx512<false>(p, oh, ow);
    case 1:
      return accumulate ? maxGrad2x2Avx2<true>(p, oh, ow) : maxGrad2x2Avx2<false>(p, oh, ow);
    default:
      break;
  }
#endif
  if (accumulate)
    maxGrad2x2Rows<float, true>(p, oh, ow);
  else
    maxGrad2x2Rows<float, false>(p, oh, ow);
}
void maxGrad2x2(const Plane<double>& p, int64_t oh, int64_t ow, bool accumulate) {
  if (accumulate)
    maxGrad2x2Rows<double, true>(p, oh, ow);
  else
    maxGrad2x2Rows<double, false>(p, oh, ow);
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

// The forward: y = max (NaN-propagating, as arith.maximumf) or sum over each window of
// an already padded x (every tap in bounds), onto y itself when accumulating, else onto
// the identity (-inf or 0).
struct Taps2 {
  int64_t kh, kw, sh, sw, dh, dw;
};

template <typename T>
inline T maxNaN(T a, T b) {
  return (a != a || a > b) ? a : (b != b ? b : (a == b ? (std::signbit(a) ? b : a) : b));
}

// One plane: x h x w (row stride xs, column stride xc), y oh x ow (ys, yc). Row by row,
// the taps outermost and the output columns innermost, so a unit-stride row is one
// vectorizable loop per tap.
template <typename T>
void poolRows(const T* x, int64_t xs, int64_t xc, T* y, int64_t ys, int64_t yc, int64_t oh, int64_t ow,
              const Taps2& k, bool max, bool accumulate) {
  const T identity = max ? -std::numeric_limits<T>::infinity() : T(0);
  for (int64_t oy = 0; oy < oh; ++oy) {
    T* row = y + oy * ys;
    if (!accumulate)
      for (int64_t ox = 0; ox < ow; ++ox) row[ox * yc] = identity;
    for (int64_t i = 0; i < k.kh; ++i) {
      const T* src = x + (oy * k.sh + i * k.dh) * xs;
      for (int64_t j = 0; j < k.kw; ++j) {
        const T* tap = src + j * k.dw * xc;
        const int64_t step = k.sw * xc;
        if (max)
          for (int64_t ox = 0; ox < ow; ++ox) row[ox * yc] = maxNaN(row[ox * yc], tap[ox * step]);
        else
          for (int64_t ox = 0; ox < ow; ++ox) row[ox * yc] += tap[ox * step];
      }
    }
  }
}

#ifdef KILN_POOL_X86
// maxNaN, 16 lanes: _mm512_max_ps returns its second operand when either is NaN or both
// are zeros, so equal lanes take a & b (+0 from +0 and -0) and a's NaNs are put back.
__attribute__((target("avx512f"))) inline __m512 maxNaN512(__m512 a, __m512 b) {
  const __m512 both = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  const __m512 m = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ), _mm512_max_ps(a, b), both);
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), m, a);
}

// 2x2 windows at stride 2 over unit-stride rows: 16 outputs a step from 32 columns of
// two rows (masked loads and stores for the row's rest).
__attribute__((target("avx512f"))) void maxPool2x2Avx512(const float* x, int64_t xs, float* y, int64_t ys,
                                                         int64_t oh, int64_t ow, bool accumulate) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  auto bits = [](int64_t k) -> __mmask16 { return k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << k) - 1); };
  for (int64_t oy = 0; oy < oh; ++oy) {
    const float* x0 = x + 2 * oy * xs;
    const float* x1 = x0 + xs;
    float* row = y + oy * ys;
    for (int64_t ox = 0; ox < ow; ox += 16) {
      const int64_t n = std::min<int64_t>(16, ow - ox);
      const __mmask16 mg = bits(n), m0 = bits(std::min<int64_t>(2 * n, 16)), m1 = bits(std::max<int64_t>(2 * n - 16, 0));
      const float* r0 = x0 + 2 * ox;
      const float* r1 = x1 + 2 * ox;
      const __m512 a0 = _mm512_maskz_loadu_ps(m0, r0), a1 = _mm512_maskz_loadu_ps(m1, r0 + 16);
      const __m512 b0 = _mm512_maskz_loadu_ps(m0, r1), b1 = _mm512_maskz_loadu_ps(m1, r1 + 16);
      // Window order a, b, c, d (the first row's pair, then the second's), as the generic loops.
      __m512 m = maxNaN512(_mm512_permutex2var_ps(a0, even, a1), _mm512_permutex2var_ps(a0, odd, a1));
      m = maxNaN512(m, _mm512_permutex2var_ps(b0, even, b1));
      m = maxNaN512(m, _mm512_permutex2var_ps(b0, odd, b1));
      if (accumulate) m = maxNaN512(_mm512_maskz_loadu_ps(mg, row + ox), m);
      _mm512_mask_storeu_ps(row + ox, mg, m);
    }
  }
}

// The same in AVX2: 8 outputs a step from 16 columns of two rows, the row's rest scalar.
__attribute__((target("avx2"))) inline __m256 maxNaN256(__m256 a, __m256 b) {
  const __m256 m = _mm256_blendv_ps(_mm256_max_ps(a, b), _mm256_and_ps(a, b), _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
  return _mm256_blendv_ps(m, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}
__attribute__((target("avx2"))) void maxPool2x2Avx2(const float* x, int64_t xs, float* y, int64_t ys, int64_t oh,
                                                    int64_t ow, bool accumulate) {
  const int64_t full = ow / 8 * 8;
  for (int64_t oy = 0; oy < oh; ++oy) {
    const float* x0 = x + 2 * oy * xs;
    const float* x1 = x0 + xs;
    float* row = y + oy * ys;
    for (int64_t ox = 0; ox < full; ox += 8) {
      __m256 a, b, c, d;
      splitEvenOdd(x0 + 2 * ox, &a, &b);
      splitEvenOdd(x1 + 2 * ox, &c, &d);
      __m256 m = maxNaN256(maxNaN256(maxNaN256(a, b), c), d);
      if (accumulate) m = maxNaN256(_mm256_loadu_ps(row + ox), m);
      _mm256_storeu_ps(row + ox, m);
    }
    if (full < ow)
      poolRows(x0 + 2 * full, xs, int64_t{1}, row + full, ys, int64_t{1}, int64_t{1}, ow - full, Taps2{2, 2, 2, 2, 1, 1},
               true, accumulate);
  }
}
#endif

template <typename T>
void pool2dForward(const M4<T>* x, const M4<T>* y, int32_t kind, const Taps2& k, bool accumulate) {
  const int64_t n = y->sizes[0], c = y->sizes[1], oh = y->sizes[2], ow = y->sizes[3];
  if (n == 0 || c == 0 || oh == 0 || ow == 0) return;
  const bool max = kind == kiln::gemm_abi::kPoolMax;
  const int64_t plane = std::max<int64_t>(1, x->sizes[2] * x->sizes[3]);
  const int64_t grain = std::max<int64_t>(1, 32768 / plane);
  kiln::runtime::parallel_for(n * c, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; ++q) {
      const int64_t b = q / c, ch = q % c;
      const T* xp = x->aligned + x->offset + b * x->strides[0] + ch * x->strides[1];
      T* yp = y->aligned + y->offset + b * y->strides[0] + ch * y->strides[1];
#ifdef KILN_POOL_X86
      if constexpr (std::is_same_v<T, float>)
        if (max && k.kh == 2 && k.kw == 2 && k.sh == 2 && k.sw == 2 && k.dh == 1 && k.dw == 1 &&
            x->strides[3] == 1 && y->strides[3] == 1 && hostIsaLevel() >= 1) {
          if (hostIsaLevel() >= 2)
            maxPool2x2Avx512(xp, x->strides[2], yp, y->strides[2], oh, ow, accumulate);
          else
            maxPool2x2Avx2(xp, x->strides[2], yp, y->strides[2], oh, ow, accumulate);
          continue;
        }
#endif
      poolRows(xp, x->strides[2], x->strides[3], yp, y->strides[2], y->strides[3], oh, ow, k, max, accumulate);
    }
  });
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
KILN_EXPORT void _mlir_ciface_kiln_pool2d_f32(M4<float>* x, M4<float>* y, int32_t kind, int64_t kh, int64_t kw,
                                              int64_t sh, int64_t sw, int64_t dh, int64_t dw, int32_t accumulate) {
  pool2dForward(x, y, kind, Taps2{kh, kw, sh, sw, dh, dw}, accumulate != 0);
}
KILN_EXPORT void _mlir_ciface_kiln_pool2d_f64(M4<double>* x, M4<double>* y, int32_t kind, int64_t kh, int64_t kw,
                                              int64_t sh, int64_t sw, int64_t dh, int64_t dw, int32_t accumulate) {
  pool2dForward(x, y, kind, Taps2{kh, kw, sh, sw, dh, dw}, accumulate != 0);
}
