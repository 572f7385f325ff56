// Recurrent functions of kiln::functions: lstm, slstm, transpose_sequence and the n-step RNN
// family (LSTM, GRU, tanh/ReLU RNN, uni- and bi-directional), composed of other functions.
#include "kiln/functions_rnn.h"

#include <algorithm>

#include "ops.h"

namespace kiln::functions {

using namespace detail;

namespace {

// Gate k (0..3) of Chainer's lstm layout: x (B, 4N, ...) reshaped to (B, N, 4, ...), [:, :, k].
std::vector<Variable> extract_gates(const Variable& x) {
  Shape s = x.shape();
  Shape r{s[0], s[1] / 4, 4};
  r.insert(r.end(), s.begin() + 2, s.end());
  Variable v = reshape(x, r);
  std::vector<Variable> gates;
  for (int64_t k = 0; k < 4; ++k) gates.push_back(get_item(v, {Slice{}, Slice{}, k}));
  return gates;
}

// Rows [lo, hi) of x along axis 0.
Variable rows(const Variable& x, int64_t lo, int64_t hi) {
  return get_item(x, {Slice{lo, hi, std::nullopt}});
}

// Chainer's lstm type checks, shared by lstm and slstm (one c/x pair).
void check_cell_pair(const std::string& fn, const char* c_name, const Variable& c, const char* x_name,
                     const Variable& x) {
  check_float(fn, c_name, c);
  check_same_dtype(fn, c_name, c, x_name, x);
  if (c.ndim() < 2) type_error(fn, fmt::format("{}.ndim >= 2", c_name), fmt::format("{}.ndim = {}", c_name, c.ndim()));
  if (x.ndim() != c.ndim())
    type_error(fn, fmt::format("{}.ndim == {}.ndim", c_name, x_name), fmt::format("{} != {}", c.ndim(), x.ndim()));
  if (x.shape()[1] != 4 * c.shape()[1])
    type_error(fn, fmt::format("{}.shape[1] == 4 * {}.shape[1]", x_name, c_name),
               fmt::format("{} != 4 * {}", x.shape()[1], c.shape()[1]));
  for (int64_t i = 2; i < c.ndim(); ++i)
    if (x.shape()[i] != c.shape()[i])
      type_error(fn, fmt::format("{}.shape[{}] == {}.shape[{}]", x_name, i, c_name, i),
                 fmt::format("{} != {}", x.shape()[i], c.shape()[i]));
}

// ---- the n-step family ----------------------------------------------------------------

enum class Cell { LSTM, GRU, RNNTanh, RNNReLU };

int64_t n_weights(Cell cell) {
  switch (cell) {
    case Cell::LSTM: return 8;
    case Cell::GRU: return 6;
    default: return 2;
  }
}

// One layer-direction's weights, stacked for one GEMM over the inputs of every step and
// one per step over the hidden state: Wx (G*N, I), bx (G*N,), Wh (G*N, N), bh (G*N,) with
// G gates in the order of `Cell`'s step below.
struct StackedWeights {
  Variable Wx, bx, Wh, bh;
};

StackedWeights stack_weights(Cell cell, const std::vector<Variable>& w, const std::vector<Variable>& b) {
  size_t half = w.size() / 2;
  std::vector<Variable> wx(w.begin(), w.begin() + half), wh(w.begin() + half, w.end());
  std::vector<Variable> bx(b.begin(), b.begin() + half), bh(b.begin() + half, b.end());
  if (half == 1) return {wx[0], bx[0], wh[0], bh[0]};
  // LSTM gates i, f, a, o (W0..W3 on x, W4..W7 on h); GRU r, z, h' (W0..W2, W3..W5).
  return {concat(wx, 0), concat(bx, 0), concat(wh, 0), concat(bh, 0)};
}

// One step of the cell on the rows of the batch at this time: gx = Wx x_t + bx (computed
// for all steps at once), h and c the previous states of those rows. Returns (h, c).
std::pair<Variable, Variable> cell_step(Cell cell, const StackedWeights& w, const Variable& gx, const Variable& h,
                                        const Variable& c) {
  Variable gh = linear(h, w.Wh, w.bh);
  switch (cell) {
    case Cell::LSTM: {
      std::vector<Variable> g = split_axis(gx + gh, 4, 1);
      Variable c_next = sigmoid(g[1]) * c + sigmoid(g[0]) * tanh(g[2]);
      return {sigmoid(g[3]) * tanh(c_next), c_next};
    }
    case Cell::GRU: {
      std::vector<Variable> x3 = split_axis(gx, 3, 1), h3 = split_axis(gh, 3, 1);
      Variable r = sigmoid(x3[0] + h3[0]);
      Variable z = sigmoid(x3[1] + h3[1]);
      Variable h_bar = tanh(x3[2] + r * h3[2]);
      return {h_bar + z * (h - h_bar), Variable()};  // (1 - z) * h_bar + z * h
    }
    case Cell::RNNTanh: return {tanh(gx + gh), Variable()};
    case Cell::RNNReLU: return {relu(gx + gh), Variable()};
  }
  throw Error("kiln: n_step: unknown cell");
}

// Chainer's _one_directional_loop over xs (time-major, batch sizes given), in order or
// reversed: a sequence's state enters each step it takes part in and stays otherwise.
// Returns the per-step outputs (in time order) and the final h and c (B_0 rows).
struct DirectionResult {
  std::vector<Variable> hs;
  Variable h, c;
};

DirectionResult run_direction(Cell cell, const StackedWeights& w, const std::vector<Variable>& xs, Variable h,
                              Variable c, bool reverse) {
  // The input projections of every step in one GEMM.
  std::vector<int64_t> offsets{0};
  for (const Variable& x : xs) offsets.push_back(offsets.back() + x.shape()[0]);
  Variable all = xs.size() == 1 ? xs[0] : concat(xs, 0);
  Variable gx_all = linear(all, w.Wx, w.bx);
  std::vector<int64_t> cuts(offsets.begin() + 1, offsets.end() - 1);
  std::vector<Variable> gxs = cuts.empty() ? std::vector<Variable>{gx_all} : split_axis(gx_all, cuts, 0);

  const int64_t T = static_cast<int64_t>(xs.size());
  const int64_t full = h.shape()[0];
  std::vector<Variable> hs(static_cast<size_t>(T));
  for (int64_t k = 0; k < T; ++k) {
    int64_t t = reverse ? T - 1 - k : k;
    int64_t batch = xs[t].shape()[0];
    bool split = batch < full;
    Variable h_in = split ? rows(h, 0, batch) : h;
    Variable c_in = c.is_null() ? c : (split ? rows(c, 0, batch) : c);
    auto [h_new, c_new] = cell_step(cell, w, gxs[t], h_in, c_in);
    hs[t] = h_new;
    h = split ? concat({h_new, rows(h, batch, full)}, 0) : h_new;
    if (!c.is_null()) c = split ? concat({c_new, rows(c, batch, full)}, 0) : c_new;
  }
  return {std::move(hs), h, c};
}

void check_weights(const std::string& fn, Cell cell, int64_t n_layers, int64_t directions, const Variable& hx,
                   const Weights& ws, const Weights& bs, int64_t in_size) {
  const size_t expected = static_cast<size_t>(n_layers * directions);
  if (ws.size() != expected)
    type_error(fn, fmt::format("len(ws) == n_layers * directions = {}", expected), fmt::format("len(ws) = {}", ws.size()));
  if (bs.size() != expected)
    type_error(fn, fmt::format("len(bs) == n_layers * directions = {}", expected), fmt::format("len(bs) = {}", bs.size()));
  const int64_t N = hx.shape()[2];
  const size_t nw = static_cast<size_t>(n_weights(cell));
  for (size_t k = 0; k < expected; ++k) {
    if (ws[k].size() != nw)
      type_error(fn, fmt::format("len(ws[{}]) == {}", k, nw), fmt::format("len(ws[{}]) = {}", k, ws[k].size()));
    if (bs[k].size() != nw)
      type_error(fn, fmt::format("len(bs[{}]) == {}", k, nw), fmt::format("len(bs[{}]) = {}", k, bs[k].size()));
    int64_t layer_in = k < static_cast<size_t>(directions) ? in_size : N * directions;
    for (size_t j = 0; j < nw; ++j) {
      Shape want{N, j < nw / 2 ? layer_in : N};
      const Variable& w = ws[k][j];
      if (w.is_null() || w.shape() != want)
        type_error(fn, fmt::format("ws[{}][{}].shape == {}", k, j, shape_str(want)),
                   fmt::format("ws[{}][{}].shape = {}", k, j, w.is_null() ? "(no data)" : shape_str(w.shape())));
      check_same_dtype(fn, "hx", hx, fmt::format("ws[{}][{}]", k, j).c_str(), w);
      const Variable& b = bs[k][j];
      if (b.is_null() || b.shape() != Shape{N})
        type_error(fn, fmt::format("bs[{}][{}].shape == ({},)", k, j, N),
                   fmt::format("bs[{}][{}].shape = {}", k, j, b.is_null() ? "(no data)" : shape_str(b.shape())));
      check_same_dtype(fn, "hx", hx, fmt::format("bs[{}][{}]", k, j).c_str(), b);
    }
  }
}

void check_state(const std::string& fn, const char* name, const Variable& s, int64_t n_layers, int64_t directions,
                 int64_t batch) {
  if (s.is_null()) type_error(fn, fmt::format("{} is a variable", name), fmt::format("{} has no data", name));
  check_float(fn, name, s);
  if (s.ndim() != 3) type_error(fn, fmt::format("{}.ndim == 3", name), fmt::format("{}.ndim = {}", name, s.ndim()));
  if (s.shape()[0] != n_layers * directions)
    type_error(fn, fmt::format("{}.shape[0] == n_layers * directions = {}", name, n_layers * directions),
               fmt::format("{}.shape = {}", name, shape_str(s.shape())));
  if (s.shape()[1] != batch)
    type_error(fn, fmt::format("{}.shape[1] == xs[0].shape[0] = {}", name, batch),
               fmt::format("{}.shape = {}", name, shape_str(s.shape())));
}

NStepLSTMResult n_step_impl(const std::string& fn, Cell cell, int64_t n_layers, double dropout_ratio,
                            const Variable& hx, const Variable& cx, const Weights& ws, const Weights& bs,
                            const std::vector<Variable>& xs, bool bidirectional) {
  const int64_t D = bidirectional ? 2 : 1;
  if (n_layers < 1) type_error(fn, "n_layers >= 1", fmt::format("n_layers = {}", n_layers));
  if (!(dropout_ratio >= 0.0 && dropout_ratio < 1.0))
    type_error(fn, "0.0 <= dropout_ratio < 1.0", fmt::format("dropout_ratio = {}", dropout_ratio));
  if (xs.empty()) type_error(fn, "len(xs) >= 1", "len(xs) = 0");
  for (size_t t = 0; t < xs.size(); ++t) {
    const Variable& x = xs[t];
    std::string name = fmt::format("xs[{}]", t);
    if (x.is_null()) type_error(fn, name + " is a variable", name + " has no data");
    check_float(fn, name.c_str(), x);
    check_same_dtype(fn, "xs[0]", xs[0], name.c_str(), x);
    if (x.ndim() != 2) type_error(fn, name + ".ndim == 2", fmt::format("{}.ndim = {}", name, x.ndim()));
    if (x.shape()[1] != xs[0].shape()[1])
      type_error(fn, fmt::format("{}.shape[1] == xs[0].shape[1] = {}", name, xs[0].shape()[1]),
                 fmt::format("{}.shape = {}", name, shape_str(x.shape())));
    if (x.shape()[0] < 1) type_error(fn, name + ".shape[0] >= 1", fmt::format("{}.shape = {}", name, shape_str(x.shape())));
    if (t > 0 && x.shape()[0] > xs[t - 1].shape()[0])
      type_error(fn, fmt::format("xs[{}].shape[0] >= xs[{}].shape[0] (sequences sorted by decreasing length, "
                                 "then transposed)", t - 1, t),
                 fmt::format("{} < {}", xs[t - 1].shape()[0], x.shape()[0]));
  }
  const int64_t B = xs[0].shape()[0];
  check_state(fn, "hx", hx, n_layers, D, B);
  check_same_dtype(fn, "hx", hx, "xs[0]", xs[0]);
  const bool use_cell = cell == Cell::LSTM;
  if (use_cell) {
    check_state(fn, "cx", cx, n_layers, D, B);
    check_same_dtype(fn, "hx", hx, "cx", cx);
    if (cx.shape() != hx.shape())
      type_error(fn, "cx.shape == hx.shape", fmt::format("{} != {}", shape_str(cx.shape()), shape_str(hx.shape())));
  }
  if (!ws.empty() && !ws[0].empty() && !ws[0][0].is_null() && ws[0][0].ndim() == 2 &&
      ws[0][0].shape()[1] != xs[0].shape()[1])
    type_error(fn, "xs[0].shape[1] == ws[0][0].shape[1] (the input size of the weights)",
               fmt::format("{} != {}", xs[0].shape()[1], ws[0][0].shape()[1]));
  check_weights(fn, cell, n_layers, D, hx, ws, bs, xs[0].shape()[1]);

  std::vector<Variable> h0, c0;
  for (int64_t k = 0; k < n_layers * D; ++k) {
    h0.push_back(get_item(hx, {k}));
    if (use_cell) c0.push_back(get_item(cx, {k}));
  }
  std::vector<Variable> layer_in = xs, hy, cy;
  const int64_t T = static_cast<int64_t>(xs.size());
  for (int64_t layer = 0; layer < n_layers; ++layer) {
    std::vector<DirectionResult> dirs;
    for (int64_t d = 0; d < D; ++d) {
      std::vector<Variable> in = layer_in;
      if (layer > 0 && dropout_ratio > 0.0)
        for (Variable& x : in) x = dropout(x, dropout_ratio);
      int64_t k = layer * D + d;
      StackedWeights w = stack_weights(cell, ws[k], bs[k]);
      dirs.push_back(run_direction(cell, w, in, h0[k], use_cell ? c0[k] : Variable(), d == 1));
      hy.push_back(dirs.back().h);
      if (use_cell) cy.push_back(dirs.back().c);
    }
    if (D == 1) {
      layer_in = dirs[0].hs;
    } else {
      for (int64_t t = 0; t < T; ++t) layer_in[t] = concat({dirs[0].hs[t], dirs[1].hs[t]}, 1);
    }
  }
  return {stack(hy, 0), use_cell ? stack(cy, 0) : Variable(), layer_in};
}

Cell rnn_cell(const std::string& fn, const std::string& activation) {
  if (activation == "tanh") return Cell::RNNTanh;
  if (activation == "relu") return Cell::RNNReLU;
  type_error(fn, "activation in ('tanh', 'relu')", fmt::format("activation = '{}'", activation));
}

NStepRNNResult without_cell(NStepLSTMResult r) { return {std::move(r.hy), std::move(r.ys)}; }

}  // namespace

std::pair<Variable, Variable> lstm(const Variable& c_prev, const Variable& x, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "LSTM";
  check_cell_pair(fn, "c", c_prev, "x", x);
  const int64_t batch = x.shape()[0], full = c_prev.shape()[0];
  if (batch > full)
    type_error(fn, "x.shape[0] <= c.shape[0]", fmt::format("{} > {}", batch, full));
  std::vector<Variable> g = extract_gates(x);
  Variable c_head = batch < full ? rows(c_prev, 0, batch) : c_prev;
  Variable c = tanh(g[0]) * sigmoid(g[1]) + sigmoid(g[2]) * c_head;
  Variable h = sigmoid(g[3]) * tanh(c);
  if (batch < full) c = batch == 0 ? c_prev : concat({c, rows(c_prev, batch, full)}, 0);
  return {c, h};
}

std::pair<Variable, Variable> slstm(const Variable& c_prev1, const Variable& c_prev2, const Variable& x1,
                                    const Variable& x2, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "SLSTM";
  check_cell_pair(fn, "c_prev1", c_prev1, "x1", x1);
  check_cell_pair(fn, "c_prev2", c_prev2, "x2", x2);
  check_same_dtype(fn, "c_prev1", c_prev1, "c_prev2", c_prev2);
  if (c_prev2.ndim() != c_prev1.ndim())
    type_error(fn, "c_prev1.ndim == c_prev2.ndim", fmt::format("{} != {}", c_prev1.ndim(), c_prev2.ndim()));
  for (auto [name, v] : {std::pair<const char*, const Variable*>{"c_prev2", &c_prev2}, {"x1", &x1}, {"x2", &x2}})
    if (v->shape()[0] != c_prev1.shape()[0])
      type_error(fn, fmt::format("c_prev1.shape[0] == {}.shape[0]", name),
                 fmt::format("{} != {}", c_prev1.shape()[0], v->shape()[0]));
  if (c_prev1.shape() != c_prev2.shape())
    type_error(fn, "c_prev1.shape == c_prev2.shape",
               fmt::format("{} != {}", shape_str(c_prev1.shape()), shape_str(c_prev2.shape())));
  std::vector<Variable> g1 = extract_gates(x1), g2 = extract_gates(x2);
  Variable c = tanh(g1[0]) * sigmoid(g1[1]) + tanh(g2[0]) * sigmoid(g2[1]) + sigmoid(g1[2]) * c_prev1 +
               sigmoid(g2[2]) * c_prev2;
  Variable h = sigmoid(g1[3] + g2[3]) * tanh(c);
  return {c, h};
}

std::vector<Variable> transpose_sequence(const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  const std::string fn = "TransposeSequence";
  if (xs.empty()) return {};
  for (size_t i = 0; i < xs.size(); ++i) {
    std::string name = fmt::format("xs[{}]", i);
    if (xs[i].is_null() || xs[i].ndim() < 1)
      type_error(fn, name + ".ndim >= 1", name + " has no axis");
    check_same_dtype(fn, "xs[0]", xs[0], name.c_str(), xs[i]);
    if (i > 0 && xs[i].shape()[0] > xs[i - 1].shape()[0])
      type_error(fn, fmt::format("xs[{}].shape[0] >= xs[{}].shape[0] (sorted by decreasing length)", i - 1, i),
                 fmt::format("{} < {}", xs[i - 1].shape()[0], xs[i].shape()[0]));
    for (int64_t d = 1; d < xs[0].ndim(); ++d)
      if (xs[i].ndim() != xs[0].ndim() || xs[i].shape()[d] != xs[0].shape()[d])
        type_error(fn, fmt::format("{}.shape[1:] == xs[0].shape[1:]", name),
                   fmt::format("{} vs {}", shape_str(xs[i].shape()), shape_str(xs[0].shape())));
  }
  const int64_t T = xs[0].shape()[0];
  std::vector<Variable> ys;
  for (int64_t t = 0; t < T; ++t) {
    std::vector<Variable> row;
    for (const Variable& x : xs) {
      if (x.shape()[0] <= t) break;
      row.push_back(rows(x, t, t + 1));
    }
    ys.push_back(row.size() == 1 ? row[0] : concat(row, 0));
  }
  return ys;
}

NStepLSTMResult n_step_lstm(int64_t n_layers, double dropout_ratio, const Variable& hx, const Variable& cx,
                            const Weights& ws, const Weights& bs, const std::vector<Variable>& xs,
                            SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return n_step_impl("n_step_lstm", Cell::LSTM, n_layers, dropout_ratio, hx, cx, ws, bs, xs, false);
}

NStepLSTMResult n_step_bilstm(int64_t n_layers, double dropout_ratio, const Variable& hx, const Variable& cx,
                              const Weights& ws, const Weights& bs, const std::vector<Variable>& xs,
                              SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return n_step_impl("n_step_bilstm", Cell::LSTM, n_layers, dropout_ratio, hx, cx, ws, bs, xs, true);
}

NStepRNNResult n_step_gru(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                          const Weights& bs, const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return without_cell(n_step_impl("n_step_gru", Cell::GRU, n_layers, dropout_ratio, hx, Variable(), ws, bs, xs, false));
}

NStepRNNResult n_step_bigru(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                            const Weights& bs, const std::vector<Variable>& xs, SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  return without_cell(n_step_impl("n_step_bigru", Cell::GRU, n_layers, dropout_ratio, hx, Variable(), ws, bs, xs, true));
}

NStepRNNResult n_step_rnn(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                          const Weights& bs, const std::vector<Variable>& xs, const std::string& activation,
                          SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  Cell cell = rnn_cell("n_step_rnn", activation);
  return without_cell(n_step_impl("n_step_rnn", cell, n_layers, dropout_ratio, hx, Variable(), ws, bs, xs, false));
}

NStepRNNResult n_step_birnn(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                            const Weights& bs, const std::vector<Variable>& xs, const std::string& activation,
                            SourceLocation loc) {
  detail::LocationScope location_scope(loc);
  Cell cell = rnn_cell("n_step_birnn", activation);
  return without_cell(n_step_impl("n_step_birnn", cell, n_layers, dropout_ratio, hx, Variable(), ws, bs, xs, true));
}

}  // namespace kiln::functions
