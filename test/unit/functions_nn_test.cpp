// Hand-computed values of the neural-network functions (F) and links (L).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>

using namespace kiln;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::Pointwise;

namespace {

std::vector<double> values(const Variable& v) { return v.array().to_vector<double>(); }
std::vector<double> grads(const Variable& v) { return v.grad().to_vector<double>(); }

MATCHER_P(Near, tol, "") { return std::abs(std::get<0>(arg) - std::get<1>(arg)) <= tol; }
#define EXPECT_VALUES(actual, ...) EXPECT_THAT(actual, Pointwise(Near(1e-5), std::vector<double>(__VA_ARGS__)))

Array iota(Shape s, double start = 1.0) {
  Array a(s, DType::f32);
  for (int64_t i = 0; i < a.size(); ++i) a.set(i, start + static_cast<double>(i));
  return a;
}

// ---- dropout ------------------------------------------------------------------------

TEST(Dropout, KeepsAboutOneMinusRatioAndScales) {
  F::set_dropout_seed(0);
  Variable x(Array::ones({2000}));
  Variable y = F::dropout(x, 0.25);
  std::vector<double> v = values(y);
  int64_t kept = 0;
  for (double e : v) {
    ASSERT_TRUE(e == 0.0 || std::abs(e - 1.0 / 0.75) < 1e-6) << e;
    kept += e != 0.0;
  }
  EXPECT_NEAR(static_cast<double>(kept) / 2000.0, 0.75, 0.04);
  // The gradient is the mask itself.
  y.set_grad(Array::ones({2000}));
  y.backward();
  EXPECT_EQ(grads(x), v);
}

TEST(Dropout, SameSeedSameMaskAndCallsDiffer) {
  Variable x(Array::ones({64}));
  F::set_dropout_seed(42);
  std::vector<double> a = values(F::dropout(x));
  std::vector<double> b = values(F::dropout(x));  // the next call draws new numbers
  F::set_dropout_seed(42);
  std::vector<double> a2 = values(F::dropout(x));
  EXPECT_EQ(a, a2);
  EXPECT_NE(a, b);
  F::set_dropout_seed(43);
  EXPECT_NE(values(F::dropout(x)), a);
  for (double e : a) EXPECT_TRUE(e == 0.0 || e == 2.0);
}

TEST(Dropout, NewMasksEachStepWithoutRecompiling) {
  // The Philox key is an input of the graph, so steps share one compiled graph.
  Variable x(Array::ones({16}));
  F::set_dropout_seed(5);
  clear_memory_cache();
  reset_cache_stats();
  std::vector<std::vector<double>> masks;
  for (int step = 0; step < 3; ++step) masks.push_back(values(F::dropout(x)));
  EXPECT_EQ(cache_stats().misses, 1);
  EXPECT_EQ(cache_stats().memory_hits, 2);
  EXPECT_NE(masks[0], masks[1]);
  EXPECT_NE(masks[1], masks[2]);
}

TEST(Dropout, IdentityWhenNotTraining) {
  Variable x(iota({2, 3}));
  auto guard = using_config("train", false);
  Variable y = F::dropout(x, 0.9);
  EXPECT_EQ(values(y), values(x));
}

// ---- losses -------------------------------------------------------------------------

TEST(SoftmaxCrossEntropy, MeanOverBatch) {
  Variable x(Array::from<float>({1, 2, 3, 0, 0, 0}, {2, 3}));
  Variable t(Array::from<int32_t>({2, 0}, {2}));
  double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;
  double l1 = std::log(3.0);
  Variable loss = F::softmax_cross_entropy(x, t);
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_NEAR(loss.item<double>(), (l0 + l1) / 2, 1e-6);
  loss.backward();
  // d/dx = (softmax - onehot) / N.
  double e = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_VALUES(grads(x), {std::exp(1.0) / e / 2, std::exp(2.0) / e / 2, (std::exp(3.0) / e - 1) / 2,
                           (1.0 / 3 - 1) / 2, 1.0 / 6, 1.0 / 6});
}

TEST(SoftmaxCrossEntropy, IgnoreLabelNormalizeAndReduceNo) {
  Variable x(Array::from<float>({1, 2, 3, 0, 0, 0, 5, 5, 5}, {3, 3}));
  Variable t(Array::from<int32_t>({2, -1, 1}, {3}));
  double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0, l2 = std::log(3.0);
  EXPECT_NEAR(F::softmax_cross_entropy(x, t).item<double>(), (l0 + l2) / 2, 1e-6);
  EXPECT_NEAR(F::softmax_cross_entropy(x, t, false).item<double>(), (l0 + l2) / 3, 1e-6);
  Variable per = F::softmax_cross_entropy(x, t, true, -1, "no");
  EXPECT_EQ(per.shape(), Shape{3});
  EXPECT_VALUES(values(per), {l0, 0.0, l2});
  // Another ignore_label: class 2 is ignored, -1 is an (out-of-range) label that picks nothing.
  Variable t2(Array::from<int32_t>({2, 0, 1}, {3}));
  EXPECT_NEAR(F::softmax_cross_entropy(x, t2, true, 2).item<double>(), (std::log(3.0) + l2) / 2, 1e-6);
}

TEST(SoftmaxCrossEntropy, SpatialLabels) {
  // x (N=1, C=2, d=2): class axis is 1.
  Variable x(Array::from<float>({0, 1, std::log(3.0f), 1}, {1, 2, 2}));
  Variable t(Array::from<int32_t>({1, 0}, {1, 2}));
  // position 0: logits (0, log3) -> p(1) = 3/4; position 1: logits (1, 1) -> p(0) = 1/2.
  Variable per = F::softmax_cross_entropy(x, t, true, -1, "no");
  EXPECT_EQ(per.shape(), (Shape{1, 2}));
  EXPECT_VALUES(values(per), {-std::log(0.75), std::log(2.0)});
  EXPECT_NEAR(F::softmax_cross_entropy(x, t).item<double>(), (-std::log(0.75) + std::log(2.0)) / 2, 1e-6);
  // normalize=false divides by the batch size N = 1.
  EXPECT_NEAR(F::softmax_cross_entropy(x, t, false).item<double>(), -std::log(0.75) + std::log(2.0), 1e-6);
}

TEST(SoftmaxCrossEntropy, StableForLargeLogits) {
  Variable x(Array::from<float>({1000, 0, -1000, 0}, {2, 2}));
  Variable t(Array::from<int32_t>({1, 0}, {2}));
  EXPECT_NEAR(F::softmax_cross_entropy(x, t).item<double>(), (1000 + 1000) / 2.0, 1e-3);
}

TEST(MeanSquaredError, Value) {
  Variable a(Array::from<float>({1, 2, 3, 4}, {2, 2})), b(Array::from<float>({1, 0, 6, 4}, {2, 2}));
  Variable l = F::mean_squared_error(a, b);
  EXPECT_NEAR(l.item<double>(), (4.0 + 9.0) / 4, 1e-6);
  l.backward();
  EXPECT_VALUES(grads(a), {0, 1, -1.5, 0});
  EXPECT_VALUES(grads(b), {0, -1, 1.5, 0});
}

TEST(SigmoidCrossEntropy, ValuesIgnoreAndNormalize) {
  Variable x(Array::from<float>({0, 2, -1, 30}, {2, 2}));
  Variable t(Array::from<int32_t>({1, 0, 1, -1}, {2, 2}));
  double l00 = std::log(2.0), l01 = std::log1p(std::exp(2.0)), l10 = std::log1p(std::exp(1.0));
  Variable per = F::sigmoid_cross_entropy(x, t, true, "no");
  EXPECT_VALUES(values(per), {l00, l01, l10, 0.0});
  EXPECT_NEAR(F::sigmoid_cross_entropy(x, t).item<double>(), (l00 + l01 + l10) / 3, 1e-6);
  Variable l = F::sigmoid_cross_entropy(x, t, false);  // divided by the batch size 2
  EXPECT_NEAR(l.item<double>(), (l00 + l01 + l10) / 2, 1e-6);
  l.backward();
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  // (sigmoid(x) - t) / 2, also at x = 0; nothing for the ignored label.
  EXPECT_VALUES(grads(x), {(0.5 - 1) / 2, sig(2) / 2, (sig(-1) - 1) / 2, 0.0});
}

TEST(HuberLoss, SumAlongSecondAxisAndNo) {
  Variable x(Array::from<float>({0, 3, 1, -2}, {2, 2})), t(Array::from<float>({0.5, 0, 1, 0}, {2, 2}));
  Variable per = F::huber_loss(x, t, 1.0, "no");
  EXPECT_VALUES(values(per), {0.125, 2.5, 0.0, 1.5});
  Variable y = F::huber_loss(x, t, 1.0);
  EXPECT_EQ(y.shape(), Shape{2});
  EXPECT_VALUES(values(y), {2.625, 1.5});
  y.set_grad(Array::ones({2}));
  y.backward();
  EXPECT_VALUES(grads(x), {-0.5, 1.0, 0.0, -1.0});  // clip(x - t, -delta, delta)
}

TEST(Accuracy, ValueDtypeAndIgnoreLabel) {
  Variable y(Array::from<float>({0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f}, {3, 2}));
  Variable t(Array::from<int32_t>({1, 1, 1}, {3}));
  Variable acc = F::accuracy(y, t);
  EXPECT_EQ(acc.shape(), Shape{});
  EXPECT_EQ(acc.dtype(), DType::f32);
  EXPECT_NEAR(acc.item<double>(), 2.0 / 3, 1e-6);
  Variable t2(Array::from<int32_t>({1, -1, 1}, {3}));
  EXPECT_NEAR(F::accuracy(y, t2, -1).item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(F::accuracy(y, t2).item<double>(), 2.0 / 3, 1e-6);  // -1 is then just a wrong label
  Variable all_ignored(Array::from<int32_t>({-1, -1, -1}, {3}));
  EXPECT_NEAR(F::accuracy(y, all_ignored, -1).item<double>(), 0.0, 1e-6);
  Variable y64(Array::from<double>({0.1, 0.9}, {1, 2}));
  EXPECT_EQ(F::accuracy(y64, Variable(Array::from<int32_t>({1}, {1}))).dtype(), DType::f64);
}

// ---- convolution --------------------------------------------------------------------

TEST(Convolution2D, ValuesBiasStridePad) {
  Variable x(iota({1, 1, 3, 3}));  // 1..9
  Variable W(Array::ones({1, 1, 2, 2}));
  Variable b(Array::from<float>({1}, {1}));
  Variable y = F::convolution_2d(x, W, b);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_VALUES(values(y), {13, 17, 25, 29});
  Variable y2 = F::convolution_2d(x, W, Variable(), 2, 1);
  EXPECT_EQ(y2.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_VALUES(values(y2), {1, 5, 11, 28});
  // Two output channels, two input channels.
  Variable x2(Array::ones({1, 2, 2, 2}));
  Variable W2(Array::from<float>({1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2}, {2, 2, 2, 2}));
  EXPECT_VALUES(values(F::convolution_2d(x2, W2)), {4, 3});
}

TEST(Deconvolution2D, ValuesStrideAndOutsize) {
  Variable x(Array::from<float>({1, 2, 3, 4}, {1, 1, 2, 2}));
  Variable W(Array::ones({1, 1, 2, 2}));
  Variable y = F::deconvolution_2d(x, W);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_VALUES(values(y), {1, 3, 2, 4, 10, 6, 3, 7, 4});
  Variable y2 = F::deconvolution_2d(x, W, Variable(Array::from<float>({0.5}, {1})), 2);
  EXPECT_EQ(y2.shape(), (Shape{1, 1, 4, 4}));
  EXPECT_VALUES(values(y2), {1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5});
  // outsize larger than the default: an extra zero row/column.
  Variable y3 = F::deconvolution_2d(x, W, Variable(), 2, 0, Pair{5, 4});
  EXPECT_EQ(y3.shape(), (Shape{1, 1, 5, 4}));
  EXPECT_VALUES(values(y3), {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4, 0, 0, 0, 0});
  // outsize smaller (cover_all-compatible): the top-left crop.
  Variable y4 = F::deconvolution_2d(x, W, Variable(), 2, 0, Pair{3, 3});
  EXPECT_VALUES(values(y4), {1, 1, 2, 1, 1, 2, 3, 3, 4});
  // In/out channels: W is (C_in, C_out, kh, kw).
  Variable W5(Array::from<float>({1, 2}, {1, 2, 1, 1}));
  Variable y5 = F::deconvolution_2d(x, W5);
  EXPECT_EQ(y5.shape(), (Shape{1, 2, 2, 2}));
  EXPECT_VALUES(values(y5), {1, 2, 3, 4, 2, 4, 6, 8});
}

TEST(Deconvolution2D, IsTheTransposeOfConvolution) {
  // <conv(x, W), y> == <x, deconv(y, W)>.
  Array xa = Array::randn({2, 3, 5, 4}, 1), wa = Array::randn({2, 3, 3, 2}, 2);
  Variable x(xa), W(wa);
  Variable c = F::convolution_2d(x, W, Variable(), {2, 1}, {1, 1});
  Array ya = Array::randn(c.shape(), 3);
  Variable d = F::deconvolution_2d(Variable(ya), W, Variable(), {2, 1}, {1, 1}, Pair{5, 4});
  double lhs = F::sum(c * Variable(ya)).item<double>();
  double rhs = F::sum(x * d).item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-3 * std::max(1.0, std::abs(lhs)));
}

TEST(Convolution2D, DilateSpacesTheTaps) {
  Variable x(iota({1, 1, 4, 4}));  // 1..16
  Variable W(Array::ones({1, 1, 2, 2}));
  // Taps (0,0), (0,2), (2,0), (2,2): a 3x3 extent, 2x2 outputs.
  Variable y = F::convolution_2d(x, W, Variable(), 1, 0, false, 2);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_VALUES(values(y), {1 + 3 + 9 + 11, 2 + 4 + 10 + 12, 5 + 7 + 13 + 15, 6 + 8 + 14 + 16});
  // Dilation (1, 3), stride (3, 1), padding 1: rows {-1, 0} and {2, 3}, columns
  // {-1, 2}, {0, 3} and {1, 4} (-1 and 4 are padding).
  Variable y2 = F::convolution_2d(x, W, Variable(), {3, 1}, 1, false, {1, 3});
  EXPECT_EQ(y2.shape(), (Shape{1, 1, 2, 3}));
  EXPECT_VALUES(values(y2), {3, 1 + 4, 2, 11 + 15, 9 + 12 + 13 + 16, 10 + 14});
}

TEST(Convolution2D, GroupsSeeOnlyTheirChannels) {
  // Group g of the output is the convolution of input group g with its filters.
  Array xa = Array::randn({2, 4, 5, 5}, 1), wa = Array::randn({6, 2, 3, 3}, 2), ba = Array::randn({6}, 3);
  Variable x(xa), W(wa), b(ba);
  Variable y = F::convolution_2d(x, W, b, 2, 1, false, 2, 2);
  EXPECT_EQ(y.shape(), (Shape{2, 6, 2, 2}));
  Slice all{};
  auto channels = [&](const Variable& v, int64_t from, int64_t to) {
    return F::get_item(v, {all, Slice{from, to, std::nullopt}});
  };
  auto part = [&](int64_t i) {
    return F::convolution_2d(channels(x, 2 * i, 2 * i + 2), F::get_item(W, {Slice{3 * i, 3 * i + 3, std::nullopt}}),
                             F::get_item(b, {Slice{3 * i, 3 * i + 3, std::nullopt}}), 2, 1, false, 2);
  };
  Variable expected = F::concat({part(0), part(1)}, 1);
  EXPECT_THAT(values(y), Pointwise(Near(1e-4), values(expected)));
  // Depthwise (groups == channels): each channel with its own filter.
  Variable dw = F::convolution_2d(x, Variable(Array::ones({4, 1, 1, 1})), Variable(), 1, 0, false, 1, 4);
  EXPECT_THAT(values(dw), Pointwise(Near(1e-6), xa.to_vector<double>()));
}

TEST(Convolution2D, CoverAllAddsAPartialWindow) {
  Variable x(iota({1, 1, 3, 3}));  // 1..9
  Variable W(Array::ones({1, 1, 2, 2}));
  Variable y = F::convolution_2d(x, W, Variable(), 2, 0, true);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_VALUES(values(y), {12, 9, 15, 9});
}

TEST(Deconvolution2D, DilateAndGroupsAreTheTransposeOfConvolution) {
  // <conv(x, W), y> == <x, deconv(y, W)> with the same stride, pad, dilate and groups.
  Array xa = Array::randn({2, 4, 7, 6}, 1), wa = Array::randn({4, 2, 3, 2}, 2);
  Variable x(xa), W(wa);
  Variable c = F::convolution_2d(x, W, Variable(), {2, 1}, {1, 2}, false, {2, 3}, 2);
  Array ya = Array::randn(c.shape(), 3);
  Variable d = F::deconvolution_2d(Variable(ya), W, Variable(), {2, 1}, {1, 2}, Pair{7, 6}, {2, 3}, 2);
  EXPECT_EQ(d.shape(), x.shape());
  double lhs = F::sum(c * Variable(ya)).item<double>();
  double rhs = F::sum(x * d).item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-3 * std::max(1.0, std::abs(lhs)));
}

// ---- pooling ------------------------------------------------------------------------

TEST(MaxPooling2D, CoverAllAddsPartialWindows) {
  Variable x(iota({1, 1, 3, 3}));  // 1..9
  Variable y = F::max_pooling_2d(x, 2);  // stride = ksize, cover_all = true
  EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2}));
  EXPECT_VALUES(values(y), {5, 6, 8, 9});
  y.set_grad(Array::ones({1, 1, 2, 2}));
  y.backward();
  EXPECT_VALUES(grads(x), {0, 0, 0, 0, 1, 1, 0, 1, 1});
  Variable y2 = F::max_pooling_2d(x, 2, std::nullopt, 0, false);
  EXPECT_EQ(y2.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_VALUES(values(y2), {5});
}

TEST(MaxPooling2D, NegativeValuesPadAndStride) {
  // Padding acts as -inf, so all-negative inputs keep their own maxima.
  Variable x(Array::from<float>({-1, -2, -3, -4}, {1, 1, 2, 2}));
  Variable y = F::max_pooling_2d(x, 2, 1, 1, false);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_VALUES(values(y), {-1, -1, -2, -1, -1, -2, -3, -3, -4});
  // cover_all with padding: (4 + 2 - 3 + 1) / 2 + 1 = 3 windows per axis.
  Variable x2(iota({1, 1, 4, 4}));
  Variable y2 = F::max_pooling_2d(x2, 3, 2, 1);
  EXPECT_EQ(y2.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_VALUES(values(y2), {6, 8, 8, 14, 16, 16, 14, 16, 16});
  EXPECT_EQ(F::max_pooling_2d(x2, 3, 2, 1, false).shape(), (Shape{1, 1, 2, 2}));
  // cover_all accepts a window larger than the input: one output over all of it.
  Variable y3 = F::max_pooling_2d(Variable(iota({1, 1, 2, 2})), 3);
  EXPECT_EQ(y3.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_VALUES(values(y3), {4});
}

// The gradient goes to each window's first maximum in window order (Chainer's
// choice on ties), only in-bounds taps count, and overlapping windows add up.
TEST(MaxPooling2D, GradientGoesToTheFirstMaximumOfEachWindow) {
  // 2x2 windows at stride 2: a window of four equal values, and a tie of 3s.
  Variable x(Array::from<float>({1, 1, 3, 2, 1, 0, 3, 3}, {1, 1, 2, 4}));
  Variable y = F::max_pooling_2d(x, 2, 2, 0, false);
  EXPECT_VALUES(values(y), {1, 3});
  y.set_grad(Array::from<float>({5, 7}, {1, 1, 1, 2}));
  y.backward();
  EXPECT_VALUES(grads(x), {5, 0, 7, 0, 0, 0, 0, 0});
  // The same in f64.
  Variable x64(Array::from<double>({1, 1, 3, 2, 1, 0, 3, 3}, {1, 1, 2, 4}));
  Variable y64 = F::max_pooling_2d(x64, 2, 2, 0, false);
  y64.set_grad(Array::from<double>({5, 7}, {1, 1, 1, 2}));
  y64.backward();
  EXPECT_VALUES(grads(x64), {5, 0, 7, 0, 0, 0, 0, 0});
  // Overlapping windows (2x2 at stride 1) whose first maximum is the same element.
  Variable x2(Array::from<float>({1, 4, 4, 4, 2, 4}, {1, 1, 2, 3}));
  Variable y2 = F::max_pooling_2d(x2, 2, 1, 0, false);
  y2.set_grad(Array::from<float>({1, 10}, {1, 1, 1, 2}));
  y2.backward();
  EXPECT_VALUES(grads(x2), {0, 11, 0, 0, 0, 0});
  // Padding: the windows of a 3x3 output over a 2x2 input, each element taking
  // the gradients of the windows whose in-bounds maximum it is.
  Variable x3(Array::from<float>({-3, -1, -2, -4}, {1, 1, 2, 2}));
  Variable y3 = F::max_pooling_2d(x3, 2, 1, 1, false);
  y3.set_grad(iota({1, 1, 3, 3}));
  y3.backward();
  EXPECT_VALUES(grads(x3), {1, 2 + 3 + 5 + 6, 4 + 7 + 8, 9});
}

TEST(AveragePooling2D, GradientOfOverlappingPaddedWindows) {
  // Each element of x is in four 2x2 windows (stride 1, pad 1); the divisor is always 4.
  Variable x(Array::from<float>({1, 2, 3, 4}, {1, 1, 2, 2}));
  Variable y = F::average_pooling_2d(x, 2, 1, 1);
  y.set_grad(iota({1, 1, 3, 3}));
  y.backward();
  EXPECT_VALUES(grads(x), {(1 + 2 + 4 + 5) / 4.0, (2 + 3 + 5 + 6) / 4.0, (4 + 5 + 7 + 8) / 4.0, (5 + 6 + 8 + 9) / 4.0});
}

TEST(AveragePooling2D, DivisorIncludesPadding) {
  Variable x(Array::from<float>({1, 2, 3, 4}, {1, 1, 2, 2}));
  Variable y = F::average_pooling_2d(x, 2, 1, 1);
  EXPECT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_VALUES(values(y), {0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0});
  Variable x2(iota({1, 2, 2, 4}));
  Variable y2 = F::average_pooling_2d(x2, 2);
  EXPECT_EQ(y2.shape(), (Shape{1, 2, 1, 2}));
  EXPECT_VALUES(values(y2), {3.5, 5.5, 11.5, 13.5});
  y2.set_grad(Array::ones({1, 2, 1, 2}));
  y2.backward();
  EXPECT_VALUES(grads(x2), std::vector<double>(16, 0.25));
}

// ---- normalization ------------------------------------------------------------------

TEST(BatchNormalization, BatchStatisticsOverAllButAxis1) {
  Variable x(Array::from<float>({1, 10, 3, 30}, {2, 2}));
  Variable gamma(Array::from<float>({2, 1}, {2})), beta(Array::from<float>({1, 0}, {2}));
  Variable y = F::batch_normalization(x, gamma, beta);
  double s0 = 1 / std::sqrt(1 + 2e-5), s1 = 1 / std::sqrt(100 + 2e-5);
  EXPECT_VALUES(values(y), {1 - 2 * s0, -10 * s1, 1 + 2 * s0, 10 * s1});
  // 4-d: statistics over N, H, W for each channel.
  Variable x4(Array::from<float>({0, 2, 10, 10, 4, 6, 10, 10}, {2, 2, 2, 1}));
  Variable y4 = F::batch_normalization(x4, Variable(Array::ones({2})), Variable(Array::zeros({2})), 1e-12);
  // channel 0: values 0, 2, 4, 6 (mean 3, var 5); channel 1: constant -> 0.
  double r5 = 1 / std::sqrt(5.0);
  EXPECT_VALUES(values(y4), {-3 * r5, -1 * r5, 0, 0, 1 * r5, 3 * r5, 0, 0});
}

TEST(FixedBatchNormalization, GivenStatistics) {
  Variable x(Array::from<float>({1, 2, 3, 4}, {2, 2}));
  Variable y = F::fixed_batch_normalization(x, Variable(Array::from<float>({1, 2}, {2})),
                                            Variable(Array::from<float>({0, 1}, {2})),
                                            Variable(Array::from<float>({0, 1}, {2})),
                                            Variable(Array::from<float>({4, 1}, {2})), 1e-12);
  EXPECT_VALUES(values(y), {0.5, 3, 1.5, 7});
}

TEST(LayerNormalization, NormalizesEachRow) {
  Variable x(Array::from<float>({1, 3, 2, 2}, {2, 2}));
  Variable y = F::layer_normalization(x, Variable(Array::from<float>({1, 2}, {2})),
                                      Variable(Array::from<float>({0, 0.5f}, {2})));
  double s = 1 / std::sqrt(1 + 1e-5);
  EXPECT_VALUES(values(y), {-s, 2 * s + 0.5, 0, 0.5});
}

// ---- embeddings ---------------------------------------------------------------------

TEST(EmbedID, RowsAndAccumulatedGradient) {
  Variable W(Array::from<float>({0, 1, 2, 3, 4, 5}, {3, 2}));
  Variable ids(Array::from<int32_t>({2, 0, 2, 2}, {2, 2}));
  Variable y = F::embed_id(ids, W);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 2}));
  EXPECT_VALUES(values(y), {4, 5, 0, 1, 4, 5, 4, 5});
  y.set_grad(Array::ones({2, 2, 2}));
  y.backward();
  EXPECT_VALUES(grads(W), {1, 1, 0, 0, 3, 3});
  EXPECT_FALSE(ids.has_grad());
}

TEST(EmbedID, IgnoreLabelGivesZerosAndNoGradient) {
  Variable W(Array::from<float>({0, 1, 2, 3, 4, 5}, {3, 2}));
  Variable ids(Array::from<int32_t>({1, -1, 0}, {3}));
  Variable y = F::embed_id(ids, W, -1);
  EXPECT_VALUES(values(y), {2, 3, 0, 0, 0, 1});
  y.set_grad(Array::ones({3, 2}));
  y.backward();
  EXPECT_VALUES(grads(W), {1, 1, 1, 1, 0, 0});
  // An ignore_label that is a valid id.
  Variable y2 = F::embed_id(Variable(Array::from<int32_t>({1, 0}, {2})), W, 0);
  EXPECT_VALUES(values(y2), {2, 3, 0, 0});
}

// ---- links --------------------------------------------------------------------------

std::vector<std::string> names(const Link& l) {
  std::vector<std::string> out;
  for (auto& [n, p] : l.namedparams()) out.push_back(n);
  return out;
}

TEST(Links, Convolution2D) {
  L::Convolution2D conv(2, 3, 3, 1, 1);
  EXPECT_THAT(names(conv), ElementsAre("/W", "/b"));
  EXPECT_EQ(conv.W.shape(), (Shape{3, 2, 3, 3}));
  EXPECT_EQ(conv.b.shape(), Shape{3});
  Variable y = conv(Variable(Array::randn({2, 2, 5, 4}, 1)));
  EXPECT_EQ(y.shape(), (Shape{2, 3, 5, 4}));
  L::Convolution2D lazy(-1, 4, {2, 3}, 2, 0, true);
  EXPECT_THAT(names(lazy), ElementsAre("/W"));
  EXPECT_FALSE(lazy.W.is_initialized());
  EXPECT_EQ(lazy(Variable(Array::randn({1, 3, 6, 7}, 2))).shape(), (Shape{1, 4, 3, 3}));
  EXPECT_EQ(lazy.W.shape(), (Shape{4, 3, 2, 3}));
  L::Convolution2D short_form(5, 3);  // Chainer's Convolution2D(out_channels, ksize)
  EXPECT_EQ(short_form(Variable(Array::randn({1, 2, 4, 4}, 3))).shape(), (Shape{1, 5, 2, 2}));
  // Gradients reach W and b.
  Variable loss = F::sum(conv(Variable(Array::randn({1, 2, 3, 3}, 4))));
  loss.backward();
  EXPECT_EQ(conv.W.grad().shape(), (Shape{3, 2, 3, 3}));
  EXPECT_THAT(conv.b.grad().to_vector<double>(), Pointwise(Near(1e-4), std::vector<double>{9, 9, 9}));
}

TEST(Links, Convolution2DDilateGroups) {
  L::Convolution2D conv(4, 6, 3, 1, 2, false, nullptr, nullptr, 2, 2);
  EXPECT_EQ(conv.W.shape(), (Shape{6, 2, 3, 3}));  // (out_channels, in_channels / groups, kh, kw)
  EXPECT_EQ(conv(Variable(Array::randn({1, 4, 5, 5}, 1))).shape(), (Shape{1, 6, 5, 5}));
  L::Convolution2D lazy(-1, 4, 1, 1, 0, true, nullptr, nullptr, 1, 4);
  EXPECT_EQ(lazy(Variable(Array::randn({2, 8, 3, 3}, 2))).shape(), (Shape{2, 4, 3, 3}));
  EXPECT_EQ(lazy.W.shape(), (Shape{4, 2, 1, 1}));
}

TEST(Links, Deconvolution2DDilateGroups) {
  L::Deconvolution2D deconv(4, 6, 3, 2, 1, false, std::nullopt, nullptr, nullptr, 2, 2);
  EXPECT_EQ(deconv.W.shape(), (Shape{4, 3, 3, 3}));  // (in_channels, out_channels / groups, kh, kw)
  EXPECT_EQ(deconv.b.shape(), Shape{6});
  // 2 * (3 - 1) + 5 - 2 * 1
  EXPECT_EQ(deconv(Variable(Array::randn({1, 4, 3, 3}, 1))).shape(), (Shape{1, 6, 7, 7}));
}

TEST(Links, Deconvolution2D) {
  L::Deconvolution2D deconv(2, 3, 2, 2);
  EXPECT_THAT(names(deconv), ElementsAre("/W", "/b"));
  EXPECT_EQ(deconv.W.shape(), (Shape{2, 3, 2, 2}));
  EXPECT_EQ(deconv(Variable(Array::randn({1, 2, 3, 4}, 1))).shape(), (Shape{1, 3, 6, 8}));
  L::Deconvolution2D sized(-1, 1, 3, 2, 1, false, Pair{6, 6});
  EXPECT_EQ(sized(Variable(Array::randn({1, 2, 3, 3}, 2))).shape(), (Shape{1, 1, 6, 6}));
  EXPECT_EQ(sized.W.shape(), (Shape{2, 1, 3, 3}));
}

TEST(Links, BatchNormalizationRunningStatistics) {
  L::BatchNormalization bn(2);
  EXPECT_THAT(names(bn), ElementsAre("/gamma", "/beta"));
  std::vector<std::string> pers;
  for (auto& [n, v] : bn.namedpersistents()) pers.push_back(n);
  EXPECT_THAT(pers, ElementsAre("/avg_mean", "/avg_var", "/N"));
  EXPECT_VALUES(values(bn.avg_var), {1, 1});

  Variable x(Array::from<float>({1, 10, 3, 30, 5, 20}, {3, 2}));
  Variable y = bn(x);
  // Batch statistics: mean (3, 20), biased var (8/3, 200/3); unbiased (4, 100).
  EXPECT_NEAR(values(y)[0], -2 / std::sqrt(8.0 / 3 + 2e-5), 1e-4);
  EXPECT_VALUES(values(bn.avg_mean), {0.3, 2.0});
  EXPECT_THAT(values(bn.avg_var), Pointwise(Near(1e-4), std::vector<double>{0.9 + 0.4, 0.9 + 10}));
  bn(x);  // a second step decays again
  EXPECT_VALUES(values(bn.avg_mean), {0.3 * 0.9 + 0.3, 2.0 * 0.9 + 2.0});
  // The link's registered persistents are the same variables.
  EXPECT_VALUES(values(bn.namedpersistents()[0].second), {0.57, 3.8});

  // Gradients in train mode flow through the batch statistics to gamma, beta and x.
  bn.cleargrads();
  Variable xv(Array::from<float>({1, 10, 3, 30, 5, 20}, {3, 2}));
  Variable loss = F::sum(bn(xv) * Variable(Array::from<float>({1, 2, 3, 4, 5, 6}, {3, 2})));
  loss.backward();
  EXPECT_EQ(bn.gamma.grad().shape(), Shape{2});
  EXPECT_VALUES(bn.beta.grad().to_vector<double>(), {9, 12});

  // Test mode: the running statistics, unchanged by the call.
  auto guard = using_config("train", false);
  std::vector<double> mean = values(bn.avg_mean), var = values(bn.avg_var);
  Variable z = bn(Variable(Array::from<float>({1, 10}, {1, 2})));
  EXPECT_NEAR(values(z)[0], (1 - mean[0]) / std::sqrt(var[0] + 2e-5), 1e-5);
  EXPECT_NEAR(values(z)[1], (10 - mean[1]) / std::sqrt(var[1] + 2e-5), 1e-5);
  EXPECT_EQ(values(bn.avg_mean), mean);
}

TEST(Links, BatchNormalizationRunningStatisticsCarryNoGraph) {
  L::BatchNormalization bn(2);
  Variable p(Array::from<float>({1, 2, 3, 5}, {2, 2}));  // e.g. a parameter behind the input
  Variable y = bn(p * 2.0);
  y.array();  // realize the step, running statistics included
  auto guard = using_config("train", false);
  Variable loss = F::sum(bn(Variable(Array::from<float>({1, 2}, {1, 2}))));
  loss.backward();
  EXPECT_TRUE(bn.gamma.has_grad());
  EXPECT_FALSE(p.has_grad());  // the running mean/var are plain values, not p's graph
  EXPECT_FALSE(bn.avg_mean.has_grad());
}

TEST(Links, BatchNormalizationConvolutionalInput) {
  L::BatchNormalization bn(3, 0.5, 1e-5);
  Variable x(Array::randn({2, 3, 2, 2}, 9));
  Variable y = bn(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2, 2}));
  // Each channel of y has mean 0 over (N, H, W).
  std::vector<double> m = F::mean(y, std::vector<int64_t>{0, 2, 3}).array().to_vector<double>();
  EXPECT_THAT(m, Pointwise(Near(1e-5), std::vector<double>{0, 0, 0}));
}

TEST(Links, EmbedIDAndLayerNormalization) {
  L::EmbedID embed(5, 3, -1);
  EXPECT_THAT(names(embed), ElementsAre("/W"));
  EXPECT_EQ(embed.W.shape(), (Shape{5, 3}));
  Variable e = embed(Variable(Array::from<int32_t>({4, -1}, {2})));
  EXPECT_EQ(e.shape(), (Shape{2, 3}));
  std::vector<double> ev = values(e);
  EXPECT_THAT(std::vector<double>(ev.begin() + 3, ev.end()), ElementsAre(0, 0, 0));

  L::EmbedID chainer_order(3, 2, initializers::Constant(0.5), 0);
  EXPECT_VALUES(values(chainer_order(Variable(Array::from<int32_t>({0, 2}, {2})))), {0, 0, 0.5, 0.5});

  L::LayerNormalization ln(4);
  EXPECT_THAT(names(ln), ElementsAre("/gamma", "/beta"));
  Variable y = ln(Variable(Array::randn({3, 4}, 5)));
  std::vector<double> rows = F::mean(y, std::vector<int64_t>{1}).array().to_vector<double>();
  EXPECT_THAT(rows, Pointwise(Near(1e-5), std::vector<double>{0, 0, 0}));
}

}  // namespace
