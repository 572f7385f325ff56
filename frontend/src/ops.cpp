// Recording helpers and Chainer-style type checks shared by every function.
#include "ops.h"

#include <cstring>

namespace kiln::detail {

std::string shape_expr(const Shape& s) { return shape_str(s); }

namespace {
thread_local SourceLocation current_call;
thread_local bool call_active = false;

// Calls made by kiln's own frontend sources are not user call sites. Their file names
// are spelled as this file's own is (absolute, or relative to the build folder where
// ccache's base_dir rewrote the compile command), so its folder is their prefix.
bool is_internal(const char* file) {
  static const std::string own = [] {
    std::string self = __builtin_FILE();
    return self.substr(0, self.find_last_of('/') + 1);
  }();
  return !own.empty() && std::strncmp(file, own.c_str(), own.size()) == 0;
}
}  // namespace

LocationScope::LocationScope(SourceLocation loc) {
  if (call_active || loc.line <= 0 || is_internal(loc.file)) return;
  current_call = loc;
  call_active = active_ = true;
}

LocationScope::~LocationScope() {
  if (active_) call_active = false;
}

SourceLocation current_location() { return call_active ? current_call : SourceLocation{}; }

namespace {
Variable record_inputs(const std::string& op, const Variable* inputs, size_t count, Attrs attrs, Shape shape,
                       DType dtype) {
  NodeInputs nodes;
  nodes.reserve(count);
  for (size_t i = 0; i < count; ++i) nodes.push_back(inputs[i].node());
  NodePtr node = make_node(op, std::move(nodes), std::move(attrs), std::move(shape), dtype);
  SourceLocation loc = current_location();
  node->file = loc.file;
  node->line = loc.line;
  return Variable(std::move(node));
}
const Variable& first_input(const std::string& op, const Variable* inputs, size_t count) {
  if (count == 0) throw Error("kiln: internal error: " + op + " recorded like its first input, without inputs");
  return inputs[0];
}
}  // namespace

Variable record(const std::string& op, const std::vector<Variable>& inputs, Attrs attrs,
                Shape shape, DType dtype) {
  return record_inputs(op, inputs.data(), inputs.size(), std::move(attrs), std::move(shape), dtype);
}

Variable record(const std::string& op, std::initializer_list<Variable> inputs, Attrs attrs, Shape shape,
                DType dtype) {
  return record_inputs(op, inputs.begin(), inputs.size(), std::move(attrs), std::move(shape), dtype);
}

Variable record_like(const std::string& op, const std::vector<Variable>& inputs, Attrs attrs) {
  const Variable& x = first_input(op, inputs.data(), inputs.size());
  return record_inputs(op, inputs.data(), inputs.size(), std::move(attrs), x.shape(), x.dtype());
}

Variable record_like(const std::string& op, std::initializer_list<Variable> inputs, Attrs attrs) {
  const Variable& x = first_input(op, inputs.begin(), inputs.size());
  return record_inputs(op, inputs.begin(), inputs.size(), std::move(attrs), x.shape(), x.dtype());
}

Variable constant(double value, const Shape& shape, DType dtype) {
  return Variable(make_node("kiln.constant", {}, {splat_attr("value", value)}, shape, dtype));
}

Variable constant_like(double value, const Variable& x) { return constant(value, x.shape(), x.dtype()); }
Variable scalar_like(double value, const Variable& x) { return constant_like(value, x); }

Variable dim_size(const Variable& x, const std::vector<int64_t>& dims, DType dtype) {
  return Variable(make_node("kiln.dim_size", {x.node()}, {ints_attr("dims", dims)}, {}, dtype));
}

Variable inverse_count(const Variable& x, const std::vector<int64_t>& dims, DType dtype) {
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[d];
  if (count == 0) return constant(1.0, {}, dtype);
  return constant(1.0, {}, dtype) / dim_size(x, dims, dtype);
}

std::vector<int64_t> all_dims(const Variable& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < x.ndim(); ++d) dims.push_back(d);
  return dims;
}

void type_error(const std::string& fn, const std::string& expect, const std::string& actual) {
  throw Error(fmt::format("Invalid operation is performed in: {} (Forward)\n\nExpect: {}\nActual: {}",
                          fn, expect, actual));
}

void check_float(const std::string& fn, const char* arg, const Variable& x) {
  if (!is_floating(x.dtype()))
    type_error(fn, fmt::format("{}.dtype.kind == 'f'", arg), dtype_name(x.dtype()));
}

void check_int(const std::string& fn, const char* arg, const Variable& x) {
  if (x.dtype() != DType::i32 && x.dtype() != DType::i64)
    type_error(fn, fmt::format("{}.dtype.kind == 'i'", arg), dtype_name(x.dtype()));
}

void check_same_dtype(const std::string& fn, const char* a_name, const Variable& a,
                      const char* b_name, const Variable& b) {
  if (a.dtype() != b.dtype())
    type_error(fn, fmt::format("{}.dtype == {}.dtype", a_name, b_name),
               fmt::format("{} != {}", dtype_name(a.dtype()), dtype_name(b.dtype())));
}

void check_ndim(const std::string& fn, const char* arg, const Variable& x, int64_t ndim) {
  if (x.ndim() != ndim) type_error(fn, fmt::format("{}.ndim == {}", arg, ndim), fmt::format("{} != {}", x.ndim(), ndim));
}

int64_t normalize_axis(const std::string& fn, int64_t axis, int64_t ndim) {
  if (axis < -ndim || axis >= ndim)
    type_error(fn, fmt::format("-{} <= axis < {}", ndim, ndim), fmt::format("axis = {}", axis));
  return axis < 0 ? axis + ndim : axis;
}

std::vector<int64_t> normalize_axes(const std::string& fn, const Axes& axes, int64_t ndim) {
  std::vector<int64_t> out;
  if (!axes) {
    for (int64_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : *axes) {
    int64_t n = normalize_axis(fn, a, ndim);
    if (std::find(out.begin(), out.end(), n) != out.end())
      type_error(fn, "axes are unique", fmt::format("axis {} repeated", a));
    out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Shape broadcast_shapes(const std::string& fn, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      type_error(fn, "shapes are broadcastable", fmt::format("{} and {}", shape_str(a), shape_str(b)));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {
// broadcast_shapes's check without its result (no shape allocated): throws what it throws.
void check_broadcastable(const char* fn, const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      type_error(fn, "shapes are broadcastable", fmt::format("{} and {}", shape_str(a), shape_str(b)));
  }
}
}  // namespace

Variable broadcast_as(const Variable& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  check_broadcastable("broadcast_to", x.shape(), shape);
  if (x.ndim() > static_cast<int64_t>(shape.size()))
    type_error("broadcast_to", fmt::format("x.ndim <= {}", shape.size()), fmt::format("x.ndim = {}", x.ndim()));
  for (size_t i = 0; i < x.shape().size(); ++i) {
    int64_t d = x.shape()[i], o = shape[shape.size() - x.shape().size() + i];
    if (d != 1 && d != o)
      type_error("broadcast_to", fmt::format("x.shape can be broadcast to {}", shape_str(shape)),
                 fmt::format("x.shape = {}", shape_str(x.shape())));
  }
  return record("kiln.broadcast_to", {x}, {}, shape, x.dtype());
}

Variable binary(const std::string& fn, const std::string& op, const Variable& a, const Variable& b) {
  check_same_dtype(fn, "lhs", a, "rhs", b);
  Shape shape = broadcast_shapes(fn, a.shape(), b.shape());
  return record(op, {broadcast_as(a, shape), broadcast_as(b, shape)}, {}, shape, a.dtype());
}

Variable unary(const std::string& fn, const std::string& op, const Variable& x) {
  check_float(fn, "x", x);
  return record_like(op, {x});
}

Variable compare(const std::string& fn, const std::string& predicate, const Variable& a,
                 const Variable& b) {
  check_same_dtype(fn, "lhs", a, "rhs", b);
  Shape shape = broadcast_shapes(fn, a.shape(), b.shape());
  return record("kiln.compare", {broadcast_as(a, shape), broadcast_as(b, shape)},
                {str_attr("predicate", predicate)}, shape, DType::b8);
}

}  // namespace kiln::detail
