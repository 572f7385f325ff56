// Recurrent links of kiln::links: LSTM, StatelessLSTM, GRU (StatefulGRU), StatelessGRU and
// the NStep links, on top of F::lstm and the n-step functions.
#include "kiln/links_rnn.h"

#include <algorithm>
#include <numeric>

#include "trace.h"

namespace kiln::links {

namespace {

[[noreturn]] void link_error(const std::string& link, const std::string& message) {
  throw Error(fmt::format("kiln: L::{}: {}", link, message));
}

std::string shape_of(const Variable& v) { return v.is_null() ? "(no data)" : shape_str(v.shape()); }

// The bias of upward: bias_init for gates a, i, o and forget_bias_init for f, in F::lstm's
// interleaved layout (element 4 * j + 2 is unit j's forget gate).
Parameter::Initializer lstm_bias(double bias_init, double forget_bias_init) {
  return [=](const Shape& s, DType dtype) {
    std::vector<double> v(static_cast<size_t>(shape_size(s)), bias_init);
    for (size_t k = 2; k < v.size(); k += 4) v[k] = forget_bias_init;
    return Array::from(v, s).astype(dtype);
  };
}

void check_out_size(const char* link, int64_t out_size) {
  if (out_size <= 0) link_error(link, fmt::format("out_size must be positive, got {}", out_size));
}

// The input of a feature size fixed by a weight (in_size columns, 2-d or flattened as Linear does).
void check_features(const std::string& link, const char* arg, const Variable& x, const Parameter& W) {
  if (x.is_null()) link_error(link, fmt::format("{} has no data", arg));
  if (x.ndim() < 2) link_error(link, fmt::format("{} must be at least 2-d (batch, features), got shape {}", arg, shape_of(x)));
  if (W.is_initialized() && x.size() / std::max<int64_t>(x.shape()[0], 1) != W.shape()[1] && x.shape()[0] > 0)
    link_error(link, fmt::format("{} has {} features per row (shape {}), expected in_size = {}", arg,
                                 x.size() / x.shape()[0], shape_of(x), W.shape()[1]));
}

void check_state_shape(const std::string& link, const char* arg, const Variable& s, int64_t batch, int64_t size) {
  if (s.is_null()) return;
  if (s.ndim() != 2 || s.shape()[1] != size)
    link_error(link, fmt::format("{} must have shape (batch, {}), got {}", arg, size, shape_of(s)));
  if (s.shape()[0] != batch)
    link_error(link, fmt::format("{} has batch size {}, expected {} (the batch of x)", arg, s.shape()[0], batch));
}

}  // namespace

// ---- LSTM ---------------------------------------------------------------------------------

LSTMBase::LSTMBase(int64_t in_size, int64_t out_size, Parameter::Initializer lateral_init,
                   Parameter::Initializer upward_init, double bias_init, double forget_bias_init)
    : upward((check_out_size("LSTM", out_size), in_size), 4 * out_size, false,
             upward_init ? upward_init : initializers::LeCunNormal(), lstm_bias(bias_init, forget_bias_init)),
      lateral(out_size, 4 * out_size, true, lateral_init ? lateral_init : initializers::LeCunNormal()),
      state_size(out_size) {
  add_link("upward", upward);
  add_link("lateral", lateral);
}

void LSTMBase::initialize_for(const std::string& fn, const Variable& x) const {
  if (x.is_null()) link_error(fn, "x has no data");
  if (x.ndim() < 2) link_error(fn, fmt::format("x must be at least 2-d (batch, features), got shape {}", shape_of(x)));
  if (!upward.W.is_initialized()) {
    if (x.shape()[0] == 0) link_error(fn, "cannot infer in_size from an empty batch " + shape_of(x));
    const_cast<Parameter&>(upward.W).initialize({4 * state_size, x.size() / x.shape()[0]}, x.dtype());
  }
  check_features(fn, "x", x, upward.W);
}

StatelessLSTM::StatelessLSTM(int64_t out_size) : StatelessLSTM(-1, out_size) {}

StatelessLSTM::StatelessLSTM(int64_t in_size, int64_t out_size, Parameter::Initializer lateral_init,
                             Parameter::Initializer upward_init, double bias_init, double forget_bias_init)
    : LSTMBase(in_size, out_size, std::move(lateral_init), std::move(upward_init), bias_init, forget_bias_init) {}

std::pair<Variable, Variable> StatelessLSTM::operator()(const Variable& c, const Variable& h, const Variable& x) const {
  initialize_for("StatelessLSTM", x);
  const int64_t batch = x.shape()[0];
  check_state_shape("StatelessLSTM", "h", h, batch, state_size);
  if (!c.is_null() && (c.ndim() != 2 || c.shape()[1] != state_size || c.shape()[0] < batch))
    link_error("StatelessLSTM", fmt::format("c must have shape (B, {}) with B >= {} (the batch of x), got {}",
                                            state_size, batch, shape_of(c)));
  Variable lstm_in = upward(x);
  if (!h.is_null()) lstm_in = lstm_in + lateral(h);
  Variable c0 = c.is_null() ? Variable(detail::on_device_of(Array::zeros({batch, state_size}, x.dtype()), x), false) : c;
  return F::lstm(c0, lstm_in);
}

LSTM::LSTM(int64_t out_size) : LSTM(-1, out_size) {}

LSTM::LSTM(int64_t in_size, int64_t out_size, Parameter::Initializer lateral_init, Parameter::Initializer upward_init,
           double bias_init, double forget_bias_init)
    : LSTMBase(in_size, out_size, std::move(lateral_init), std::move(upward_init), bias_init, forget_bias_init) {}

void LSTM::reset_state() { state_->c = state_->h = Variable(); }

void LSTM::set_state(const Variable& c, const Variable& h) {
  if (c.is_null() || h.is_null()) link_error("LSTM", "set_state: c and h must be variables with data");
  if (c.ndim() != 2 || c.shape()[1] != state_size)
    link_error("LSTM", fmt::format("set_state: c must have shape (batch, {}), got {}", state_size, shape_of(c)));
  if (h.ndim() != 2 || h.shape()[1] != state_size)
    link_error("LSTM", fmt::format("set_state: h must have shape (batch, {}), got {}", state_size, shape_of(h)));
  if (c.shape()[0] != h.shape()[0])
    link_error("LSTM", fmt::format("set_state: c and h must have the same batch size, got c {} and h {}",
                                   shape_of(c), shape_of(h)));
  state_->c = c;
  state_->h = h;
}

Variable LSTM::operator()(const Variable& x) {
  initialize_for("LSTM", x);
  const int64_t batch = x.shape()[0];
  Variable lstm_in = upward(x);
  Variable& h = state_->h;
  Variable& c = state_->c;
  Variable h_rest;
  if (!h.is_null()) {
    const int64_t h_size = h.shape()[0];
    if (h_size < batch)
      link_error("LSTM", fmt::format("the batch size of x ({}) must be equal to or less than the size of the "
                                     "previous state h ({})", batch, h_size));
    if (batch == 0) {
      h_rest = h;
    } else if (h_size > batch) {
      std::vector<Variable> parts = F::split_axis(h, std::vector<int64_t>{batch}, 0);
      lstm_in = lstm_in + lateral(parts[0]);
      h_rest = parts[1];
    } else {
      lstm_in = lstm_in + lateral(h);
    }
  }
  if (c.is_null()) c = Variable(detail::on_device_of(Array::zeros({batch, state_size}, x.dtype()), x), false);
  auto [c_new, y] = F::lstm(c, lstm_in);
  c = c_new;
  if (h_rest.is_null()) h = y;
  else if (y.shape()[0] == 0) h = h_rest;
  else h = F::concat({y, h_rest}, 0);
  return y;
}

// ---- GRU ----------------------------------------------------------------------------------

GRUBase::GRUBase(int64_t in_size, int64_t out, Parameter::Initializer init, Parameter::Initializer inner_init,
                 double bias_init)
    : W_r((check_out_size("GRU", out), in_size), out, false, init, initializers::Constant(bias_init)),
      U_r(out, out, false, inner_init, initializers::Constant(bias_init)),
      W_z(in_size, out, false, init, initializers::Constant(bias_init)),
      U_z(out, out, false, inner_init, initializers::Constant(bias_init)),
      W(in_size, out, false, init, initializers::Constant(bias_init)),
      U(out, out, false, inner_init, initializers::Constant(bias_init)),
      out_size(out) {
  add_link("W_r", W_r);
  add_link("U_r", U_r);
  add_link("W_z", W_z);
  add_link("U_z", U_z);
  add_link("W", W);
  add_link("U", U);
}

StatelessGRU::StatelessGRU(int64_t in_size, int64_t out, Parameter::Initializer init,
                           Parameter::Initializer inner_init, double bias_init)
    : GRUBase(in_size, out, std::move(init), std::move(inner_init), bias_init) {}

Variable StatelessGRU::operator()(const Variable& h, const Variable& x) const {
  check_features("StatelessGRU", "x", x, W.W);
  if (h.is_null()) link_error("StatelessGRU", "h has no data");
  check_state_shape("StatelessGRU", "h", h, x.shape()[0], out_size);
  Variable r = F::sigmoid(W_r(x) + U_r(h));
  Variable z = F::sigmoid(W_z(x) + U_z(h));
  Variable h_bar = F::tanh(W(x) + U(r * h));
  return h + z * (h_bar - h);  // linear_interpolate(z, h_bar, h) = z * h_bar + (1 - z) * h
}

StatefulGRU::StatefulGRU(int64_t in_size, int64_t out, Parameter::Initializer init, Parameter::Initializer inner_init,
                         double bias_init)
    : GRUBase(in_size, out, std::move(init), std::move(inner_init), bias_init) {}

void StatefulGRU::reset_state() { state_->h = Variable(); }

void StatefulGRU::set_state(const Variable& h) {
  if (h.is_null()) link_error("GRU", "set_state: h must be a variable with data");
  if (h.ndim() != 2 || h.shape()[1] != out_size)
    link_error("GRU", fmt::format("set_state: h must have shape (batch, {}), got {}", out_size, shape_of(h)));
  state_->h = h;
}

Variable StatefulGRU::operator()(const Variable& x) {
  check_features("GRU", "x", x, W.W);
  Variable& h = state_->h;
  check_state_shape("GRU", "h", h, x.shape()[0], out_size);
  Variable z = W_z(x);
  Variable h_bar = W(x);
  if (!h.is_null()) {
    Variable r = F::sigmoid(W_r(x) + U_r(h));
    z = z + U_z(h);
    h_bar = h_bar + U(r * h);
  }
  z = F::sigmoid(z);
  h_bar = F::tanh(h_bar);
  h = h.is_null() ? z * h_bar : h + z * (h_bar - h);  // linear_interpolate(z, h_bar, h)
  return h;
}

// ---- NStep links --------------------------------------------------------------------------

NStepRNNBase::NStepRNNBase(const char* name, int64_t n_weights, bool bidirectional, int64_t layers, int64_t in,
                           int64_t out, double dropout_ratio, Parameter::Initializer initialW,
                           Parameter::Initializer initial_bias)
    : n_layers(layers), in_size(in), out_size(out), direction(bidirectional ? 2 : 1), dropout(dropout_ratio),
      name_(name) {
  if (layers < 1) link_error(name, fmt::format("n_layers must be positive, got {}", layers));
  if (in < 1) link_error(name, fmt::format("in_size must be positive, got {}", in));
  check_out_size(name, out);
  if (!(dropout_ratio >= 0.0 && dropout_ratio < 1.0))
    link_error(name, fmt::format("dropout must be in [0, 1), got {}", dropout_ratio));
  Parameter::Initializer W_init = initialW ? initialW : initializers::LeCunNormal();
  Parameter::Initializer b_init = initial_bias ? initial_bias : initializers::Zero();
  for (int64_t i = 0; i < layers; ++i) {
    for (int64_t di = 0; di < direction; ++di) {
      Link weight;
      std::vector<Variable> w_list, b_list;
      for (int64_t j = 0; j < n_weights; ++j) {
        int64_t w_in = j < n_weights / 2 ? (i == 0 ? in : out * direction) : out;
        Parameter w(W_init), b(b_init);
        w.initialize({out, w_in});
        b.initialize({out});
        weight.add_param(fmt::format("w{}", j), w);
        weight.add_param(fmt::format("b{}", j), b);
        w_list.push_back(w);
        b_list.push_back(b);
      }
      append(weight);
      ws.push_back(std::move(w_list));
      bs.push_back(std::move(b_list));
    }
  }
}

namespace {

// hx's rows along axis 1 in the order `order` (F::permutate(hx, indices, axis=1)).
Variable permute_rows(const Variable& s, const std::vector<int64_t>& order, bool inverse) {
  std::vector<int64_t> idx = order;
  if (inverse)
    for (size_t i = 0; i < order.size(); ++i) idx[static_cast<size_t>(order[i])] = static_cast<int64_t>(i);
  std::vector<Variable> cols;
  for (int64_t i : idx) cols.push_back(F::get_item(s, {Slice{}, Slice{i, i + 1, std::nullopt}}));
  return cols.size() == 1 ? cols[0] : F::concat(cols, 1);
}

}  // namespace

F::NStepLSTMResult NStepRNNBase::call(const Variable& hx, const Variable& cx, bool use_cell,
                                      const std::vector<Variable>& xs, const Run& rnn) const {
  const std::string link = name_;
  if (xs.empty()) link_error(link, "xs must hold at least one sequence");
  const int64_t B = static_cast<int64_t>(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const Variable& x = xs[i];
    if (x.is_null()) link_error(link, fmt::format("xs[{}] has no data", i));
    if (x.ndim() != 2 || x.shape()[1] != in_size)
      link_error(link, fmt::format("xs[{}] must have shape (length, {}) (in_size {}), got {}", i, in_size, in_size,
                                   shape_of(x)));
    if (x.shape()[0] < 1) link_error(link, fmt::format("xs[{}] is an empty sequence {}", i, shape_of(x)));
    if (x.dtype() != xs[0].dtype())
      link_error(link, fmt::format("xs[{}] has dtype {}, xs[0] {}", i, dtype_name(x.dtype()), dtype_name(xs[0].dtype())));
  }
  const Shape state_shape{n_layers * direction, B, out_size};
  auto check_hidden = [&](const char* arg, const Variable& s) {
    if (s.is_null()) return;
    if (s.shape() != state_shape)
      link_error(link, fmt::format("{} must have shape (n_layers * directions, len(xs), out_size) = {}, got {}", arg,
                                   shape_str(state_shape), shape_of(s)));
  };
  check_hidden("hx", hx);
  if (use_cell) check_hidden("cx", cx);

  // Chainer's argsort_list_descent (stable here: equal lengths keep their order).
  std::vector<int64_t> order(static_cast<size_t>(B));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return xs[a].shape()[0] > xs[b].shape()[0]; });
  bool identity = true;
  for (int64_t i = 0; i < B; ++i) identity &= order[i] == i;
  std::vector<Variable> sorted;
  for (int64_t i : order) sorted.push_back(xs[i]);
  auto init = [&](const Variable& s) {
    if (s.is_null()) return Variable(detail::on_device_of(Array::zeros(state_shape, xs[0].dtype()), xs[0]), false);
    return identity ? s : permute_rows(s, order, false);
  };
  Variable h0 = init(hx), c0 = use_cell ? init(cx) : Variable();

  F::NStepLSTMResult r = rnn(h0, c0, F::transpose_sequence(sorted));
  std::vector<Variable> ys_sorted = F::transpose_sequence(r.ys);
  std::vector<Variable> ys(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) ys[order[i]] = ys_sorted[i];
  F::NStepLSTMResult out;
  out.hy = identity ? r.hy : permute_rows(r.hy, order, true);
  if (use_cell) out.cy = identity ? r.cy : permute_rows(r.cy, order, true);
  out.ys = std::move(ys);
  return out;
}

NStepLSTM::NStepLSTM(int64_t n_layers, int64_t in_size, int64_t out_size, double dropout,
                     Parameter::Initializer initialW, Parameter::Initializer initial_bias)
    : NStepRNNBase("NStepLSTM", 8, false, n_layers, in_size, out_size, dropout, std::move(initialW),
                   std::move(initial_bias)) {}

F::NStepLSTMResult NStepLSTM::operator()(const Variable& hx, const Variable& cx, const std::vector<Variable>& xs) const {
  return call(hx, cx, true, xs, [&](const Variable& h, const Variable& c, const std::vector<Variable>& txs) {
    return F::n_step_lstm(n_layers, dropout, h, c, ws, bs, txs);
  });
}

NStepBiLSTM::NStepBiLSTM(int64_t n_layers, int64_t in_size, int64_t out_size, double dropout,
                         Parameter::Initializer initialW, Parameter::Initializer initial_bias)
    : NStepRNNBase("NStepBiLSTM", 8, true, n_layers, in_size, out_size, dropout, std::move(initialW),
                   std::move(initial_bias)) {}

F::NStepLSTMResult NStepBiLSTM::operator()(const Variable& hx, const Variable& cx,
                                           const std::vector<Variable>& xs) const {
  return call(hx, cx, true, xs, [&](const Variable& h, const Variable& c, const std::vector<Variable>& txs) {
    return F::n_step_bilstm(n_layers, dropout, h, c, ws, bs, txs);
  });
}

NStepRNNLink::NStepRNNLink(const char* name, Kind kind, bool bidirectional, int64_t n_layers, int64_t in_size,
                           int64_t out_size, double dropout, Parameter::Initializer initialW,
                           Parameter::Initializer initial_bias)
    : NStepRNNBase(name, kind == Kind::GRU ? 6 : 2, bidirectional, n_layers, in_size, out_size, dropout,
                   std::move(initialW), std::move(initial_bias)),
      kind_(kind) {}

F::NStepRNNResult NStepRNNLink::operator()(const Variable& hx, const std::vector<Variable>& xs) const {
  const bool bi = direction == 2;
  F::NStepLSTMResult r = call(hx, Variable(), false, xs, [&](const Variable& h, const Variable&,
                                                              const std::vector<Variable>& txs) {
    F::NStepRNNResult y;
    if (kind_ == Kind::GRU)
      y = bi ? F::n_step_bigru(n_layers, dropout, h, ws, bs, txs) : F::n_step_gru(n_layers, dropout, h, ws, bs, txs);
    else {
      const char* act = kind_ == Kind::Tanh ? "tanh" : "relu";
      y = bi ? F::n_step_birnn(n_layers, dropout, h, ws, bs, txs, act)
             : F::n_step_rnn(n_layers, dropout, h, ws, bs, txs, act);
    }
    return F::NStepLSTMResult{y.hy, Variable(), y.ys};
  });
  return {r.hy, r.ys};
}

#define KILN_NSTEP_RNN_LINK(Name, kind, bi)                                                                   \
  Name::Name(int64_t n_layers, int64_t in_size, int64_t out_size, double dropout,                             \
             Parameter::Initializer initialW, Parameter::Initializer initial_bias)                            \
      : NStepRNNLink(#Name, Kind::kind, bi, n_layers, in_size, out_size, dropout, std::move(initialW),       \
                     std::move(initial_bias)) {}
KILN_NSTEP_RNN_LINK(NStepGRU, GRU, false)
KILN_NSTEP_RNN_LINK(NStepBiGRU, GRU, true)
KILN_NSTEP_RNN_LINK(NStepRNNTanh, Tanh, false)
KILN_NSTEP_RNN_LINK(NStepRNNReLU, ReLU, false)
KILN_NSTEP_RNN_LINK(NStepBiRNNTanh, Tanh, true)
KILN_NSTEP_RNN_LINK(NStepBiRNNReLU, ReLU, true)
#undef KILN_NSTEP_RNN_LINK

}  // namespace kiln::links
