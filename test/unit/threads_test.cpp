// Separate models trained on separate threads at once: no crash, no race (this
// test also runs under ThreadSanitizer in CI), and each thread's result equals
// the same training done alone.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <thread>
#include <vector>

using namespace kiln;

namespace {

struct MLP : Chain {
  L::Linear l1, l2;
  MLP(int64_t hidden, int64_t classes) : l1(hidden), l2(classes) {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) const { return l2(F::relu(l1(x))); }
};

struct Outcome {
  std::vector<std::vector<float>> params;
  float last_loss = 0;
  double last_accuracy = 0;
};

// Trains a fresh model from `seed` for `steps` steps with Adam; `hidden` varies the
// graph so that threads compile different graphs at the same time.
Outcome train(uint64_t seed, int64_t hidden, int steps) {
  set_random_seed(seed);
  F::set_dropout_seed(seed);
  L::Classifier<MLP> model(MLP(hidden, 4));
  optimizers::Adam opt;
  opt.setup(model);
  Variable x(Array::randn({12, 6}, seed + 100), false);
  std::vector<int32_t> labels(12);
  for (int i = 0; i < 12; ++i) labels[i] = static_cast<int32_t>((i * 7 + seed) % 4);
  Variable t(Array::from<int32_t>(labels, {12}), false);
  Outcome out;
  Observation observation;
  for (int i = 0; i < steps; ++i) {
    auto scope = Reporter::scope(observation);
    model.cleargrads();
    Variable loss = model(x, t);
    loss.backward();
    opt.update();
    out.last_loss = loss.item<float>();
  }
  out.last_accuracy = observation.count("accuracy") ? observation.at("accuracy").item<double>() : -1;
  for (auto& [name, p] : model.namedparams()) out.params.push_back(p.array().to_vector<float>());
  return out;
}

void expect_same(const Outcome& a, const Outcome& b) {
  EXPECT_EQ(a.last_loss, b.last_loss);
  EXPECT_EQ(a.last_accuracy, b.last_accuracy);
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) EXPECT_EQ(a.params[i], b.params[i]) << "parameter " << i;
}

}  // namespace

TEST(Threads, TwoModelsTrainedAtOnceMatchTrainingAlone) {
  const int steps = 30;
  Outcome alone_a = train(1, 8, steps), alone_b = train(2, 16, steps);
  EXPECT_GE(alone_a.last_accuracy, 0.0);
  for (int round = 0; round < 3; ++round) {
    clear_memory_cache();  // both threads compile again, concurrently
    Outcome a, b;
    std::thread ta([&] { a = train(1, 8, steps); });
    std::thread tb([&] { b = train(2, 16, steps); });
    ta.join();
    tb.join();
    SCOPED_TRACE("round " + std::to_string(round));
    expect_same(a, alone_a);
    expect_same(b, alone_b);
  }
}

TEST(Threads, SameGraphOnFourThreadsSharesTheCompiledCode) {
  const int steps = 20;
  Outcome alone = train(5, 8, steps);
  std::vector<Outcome> outcomes(4);
  std::vector<std::thread> threads;
  for (auto& o : outcomes) threads.emplace_back([&o] { o = train(5, 8, steps); });
  for (auto& t : threads) t.join();
  for (const Outcome& o : outcomes) expect_same(o, alone);
}

// A model built on the main thread and trained on a worker, then read back on
// the main thread: the variables follow the thread that uses them.
TEST(Threads, ModelBuiltOnOneThreadTrainedOnAnother) {
  set_random_seed(9);
  L::Linear f(3, 2);
  optimizers::SGD opt(0.5);
  opt.setup(f);
  Variable x(Array::from({1.f, 2.f, 3.f}, {1, 3}), false);
  Array w0 = f.W.array();
  std::thread([&] {
    f.cleargrads();
    Variable loss = F::sum(f(x));
    loss.backward();
    opt.update();
  }).join();
  // dloss/dW = x for each output row: W -= 0.5 * x.
  std::vector<float> w = f.W.array().to_vector<float>(), before = w0.to_vector<float>();
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_FLOAT_EQ(w[r * 3 + c], before[r * 3 + c] - 0.5f * (c + 1));
  EXPECT_EQ(f.b.grad().to_vector<float>(), (std::vector<float>{1.f, 1.f}));
}

// A gradient left pending by a thread that has ended is computed by whichever
// thread reads it next (thread ids are reused by later threads: ownership must not be).
TEST(Threads, PendingGradientOfAnEndedThreadIsComputedByTheReader) {
  L::Linear f(3, 2);
  Variable x(Array::from({1.f, 2.f, 3.f}, {1, 3}), false);
  std::thread([&] {
    Variable loss = F::sum(f(x));
    loss.backward();
  }).join();
  for (int round = 0; round < 3; ++round) {
    std::vector<float> gb;
    std::thread([&] { gb = f.b.grad().to_vector<float>(); }).join();
    EXPECT_EQ(gb, (std::vector<float>{1.f, 1.f})) << "round " << round;
  }
  EXPECT_EQ(f.W.grad().to_vector<float>(), (std::vector<float>{1.f, 2.f, 3.f, 1.f, 2.f, 3.f}));
}
