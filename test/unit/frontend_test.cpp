// The traced frontend on the interpreter: Links, forward, backward, errors, the cache.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include "error_of.h"

using namespace kiln;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

Array x23() { return Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}); }

}  // namespace

TEST(Links, TutorialNumbers) {
  L::Linear f(3, 2);
  EXPECT_EQ(f.W.shape(), (Shape{2, 3}));
  EXPECT_EQ(f.b.shape(), (Shape{2}));
  EXPECT_THAT(f.b.array().to_vector<float>(), ElementsAre(0.f, 0.f));
  Variable x(x23());
  Variable y = f(x);
  // y = x W^T + b, checked against the parameters' own values.
  std::vector<float> W = f.W.array().to_vector<float>(), out = y.array().to_vector<float>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      float expect = 0;
      for (int k = 0; k < 3; ++k) expect += (1 + 3 * i + k) * W[j * 3 + k];
      EXPECT_NEAR(out[i * 2 + j], expect, 1e-5);
    }
  f.cleargrads();
  y.set_grad(Array::ones({2, 2}));
  y.backward();
  EXPECT_THAT(f.W.grad().to_vector<float>(), ElementsAre(5, 7, 9, 5, 7, 9));
  EXPECT_THAT(f.b.grad().to_vector<float>(), ElementsAre(2, 2));
}

TEST(Links, LazyLinearAndInitializer) {
  L::Linear g(2);
  EXPECT_FALSE(g.W.is_initialized());
  Variable y = g(Variable(x23()));
  EXPECT_EQ(g.W.shape(), (Shape{2, 3}));
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  // LeCunNormal: std = sqrt(1 / in_size).
  L::Linear big(400, 300);
  double var = 0;
  for (float w : big.W.array().to_vector<float>()) var += w * w;
  EXPECT_NEAR(var / (400 * 300), 1.0 / 400, 0.1 / 400);
}

TEST(Links, ChainNamesAndHandles) {
  struct MLP : Chain {
    L::Linear l1{4}, l2{3};
    MLP() { add_link("l1", l1); add_link("l2", l2); }
    Variable operator()(const Variable& x) const { return l2(F::relu(l1(x))); }
  };
  MLP m;
  MLP copy = m;  // handles: the copy shares parameters and stays wired
  copy(Variable(x23()));
  std::vector<std::string> names;
  for (auto& [name, p] : m.namedparams()) names.push_back(name);
  EXPECT_THAT(names, ElementsAre("/l1/W", "/l1/b", "/l2/W", "/l2/b"));
  EXPECT_TRUE(m.l1.W.is_initialized());
  EXPECT_EQ(m.namedparams()[0].second.shape(), (Shape{4, 3}));
}

TEST(Backward, ScalarSeedAccumulationAndClear) {
  Variable x(Array::from({1.f, 2.f, 3.f}, {3}));
  Variable y = F::sum(x * x);
  EXPECT_FLOAT_EQ(y.item<float>(), 14.f);
  y.backward();
  EXPECT_THAT(x.grad().to_vector<float>(), ElementsAre(2, 4, 6));
  Variable z = F::sum(x * 3.0);
  z.backward();  // grads accumulate like Chainer
  EXPECT_THAT(x.grad().to_vector<float>(), ElementsAre(5, 7, 9));
  x.cleargrad();
  EXPECT_FALSE(x.has_grad());
  EXPECT_THAT(error_of([&] { x.grad(); }), HasSubstr("has no gradient"));
}

TEST(Backward, NonScalarNeedsGrad) {
  Variable x(x23());
  Variable y = F::relu(x);
  EXPECT_THAT(error_of([&] { y.backward(); }), HasSubstr("set_grad"));
}

TEST(Backward, ThroughRealizedIntermediate) {
  // Printing h realizes it; the gradient must still flow through h to x.
  Variable x(Array::from({1.f, -2.f}, {2}));
  Variable h = x * x;
  EXPECT_THAT(h.array().to_vector<float>(), ElementsAre(1, 4));
  Variable y = F::sum(h * 2.0);
  y.backward();
  EXPECT_THAT(x.grad().to_vector<float>(), ElementsAre(4, -8));
}

TEST(Functions, ArithmeticBroadcastAndScalars) {
  Variable a(x23());
  Variable b(Array::from({10.f, 20.f, 30.f}, {3}));
  EXPECT_THAT((a + b).array().to_vector<float>(), ElementsAre(11, 22, 33, 14, 25, 36));
  EXPECT_THAT((a - b).array().to_vector<float>(), ElementsAre(-9, -18, -27, -6, -15, -24));
  EXPECT_THAT((a * 2.0f).array().to_vector<float>(), ElementsAre(2, 4, 6, 8, 10, 12));
  EXPECT_THAT((1.0 / a).array().to_vector<float>()[1], 0.5f);
  EXPECT_THAT((-a).array().to_vector<float>()[0], -1.f);
  Variable s = F::sum(a, std::vector<int64_t>{0});
  EXPECT_THAT(s.array().to_vector<float>(), ElementsAre(5, 7, 9));
  Variable sk = F::sum(a, std::vector<int64_t>{1}, true);
  EXPECT_EQ(sk.shape(), (Shape{2, 1}));
  EXPECT_THAT(sk.array().to_vector<float>(), ElementsAre(6, 15));
}

TEST(Functions, ShapeAndDtypeErrorsAtTheCall) {
  L::Linear f(3, 2);
  Variable x(Array::zeros({2, 4}));
  std::string msg = error_of([&] { f(x); });
  EXPECT_THAT(msg, HasSubstr("linear"));
  EXPECT_THAT(msg, HasSubstr("x.shape[1] == W.shape[1]"));
  EXPECT_THAT(msg, HasSubstr("4 != 3"));
  Variable a(Array::zeros({2, 3})), b(Array::zeros({4, 5}));
  EXPECT_THAT(error_of([&] { F::matmul(a, b); }), HasSubstr("3 != 4"));
  EXPECT_THAT(error_of([&] { a + Variable(Array::zeros({2, 4})); }), HasSubstr("(2, 3) and (2, 4)"));
  EXPECT_THAT(error_of([&] { a + Variable(Array::zeros({2, 3}, DType::f64)); }),
              HasSubstr("float32 != float64"));
  EXPECT_THAT(error_of([&] { F::relu(Variable(Array::from<int32_t>({1}, {1}))); }),
              HasSubstr("x.dtype.kind == 'f'"));
  EXPECT_THAT(error_of([&] { F::reshape(a, {7}); }), HasSubstr("reshape"));
  EXPECT_THAT(error_of([&] { F::sum(a, std::vector<int64_t>{2}); }), HasSubstr("axis = 2"));
}

TEST(Trace, OneGraphPerStepAndCacheHits) {
  reset_cache_stats();
  clear_memory_cache();
  L::Linear f(3, 2);
  for (int step = 0; step < 3; ++step) {
    f.cleargrads();
    Variable loss = F::sum(F::relu(f(Variable(x23()))));
    loss.backward();
    loss.array();  // loss, W.grad and b.grad come from one graph
    EXPECT_TRUE(f.W.has_grad());
  }
  CacheStats s = cache_stats();
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.memory_hits, 2);
}

TEST(Config, UsingConfigRestores) {
  EXPECT_TRUE(config().train);
  {
    auto guard = using_config("train", false);
    EXPECT_FALSE(config().train);
  }
  EXPECT_TRUE(config().train);
  EXPECT_THROW(using_config("nope", true), Error);
}

TEST(Backend, UnknownBackendIsAClearError) {
  setenv("KILN_BACKEND", "cuda", 1);
  clear_memory_cache();
  Variable x(Array::from({1.f}, {1}));
  std::string msg = error_of([&] { F::exp(x).array(); });
  unsetenv("KILN_BACKEND");
  EXPECT_THAT(msg, HasSubstr("KILN_BACKEND=cuda"));
}

TEST(Trace, ExplainCacheMisses) {
  clear_memory_cache();
  setenv("KILN_EXPLAIN_CACHE_MISSES", "1", 1);
  testing::internal::CaptureStderr();
  F::exp(Variable(Array::zeros({2, 3}))).array();
  F::exp(Variable(Array::zeros({2, 5}))).array();
  F::exp(Variable(Array::zeros({2, 5}))).array();  // a hit: nothing printed
  F::exp(Variable(Array::zeros({7, 5}))).array();  // another batch size: a hit too (cpu)
  std::string err = testing::internal::GetCapturedStderr();
  unsetenv("KILN_EXPLAIN_CACHE_MISSES");
  EXPECT_THAT(err, HasSubstr("no graph compiled yet"));
  if (backend_name() == "cpu")  // the batch size (leading dimension) is symbolic: "?"
    EXPECT_THAT(err, HasSubstr("argument 0: float32 (?, 5) here, float32 (?, 3) in the nearest cached graph"));
  else
    EXPECT_THAT(err, HasSubstr("argument 0: float32 (2, 5) here, float32 (2, 3) in the nearest cached graph"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), backend_name() == "cpu" ? 2 : 3);
}

TEST(Trace, RuntimeErrorsNameTheUsersLine) {
  // An id out of range is only seen when the graph runs; the error names this file and line.
  Variable W(Array::zeros({3, 2}));
  Variable ids(Array::from<int32_t>({0, 7}, {2}), false);
  int line = __LINE__ + 1;
  Variable y = F::embed_id(ids, W);
  std::string msg = error_of([&] { y.array(); });
  EXPECT_THAT(msg, HasSubstr(fmt::format("frontend_test.cpp:{}:", line)));
  EXPECT_THAT(msg, HasSubstr("embed_id: each value of `x` needs to satisfy `0 <= x < 3`, but x[1] = 7"));
}
