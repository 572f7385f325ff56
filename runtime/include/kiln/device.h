// kiln::Device: where an array lives and a graph runs (Chainer's "@cpu", "@cuda:N").
//
// Device::cpu() is host memory, compiled by the cpu (or interp) backend.
// Device::cuda(i) is GPU i, compiled by the cuda backend: its driver (libcuda.so.1)
// is loaded with dlopen when a CUDA device is first asked for. Without a driver or a
// GPU, asking for one throws kiln::Error saying so -- unless KILN_CUDA_EMULATE=1,
// where every CUDA device is kiln's SIMT emulator (device memory = host memory) and
// the generated CUDA kernels run on the CPU. Devices are plain values (copyable,
// comparable); thread-safe.
#pragma once

#include <string>

namespace kiln {

class Device {
 public:
  enum class Kind { cpu, cuda };

  Device() = default;  // the CPU
  static Device cpu() { return Device(); }
  // GPU `index` (>= 0). Throws kiln::Error when no such CUDA device can be used
  // (no driver, no GPU, index out of range), except under KILN_CUDA_EMULATE=1.
  static Device cuda(int index = 0);
  // Chainer's device specifiers: "@cpu", "@cuda:N" (also "cpu", "cuda", "cuda:N",
  // "@cuda" meaning GPU 0). Throws kiln::Error for anything else.
  static Device parse(const std::string& spec);

  Kind kind() const { return kind_; }
  int index() const { return index_; }   // -1 for the CPU
  bool is_cpu() const { return kind_ == Kind::cpu; }
  bool is_cuda() const { return kind_ == Kind::cuda; }
  std::string to_string() const;          // "@cpu", "@cuda:0"

  bool operator==(const Device& o) const { return kind_ == o.kind_ && index_ == o.index_; }
  bool operator!=(const Device& o) const { return !(*this == o); }

 private:
  Device(Kind kind, int index) : kind_(kind), index_(index) {}
  Kind kind_ = Kind::cpu;
  int index_ = -1;
};

namespace cuda_driver {

// Whether KILN_CUDA_EMULATE=1 (read on every call).
bool emulated();
// "" when the CUDA driver is loaded and reports at least one GPU; else why not
// ("libcuda.so.1 cannot be loaded: ...", "cuInit failed: ...", "no CUDA GPU").
std::string unavailable_reason();
// The number of GPUs the driver reports (0 without a driver).
int device_count();
// The driver's version as "13.0", or "" without a driver.
std::string version();

}  // namespace cuda_driver

}  // namespace kiln
