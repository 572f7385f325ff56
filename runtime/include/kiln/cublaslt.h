// cuBLASLt as the cuda backend's library GEMM steps use it on a real GPU (kiln/codegen/cuda.h's
// LibraryGemm): libcublasLt.so.* resolved with dlopen/dlsym into one table typed by the
// toolkit's cublasLt.h (no link-time dependency), one handle per GPU, and every
// cublasStatus_t turned into a kiln::Error naming the call. Thread-safe. Only built where the
// toolkit's cuda.h and cublasLt.h were found (KILN_HAVE_CUBLASLT).
#pragma once

#if KILN_HAVE_CUDA_DRIVER_API && __has_include(<cublasLt.h>)
#define KILN_HAVE_CUBLASLT 1
#include <cublasLt.h>

#include <cuda.h>

#include <cstddef>
#include <string>

namespace kiln::cuda_driver {

#define KILN_CUBLASLT_ENTRY_POINTS(X)                                                                   \
  X(cublasLtGetVersion) X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtMatmulDescCreate)                \
  X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute) X(cublasLtMatrixLayoutCreate)          \
  X(cublasLtMatrixLayoutDestroy) X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)   \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)           \
  X(cublasLtGetStatusString)

struct CublasLtTable {
#define KILN_CUBLASLT_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_CUBLASLT_ENTRY_POINTS(KILN_CUBLASLT_MEMBER)
#undef KILN_CUBLASLT_MEMBER
};

// The table in use: the library's (KILN_CUBLASLT_LIBRARY, else libcublasLt.so.13, .so.12,
// .so, then under /usr/local/cuda/lib64), or the one given to set_cublaslt_for_testing.
// Throws kiln::Error "kiln: cuBLASLt: libcublasLt cannot be loaded (<each name: dlerror>) ..."
// saying that KILN_CUDA_CUBLASLT=0 runs the matmuls as kiln's generated GEMM kernels instead.
const CublasLtTable& cublaslt();

// Throws kiln::Error "kiln: <what>: <call> failed: CUBLAS_STATUS_...: ..." unless rc is
// CUBLAS_STATUS_SUCCESS.
void check_cublas(cublasStatus_t rc, const char* call, const std::string& what);

// kiln's cuBLASLt handle on GPU `device` (created once, its context made current).
cublasLtHandle_t cublaslt_handle(int device);

// The bytes of kiln's cuBLASLt workspace on each GPU.
constexpr size_t kCublasLtWorkspaceBytes = size_t(32) << 20;  // cuBLASLt's advice for Hopper
// kiln's cuBLASLt workspace on GPU `device`: kCublasLtWorkspaceBytes from the device's caching
// allocator, allocated on first use and kept (every library GEMM is ordered on kiln's stream
// of the device, so all share it, also inside captured graphs).
CUdeviceptr cublaslt_workspace(int device);

// Test hook: later calls go through `table` (a fake), nullptr back to the library (loaded
// again, so a changed KILN_CUBLASLT_LIBRARY is seen); handles are forgotten and workspaces
// returned to the allocator either way (call it with no graph of library steps alive).
void set_cublaslt_for_testing(const CublasLtTable* table);

}  // namespace kiln::cuda_driver
#endif
