// Graph control as in Chainer: kiln::grad (chainer.grad) with and without double
// backprop, a gradient penalty trained to a known value, Variable::unchain /
// unchain_backward (truncated BPTT keeps one graph and flat history) and
// backward(retain_grad, enable_double_backprop). On the interpreter and the cpu backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>

#include "error_of.h"
#include "on_backend.h"

using namespace kiln;
using ::testing::DoubleNear;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

namespace {

std::vector<double> values(const Array& a) {
  std::vector<double> v;
  for (int64_t i = 0; i < a.size(); ++i) v.push_back(a.at(i));
  return v;
}

::testing::Matcher<std::vector<double>> near(const std::vector<double>& expected, double tol = 1e-4) {
  std::vector<::testing::Matcher<double>> m;
  for (double e : expected) m.push_back(DoubleNear(e, tol));
  return ElementsAreArray(m);
}

using GraphControl = OnBackend;

// d/dx sum(x^3) = 3x^2; with double backprop, d/dx sum((3x^2)^2) = 36 x^3.
TEST_P(GraphControl, GradOfGradWithDoubleBackprop) {
  Variable x(Array::from({1.f, -2.f, 0.5f}, {3}));
  Variable y = F::sum(x * x * x);
  std::vector<Variable> gx = grad({y}, {x}, {}, /*enable_double_backprop=*/true);
  ASSERT_EQ(gx.size(), 1u);
  EXPECT_THAT(values(gx[0].array()), near({3, 12, 0.75}));
  EXPECT_FALSE(x.has_grad());  // grad() leaves every .grad alone
  Variable penalty = F::sum(gx[0] * gx[0]);
  penalty.backward();
  EXPECT_THAT(values(x.grad()), near({36, -288, 4.5}, 1e-3));
}

// Without double backprop the gradient is a value: a backward from it reaches no leaf.
TEST_P(GraphControl, GradWithoutDoubleBackpropIsAValue) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable gx = grad({F::sum(x * x)}, {x})[0];
  EXPECT_THAT(values(gx.array()), near({2, 4}));
  F::sum(gx * gx).backward();
  EXPECT_FALSE(x.has_grad());
}

// Several outputs with their grad_outputs; an intermediate input; an input no output depends on.
TEST_P(GraphControl, GradOfSeveralOutputsAndIntermediates) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable h = x * 3.0f;             // intermediate
  Variable y1 = h * h;                // dy1/dh = 2h
  Variable y2 = F::sum(h);            // dy2/dh = 1
  Variable unrelated(Array::from({5.f}, {1}));
  Variable gy1(Array::from({1.f, 10.f}, {2}), false);
  std::vector<Variable> g = grad({y1, y2}, {h, x, unrelated}, {gy1, Variable()});
  ASSERT_EQ(g.size(), 3u);
  EXPECT_THAT(values(g[0].array()), near({2 * 3 * 1 + 1, 10 * 2 * 6 + 1}));
  EXPECT_THAT(values(g[1].array()), near({3 * 7, 3 * 121}));
  EXPECT_TRUE(g[2].is_null());
}

// A gradient penalty (WGAN-GP's |d f / d x| pushed to 1) trained by SGD: f(x) = w * x
// has d f / d x = w, so the penalty (w - 1)^2 ... with w starting at 3 reaches w = 1.
TEST_P(GraphControl, GradientPenaltyTrainsToAKnownValue) {
  struct Critic : Chain {
    L::Linear l{1, 1, true};
    Critic() { add_link("l", l); }
  } critic;
  critic.l.W.set_array(Array::from({3.f}, {1, 1}));
  optimizers::SGD opt(0.1);
  opt.setup(critic);
  Variable x(Array::from({0.5f, -1.f, 2.f, 0.25f}, {4, 1}));
  for (int step = 0; step < 60; ++step) {
    critic.cleargrads();
    Variable f = F::sum(critic.l(x));
    Variable gx = grad({f}, {x}, {}, /*enable_double_backprop=*/true)[0];  // = w per example
    Variable norm = F::sqrt(F::sum(gx * gx, Axes{{1}}));                       // |w| per example
    Variable penalty = F::mean((norm - 1.0f) * (norm - 1.0f));
    penalty.backward();
    opt.update();
  }
  EXPECT_NEAR(critic.l.W.array().at(0), 1.0, 1e-3);
}

// Second-order gradients of max pooling (Chainer's MaxPooling2DGrad.backward): the
// gradient gx = pool2d_grad(x, gy) is linear in gy, so its gradient with respect to gy
// reads ggx at each window's argmax; with respect to x it is zero.
TEST_P(GraphControl, MaxPoolingSecondOrderGradientRoutesThroughTheArgmax) {
  Variable x(Array::from({1.f, 5.f, 2.f, 0.f,  //
                          3.f, 4.f, 7.f, 6.f,  //
                          9.f, 8.f, 0.f, 1.f,  //
                          2.f, 3.f, 4.f, 5.f},
                         {1, 1, 4, 4}));
  Variable gy(Array::from({1.f, 2.f, 3.f, 4.f}, {1, 1, 2, 2}));
  Variable y = F::max_pooling_2d(x, 2, 2, 0, false);  // maxima at (0,1), (1,2), (2,0), (3,3)
  Variable gx = grad({y}, {x}, {gy}, /*enable_double_backprop=*/true)[0];
  EXPECT_THAT(values(gx.array()), near({0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4}));
  std::vector<float> ggx_values(16);
  for (int i = 0; i < 16; ++i) ggx_values[i] = 0.5f * static_cast<float>(i);  // ggx[i] = i / 2
  Variable ggx(Array::from(ggx_values, {1, 1, 4, 4}), false);
  std::vector<Variable> gg = grad({gx}, {gy, x}, {ggx});
  ASSERT_EQ(gg.size(), 2u);
  EXPECT_THAT(values(gg[0].array()), near({0.5, 3, 4, 7.5}));
  EXPECT_THAT(values(gg[1].array()), near(std::vector<double>(16, 0.0)));
}

// Overlapping windows with padding (ksize 3, stride 2, pad 1 on 5x5), on values with ties: the second-order gradient reads ggx at the tap the first-order
// gradient routes gy to, the first in-bounds maximum of the window in (ky, kx) order.
// Expected values from Chainer 7.8.1 (chainer.grad of chainer.grad with double backprop).
TEST_P(GraphControl, MaxPoolingSecondOrderGradientWithPaddingAndTies) {
  Variable x(Array::from({0.f, 2.f, 2.f, 1.f, 0.f,   //
                          2.f, 1.f, 0.f, 2.f, 3.f,   //
                          1.f, 1.f, 3.f, 3.f, 0.f,   //
                          0.f, 4.f, 1.f, 1.f, 2.f,   //
                          4.f, 0.f, 2.f, 0.f, 4.f},
                         {1, 1, 5, 5}));
  Variable y = F::max_pooling_2d(x, 3, 2, 1);
  ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  std::vector<float> gyv(9), ggxv(25);
  for (int i = 0; i < 9; ++i) gyv[i] = static_cast<float>(i + 1);
  for (int i = 0; i < 25; ++i) ggxv[i] = static_cast<float>(10 + i);
  Variable gy(Array::from(gyv, {1, 1, 3, 3}));
  Variable gx = grad({y}, {x}, {gy}, /*enable_double_backprop=*/true)[0];
  Variable ggx(Array::from(ggxv, {1, 1, 5, 5}), false);
  Variable ggy = grad({gx}, {gy}, {ggx})[0];
  EXPECT_THAT(values(gx.array()), near({0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 9}));
  EXPECT_THAT(values(ggy.array()), near({11, 11, 19, 26, 26, 19, 26, 26, 34}));
}

TEST_P(GraphControl, GradRejectsBadArguments) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable y = F::sum(x * x);
  EXPECT_THAT(error_of([&] { grad({y}, {x}, {Variable(Array::from({1.f, 1.f}, {2}))}); }),
              HasSubstr("grad_outputs[0] must match outputs[0]: expected shape ()"));
  EXPECT_THAT(error_of([&] { grad({y}, {x}, {Variable(), Variable()}); }),
              HasSubstr("grad_outputs has 2 entries, expected one per output (1)"));
  Variable ids(Array::from<int32_t>({1, 2}, {2}), false);
  EXPECT_THAT(error_of([&] { grad({y}, {ids}); }), HasSubstr("inputs[0] has dtype int32"));
}

// Truncated BPTT: h = tanh(h * w + x) over a long loop, unchained every 3 steps.
// Gradients stop at the cut (w's gradient is that of the last 3 steps only), and
// every window compiles to the same graph.
TEST_P(GraphControl, UnchainCutsTheGraphForTruncatedBptt) {
  Variable w(Array::from({0.5f}, {1}));
  Variable h(Array::from({0.1f}, {1}), false);
  std::vector<float> hs{0.1f};
  int64_t misses_after_first_windows = -1;
  for (int t = 0; t < 30; ++t) {
    if (t == 6) misses_after_first_windows = cache_stats().misses;
    h = F::tanh(h * w + 0.2f);
    hs.push_back(static_cast<float>(std::tanh(hs.back() * 0.5 + 0.2)));
    if (t % 3 == 2) {
      w.cleargrad();
      F::sum(h).backward();
      // d h3 / d w through the window's 3 steps only, h0 a constant.
      double h0 = hs[hs.size() - 4], g = 0, hp = h0;
      double dh = 0;  // d h_k / d w
      for (int k = 0; k < 3; ++k) {
        double pre = hp * 0.5 + 0.2, hk = std::tanh(pre);
        dh = (1 - hk * hk) * (hp + 0.5 * dh);
        hp = hk;
      }
      g = dh;
      EXPECT_NEAR(w.grad().at(0), g, 1e-5) << "window ending at step " << t;
      h.unchain_backward();
      EXPECT_NEAR(h.array().at(0), hs.back(), 1e-5);
    }
  }
  // Windows after the first two compile nothing new: the graph does not grow.
  EXPECT_EQ(cache_stats().misses, misses_after_first_windows);
  h.unchain();  // a leaf already: unchanged
  EXPECT_NEAR(h.array().at(0), hs.back(), 1e-5);
}

// unchain_backward cuts the graph behind a computed value (realized or not); a variable
// with no creator has nothing behind it: a clear error, as for an empty variable.
TEST_P(GraphControl, UnchainBackwardNeedsACreator) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable loss = F::sum(x * x);
  EXPECT_NEAR(loss.array().at(0), 5.0, 1e-6);  // realized: its creator stays until the cut
  loss.unchain_backward();
  const char* no_creator = "Variable::unchain_backward: this variable has no creator (it is a leaf";
  EXPECT_THAT(error_of([&] { loss.unchain_backward(); }), HasSubstr(no_creator));  // already cut
  EXPECT_THAT(error_of([&] { x.unchain_backward(); }), HasSubstr(no_creator));     // an input
  L::Linear l(2, 1);
  EXPECT_THAT(error_of([&] { l.W.unchain_backward(); }), HasSubstr(no_creator));   // a Parameter
  EXPECT_THAT(error_of([] { Variable().unchain_backward(); }),
              HasSubstr("Variable::unchain_backward: the variable is empty (default-constructed)"));
}

TEST_P(GraphControl, BackwardWithoutDoubleBackpropAndRetainGrad) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  F::sum(x * x * x).backward(false, /*enable_double_backprop=*/false);
  EXPECT_THAT(values(x.grad()), near({3, 12}));
  Variable z(Array::from({1.f}, {1}));
  EXPECT_THAT(error_of([&] { F::sum(z * z).backward(true); }), HasSubstr("retain_grad=true"));
}

INSTANTIATE_TEST_SUITE_P(Backends, GraphControl, ::testing::Values("interp", "cpu"));

}  // namespace
