// Element types of kiln arrays and their C++ counterparts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

enum class DType { f32, f64, i32, i64, b8 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::b8: return 1;
  }
  return 0;
}

inline bool is_floating(DType t) { return t == DType::f32 || t == DType::f64; }

// numpy's names: float32, float64, int32, int64, bool.
std::string dtype_name(DType t);
// Parses numpy's names; throws kiln::Error for an unknown name.
DType dtype_from_name(const std::string& name);

template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::b8; };

}  // namespace kiln
