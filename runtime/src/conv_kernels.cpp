// Convolutions for compiled graphs (KILN_GEMM=blas): the functions that
// -kiln-matmul-to-blas calls for linalg.conv_2d_nchw_fchw and for kiln's
// filter-gradient generic (kiln/gemm_abi.h). Image by image: an im2col pass
// into a [C*kh*kw, oh*ow] matrix of the thread's own (it stays in cache), then
// one cblas GEMM that reads or writes the image's NCHW planes in place. With
// several threads and at least as many images, the images are spread over the
// runtime's worker threads, each running its GEMMs on OpenBLAS single-threaded
// (the CNN's 64x256x288 GEMMs: about 1.3x OpenBLAS's own two threads per
// GEMM); else OpenBLAS threads each GEMM. Inputs arrive padded (the graph
// pads), so every window tap is in bounds.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
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

// Grow-only scratch buffers of the calling thread (slot 0: im2col, 1: a packed
// filter or gy image, 2: a GEMM result image), freed when the thread ends. They live on the
// heap and are listed in a process-wide set while their thread runs, so that a leak checker
// that does not scan thread-local storage (LSan with use_tls=0) still sees them reachable.
template <typename T>
struct ScratchBuffers {
  std::vector<T> slots[3];
};

template <typename T>
struct ScratchOwner {
  struct Live {
    std::mutex mutex;
    std::set<ScratchBuffers<T>*> buffers;
  };
  static Live& live() {
    static Live* l = new Live;  // never destroyed: threads may end after static destructors
    return *l;
  }
  ScratchBuffers<T>* buffers = new ScratchBuffers<T>;
  ScratchOwner() {
    std::lock_guard<std::mutex> lock(live().mutex);
    live().buffers.insert(buffers);
  }
  ~ScratchOwner() {
    {
      std::lock_guard<std::mutex> lock(live().mutex);
      live().buffers.erase(buffers);
    }
    delete buffers;
  }
  ScratchOwner(const ScratchOwner&) = delete;
  ScratchOwner& operator=(const ScratchOwner&) = delete;
};

template <typename T>
T* scratch(int slot, int64_t n) {
  thread_local ScratchOwner<T> owner;
  std::vector<T>& b = owner.buffers->slots[slot];
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

// Whether image b of `m` (N, F, oh, ow) is a row-major [F, oh*ow] matrix with
// leading dimension *ld (its planes contiguous, the planes any distance apart).
template <typename T>
bool planeMatrix(const M4<T>* m, int64_t* ld) {
  const int64_t f = m->sizes[1], plane = m->sizes[2] * m->sizes[3];
  const bool rows = (m->sizes[3] <= 1 || m->strides[3] == 1) && (m->sizes[2] <= 1 || m->strides[2] == m->sizes[3]);
  *ld = f <= 1 ? std::max<int64_t>(plane, 1) : m->strides[1];
  return rows && *ld >= plane;
}

// The geometry of a convolution's window.
struct Taps {
  int64_t kh, kw, oh, ow, sh, sw, dh, dw;
};

// The [C*kh*kw, oh*ow] matrix of image b of x:
// cols[(c*kh + i)*kw + j][y*ow + x] = x[b, c, y*sh + i*dh, x*sw + j*dw].
template <typename T>
void im2col(const M4<T>* x, int64_t b, const Taps& t, T* cols) {
  const int64_t c = x->sizes[1], plane = t.oh * t.ow;
  const int64_t s1 = x->strides[1], s2 = x->strides[2], s3 = x->strides[3], step = t.sw * s3;
  const T* xb = base(x) + b * x->strides[0];
  T* row = cols;
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t i = 0; i < t.kh; ++i)
      for (int64_t j = 0; j < t.kw; ++j, row += plane)
        for (int64_t y = 0; y < t.oh; ++y) {
          const T* src = xb + ch * s1 + (y * t.sh + i * t.dh) * s2 + j * t.dw * s3;
          T* dst = row + y * t.ow;
          if (step == 1)  // a short row: a loop the compiler vectorizes, no memcpy call
            for (int64_t q = 0; q < t.ow; ++q) dst[q] = src[q];
          else
            for (int64_t q = 0; q < t.ow; ++q) dst[q] = src[q * step];
        }
}

// While one lives, OpenBLAS runs every call on its calling thread, so that
// kiln's workers can each run GEMMs of their own. Guards nest and overlap
// (one saved setting, restored by the last to go); a GEMM another thread
// starts meanwhile runs single-threaded too.
class SerialBlas {
 public:
  SerialBlas() {
    std::lock_guard<std::mutex> lock(mutex());
    if (depth()++ == 0) {
      saved() = openblas_get_num_threads();
      if (saved() > 1) openblas_set_num_threads(1);
    }
  }
  ~SerialBlas() {
    std::lock_guard<std::mutex> lock(mutex());
    if (--depth() == 0 && saved() > 1) openblas_set_num_threads(saved());
  }
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& depth() {
    static int d = 0;
    return d;
  }
  static int& saved() {
    static int s = 1;
    return s;
  }
};

// Runs body(lo, hi) over the images [0, n): spread over the worker threads
// with OpenBLAS serial when there are at least as many images as threads,
// else in one call whose GEMMs OpenBLAS threads.
void forImages(int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  kiln::runtime::applyThreadSetting();
  const int threads = kiln::runtime::parallel_threads();
  if (threads <= 1 || n < threads) {
    body(0, n);
    return;
  }
  SerialBlas serial;
  kiln::runtime::parallel_for(n, 1, body);
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
// per image, W[F, K] * cols_n[K, P] written into y's image n (NCHW planes are
// the GEMM's rows; measured faster here than one [F, N*P] GEMM and a transpose).
template <typename T>
void conv2d(const M4<T>* x, const M4<T>* w, const M4<T>* y, int64_t sh, int64_t sw, int64_t dh, int64_t dw,
            bool accumulate) {
  const int64_t n = y->sizes[0], f = y->sizes[1], oh = y->sizes[2], ow = y->sizes[3];
  const int64_t kh = w->sizes[2], kw = w->sizes[3], k = w->sizes[1] * kh * kw, plane = oh * ow;
  if (n == 0 || plane == 0 || f == 0) return;
  T* yb = base(y);
  auto at = [&](int64_t b, int64_t o, int64_t yy, int64_t xx) -> T& {
    return yb[b * y->strides[0] + o * y->strides[1] + yy * y->strides[2] + xx * y->strides[3]];
  };
  if (k == 0) {
    if (!accumulate)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < f; ++o)
          for (int64_t yy = 0; yy < oh; ++yy)
            for (int64_t xx = 0; xx < ow; ++xx) at(b, o, yy, xx) = T(0);
    return;
  }
  int64_t ldw = 0, ldy = 0;
  const T* wm = filterMatrix(w, &ldw);
  const bool planes = planeMatrix(y, &ldy);
  const T beta = accumulate ? T(1) : T(0);
  const Taps taps{kh, kw, oh, ow, sh, sw, dh, dw};
  forImages(n, [&](int64_t lo, int64_t hi) {
    T* cols = scratch<T>(0, k * plane);
    T* image = planes ? nullptr : scratch<T>(2, f * plane);
    for (int64_t b = lo; b < hi; ++b) {
      im2col(x, b, taps, cols);
      if (planes) {
        gemmCall(false, f, plane, k, wm, ldw, cols, plane, beta, yb + b * y->strides[0], ldy);
        continue;
      }
      gemmCall(false, f, plane, k, wm, ldw, cols, plane, T(0), image, plane);
      for (int64_t o = 0; o < f; ++o)
        for (int64_t yy = 0; yy < oh; ++yy)
          for (int64_t xx = 0; xx < ow; ++xx) {
            T& d = at(b, o, yy, xx);
            const T v = image[o * plane + yy * ow + xx];
            d = accumulate ? d + v : v;
          }
    }
  });
}

// gw[f, c, i, j] (+)= sum over n, y, x of x[n, c, y*sh + i*dh, x*sw + j*dw] * gy[n, f, y, x]:
// GEMMs gy_n[F, P] * cols_n[K, P]^T accumulated over the images, in one
// [F, K] sum per part of the batch (the parts run on the worker threads),
// then the parts added up in order.
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
  int64_t ldg = 0;
  const bool planes = planeMatrix(gy, &ldg);
  const Taps taps{kh, kw, oh, ow, sh, sw, dh, dw};
  // Part p sums the images [p*n/parts, (p+1)*n/parts) into sums + p*f*k: up
  // to 8 parts, their sums within 16 MB. The parts do not depend on the thread
  // count, nor the result on which thread ran which part.
  const int64_t parts = std::clamp<int64_t>(std::min<int64_t>((int64_t{1} << 22) / (f * k), 8), 1, n);
  std::vector<T> sums(static_cast<size_t>(parts * f * k));
  forImages(parts, [&](int64_t lo, int64_t hi) {
    T* cols = scratch<T>(0, k * plane);
    T* packed = planes ? nullptr : scratch<T>(1, f * plane);
    for (int64_t p = lo; p < hi; ++p)
      for (int64_t b = p * n / parts, end = (p + 1) * n / parts; b < end; ++b) {
        im2col(x, b, taps, cols);
        const T* g = base(gy) + b * gy->strides[0];
        int64_t ld = ldg;
        if (!planes) {
          for (int64_t o = 0; o < f; ++o)
            for (int64_t yy = 0; yy < oh; ++yy)
              for (int64_t xx = 0; xx < ow; ++xx)
                packed[o * plane + yy * ow + xx] = g[o * gy->strides[1] + yy * gy->strides[2] + xx * gy->strides[3]];
          g = packed;
          ld = plane;
        }
        gemmCall(true, f, k, plane, g, ld, cols, plane, b > p * n / parts ? T(1) : T(0), sums.data() + p * f * k, k);
      }
  });
  for (int64_t p = 1; p < parts; ++p) {
    const T* part = sums.data() + p * f * k;
    for (int64_t q = 0; q < f * k; ++q) sums[static_cast<size_t>(q)] += part[q];
  }
  for (int64_t o = 0; o < f; ++o)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const T v = sums[static_cast<size_t>(((o * c + ch) * kh + i) * kw + j)];
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
