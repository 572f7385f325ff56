// Optimizers and optimizer hooks: hand-computed single steps, traced updates
// hitting the graph cache, and Chainer's training trajectories (training.json).
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

using namespace kiln;
namespace O = kiln::optimizers;
namespace H = kiln::optimizer_hooks;

namespace {

// A link with one parameter "/W" (and optionally a second one "/b").
struct OneParam : Link {
  Parameter W, b;
  explicit OneParam(const std::vector<double>& w, const std::vector<double>& bv = {},
                    DType dtype = DType::f32) {
    W = Parameter(Array::from(w).astype(dtype));
    add_param("W", W);
    if (!bv.empty()) {
      b = Parameter(Array::from(bv).astype(dtype));
      add_param("b", b);
    }
  }
};

void set_grad(Parameter& p, const std::vector<double>& g) {
  p.set_grad(Array::from(g).astype(p.dtype()));
}

void expect_near(const Array& a, const std::vector<double>& expected, double tol = 1e-5) {
  std::vector<double> v = a.to_vector<double>();
  ASSERT_EQ(v.size(), expected.size());
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_NEAR(v[i], expected[i], tol * (1 + std::fabs(expected[i]))) << "element " << i;
}

const std::vector<double> kP = {1.0, -2.0, 3.0, 0.0};
const std::vector<double> kG = {0.5, -1.0, 2.0, 0.25};

}  // namespace

TEST(Optimizers, SGDStep) {
  OneParam m(kP);
  O::SGD opt(0.1);
  opt.setup(m);
  set_grad(m.W, kG);
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i) e.push_back(kP[i] - 0.1 * kG[i]);
  expect_near(m.W.array(), e);
  EXPECT_EQ(opt.t, 1);
  EXPECT_EQ(m.W.dtype(), DType::f32);
  // The gradient is kept after the update, like Chainer.
  expect_near(m.W.grad(), kG);
}

TEST(Optimizers, DefaultHyperparameters) {
  EXPECT_DOUBLE_EQ(O::SGD().hyperparam.lr, 0.01);
  O::MomentumSGD ms;
  EXPECT_DOUBLE_EQ(ms.hyperparam.lr, 0.01);
  EXPECT_DOUBLE_EQ(ms.hyperparam.momentum, 0.9);
  O::AdaGrad ag;
  EXPECT_DOUBLE_EQ(ag.hyperparam.lr, 0.001);
  EXPECT_DOUBLE_EQ(ag.hyperparam.eps, 1e-8);
  O::RMSprop rp;
  EXPECT_DOUBLE_EQ(rp.hyperparam.lr, 0.01);
  EXPECT_DOUBLE_EQ(rp.hyperparam.alpha, 0.99);
  O::Adam ad;
  EXPECT_DOUBLE_EQ(ad.hyperparam.alpha, 0.001);
  EXPECT_DOUBLE_EQ(ad.hyperparam.beta1, 0.9);
  EXPECT_DOUBLE_EQ(ad.hyperparam.beta2, 0.999);
  EXPECT_DOUBLE_EQ(ad.hyperparam.eps, 1e-8);
  EXPECT_DOUBLE_EQ(ad.hyperparam.eta, 1.0);
  EXPECT_DOUBLE_EQ(ad.hyperparam.weight_decay_rate, 0.0);
  EXPECT_FALSE(ad.hyperparam.amsgrad);
  ad.set_hyperparam("alpha", 0.5);
  EXPECT_DOUBLE_EQ(ad.get_hyperparam("alpha"), 0.5);
  EXPECT_THROW(ad.get_hyperparam("nope"), Error);
}

TEST(Optimizers, MomentumSGDTwoSteps) {
  OneParam m(kP);
  O::MomentumSGD opt(0.1, 0.9);
  opt.setup(m);
  std::vector<double> p = kP, v(kP.size(), 0.0);
  for (int step = 0; step < 2; ++step) {
    set_grad(m.W, kG);
    opt.update();
    for (size_t i = 0; i < p.size(); ++i) {
      v[i] = 0.9 * v[i] - 0.1 * kG[i];
      p[i] += v[i];
    }
  }
  expect_near(m.W.array(), p);
  O::UpdateRule& rule = opt.update_rule(m.W);
  EXPECT_EQ(rule.t, 2);
  expect_near(rule.state.at("v").array(), v);
  EXPECT_EQ(rule.state.at("v").dtype(), DType::f32);
}

TEST(Optimizers, NesterovAGStep) {
  OneParam m(kP);
  O::NesterovAG opt(0.1, 0.8);
  opt.setup(m);
  std::vector<double> p = kP, v(kP.size(), 0.0);
  for (int step = 0; step < 2; ++step) {
    set_grad(m.W, kG);
    opt.update();
    for (size_t i = 0; i < p.size(); ++i) {
      v[i] = 0.8 * v[i] - 0.1 * kG[i];
      p[i] += 0.8 * 0.8 * v[i] - 1.8 * 0.1 * kG[i];
    }
  }
  expect_near(m.W.array(), p);
}

TEST(Optimizers, AdaGradStep) {
  OneParam m(kP);
  O::AdaGrad opt(0.1);
  opt.setup(m);
  std::vector<double> p = kP, h(kP.size(), 0.0);
  for (int step = 0; step < 2; ++step) {
    set_grad(m.W, kG);
    opt.update();
    for (size_t i = 0; i < p.size(); ++i) {
      h[i] += kG[i] * kG[i];
      p[i] -= 0.1 * kG[i] / (std::sqrt(h[i]) + 1e-8);
    }
  }
  expect_near(m.W.array(), p);
  expect_near(opt.update_rule(m.W).state.at("h").array(), h);
}

TEST(Optimizers, RMSpropStep) {
  OneParam m(kP);
  O::RMSprop opt(0.05, 0.9, 1e-6);
  opt.setup(m);
  std::vector<double> p = kP, ms(kP.size(), 0.0);
  for (int step = 0; step < 2; ++step) {
    set_grad(m.W, kG);
    opt.update();
    for (size_t i = 0; i < p.size(); ++i) {
      ms[i] = 0.9 * ms[i] + 0.1 * kG[i] * kG[i];
      p[i] -= 0.05 * kG[i] / (std::sqrt(ms[i]) + 1e-6);
    }
  }
  expect_near(m.W.array(), p);
}

namespace {
// Reference Adam in double.
void adam_ref(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v,
              std::vector<double>& vhat, const std::vector<double>& g, int t, double alpha,
              double b1, double b2, double eps, double eta, double wd, bool amsgrad) {
  double at = alpha * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
  for (size_t i = 0; i < p.size(); ++i) {
    m[i] += (1 - b1) * (g[i] - m[i]);
    v[i] += (1 - b2) * (g[i] * g[i] - v[i]);
    vhat[i] = amsgrad ? std::max(vhat[i], v[i]) : v[i];
    p[i] -= eta * (at * m[i] / (std::sqrt(vhat[i]) + eps) + wd * p[i]);
  }
}
}  // namespace

TEST(Optimizers, AdamThreeSteps) {
  OneParam m(kP);
  O::Adam opt(0.01, 0.8, 0.99, 1e-8, 0.5, 0.01);
  opt.setup(m);
  std::vector<double> p = kP, mm(4, 0), vv(4, 0), vh(4, 0);
  for (int t = 1; t <= 3; ++t) {
    std::vector<double> g = kG;
    for (double& x : g) x *= t;  // changing gradients
    set_grad(m.W, g);
    opt.update();
    adam_ref(p, mm, vv, vh, g, t, 0.01, 0.8, 0.99, 1e-8, 0.5, 0.01, false);
  }
  expect_near(m.W.array(), p);
  O::UpdateRule& rule = opt.update_rule(m.W);
  expect_near(rule.state.at("m").array(), mm);
  expect_near(rule.state.at("v").array(), vv);
  EXPECT_EQ(rule.state.count("vhat"), 0u);
  EXPECT_NEAR(opt.lr(), O::Adam::alpha_t(opt.hyperparam, 3), 1e-15);
}

TEST(Optimizers, AdamAmsgrad) {
  OneParam m(kP);
  O::Adam opt(0.01, 0.9, 0.999, 1e-8, 1.0, 0.0, true);
  opt.setup(m);
  std::vector<double> p = kP, mm(4, 0), vv(4, 0), vh(4, 0);
  for (int t = 1; t <= 3; ++t) {
    std::vector<double> g = kG;
    for (double& x : g) x /= t;  // shrinking gradients: vhat keeps the max
    set_grad(m.W, g);
    opt.update();
    adam_ref(p, mm, vv, vh, g, t, 0.01, 0.9, 0.999, 1e-8, 1.0, 0.0, true);
  }
  expect_near(m.W.array(), p);
  expect_near(opt.update_rule(m.W).state.at("vhat").array(), vh);
}

TEST(Optimizers, AdamWStep) {
  OneParam m(kP);
  O::AdamW opt(0.005, 0.9, 0.999, 1e-8, 1.0, 0.05);
  opt.setup(m);
  std::vector<double> p = kP, mm(4, 0), vv(4, 0), vh(4, 0);
  set_grad(m.W, kG);
  opt.update();
  adam_ref(p, mm, vv, vh, kG, 1, 0.005, 0.9, 0.999, 1e-8, 1.0, 0.05, false);
  expect_near(m.W.array(), p);
}

TEST(Optimizers, Float64ParamsKeepFloat64State) {
  OneParam m(kP, {}, DType::f64);
  O::Adam opt;
  opt.setup(m);
  set_grad(m.W, kG);
  opt.update();
  EXPECT_EQ(m.W.dtype(), DType::f64);
  EXPECT_EQ(opt.update_rule(m.W).state.at("m").dtype(), DType::f64);
  std::vector<double> p = kP, mm(4, 0), vv(4, 0), vh(4, 0);
  adam_ref(p, mm, vv, vh, kG, 1, 0.001, 0.9, 0.999, 1e-8, 1.0, 0.0, false);
  expect_near(m.W.array(), p, 1e-12);
}

TEST(Optimizers, ParamsWithoutGradAreSkipped) {
  OneParam m(kP, {7.0, 8.0});
  O::MomentumSGD opt(0.1);
  opt.setup(m);
  set_grad(m.W, kG);  // b has no gradient
  opt.update();
  expect_near(m.b.array(), {7.0, 8.0});
  EXPECT_EQ(opt.update_rule(m.b).t, 0);
  EXPECT_TRUE(opt.update_rule(m.b).state.empty());
  EXPECT_EQ(opt.update_rule(m.W).t, 1);
}

TEST(Optimizers, PerParameterHyperparam) {
  OneParam m(kP, {1.0, 1.0});
  O::SGD opt(0.1);
  opt.setup(m);
  O::Hyperparameter frozen = opt.hyperparam;
  frozen.lr = 0.0;
  opt.update_rule(m.b).hyperparam = frozen;
  set_grad(m.W, kG);
  set_grad(m.b, {1.0, 1.0});
  opt.update();
  expect_near(m.b.array(), {1.0, 1.0});
  expect_near(m.W.array(), {1.0 - 0.05, -2.0 + 0.1, 3.0 - 0.2, -0.025});
}

TEST(Optimizers, UpdateWithLossFunction) {
  OneParam m(kP);
  O::SGD opt(0.5);
  opt.setup(m);
  m.W.set_grad(Array::from({100.f, 100.f, 100.f, 100.f}, {4}));  // stale: cleared by update(lossfun)
  // loss = 0.5 * sum(W^2): g = W, so W <- W - 0.5 W.
  opt.update([&]() { return F::sum(m.W * m.W) * 0.5; });
  std::vector<double> e;
  for (double x : kP) e.push_back(0.5 * x);
  expect_near(m.W.array(), e);
  EXPECT_EQ(opt.t, 1);
}

TEST(Optimizers, NotSetUp) {
  O::SGD opt;
  EXPECT_THROW(opt.update(), Error);
}

// ---- hooks ------------------------------------------------------------------------

TEST(OptimizerHooks, WeightDecay) {
  OneParam m(kP);
  O::SGD opt(0.1);
  opt.setup(m);
  opt.add_hook(H::WeightDecay(0.01));
  set_grad(m.W, kG);
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i) e.push_back(kP[i] - 0.1 * (kG[i] + 0.01 * kP[i]));
  expect_near(m.W.array(), e);
  EXPECT_EQ(opt.hook_names(), std::vector<std::string>{"WeightDecay"});
  EXPECT_THROW(opt.add_hook(H::WeightDecay(0.1)), Error);  // duplicate name
}

TEST(OptimizerHooks, Lasso) {
  OneParam m(kP);
  O::SGD opt(0.1);
  opt.setup(m);
  opt.add_hook(H::Lasso(0.5));
  set_grad(m.W, kG);
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i) {
    double sign = kP[i] > 0 ? 1 : (kP[i] < 0 ? -1 : 0);
    e.push_back(kP[i] - 0.1 * (kG[i] + 0.5 * sign));
  }
  expect_near(m.W.array(), e);
}

TEST(OptimizerHooks, GradientClippingGlobalNorm) {
  OneParam m(kP, {3.0});
  O::SGD opt(1.0);
  opt.setup(m);
  opt.add_hook(H::GradientClipping(1.0));
  set_grad(m.W, kG);
  set_grad(m.b, {-2.0});
  double sq = 4.0;
  for (double g : kG) sq += g * g;
  double rate = 1.0 / std::sqrt(sq);  // < 1: clipped
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i) e.push_back(kP[i] - rate * kG[i]);
  expect_near(m.W.array(), e);
  expect_near(m.b.array(), {3.0 + 2.0 * rate});
  expect_near(m.b.grad(), {-2.0 * rate});
}

TEST(OptimizerHooks, GradientClippingBelowThreshold) {
  OneParam m(kP);
  O::SGD opt(1.0);
  opt.setup(m);
  opt.add_hook(H::GradientClipping(100.0));
  set_grad(m.W, kG);
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i) e.push_back(kP[i] - kG[i]);
  expect_near(m.W.array(), e);
}

TEST(OptimizerHooks, GradientHardClipping) {
  OneParam m(kP);
  O::SGD opt(1.0);
  opt.setup(m);
  opt.add_hook(H::GradientHardClipping(-0.5, 0.3));
  set_grad(m.W, kG);
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i) e.push_back(kP[i] - std::min(0.3, std::max(-0.5, kG[i])));
  expect_near(m.W.array(), e);
  EXPECT_THROW(H::GradientHardClipping(1.0, -1.0), Error);
}

TEST(OptimizerHooks, RunInOrderBeforeTheUpdate) {
  // WeightDecay then clipping: the clip sees the decayed gradient.
  OneParam m(kP);
  O::SGD opt(1.0);
  opt.setup(m);
  opt.add_hook(H::WeightDecay(1.0));
  opt.add_hook(H::GradientHardClipping(-1.0, 1.0));
  std::vector<std::string> calls;
  opt.add_hook([&](O::Optimizer& o) { calls.push_back("pre t=" + std::to_string(o.t)); }, "log");
  opt.add_hook_fn([&](O::Optimizer& o) { calls.push_back("post t=" + std::to_string(o.t)); },
                  "logpost", "post");
  set_grad(m.W, kG);
  opt.update();
  std::vector<double> e;
  for (size_t i = 0; i < kP.size(); ++i)
    e.push_back(kP[i] - std::min(1.0, std::max(-1.0, kG[i] + kP[i])));
  expect_near(m.W.array(), e);
  EXPECT_EQ(calls, (std::vector<std::string>{"pre t=0", "post t=1"}));
  opt.remove_hook("log");
  EXPECT_EQ(opt.hook_names().size(), 3u);
}

// ---- one graph per step, cached --------------------------------------------------

namespace {
struct MLP : Chain {
  L::Linear l1{4, 6}, l2{6, 3};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) { return l2(F::relu(l1(x))); }
};
}  // namespace

template <class Opt>
void check_cache_hits(Opt opt) {
  MLP model;
  opt.setup(model);
  opt.add_hook(H::WeightDecay(1e-4));
  opt.add_hook(H::GradientClipping(1.0));
  Array x = Array::randn({5, 4}, 1);
  int64_t misses_before = cache_stats().misses;
  int64_t misses_after_2 = 0;
  int64_t hits_after_2 = 0;
  for (int step = 0; step < 6; ++step) {
    model.cleargrads();
    Variable y = model(Variable(x, false));
    Variable loss = F::sum(y * y);
    loss.backward();
    opt.update();
    // The loss was computed by the same realize as the update (no new graph: see the hit count).
    EXPECT_TRUE(std::isfinite(loss.item<float>()));
    if (step == 1) {
      misses_after_2 = cache_stats().misses;
      hits_after_2 = cache_stats().memory_hits;
    }
  }
  EXPECT_GT(misses_after_2, misses_before);  // the first step compiled its graph
  EXPECT_EQ(cache_stats().misses, misses_after_2);
  EXPECT_EQ(cache_stats().memory_hits, hits_after_2 + 4);  // one graph per step
}

TEST(OptimizersCache, OneGraphPerStepHitsTheCache) {
  check_cache_hits(O::Adam(0.01));
  check_cache_hits(O::MomentumSGD(0.01));
  check_cache_hits(O::SGD(0.01));
  check_cache_hits(O::RMSprop());
  check_cache_hits(O::AdaGrad());
  check_cache_hits(O::NesterovAG());
  check_cache_hits(O::Adam(0.01, 0.9, 0.999, 1e-8, 1.0, 0.0, true));
}

TEST(OptimizersCache, ChangingLearningRateDoesNotRecompile) {
  MLP model;
  O::SGD opt(0.1);
  opt.setup(model);
  Array x = Array::randn({5, 4}, 2);
  int64_t misses = 0;
  for (int step = 0; step < 5; ++step) {
    opt.hyperparam.lr = 0.1 / (step + 1);
    opt.update([&]() {
      Variable y = model(Variable(x, false));
      return F::sum(y * y);
    });
    if (step == 1) misses = cache_stats().misses;
  }
  EXPECT_EQ(cache_stats().misses, misses);
}

// ---- Chainer's training trajectories ----------------------------------------------

namespace {

Array to_array(const nlohmann::json& t) {
  Shape shape;
  for (auto& d : t["shape"]) shape.push_back(d.get<int64_t>());
  std::string dtype = t["dtype"];
  std::vector<double> data;
  for (auto& v : t["data"]) data.push_back(v.get<double>());
  if (dtype == "int32") {
    std::vector<int32_t> i(data.begin(), data.end());
    return Array::from(i, shape);
  }
  Array a = Array::from(data, shape);
  return dtype == "float32" ? a.astype(DType::f32) : a;
}

struct GoldenMLP : Chain {
  std::vector<L::Linear> layers;
  explicit GoldenMLP(const std::vector<int64_t>& sizes) {
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      layers.emplace_back(sizes[i], sizes[i + 1]);
    }
    for (size_t i = 0; i < layers.size(); ++i) add_link("l" + std::to_string(i), layers[i]);
  }
  Variable operator()(const Variable& x) {
    Variable h = x;
    for (size_t i = 0; i < layers.size(); ++i) {
      h = layers[i](h);
      if (i + 1 < layers.size()) h = F::relu(h);
    }
    return h;
  }
};

std::unique_ptr<O::Optimizer> make_optimizer(const nlohmann::json& o) {
  std::string name = o["name"];
  const auto& h = o["hyper"];
  if (name == "SGD") return std::make_unique<O::SGD>(h["lr"].get<double>());
  if (name == "MomentumSGD")
    return std::make_unique<O::MomentumSGD>(h["lr"].get<double>(), h["momentum"].get<double>());
  if (name == "Adam" || name == "AdamW") {
    double a = h["alpha"], b1 = h["beta1"], b2 = h["beta2"], eps = h["eps"], eta = h["eta"],
           wd = h["weight_decay_rate"];
    bool ams = h["amsgrad"];
    if (name == "Adam") return std::make_unique<O::Adam>(a, b1, b2, eps, eta, wd, ams);
    return std::make_unique<O::AdamW>(a, b1, b2, eps, eta, wd, ams);
  }
  return nullptr;
}

}  // namespace

TEST(OptimizersGolden, ChainerTrainingRuns) {
  std::ifstream in(std::string(KILN_GOLDENS_DIR) + "/training.json");
  ASSERT_TRUE(in.good());
  nlohmann::json j = nlohmann::json::parse(in);
  int runs = 0;
  for (const auto& run : j["runs"]) {
    SCOPED_TRACE(run["name"].get<std::string>());
    GoldenMLP model(run["model"]["layers"].get<std::vector<int64_t>>());
    for (auto& [name, p] : model.namedparams()) {
      Array init = to_array(run["params"][name.substr(1)]);
      ASSERT_EQ(init.shape(), p.shape()) << name;
      p.set_array(init);
    }
    std::unique_ptr<O::Optimizer> opt = make_optimizer(run["optimizer"]);
    ASSERT_TRUE(opt) << run["optimizer"]["name"];
    opt->setup(model);
    for (const auto& hk : run["hooks"]) {
      if (hk["name"] == "WeightDecay") opt->add_hook(H::WeightDecay(hk["rate"].get<double>()));
      else if (hk["name"] == "GradientClipping")
        opt->add_hook(H::GradientClipping(hk["threshold"].get<double>()));
      else FAIL() << "unknown hook " << hk["name"];
    }
    double rtol = run["rtol"], atol = run["atol"];
    int step_no = 0;
    for (const auto& step : run["steps"]) {
      SCOPED_TRACE("step " + std::to_string(step_no++));
      Variable x(to_array(step["x"]), false);
      Variable t(to_array(step["t"]), false);
      model.cleargrads();
      Variable loss = F::softmax_cross_entropy(model(x), t);
      loss.backward();
      opt->update();
      double l = step["loss"].get<double>();
      EXPECT_NEAR(loss.item<double>(), l, atol + rtol * std::fabs(l));
      for (auto& [name, p] : model.namedparams()) {
        Array expected = to_array(step["params_after"][name.substr(1)]);
        std::vector<double> a = p.array().to_vector<double>(), e = expected.to_vector<double>();
        ASSERT_EQ(a.size(), e.size());
        for (size_t i = 0; i < a.size(); ++i)
          ASSERT_NEAR(a[i], e[i], atol + rtol * std::fabs(e[i])) << name << "[" << i << "]";
      }
    }
    ++runs;
  }
  EXPECT_GE(runs, 7);
}

// The update names a parameter it cannot update by its namedparams path (looked up only for the error).
TEST(Optimizer, IntegerParameterErrorNamesTheParameter) {
  OneParam link({1.0, 2.0}, {3.0}, DType::f32);
  Parameter ids(Array::from<int32_t>({1, 2}, {2}));
  link.add_param("ids", ids);
  ids.set_grad(Array::from<int32_t>({0, 0}, {2}));
  set_grad(link.W, {0.5, 0.5});
  set_grad(link.b, {1.0});
  O::SGD opt(0.1);
  opt.setup(link);
  try {
    opt.update();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("parameter '/ids' has dtype int32"), std::string::npos) << e.what();
  }
}
