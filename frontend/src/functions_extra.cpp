// More of chainer.functions: elementwise math, scans and products, activations, losses,
// metrics and normalizations, each composed of the ops of the other functions.
#include <cmath>

#include "ops.h"

namespace kiln::functions {

using namespace detail;

namespace {

// The reduction modes a loss accepts.
void check_reduce(const std::string& reduce, std::initializer_list<const char*> valid) {
  std::string names;
  size_t i = 0;
  for (const char* v : valid) {
    if (reduce == v) return;
    names += (i == 0 ? "" : i + 1 == valid.size() ? " and " : ", ") + fmt::format("'{}'", v);
    ++i;
  }
  throw Error(fmt::format("only {} are valid for 'reduce', but '{}' is given", names, reduce));
}

void check_same_shape(const std::string& fn, const char* a_name, const Variable& a, const char* b_name,
                      const Variable& b) {
  if (a.shape() != b.shape())
    type_error(fn, fmt::format("{}.shape == {}.shape", a_name, b_name),
               fmt::format("{} != {}", shape_str(a.shape()), shape_str(b.shape())));
}

// Shifts x by `s` along `axis` (toward higher indices), filling with `fill`.
Variable shift(const Variable& x, int64_t axis, int64_t s, double fill) {
  int64_t n = x.shape()[axis];
  Shape fs = x.shape();
  fs[axis] = std::min(s, n);
  Variable head = constant(fill, fs, x.dtype());
  if (s >= n) return head;
  std::vector<Index> items(static_cast<size_t>(x.ndim()), Slice{});
  items[axis] = Slice{std::nullopt, n - s, std::nullopt};
  return concat({head, get_item(x, items)}, axis);
}

// Hillis-Steele scan along `axis`: log2(n) shifted combinations.
Variable scan(const Variable& x, int64_t axis, bool product) {
  Variable y = x;
  for (int64_t s = 1; s < x.shape()[axis]; s *= 2)
    y = product ? y * shift(y, axis, s, 1.0) : y + shift(y, axis, s, 0.0);
  return y;
}

Variable half_halves(const Variable& x, int64_t axis) {
  // Product of the two halves of an even-length axis.
  int64_t n = x.shape()[axis];
  std::vector<Index> lo(static_cast<size_t>(x.ndim()), Slice{}), hi = lo;
  lo[axis] = Slice{0, n / 2, std::nullopt};
  hi[axis] = Slice{n / 2, std::nullopt, std::nullopt};
  return get_item(x, lo) * get_item(x, hi);
}

}  // namespace

// ---- elementwise math ---------------------------------------------------------------

Variable sin(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("sin", "kiln.sin", x);
}
Variable cos(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("cos", "kiln.cos", x);
}
Variable tan(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("tan", "kiln.tan", x);
}
Variable arcsin(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("arcsin", "kiln.asin", x);
}
Variable arccos(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("arccos", "kiln.acos", x);
}
Variable arctan(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("arctan", "kiln.atan", x);
}
Variable arctan2(const Variable& x1, const Variable& x2, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("arctan2", "x1", x1);
  check_same_dtype("arctan2", "x1", x1, "x2", x2);
  return binary("arctan2", "kiln.atan2", x1, x2);
}
Variable sinh(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("sinh", "x", x);
  // expm1(x) - expm1(-x): no cancellation near 0.
  return (record_like("kiln.expm1", {x}) - record_like("kiln.expm1", {-x})) * 0.5;
}
Variable cosh(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("cosh", "x", x);
  return (exp(x) + exp(-x)) * 0.5;
}
Variable log1p(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("log1p", "kiln.log1p", x);
}
Variable expm1(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("expm1", "kiln.expm1", x);
}
Variable log2(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("log2", "x", x);
  return log(x) * (1.0 / std::log(2.0));
}
Variable log10(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("log10", "x", x);
  return log(x) * (1.0 / std::log(10.0));
}
Variable erf(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("erf", "kiln.erf", x);
}
Variable erfc(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("erfc", "x", x);
  return 1.0 - record_like("kiln.erf", {x});
}
Variable floor(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("floor", "kiln.floor", x);
}
Variable ceil(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("ceil", "kiln.ceil", x);
}
Variable fix(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("fix", "x", x);
  return where(less(x, constant_like(0.0, x)), record_like("kiln.ceil", {x}), record_like("kiln.floor", {x}));
}
Variable sign(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return unary("sign", "kiln.sign", x);
}
Variable fmod(const Variable& x, const Variable& divisor, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("fmod", "x", x);
  check_same_dtype("fmod", "x", x, "divisor", divisor);
  Shape shape = broadcast_shapes("fmod", x.shape(), divisor.shape());
  Variable a = broadcast_as(x, shape), d = broadcast_as(divisor, shape);
  return a - fix(a / d) * d;
}
Variable squared_difference(const Variable& x1, const Variable& x2, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("squared_difference", "x1", x1);
  check_same_dtype("squared_difference", "x1", x1, "x2", x2);
  Variable d = x1 - x2;
  return d * d;
}
Variable linear_interpolate(const Variable& p, const Variable& x, const Variable& y, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "LinearInterpolate";
  check_float(fn, "p", p);
  check_same_dtype(fn, "p", p, "x", x);
  check_same_dtype(fn, "p", p, "y", y);
  check_same_shape(fn, "p", p, "x", x);
  check_same_shape(fn, "p", p, "y", y);
  return p * x + (1.0 - p) * y;
}

// ---- scans and products -------------------------------------------------------------

Variable cumsum(const Variable& x, std::optional<int64_t> axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("cumsum", "x", x);
  if (!axis) return scan(reshape(x, {x.size()}), 0, false);
  return scan(x, normalize_axis("cumsum", *axis, x.ndim()), false);
}

Variable cumprod(const Variable& x, std::optional<int64_t> axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("cumprod", "x", x);
  if (!axis) return scan(reshape(x, {x.size()}), 0, true);
  return scan(x, normalize_axis("cumprod", *axis, x.ndim()), true);
}

Variable prod(const Variable& x, const Axes& axis, bool keepdims, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("prod", "x", x);
  std::vector<int64_t> axes = normalize_axes("prod", axis, x.ndim());
  // A pairwise tree along each axis (log2(n) products), the axis kept as size 1.
  Variable y = x;
  for (int64_t a : axes) {
    if (y.shape()[a] == 0) {
      Shape s = y.shape();
      s[a] = 1;
      y = constant(1.0, s, y.dtype());
      continue;
    }
    while (y.shape()[a] > 1) {
      if (y.shape()[a] % 2 == 1) {
        Shape s = y.shape();
        s[a] = 1;
        y = concat({y, constant(1.0, s, y.dtype())}, a);
      }
      y = half_halves(y, a);
    }
  }
  if (keepdims) return y;
  Shape out;
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (std::find(axes.begin(), axes.end(), d) == axes.end()) out.push_back(x.shape()[d]);
  return reshape(y, out);
}

Variable average(const Variable& x, const Axes& axis, const Variable& weights, bool keepdims, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("average", "x", x);
  if (weights.is_null()) return mean(x, axis, keepdims);
  check_same_dtype("average", "x", x, "weights", weights);
  std::vector<int64_t> axes = normalize_axes("average", axis, x.ndim());
  Variable w = weights;
  if (axis) {
    if (axes.size() > 1) throw Error("average: tuple axis is not supported when weights is given");
    int64_t a = axes[0];
    if (weights.ndim() != 1 || weights.shape()[0] != x.shape()[a])
      type_error("average", fmt::format("weights.shape == (x.shape[{}],) = ({},)", a, x.shape()[a]),
                 fmt::format("weights.shape = {}", shape_str(weights.shape())));
    Shape ws(static_cast<size_t>(x.ndim()), 1);
    ws[a] = x.shape()[a];
    w = broadcast_to(reshape(weights, ws), x.shape());
  } else {
    check_same_shape("average", "weights", weights, "x", x);
  }
  Variable total = sum(x * w, axis, keepdims);
  return total / broadcast_to(sum(weights), total.shape());
}

Variable batch_l2_norm_squared(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("BatchL2NormSquared", "x", x);
  if (x.ndim() < 2) type_error("BatchL2NormSquared", "x.ndim >= 2", fmt::format("x.ndim = {}", x.ndim()));
  Variable f = reshape(x, {x.shape()[0], -1});
  return sum(f * f, std::vector<int64_t>{1});
}

// ---- activations --------------------------------------------------------------------

Variable selu(const Variable& x, double alpha, double scale, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("selu", "x", x);
  return elu(x, alpha) * scale;
}

Variable hard_sigmoid(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("HardSigmoid", "x", x);
  // 0.2 x + 0.5 on (-2.5, 2.5), 0 below, 1 above; the gradient 0.2 inside only (Chainer).
  Variable inside = less(absolute(x), constant_like(2.5, x));
  Variable outside = where(greater(x, constant_like(0.0, x)), constant_like(1.0, x), constant_like(0.0, x));
  return where(inside, x * 0.2 + 0.5, outside);
}

Variable clipped_relu(const Variable& x, double z, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("ClippedReLU", "x", x);
  if (!(z > 0)) type_error("ClippedReLU", "z > 0", fmt::format("z = {}", z));
  // min(max(0, x), z); the gradient passes where 0 < x < z.
  Variable zero = constant_like(0.0, x);
  return where(greater(x, zero), where(less(x, constant_like(z, x)), x, constant_like(z, x)), zero);
}

Variable relu6(const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return clipped_relu(x, 6.0);
}

Variable crelu(const Variable& x, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("CReLU", "x", x);
  int64_t a = normalize_axis("CReLU", axis, x.ndim());
  return concat({relu(x), relu(-x)}, a);
}

Variable maxout(const Variable& x, int64_t pool_size, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("maxout", "x", x);
  if (pool_size <= 0) type_error("maxout", "pool_size > 0", fmt::format("pool_size = {}", pool_size));
  int64_t a = normalize_axis("maxout", axis, x.ndim());
  if (x.shape()[a] % pool_size != 0)
    type_error("maxout", fmt::format("x.shape[{}] % pool_size == 0", a),
               fmt::format("{} % {} != 0", x.shape()[a], pool_size));
  Shape s(x.shape().begin(), x.shape().begin() + a);
  s.push_back(x.shape()[a] / pool_size);
  s.push_back(pool_size);
  s.insert(s.end(), x.shape().begin() + a + 1, x.shape().end());
  return max(reshape(x, s), std::vector<int64_t>{a + 1});
}

Variable prelu(const Variable& x, const Variable& W, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "PReLUFunction";
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "W", W);
  if (x.ndim() < W.ndim() + 1) type_error(fn, "x.ndim >= W.ndim + 1", fmt::format("{} < {}", x.ndim(), W.ndim() + 1));
  Shape key(x.shape().begin() + 1, x.shape().begin() + 1 + W.ndim());
  if (key != W.shape())
    type_error(fn, fmt::format("x.shape[1:{}] == W.shape", 1 + W.ndim()),
               fmt::format("{} != {}", shape_str(key), shape_str(W.shape())));
  Shape ws(static_cast<size_t>(x.ndim()), 1);
  for (int64_t i = 0; i < W.ndim(); ++i) ws[1 + i] = W.shape()[i];
  return where(greater(x, constant_like(0.0, x)), x, x * reshape(W, ws));
}

// ---- losses and metrics ---------------------------------------------------------------

Variable squared_error(const Variable& x0, const Variable& x1, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "SquaredError";
  check_float(fn, "x0", x0);
  check_same_dtype(fn, "x0", x0, "x1", x1);
  check_same_shape(fn, "x0", x0, "x1", x1);
  Variable d = x0 - x1;
  return d * d;
}

Variable absolute_error(const Variable& x0, const Variable& x1, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "AbsoluteError";
  check_float(fn, "x0", x0);
  check_same_dtype(fn, "x0", x0, "x1", x1);
  check_same_shape(fn, "x0", x0, "x1", x1);
  return absolute(x0 - x1);
}

Variable mean_absolute_error(const Variable& x0, const Variable& x1, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "MeanAbsoluteError";
  check_float(fn, "x0", x0);
  check_same_dtype(fn, "x0", x0, "x1", x1);
  check_same_shape(fn, "x0", x0, "x1", x1);
  Variable d = absolute(x0 - x1);
  return sum(d) * inverse_count(d, all_dims(d), d.dtype());
}

Variable hinge(const Variable& x, const Variable& t, const std::string& norm, const std::string& reduce,
               SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Hinge";
  check_float(fn, "x", x);
  check_int(fn, "t", t);
  check_ndim(fn, "x", x, 2);
  check_ndim(fn, "t", t, 1);
  if (x.shape()[0] != t.shape()[0])
    type_error(fn, "x.shape[0] == t.shape[0]", fmt::format("{} != {}", x.shape()[0], t.shape()[0]));
  if (norm != "L1" && norm != "L2") throw Error(fmt::format("hinge: norm must be 'L1' or 'L2', but '{}' is given", norm));
  check_reduce(reduce, {"mean", "no"});
  // x with the true class negated, then max(0, 1 + .).
  Variable classes = record("kiln.iota", {}, {int_attr("dimension", 1)}, x.shape(), t.dtype());
  Variable onehot = equal(classes, reshape(t, {t.shape()[0], 1}));
  Variable m = relu(where(onehot, -x, x) + 1.0);
  Variable loss = norm == "L1" ? m : m * m;
  if (reduce == "no") return loss;
  return sum(loss) * inverse_count(x, {0}, x.dtype());
}

Variable contrastive(const Variable& x0, const Variable& x1, const Variable& y, double margin,
                     const std::string& reduce, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Contrastive";
  check_float(fn, "x0", x0);
  check_same_dtype(fn, "x0", x0, "x1", x1);
  check_int(fn, "y", y);
  check_ndim(fn, "x0", x0, 2);
  check_same_shape(fn, "x0", x0, "x1", x1);
  check_ndim(fn, "y", y, 1);
  if (x1.shape()[0] != y.shape()[0])
    type_error(fn, "x1.shape[0] == y.shape[0]", fmt::format("{} != {}", x1.shape()[0], y.shape()[0]));
  if (!(margin > 0)) throw Error(fmt::format("contrastive: margin should be positive value, but {} is given", margin));
  check_reduce(reduce, {"mean", "no"});
  Variable d = x0 - x1;
  Variable dist_sq = sum(d * d, std::vector<int64_t>{1});
  // sqrt with a finite gradient at a zero distance (its term then has the factor 0).
  Variable positive = greater(dist_sq, constant_like(0.0, dist_sq));
  Variable dist = where(positive, sqrt(where(positive, dist_sq, constant_like(1.0, dist_sq))),
                        constant_like(0.0, dist_sq));
  Variable mdist = relu(margin - dist);
  Variable yf = cast(y, x0.dtype());
  Variable loss = (yf * dist_sq + (1.0 - yf) * mdist * mdist) * 0.5;
  if (reduce == "no") return loss;
  return sum(loss) * inverse_count(x0, {0}, x0.dtype());
}

Variable triplet(const Variable& anchor, const Variable& positive, const Variable& negative, double margin,
                 const std::string& reduce, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Triplet";
  check_float(fn, "anchor", anchor);
  check_same_dtype(fn, "anchor", anchor, "positive", positive);
  check_same_dtype(fn, "anchor", anchor, "negative", negative);
  check_same_shape(fn, "anchor", anchor, "positive", positive);
  check_same_shape(fn, "anchor", anchor, "negative", negative);
  if (anchor.ndim() < 2) type_error(fn, "anchor.ndim >= 2", fmt::format("anchor.ndim = {}", anchor.ndim()));
  if (!(margin > 0)) throw Error(fmt::format("triplet: margin should be positive value, but {} is given", margin));
  check_reduce(reduce, {"mean", "no"});
  Variable dp = anchor - positive, dn = anchor - negative;
  Variable dist = sum(dp * dp - dn * dn, std::vector<int64_t>{1}) + margin;
  Variable loss = relu(dist);
  if (reduce == "no") return loss;
  return sum(loss) * inverse_count(anchor, {0}, anchor.dtype());
}

Variable gaussian_kl_divergence(const Variable& mean_, const Variable& ln_var, const std::string& reduce,
                                SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "gaussian_kl_divergence";
  check_float(fn, "mean", mean_);
  check_same_dtype(fn, "mean", mean_, "ln_var", ln_var);
  check_same_shape(fn, "mean", mean_, "ln_var", ln_var);
  check_reduce(reduce, {"sum", "mean", "no"});
  Variable loss = (mean_ * mean_ + exp(ln_var) - ln_var - 1.0) * 0.5;
  if (reduce == "sum") return sum(loss);
  if (reduce == "mean") return mean(loss);
  return loss;
}

Variable bernoulli_nll(const Variable& x, const Variable& y, const std::string& reduce, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "bernoulli_nll";
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "y", y);
  check_same_shape(fn, "x", x, "y", y);
  check_reduce(reduce, {"sum", "mean", "no"});
  Variable loss = softplus(y) - x * y;
  if (reduce == "sum") return sum(loss);
  if (reduce == "mean") return mean(loss);
  return loss;
}

Variable gaussian_nll(const Variable& x, const Variable& mean_, const Variable& ln_var, const std::string& reduce,
                      SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "gaussian_nll";
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "mean", mean_);
  check_same_dtype(fn, "x", x, "ln_var", ln_var);
  check_same_shape(fn, "x", x, "mean", mean_);
  check_same_shape(fn, "x", x, "ln_var", ln_var);
  check_reduce(reduce, {"sum", "mean", "no"});
  Variable d = x - mean_;
  Variable x_power = d * d * exp(-ln_var) * -0.5;
  Variable loss = (ln_var + std::log(2.0 * M_PI)) * 0.5 - x_power;
  if (reduce == "sum") return sum(loss);
  if (reduce == "mean") return mean(loss);
  return loss;
}

Variable binary_accuracy(const Variable& y, const Variable& t, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "BinaryAccuracy";
  check_float(fn, "x", y);
  check_int(fn, "t", t);
  check_same_shape(fn, "x", y, "t", t);
  // (y >= 0) == t counted over all elements, divided by the labels other than -1.
  Variable pred = cast(greater_equal(y, constant_like(0.0, y)), t.dtype());
  Variable hits = sum(cast(equal(pred, t), y.dtype()));
  Variable count = sum(cast(not_equal(t, constant_like(-1.0, t)), y.dtype()));
  return hits / maximum(count, constant_like(1.0, count));
}

Variable r2_score(const Variable& pred, const Variable& true_, const Variable& sample_weight,
                  const std::string& multioutput, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "R2_score";
  check_float(fn, "pred", pred);
  check_same_dtype(fn, "pred", pred, "true", true_);
  check_same_shape(fn, "pred", pred, "true", true_);
  if (!sample_weight.is_null()) throw Error("r2_score: sample_weight is not supported (as in Chainer)");
  if (multioutput != "uniform_average" && multioutput != "raw_values")
    throw Error(fmt::format("r2_score: multioutput must be 'uniform_average' or 'raw_values', but '{}' is given",
                            multioutput));
  if (pred.ndim() < 1) type_error(fn, "pred.ndim >= 1", "pred.ndim = 0");
  Variable d = pred - true_;
  Variable ss_res = sum(d * d, std::vector<int64_t>{0});
  Variable c = true_ - mean(true_, std::vector<int64_t>{0}, true);
  Variable ss_tot = sum(c * c, std::vector<int64_t>{0});
  Variable zero = equal(ss_tot, constant_like(0.0, ss_tot));
  Variable ret = where(zero, constant_like(0.0, ss_tot),
                       1.0 - ss_res / where(zero, constant_like(1.0, ss_tot), ss_tot));
  if (multioutput == "uniform_average") return mean(ret);
  return ret;
}

// ---- connectionist temporal classification ----------------------------------------------

namespace {

// log(exp(a) + exp(b) + exp(c)), elementwise, finite for finite inputs.
Variable logsumexp3(const Variable& a, const Variable& b, const Variable& c) {
  Variable m = maximum(maximum(a, b), c);
  return m + log(exp(a - m) + exp(b - m) + exp(c - m));
}

Variable int_iota(const Shape& shape, int64_t dimension) {
  return record("kiln.iota", {}, {int_attr("dimension", dimension)}, shape, DType::i32);
}

}  // namespace

Variable connectionist_temporal_classification(const std::vector<Variable>& x, const Variable& t,
                                               int64_t blank_symbol, const Variable& input_length,
                                               const Variable& label_length, const std::string& reduce,
                                               SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "ConnectionistTemporalClassification";
  if (x.empty()) throw Error("connectionist_temporal_classification: x must be a non-empty list of variables");
  for (size_t i = 0; i < x.size(); ++i) {
    check_float(fn, "x", x[i]);
    check_same_dtype(fn, "x[0]", x[0], fmt::format("x[{}]", i).c_str(), x[i]);
    if (x[i].ndim() != 2 || x[i].shape() != x[0].shape())
      type_error(fn, fmt::format("x[{}].shape == x[0].shape, 2-d", i),
                 fmt::format("{} vs {}", shape_str(x[i].shape()), shape_str(x[0].shape())));
  }
  check_int(fn, "t", t);
  check_ndim(fn, "t", t, 2);
  int64_t n_time = static_cast<int64_t>(x.size()), b = x[0].shape()[0], v = x[0].shape()[1];
  int64_t labels = t.shape()[1], s = 2 * labels + 1;
  if (t.shape()[0] != b) type_error(fn, "t.shape[0] == x[0].shape[0]", fmt::format("{} != {}", t.shape()[0], b));
  if (blank_symbol < 0 || blank_symbol >= v)
    type_error(fn, fmt::format("0 <= blank_symbol < x[0].shape[1] = {}", v), fmt::format("blank_symbol = {}", blank_symbol));
  for (const auto& [name, len] : {std::pair<const char*, const Variable*>{"input_length", &input_length},
                                  {"label_length", &label_length}}) {
    if (len->is_null()) continue;
    check_int(fn, name, *len);
    if (len->ndim() != 1 || len->shape()[0] != b)
      type_error(fn, fmt::format("{}.shape == ({},)", name, b), shape_str(len->shape()));
  }
  check_reduce(reduce, {"mean", "no"});
  DType dtype = x[0].dtype();
  const double neg = -1e10;  // Chainer's log(0)

  Variable logp = log_softmax(stack(x, 0), 2);  // (T, B, V)
  // The path: blank, t1, blank, t2, ..., blank (B, S).
  Variable blank = constant(static_cast<double>(blank_symbol), {b, s}, t.dtype());
  Variable labels_at = concat({repeat(t, {2}, 1), constant(static_cast<double>(blank_symbol), {b, 1}, t.dtype())}, 1);
  std::vector<uint8_t> even(static_cast<size_t>(b * s));
  for (int64_t i = 0; i < b * s; ++i) even[i] = (i % s) % 2 == 0;
  Variable even_mask(detail::on_device_of(Array::from<bool>(std::vector<bool>(even.begin(), even.end()), {b, s}), t), false);
  Variable path = where(even_mask, blank, labels_at);
  // e[t, b, s] = logp[t, b, path[b, s]].
  Variable onehot = cast(equal(int_iota({b, s, v}, 2), broadcast_to(reshape(cast(path, DType::i32), {b, s, 1}), {b, s, v})),
                         dtype);
  Variable emit = einsum("tbv,bsv->tbs", {logp, onehot});
  // The skip s-2 -> s: path[s] is a label unlike path[s-2] (shift fills keep s < 2 out).
  Variable path2 = shift(path, 1, 2, static_cast<double>(blank_symbol));
  Variable skip = where(not_equal(path, blank), not_equal(path, path2), constant(0.0, {b, s}, DType::b8));
  Variable floor_value = constant(neg, {b, s}, dtype);
  std::vector<uint8_t> first(static_cast<size_t>(b * s));
  for (int64_t i = 0; i < b * s; ++i) first[i] = i % s < 2;
  Variable first_mask(detail::on_device_of(Array::from<bool>(std::vector<bool>(first.begin(), first.end()), {b, s}), t), false);
  Variable alpha = where(first_mask, get_item(emit, {int64_t{0}}), floor_value);
  Variable in_len = input_length.is_null() ? Variable() : broadcast_to(reshape(cast(input_length, DType::i32), {b, 1}), {b, s});
  for (int64_t step = 1; step < n_time; ++step) {
    Variable a1 = shift(alpha, 1, 1, neg), a2 = where(skip, shift(alpha, 1, 2, neg), floor_value);
    Variable next = logsumexp3(alpha, a1, a2) + get_item(emit, {step});
    // Past a sample's input length its probabilities stay.
    alpha = in_len.is_null() ? next
                             : where(less(constant(static_cast<double>(step), {b, s}, DType::i32), in_len), next, alpha);
  }
  // The last label or the blank after it.
  Variable final_alpha;
  if (label_length.is_null()) {
    std::vector<uint8_t> last(static_cast<size_t>(b * s));
    for (int64_t i = 0; i < b * s; ++i) last[i] = i % s >= s - 2;
    Variable last_mask(detail::on_device_of(Array::from<bool>(std::vector<bool>(last.begin(), last.end()), {b, s}), t), false);
    final_alpha = where(last_mask, alpha, floor_value);
  } else {
    Variable end = broadcast_to(reshape(cast(label_length, DType::i32) * 2, {b, 1}), {b, s});
    Variable pos = int_iota({b, s}, 1);
    Variable at_end = equal(pos, end), before_end = equal(pos + 1, end);
    final_alpha = where(at_end, alpha, where(before_end, alpha, floor_value));
  }
  Variable loss = -logsumexp(final_alpha, std::vector<int64_t>{1});
  if (reduce == "no") return loss;
  return mean(loss);
}

// ---- normalization --------------------------------------------------------------------

Variable normalize(const Variable& x, double eps, int64_t axis, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "NormalizeL2";
  check_float(fn, "x", x);
  int64_t a = normalize_axis(fn, axis, x.ndim());
  Variable s = sum(x * x, std::vector<int64_t>{a}, true);
  // sqrt with a finite gradient at a zero vector, like Chainer's masked backward.
  Variable nonzero = greater(s, constant_like(0.0, s));
  Variable norm = where(nonzero, sqrt(where(nonzero, s, constant_like(1.0, s))), constant_like(0.0, s));
  return x / (norm + eps);
}

Variable local_response_normalization(const Variable& x, int64_t n, double k, double alpha, double beta,
                                      SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "LocalResponseNormalization";
  check_float(fn, "x", x);
  if (x.ndim() < 2) type_error(fn, "x.ndim >= 2", fmt::format("x.ndim = {}", x.ndim()));
  if (n <= 0) type_error(fn, "n > 0", fmt::format("n = {}", n));
  // Chainer: the sum of squares over channels c - n/2 .. c + n/2.
  int64_t half = n / 2, c = x.shape()[1];
  Variable x2 = x * x;
  std::vector<std::pair<int64_t, int64_t>> widths(static_cast<size_t>(x.ndim()), {0, 0});
  widths[1] = {half, half};
  Variable padded = half > 0 ? pad(x2, widths) : x2;
  Variable s;
  for (int64_t i = 0; i <= 2 * half; ++i) {
    std::vector<Index> items{Slice{}, Slice{i, i + c, std::nullopt}};
    Variable part = get_item(padded, items);
    s = s.is_null() ? part : s + part;
  }
  Variable base = s * alpha + k;
  return x * exp(log(base) * -beta);
}

Variable group_normalization(const Variable& x, int64_t groups, const Variable& gamma, const Variable& beta,
                             double eps, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "GroupNormalization";
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "gamma", gamma);
  check_same_dtype(fn, "x", x, "beta", beta);
  if (x.ndim() < 2) type_error(fn, "x.ndim >= 2", fmt::format("x.ndim = {}", x.ndim()));
  int64_t c = x.shape()[1];
  if (groups <= 0) throw Error(fmt::format("group_normalization: groups must be positive, but {} is given", groups));
  if (c % groups != 0)
    throw Error(fmt::format("group_normalization: the number of channels ({}) must be divisible by groups ({})", c,
                            groups));
  if (gamma.ndim() != 1 || gamma.shape()[0] != c)
    type_error(fn, "gamma.shape == (x.shape[1],)", fmt::format("{} vs {}", shape_str(gamma.shape()), shape_str(x.shape())));
  if (beta.ndim() != 1 || beta.shape()[0] != c)
    type_error(fn, "beta.shape == (x.shape[1],)", fmt::format("{} vs {}", shape_str(beta.shape()), shape_str(x.shape())));
  Variable g = reshape(x, {x.shape()[0], groups, -1});
  Variable mu = mean(g, std::vector<int64_t>{2}, true);
  Variable xc = g - mu;
  Variable var = mean(xc * xc, std::vector<int64_t>{2}, true);
  Variable xhat = reshape(xc / sqrt(var + eps), x.shape());
  Shape cs(static_cast<size_t>(x.ndim()), 1);
  cs[1] = c;
  return xhat * reshape(gamma, cs) + reshape(beta, cs);
}

}  // namespace kiln::functions
