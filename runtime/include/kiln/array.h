// kiln::Array: an owning, contiguous (C order) n-dimensional array on a Device.
//
// Every Array carries its Device (device(); Device::cpu() unless moved with to()).
// Host code reads a CUDA array's values through a copy, as with real device memory:
// to_vector(), item(), at(), to_string() and printing copy to the host implicitly (like
// CuPy's tolist(), item() and repr), data<T>() throws on a non-cpu array (call
// to(Device::cpu()) first), and raw_data() is the buffer's address in its device's
// memory (what backends pass to kernels). Under KILN_CUDA_EMULATE=1 a CUDA array's
// memory is host memory (the SIMT emulator's device memory); on a real GPU it is device
// memory from the caching allocator (kiln/cuda_driver.h), copied asynchronously on kiln's
// stream and waited for where the host reads.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "kiln/device.h"
#include "kiln/dtype.h"
#include "kiln/error.h"

namespace kiln {

namespace detail {
// The allocator of compiled kernels' intermediate buffers: pooled by size with
// the arrays' storage, so buffers are reused across steps (see JitKernel).
void* kernel_malloc(size_t nbytes);
void kernel_free(void* p);
}  // namespace detail

using Shape = std::vector<int64_t>;

int64_t shape_size(const Shape& shape);
std::string shape_str(const Shape& shape);  // "(2, 3)" like numpy

// Arrays share their buffer when copied (like numpy views of a whole array);
// use copy() for a deep copy.
class Array {
 public:
  Array();  // an empty f32 array of shape (0,)
  Array(Shape shape, DType dtype);  // uninitialized (zeroed) storage

  template <typename T>
  static Array from(const std::vector<T>& values, Shape shape) {
    check_from_size(values.size(), shape);
    Array a(std::move(shape), dtype_of<T>::value);
    std::copy(values.begin(), values.end(), a.data<T>());
    return a;
  }
  template <typename T = float>
  static Array from(std::initializer_list<T> values, Shape shape) {
    return from(std::vector<T>(values), std::move(shape));
  }
  template <typename T>
  static Array from(const std::vector<T>& values) {
    return from(values, Shape{static_cast<int64_t>(values.size())});
  }
  template <typename T>
  static Array scalar(T value) { return from(std::vector<T>{value}, Shape{}); }

  // Uninitialized storage (for buffers that are about to be overwritten).
  static Array empty(Shape shape, DType dtype = DType::f32);
  // Uninitialized storage on `device` (for backends' outputs on that device).
  static Array empty(Shape shape, DType dtype, const Device& device);
  static Array zeros(Shape shape, DType dtype = DType::f32);
  static Array ones(Shape shape, DType dtype = DType::f32);
  static Array full(Shape shape, double value, DType dtype = DType::f32);
  // Standard normal values from a fixed, portable generator (same on every machine).
  static Array randn(Shape shape, uint64_t seed = 0, DType dtype = DType::f32);

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t ndim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size() const { return shape_size(shape_); }
  size_t nbytes() const { return static_cast<size_t>(size()) * dtype_size(dtype_); }

  // Where the buffer lives (Device::cpu() unless moved with to()).
  const Device& device() const { return device_; }
  // This array on `device`: itself (sharing the buffer) when it is there already,
  // else a copy there (like chainer's to_device / cupy.asarray). Throws kiln::Error
  // when the device's memory is full or its driver fails.
  Array to(const Device& device) const;

  // How many Arrays share this buffer, this one included (views by copy or reshape).
  long use_count() const { return storage_.use_count(); }

  // The buffer's address in its device's memory (a device pointer for a CUDA array).
  void* raw_data() { return storage_.get(); }
  const void* raw_data() const { return storage_.get(); }
  // Host access to the values; throws kiln::Error on a non-cpu array (to(Device::cpu()) first).
  template <typename T> T* data() { check_host_dtype(dtype_of<T>::value, "data"); return static_cast<T*>(raw_data()); }
  template <typename T> const T* data() const { check_host_dtype(dtype_of<T>::value, "data"); return static_cast<const T*>(raw_data()); }

  // Values converted to T (any dtype to any T, like numpy's astype).
  template <typename T> std::vector<T> to_vector() const;
  // The single value of a size-1 array, converted to T.
  template <typename T> T item() const;
  // Element i (flat, C order) as double (copied from the device for a CUDA array).
  double at(int64_t flat_index) const;
  void set(int64_t flat_index, double value);

  Array astype(DType dtype) const;  // on the same device
  Array copy() const;               // on the same device
  Array reshape(Shape shape) const;  // shares the buffer

  std::string to_string() const;  // numpy-style

 private:
  static void check_from_size(size_t n, const Shape& shape);
  void check_dtype(DType t, const char* what) const;
  void check_host_dtype(DType t, const char* what) const {
    if (!device_.is_cpu()) throw_not_host(what);
    check_dtype(t, what);
  }
  [[noreturn]] void throw_not_host(const char* what) const;
  Shape shape_;
  DType dtype_ = DType::f32;
  std::shared_ptr<uint8_t> storage_;
  Device device_;
};

}  // namespace kiln

template <>
struct fmt::formatter<kiln::Array> : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(const kiln::Array& a, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(a.to_string(), ctx);
  }
};
