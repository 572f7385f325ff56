// kiln::training: Reporter, triggers, Trainer, LogReport, Evaluator, snapshots (resume
// identity), PlotReport's PNG, and a short digits training run.
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

using namespace kiln;
namespace T = kiln::training;
namespace E = kiln::training::extensions;
namespace fs = std::filesystem;

namespace {

// A temporary output folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = fs::temp_directory_path() /
           fmt::format("kiln_training_{}_{}_{}", info->test_suite_name(), info->name(), ::getpid());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

// An updater without a model: `iters_per_epoch` iterations make an epoch, and each update
// reports main/v = values(iteration) (1-based) when `values` is given.
class FakeUpdater : public T::Updater {
 public:
  explicit FakeUpdater(int64_t iters_per_epoch, std::function<double(int64_t)> values = nullptr)
      : ipe_(iters_per_epoch), values_(std::move(values)) {}
  void update() override {
    prev_ = epoch_detail();
    ++it_;
    if (values_) report("main/v", values_(it_));
  }
  int64_t iteration() const override { return it_; }
  int64_t epoch() const override { return it_ / ipe_; }
  double epoch_detail() const override { return static_cast<double>(it_) / static_cast<double>(ipe_); }
  double previous_epoch_detail() const override { return prev_; }
  bool is_new_epoch() const override { return it_ > 0 && it_ % ipe_ == 0; }
  optimizers::Optimizer& get_optimizer(const std::string&) override { throw Error("no optimizer"); }
  void serialize(ArrayMap& out, const std::string& prefix) override {
    out[prefix + "iteration"] = Array::scalar<int64_t>(it_);
  }
  void deserialize(const ArrayMap& in, const std::string& prefix, const std::string&) override {
    it_ = static_cast<int64_t>(in.at(prefix + "iteration").at(0));
    prev_ = static_cast<double>(it_ - 1) / static_cast<double>(ipe_);
  }

 private:
  int64_t ipe_;
  std::function<double(int64_t)> values_;
  int64_t it_ = 0;
  double prev_ = 0;
};

// Iterations at which `trigger` fires on a trainer of `n` iterations.
std::vector<int64_t> firings(T::Trigger trigger, int64_t n, int64_t ipe = 4,
                             std::function<double(int64_t)> values = nullptr) {
  TempDir dir;
  T::Trainer trainer(FakeUpdater(ipe, std::move(values)), {n, "iteration"}, dir.str());
  std::vector<int64_t> fired;
  trainer.extend([&](T::Trainer& t) { fired.push_back(t.updater().iteration()); }, trigger);
  trainer.run();
  return fired;
}

struct MLP : Chain {
  L::Linear l1{32}, l2{10};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) const { return l2(F::relu(l1(x))); }
};

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(Reporter, ObserverPrefixAndScopes) {
  report("ignored", 1.0);  // outside any scope: a no-op
  Observation outer, inner;
  {
    auto s = Reporter::scope(outer);
    report("a", 1.0);
    {
      auto o = Reporter::observe("main");
      report("loss", Variable(Array::scalar<float>(2.5f)));
      {
        auto s2 = Reporter::scope(inner);  // a new dictionary, no observer
        report("b", 3.0);
      }
      report("accuracy", 0.5);
    }
    report("c", 4.0);
  }
  EXPECT_EQ(Reporter::current_observation(), nullptr);
  EXPECT_EQ(Reporter::current_observer(), "");
  ASSERT_EQ(outer.size(), 4u);
  EXPECT_DOUBLE_EQ(observation_value(outer.at("a")), 1.0);
  EXPECT_DOUBLE_EQ(observation_value(outer.at("main/loss")), 2.5);
  EXPECT_DOUBLE_EQ(observation_value(outer.at("main/accuracy")), 0.5);
  EXPECT_DOUBLE_EQ(observation_value(outer.at("c")), 4.0);
  ASSERT_EQ(inner.size(), 1u);
  EXPECT_TRUE(inner.count("b"));
}

TEST(DictSummary, MeanStdAndSerialize) {
  DictSummary s;
  s.add("x", 1);
  s.add("x", 3);
  s.add("main/y", 5);
  EXPECT_DOUBLE_EQ(s.compute_mean().at("x"), 2);
  EXPECT_DOUBLE_EQ(s.compute_std().at("x"), 1);
  ArrayMap m;
  s.serialize(m, "s/");
  DictSummary r;
  r.deserialize(m, "s/");
  EXPECT_EQ(r.compute_mean(), s.compute_mean());
}

TEST(Triggers, IntervalIterationAndEpoch) {
  EXPECT_EQ(firings(T::Trigger(3, "iteration"), 10), (std::vector<int64_t>{3, 6, 9}));
  EXPECT_EQ(firings(T::Trigger(1, "epoch"), 10, 4), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(firings(T::Trigger(2, "epoch"), 17, 4), (std::vector<int64_t>{8, 16}));
  // 2.5 iterations per epoch is not expressible with FakeUpdater; epochs of 3 with period 1:
  EXPECT_EQ(firings(T::triggers::IntervalTrigger(1, "epoch"), 9, 3), (std::vector<int64_t>{3, 6, 9}));
  EXPECT_EQ(firings(T::triggers::ManualScheduleTrigger({2, 5}, "iteration"), 9), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(firings(T::triggers::ManualScheduleTrigger({1}, "epoch"), 9, 3), (std::vector<int64_t>{3}));
  EXPECT_THROW(T::Trigger(1, "epochs"), Error);
  EXPECT_THROW(T::Trigger(0, "epoch"), Error);
}

TEST(Triggers, StopTriggerEndsTraining) {
  TempDir dir;
  T::Trainer trainer(FakeUpdater(5), {3, "epoch"}, dir.str());
  trainer.run();
  EXPECT_EQ(trainer.updater().iteration(), 15);
  EXPECT_THROW(trainer.run(), Error);  // a trainer runs once
}

TEST(Triggers, MinAndMaxValue) {
  // v per iteration; interval 2 iterations: means 5, 3, 4, 1, 2 at iterations 2, 4, 6, 8, 10.
  std::vector<double> v = {6, 4, 2, 4, 5, 3, 1, 1, 2, 2};
  auto values = [v](int64_t it) { return v[static_cast<size_t>(it - 1)]; };
  EXPECT_EQ(firings(T::triggers::MinValueTrigger("main/v", {2, "iteration"}), 10, 4, values),
            (std::vector<int64_t>{2, 4, 8}));
  EXPECT_EQ(firings(T::triggers::MaxValueTrigger("main/v", {2, "iteration"}), 10, 4, values),
            (std::vector<int64_t>{2}));
}

TEST(Triggers, EarlyStopping) {
  // main/v improves until iteration 3, then stays flat: with patience 2 (checked every
  // iteration) training stops after iteration 5.
  std::vector<double> v = {5, 4, 3, 3, 3.5, 3, 3, 3, 3, 3, 3, 3};
  TempDir dir;
  T::Trainer trainer(FakeUpdater(4, [v](int64_t it) { return v[static_cast<size_t>(it - 1)]; }),
                     T::triggers::EarlyStoppingTrigger("main/v", 2, {12, "iteration"}, "auto", {1, "iteration"}),
                     dir.str());
  trainer.run();
  EXPECT_EQ(trainer.updater().iteration(), 5);
  // max_trigger bounds the run; a maximized monitor ("accuracy" in its name) never stopping early.
  TempDir dir2;
  T::Trainer t2(FakeUpdater(4, [](int64_t it) { return static_cast<double>(it); }),
                T::triggers::EarlyStoppingTrigger("main/v", 2, {7, "iteration"}, "max", {1, "iteration"}), dir2.str());
  t2.run();
  EXPECT_EQ(t2.updater().iteration(), 7);
  auto len = T::triggers::EarlyStoppingTrigger("validation/main/accuracy").training_length();
  ASSERT_TRUE(len.has_value());
  EXPECT_EQ(len->first, 100);
  EXPECT_TRUE(T::triggers::EarlyStoppingTrigger("validation/main/accuracy").maximize);
  EXPECT_FALSE(T::triggers::EarlyStoppingTrigger("validation/main/loss").maximize);
}

TEST(Trainer, ExtensionOrderNamesAndPriorities) {
  TempDir dir;
  T::Trainer trainer(FakeUpdater(2), {2, "iteration"}, dir.str());
  std::vector<std::string> calls;
  trainer.extend([&](T::Trainer&) { calls.push_back("reader"); }, {1, "iteration"}, "r");
  trainer.extend([&](T::Trainer&) { calls.push_back("writer"); }, {1, "iteration"}, "w", T::PRIORITY_WRITER);
  trainer.extend([&](T::Trainer&) { calls.push_back("lambda"); }, {2, "iteration"});
  trainer.extend([&](T::Trainer&) { calls.push_back("lambda_1"); }, {2, "iteration"});
  EXPECT_EQ(trainer.extension_names(), (std::vector<std::string>{"w", "r", "lambda", "lambda_1"}));
  trainer.run();
  EXPECT_EQ(calls, (std::vector<std::string>{"writer", "reader", "writer", "reader", "lambda", "lambda_1"}));
  EXPECT_THROW(trainer.get_extension("nope"), Error);
}

TEST(LogReport, WritesChainerJson) {
  TempDir dir;
  T::Trainer trainer(FakeUpdater(4, [](int64_t it) { return static_cast<double>(it); }), {8, "iteration"},
                     dir.str());
  trainer.extend(E::LogReport({}, {3, "iteration"}));
  trainer.run();
  std::ifstream f(dir.path / "log");
  ASSERT_TRUE(f.good());
  nlohmann::json log = nlohmann::json::parse(f);
  ASSERT_TRUE(log.is_array());
  ASSERT_EQ(log.size(), 2u);
  // Means of v over iterations 1-3 and 4-6.
  EXPECT_DOUBLE_EQ(log[0]["main/v"].get<double>(), 2.0);
  EXPECT_EQ(log[0]["iteration"].get<int64_t>(), 3);
  EXPECT_EQ(log[0]["epoch"].get<int64_t>(), 0);
  EXPECT_TRUE(log[0]["iteration"].is_number_integer());
  EXPECT_TRUE(log[0]["elapsed_time"].is_number_float());
  EXPECT_GE(log[0]["elapsed_time"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(log[1]["main/v"].get<double>(), 5.0);
  EXPECT_EQ(log[1]["iteration"].get<int64_t>(), 6);
  EXPECT_EQ(log[1]["epoch"].get<int64_t>(), 1);
  EXPECT_LE(log[0]["elapsed_time"].get<double>(), log[1]["elapsed_time"].get<double>());
  // No temporary files are left behind (atomic writes).
  for (const auto& e : fs::directory_iterator(dir.path)) EXPECT_EQ(e.path().filename().string().rfind(".", 0), std::string::npos);
  // The same content through the API.
  auto& lr = trainer.get_extension<E::LogReport>("LogReport");
  EXPECT_EQ(nlohmann::json::parse(lr.to_json()), log);
}

TEST(LogReport, KeysFilterAndPrintReport) {
  TempDir dir;
  T::Trainer trainer(FakeUpdater(2, [](int64_t it) { return static_cast<double>(it); }), {4, "iteration"},
                     dir.str());
  trainer.extend([](T::Trainer&) { report("other", 7.0); }, {1, "iteration"}, "w", T::PRIORITY_WRITER);
  trainer.extend(E::LogReport({"main/v"}, {1, "epoch"}));
  std::FILE* tmp = std::tmpfile();
  trainer.extend(E::PrintReport({"epoch", "iteration", "main/v"}, "LogReport", tmp));
  trainer.run();
  const auto& log = trainer.get_extension<E::LogReport>("LogReport").log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_FALSE(log[0].count("other"));
  EXPECT_DOUBLE_EQ(log[1].at("main/v"), 3.5);
  std::rewind(tmp);
  std::string text;
  char buf[256];
  while (std::fgets(buf, sizeof buf, tmp)) text += buf;
  std::fclose(tmp);
  EXPECT_EQ(text,
            "epoch       iteration   main/v\n"
            "1           2           1.5\n"
            "2           4           3.5\n");
}

TEST(Evaluator, MeansOverBatchesWithoutTraining) {
  // x = 0..9; batches of 4: {0..3}, {4..7}, {8, 9}; the "loss" is the batch mean of x.
  std::vector<float> xs;
  for (int i = 0; i < 10; ++i) xs.push_back(static_cast<float>(i));
  auto data = std::make_shared<datasets::TupleDataset>(std::vector<Array>{Array::from(xs, {10, 1})});
  iterators::SerialIterator it(data, 4, /*repeat=*/false, /*shuffle=*/false);
  int calls = 0;
  E::Evaluator ev(it, T::LossFunc([&](const std::vector<Variable>& in) -> Variable {
    ++calls;
    EXPECT_FALSE(config().train);
    EXPECT_FALSE(config().enable_backprop);
    Variable loss = F::sum(in[0]) * (1.0f / static_cast<float>(in[0].shape()[0]));
    report("loss", loss);
    report("n", static_cast<double>(in[0].shape()[0]));
    return loss;
  }));
  auto result = ev.evaluate();
  EXPECT_EQ(calls, 3);
  ASSERT_TRUE(result.count("validation/main/loss"));
  EXPECT_NEAR(result.at("validation/main/loss"), (1.5 + 5.5 + 8.5) / 3, 1e-6);
  EXPECT_NEAR(result.at("validation/main/n"), (4 + 4 + 2) / 3.0, 1e-12);
  EXPECT_TRUE(config().train);
  // A second evaluation makes a fresh pass.
  EXPECT_EQ(ev.evaluate(), result);
  EXPECT_EQ(calls, 6);

  // As an extension, it reports into the trainer's observation (LogReport sees it).
  TempDir dir;
  T::Trainer trainer(FakeUpdater(2), {2, "iteration"}, dir.str());
  trainer.extend(ev, {1, "epoch"});
  trainer.extend(E::LogReport({}, {1, "epoch"}, ""));
  trainer.run();
  const auto& log = trainer.get_extension<E::LogReport>("LogReport").log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NEAR(log[0].at("validation/main/loss"), (1.5 + 5.5 + 8.5) / 3, 1e-6);
}

TEST(PlotReport, WritesPng) {
  TempDir dir;
  T::Trainer trainer(FakeUpdater(3, [](int64_t it) { return 1.0 / static_cast<double>(it); }), {12, "iteration"},
                     dir.str());
  trainer.extend(E::PlotReport({"main/v", "missing/key"}, "epoch", {1, "epoch"}, "v.png"));
  trainer.run();
  auto bytes = read_bytes((dir.path / "v.png").string());
  ASSERT_GT(bytes.size(), 8u);
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  EXPECT_EQ(std::memcmp(bytes.data(), sig, 8), 0);
  auto& plot = trainer.get_extension<E::PlotReport>("PlotReport");
  ASSERT_EQ(plot.data().at("main/v").size(), 4u);
  EXPECT_DOUBLE_EQ(plot.data().at("main/v")[0].first, 1.0);
  EXPECT_NEAR(plot.data().at("main/v")[0].second, (1 + 0.5 + 1.0 / 3) / 3, 1e-12);
  // An empty chart is still a valid PNG.
  std::string empty = (dir.path / "empty.png").string();
  E::PlotReport::write_png(empty, {"a"}, {}, "iteration");
  auto b2 = read_bytes(empty);
  ASSERT_GT(b2.size(), 8u);
  EXPECT_EQ(std::memcmp(b2.data(), sig, 8), 0);
}

TEST(ProgressBar, StatusLine) {
  TempDir dir;
  std::FILE* tmp = std::tmpfile();
  T::Trainer trainer(FakeUpdater(5), {2, "epoch"}, dir.str());
  trainer.extend(E::ProgressBar(std::nullopt, 2, 20, tmp));
  trainer.run();
  auto& pb = trainer.get_extension<E::ProgressBar>("ProgressBar");
  std::string line = pb.status_line(trainer);
  EXPECT_NE(line.find("100.00%"), std::string::npos) << line;
  EXPECT_NE(line.find("epoch 2/2"), std::string::npos) << line;
  EXPECT_NE(line.find("iters/sec"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA"), std::string::npos) << line;
  std::rewind(tmp);
  char buf[512];
  std::string text;
  while (std::fgets(buf, sizeof buf, tmp)) text += buf;
  std::fclose(tmp);
  EXPECT_NE(text.find("iter 10"), std::string::npos) << text;  // the final line (not a tty)
}

namespace {

struct RunResult {
  std::vector<std::pair<std::string, Array>> params;
  std::vector<std::map<std::string, double>> log;
};

// Trains the digits MLP until iteration `stop`; optionally snapshots at `snap_at` (and then
// stops there), or resumes from `resume` first.
RunResult train_digits_run(int64_t stop, const std::string& out, int64_t snap_at = 0, const std::string& resume = "") {
  set_random_seed(0);
  auto digits = datasets::load_digits();
  auto [train, test] = datasets::split_dataset_random(digits, 1400, 0);
  L::Classifier<MLP> model;
  optimizers::Adam opt;
  opt.setup(model);
  iterators::SerialIterator train_iter(train, 50, true, true, /*seed=*/3);
  iterators::SerialIterator test_iter(test, 200, false, false);
  T::StandardUpdater updater(train_iter, opt, model);
  T::Trainer trainer(updater, {stop, "iteration"}, out);
  trainer.extend(E::Evaluator(test_iter, model), {10, "iteration"});
  trainer.extend(E::LogReport({}, {5, "iteration"}, "log"));
  if (snap_at > 0) trainer.extend(E::snapshot(), {snap_at, "iteration"});
  if (!resume.empty()) T::load_snapshot(resume, trainer);
  trainer.run();
  RunResult r;
  for (const auto& [name, p] : model.namedparams()) r.params.emplace_back(name, p.array());
  r.log = trainer.get_extension<E::LogReport>("LogReport").log();
  return r;
}

}  // namespace

TEST(Snapshot, ResumeGivesIdenticalTraining) {
  TempDir dir;
  const int64_t N = 65, k = 31;  // k is mid-epoch (28 iterations per epoch)
  RunResult full = train_digits_run(N, (dir.path / "full").string());
  RunResult first = train_digits_run(k, (dir.path / "part").string(), k);
  std::string snap = (dir.path / "part" / fmt::format("snapshot_iter_{}", k)).string();
  ASSERT_TRUE(fs::exists(snap));
  // The snapshot holds Chainer's key layout.
  auto arrays = npz::read(snap);
  EXPECT_EQ(arrays.at("updater/iteration").item<int64_t>(), k);
  EXPECT_TRUE(arrays.count("updater/model:main/predictor/l1/W"));
  EXPECT_TRUE(arrays.count("updater/optimizer:main/predictor/l1/W/m"));
  EXPECT_EQ(arrays.at("updater/iterator:main/epoch").item<int64_t>(), 1);
  EXPECT_TRUE(arrays.count("extensions/LogReport/_log"));

  RunResult resumed = train_digits_run(N, (dir.path / "resumed").string(), 0, snap);
  EXPECT_EQ(resumed.log.front().at("iteration"), 5);  // the restored log
  ASSERT_EQ(full.params.size(), resumed.params.size());
  for (size_t i = 0; i < full.params.size(); ++i) {
    EXPECT_EQ(full.params[i].first, resumed.params[i].first);
    auto a = full.params[i].second.to_vector<float>(), b = resumed.params[i].second.to_vector<float>();
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << full.params[i].first;
  }
  // The log (restored from the snapshot, then continued) matches too, elapsed time aside.
  ASSERT_EQ(full.log.size(), resumed.log.size());
  for (size_t i = 0; i < full.log.size(); ++i) {
    for (const auto& [key, value] : full.log[i]) {
      if (key == "elapsed_time") continue;
      ASSERT_TRUE(resumed.log[i].count(key)) << key;
      EXPECT_EQ(value, resumed.log[i].at(key)) << "entry " << i << " key " << key;
    }
  }
  // The trainer-level serializers work the same way.
  EXPECT_GT(first.log.size(), 0u);
}

TEST(Snapshot, ObjectAndErrors) {
  TempDir dir;
  set_random_seed(0);
  L::Classifier<MLP> model;
  model(Variable(Array::zeros({2, 64})), Variable(Array::from<int32_t>({0, 1}, {2}), false));
  T::Trainer trainer(FakeUpdater(2), {4, "iteration"}, dir.str());
  trainer.extend(E::snapshot_object(model.predictor, "mlp_{iteration}.npz"), {2, "iteration"});
  trainer.run();
  ASSERT_TRUE(fs::exists(dir.path / "mlp_2.npz"));
  ASSERT_TRUE(fs::exists(dir.path / "mlp_4.npz"));
  auto arrays = npz::read((dir.path / "mlp_4.npz").string());
  EXPECT_TRUE(arrays.count("l1/W"));
  EXPECT_TRUE(arrays.count("l2/b"));
  // A missing or corrupt snapshot is a clear kiln::Error.
  T::Trainer t2(FakeUpdater(2), {4, "iteration"}, dir.str());
  EXPECT_THROW(T::load_snapshot((dir.path / "nope").string(), t2), Error);
}

TEST(ObserveLr, ReportsLearningRate) {
  TempDir dir;
  set_random_seed(0);
  auto digits = datasets::load_digits();
  L::Classifier<MLP> model;
  optimizers::SGD sgd(0.05);
  sgd.setup(model);
  iterators::SerialIterator it(digits, 20);
  T::Trainer trainer(T::StandardUpdater(it, sgd, model), {3, "iteration"}, dir.str());
  trainer.extend(E::observe_lr(sgd));
  trainer.extend(E::LogReport({}, {3, "iteration"}, ""));
  trainer.run();
  const auto& log = trainer.get_extension<E::LogReport>("LogReport").log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_DOUBLE_EQ(log[0].at("lr"), 0.05);
  EXPECT_TRUE(log[0].count("main/loss"));
  EXPECT_TRUE(log[0].count("main/accuracy"));
}

TEST(Training, DigitsReachesAccuracy) {
  TempDir dir;
  set_random_seed(0);
  auto digits = datasets::load_digits();
  auto [train, test] = datasets::split_dataset_random(digits, digits->size() * 4 / 5, 0);
  L::Classifier<MLP> model;
  optimizers::Adam opt;
  opt.setup(model);
  iterators::SerialIterator train_iter(train, 32);
  // 360 test examples in batches of 100: the last batch has 60.
  iterators::SerialIterator test_iter(test, 100, false, false);
  T::StandardUpdater updater(train_iter, opt, model);
  T::Trainer trainer(updater, {10, "epoch"}, dir.str());
  trainer.extend(E::Evaluator(test_iter, model));
  trainer.extend(E::LogReport());
  clear_memory_cache();
  CacheStats before = cache_stats();
  trainer.run();
  CacheStats after = cache_stats();
  // The compiled backend has a symbolic batch size: one training step graph
  // and one evaluation graph serve every batch, the partial ones included.
  if (backend_name() == "cpu")
    EXPECT_EQ((after.misses - before.misses) + (after.disk_hits - before.disk_hits), 2);
  const auto& log = trainer.get_extension<E::LogReport>("LogReport").log();
  ASSERT_EQ(log.size(), 10u);
  EXPECT_LT(log.back().at("main/loss"), log.front().at("main/loss"));
  EXPECT_GE(log.back().at("validation/main/accuracy"), 0.9);
  EXPECT_EQ(static_cast<int64_t>(log.back().at("epoch")), 10);
}
