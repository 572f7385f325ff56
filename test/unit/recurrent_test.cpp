// Recurrent functions and links: F::lstm / slstm values by hand, gradient checks of the
// cells and of n_step_lstm / n_step_bigru, stateful links (state carried across calls,
// reset_state, set_state, shared by copies, shrinking batches), the NStep links'
// independence of sequence order, Chainer's parameter names, dropout in train mode
// only, bad input, and the compile count of a truncated-BPTT training loop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>

#include "error_of.h"
#include "expect_arrays.h"
#include "on_backend.h"
#include "scoped_env.h"

using namespace kiln;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Vs = std::vector<Variable>;

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

Array randn(Shape s, uint64_t seed, DType dtype = DType::f32, double scale = 1.0) {
  Array a = Array::randn(std::move(s), seed, DType::f64);
  for (int64_t i = 0; i < a.size(); ++i) a.set(i, scale * a.at(i));
  return a.astype(dtype);
}

std::vector<std::string> param_names(const Link& link) {
  std::vector<std::string> names;
  for (auto& [name, p] : link.namedparams()) names.push_back(name);
  return names;
}

using Recurrent = OnBackend;

// ---- F::lstm and F::slstm ----------------------------------------------------------------

// One unit: x = [a, i, f, o]; c = tanh(a) sigmoid(i) + sigmoid(f) c_prev, h = sigmoid(o) tanh(c).
// Two units interleave their gates: x = [a0, i0, f0, o0, a1, i1, f1, o1].
TEST_P(Recurrent, LstmMatchesTheGateFormulasInChainersLayout) {
  std::vector<double> xv{0.3, -0.2, 1.1, 0.5, -0.7, 0.4, -0.6, 0.9}, cv{0.25, -1.5};
  Variable c_prev(Array::from({0.25f, -1.5f}, {1, 2}));
  Variable x(Array::from(std::vector<float>(xv.begin(), xv.end()), {1, 8}));
  auto [c, h] = F::lstm(c_prev, x);
  ASSERT_EQ(c.shape(), (Shape{1, 2}));
  for (int j = 0; j < 2; ++j) {
    const double* g = &xv[4 * j];
    double cj = std::tanh(g[0]) * sigmoid(g[1]) + sigmoid(g[2]) * cv[j];
    EXPECT_NEAR(c.array().at(j), cj, 1e-6);
    EXPECT_NEAR(h.array().at(j), sigmoid(g[3]) * std::tanh(cj), 1e-6);
  }
}

// x with fewer rows than c_prev: the extra rows of c_prev pass through, h has x's rows.
TEST_P(Recurrent, LstmKeepsTheRowsOfCPrevBeyondXsBatch) {
  Variable c_prev(randn({3, 2}, 1)), x(randn({2, 8}, 2));
  auto [c, h] = F::lstm(c_prev, x);
  ASSERT_EQ(c.shape(), (Shape{3, 2}));
  ASSERT_EQ(h.shape(), (Shape{2, 2}));
  auto [c2, h2] = F::lstm(F::get_item(c_prev, {Slice{0, 2, std::nullopt}}), x);
  Array ca = c.array(), cp = c_prev.array(), c2a = c2.array();
  for (int64_t i = 0; i < 4; ++i) EXPECT_NEAR(ca.at(i), c2a.at(i), 1e-6);
  for (int64_t i = 4; i < 6; ++i) EXPECT_EQ(ca.at(i), cp.at(i));
  expect_arrays_near({h.array()}, {h2.array()}, 1e-6);
}

TEST_P(Recurrent, SlstmMatchesItsFormula) {
  std::vector<double> x1{0.3, -0.2, 1.1, 0.5}, x2{-0.7, 0.4, -0.6, 0.9};
  double c1 = 0.25, c2 = -1.5;
  auto [c, h] = F::slstm(Variable(Array::from({0.25f}, {1, 1})), Variable(Array::from({-1.5f}, {1, 1})),
                         Variable(Array::from({0.3f, -0.2f, 1.1f, 0.5f}, {1, 4})),
                         Variable(Array::from({-0.7f, 0.4f, -0.6f, 0.9f}, {1, 4})));
  double ce = std::tanh(x1[0]) * sigmoid(x1[1]) + std::tanh(x2[0]) * sigmoid(x2[1]) + sigmoid(x1[2]) * c1 +
              sigmoid(x2[2]) * c2;
  EXPECT_NEAR(c.array().at(0), ce, 1e-6);
  EXPECT_NEAR(h.array().at(0), sigmoid(x1[3] + x2[3]) * std::tanh(ce), 1e-6);
}

// ---- gradient checks ----------------------------------------------------------------------

TEST_P(Recurrent, GradientCheckLstm) {
  gradient_check::check_backward(
      [](const Vs& v) {
        auto [c, h] = F::lstm(v[0], v[1]);
        return Vs{c, h};
      },
      {randn({3, 2}, 3, DType::f64), randn({2, 8}, 4, DType::f64)},
      {randn({3, 2}, 5, DType::f64), randn({2, 2}, 6, DType::f64)});
}

TEST_P(Recurrent, GradientCheckSlstm) {
  gradient_check::check_backward(
      [](const Vs& v) {
        auto [c, h] = F::slstm(v[0], v[1], v[2], v[3]);
        return Vs{c, h};
      },
      {randn({2, 2}, 7, DType::f64), randn({2, 2}, 8, DType::f64), randn({2, 8}, 9, DType::f64),
       randn({2, 8}, 10, DType::f64)},
      {});
}

// The GRU cell (StatelessGRU, float64 parameters) with respect to h and x (the goldens
// check the parameters' gradients against Chainer).
TEST_P(Recurrent, GradientCheckGruCell) {
  L::StatelessGRU gru(3, 2);
  for (auto& [name, p] : gru.namedparams()) p.set_array(p.array().astype(DType::f64));
  gradient_check::check_backward([&](const Vs& v) { return Vs{gru(v[0], v[1])}; },
                                 {randn({2, 2}, 11, DType::f64), randn({2, 3}, 12, DType::f64)}, {});
  EXPECT_THAT(param_names(gru), ElementsAre("/W_r/W", "/W_r/b", "/U_r/W", "/U_r/b", "/W_z/W", "/W_z/b", "/U_z/W",
                                            "/U_z/b", "/W/W", "/W/b", "/U/W", "/U/b"));
}

// n_step_lstm, 1 layer, sequences of lengths 3, 2 (time-major batches 2, 2, 1).
TEST_P(Recurrent, GradientCheckNStepLstm) {
  const int64_t N = 2, I = 3;
  std::vector<Array> in{randn({1, 2, N}, 13, DType::f64), randn({1, 2, N}, 14, DType::f64)};
  for (int j = 0; j < 8; ++j) in.push_back(randn({N, j < 4 ? I : N}, 20 + j, DType::f64, 0.5));
  for (int j = 0; j < 8; ++j) in.push_back(randn({N}, 30 + j, DType::f64, 0.5));
  for (int64_t b : {2, 2, 1}) in.push_back(randn({b, I}, 40 + b, DType::f64));
  gradient_check::check_backward(
      [](const Vs& v) {
        F::Weights ws{Vs(v.begin() + 2, v.begin() + 10)}, bs{Vs(v.begin() + 10, v.begin() + 18)};
        auto r = F::n_step_lstm(1, 0.0, v[0], v[1], ws, bs, Vs(v.begin() + 18, v.end()));
        Vs out{r.hy, r.cy};
        out.insert(out.end(), r.ys.begin(), r.ys.end());
        return out;
      },
      in, {});
}

// A bi-directional GRU over batches 2, 1 (both directions, their states and weights).
TEST_P(Recurrent, GradientCheckNStepBiGru) {
  const int64_t N = 2, I = 2;
  std::vector<Array> in{randn({2, 2, N}, 50, DType::f64)};
  std::vector<Array> ws, bs;
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 6; ++j) {
      ws.push_back(randn({N, j < 3 ? I : N}, 60 + 6 * k + j, DType::f64, 0.5));
      bs.push_back(randn({N}, 90 + 6 * k + j, DType::f64, 0.5));
    }
  in.insert(in.end(), ws.begin(), ws.end());
  in.insert(in.end(), bs.begin(), bs.end());
  in.push_back(randn({2, I}, 120, DType::f64));
  in.push_back(randn({1, I}, 121, DType::f64));
  gradient_check::check_backward(
      [](const Vs& v) {
        F::Weights w, b;
        for (int k = 0; k < 2; ++k) {
          w.emplace_back(v.begin() + 1 + 6 * k, v.begin() + 7 + 6 * k);
          b.emplace_back(v.begin() + 13 + 6 * k, v.begin() + 19 + 6 * k);
        }
        auto r = F::n_step_bigru(1, 0.0, v[0], w, b, Vs(v.begin() + 25, v.end()));
        Vs out{r.hy};
        out.insert(out.end(), r.ys.begin(), r.ys.end());
        return out;
      },
      in, {});
}

// ---- stateful links -----------------------------------------------------------------------

// L::LSTM carries (c, h) from call to call: the same as StatelessLSTM fed its own state;
// reset_state starts again; a copy shares the state.
TEST_P(Recurrent, LstmLinkCarriesItsStateAcrossCalls) {
  L::LSTM lstm(3, 4);
  EXPECT_THAT(param_names(lstm), ElementsAre("/upward/W", "/upward/b", "/lateral/W"));
  // Forget-gate biases 1 (element 4j + 2), the others 0, as Chainer initializes them.
  Array b = lstm.upward.b.array();
  for (int64_t k = 0; k < 16; ++k) EXPECT_EQ(b.at(k), k % 4 == 2 ? 1.0 : 0.0) << k;
  L::StatelessLSTM cell(3, 4);
  cell.upward.W.set_array(lstm.upward.W.array());
  cell.lateral.W.set_array(lstm.lateral.W.array());
  Variable x0(randn({2, 3}, 70)), x1(randn({2, 3}, 71));
  EXPECT_TRUE(lstm.h().is_null());
  Variable y0 = lstm(x0);
  L::LSTM copy = lstm;
  Variable y1 = copy(x1);  // the copy continues from lstm's state
  auto [c0, h0] = cell(Variable(), Variable(), x0);
  auto [c1, h1] = cell(c0, h0, x1);
  expect_arrays_near({y0.array(), y1.array(), lstm.h().array(), lstm.c().array()},
                     {h0.array(), h1.array(), h1.array(), c1.array()}, 1e-5);
  lstm.reset_state();
  EXPECT_TRUE(copy.h().is_null() && copy.c().is_null());
  expect_arrays_near({lstm(x0).array()}, {h0.array()}, 1e-6);
  // set_state: continue from a given state.
  lstm.set_state(c0, h0);
  expect_arrays_near({lstm(x1).array()}, {h1.array()}, 1e-5);
}

// A batch smaller than the state's updates only its rows (sequences sorted by length).
TEST_P(Recurrent, LstmLinkWithAShrinkingBatch) {
  L::LSTM lstm(2, 3);
  lstm(Variable(randn({3, 2}, 72)));
  Array h_before = lstm.h().array(), c_before = lstm.c().array();
  Variable y = lstm(Variable(randn({2, 2}, 73)));
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  ASSERT_EQ(lstm.h().shape(), (Shape{3, 3}));
  Array h = lstm.h().array(), c = lstm.c().array(), ya = y.array();
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(h.at(i), ya.at(i));
  for (int64_t i = 6; i < 9; ++i) {
    EXPECT_EQ(h.at(i), h_before.at(i));
    EXPECT_EQ(c.at(i), c_before.at(i));
  }
  EXPECT_THAT(error_of([&] { lstm(Variable(randn({4, 2}, 74))); }),
              HasSubstr("the batch size of x (4) must be equal to or less than the size of the previous state h (3)"));
}

TEST_P(Recurrent, LstmLinkInfersInSize) {
  L::LSTM lstm(5);
  EXPECT_FALSE(lstm.upward.W.is_initialized());
  Variable y = lstm(Variable(randn({2, 7}, 75)));
  EXPECT_EQ(lstm.upward.W.shape(), (Shape{20, 7}));
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
}

// GRU: the first call has no state (h = z * h_bar), later ones interpolate.
TEST_P(Recurrent, GruLinkCarriesItsState) {
  L::GRU gru(3, 2);
  L::StatelessGRU cell(3, 2);
  auto src = gru.namedparams(), dst = cell.namedparams();
  for (size_t i = 0; i < src.size(); ++i) dst[i].second.set_array(src[i].second.array());
  Variable x0(randn({2, 3}, 76)), x1(randn({2, 3}, 77));
  Variable y0 = gru(x0), y1 = gru(x1);
  Variable z = F::sigmoid(cell.W_z(x0)), h0 = z * F::tanh(cell.W(x0));
  expect_arrays_near({y0.array(), y1.array()}, {h0.array(), cell(h0, x1).array()}, 1e-5);
  gru.reset_state();
  EXPECT_TRUE(gru.h().is_null());
  expect_arrays_near({gru(x0).array()}, {h0.array()}, 1e-6);
}

// ---- NStep links --------------------------------------------------------------------------

// Sequences in any order: each result is that of the sequence run alone.
TEST_P(Recurrent, NStepBiLstmResultsDoNotDependOnTheOrderOfSequences) {
  L::NStepBiLSTM rnn(1, 3, 2, 0.0);
  Vs xs{Variable(randn({2, 3}, 80)), Variable(randn({3, 3}, 81)), Variable(randn({1, 3}, 82))};
  Variable hx(randn({2, 3, 2}, 83)), cx(randn({2, 3, 2}, 84));
  auto [hy, cy, ys] = rnn(hx, cx, xs);
  ASSERT_EQ(ys.size(), 3u);
  for (int64_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(ys[i].shape(), (Shape{xs[i].shape()[0], 4}));
    Slice col{i, i + 1, std::nullopt};
    auto [h1, c1, y1] = rnn(F::get_item(hx, {Slice{}, col}), F::get_item(cx, {Slice{}, col}), {xs[i]});
    expect_arrays_near({ys[i].array(), F::get_item(hy, {Slice{}, col}).array(), F::get_item(cy, {Slice{}, col}).array()},
                       {y1[0].array(), h1.array(), c1.array()}, 1e-5);
  }
  EXPECT_THAT(param_names(rnn), ::testing::IsSupersetOf({"/0/w0", "/0/b0", "/0/w7", "/1/b7"}));
  EXPECT_EQ(rnn.namedparams().size(), 2u * 16u);
  L::NStepBiLSTM two(2, 3, 2, 0.0);
  EXPECT_EQ(two.ws[2][0].shape(), (Shape{2, 4}));  // layer 1 reads both directions
  EXPECT_EQ(two.ws[2][4].shape(), (Shape{2, 2}));
  EXPECT_EQ(param_names(two).back(), "/3/b7");
}

// hx null: zeros.
TEST_P(Recurrent, NStepGruNullHxIsZeros) {
  L::NStepGRU rnn(1, 2, 3, 0.0);
  Vs xs{Variable(randn({3, 2}, 85)), Variable(randn({1, 2}, 86))};
  auto [hy, ys] = rnn(Variable(), xs);
  auto [hy0, ys0] = rnn(Variable(Array::zeros({1, 2, 3})), xs);
  expect_arrays_near({hy.array(), ys[0].array(), ys[1].array()}, {hy0.array(), ys0[0].array(), ys0[1].array()},
                     1e-6);
}

// Dropout between layers in train mode only: test mode equals dropout 0.
TEST_P(Recurrent, NStepDropoutOnlyInTrainMode) {
  L::NStepRNNTanh rnn(2, 3, 4, 0.5);
  L::NStepRNNTanh plain(2, 3, 4, 0.0);
  auto src = rnn.namedparams(), dst = plain.namedparams();
  for (size_t i = 0; i < src.size(); ++i) dst[i].second.set_array(src[i].second.array());
  Vs xs{Variable(randn({3, 3}, 87))};
  Array expected = plain(Variable(), xs).ys[0].array();
  Array trained = rnn(Variable(), xs).ys[0].array();
  double diff = 0;
  for (int64_t i = 0; i < expected.size(); ++i) diff += std::abs(trained.at(i) - expected.at(i));
  EXPECT_GT(diff, 1e-3);
  auto test_mode = using_config("train", false);
  expect_arrays_near({rnn(Variable(), xs).ys[0].array()}, {expected}, 1e-6);
}

// ---- bad input ----------------------------------------------------------------------------

TEST_P(Recurrent, BadInputNamesTheFunctionAndArgument) {
  L::LSTM lstm(3, 4);
  EXPECT_THAT(error_of([&] { lstm(Variable(randn({2, 5}, 90))); }),
              HasSubstr("L::LSTM: x has 5 features per row (shape (2, 5)), expected in_size = 3"));
  L::StatelessLSTM cell(3, 4);
  EXPECT_THAT(error_of([&] { cell(Variable(), Variable(randn({3, 4}, 91)), Variable(randn({2, 3}, 92))); }),
              HasSubstr("L::StatelessLSTM: h has batch size 3, expected 2 (the batch of x)"));
  EXPECT_THAT(error_of([&] { F::lstm(Variable(randn({2, 3}, 93)), Variable(randn({2, 10}, 94))); }),
              HasSubstr("Expect: x.shape[1] == 4 * c.shape[1]\nActual: 10 != 4 * 3"));

  L::NStepLSTM rnn(1, 3, 2, 0.0);
  Vs xs{Variable(randn({2, 3}, 95)), Variable(randn({1, 3}, 96))};
  EXPECT_THAT(error_of([&] { rnn(Variable(), Variable(), {Variable(randn({2, 4}, 97))}); }),
              HasSubstr("L::NStepLSTM: xs[0] must have shape (length, 3) (in_size 3), got (2, 4)"));
  EXPECT_THAT(error_of([&] { rnn(Variable(Array::zeros({1, 3, 2})), Variable(), xs); }),
              HasSubstr("L::NStepLSTM: hx must have shape (n_layers * directions, len(xs), out_size) = (1, 2, 2), "
                        "got (1, 3, 2)"));

  Variable hx(Array::zeros({1, 2, 2})), cx(Array::zeros({1, 2, 2}));
  F::Weights ws{rnn.ws[0]}, bs{rnn.bs[0]};
  Vs txs{Variable(randn({2, 3}, 98)), Variable(randn({1, 3}, 99))};
  F::Weights seven{Vs(rnn.ws[0].begin(), rnn.ws[0].begin() + 7)};
  EXPECT_THAT(error_of([&] { F::n_step_lstm(1, 0.0, hx, cx, seven, bs, txs); }),
              HasSubstr("n_step_lstm (Forward)\n\nExpect: len(ws[0]) == 8\nActual: len(ws[0]) = 7"));
  EXPECT_THAT(error_of([&] { F::n_step_lstm(2, 0.0, Variable(Array::zeros({2, 2, 2})),
                                            Variable(Array::zeros({2, 2, 2})), ws, bs, txs); }),
              HasSubstr("Expect: len(ws) == n_layers * directions = 2\nActual: len(ws) = 1"));
  EXPECT_THAT(error_of([&] { F::n_step_lstm(1, 0.0, Variable(Array::zeros({1, 3, 2})), cx, ws, bs, txs); }),
              HasSubstr("Expect: hx.shape[1] == xs[0].shape[0] = 2\nActual: hx.shape = (1, 3, 2)"));
  EXPECT_THAT(error_of([&] { F::n_step_lstm(1, 0.0, hx, cx, ws, bs, {txs[1], txs[0]}); }),
              HasSubstr("Expect: xs[0].shape[0] >= xs[1].shape[0]"));
  EXPECT_THAT(error_of([&] { F::n_step_lstm(1, 0.0, hx, cx, ws, bs, {Variable(randn({2, 4}, 100))}); }),
              HasSubstr("Expect: xs[0].shape[1] == ws[0][0].shape[1] (the input size of the weights)\nActual: 4 != 3"));
  EXPECT_THAT(error_of([&] { F::n_step_rnn(1, 0.0, hx, {rnn.ws[0]}, {rnn.bs[0]}, txs, "sigmoid"); }),
              HasSubstr("Expect: activation in ('tanh', 'relu')\nActual: activation = 'sigmoid'"));
  L::GRU gru(3, 2);
  gru(Variable(randn({2, 3}, 101)));
  EXPECT_THAT(error_of([&] { gru(Variable(randn({3, 3}, 102))); }),
              HasSubstr("L::GRU: h has batch size 2, expected 3 (the batch of x)"));
}

// Every recurrent link names itself and the argument: sequences whose feature size differs
// from the link's in_size, and states of the wrong batch size (or layer count).
TEST_P(Recurrent, BadInputOfEveryRecurrentLink) {
  L::StatelessGRU sgru(3, 2);
  EXPECT_THAT(error_of([&] { sgru(Variable(randn({2, 2}, 110)), Variable(randn({2, 4}, 111))); }),
              HasSubstr("L::StatelessGRU: x has 4 features per row (shape (2, 4)), expected in_size = 3"));
  EXPECT_THAT(error_of([&] { sgru(Variable(randn({3, 2}, 112)), Variable(randn({2, 3}, 113))); }),
              HasSubstr("L::StatelessGRU: h has batch size 3, expected 2 (the batch of x)"));
  L::GRU gru(3, 2);
  EXPECT_THAT(error_of([&] { gru(Variable(randn({2, 4}, 114))); }),
              HasSubstr("L::GRU: x has 4 features per row (shape (2, 4)), expected in_size = 3"));
  EXPECT_THAT(error_of([&] { gru.set_state(Variable(randn({2, 3}, 115))); }),
              HasSubstr("L::GRU: set_state: h must have shape (batch, 2), got (2, 3)"));
  L::LSTM lstm(3, 4);
  EXPECT_THAT(error_of([&] { lstm.set_state(Variable(randn({2, 4}, 116)), Variable(randn({3, 4}, 117))); }),
              HasSubstr("L::LSTM: set_state: c and h must have the same batch size, got c (2, 4) and h (3, 4)"));

  Vs xs{Variable(randn({2, 3}, 118)), Variable(randn({1, 3}, 119))};
  L::NStepGRU ngru(1, 3, 2, 0.0);
  EXPECT_THAT(error_of([&] { ngru(Variable(), {Variable(randn({2, 4}, 120))}); }),
              HasSubstr("L::NStepGRU: xs[0] must have shape (length, 3) (in_size 3), got (2, 4)"));
  EXPECT_THAT(error_of([&] { ngru(Variable(randn({1, 3, 2}, 121)), xs); }),
              HasSubstr("L::NStepGRU: hx must have shape (n_layers * directions, len(xs), out_size) = (1, 2, 2), "
                        "got (1, 3, 2)"));
  L::NStepBiLSTM bilstm(1, 3, 2, 0.0);
  EXPECT_THAT(error_of([&] { bilstm(Variable(randn({1, 2, 2}, 122)), Variable(), xs); }),
              HasSubstr("L::NStepBiLSTM: hx must have shape (n_layers * directions, len(xs), out_size) = (2, 2, 2), "
                        "got (1, 2, 2)"));
  EXPECT_THAT(error_of([&] { bilstm(Variable(randn({2, 2, 2}, 123)), Variable(randn({2, 3, 2}, 124)), xs); }),
              HasSubstr("L::NStepBiLSTM: cx must have shape (n_layers * directions, len(xs), out_size) = (2, 2, 2), "
                        "got (2, 3, 2)"));
  L::NStepRNNTanh tanh_rnn(2, 3, 2, 0.0);
  EXPECT_THAT(error_of([&] { tanh_rnn(Variable(), {xs[0], Variable(randn({2, 5}, 125))}); }),
              HasSubstr("L::NStepRNNTanh: xs[1] must have shape (length, 3) (in_size 3), got (2, 5)"));
  L::NStepBiGRU bigru(1, 3, 2, 0.0);
  EXPECT_THAT(error_of([&] { bigru(Variable(), {}); }), HasSubstr("L::NStepBiGRU: xs must hold at least one sequence"));
}

// ---- compile behaviour of a truncated-BPTT loop (issue 15 item 2) -------------------------

// Chainer's ptb loop: a stateful LSTM over windows of `bptt` steps, loss.backward(),
// loss.unchain_backward(), optimizer.update(). Every window of the same length is the same
// graph: after the first two (the first starts without state) nothing compiles. Each
// window's gradient is that of the window alone, from its starting state as a constant.
// An LSTM and a Linear output layer, as the truncated-BPTT tests below unroll them.
struct LstmRegressor : Chain {
  L::LSTM lstm;
  L::Linear out;
  LstmRegressor(int64_t in, int64_t units, int64_t outs) : lstm(in, units), out(units, outs) {
    add_link("lstm", lstm);
    add_link("out", out);
  }
};

TEST_P(Recurrent, TruncatedBpttCompilesOneGraphPerWindowLength) {
  using Model = LstmRegressor;
  Model model(3, 4, 2);
  optimizers::SGD opt(0.1);
  opt.setup(model);
  const int bptt = 2;
  uint64_t seed = 200;
  int64_t misses_after_two_windows = -1;
  for (int window = 0; window < 5; ++window) {
    if (window == 2) misses_after_two_windows = cache_stats().misses;
    std::vector<Variable> xs, ts;
    for (int t = 0; t < bptt; ++t) {
      xs.emplace_back(randn({2, 3}, seed++));
      ts.emplace_back(randn({2, 2}, seed++), false);
    }
    // The same window from the same starting state in a fresh copy of the parameters.
    Model ref(3, 4, 2);
    auto src = model.namedparams(), dst = ref.namedparams();
    for (size_t i = 0; i < src.size(); ++i) dst[i].second.set_array(src[i].second.array());
    if (window > 0) ref.lstm.set_state(Variable(model.lstm.c().array(), false), Variable(model.lstm.h().array(), false));
    Variable ref_loss;
    for (int t = 0; t < bptt; ++t) {
      Variable l = F::mean_squared_error(ref.out(ref.lstm(xs[t])), ts[t]);
      ref_loss = t == 0 ? l : ref_loss + l;
    }
    ref.cleargrads();
    ref_loss.backward();

    Variable loss;
    for (int t = 0; t < bptt; ++t) {
      Variable l = F::mean_squared_error(model.out(model.lstm(xs[t])), ts[t]);
      loss = t == 0 ? l : loss + l;
    }
    model.cleargrads();
    loss.backward();
    loss.unchain_backward();
    for (size_t i = 0; i < src.size(); ++i) {
      SCOPED_TRACE(fmt::format("window {}, {}", window, src[i].first));
      expect_arrays_near({src[i].second.grad()}, {dst[i].second.grad()}, 1e-5);
    }
    opt.update();
  }
  // Windows 2.. (and their reference copies) compiled nothing new: the graph does not grow.
  EXPECT_EQ(cache_stats().misses, misses_after_two_windows);
}

// -kiln-batch-matmuls (on by default) makes one GEMM of the steps' input projections, output
// layer and weight-gradient sums of an unrolled LSTM; its loss and gradients are those of the
// graph without it (KILN_BATCH_MATMULS=0) within rounding, and the two are separate compiles.
TEST_P(Recurrent, BatchedMatmulsOfAnUnrolledLstmMatchTheUnbatchedGraph) {
  auto run = [](const char* batch_matmuls) {
    ScopedEnv env("KILN_BATCH_MATMULS", batch_matmuls);
    LstmRegressor model(5, 6, 4);  // parameters set below: the same in both runs
    auto params = model.namedparams();
    for (size_t i = 0; i < params.size(); ++i) params[i].second.set_array(randn(params[i].second.shape(), 300 + i));
    Variable loss;
    for (int t = 0; t < 4; ++t) {
      Variable l = F::mean_squared_error(model.out(model.lstm(Variable(randn({3, 5}, 310 + t)))),
                                         Variable(randn({3, 4}, 320 + t), false));
      loss = t == 0 ? l : loss + l;
    }
    model.cleargrads();
    loss.backward();
    std::vector<Array> results{loss.array()};
    for (auto& [name, p] : model.namedparams()) results.push_back(p.grad());
    return results;
  };
  int64_t misses = cache_stats().misses;
  std::vector<Array> unbatched = run("0");
  int64_t unbatched_misses = cache_stats().misses - misses;
  std::vector<Array> batched = run("1");
  EXPECT_GT(cache_stats().misses - misses, unbatched_misses);
  expect_arrays_near(batched, unbatched, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Backends, Recurrent, ::testing::Values("interp", "cpu"));

}  // namespace
