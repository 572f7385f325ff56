// More of chainer.functions (functions_extra*.cpp): hand-computed values on the interpreter and
// the CPU backend, gradient checks of the compositions, and kiln::Error at the call for bad input.
// The Chainer goldens (test/goldens/functions_extra.json) check the rest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/gradient_check.h>
#include <kiln/kiln.h>

#include <cmath>

#include "on_backend.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected kiln::Error";
  return "";
}

Variable f32(Shape s) { return Variable(Array::zeros(std::move(s))); }
Variable i32(Shape s) { return Variable(Array::zeros(std::move(s), DType::i32)); }

void expect_values(const Variable& v, const Shape& shape, const std::vector<double>& expected, double tol = 1e-5) {
  Array a = v.array();
  ASSERT_EQ(a.shape(), shape);
  ASSERT_EQ(a.size(), static_cast<int64_t>(expected.size()));
  for (int64_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a.at(i), expected[i], tol * (1 + std::fabs(expected[i]))) << i;
}

class FunctionsExtra : public OnBackend {};

TEST_P(FunctionsExtra, TrigonometricAndRounding) {
  Variable x(Array::from({-1.5f, -0.5f, 0.25f, 2.0f}, {4}));
  expect_values(F::sin(x), {4}, {std::sin(-1.5), std::sin(-0.5), std::sin(0.25), std::sin(2.0)});
  expect_values(F::arctan2(x, F::cos(x)), {4},
                {std::atan2(-1.5, std::cos(-1.5)), std::atan2(-0.5, std::cos(-0.5)), std::atan2(0.25, std::cos(0.25)),
                 std::atan2(2.0, std::cos(2.0))});
  expect_values(F::floor(x), {4}, {-2, -1, 0, 2});
  expect_values(F::ceil(x), {4}, {-1, 0, 1, 2});
  expect_values(F::fix(x), {4}, {-1, 0, 0, 2});
  expect_values(F::sinh(x), {4}, {std::sinh(-1.5), std::sinh(-0.5), std::sinh(0.25), std::sinh(2.0)});
  expect_values(F::log2(F::absolute(x)), {4}, {std::log2(1.5), -1, -2, 1});
}

TEST_P(FunctionsExtra, ScansAndProducts) {
  Variable x(Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}));
  expect_values(F::cumsum(x, 1), {2, 3}, {1, 3, 6, 4, 9, 15});
  expect_values(F::cumsum(x), {6}, {1, 3, 6, 10, 15, 21});
  expect_values(F::cumprod(x, 0), {2, 3}, {1, 2, 3, 4, 10, 18});
  expect_values(F::prod(x), {}, {720});
  expect_values(F::prod(x, std::vector<int64_t>{1}, true), {2, 1}, {6, 120});
}

TEST_P(FunctionsExtra, StackTileRepeat) {
  Variable a(Array::from({1.f, 2.f}, {2})), b(Array::from({3.f, 4.f}, {2}));
  expect_values(F::hstack({a, b}), {4}, {1, 2, 3, 4});
  expect_values(F::vstack({a, b}), {2, 2}, {1, 2, 3, 4});
  expect_values(F::dstack({a, b}), {1, 2, 2}, {1, 3, 2, 4});
  expect_values(F::tile(a, {2, 2}), {2, 4}, {1, 2, 1, 2, 1, 2, 1, 2});
  expect_values(F::repeat(a, {2}), {4}, {1, 1, 2, 2});
  expect_values(F::repeat(F::stack({a, b}), {0, 2}, 0), {2, 2}, {3, 4, 3, 4});
  Variable m(Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}));
  expect_values(F::flip(m, 1), {2, 3}, {3, 2, 1, 6, 5, 4});
  expect_values(F::moveaxis(m, {0}, {1}), {3, 2}, {1, 4, 2, 5, 3, 6});
  expect_values(F::diagonal(m, 1), {2}, {2, 6});
}

TEST_P(FunctionsExtra, PadModes) {
  Variable x(Array::from({1.f, 2.f, 3.f}, {3}));
  expect_values(F::pad(x, {{2, 2}}, "reflect"), {7}, {3, 2, 1, 2, 3, 2, 1});
  expect_values(F::pad(x, {{2, 2}}, "symmetric"), {7}, {2, 1, 1, 2, 3, 3, 2});
  expect_values(F::pad(x, {{2, 1}}, "edge"), {6}, {1, 1, 1, 2, 3, 3});
  expect_values(F::pad(x, {{1, 2}}, "wrap"), {6}, {3, 1, 2, 3, 1, 2});
  expect_values(F::pad(x, {{1, 0}}, "constant", 7.0), {4}, {7, 1, 2, 3});
  // As in Chainer, the border passes no gradient: x's gradient is gy cropped.
  Variable y = F::pad(x, {{1, 1}}, "edge");
  y.set_grad(Array::from({1.f, 2.f, 3.f, 4.f, 5.f}, {5}));
  y.backward();
  expect_values(Variable(x.grad()), {3}, {2, 3, 4});
}

TEST_P(FunctionsExtra, EinsumAndTensordot) {
  Variable a(Array::from({1.f, 2.f, 3.f, 4.f}, {2, 2})), b(Array::from({5.f, 6.f, 7.f, 8.f}, {2, 2}));
  expect_values(F::einsum("ij,jk->ik", {a, b}), {2, 2}, {19, 22, 43, 50});
  expect_values(F::einsum("ii->i", {a}), {2}, {1, 4});
  expect_values(F::einsum("ii", {a}), {}, {5});
  expect_values(F::einsum("ij,ij->", {a, b}), {}, {70});
  expect_values(F::einsum("...j,j->...", {a, F::get_item(b, {0})}), {2}, {17, 39});
  expect_values(F::tensordot(a, b, 1), {2, 2}, {19, 22, 43, 50});
  expect_values(F::tensordot(a, b), {}, {70});
}

TEST_P(FunctionsExtra, UnpoolingAndUpsampling) {
  Variable x(Array::from({1.f, 2.f, 3.f, 4.f}, {1, 1, 2, 2}));
  // Each value fills its 2x2 window.
  expect_values(F::unpooling_2d(x, 2, std::nullopt, 0, std::nullopt, false), {1, 1, 4, 4},
                {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  Variable idx(Array::from<int32_t>({0, 3, 1, 2}, {1, 1, 2, 2}), false);
  expect_values(F::upsampling_2d(x, idx, 2, std::nullopt, 0, std::nullopt, false), {1, 1, 4, 4},
                {1, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 4, 0});
}

TEST_P(FunctionsExtra, GradientsOfCompositions) {
  using gradient_check::check_backward;
  Array x = Array::randn({2, 6, 2, 2}, 1).astype(DType::f64);
  Array g = Array::randn({6}, 2).astype(DType::f64);
  Array b = Array::randn({6}, 3).astype(DType::f64);
  EXPECT_NO_THROW(check_backward([](const std::vector<Variable>& v) {
    return std::vector<Variable>{F::group_normalization(v[0], 3, v[1], v[2])};
  }, {x, g, b}, {}));
  EXPECT_NO_THROW(check_backward([](const std::vector<Variable>& v) {
    return std::vector<Variable>{F::local_response_normalization(v[0], 3, 1.0, 0.5, 0.6)};
  }, {x}, {}));
  Array p = Array::randn({3, 4}, 4).astype(DType::f64);
  EXPECT_NO_THROW(check_backward([](const std::vector<Variable>& v) {
    return std::vector<Variable>{F::prod(v[0], std::vector<int64_t>{1}), F::cumprod(v[0], 0), F::sin(v[0])};
  }, {p}, {}));
  Array q = Array::randn({4, 3}, 5).astype(DType::f64);
  EXPECT_NO_THROW(check_backward([](const std::vector<Variable>& v) {
    return std::vector<Variable>{F::einsum("ij,jk,kl->il", {v[0], v[1], v[0]})};
  }, {p, q}, {}));
}

INSTANTIATE_TEST_SUITE_P(Backends, FunctionsExtra, ::testing::Values("interp", "cpu"),
                         [](const auto& info) { return std::string(info.param); });

TEST(FunctionsExtraErrors, DtypesAndShapes) {
  EXPECT_THAT(error_of([] { F::sin(i32({2})); }), HasSubstr("x.dtype.kind == 'f'"));
  EXPECT_THAT(error_of([] { F::squared_error(f32({2, 3}), f32({3, 2})); }),
              HasSubstr("Expect: x0.shape == x1.shape\nActual: (2, 3) != (3, 2)"));
  EXPECT_THAT(error_of([] { F::hinge(f32({2, 3}), f32({2})); }), HasSubstr("t.dtype.kind == 'i'"));
  EXPECT_THAT(error_of([] { F::hinge(f32({2, 3}), i32({2}), "L3"); }), HasSubstr("norm must be 'L1' or 'L2'"));
  EXPECT_THAT(error_of([] { F::contrastive(f32({2, 3}), f32({2, 3}), i32({3})); }),
              HasSubstr("x1.shape[0] == y.shape[0]"));
  EXPECT_THAT(error_of([] { F::gaussian_kl_divergence(f32({2}), f32({2}), "max"); }),
              HasSubstr("only 'sum', 'mean' and 'no' are valid for 'reduce', but 'max' is given"));
  EXPECT_THAT(error_of([] { F::tensordot(f32({2, 3}), f32({4, 5}), 1); }),
              HasSubstr("Expect: a.shape[1] == b.shape[0]\nActual: 3 != 4"));
}

TEST(FunctionsExtraErrors, Attributes) {
  EXPECT_THAT(error_of([] { F::maxout(f32({2, 5}), 2); }), HasSubstr("Expect: x.shape[1] % pool_size == 0\nActual: 5 % 2 != 0"));
  EXPECT_THAT(error_of([] { F::group_normalization(f32({2, 6, 3}), 4, f32({6}), f32({6})); }),
              HasSubstr("the number of channels (6) must be divisible by groups (4)"));
  EXPECT_THAT(error_of([] { F::repeat(f32({3}), {1, 2}, 0); }),
              HasSubstr("Expect: len(repeats) == 1 or x.shape[axis] = 3\nActual: len(repeats) = 2"));
  EXPECT_THAT(error_of([] { F::moveaxis(f32({2, 3}), {0, 0}, {0, 1}); }), HasSubstr("no repeated axis in source"));
  EXPECT_THAT(error_of([] { F::flip(f32({2, 3}), 2); }), HasSubstr("Flip"));
  EXPECT_THAT(error_of([] { F::pad(f32({2}), {{1, 1}}, "mirror"); }), HasSubstr("but 'mirror' is given"));
  EXPECT_THAT(error_of([] { F::einsum("ij,jk->ik", {f32({2, 3})}); }), HasSubstr("name 2 operands, 1 are given"));
  EXPECT_THAT(error_of([] { F::einsum("ij->i", {f32({2, 3, 4})}); }), HasSubstr("operand 0 has 3 dimensions"));
  EXPECT_THAT(error_of([] { F::einsum("ij,jk->ik", {f32({2, 3}), f32({4, 2})}); }), HasSubstr("label 'j' has size 4"));
  EXPECT_THAT(error_of([] { F::depthwise_convolution_2d(f32({1, 3, 4, 4}), f32({2, 2, 3, 3})); }),
              HasSubstr("Expect: x.shape[1] == W.shape[1]\nActual: 3 != 2"));
  EXPECT_THAT(error_of([] { F::unpooling_2d(f32({1, 1, 3, 3}), 2, std::nullopt, 0, Pair(7, 6)); }),
              HasSubstr("x.shape[2:] == get_conv_outsize(outsize, ksize, stride, pad, cover_all)"));
  EXPECT_THAT(error_of([] { F::resize_images(f32({1, 1, 3, 3}), Pair(2, 2), "bicubic"); }),
              HasSubstr("mode must be 'bilinear' or 'nearest'"));
  EXPECT_THAT(error_of([] { F::connectionist_temporal_classification({f32({2, 4}), f32({2, 4})}, i32({2, 1}), 4); }),
              HasSubstr("Expect: 0 <= blank_symbol < x[0].shape[1] = 4\nActual: blank_symbol = 4"));
  EXPECT_THAT(error_of([] { F::connectionist_temporal_classification({f32({2, 4})}, i32({3, 1}), 0); }),
              HasSubstr("t.shape[0] == x[0].shape[0]"));
  EXPECT_THAT(error_of([] { F::average(f32({2, 3}), std::vector<int64_t>{1}, f32({2})); }),
              HasSubstr("weights.shape == (x.shape[1],) = (3,)"));
}

}  // namespace
