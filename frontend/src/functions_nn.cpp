// Neural-network functions of kiln::functions: dropout, losses, metrics, convolution,
// pooling, normalization and embeddings. Like the rest of F, they only check and record.
#include <cmath>
#include <limits>

#include "kiln/config.h"
#include "ops.h"

namespace kiln::functions {

using namespace detail;

namespace {

std::string pair_str(const Pair& p) { return fmt::format("({}, {})", p.h, p.w); }

void check_pair(const std::string& fn, const char* name, const Pair& p, int64_t minimum) {
  if (p.h < minimum || p.w < minimum)
    type_error(fn, fmt::format("{} >= {}", name, minimum), fmt::format("{} = {}", name, pair_str(p)));
}

// Chainer's get_conv_outsize (floor, or cover_all) for a window of extent k.
int64_t conv_outsize(int64_t size, int64_t k, int64_t s, int64_t p, bool cover_all = false) {
  int64_t span = size + 2 * p - k + (cover_all ? s - 1 : 0);
  if (span < 0) return 0;  // floor division of a negative span: no window fits
  return span / s + 1;
}

// The extent d * (k - 1) + 1 of a filter of size k dilated by d.
int64_t dilated_extent(int64_t k, int64_t d) { return d * (k - 1) + 1; }

// Chainer's checks of a convolution's groups: both channel counts divisible by it.
void check_groups(const std::string& fn, int64_t groups, const char* in_name, int64_t in_channels,
                  const char* out_name, int64_t out_channels) {
  if (groups < 1) type_error(fn, "groups >= 1", fmt::format("groups = {}", groups));
  if (in_channels % groups != 0)
    type_error(fn, fmt::format("{} % groups == 0", in_name), fmt::format("{} % {} != 0", in_channels, groups));
  if (out_channels % groups != 0)
    type_error(fn, fmt::format("{} % groups == 0", out_name), fmt::format("{} % {} != 0", out_channels, groups));
}

// The conv2d family's attributes (dilate and groups only where they are not 1, so
// the IR of a plain convolution stays as before).
Attrs conv_attrs(Pair stride, Pair pad, Pair dilate, int64_t groups) {
  Attrs attrs{ints_attr("stride", {stride.h, stride.w}), ints_attr("pad", {pad.h, pad.w})};
  if (dilate.h != 1 || dilate.w != 1) attrs.push_back(ints_attr("dilate", {dilate.h, dilate.w}));
  if (groups != 1) attrs.push_back(int_attr("groups", groups));
  return attrs;
}

// x reshaped to broadcast along axis 1 of an ndim-d tensor: (1, C, 1, ...).
Variable channel_view(const Variable& v, int64_t ndim) {
  Shape s(static_cast<size_t>(ndim), 1);
  for (int64_t i = 0; i < v.ndim(); ++i) s[1 + i] = v.shape()[i];
  return reshape(v, s);
}

Variable sum_all(const Variable& x) { return sum(x); }

Variable as_float(const Variable& b, DType dtype) { return cast(b, dtype); }

// t itself, checked when the graph runs: an element outside [0, limit) other
// than `ignore` raises kiln::Error after the run, on every backend
// (kiln.check_range), naming `function`, `operand`, the value and the range.
Variable check_range(const std::string& function, const std::string& operand, const Variable& t, int64_t limit,
                     std::optional<int64_t> ignore) {
  Attrs attrs{int_attr("limit", limit), str_attr("function", function), str_attr("operand", operand)};
  if (ignore) attrs.push_back(int_attr("ignore", *ignore));
  return record("kiln.check_range", {t}, std::move(attrs), t.shape(), t.dtype());
}

struct DropoutState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};
DropoutState& dropout_state() {
  thread_local DropoutState s;  // per thread, like the rest of the trace
  return s;
}

}  // namespace

// ---- dropout ----------------------------------------------------------------------

void set_dropout_seed(uint64_t seed) {
  dropout_state().seed = seed;
  dropout_state().offset = 0;
}

Variable dropout(const Variable& x, double ratio, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  check_float("dropout", "x", x);
  if (!(ratio >= 0.0 && ratio < 1.0))
    type_error("dropout", "0.0 <= ratio < 1.0", fmt::format("ratio = {}", ratio));
  // A new variable on x's node (like F::identity), so the output's grad is not x's.
  if (!config().train || ratio == 0.0) return Variable(x.node());
  DropoutState& st = dropout_state();
  // (seed, offset) enter as an input, so every step has the same graph (one compile).
  Variable key(detail::on_device_of(
                   Array::from<int64_t>({static_cast<int64_t>(st.seed), static_cast<int64_t>(st.offset)}, {2}), x),
               /*requires_grad=*/false);
  detail::mark_state(key.impl());  // RNG state: its leading 2 is never a batch size
  st.offset += static_cast<uint64_t>(x.size());
  Variable u = record("kiln.rng_uniform", {key}, {}, x.shape(), x.dtype());
  // Chainer: mask = (rand >= ratio) * scale; y = x * mask.
  Variable keep = greater_equal(u, constant_like(ratio, u));
  Variable mask = where(keep, constant_like(1.0 / (1.0 - ratio), x), constant_like(0.0, x));
  return x * mask;
}

// ---- losses -----------------------------------------------------------------------

Variable softmax_cross_entropy(const Variable& x, const Variable& t, bool normalize,
                               int64_t ignore_label, const std::string& reduce, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "SoftmaxCrossEntropy";
  check_float(fn, "x", x);
  check_int(fn, "t", t);
  if (t.ndim() != x.ndim() - 1)
    type_error(fn, "t.ndim == x.ndim - 1", fmt::format("{} != {}", t.ndim(), x.ndim() - 1));
  if (x.ndim() < 2) type_error(fn, "x.ndim >= 2", fmt::format("{} < 2", x.ndim()));
  if (x.shape()[0] != t.shape()[0])
    type_error(fn, "x.shape[0] == t.shape[0]", fmt::format("{} != {}", x.shape()[0], t.shape()[0]));
  Shape xs(x.shape().begin() + 2, x.shape().end()), ts(t.shape().begin() + 1, t.shape().end());
  if (xs != ts) type_error(fn, "x.shape[2:] == t.shape[1:]", fmt::format("{} != {}", shape_str(xs), shape_str(ts)));
  if (reduce != "mean" && reduce != "no")
    throw Error(fmt::format("only 'mean' and 'no' are valid for 'reduce', but '{}' is given", reduce));

  // Labels outside [0, classes) other than ignore_label raise when the graph runs (Chainer raises).
  Variable labels = check_range("softmax_cross_entropy", "t", t, x.shape()[1], ignore_label);
  Variable logp = log_softmax(x, 1);
  // One-hot of t along axis 1: iota(axis 1) == t[:, None, ...].
  Variable classes = record("kiln.iota", {}, {int_attr("dimension", 1)}, x.shape(), t.dtype());
  Shape tview = t.shape();
  tview.insert(tview.begin() + 1, 1);
  Variable onehot = equal(classes, reshape(labels, tview));
  Variable picked = sum(where(onehot, logp, constant_like(0.0, logp)), std::vector<int64_t>{1});
  Variable valid = not_equal(labels, constant_like(static_cast<double>(ignore_label), labels));
  Variable loss = where(valid, -picked, constant_like(0.0, picked));
  if (reduce == "no") return loss;
  Variable total = sum_all(loss);
  if (normalize) {
    Variable count = sum_all(as_float(valid, x.dtype()));
    return total / maximum(count, constant_like(1.0, count));
  }
  return total * inverse_count(x, {0}, x.dtype());
}

Variable mean_squared_error(const Variable& x0, const Variable& x1, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "MeanSquaredError";
  check_float(fn, "x0", x0);
  check_same_dtype(fn, "x0", x0, "x1", x1);
  if (x0.shape() != x1.shape())
    type_error(fn, "x0.shape == x1.shape", fmt::format("{} != {}", shape_str(x0.shape()), shape_str(x1.shape())));
  Variable d = x0 - x1;
  return sum_all(d * d) * inverse_count(d, all_dims(d), d.dtype());
}

Variable sigmoid_cross_entropy(const Variable& x, const Variable& t, bool normalize,
                               const std::string& reduce, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "SigmoidCrossEntropy";
  check_float(fn, "x", x);
  check_int(fn, "t", t);
  if (x.shape() != t.shape())
    type_error(fn, "x.shape == t.shape", fmt::format("{} != {}", shape_str(x.shape()), shape_str(t.shape())));
  if (reduce != "mean" && reduce != "no")
    throw Error(fmt::format("only 'mean' and 'no' are valid for 'reduce', but '{}' is given", reduce));
  // softplus(x) - x*t, stable and with the right derivative everywhere (also at 0):
  // softplus(x) = max(x, 0) + log1p(exp(m)), m = -|x| with d m/dx = -1 at x = 0.
  Variable zero = constant_like(0.0, x);
  Variable pos = greater_equal(x, zero);
  Variable m = where(pos, -x, x);
  Variable softplus_x = where(pos, x, zero) + record_like("kiln.log1p", {exp(m)});
  Variable tf = cast(t, x.dtype());
  Variable valid = not_equal(t, constant_like(-1.0, t));
  Variable loss = where(valid, softplus_x - x * tf, zero);
  if (reduce == "no") return loss;
  Variable total = sum_all(loss);
  if (normalize) {
    Variable count = sum_all(as_float(valid, x.dtype()));
    return total / maximum(count, constant_like(1.0, count));
  }
  if (x.ndim() == 0) return total;
  return total * inverse_count(x, {0}, x.dtype());
}

Variable huber_loss(const Variable& x, const Variable& t, double delta, const std::string& reduce, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "HuberLoss";
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "t", t);
  if (x.shape() != t.shape())
    type_error(fn, "x.shape == t.shape", fmt::format("{} != {}", shape_str(x.shape()), shape_str(t.shape())));
  if (reduce != "sum_along_second_axis" && reduce != "no")
    throw Error(fmt::format("only 'sum_along_second_axis' and 'no' are valid for 'reduce', but '{}' is given",
                            reduce));
  if (reduce == "sum_along_second_axis" && x.ndim() < 2)
    type_error(fn, "x.ndim >= 2 (reduce='sum_along_second_axis')", fmt::format("x.ndim = {}", x.ndim()));
  Variable d = x - t;
  Variable sq = d * d;
  Variable big = greater(sq, constant_like(delta * delta, sq));
  Variable loss = where(big, absolute(d) * delta - delta * delta * 0.5, sq * 0.5);
  if (reduce == "no") return loss;
  return sum(loss, std::vector<int64_t>{1});
}

Variable accuracy(const Variable& y, const Variable& t, std::optional<int64_t> ignore_label, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Accuracy";
  check_float(fn, "x", y);
  check_int(fn, "t", t);
  if (t.ndim() != y.ndim() - 1)
    type_error(fn, "t.ndim == x.ndim - 1", fmt::format("{} != {}", t.ndim(), y.ndim() - 1));
  if (y.ndim() < 2) type_error(fn, "x.ndim >= 2", fmt::format("{} < 2", y.ndim()));
  if (y.shape()[0] != t.shape()[0])
    type_error(fn, "x.shape[0] == t.shape[0]", fmt::format("{} != {}", y.shape()[0], t.shape()[0]));
  Shape ys(y.shape().begin() + 2, y.shape().end()), ts(t.shape().begin() + 1, t.shape().end());
  if (ys != ts) type_error(fn, "x.shape[2:] == t.shape[1:]", fmt::format("{} != {}", shape_str(ys), shape_str(ts)));
  Variable pred = cast(argmax(y, 1), t.dtype());
  Variable correct = equal(pred, t);
  if (!ignore_label) {
    return sum_all(cast(correct, y.dtype())) * inverse_count(t, all_dims(t), y.dtype());
  }
  Variable valid = not_equal(t, constant_like(static_cast<double>(*ignore_label), t));
  Variable hits = sum_all(cast(where(valid, correct, constant(0.0, correct.shape(), DType::b8)), y.dtype()));
  Variable total = sum_all(cast(valid, y.dtype()));
  return hits / maximum(total, constant_like(1.0, total));
}

// ---- convolution ------------------------------------------------------------------

Variable convolution_2d(const Variable& x, const Variable& W, const Variable& b, Pair stride, Pair pad,
                        bool cover_all, Pair dilate, int64_t groups, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Convolution2DFunction";
  check_float(fn, "x", x);
  check_float(fn, "W", W);
  check_same_dtype(fn, "x", x, "W", W);
  check_ndim(fn, "x", x, 4);
  check_ndim(fn, "W", W, 4);
  check_groups(fn, groups, "x.shape[1]", x.shape()[1], "W.shape[0]", W.shape()[0]);
  if (x.shape()[1] != W.shape()[1] * groups)
    type_error(fn, "x.shape[1] == W.shape[1] * groups",
               fmt::format("{} != {} * {}", x.shape()[1], W.shape()[1], groups));
  check_pair(fn, "stride", stride, 1);
  check_pair(fn, "pad", pad, 0);
  check_pair(fn, "dilate", dilate, 1);
  int64_t h = x.shape()[2], w = x.shape()[3];
  int64_t kh = dilated_extent(W.shape()[2], dilate.h), kw = dilated_extent(W.shape()[3], dilate.w);
  int64_t oh = conv_outsize(h, kh, stride.h, pad.h, cover_all);
  int64_t ow = conv_outsize(w, kw, stride.w, pad.w, cover_all);
  if (oh <= 0 || ow <= 0)
    type_error(fn, "the filter fits in the padded input (output size > 0)",
               fmt::format("x.shape = {}, W.shape = {}, pad = {}, dilate = {}", shape_str(x.shape()),
                           shape_str(W.shape()), pair_str(pad), pair_str(dilate)));
  if (!b.is_null()) {
    check_same_dtype(fn, "x", x, "b", b);
    if (b.ndim() != 1 || b.shape()[0] != W.shape()[0])
      type_error(fn, "b.shape == (W.shape[0],)", fmt::format("{} vs {}", shape_str(b.shape()), shape_str(W.shape())));
  }
  // cover_all: windows past the padded input read extra zero padding on the high side.
  Variable in = x;
  int64_t extra_h = std::max<int64_t>(0, (oh - 1) * stride.h + kh - (h + 2 * pad.h));
  int64_t extra_w = std::max<int64_t>(0, (ow - 1) * stride.w + kw - (w + 2 * pad.w));
  if (extra_h > 0 || extra_w > 0) in = functions::pad(x, {{0, 0}, {0, 0}, {0, extra_h}, {0, extra_w}});
  Variable y = record("kiln.conv2d", {in, W}, conv_attrs(stride, pad, dilate, groups),
                      {x.shape()[0], W.shape()[0], oh, ow}, x.dtype());
  if (!b.is_null()) y = y + channel_view(b, 4);
  return y;
}

Variable deconvolution_2d(const Variable& x, const Variable& W, const Variable& b, Pair stride, Pair pad,
                          std::optional<Pair> outsize, Pair dilate, int64_t groups, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "Deconvolution2DFunction";
  check_float(fn, "x", x);
  check_float(fn, "W", W);
  check_same_dtype(fn, "x", x, "W", W);
  check_ndim(fn, "x", x, 4);
  check_ndim(fn, "W", W, 4);
  if (x.shape()[1] != W.shape()[0])
    type_error(fn, "x.shape[1] == W.shape[0]", fmt::format("{} != {}", x.shape()[1], W.shape()[0]));
  check_groups(fn, groups, "x.shape[1]", x.shape()[1], "W.shape[1] * groups", W.shape()[1] * groups);
  check_pair(fn, "stride", stride, 1);
  check_pair(fn, "pad", pad, 0);
  check_pair(fn, "dilate", dilate, 1);
  int64_t kh = dilated_extent(W.shape()[2], dilate.h), kw = dilated_extent(W.shape()[3], dilate.w);
  int64_t h = x.shape()[2], w = x.shape()[3], out_c = W.shape()[1] * groups;
  // Chainer's get_deconv_outsize.
  int64_t full_h = stride.h * (h - 1) + kh - 2 * pad.h, full_w = stride.w * (w - 1) + kw - 2 * pad.w;
  int64_t oh = outsize ? outsize->h : full_h, ow = outsize ? outsize->w : full_w;
  if (oh <= 0 || ow <= 0)
    type_error(fn, "output size > 0", fmt::format("outsize = ({}, {})", oh, ow));
  if (outsize) {
    // Chainer: get_conv_outsize(out) <= in <= get_conv_outsize(out, cover_all=True).
    auto ok = [](int64_t out, int64_t in, int64_t k, int64_t s, int64_t p) {
      return conv_outsize(out, k, s, p) <= in && in <= conv_outsize(out, k, s, p, true);
    };
    if (!ok(oh, h, kh, stride.h, pad.h) || !ok(ow, w, kw, stride.w, pad.w))
      type_error(fn, "get_conv_outsize(outsize, W.shape[2:], stride, pad) == x.shape[2:]",
                 fmt::format("outsize = ({}, {}), x.shape = {}, W.shape = {}", oh, ow, shape_str(x.shape()),
                             shape_str(W.shape())));
  }
  if (!b.is_null()) {
    check_same_dtype(fn, "x", x, "b", b);
    if (b.ndim() != 1 || b.shape()[0] != out_c)
      type_error(fn, groups == 1 ? "b.shape == (W.shape[1],)" : "b.shape == (W.shape[1] * groups,)",
                 fmt::format("{} vs {}", shape_str(b.shape()), shape_str(W.shape())));
  }
  // conv2d_grad_input needs floor(conv_outsize(out)) == in; a smaller (cover_all) outsize is the
  // top-left crop of a larger one.
  int64_t ch = conv_outsize(oh, kh, stride.h, pad.h) == h ? oh : full_h;
  int64_t cw = conv_outsize(ow, kw, stride.w, pad.w) == w ? ow : full_w;
  Variable y = record("kiln.conv2d_grad_input", {x, W}, conv_attrs(stride, pad, dilate, groups),
                      {x.shape()[0], out_c, ch, cw}, x.dtype());
  if (ch != oh || cw != ow)
    y = get_item(y, {Slice{}, Slice{}, Slice{std::nullopt, oh, std::nullopt}, Slice{std::nullopt, ow, std::nullopt}});
  if (!b.is_null()) y = y + channel_view(b, 4);
  return y;
}

// ---- pooling ----------------------------------------------------------------------

static Variable pool(const std::string& fn, const std::string& kind, const Variable& x, Pair ksize,
                     std::optional<Pair> stride_opt, Pair pad, bool cover_all) {
  check_float(fn, "x", x);
  check_ndim(fn, "x", x, 4);
  Pair stride = stride_opt.value_or(ksize);
  check_pair(fn, "ksize", ksize, 1);
  check_pair(fn, "stride", stride, 1);
  check_pair(fn, "pad", pad, 0);
  int64_t h = x.shape()[2], w = x.shape()[3];
  int64_t oh = conv_outsize(h, ksize.h, stride.h, pad.h, cover_all);
  int64_t ow = conv_outsize(w, ksize.w, stride.w, pad.w, cover_all);
  // Like Chainer, cover_all also accepts a window larger than the padded input (one output).
  if (oh <= 0 || ow <= 0)
    type_error(fn, "the pooling window fits in the padded input (output size > 0)",
               fmt::format("x.shape = {}, ksize = {}, pad = {}", shape_str(x.shape()), pair_str(ksize),
                           pair_str(pad)));
  Variable in = x;
  // cover_all: windows past the padded input read extra -inf padding on the high side.
  int64_t extra_h = std::max<int64_t>(0, (oh - 1) * stride.h + ksize.h - (h + 2 * pad.h));
  int64_t extra_w = std::max<int64_t>(0, (ow - 1) * stride.w + ksize.w - (w + 2 * pad.w));
  if (extra_h > 0 || extra_w > 0) {
    in = record("kiln.pad", {x},
                {ints_attr("low", {0, 0, 0, 0}), ints_attr("high", {0, 0, extra_h, extra_w}),
                 ints_attr("interior", {0, 0, 0, 0}),
                 float_attr("value", -std::numeric_limits<double>::infinity())},
                {x.shape()[0], x.shape()[1], h + extra_h, w + extra_w}, x.dtype());
  }
  return record("kiln.pool2d", {in},
                {str_attr("kind", kind), ints_attr("ksize", {ksize.h, ksize.w}),
                 ints_attr("stride", {stride.h, stride.w}), ints_attr("pad", {pad.h, pad.w})},
                {x.shape()[0], x.shape()[1], oh, ow}, x.dtype());
}

Variable max_pooling_2d(const Variable& x, Pair ksize, std::optional<Pair> stride, Pair pad, bool cover_all, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return pool("MaxPooling2D", "max", x, ksize, stride, pad, cover_all);
}

Variable average_pooling_2d(const Variable& x, Pair ksize, std::optional<Pair> stride, Pair pad, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return pool("AveragePooling2D", "avg", x, ksize, stride, pad, false);
}

// ---- normalization ----------------------------------------------------------------

// Checks gamma/beta (and mean/var) against x.shape[1:1+M]; returns the reduced axes.
static std::vector<int64_t> check_bn(const std::string& fn, const Variable& x, const Variable& gamma,
                                     const Variable& beta) {
  check_float(fn, "x", x);
  check_same_dtype(fn, "x", x, "gamma", gamma);
  check_same_dtype(fn, "x", x, "beta", beta);
  if (gamma.shape() != beta.shape())
    type_error(fn, "gamma.shape == beta.shape", fmt::format("{} != {}", shape_str(gamma.shape()), shape_str(beta.shape())));
  int64_t m = gamma.ndim();
  if (x.ndim() < m + 1) type_error(fn, "x.ndim >= gamma.ndim + 1", fmt::format("{} < {}", x.ndim(), m + 1));
  Shape key(x.shape().begin() + 1, x.shape().begin() + 1 + m);
  if (key != gamma.shape())
    type_error(fn, fmt::format("x.shape[1:{}] == gamma.shape", 1 + m),
               fmt::format("{} != {}", shape_str(key), shape_str(gamma.shape())));
  std::vector<int64_t> axes{0};
  for (int64_t d = 1 + m; d < x.ndim(); ++d) axes.push_back(d);
  return axes;
}

static Variable bn_apply(const Variable& x, const Variable& gamma, const Variable& beta, const Variable& mean_,
                         const Variable& var, double eps) {
  int64_t n = x.ndim();
  Variable inv_std = 1.0 / sqrt(channel_view(var, n) + eps);
  return channel_view(gamma, n) * ((x - channel_view(mean_, n)) * inv_std) + channel_view(beta, n);
}

Variable batch_normalization(const Variable& x, const Variable& gamma, const Variable& beta, double eps, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  std::vector<int64_t> axes = check_bn("BatchNormalization", x, gamma, beta);
  Variable mu = mean(x, axes, true);
  Variable xc = x - mu;
  Variable var = mean(xc * xc, axes, true);
  return channel_view(gamma, x.ndim()) * (xc / sqrt(var + eps)) + channel_view(beta, x.ndim());
}

Variable fixed_batch_normalization(const Variable& x, const Variable& gamma, const Variable& beta,
                                   const Variable& mean_, const Variable& var, double eps, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "FixedBatchNormalization";
  check_bn(fn, x, gamma, beta);
  check_same_dtype(fn, "x", x, "mean", mean_);
  check_same_dtype(fn, "x", x, "var", var);
  if (mean_.shape() != gamma.shape())
    type_error(fn, "mean.shape == gamma.shape", fmt::format("{} != {}", shape_str(mean_.shape()), shape_str(gamma.shape())));
  if (var.shape() != gamma.shape())
    type_error(fn, "var.shape == gamma.shape", fmt::format("{} != {}", shape_str(var.shape()), shape_str(gamma.shape())));
  return bn_apply(x, gamma, beta, mean_, var, eps);
}

Variable layer_normalization(const Variable& x, const Variable& gamma, const Variable& beta, double eps, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "LayerNormalization";
  check_float(fn, "x", x);
  check_ndim(fn, "x", x, 2);
  check_same_dtype(fn, "x", x, "gamma", gamma);
  check_same_dtype(fn, "x", x, "beta", beta);
  if (gamma.ndim() != 1 || gamma.shape()[0] != x.shape()[1])
    type_error(fn, "gamma.shape == (x.shape[1],)", fmt::format("{} vs {}", shape_str(gamma.shape()), shape_str(x.shape())));
  if (beta.ndim() != 1 || beta.shape()[0] != x.shape()[1])
    type_error(fn, "beta.shape == (x.shape[1],)", fmt::format("{} vs {}", shape_str(beta.shape()), shape_str(x.shape())));
  Variable mu = mean(x, std::vector<int64_t>{1}, true);
  Variable xc = x - mu;
  Variable var = mean(xc * xc, std::vector<int64_t>{1}, true);
  Variable xhat = xc / sqrt(var + eps);
  return xhat * reshape(gamma, {1, gamma.shape()[0]}) + reshape(beta, {1, beta.shape()[0]});
}

// ---- embeddings -------------------------------------------------------------------

Variable embed_id(const Variable& x, const Variable& W, std::optional<int64_t> ignore_label, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "EmbedIDFunction";
  check_int(fn, "x", x);
  check_float(fn, "W", W);
  check_ndim(fn, "W", W, 2);
  Shape out = x.shape();
  out.push_back(W.shape()[1]);
  // Ids outside [0, len(W)) other than ignore_label raise when the graph runs.
  Variable ids = check_range("embed_id", "x", x, W.shape()[0], ignore_label);
  if (!ignore_label) return record("kiln.gather", {W, ids}, {}, out, W.dtype());
  Variable ignored = equal(ids, constant_like(static_cast<double>(*ignore_label), ids));
  Variable safe_ids = where(ignored, constant_like(0.0, ids), ids);
  Variable rows = record("kiln.gather", {W, safe_ids}, {}, out, W.dtype());
  Shape mview = x.shape();
  mview.push_back(1);
  Variable mask = broadcast_to(reshape(ignored, mview), out);
  return where(mask, constant_like(0.0, rows), rows);
}

}  // namespace kiln::functions
