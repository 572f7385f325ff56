// The CUDA driver API as kiln's runtime uses it on a real GPU: libcuda.so.1's entry points
// resolved with dlopen/dlsym into one table (typed by the toolkit's cuda.h; no link-time
// dependency on the driver), every CUresult turned into a kiln::Error naming the call and the
// driver's message, kiln's stream on each GPU, and the caching device allocator.
//
// Everything here is thread-safe. Under KILN_CUDA_EMULATE=1 none of it is used (the SIMT
// emulator's device memory is host memory). Only built where the toolkit's cuda.h was found
// (KILN_HAVE_CUDA_DRIVER_API); kiln/device.h's queries work either way.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace kiln::cuda_driver {

// The entry points kiln calls, by their exported names (cuda.h's macros map the plain names
// to these versions).
#define KILN_CUDA_DRIVER_ENTRY_POINTS(X)                                                              \
  X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetAttribute)          \
  X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent) X(cuMemAlloc_v2) X(cuMemFree_v2) X(cuMemGetInfo_v2)  \
  X(cuMemcpyHtoDAsync_v2) X(cuMemcpyDtoHAsync_v2) X(cuMemcpyDtoDAsync_v2) X(cuMemsetD8Async)          \
  X(cuStreamCreate) X(cuStreamSynchronize) X(cuStreamQuery) X(cuModuleLoadData) X(cuModuleUnload)   \
  X(cuModuleGetFunction) X(cuLaunchKernel) X(cuStreamBeginCapture_v2) X(cuStreamEndCapture)            \
  X(cuGraphInstantiateWithFlags) X(cuGraphExecUpdate_v2) X(cuGraphLaunch) X(cuGraphDestroy)                \
  X(cuGraphExecDestroy) X(cuStreamDestroy_v2) X(cuEventCreate) X(cuEventRecord) X(cuStreamWaitEvent)     \
  X(cuEventDestroy_v2) X(cuGetErrorName) X(cuGetErrorString)

// One pointer per entry point, each of cuda.h's type.
struct DriverTable {
#define KILN_CUDA_DRIVER_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_CUDA_DRIVER_ENTRY_POINTS(KILN_CUDA_DRIVER_MEMBER)
#undef KILN_CUDA_DRIVER_MEMBER
};

// The table in use: libcuda.so.1's, or the one given to set_driver_for_testing. Throws
// kiln::Error with unavailable_reason() when there is no usable driver or GPU.
const DriverTable& driver();

// Throws kiln::Error "kiln: <what>: <call> failed: CUDA_ERROR_...: <cuGetErrorString's text>"
// unless rc is CUDA_SUCCESS.
void check(CUresult rc, const char* call, const std::string& what);

// Test hook: every later driver call goes through `table` (a fake GPU) instead of libcuda.so.1;
// nullptr goes back to it. kiln/device.h's queries follow (the fake's cuInit and device count).
// Call it with no array in GPU memory alive: it empties the allocators and forgets streams.
void set_driver_for_testing(const DriverTable* table);

// GPU `device`'s primary context, made current on the calling thread.
void make_current(int device);
// kiln's stream on GPU `device` (created once; its context made current): every copy,
// kernel and graph of that device is ordered on it.
CUstream stream(int device);
// Waits for everything queued on kiln's stream of `device`.
void synchronize(int device);
// The compute capability as major * 10 + minor (90 for an H100/H200).
int compute_capability(int device);

struct AllocatorStats {
  size_t allocated = 0;  // bytes handed out and not yet released (by size class)
  size_t cached = 0;     // bytes released and kept for reuse
  size_t peak = 0;       // the most `allocated` has been
  uint64_t hits = 0;     // allocations served from the cache
  uint64_t misses = 0;   // allocations that called cuMemAlloc
};

// The caching device allocator of one GPU (like PyTorch's CUDACachingAllocator, simpler):
// sizes round up to a size class (512 bytes below 1 MiB, then 2 MiB steps); a released block
// goes to the free list of its size class and of the stream it was used on, and only an
// allocation on that stream reuses it (stream order makes the reuse safe without events).
// Out of memory: the cache is emptied once and cuMemAlloc retried, then kiln::Error names the
// requested and the free bytes (cuMemGetInfo).
class DeviceAllocator {
 public:
  static DeviceAllocator& of(int device);  // one per GPU, never destroyed
  CUdeviceptr allocate(size_t bytes, CUstream stream);
  // Returns a block from allocate(bytes, stream) to the cache (never throws).
  void release(CUdeviceptr block, size_t bytes, CUstream stream) noexcept;
  // Frees every cached block (cuMemFree); blocks in use stay.
  void empty_cache();
  AllocatorStats stats() const;
  static size_t size_class(size_t bytes);

  explicit DeviceAllocator(int device) : device_(device) {}

 private:
  void free_cached_locked();  // mutex_ held
  int device_;
  mutable std::mutex mutex_;
  std::map<std::pair<CUstream, size_t>, std::vector<CUdeviceptr>> free_;  // (stream, size class)
  AllocatorStats stats_;
};

}  // namespace kiln::cuda_driver
