// GEMM for compiled graphs (KILN_GEMM=blas): the functions that -kiln-matmul-to-blas calls,
// on top of OpenBLAS's cblas. The JIT finds them in the process (libkiln exports them).
//
// Their ABI is kiln/gemm_abi.h: MLIR memref descriptors (the C interface of a
// function declared with `llvm.emit_c_interface`); C += op(A) * op(B), linalg's
// semantics, or C = op(A) * op(B) (beta 0) when `accumulate` is 0:
// -kiln-matmul-to-blas passes 0 when C was just filled with zeros, and removes that fill.
//
// Also, when libkiln is loaded: OpenBLAS's kernels for the host's vector ISA where OpenBLAS
// itself did not recognize the CPU (openBlasKernelsForTheHost).
#include "kiln/gemm_abi.h"

#include <cblas.h>
#include <dlfcn.h>
#include <strings.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "kiln/env.h"
#include "parallel.h"

namespace kiln::runtime {

void applyThreadSetting() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (int n = kiln::env::num_threads(); n > 0) openblas_set_num_threads(n);
  });
}

}  // namespace kiln::runtime

namespace {

// A DYNAMIC_ARCH OpenBLAS (Debian's) picks its kernels by the CPU's family and model when it
// is loaded, and a model newer than the build falls back to Prescott's SSE3 kernels: 0.3.21
// on Intel family 6 model 207 (AVX-512) runs sgemm 64x256x288 (the CNN's convolution GEMM) at
// 30 GFLOP/s on one core, its SkylakeX kernels at 135. So when OPENBLAS_CORETYPE is unset (a
// setting of the user's is kept) and OpenBLAS's core uses neither AVX2 nor AVX-512 although
// the host has them, OpenBLAS selects again, with the core of the host's ISA: SkylakeX with
// AVX-512 F/CD/BW/DQ/VL, else Haswell with AVX2 + FMA. Through OpenBLAS's own dynamic-arch
// entry points (gotoblas_dynamic_quit / _init, which read OPENBLAS_CORETYPE), at libkiln's
// load: after OpenBLAS's initialization, before anything calls it. Any other BLAS: nothing.
void openBlasKernelsForTheHost() {
#if defined(__x86_64__)
  if (std::getenv("OPENBLAS_CORETYPE")) return;
  auto quit = reinterpret_cast<void (*)()>(::dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<void (*)()>(::dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (!quit || !init) return;  // not a DYNAMIC_ARCH OpenBLAS
  const char* core = openblas_get_corename();
  for (const char* vector_core : {"Haswell", "Zen", "Excavator", "SkylakeX", "Cooperlake", "SapphireRapids"})
    if (core && ::strcasecmp(core, vector_core) == 0) return;
  __builtin_cpu_init();
  const char* host = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    host = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    host = "Haswell";
  if (!host) return;
  ::setenv("OPENBLAS_CORETYPE", host, 1);
  quit();
  init();
  ::unsetenv("OPENBLAS_CORETYPE");
#endif
}

const struct OpenBlasKernelsAtLoad {
  OpenBlasKernelsAtLoad() { openBlasKernelsForTheHost(); }
} open_blas_kernels_at_load;

using kiln::gemm_abi::StridedMemRef;

using kiln::runtime::applyThreadSetting;

// A rows x cols matrix at `data`, element (i, j) at data[i * rs + j * cs].
template <typename T>
struct View {
  T* data;
  int64_t rows, cols, rs, cs;
  View transposed() const { return {data, cols, rows, cs, rs}; }
};

// How cblas (row-major) can read a view: as is (NoTrans, ld = row stride), as
// the transpose of a row-major matrix (Trans, ld = column stride), or not at all.
struct BlasForm {
  bool ok = false;
  bool trans = false;
  int64_t ld = 0;
};

template <typename T>
BlasForm blasForm(const View<T>& v) {
  // A dimension of size 1 can have any stride.
  if (v.cols <= 1 || v.cs == 1) {
    int64_t ld = v.rows <= 1 ? std::max<int64_t>(v.cols, 1) : v.rs;
    if (ld >= std::max<int64_t>(v.cols, 1)) return {true, false, ld};
  }
  if (v.rows <= 1 || v.rs == 1) {
    int64_t ld = v.cols <= 1 ? std::max<int64_t>(v.rows, 1) : v.cs;
    if (ld >= std::max<int64_t>(v.rows, 1)) return {true, true, ld};
  }
  return {};
}

// A contiguous row-major copy of `v`.
template <typename T>
std::vector<T> contiguous(const View<T>& v) {
  std::vector<T> out(static_cast<size_t>(v.rows * v.cols));
  for (int64_t i = 0; i < v.rows; ++i)
    for (int64_t j = 0; j < v.cols; ++j) out[i * v.cols + j] = v.data[i * v.rs + j * v.cs];
  return out;
}

inline void gemmCall(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const float* a,
                     int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void gemmCall(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const double* a,
                     int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

// C (m x n) += A (m x k) * B (k x n), or C = A * B without `accumulate`; any strides.
template <typename T>
void gemm(View<T> a, View<T> b, View<T> c, bool accumulate) {
  int64_t m = c.rows, n = c.cols, k = a.cols;
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) c.data[i * c.rs + j * c.cs] = T(0);
    return;
  }
  // cblas wants C row-major: if C is column-major instead, compute C^T += B^T A^T.
  if (!(n <= 1 || c.cs == 1) && (m <= 1 || c.rs == 1)) {
    View<T> at = a.transposed(), bt = b.transposed();
    a = bt;
    b = at;
    c = c.transposed();
    std::swap(m, n);
  }
  BlasForm cf = blasForm(c);
  std::vector<T> cCopy;
  View<T> cWork = c;
  if (!cf.ok || cf.trans) {
    cCopy = accumulate ? contiguous(c) : std::vector<T>(static_cast<size_t>(m * n));
    cWork = {cCopy.data(), m, n, n, 1};
    cf = {true, false, n};
  }
  std::vector<T> aCopy, bCopy;
  BlasForm af = blasForm(a), bf = blasForm(b);
  if (!af.ok) {
    aCopy = contiguous(a);
    a = {aCopy.data(), a.rows, a.cols, a.cols, 1};
    af = {true, false, std::max<int64_t>(a.cols, 1)};
  }
  if (!bf.ok) {
    bCopy = contiguous(b);
    b = {bCopy.data(), b.rows, b.cols, b.cols, 1};
    bf = {true, false, std::max<int64_t>(b.cols, 1)};
  }
  gemmCall(af.trans ? CblasTrans : CblasNoTrans, bf.trans ? CblasTrans : CblasNoTrans, m, n, k, a.data, af.ld,
           b.data, bf.ld, T(accumulate ? 1 : 0), cWork.data, cf.ld);
  if (!cCopy.empty())
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c.data[i * c.rs + j * c.cs] = cCopy[i * n + j];
}

// The logical op(X) of a descriptor's last two dims, at batch `batch` for rank 3.
template <typename T, int N>
View<T> viewOf(const StridedMemRef<T, N>* d, bool trans, int64_t batch = 0) {
  const int r = N - 2, c = N - 1;
  T* data = d->aligned + d->offset + (N == 3 ? batch * d->strides[0] : 0);
  View<T> v{data, d->sizes[r], d->sizes[c], d->strides[r], d->strides[c]};
  return trans ? v.transposed() : v;
}

template <typename T>
void gemm2d(StridedMemRef<T, 2>* a, StridedMemRef<T, 2>* b, StridedMemRef<T, 2>* c, int32_t ta, int32_t tb,
            int32_t accumulate) {
  applyThreadSetting();
  gemm(viewOf(a, ta != 0), viewOf(b, tb != 0), viewOf(c, false), accumulate != 0);
}

template <typename T>
void gemm3d(StridedMemRef<T, 3>* a, StridedMemRef<T, 3>* b, StridedMemRef<T, 3>* c, int32_t ta, int32_t tb,
            int32_t accumulate) {
  applyThreadSetting();
  for (int64_t i = 0; i < c->sizes[0]; ++i)
    gemm(viewOf(a, ta != 0, i), viewOf(b, tb != 0, i), viewOf(c, false, i), accumulate != 0);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void _mlir_ciface_kiln_gemm_f32(StridedMemRef<float, 2>* a,
                                                                         StridedMemRef<float, 2>* b,
                                                                         StridedMemRef<float, 2>* c, int32_t ta,
                                                                         int32_t tb, int32_t accumulate) {
  gemm2d(a, b, c, ta, tb, accumulate);
}

__attribute__((visibility("default"))) void _mlir_ciface_kiln_gemm_f64(StridedMemRef<double, 2>* a,
                                                                         StridedMemRef<double, 2>* b,
                                                                         StridedMemRef<double, 2>* c, int32_t ta,
                                                                         int32_t tb, int32_t accumulate) {
  gemm2d(a, b, c, ta, tb, accumulate);
}

__attribute__((visibility("default"))) void _mlir_ciface_kiln_batch_gemm_f32(StridedMemRef<float, 3>* a,
                                                                               StridedMemRef<float, 3>* b,
                                                                               StridedMemRef<float, 3>* c,
                                                                               int32_t ta, int32_t tb,
                                                                               int32_t accumulate) {
  gemm3d(a, b, c, ta, tb, accumulate);
}

__attribute__((visibility("default"))) void _mlir_ciface_kiln_batch_gemm_f64(StridedMemRef<double, 3>* a,
                                                                               StridedMemRef<double, 3>* b,
                                                                               StridedMemRef<double, 3>* c,
                                                                               int32_t ta, int32_t tb,
                                                                               int32_t accumulate) {
  gemm3d(a, b, c, ta, tb, accumulate);
}

}  // extern "C"
