// Helpers shared by the implementations of kiln::functions: recording ops and type checks.
#pragma once
#include <string>
#include <vector>

#include "kiln/functions.h"
#include "trace.h"

namespace kiln::detail {

// The user's call site for the ops recorded while it is active: the outermost
// F:: call outside kiln's own sources sets it; nested calls keep it.
class LocationScope {
 public:
  explicit LocationScope(SourceLocation loc);
  ~LocationScope();
  LocationScope(const LocationScope&) = delete;
  LocationScope& operator=(const LocationScope&) = delete;

 private:
  bool active_ = false;
};
SourceLocation current_location();

// Records `op` on `inputs` with a result of the given (already checked) shape and dtype.
Variable record(const std::string& op, const std::vector<Variable>& inputs, Attrs attrs,
                Shape shape, DType dtype);
// The same for a braced list of inputs (`record(op, {a, b}, ...)`): no vector is allocated for it.
Variable record(const std::string& op, std::initializer_list<Variable> inputs, Attrs attrs, Shape shape,
                DType dtype);
// Same shape and dtype as the first input.
Variable record_like(const std::string& op, const std::vector<Variable>& inputs, Attrs attrs = {});
Variable record_like(const std::string& op, std::initializer_list<Variable> inputs, Attrs attrs = {});
// A constant filled with `value`.
Variable constant(double value, const Shape& shape, DType dtype);
Variable constant_like(double value, const Variable& x);
// The product of x's sizes along `dims` as a 0-d variable of `dtype`,
// computed in the graph (kiln.dim_size) so that a compiled graph with a
// symbolic batch size uses the run-time count. Not differentiable.
Variable dim_size(const Variable& x, const std::vector<int64_t>& dims, DType dtype);
// 1 / dim_size(x, dims) (1 when that count is 0), for means.
Variable inverse_count(const Variable& x, const std::vector<int64_t>& dims, DType dtype);
// All of x's dimensions: 0 .. ndim-1.
std::vector<int64_t> all_dims(const Variable& x);

// Chainer's type-check error: "Invalid operation is performed in: fn (Forward)\n\nExpect: ...\nActual: ...".
[[noreturn]] void type_error(const std::string& fn, const std::string& expect, const std::string& actual);
void check_float(const std::string& fn, const char* arg, const Variable& x);
void check_int(const std::string& fn, const char* arg, const Variable& x);
void check_same_dtype(const std::string& fn, const char* a_name, const Variable& a,
                      const char* b_name, const Variable& b);
void check_ndim(const std::string& fn, const char* arg, const Variable& x, int64_t ndim);
// Normalizes a possibly negative axis; throws if out of range.
int64_t normalize_axis(const std::string& fn, int64_t axis, int64_t ndim);
std::vector<int64_t> normalize_axes(const std::string& fn, const Axes& axes, int64_t ndim);

// numpy broadcasting.
Shape broadcast_shapes(const std::string& fn, const Shape& a, const Shape& b);
Variable broadcast_as(const Variable& x, const Shape& shape);  // no-op when equal
// Elementwise binary op with broadcasting and a dtype check.
Variable binary(const std::string& fn, const std::string& op, const Variable& a, const Variable& b);
Variable unary(const std::string& fn, const std::string& op, const Variable& x);
Variable compare(const std::string& fn, const std::string& predicate, const Variable& a,
                 const Variable& b);
Variable scalar_like(double value, const Variable& x);  // broadcast-ready constant of x's shape

std::string shape_expr(const Shape& s);

}  // namespace kiln::detail
