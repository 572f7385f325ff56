// libcublasLt through dlopen (kiln/cublaslt.h).
#include "kiln/cublaslt.h"

#if KILN_HAVE_CUBLASLT
#include <memory>
#include <mutex>

#include "kiln/cuda_driver.h"
#include "kiln/dl_library.h"
#include "kiln/error.h"

namespace kiln::cuda_driver {
namespace {

struct LoadedLt {
  CublasLtTable table;
  std::string reason;  // why it cannot be used; "" when it can
};

LoadedLt loadLibrary() {
  LoadedLt r;
  dl::Opened lib = dl::open_first(dl::candidates(
      "KILN_CUBLASLT_LIBRARY", {"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so",
                                "/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so"}));
  if (!lib.handle) {
    r.reason = "libcublasLt cannot be loaded (" + lib.tried + ")";
    return r;
  }
  if (std::string missing = KILN_DL_RESOLVE_TABLE(lib.handle, r.table, KILN_CUBLASLT_ENTRY_POINTS); !missing.empty())
    r.reason = "the loaded libcublasLt lacks " + missing + " (older than kiln's CUDA toolkit)";
  return r;
}

constexpr int kMaxDevices = 64;

struct State {
  std::mutex mutex;
  std::shared_ptr<const LoadedLt> loaded;
  cublasLtHandle_t handles[kMaxDevices] = {};
  CUdeviceptr workspaces[kMaxDevices] = {};
};
State& state() {
  static State s;
  return s;
}

std::shared_ptr<const LoadedLt> loaded() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.loaded) s.loaded = std::make_shared<const LoadedLt>(loadLibrary());
  return s.loaded;
}

}  // namespace

const CublasLtTable& cublaslt() {
  std::shared_ptr<const LoadedLt> l = loaded();
  if (!l->reason.empty())
    throw Error("kiln: cuBLASLt: " + l->reason +
                ": the cuda backend runs matmul regions on cuBLASLt (the CUDA toolkit's libcublasLt; "
                "KILN_CUBLASLT_LIBRARY names it); KILN_CUDA_CUBLASLT=0 runs them as kiln's generated GEMM kernels");
  return l->table;  // alive until the next set_cublaslt_for_testing (tests only)
}

void check_cublas(cublasStatus_t rc, const char* call, const std::string& what) {
  if (rc == CUBLAS_STATUS_SUCCESS) return;
  const CublasLtTable& t = cublaslt();
  const char* text = t.cublasLtGetStatusString ? t.cublasLtGetStatusString(rc) : nullptr;
  throw Error("kiln: " + what + ": " + call + " failed: " + (text ? text : "cublasStatus_t " + std::to_string(rc)));
}

cublasLtHandle_t cublaslt_handle(int device) {
  const CublasLtTable& t = cublaslt();
  if (device < 0 || device >= kMaxDevices)
    throw Error("kiln: cublaslt_handle: argument device: expected a GPU index below " + std::to_string(kMaxDevices) +
                ", got " + std::to_string(device));
  make_current(device);
  State& s = state();
  cublasStatus_t rc = CUBLAS_STATUS_SUCCESS;
  cublasLtHandle_t h = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.handles[device]) rc = t.cublasLtCreate(&s.handles[device]);
    h = s.handles[device];
  }
  check_cublas(rc, "cublasLtCreate", "cuBLASLt: a handle on @cuda:" + std::to_string(device));  // (outside the lock)
  return h;
}

CUdeviceptr cublaslt_workspace(int device) {
  if (device < 0 || device >= kMaxDevices)
    throw Error("kiln: cublaslt_workspace: argument device: expected a GPU index below " + std::to_string(kMaxDevices) +
                ", got " + std::to_string(device));
  State& s = state();
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.workspaces[device]) return s.workspaces[device];
  }
  CUdeviceptr block = DeviceAllocator::of(device).allocate(kCublasLtWorkspaceBytes, stream(device));
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.workspaces[device]) {  // another thread was first
    DeviceAllocator::of(device).release(block, kCublasLtWorkspaceBytes, stream(device));
    return s.workspaces[device];
  }
  return s.workspaces[device] = block;
}

void set_cublaslt_for_testing(const CublasLtTable* table) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  for (cublasLtHandle_t& h : s.handles) h = nullptr;  // the fake's (or an old library's): not destroyed here
  for (int d = 0; d < kMaxDevices; ++d)
    if (CUdeviceptr& w = s.workspaces[d]) {
      try {
        DeviceAllocator::of(d).release(w, kCublasLtWorkspaceBytes, stream(d));
      } catch (const Error&) {  // no driver any more: nothing to return it to
      }
      w = 0;
    }
  if (!table) {
    s.loaded.reset();
    return;
  }
  auto r = std::make_shared<LoadedLt>();
  r->table = *table;
  s.loaded = std::move(r);
}

}  // namespace kiln::cuda_driver
#endif  // KILN_HAVE_CUBLASLT
