// L::Convolution2D, L::Deconvolution2D, L::BatchNormalization, L::EmbedID, L::LayerNormalization.
#include "kiln/links_nn.h"

#include "kiln/config.h"
#include "ops.h"
#include "trace.h"

namespace kiln::links {

namespace {

void check_positive(const char* link, const char* what, int64_t v) {
  if (v <= 0) throw Error(fmt::format("kiln: L::{}: {} must be positive, got {}", link, what, v));
}

void check_in(const char* link, const char* what, int64_t v) {
  if (v == 0 || v < -1)
    throw Error(fmt::format("kiln: L::{}: {} must be positive or -1 (inferred), got {}", link, what, v));
}

void check_pairs(const char* link, Pair ksize, Pair stride, Pair pad) {
  if (ksize.h <= 0 || ksize.w <= 0 || stride.h <= 0 || stride.w <= 0 || pad.h < 0 || pad.w < 0)
    throw Error(fmt::format("kiln: L::{}: ksize and stride must be positive and pad >= 0, got ksize ({}, {}), "
                            "stride ({}, {}), pad ({}, {})",
                            link, ksize.h, ksize.w, stride.h, stride.w, pad.h, pad.w));
}

// Chainer's checks of a convolution's dilate and groups (in_channels once known, > 0).
void check_dilate_groups(const char* link, Pair dilate, int64_t groups, int64_t in_channels, int64_t out_channels) {
  if (dilate.h <= 0 || dilate.w <= 0)
    throw Error(fmt::format("kiln: L::{}: dilate must be positive, got ({}, {})", link, dilate.h, dilate.w));
  check_positive(link, "groups", groups);
  if (out_channels % groups != 0)
    throw Error(fmt::format("kiln: L::{}: the number of output channels ({}) must be divisible by the number "
                            "of groups ({})", link, out_channels, groups));
  if (in_channels > 0 && in_channels % groups != 0)
    throw Error(fmt::format("kiln: L::{}: the number of input channels ({}) must be divisible by the number "
                            "of groups ({})", link, in_channels, groups));
}

// The value of a persistent as a plain leaf with no trace behind it (Chainer keeps
// persistents as arrays): realized running statistics do not pull earlier graphs along.
void detach(const Variable& v, bool force) {
  auto& data = *v.impl();
  if (!data.node || data.node->is_leaf()) return;
  if (!data.node->realized()) {
    if (!force) return;
    detail::realize();
  }
  detail::claim(v.impl());
  data.node = detail::make_leaf(*data.node->value, v.impl());
}

void set_value(const Variable& v, const Variable& value) {
  detail::claim(v.impl());
  v.impl()->node = value.node();
}

}  // namespace

// ---- Convolution2D ------------------------------------------------------------------

Convolution2D::Convolution2D(int64_t out, Pair k) : out_channels(out), ksize(k) { init(nullptr, nullptr); }

Convolution2D::Convolution2D(int64_t in, int64_t out, Pair k, Pair s, Pair p, bool nb,
                             Parameter::Initializer initialW, Parameter::Initializer initial_bias, Pair d,
                             int64_t g)
    : in_channels(in), out_channels(out), ksize(k), stride(s), pad(p), dilate(d), groups(g), nobias(nb) {
  init(std::move(initialW), std::move(initial_bias));
  if (in_channels > 0) W.initialize({out_channels, in_channels / groups, ksize.h, ksize.w});
}

void Convolution2D::init(Parameter::Initializer initialW, Parameter::Initializer initial_bias) {
  check_positive("Convolution2D", "out_channels", out_channels);
  check_in("Convolution2D", "in_channels", in_channels);
  check_pairs("Convolution2D", ksize, stride, pad);
  check_dilate_groups("Convolution2D", dilate, groups, in_channels, out_channels);
  add_weight_and_bias(W, b, nobias, out_channels, std::move(initialW), std::move(initial_bias));
}

Variable Convolution2D::operator()(const Variable& x) const {
  if (!W.is_initialized()) {
    if (x.ndim() != 4)
      throw Error("kiln: L::Convolution2D: cannot infer in_channels from an input of shape " + shape_str(x.shape()));
    check_dilate_groups("Convolution2D", dilate, groups, x.shape()[1], out_channels);
    const_cast<Parameter&>(W).initialize({out_channels, x.shape()[1] / groups, ksize.h, ksize.w}, x.dtype());
  }
  return F::convolution_2d(x, W, nobias ? Variable() : Variable(b), stride, pad, false, dilate, groups);
}

// ---- Deconvolution2D ----------------------------------------------------------------

Deconvolution2D::Deconvolution2D(int64_t out, Pair k) : out_channels(out), ksize(k) { init(nullptr, nullptr); }

Deconvolution2D::Deconvolution2D(int64_t in, int64_t out, Pair k, Pair s, Pair p, bool nb,
                                 std::optional<Pair> osize, Parameter::Initializer initialW,
                                 Parameter::Initializer initial_bias, Pair d, int64_t g)
    : in_channels(in), out_channels(out), ksize(k), stride(s), pad(p), dilate(d), groups(g), outsize(osize),
      nobias(nb) {
  init(std::move(initialW), std::move(initial_bias));
  if (in_channels > 0) W.initialize({in_channels, out_channels / groups, ksize.h, ksize.w});
}

void Deconvolution2D::init(Parameter::Initializer initialW, Parameter::Initializer initial_bias) {
  check_positive("Deconvolution2D", "out_channels", out_channels);
  check_in("Deconvolution2D", "in_channels", in_channels);
  check_pairs("Deconvolution2D", ksize, stride, pad);
  check_dilate_groups("Deconvolution2D", dilate, groups, in_channels, out_channels);
  add_weight_and_bias(W, b, nobias, out_channels, std::move(initialW), std::move(initial_bias));
}

Variable Deconvolution2D::operator()(const Variable& x) const {
  if (!W.is_initialized()) {
    if (x.ndim() != 4)
      throw Error("kiln: L::Deconvolution2D: cannot infer in_channels from an input of shape " +
                  shape_str(x.shape()));
    check_dilate_groups("Deconvolution2D", dilate, groups, x.shape()[1], out_channels);
    const_cast<Parameter&>(W).initialize({x.shape()[1], out_channels / groups, ksize.h, ksize.w}, x.dtype());
  }
  return F::deconvolution_2d(x, W, nobias ? Variable() : Variable(b), stride, pad, outsize, dilate, groups);
}

// ---- BatchNormalization -------------------------------------------------------------

BatchNormalization::BatchNormalization(int64_t sz, double dc, double ep, DType dtype)
    : size(sz), decay(dc), eps(ep) {
  check_positive("BatchNormalization", "size", size);
  if (!is_floating(dtype)) throw Error("kiln: L::BatchNormalization: dtype must be float32 or float64");
  if (!(eps > 0)) throw Error(fmt::format("kiln: L::BatchNormalization: eps must be positive, got {}", eps));
  gamma = Parameter(initializers::One());
  gamma.initialize({size}, dtype);
  add_param("gamma", gamma);
  beta = Parameter(initializers::Zero());
  beta.initialize({size}, dtype);
  add_param("beta", beta);
  avg_mean = Variable(Array::zeros({size}, dtype), /*requires_grad=*/false);
  avg_var = Variable(Array::ones({size}, dtype), /*requires_grad=*/false);
  N = Variable(Array::scalar<int64_t>(0), /*requires_grad=*/false);
  for (Variable* v : {&avg_mean, &avg_var, &N}) detail::mark_state(v->impl());
  add_persistent("avg_mean", avg_mean);
  add_persistent("avg_var", avg_var);
  add_persistent("N", N);
}

Variable BatchNormalization::operator()(const Variable& x) const {
  const std::string fn = "BatchNormalization";
  if (!config().train) {
    detach(avg_mean, true);
    detach(avg_var, true);
    return F::fixed_batch_normalization(x, gamma, beta, avg_mean, avg_var, eps);
  }
  detach(avg_mean, false);
  detach(avg_var, false);
  detail::check_float(fn, "x", x);
  if (x.ndim() < 2 || x.shape()[1] != size)
    detail::type_error(fn, fmt::format("x.shape[1] == {}", size), fmt::format("x.shape = {}", shape_str(x.shape())));
  std::vector<int64_t> axes{0};
  for (int64_t d = 2; d < x.ndim(); ++d) axes.push_back(d);
  Variable mu = F::mean(x, axes);
  Shape kept(static_cast<size_t>(x.ndim()), 1);
  kept[1] = size;
  Variable xc = x - F::reshape(mu, kept);
  Variable var = F::mean(xc * xc, axes);
  Variable y = F::fixed_batch_normalization(x, gamma, beta, mu, var, eps);
  // Running statistics (Chainer): the variance is corrected to the unbiased estimate.
  // m = x.size / size, as a graph value (the batch size may be symbolic).
  Variable m = detail::dim_size(x, axes, x.dtype());
  Variable adjust = m / F::maximum(m - 1.0, detail::constant(1.0, {}, x.dtype()));
  Variable mean_v = avg_mean, var_v = avg_var;
  Variable new_mean = mean_v * decay + mu * (1.0 - decay);
  Variable new_var = var_v * decay + var * (adjust * (1.0 - decay));
  if (new_mean.dtype() != avg_mean.dtype()) new_mean = F::cast(new_mean, avg_mean.dtype());
  if (new_var.dtype() != avg_var.dtype()) new_var = F::cast(new_var, avg_var.dtype());
  set_value(avg_mean, new_mean);
  set_value(avg_var, new_var);
  return y;
}

// ---- EmbedID ------------------------------------------------------------------------

EmbedID::EmbedID(int64_t in, int64_t out, std::optional<int64_t> ignore, Parameter::Initializer initialW)
    : in_size(in), out_size(out), ignore_label(ignore) {
  check_positive("EmbedID", "in_size", in_size);
  check_positive("EmbedID", "out_size", out_size);
  W = Parameter(initialW ? std::move(initialW) : initializers::Normal(1.0));
  W.initialize({in_size, out_size});
  add_param("W", W);
}

EmbedID::EmbedID(int64_t in, int64_t out, Parameter::Initializer initialW, std::optional<int64_t> ignore)
    : EmbedID(in, out, ignore, std::move(initialW)) {}

Variable EmbedID::operator()(const Variable& x) const { return F::embed_id(x, W, ignore_label); }

// ---- LayerNormalization -------------------------------------------------------------

LayerNormalization::LayerNormalization(int64_t sz, double ep) : size(sz), eps(ep) {
  check_positive("LayerNormalization", "size", size);
  gamma = Parameter(initializers::One());
  gamma.initialize({size});
  add_param("gamma", gamma);
  beta = Parameter(initializers::Zero());
  beta.initialize({size});
  add_param("beta", beta);
}

Variable LayerNormalization::operator()(const Variable& x) const {
  return F::layer_normalization(x, gamma, beta, eps);
}

}  // namespace kiln::links
