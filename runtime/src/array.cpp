// kiln::Array: storage, conversion, creation and numpy-style printing.
#include "kiln/array.h"

#if KILN_HAVE_CUDA_DRIVER_API
#include "kiln/cuda_driver.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <mutex>
#include <unordered_map>
#include <sstream>

namespace kiln {

std::string dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  for (DType t : {DType::f32, DType::f64, DType::i32, DType::i64, DType::b8})
    if (dtype_name(t) == name) return t;
  throw Error("kiln: unknown dtype '" + name + "' (expected float32, float64, int32, int64 or bool)");
}

int64_t shape_size(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    // A symbolic (batch) size in a compiled graph's shapes prints as "?".
    s += shape[i] == std::numeric_limits<int64_t>::min() ? std::string("?") : std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

namespace {

// A caching host allocator: freed buffers are kept by size and reused, so a
// training loop that allocates the same outputs every step touches no new
// pages (fresh pages cost a page fault each; 64 MB took ~35 ms here).
class BufferPool {
 public:
  void* take(size_t padded) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(padded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= padded;
        return p;
      }
    }
    return std::aligned_alloc(64, padded);
  }
  void give(void* p, size_t padded) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + padded <= limit_) {
        free_[padded].push_back(p);
        cached_ += padded;
        return;
      }
    }
    std::free(p);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
  size_t limit_ = size_t(1) << 30;  // at most 1 GiB kept for reuse
};

BufferPool& pool() {
  static BufferPool* p = new BufferPool;  // never destroyed: arrays may outlive static destructors
  return *p;
}

}  // namespace

namespace detail {

// Compiled kernels allocate their intermediate buffers from the same pool
// (JitKernel binds the kernels' malloc/free to these): a training step
// reuses the previous step's buffers instead of fresh pages. A 64-byte
// header before each block keeps its pooled size for the free.
void* kernel_malloc(size_t nbytes) {
  constexpr size_t kHeader = 64;
  size_t padded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64 + kHeader;
  auto* p = static_cast<uint8_t*>(pool().take(padded));
  if (!p) return nullptr;
  *reinterpret_cast<size_t*>(p) = padded;
  return p + kHeader;
}

void kernel_free(void* q) {
  if (!q) return;
  auto* p = static_cast<uint8_t*>(q) - 64;
  pool().give(p, *reinterpret_cast<size_t*>(p));
}

}  // namespace detail

// 64-byte aligned storage; zero-filled unless `zero` is false.
static std::shared_ptr<uint8_t> allocate(size_t nbytes, bool zero = true) {
  size_t padded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = pool().take(padded);
  if (!p) throw Error("kiln: out of memory allocating " + std::to_string(nbytes) + " bytes");
  if (zero) std::memset(p, 0, padded);
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [padded](uint8_t* q) { pool().give(q, padded); });
}

// ---- devices -----------------------------------------------------------------
//
// Memory on a CUDA device: under KILN_CUDA_EMULATE=1 the SIMT emulator's device memory is
// host memory, so a CUDA array's buffer comes from the host pool and copies are memcpy. On a
// real GPU it comes from the caching device allocator (kiln/cuda_driver.h), and copies are
// async on kiln's stream of the device, waited for where the host reads or the host buffer
// may go away (pageable host memory).
static bool in_gpu_memory(const Device& device) { return device.is_cuda() && !cuda_driver::emulated(); }

#if KILN_HAVE_CUDA_DRIVER_API
static std::shared_ptr<uint8_t> allocate_on_gpu(size_t nbytes, int device) {
  CUstream stream = cuda_driver::stream(device);
  CUdeviceptr p = cuda_driver::DeviceAllocator::of(device).allocate(nbytes, stream);
  return std::shared_ptr<uint8_t>(reinterpret_cast<uint8_t*>(p), [nbytes, device, stream](uint8_t* q) {
    cuda_driver::DeviceAllocator::of(device).release(reinterpret_cast<CUdeviceptr>(q), nbytes, stream);
  });
}
#endif

// Copies `n` bytes between the memories of two devices.
static void copy_bytes(void* dst, const Device& to, const void* src, const Device& from, size_t n) {
  if (n == 0) return;
  if (!in_gpu_memory(to) && !in_gpu_memory(from)) {
    std::memcpy(dst, src, n);
    return;
  }
#if KILN_HAVE_CUDA_DRIVER_API
  const cuda_driver::DriverTable& t = cuda_driver::driver();
  auto d = reinterpret_cast<CUdeviceptr>(dst);
  auto s = reinterpret_cast<CUdeviceptr>(const_cast<void*>(src));
  const std::string what = "copying " + std::to_string(n) + " bytes from " + from.to_string() + " to " + to.to_string();
  if (!in_gpu_memory(from)) {
    cuda_driver::check(t.cuMemcpyHtoDAsync_v2(d, src, n, cuda_driver::stream(to.index())), "cuMemcpyHtoDAsync", what);
    return cuda_driver::synchronize(to.index());  // the host buffer may be freed next
  }
  if (!in_gpu_memory(to)) {
    cuda_driver::check(t.cuMemcpyDtoHAsync_v2(dst, s, n, cuda_driver::stream(from.index())), "cuMemcpyDtoHAsync", what);
    return cuda_driver::synchronize(from.index());  // the host reads it next
  }
  // Device to device, ordered on the source's stream; across GPUs the destination waits.
  cuda_driver::check(t.cuMemcpyDtoDAsync_v2(d, s, n, cuda_driver::stream(from.index())), "cuMemcpyDtoDAsync", what);
  if (to != from) cuda_driver::synchronize(from.index());
#else
  throw Error("kiln: copying to " + to.to_string() + ": kiln was built without the CUDA toolkit's cuda.h");
#endif
}

Array Array::empty(Shape shape, DType dtype, const Device& device) {
  if (!in_gpu_memory(device)) {
    Array a = empty(std::move(shape), dtype);
    a.device_ = device;
    return a;
  }
  Array a;
  for (int64_t d : shape)
    if (d < 0) throw Error("kiln: Array::empty: negative dimension in shape " + shape_str(shape));
  a.shape_ = std::move(shape);
  a.dtype_ = dtype;
  a.device_ = device;
#if KILN_HAVE_CUDA_DRIVER_API
  a.storage_ = allocate_on_gpu(a.nbytes(), device.index());
#else
  throw Error("kiln: Array::empty on " + device.to_string() + ": kiln was built without the CUDA toolkit's cuda.h");
#endif
  return a;
}

Array Array::to(const Device& device) const {
  if (device == device_) return *this;
  Array out = empty(shape_, dtype_, device);
  copy_bytes(out.raw_data(), device, raw_data(), device_, nbytes());
  return out;
}

void Array::throw_not_host(const char* what) const {
  throw Error(fmt::format("kiln: Array::{}: the array is on {}; host code reads it through a copy: "
                          "call to(Device::cpu()) first (or to_vector(), item())",
                          what, device_.to_string()));
}

// Every default-constructed array shares one zeroed block: it holds no element, so nothing
// writes it, and Array() (a member default, a placeholder assigned next, Array::empty's start)
// allocates nothing.
Array::Array() : shape_{0} {
  static const std::shared_ptr<uint8_t>* none = new std::shared_ptr<uint8_t>(allocate(0));  // never destroyed
  storage_ = *none;
}

Array::Array(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_)
    if (d < 0) throw Error("kiln: Array: negative dimension in shape " + shape_str(shape_));
  storage_ = allocate(nbytes());
}

Array Array::empty(Shape shape, DType dtype) {
  Array a;
  for (int64_t d : shape)
    if (d < 0) throw Error("kiln: Array::empty: negative dimension in shape " + shape_str(shape));
  a.shape_ = std::move(shape);
  a.dtype_ = dtype;
  a.storage_ = allocate(a.nbytes(), /*zero=*/false);
  return a;
}

void Array::check_from_size(size_t n, const Shape& shape) {
  if (static_cast<int64_t>(n) != shape_size(shape))
    throw Error(fmt::format("kiln: Array::from: {} values do not fill shape {} (size {})", n,
                            shape_str(shape), shape_size(shape)));
}

void Array::check_dtype(DType t, const char* what) const {
  if (t != dtype_)
    throw Error(fmt::format("kiln: Array::{}: array has dtype {}, accessed as {}", what,
                            dtype_name(dtype_), dtype_name(t)));
}

// Element i of a host buffer of dtype t, as double; and its store.
static double load(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::f32: return static_cast<const float*>(p)[i];
    case DType::f64: return static_cast<const double*>(p)[i];
    case DType::i32: return static_cast<const int32_t*>(p)[i];
    case DType::i64: return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::b8: return static_cast<const uint8_t*>(p)[i] ? 1.0 : 0.0;
  }
  return 0;
}

static void store(void* p, DType t, int64_t i, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::f64: static_cast<double*>(p)[i] = v; break;
    case DType::i32: static_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::i64: static_cast<int64_t*>(p)[i] = static_cast<int64_t>(v); break;
    case DType::b8: static_cast<uint8_t*>(p)[i] = v != 0; break;
  }
}

double Array::at(int64_t i) const {
  if (device_.is_cpu()) return load(raw_data(), dtype_, i);
  // One element copied from the device.
  alignas(8) uint8_t element[8];
  copy_bytes(element, Device::cpu(), static_cast<const uint8_t*>(raw_data()) + i * dtype_size(dtype_), device_,
             dtype_size(dtype_));
  return load(element, dtype_, 0);
}

void Array::set(int64_t i, double v) {
  if (device_.is_cpu()) return store(raw_data(), dtype_, i, v);
  // One element copied to the device.
  alignas(8) uint8_t element[8];
  store(element, dtype_, 0, v);
  copy_bytes(static_cast<uint8_t*>(raw_data()) + i * dtype_size(dtype_), device_, element, Device::cpu(),
             dtype_size(dtype_));
}

template <typename T>
std::vector<T> Array::to_vector() const {
  if (!device_.is_cpu()) return to(Device::cpu()).to_vector<T>();
  std::vector<T> out(static_cast<size_t>(size()));
  if (dtype_ == dtype_of<T>::value) {
    if (nbytes() > 0) std::memcpy(out.data(), raw_data(), nbytes());
  } else {
    for (int64_t i = 0; i < size(); ++i) out[i] = static_cast<T>(at(i));
  }
  return out;
}

template <typename T>
T Array::item() const {
  if (size() != 1)
    throw Error(fmt::format("kiln: Array::item: array of shape {} has {} elements, expected 1",
                            shape_str(shape_), size()));
  return static_cast<T>(at(0));
}

template std::vector<float> Array::to_vector<float>() const;
template std::vector<double> Array::to_vector<double>() const;
template std::vector<int32_t> Array::to_vector<int32_t>() const;
template std::vector<int64_t> Array::to_vector<int64_t>() const;
template float Array::item<float>() const;
template double Array::item<double>() const;
template int32_t Array::item<int32_t>() const;
template int64_t Array::item<int64_t>() const;
template bool Array::item<bool>() const;

template <>
std::vector<bool> Array::to_vector<bool>() const {
  if (!device_.is_cpu()) return to(Device::cpu()).to_vector<bool>();
  std::vector<bool> out(static_cast<size_t>(size()));
  for (int64_t i = 0; i < size(); ++i) out[i] = at(i) != 0;
  return out;
}

Array Array::astype(DType dtype) const {
  if (!device_.is_cpu()) {
    if (dtype == dtype_) {  // a device-to-device copy
      Array out = empty(shape_, dtype_, device_);
      copy_bytes(out.raw_data(), device_, raw_data(), device_, nbytes());
      return out;
    }
    return to(Device::cpu()).astype(dtype).to(device_);
  }
  Array out(shape_, dtype);
  if (dtype == dtype_) {
    if (nbytes() > 0) std::memcpy(out.raw_data(), raw_data(), nbytes());
  } else {
    for (int64_t i = 0; i < size(); ++i) out.set(i, at(i));
  }
  return out;
}

Array Array::copy() const { return astype(dtype_); }

Array Array::reshape(Shape shape) const {
  if (shape_size(shape) != size())
    throw Error(fmt::format("kiln: Array::reshape: cannot reshape array of shape {} into {}",
                            shape_str(shape_), shape_str(shape)));
  Array out = *this;
  out.shape_ = std::move(shape);
  return out;
}

Array Array::zeros(Shape shape, DType dtype) { return Array(std::move(shape), dtype); }

Array Array::ones(Shape shape, DType dtype) { return full(std::move(shape), 1.0, dtype); }

Array Array::full(Shape shape, double value, DType dtype) {
  Array a(std::move(shape), dtype);
  for (int64_t i = 0; i < a.size(); ++i) a.set(i, value);
  return a;
}

static uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Array Array::randn(Shape shape, uint64_t seed, DType dtype) {
  Array a(std::move(shape), dtype);
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + 1;
  const double two_pi = 6.283185307179586;
  for (int64_t i = 0; i < a.size(); i += 2) {
    // Box-Muller on two uniform doubles in (0, 1].
    double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) / 9007199254740992.0;
    double u2 = static_cast<double>(splitmix64(state) >> 11) / 9007199254740992.0;
    double r = std::sqrt(-2.0 * std::log(u1));
    a.set(i, r * std::cos(two_pi * u2));
    if (i + 1 < a.size()) a.set(i + 1, r * std::sin(two_pi * u2));
  }
  return a;
}

// ---- numpy-style printing ---------------------------------------------------

static std::string format_float(double v, int precision) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{:.{}f}", v, precision);
  // numpy trims trailing zeros but keeps the point: 1.50000 -> 1.5, 2.000 -> 2.
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
  }
  return s;
}

std::string Array::to_string() const {
  if (!device_.is_cpu()) return to(Device::cpu()).to_string();
  std::vector<std::string> items(static_cast<size_t>(size()));
  bool floating = is_floating(dtype_);
  bool use_sci = false;
  if (floating) {
    double maxabs = 0, minabs = INFINITY;
    for (int64_t i = 0; i < size(); ++i) {
      double a = std::fabs(at(i));
      maxabs = std::max(maxabs, a);
      if (a > 0) minabs = std::min(minabs, a);
    }
    use_sci = maxabs >= 1e8 || (minabs < 1e-4 && minabs > 0);
    // numpy: precision 8, trailing zeros trimmed, all items padded to one width.
    for (int64_t i = 0; i < size(); ++i)
      items[i] = use_sci ? fmt::format("{:.8e}", at(i)) : format_float(at(i), 8);
  } else if (dtype_ == DType::b8) {
    for (int64_t i = 0; i < size(); ++i) items[i] = at(i) != 0 ? " True" : "False";
  } else {
    for (int64_t i = 0; i < size(); ++i) items[i] = fmt::format("{}", static_cast<int64_t>(at(i)));
  }
  if (floating && !use_sci) {
    // Align the decimal points: pad the fraction part to the longest one.
    size_t frac = 0;
    for (auto& s : items) frac = std::max(frac, s.size() - s.find('.') - 1);
    for (auto& s : items) s.append(frac - (s.size() - s.find('.') - 1), ' ');
  }
  size_t width = 0;
  for (auto& s : items) width = std::max(width, s.size());
  for (auto& s : items) s.insert(0, width - s.size(), ' ');
  if (shape_.empty()) return items.empty() ? "" : items[0];
  // Recursive nesting with numpy's line breaks between sub-arrays.
  std::ostringstream os;
  std::vector<int64_t> strides(shape_.size(), 1);
  for (int64_t d = ndim() - 2; d >= 0; --d) strides[d] = strides[d + 1] * shape_[d + 1];
  std::function<void(int64_t, int64_t)> rec = [&](int64_t dim, int64_t offset) {
    os << '[';
    for (int64_t i = 0; i < shape_[dim]; ++i) {
      if (dim + 1 == ndim()) {
        if (i) os << ' ';
        os << items[offset + i];
      } else {
        if (i) {
          os << std::string(static_cast<size_t>(ndim() - dim - 1), '\n');
          os << std::string(static_cast<size_t>(dim + 1), ' ');
        }
        rec(dim + 1, offset + i * strides[dim]);
      }
    }
    os << ']';
  };
  rec(0, 0);
  return os.str();
}

}  // namespace kiln
