// kiln::Device and the CUDA driver shim: libcuda.so.1 through dlopen, no link-time dependency.
#include "kiln/device.h"

#include <dlfcn.h>

#include <cctype>
#include <mutex>

#include "kiln/env.h"
#include "kiln/error.h"

namespace kiln {
namespace cuda_driver {
namespace {

typedef int CUresult;

// The driver entry points kiln calls, resolved once.
struct Driver {
  void* handle = nullptr;
  std::string reason;  // why it cannot be used, or ""
  int count = 0;
  int version = 0;
};

const Driver& driver() {
  static const Driver d = [] {
    Driver r;
    r.handle = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!r.handle) {
      const char* e = ::dlerror();
      r.reason = std::string("libcuda.so.1 cannot be loaded (") + (e ? e : "not found") +
                 "): there is no CUDA driver on this machine";
      return r;
    }
    auto init = reinterpret_cast<CUresult (*)(unsigned)>(::dlsym(r.handle, "cuInit"));
    auto count = reinterpret_cast<CUresult (*)(int*)>(::dlsym(r.handle, "cuDeviceGetCount"));
    auto version = reinterpret_cast<CUresult (*)(int*)>(::dlsym(r.handle, "cuDriverGetVersion"));
    if (!init || !count) {
      r.reason = "libcuda.so.1 lacks cuInit/cuDeviceGetCount";
      return r;
    }
    if (CUresult rc = init(0); rc != 0) {
      r.reason = "cuInit failed with CUresult " + std::to_string(rc) + " (no usable CUDA GPU or driver)";
      return r;
    }
    if (version) version(&r.version);
    if (count(&r.count) != 0 || r.count == 0) r.reason = "the CUDA driver reports no GPU";
    return r;
  }();
  return d;
}

}  // namespace

bool emulated() { return env::get_flag("KILN_CUDA_EMULATE", false); }

std::string unavailable_reason() { return driver().reason; }

int device_count() { return driver().reason.empty() ? driver().count : 0; }

std::string version() {
  const Driver& d = driver();
  if (!d.handle || d.version == 0) return "";
  return std::to_string(d.version / 1000) + "." + std::to_string(d.version % 1000 / 10);
}

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
