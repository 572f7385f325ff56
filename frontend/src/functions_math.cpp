// Arithmetic, comparisons, activations and reductions of kiln::functions.
#include <cmath>

#include "ops.h"

namespace kiln {
namespace functions {

using namespace detail;

// A new variable on the same node (like Chainer, not x itself: the output's
// grad must not be x's grad).
Variable identity(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return Variable(x.node());
}
Variable add(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return binary("add", "kiln.add", a, b);
}
Variable sub(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return binary("sub", "kiln.sub", a, b);
}
Variable mul(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return binary("mul", "kiln.mul", a, b);
}
Variable div(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return binary("div", "kiln.div", a, b);
}
Variable negative(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return record_like("kiln.neg", {x});
}
Variable maximum(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return binary("maximum", "kiln.max", a, b);
}
Variable minimum(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return binary("minimum", "kiln.min", a, b);
}
Variable pow(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("pow", "x", a);
  return binary("pow", "kiln.pow", a, b);
}
Variable pow(const Variable& a, double b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("pow", "x", a);
  if (b == 2.0) return a * a;
  return record_like("kiln.pow", {a, constant_like(b, a)});
}

Variable where(const Variable& condition, const Variable& x, const Variable& y, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (condition.dtype() != DType::b8)
    type_error("where", "condition.dtype == bool", dtype_name(condition.dtype()));
  check_same_dtype("where", "x", x, "y", y);
  Shape shape = broadcast_shapes("where", broadcast_shapes("where", condition.shape(), x.shape()), y.shape());
  return record("kiln.select", {broadcast_as(condition, shape), broadcast_as(x, shape), broadcast_as(y, shape)},
                {}, shape, x.dtype());
}

Variable absolute(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("absolute", "kiln.abs", x);
}
Variable square(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("square", "x", x); return x * x;
}
Variable sqrt(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("sqrt", "kiln.sqrt", x);
}
Variable rsqrt(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return 1.0 / sqrt(x);
}
Variable exp(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("exp", "kiln.exp", x);
}
Variable log(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("log", "kiln.log", x);
}

Variable clip(const Variable& x, double x_min, double x_max, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("clip", "x", x);
  if (!(x_min < x_max)) type_error("clip", "x_min < x_max", fmt::format("{} >= {}", x_min, x_max));
  return minimum(maximum(x, constant_like(x_min, x)), constant_like(x_max, x));
}

Variable cast(const Variable& x, DType dtype, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (x.dtype() == dtype) return x;
  return record("kiln.cast", {x}, {}, x.shape(), dtype);
}

Variable equal(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return compare("equal", "eq", a, b);
}
Variable not_equal(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return compare("not_equal", "ne", a, b);
}
Variable less(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return compare("less", "lt", a, b);
}
Variable less_equal(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return compare("less_equal", "le", a, b);
}
Variable greater(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return compare("greater", "gt", a, b);
}
Variable greater_equal(const Variable& a, const Variable& b, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return compare("greater_equal", "ge", a, b);
}

// ---- activations ----------------------------------------------------------------

Variable relu(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("relu", "kiln.relu", x);
}
Variable sigmoid(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("sigmoid", "kiln.sigmoid", x);
}
Variable tanh(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("tanh", "kiln.tanh", x);
}

Variable leaky_relu(const Variable& x, double slope, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("leaky_relu", "x", x);
  return where(greater(x, constant_like(0.0, x)), x, x * slope);
}

Variable elu(const Variable& x, double alpha, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("elu", "x", x);
  // expm1 of min(x, 0) keeps the unused branch finite.
  Variable neg = record_like("kiln.expm1", {minimum(x, constant_like(0.0, x))}) * alpha;
  return where(greater(x, constant_like(0.0, x)), x, neg);
}

Variable softplus(const Variable& x, double beta, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("softplus", "x", x);
  // Stable: (max(bx, 0) + log1p(exp(-|bx|))) / beta.
  Variable bx = x * beta;
  Variable r = relu(bx) + record_like("kiln.log1p", {exp(-absolute(bx))});
  return beta == 1.0 ? r : r / beta;
}

Variable gelu(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("gelu", "x", x);
  return x * 0.5 * (1.0 + record_like("kiln.erf", {x * (1.0 / std::sqrt(2.0))}));
}

Variable swish(const Variable& x, const Variable& beta, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("swish", "x", x);
  check_same_dtype("swish", "x", x, "beta", beta);
  int64_t m = beta.ndim();
  if (x.ndim() < 1 + m) type_error("swish", "x.ndim >= 1 + beta.ndim", fmt::format("{} < {}", x.ndim(), 1 + m));
  Shape bshape{1};
  for (int64_t i = 0; i < m; ++i) {
    if (beta.shape()[i] != x.shape()[1 + i])
      type_error("swish", fmt::format("beta.shape == x.shape[1:{}]", 1 + m),
                 fmt::format("{} vs {}", shape_str(beta.shape()), shape_str(x.shape())));
    bshape.push_back(beta.shape()[i]);
  }
  while (static_cast<int64_t>(bshape.size()) < x.ndim()) bshape.push_back(1);
  return x * sigmoid(reshape(beta, bshape) * x);
}

Variable softmax(const Variable& x, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("softmax", "x", x);
  int64_t a = normalize_axis("softmax", axis, x.ndim());
  Variable e = exp(x - max(x, std::vector<int64_t>{a}, true));
  return e / sum(e, std::vector<int64_t>{a}, true);
}

Variable log_softmax(const Variable& x, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("log_softmax", "x", x);
  int64_t a = normalize_axis("log_softmax", axis, x.ndim());
  Variable shifted = x - max(x, std::vector<int64_t>{a}, true);
  return shifted - log(sum(exp(shifted), std::vector<int64_t>{a}, true));
}

// ---- reductions -----------------------------------------------------------------

static Shape reduced_shape(const Shape& in, const std::vector<int64_t>& axes, bool keepdims) {
  Shape out;
  for (int64_t d = 0; d < static_cast<int64_t>(in.size()); ++d) {
    bool r = std::find(axes.begin(), axes.end(), d) != axes.end();
    if (!r) out.push_back(in[d]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

static Variable reduce(const std::string& fn, const std::string& op, const Variable& x,
                       const Axes& axis, bool keepdims) {
  std::vector<int64_t> axes = normalize_axes(fn, axis, x.ndim());
  Attrs attrs{ints_attr("axes", axes)};
  if (keepdims) attrs.push_back(unit_attr("keepdims"));
  return record(op, {x}, attrs, reduced_shape(x.shape(), axes, keepdims), x.dtype());
}

Variable sum(const Variable& x, const Axes& axis, bool keepdims, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return reduce("sum", "kiln.reduce_sum", x, axis, keepdims);
}

Variable mean(const Variable& x, const Axes& axis, bool keepdims, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("mean", "x", x);
  std::vector<int64_t> axes = normalize_axes("mean", axis, x.ndim());
  // numpy: the mean over no elements is nan (0 * inf); the count is a graph value.
  return sum(x, axes, keepdims) * (constant(1.0, {}, x.dtype()) / dim_size(x, axes, x.dtype()));
}

Variable max(const Variable& x, const Axes& axis, bool keepdims, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  std::vector<int64_t> axes = normalize_axes("max", axis, x.ndim());
  for (int64_t a : axes)
    if (x.shape()[a] == 0) type_error("max", "reduced axes are not empty", fmt::format("x.shape = {}", shape_str(x.shape())));
  return reduce("max", "kiln.reduce_max", x, axis, keepdims);
}

Variable min(const Variable& x, const Axes& axis, bool keepdims, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return -max(-x, axis, keepdims);
}

Variable argmax(const Variable& x, std::optional<int64_t> axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  if (!axis) return argmax(reshape(x, {x.size()}), 0);
  int64_t a = normalize_axis("argmax", *axis, x.ndim());
  Shape shape = x.shape();
  shape.erase(shape.begin() + a);
  return record("kiln.argmax", {x}, {int_attr("axis", a)}, shape, DType::i32);
}

Variable argmin(const Variable& x, std::optional<int64_t> axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return argmax(-x, axis);
}

Variable logsumexp(const Variable& x, const Axes& axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("logsumexp", "x", x);
  std::vector<int64_t> axes = normalize_axes("logsumexp", axis, x.ndim());
  Variable m = max(x, axes, true);
  Variable s = log(sum(exp(x - m), axes, true)) + m;
  return reshape(s, reduced_shape(x.shape(), axes, false));
}

}  // namespace functions

using functions::add;
Variable operator+(const Variable& a, const Variable& b) { return F::add(a, b); }
Variable operator-(const Variable& a, const Variable& b) { return F::sub(a, b); }
Variable operator*(const Variable& a, const Variable& b) { return F::mul(a, b); }
Variable operator/(const Variable& a, const Variable& b) { return F::div(a, b); }
Variable operator-(const Variable& x) { return F::negative(x); }
Variable operator+(const Variable& a, double b) { return a + detail::constant_like(b, a); }
Variable operator-(const Variable& a, double b) { return a - detail::constant_like(b, a); }
Variable operator*(const Variable& a, double b) { return a * detail::constant_like(b, a); }
Variable operator/(const Variable& a, double b) { return a / detail::constant_like(b, a); }
Variable operator+(double a, const Variable& b) { return detail::constant_like(a, b) + b; }
Variable operator-(double a, const Variable& b) { return detail::constant_like(a, b) - b; }
Variable operator*(double a, const Variable& b) { return detail::constant_like(a, b) * b; }
Variable operator/(double a, const Variable& b) { return detail::constant_like(a, b) / b; }

}  // namespace kiln
