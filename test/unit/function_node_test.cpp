// kiln::FunctionNode: user-defined functions with their own backward, recorded as one
// kiln.custom op, on both backends (the interpreter and the compiled cpu backend).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cstdlib>
#include <string>

#include "error_of.h"

using namespace kiln;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Vs = std::vector<Variable>;

namespace {

Variable full_like(const Variable& x, double v) { return x * 0.0 + v; }

// Straight-through estimator: +-1 forward, gradient passed where |x| <= 1.
FunctionNode ste() {
  return {"ste",
          [](const Vs& in) {
            const Variable& x = in[0];
            return F::where(F::greater_equal(x, full_like(x, 0.0)), full_like(x, 1.0), full_like(x, -1.0));
          },
          [](const Vs& in, const Variable&, const Variable& gy) {
            const Variable& x = in[0];
            return Vs{F::where(F::less_equal(F::absolute(x), full_like(x, 1.0)), gy, full_like(gy, 0.0))};
          }};
}

// Identity forward, gradient clipped to [-bound, bound].
FunctionNode clip_grad(double bound) {
  return {"clip_grad", [](const Vs& in) { return F::identity(in[0]); },
          [bound](const Vs&, const Variable&, const Variable& gy) { return Vs{F::clip(gy, -bound, bound)}; }};
}

// x^3 with its true derivative as the backward.
FunctionNode cube(double backward_factor = 3.0) {
  return {"cube", [](const Vs& in) { return in[0] * in[0] * in[0]; },
          [backward_factor](const Vs& in, const Variable&, const Variable& gy) {
            return Vs{backward_factor * in[0] * in[0] * gy};
          }};
}

std::vector<double> values(const Array& a) {
  std::vector<double> v;
  for (int64_t i = 0; i < a.size(); ++i) v.push_back(a.at(i));
  return v;
}

::testing::Matcher<std::vector<double>> near(std::vector<double> expected, double tol = 1e-6) {
  std::vector<::testing::Matcher<double>> m;
  for (double e : expected) m.push_back(DoubleNear(e, tol));
  return ElementsAreArray(m);
}

Variable xs() { return Variable(Array::from({-2.f, -0.5f, 0.f, 0.3f, 1.5f}, {5})); }
Variable ws() { return Variable(Array::from({1.f, 2.f, 3.f, 4.f, 5.f}, {5}), false); }

class FunctionNodeTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const char* old = std::getenv("KILN_BACKEND");
    had_ = old != nullptr;
    if (had_) saved_ = old;
    setenv("KILN_BACKEND", GetParam(), 1);
    clear_memory_cache();
  }
  void TearDown() override {
    if (had_) setenv("KILN_BACKEND", saved_.c_str(), 1);
    else unsetenv("KILN_BACKEND");
    clear_memory_cache();
  }
  bool had_ = false;
  std::string saved_;
};

TEST_P(FunctionNodeTest, StraightThroughEstimator) {
  Variable x = xs(), w = ws();
  Variable y = ste()({x});
  Variable loss = F::sum(y * w);
  loss.backward();
  EXPECT_THAT(values(y.array()), ElementsAre(-1, -1, 1, 1, 1));
  // The true gradient of a step is 0; the STE passes w where |x| <= 1.
  EXPECT_THAT(values(x.grad()), near({0, 2, 3, 4, 0}));
  EXPECT_DOUBLE_EQ(loss.item<float>(), -1 - 2 + 3 + 4 + 5);
}

TEST_P(FunctionNodeTest, GradientClippingIdentity) {
  Variable x = xs();
  Variable z = clip_grad(1.0)({x});
  Variable loss = F::sum(F::square(z));  // dz = 2z = [-4, -1, 0, 0.6, 3]
  loss.backward();
  EXPECT_THAT(values(z.array()), near({-2, -0.5, 0, 0.3, 1.5}));
  EXPECT_THAT(values(x.grad()), near({-1, -1, 0, 0.6, 1}));
}

TEST_P(FunctionNodeTest, DifferentBackwardsAreDifferentGraphs) {
  // Same forward and shapes, different backward: the cache key tells them apart.
  for (double bound : {1.0, 0.5, 2.0}) {
    Variable x = xs();
    Variable loss = F::sum(F::square(clip_grad(bound)({x})));
    loss.backward();
    std::vector<double> expected;
    for (double g : {-4.0, -1.0, 0.0, 0.6, 3.0}) expected.push_back(std::max(-bound, std::min(bound, g)));
    EXPECT_THAT(values(x.grad()), near(expected)) << "bound " << bound;
  }
}

TEST_P(FunctionNodeTest, SameFunctionAgainIsACacheHit) {
  // The key of a graph with a custom op holds its forward's and backward's keys:
  // each step records new nodes of the same structure, found without a compile.
  reset_cache_stats();
  for (int step = 0; step < 3; ++step) {
    Variable x = xs();
    Variable y = cube()({x});
    F::sum(y).backward();
    EXPECT_THAT(values(y.array()), near({-8, -0.125, 0, 0.027, 3.375}, 1e-5)) << "step " << step;
    EXPECT_THAT(values(x.grad()), near({12, 0.75, 0, 0.27, 6.75}, 1e-5)) << "step " << step;
    CacheStats s = cache_stats();
    EXPECT_EQ(s.misses + s.disk_hits, 1) << "step " << step;
    EXPECT_EQ(s.memory_hits, step) << "step " << step;
  }
}

TEST_P(FunctionNodeTest, UsedTwiceInOneGraph) {
  Variable x = xs(), w = ws();
  FunctionNode f = ste();
  Variable a = f({x});
  Variable b = f({x * 0.25});  // every |x/4| <= 1: gradient 0.25 everywhere
  Variable loss = F::sum(a * w) + F::sum(b);
  loss.backward();
  EXPECT_THAT(values(a.array()), ElementsAre(-1, -1, 1, 1, 1));
  EXPECT_THAT(values(b.array()), ElementsAre(-1, -1, 1, 1, 1));
  EXPECT_THAT(values(x.grad()), near({0.25, 2.25, 3.25, 4.25, 0.25}));
}

TEST_P(FunctionNodeTest, TwoInputs) {
  // a * b whose backward scales a's gradient by 2 and gives b the true one:
  // checks that gradients go to the right inputs.
  FunctionNode f{"mul2", [](const Vs& in) { return in[0] * in[1]; },
                 [](const Vs& in, const Variable&, const Variable& gy) {
                   return Vs{2.0 * gy * in[1], gy * in[0]};
                 }};
  Variable a(Array::from({1.f, 2.f, 3.f}, {3})), b(Array::from({4.f, 5.f, 6.f}, {3}));
  Variable y = f({a, b});
  F::sum(y).backward();
  EXPECT_THAT(values(y.array()), near({4, 10, 18}));
  EXPECT_THAT(values(a.grad()), near({8, 10, 12}));
  EXPECT_THAT(values(b.grad()), near({1, 2, 3}));
}

TEST_P(FunctionNodeTest, NullGradientIsZero) {
  // A stop-gradient on the second input: backward gives it none.
  FunctionNode f{"mul_stop", [](const Vs& in) { return in[0] * in[1]; },
                 [](const Vs& in, const Variable&, const Variable& gy) { return Vs{gy * in[1], Variable()}; }};
  Variable a(Array::from({1.f, 2.f, 3.f}, {3})), b(Array::from({4.f, 5.f, 6.f}, {3}));
  Variable loss = F::sum(f({a, b}));
  loss.backward();
  EXPECT_THAT(values(a.grad()), near({4, 5, 6}));
  EXPECT_THAT(values(b.grad()), near({0, 0, 0}));
}

TEST_P(FunctionNodeTest, IntegerInputGetsNoGradient) {
  FunctionNode f{"scale",
                 [](const Vs& in) { return in[0] * F::cast(in[1], DType::f32); },
                 [](const Vs& in, const Variable&, const Variable& gy) {
                   return Vs{gy * F::cast(in[1], DType::f32), Variable()};
                 }};
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable k(Array::from({3, -1}, {2}), false);
  Variable y = f({x, k});
  F::sum(y).backward();
  EXPECT_THAT(values(y.array()), near({3, -2}));
  EXPECT_THAT(values(x.grad()), near({3, -1}));
}

TEST_P(FunctionNodeTest, BackwardUsesTheOutput) {
  FunctionNode my_exp{"my_exp", [](const Vs& in) { return F::exp(in[0]); },
                      [](const Vs&, const Variable& y, const Variable& gy) { return Vs{gy * y}; }};
  Variable x(Array::from({0.f, 1.f}, {2}));
  F::sum(my_exp({x})).backward();
  EXPECT_THAT(values(x.grad()), near({1.0, std::exp(1.0)}, 1e-5));
}

TEST_P(FunctionNodeTest, NestedCustomFunction) {
  // A custom function whose forward calls another one; the outer backward is used.
  FunctionNode inner = cube();
  FunctionNode outer{"outer", [&](const Vs& in) { return inner({in[0]}) + in[0]; },
                     [](const Vs&, const Variable&, const Variable& gy) { return Vs{gy * 10.0}; }};
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable y = outer({x});
  F::sum(y).backward();
  EXPECT_THAT(values(y.array()), near({2, 10}));
  EXPECT_THAT(values(x.grad()), near({10, 10}));
}

TEST_P(FunctionNodeTest, GradientCheckOfTrueDerivative) {
  FunctionNode f = cube();
  EXPECT_NO_THROW(gradient_check::check_backward([&](const Vs& in) { return Vs{f({in[0]})}; },
                                                 {Array::randn({2, 3}, 7, DType::f64)}, {}));
  FunctionNode my_exp{"my_exp", [](const Vs& in) { return F::exp(in[0]); },
                      [](const Vs&, const Variable& y, const Variable& gy) { return Vs{gy * y}; }};
  EXPECT_NO_THROW(gradient_check::check_backward([&](const Vs& in) { return Vs{my_exp({in[0]})}; },
                                                 {Array::randn({4}, 8, DType::f64)}, {}));
  // A wrong backward is caught: the user's backward really is the one used.
  FunctionNode wrong = cube(2.0);
  EXPECT_THROW(gradient_check::check_backward([&](const Vs& in) { return Vs{wrong({in[0]})}; },
                                              {Array::randn({2, 3}, 7, DType::f64)}, {}),
               Error);
}

TEST_P(FunctionNodeTest, WithoutBackwardIsPlainAutodiff) {
  FunctionNode square{"square", [](const Vs& in) { return in[0] * in[0]; }};
  Variable x(Array::from({1.f, -3.f}, {2}));
  F::sum(square({x})).backward();
  EXPECT_THAT(values(x.grad()), near({2, -6}));
}

INSTANTIATE_TEST_SUITE_P(Backends, FunctionNodeTest, ::testing::Values("interp", "cpu"),
                         [](const ::testing::TestParamInfo<const char*>& info) { return std::string(info.param); });

TEST(FunctionNodeErrors, CapturedVariable) {
  Variable w(Array::from({1.f, 2.f}, {2}));
  FunctionNode f{"scale_by_w", [&](const Vs& in) { return in[0] * w; },
                 [&](const Vs&, const Variable&, const Variable& gy) { return Vs{gy * w}; }};
  Variable x(Array::from({1.f, 1.f}, {2}));
  std::string e = error_of([&] { f({x}); });
  EXPECT_THAT(e, HasSubstr("FunctionNode 'scale_by_w'"));
  EXPECT_THAT(e, HasSubstr("may only use its inputs"));
  // Passing the parameter as an input works.
  FunctionNode g{"scale", [](const Vs& in) { return in[0] * in[1]; },
                 [](const Vs& in, const Variable&, const Variable& gy) { return Vs{gy * in[1], gy * in[0]}; }};
  Variable y = g({x, w});
  F::sum(y).backward();
  EXPECT_THAT(values(w.grad()), near({1, 1}));
}

TEST(FunctionNodeErrors, CapturedPendingVariable) {
  Variable w(Array::from({1.f, 2.f}, {2}));
  Variable w2 = w * 2.0;  // pending, computed from a leaf
  FunctionNode f{"uses_w2", [&](const Vs& in) { return in[0] + w2; },
                 [](const Vs&, const Variable&, const Variable& gy) { return Vs{gy}; }};
  Variable x(Array::from({1.f, 1.f}, {2}));
  EXPECT_THAT(error_of([&] { f({x}); }), HasSubstr("may only use its inputs"));
}

TEST(FunctionNodeErrors, WrongGradientShapeOrCount) {
  Variable x(Array::from({1.f, 2.f, 3.f}, {3}));
  FunctionNode bad_shape{"bad_shape", [](const Vs& in) { return in[0] * 2.0; },
                         [](const Vs&, const Variable&, const Variable& gy) { return Vs{F::sum(gy)}; }};
  std::string e = error_of([&] { bad_shape({x}); });
  EXPECT_THAT(e, HasSubstr("FunctionNode 'bad_shape'"));
  EXPECT_THAT(e, HasSubstr("gradient 0 has shape ()"));
  FunctionNode bad_dtype{"bad_dtype", [](const Vs& in) { return in[0] * 2.0; },
                         [](const Vs&, const Variable&, const Variable& gy) {
                           return Vs{F::cast(gy, DType::f64)};
                         }};
  EXPECT_THAT(error_of([&] { bad_dtype({x}); }), HasSubstr("dtype float64"));
  FunctionNode bad_count{"bad_count", [](const Vs& in) { return in[0] * 2.0; },
                         [](const Vs&, const Variable&, const Variable&) { return Vs{}; }};
  EXPECT_THAT(error_of([&] { bad_count({x}); }), HasSubstr("backward returned 0 gradients for 1 inputs"));
}

TEST(FunctionNodeErrors, ReadingValuesInsideTheFunction) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  FunctionNode f{"reads", [](const Vs& in) {
                   (void)in[0].array();
                   return in[0];
                 },
                 [](const Vs&, const Variable&, const Variable& gy) { return Vs{gy}; }};
  EXPECT_THAT(error_of([&] { f({x}); }), HasSubstr("FunctionNode 'reads'"));
  // The trace still works afterwards.
  EXPECT_THAT(values((x * 3.0).array()), near({3, 6}));
}

TEST(FunctionNodeErrors, LeakedPlaceholder) {
  Variable x(Array::from({1.f, 2.f}, {2}));
  {
    Variable leaked;
    FunctionNode f{"leaks", [&](const Vs& in) {
                     leaked = in[0] * 2.0;
                     return in[0];
                   },
                   [](const Vs&, const Variable&, const Variable& gy) { return Vs{gy}; }};
    Variable y = f({x});
    EXPECT_THAT(error_of([&] { (void)leaked.array(); }), HasSubstr("used outside the function"));
  }
  EXPECT_THAT(values((x * 3.0).array()), near({3, 6}));
}

TEST(FunctionNodeErrors, NoForward) {
  FunctionNode f{"empty", nullptr};
  Variable x(Array::from({1.f}, {1}));
  EXPECT_THAT(error_of([&] { f({x}); }), HasSubstr("has no forward"));
}

}  // namespace
