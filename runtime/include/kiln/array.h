// kiln::Array: an owning, contiguous (C order) n-dimensional host array.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

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

  // How many Arrays share this buffer, this one included (views by copy or reshape).
  long use_count() const { return storage_.use_count(); }

  void* raw_data() { return storage_.get(); }
  const void* raw_data() const { return storage_.get(); }
  template <typename T> T* data() { check_dtype(dtype_of<T>::value, "data"); return static_cast<T*>(raw_data()); }
  template <typename T> const T* data() const { check_dtype(dtype_of<T>::value, "data"); return static_cast<const T*>(raw_data()); }

  // Values converted to T (any dtype to any T, like numpy's astype).
  template <typename T> std::vector<T> to_vector() const;
  // The single value of a size-1 array, converted to T.
  template <typename T> T item() const;
  // Element i (flat, C order) as double.
  double at(int64_t flat_index) const;
  void set(int64_t flat_index, double value);

  Array astype(DType dtype) const;
  Array copy() const;
  Array reshape(Shape shape) const;  // shares the buffer

  std::string to_string() const;  // numpy-style

 private:
  static void check_from_size(size_t n, const Shape& shape);
  void check_dtype(DType t, const char* what) const;
  Shape shape_;
  DType dtype_ = DType::f32;
  std::shared_ptr<uint8_t> storage_;
};

}  // namespace kiln

template <>
struct fmt::formatter<kiln::Array> : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(const kiln::Array& a, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(a.to_string(), ctx);
  }
};
