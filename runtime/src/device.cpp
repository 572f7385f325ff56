// kiln::Device and the CUDA driver shim: libcuda.so.1 through dlopen (no link-time dependency),
// kiln's streams and the caching device allocator (kiln/cuda_driver.h).
#include "kiln/device.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "kiln/dl_library.h"
#include "kiln/env.h"
#include "kiln/error.h"
#if KILN_HAVE_CUDA_DRIVER_API
#include "kiln/cuda_driver.h"
#endif

namespace kiln {
namespace cuda_driver {
namespace {

// A driver as kiln found it: usable when `reason` is "".
struct Loaded {
#if KILN_HAVE_CUDA_DRIVER_API
  DriverTable table;
#endif
  std::string reason;
  int count = 0;
  int version = 0;
};

#if KILN_HAVE_CUDA_DRIVER_API
// cuInit, the device count and the version through `table`.
void initialize(Loaded& r) {
  if (CUresult rc = r.table.cuInit(0); rc != CUDA_SUCCESS) {
    const char* text = nullptr;
    if (r.table.cuGetErrorString) r.table.cuGetErrorString(rc, &text);
    r.reason = "cuInit failed with CUresult " + std::to_string(rc) + " (" + (text ? text : "no usable CUDA GPU or driver") + ")";
    return;
  }
  r.table.cuDriverGetVersion(&r.version);
  if (r.table.cuDeviceGetCount(&r.count) != CUDA_SUCCESS || r.count == 0) r.reason = "the CUDA driver reports no GPU";
}
#endif

Loaded loadLibcuda() {
  Loaded r;
  dl::Opened lib = dl::open_first({"libcuda.so.1"});
  if (!lib.handle) {
    r.reason = "libcuda.so.1 cannot be loaded (" + lib.error + "): there is no CUDA driver on this machine";
    return r;
  }
#if KILN_HAVE_CUDA_DRIVER_API
  if (std::string missing = KILN_DL_RESOLVE_TABLE(lib.handle, r.table, KILN_CUDA_DRIVER_ENTRY_POINTS);
      !missing.empty()) {
    r.reason = "libcuda.so.1 lacks " + missing + " (a driver older than kiln's CUDA toolkit)";
    return r;
  }
  initialize(r);
#else
  r.reason = "kiln was built without the CUDA toolkit's cuda.h, so it cannot drive a GPU";
#endif
  return r;
}

std::mutex& mutex() {
  static std::mutex m;
  return m;
}

// The driver in use; replaced by set_driver_for_testing (mutex() held for both).
std::shared_ptr<const Loaded>& current() {
  static std::shared_ptr<const Loaded> d;
  return d;
}

std::shared_ptr<const Loaded> loaded() {
  std::lock_guard<std::mutex> lock(mutex());
  if (!current()) current() = std::make_shared<const Loaded>(loadLibcuda());
  return current();
}

}  // namespace

bool emulated() { return env::get_flag("KILN_CUDA_EMULATE", false); }

std::string unavailable_reason() { return loaded()->reason; }

int device_count() {
  std::shared_ptr<const Loaded> d = loaded();
  return d->reason.empty() ? d->count : 0;
}

std::string version() {
  std::shared_ptr<const Loaded> d = loaded();
  if (d->version == 0) return "";
  return std::to_string(d->version / 1000) + "." + std::to_string(d->version % 1000 / 10);
}

#if KILN_HAVE_CUDA_DRIVER_API
namespace {

constexpr int kMaxDevices = 64;

struct DeviceState {
  bool current = false;  // primary context retained
  CUcontext context = nullptr;
  CUstream stream = nullptr;
};

// Per-GPU contexts and streams of the driver in use (mutex() held).
DeviceState* deviceStates() {
  static DeviceState states[kMaxDevices];
  return states;
}

// (`count`: device_count(), asked before taking mutex()).
DeviceState& deviceState(int device, int count, const char* what) {
  if (device < 0 || device >= kMaxDevices || device >= count)
    throw Error("kiln: " + std::string(what) + ": argument device: expected a GPU index below " +
                std::to_string(count) + ", got " + std::to_string(device));
  return deviceStates()[device];
}

}  // namespace

const DriverTable& driver() {
  std::shared_ptr<const Loaded> d = loaded();
  if (!d->reason.empty()) throw Error("kiln: CUDA driver: no CUDA device: " + d->reason);
  return d->table;  // alive until the next set_driver_for_testing (tests only)
}

void check(CUresult rc, const char* call, const std::string& what) {
  if (rc == CUDA_SUCCESS) return;
  const DriverTable& t = driver();
  const char* name = nullptr;
  const char* text = nullptr;
  if (t.cuGetErrorName) t.cuGetErrorName(rc, &name);
  if (t.cuGetErrorString) t.cuGetErrorString(rc, &text);
  throw Error("kiln: " + what + ": " + call + " failed: " + (name ? name : "CUresult " + std::to_string(rc)) + ": " +
              (text ? text : "(the driver gives no message)"));
}

void set_driver_for_testing(const DriverTable* table) {
  for (int i = 0; i < device_count() && i < kMaxDevices; ++i) DeviceAllocator::of(i).empty_cache();
  std::lock_guard<std::mutex> lock(mutex());
  for (int i = 0; i < kMaxDevices; ++i) deviceStates()[i] = DeviceState();
  if (!table) {
    current().reset();
    return;
  }
  auto r = std::make_shared<Loaded>();
  r->table = *table;
  initialize(*r);
  current() = std::move(r);
}

void make_current(int device) {
  const DriverTable& t = driver();
  const std::string what = "Device::cuda(" + std::to_string(device) + ")";
  CUcontext context = nullptr;
  CUresult rc = CUDA_SUCCESS;
  const char* call = "cuDeviceGet";
  const int count = device_count();
  {
    std::lock_guard<std::mutex> lock(mutex());  // check() below, outside: it takes the lock too
    DeviceState& s = deviceState(device, count, "cuda_driver::make_current");
    if (!s.current) {
      CUdevice handle;
      rc = t.cuDeviceGet(&handle, device);
      if (rc == CUDA_SUCCESS) {
        call = "cuDevicePrimaryCtxRetain";
        rc = t.cuDevicePrimaryCtxRetain(&s.context, handle);
      }
      s.current = rc == CUDA_SUCCESS;
    }
    context = s.context;
  }
  check(rc, call, what);
  check(t.cuCtxSetCurrent(context), "cuCtxSetCurrent", what);
}

CUstream stream(int device) {
  make_current(device);
  const DriverTable& t = driver();
  CUresult rc = CUDA_SUCCESS;
  CUstream result = nullptr;
  const int count = device_count();
  {
    std::lock_guard<std::mutex> lock(mutex());
    DeviceState& s = deviceState(device, count, "cuda_driver::stream");
    if (!s.stream) rc = t.cuStreamCreate(&s.stream, CU_STREAM_NON_BLOCKING);
    result = s.stream;
  }
  check(rc, "cuStreamCreate", "kiln's stream on @cuda:" + std::to_string(device));
  return result;
}

void synchronize(int device) {
  check(driver().cuStreamSynchronize(stream(device)), "cuStreamSynchronize", "@cuda:" + std::to_string(device));
}

int compute_capability(int device) {
  const DriverTable& t = driver();
  make_current(device);
  CUdevice handle;
  int major = 0, minor = 0;
  std::string what = "the compute capability of @cuda:" + std::to_string(device);
  check(t.cuDeviceGet(&handle, device), "cuDeviceGet", what);
  check(t.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, handle), "cuDeviceGetAttribute", what);
  check(t.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, handle), "cuDeviceGetAttribute", what);
  return major * 10 + minor;
}

// ---- the caching device allocator ----

DeviceAllocator& DeviceAllocator::of(int device) {
  static std::mutex m;
  static std::unique_ptr<DeviceAllocator>* allocators = new std::unique_ptr<DeviceAllocator>[kMaxDevices];
  if (device < 0 || device >= kMaxDevices)
    throw Error("kiln: DeviceAllocator::of: argument device: expected 0.." + std::to_string(kMaxDevices - 1) +
                ", got " + std::to_string(device));
  std::lock_guard<std::mutex> lock(m);
  if (!allocators[device]) allocators[device] = std::make_unique<DeviceAllocator>(device);
  return *allocators[device];
}

size_t DeviceAllocator::size_class(size_t bytes) {
  constexpr size_t kSmall = 512, kLarge = size_t(2) << 20, kSmallLimit = size_t(1) << 20;
  bytes = std::max<size_t>(bytes, 1);
  if (bytes < kSmallLimit) return (bytes + kSmall - 1) / kSmall * kSmall;
  return (bytes + kLarge - 1) / kLarge * kLarge;
}

CUdeviceptr DeviceAllocator::allocate(size_t bytes, CUstream stream) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto note = [&](CUdeviceptr p) {
    stats_.allocated += size;
    stats_.peak = std::max(stats_.peak, stats_.allocated);
    return p;
  };
  auto it = free_.find({stream, size});
  if (it != free_.end() && !it->second.empty()) {
    CUdeviceptr p = it->second.back();
    it->second.pop_back();
    stats_.cached -= size;
    ++stats_.hits;
    return note(p);
  }
  ++stats_.misses;
  const DriverTable& t = driver();
  make_current(device_);
  CUdeviceptr p = 0;
  CUresult rc = t.cuMemAlloc_v2(&p, size);
  if (rc == CUDA_ERROR_OUT_OF_MEMORY) {  // what the cache holds may make room
    free_cached_locked();
    rc = t.cuMemAlloc_v2(&p, size);
  }
  if (rc == CUDA_ERROR_OUT_OF_MEMORY) {
    size_t free = 0, total = 0;
    t.cuMemGetInfo_v2(&free, &total);
    throw Error("kiln: out of memory on @cuda:" + std::to_string(device_) + ": requested " + std::to_string(bytes) +
                " bytes (" + std::to_string(size) + " with rounding), " + std::to_string(free) + " bytes free of " +
                std::to_string(total) + " (after emptying kiln's cache of device blocks; " +
                std::to_string(stats_.allocated) + " bytes are in use by kiln's arrays)");
  }
  check(rc, "cuMemAlloc", "allocating " + std::to_string(bytes) + " bytes on @cuda:" + std::to_string(device_));
  return note(p);
}

void DeviceAllocator::release(CUdeviceptr block, size_t bytes, CUstream stream) noexcept {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.allocated -= size;
  stats_.cached += size;
  free_[{stream, size}].push_back(block);
}

void DeviceAllocator::free_cached_locked() {
  if (stats_.cached == 0) return;
  const DriverTable& t = driver();
  make_current(device_);
  for (auto& [key, blocks] : free_)
    for (CUdeviceptr p : blocks) t.cuMemFree_v2(p);  // a failure leaks the block; nothing to recover
  free_.clear();
  stats_.cached = 0;
}

void DeviceAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_cached_locked();
}

AllocatorStats DeviceAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}
#endif  // KILN_HAVE_CUDA_DRIVER_API

}  // namespace cuda_driver

Device Device::cuda(int index) {
  if (index < 0)
    throw Error("kiln: Device::cuda: argument index: expected >= 0, got " + std::to_string(index));
  if (!cuda_driver::emulated()) {
    if (std::string reason = cuda_driver::unavailable_reason(); !reason.empty())
      throw Error("kiln: Device::cuda(" + std::to_string(index) + "): no CUDA device: " + reason +
                  " (KILN_CUDA_EMULATE=1 runs CUDA devices on kiln's SIMT emulator)");
    if (index >= cuda_driver::device_count())
      throw Error("kiln: Device::cuda: argument index: expected < " + std::to_string(cuda_driver::device_count()) +
                  " (the GPUs the driver reports), got " + std::to_string(index));
  }
  return Device(Kind::cuda, index);
}

Device Device::parse(const std::string& spec) {
  std::string s = spec;
  if (!s.empty() && s[0] == '@') s = s.substr(1);
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 14) {
    bool digits = true;
    for (size_t i = 5; i < s.size(); ++i) digits &= std::isdigit(static_cast<unsigned char>(s[i])) != 0;
    if (digits) return cuda(std::stoi(s.substr(5)));
  }
  throw Error("kiln: Device::parse: argument spec: expected \"@cpu\" or \"@cuda:N\", got \"" + spec + "\"");
}

std::string Device::to_string() const { return is_cpu() ? "@cpu" : "@cuda:" + std::to_string(index_); }

}  // namespace kiln
