// Iterators: the abstract Iterator plugged into StandardUpdater, Evaluator and the Trainer
// (a user window iterator, a BPTT-style update_core), SerialIterator snapshots, batches of
// inconsistent shapes, and MultithreadIterator (Threads.* tests also run under TSan in CI).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "error_of.h"
#include "range_dataset.h"

using namespace kiln;
namespace T = kiln::training;
namespace E = kiln::training::extensions;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

// A user iterator: consecutive windows of `length` values of a sequence, stepping by
// `length`; each example is {x = seq[k], t = seq[k + 1]} (the next value), like a
// language model's input and target. One epoch = one pass over the sequence.
class WindowIterator : public iterators::Iterator {
 public:
  WindowIterator(std::vector<float> seq, size_t length) : seq_(std::move(seq)), length_(length) {}
  iterators::Batch next() override {
    if (exhausted()) throw Error("WindowIterator: no more windows");
    iterators::Batch batch;
    for (size_t k = 0; k < length_; ++k) {
      size_t i = (position_ + k) % (seq_.size() - 1);
      batch.push_back({Array::from<float>({seq_[i]}, {1}), Array::from<float>({seq_[i + 1]}, {1})});
    }
    position_ += length_;
    int64_t e = static_cast<int64_t>(position_ / (seq_.size() - 1));
    is_new_epoch = e > epoch;
    epoch = e;
    return batch;
  }
  double epoch_detail() const override {
    return static_cast<double>(position_) / static_cast<double>(seq_.size() - 1);
  }
  bool exhausted() const override { return !repeat && epoch > 0; }
  void reset() override {
    position_ = 0;
    epoch = 0;
    is_new_epoch = false;
    ++resets;
  }
  void serialize(iterators::StateMap& out, const std::string& prefix) const override {
    Iterator::serialize(out, prefix);
    out[prefix + "position"] = Array::scalar<int64_t>(static_cast<int64_t>(position_));
  }
  void deserialize(const iterators::StateMap& in, const std::string& prefix) override {
    Iterator::deserialize(in, prefix);
    position_ = static_cast<size_t>(in.at(prefix + "position").item<int64_t>());
  }
  bool repeat = true;
  int resets = 0;

 private:
  std::vector<float> seq_;
  size_t length_;
  size_t position_ = 0;
};

struct Scale : Chain {
  Parameter w{Array::from<float>({0.5f}, {1})};
  Scale() { add_param("w", w); }
};

}  // namespace

TEST(Iterators, UserIteratorDrivesStandardUpdaterAndTrainer) {
  // Sequence 1, 2, 4, 8, ...: the target is twice the input; w * x -> t learns w = 2.
  std::vector<float> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(static_cast<float>(1 << i) / 16.0f);
  auto it = std::make_shared<WindowIterator>(seq, 3);  // 6 pairs: two batches per epoch
  Scale model;
  optimizers::SGD opt(0.1);
  opt.setup(model);
  std::vector<std::vector<float>> seen;
  T::StandardUpdater updater(it, opt, T::LossFunc([&](const std::vector<Variable>& in) {
                               seen.push_back(in[0].array().to_vector<float>());
                               Variable d = F::broadcast_to(model.w, in[0].shape()) * in[0] - in[1];
                               return F::sum(d * d);
                             }));
  T::Trainer trainer(updater, {3, "epoch"}, testing::TempDir() + "/kiln_window_iterator");
  trainer.run();
  EXPECT_EQ(updater.iteration(), 6);
  EXPECT_EQ(updater.epoch(), 3);
  EXPECT_EQ(it->epoch, 3);  // shared: the caller's iterator is the one the updater advanced
  EXPECT_DOUBLE_EQ(updater.epoch_detail(), 3.0);
  EXPECT_DOUBLE_EQ(updater.previous_epoch_detail(), 2.5);
  EXPECT_EQ(&updater.get_iterator(), it.get());
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_THAT(seen[0], ElementsAre(1 / 16.f, 2 / 16.f, 4 / 16.f));  // concat_examples of 3 examples
  EXPECT_THAT(seen[1], ElementsAre(8 / 16.f, 16 / 16.f, 32 / 16.f));
  EXPECT_EQ(seen[2], seen[0]);
  // Gradient descent on sum((w x - 2x)^2) moves w to 2.
  EXPECT_NEAR(model.w.array().to_vector<float>()[0], 2.0f, 0.05f);

  // Snapshot keys come from the iterator's serialize(); a fresh updater resumes there.
  ArrayMap state;
  updater.serialize(state, "updater/");
  EXPECT_EQ(state.at("updater/iterator:main/position").item<int64_t>(), 18);
  EXPECT_EQ(state.at("updater/iterator:main/epoch").item<int64_t>(), 3);
  EXPECT_DOUBLE_EQ(state.at("updater/iterator:main/previous_epoch_detail").item<double>(), 2.5);
  auto it2 = std::make_shared<WindowIterator>(seq, 3);
  T::StandardUpdater resumed(it2, opt, T::LossFunc([&](const std::vector<Variable>& in) { return F::sum(in[0]); }));
  resumed.deserialize(state, "updater/", "<state>");
  EXPECT_EQ(resumed.iteration(), 6);
  EXPECT_EQ(it2->epoch, 3);
  EXPECT_DOUBLE_EQ(resumed.epoch_detail(), 3.0);
}

TEST(Iterators, ValueIteratorIsCopiedIn) {
  auto ds = range_dataset(6);
  iterators::SerialIterator it(ds, 2, true, false);
  Scale model;
  optimizers::SGD opt;
  opt.setup(model);
  T::StandardUpdater updater(it, opt, T::LossFunc([&](const std::vector<Variable>& in) {
                               return F::sum(in[0]) * 0.0f + F::sum(model.w);
                             }));
  updater.update();
  updater.update();
  EXPECT_EQ(it.epoch_detail(), 0.0);  // the caller's copy did not move
  EXPECT_NEAR(updater.epoch_detail(), 4.0 / 6.0, 1e-12);
  auto& own = dynamic_cast<iterators::SerialIterator&>(updater.get_iterator());
  EXPECT_EQ(own.current_position(), 4u);
}

// Chainer's BPTTUpdater: update_core reads bprop_len batches, sums the losses, then one
// backward and one update.
class BPTTUpdater : public T::StandardUpdater {
 public:
  BPTTUpdater(iterators::IteratorHandle it, optimizers::Optimizer& opt, Scale& model, int bprop_len)
      : StandardUpdater(std::move(it), opt, T::LossFunc([&model](const std::vector<Variable>& in) {
                          Variable d = F::broadcast_to(model.w, in[0].shape()) * in[0] - in[1];
                          return F::sum(d * d);
                        })),
        bprop_len_(bprop_len) {}
  void update_core() override {
    Variable loss;
    for (int i = 0; i < bprop_len_; ++i) {
      auto arrays = convert(get_iterator().next());
      Variable l = loss_func()({Variable(arrays[0], false), Variable(arrays[1], false)});
      loss = loss.is_null() ? l : loss + l;
    }
    get_optimizer().target().cleargrads();
    loss.backward();
    get_optimizer().update();
    ++steps;
  }
  int steps = 0;

 private:
  int bprop_len_;
};

TEST(Iterators, UpdateCoreOverride) {
  std::vector<float> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(static_cast<float>(i + 1) / 8.0f);
  auto it = std::make_shared<WindowIterator>(seq, 2);  // 3 batches per epoch
  Scale model;
  optimizers::SGD opt(0.1);
  opt.setup(model);
  BPTTUpdater updater(it, opt, model, 3);  // one update per epoch
  // The loss of one update: sum over the 6 pairs (x, x + 1/8) of (w x - x - 1/8)^2, at w = 0.5.
  double grad = 0;
  for (int i = 0; i < 6; ++i) {
    double x = (i + 1) / 8.0, t = (i + 2) / 8.0;
    grad += 2 * (0.5 * x - t) * x;
  }
  updater.update();
  EXPECT_EQ(updater.steps, 1);
  EXPECT_EQ(updater.iteration(), 1);
  EXPECT_EQ(updater.epoch(), 1);
  EXPECT_TRUE(updater.is_new_epoch());
  EXPECT_NEAR(model.w.array().to_vector<float>()[0], 0.5 - 0.1 * grad, 1e-5);
}

TEST(Iterators, EvaluatorResetsUserIteratorAndCallsEvalHook) {
  std::vector<float> seq = {1, 2, 3, 4, 5};
  auto it = std::make_shared<WindowIterator>(seq, 2);  // 2 batches per pass
  it->repeat = false;
  int hooks = 0, calls = 0;
  E::Evaluator ev(
      it,
      T::LossFunc([&](const std::vector<Variable>& in) {
        ++calls;
        Variable loss = F::sum(in[1] - in[0]);
        report("loss", loss);
        return loss;
      }),
      nullptr, "validation", [&](E::Evaluator& self) {
        ++hooks;
        EXPECT_EQ(&self.get_iterator(), it.get());
      });
  auto r1 = ev.evaluate();
  auto r2 = ev.evaluate();
  EXPECT_EQ(hooks, 2);
  EXPECT_EQ(it->resets, 2);
  EXPECT_EQ(calls, 4);
  EXPECT_NEAR(r1.at("validation/main/loss"), 2.0, 1e-6);  // each window: two differences of 1
  EXPECT_EQ(r1, r2);
}

TEST(Iterators, DefaultResetThrows) {
  struct Minimal : iterators::Iterator {
    iterators::Batch next() override { return {{Array::zeros({1})}}; }
    double epoch_detail() const override { return 0; }
  } minimal;
  EXPECT_THAT(error_of([&] { minimal.reset(); }), HasSubstr("does not implement reset()"));
  E::Evaluator ev(minimal, T::LossFunc([](const std::vector<Variable>& in) { return F::sum(in[0]); }));
  EXPECT_THAT(error_of([&] { ev.evaluate(); }), HasSubstr("Iterator::reset"));
  iterators::StateMap state;
  minimal.epoch = 4;
  minimal.serialize(state, "it/");
  EXPECT_EQ(state.at("it/epoch").item<int64_t>(), 4);
  EXPECT_THAT(error_of([&] { minimal.deserialize({}, "it/"); }), HasSubstr("no key 'it/epoch'"));
}

TEST(Iterators, InconsistentBatchShapesNameTheArgument) {
  // The second example of each batch is one element longer.
  struct Ragged : iterators::Iterator {
    iterators::Batch next() override {
      return {{Array::zeros({2}), Array::from<int32_t>({0}, {1})}, {Array::zeros({3}), Array::from<int32_t>({1}, {1})}};
    }
    double epoch_detail() const override { return 0; }
  };
  Scale model;
  optimizers::SGD opt;
  opt.setup(model);
  T::StandardUpdater updater(Ragged(), opt, T::LossFunc([&](const std::vector<Variable>& in) { return F::sum(in[0]); }));
  std::string msg = error_of([&] { updater.update(); });
  EXPECT_THAT(msg, HasSubstr("StandardUpdater"));
  EXPECT_THAT(msg, HasSubstr("iterator 'main'"));
  EXPECT_THAT(msg, HasSubstr("concat_examples: argument 'batch': batch[1][0] has shape (3,) float32, expected (2,)"));
  EXPECT_EQ(updater.iteration(), 0);

  struct RaggedResettable : Ragged {
    void reset() override {}
  };
  E::Evaluator ev2(RaggedResettable(), T::LossFunc([](const std::vector<Variable>& in) { return F::sum(in[0]); }));
  EXPECT_THAT(error_of([&] { ev2.evaluate(); }), HasSubstr("batch[1][0]"));
}

TEST(Iterators, SerialIteratorSnapshotContinuesTheSameOrder) {
  auto ds = range_dataset(7);
  iterators::SerialIterator a(ds, 3, true, true, /*seed=*/5);
  for (int i = 0; i < 4; ++i) a.next();
  iterators::StateMap state;
  a.serialize(state, "it/");
  EXPECT_EQ(state.at("it/current_position").item<int64_t>(), 5);  // 12 examples: 7 + 5
  EXPECT_EQ(state.at("it/epoch").item<int64_t>(), 1);
  EXPECT_EQ(state.at("it/order").shape(), (Shape{7}));
  iterators::SerialIterator b(ds, 3, true, true, /*seed=*/99);
  b.deserialize(state, "it/");
  EXPECT_EQ(b.epoch, 1);
  EXPECT_DOUBLE_EQ(b.epoch_detail(), a.epoch_detail());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(labels(a.next()), labels(b.next())) << "batch " << i;

  iterators::SerialIterator other(range_dataset(4), 3, true, true);
  EXPECT_THAT(error_of([&] { other.deserialize(state, "it/"); }), HasSubstr("out of range"));
  state.erase("it/order");
  EXPECT_THAT(error_of([&] { b.deserialize(state, "it/"); }), HasSubstr("no key 'it/order'"));
}

TEST(Iterators, SerialIteratorResetAndErrors) {
  auto ds = range_dataset(5);
  iterators::SerialIterator it(ds, 2, /*repeat=*/false, /*shuffle=*/false);
  EXPECT_THAT(labels(it.next()), ElementsAre(0, 1));
  EXPECT_THAT(labels(it.next()), ElementsAre(2, 3));
  EXPECT_THAT(labels(it.next()), ElementsAre(4));
  EXPECT_TRUE(it.exhausted());
  EXPECT_TRUE(it.is_new_epoch);
  it.reset();
  EXPECT_FALSE(it.exhausted());
  EXPECT_EQ(it.epoch, 0);
  EXPECT_THAT(labels(it.next()), ElementsAre(0, 1));
  EXPECT_THAT(error_of([&] { iterators::SerialIterator(ds, 0); }), HasSubstr("batch_size must be positive"));
  EXPECT_THAT(error_of([&] { iterators::SerialIterator(nullptr, 2); }), HasSubstr("argument 'dataset' is null"));
}

// ---- MultithreadIterator (Threads.*: run under ThreadSanitizer in CI) -------------------

namespace {

// get_example sleeps a little, so prefetching overlaps with the consumer; example i
// fails when i == fail_at.
class SlowDataset : public datasets::Dataset {
 public:
  SlowDataset(size_t n, int64_t fail_at = -1) : base_(range_dataset(static_cast<int>(n))), fail_at_(fail_at) {}
  size_t size() const override { return base_->size(); }
  std::vector<Array> get_example(size_t i) const override {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    reads_.fetch_add(1);
    if (static_cast<int64_t>(i) == fail_at_) throw Error("SlowDataset: example " + std::to_string(i) + " is bad");
    return base_->get_example(i);
  }
  mutable std::atomic<int> reads_{0};

 private:
  std::shared_ptr<datasets::TupleDataset> base_;
  int64_t fail_at_;
};

}  // namespace

TEST(Threads, MultithreadIteratorSameOrderAsSerial) {
  auto ds = std::make_shared<SlowDataset>(10);
  for (bool repeat : {true, false}) {
    for (bool shuffle : {false, true}) {
      for (size_t threads : {1u, 3u}) {
        iterators::SerialIterator serial(ds, 3, repeat, shuffle, /*seed=*/7);
        iterators::MultithreadIterator multi(ds, 3, repeat, shuffle, threads, /*seed=*/7);
        for (int b = 0; b < 9 && !serial.exhausted(); ++b) {
          ASSERT_FALSE(multi.exhausted());
          auto s = serial.next(), m = multi.next();
          ASSERT_EQ(labels(s), labels(m)) << "repeat " << repeat << " shuffle " << shuffle << " batch " << b;
          EXPECT_THAT(m[0][0].to_vector<float>(), ElementsAre(float(labels(s)[0]), -float(labels(s)[0])));
          EXPECT_EQ(serial.epoch, multi.epoch);
          EXPECT_EQ(serial.is_new_epoch, multi.is_new_epoch);
          EXPECT_DOUBLE_EQ(serial.epoch_detail(), multi.epoch_detail());
        }
        EXPECT_EQ(serial.exhausted(), multi.exhausted());
        if (!repeat) EXPECT_THAT(error_of([&] { multi.next(); }), HasSubstr("no more batches"));
      }
    }
  }
}

TEST(Threads, MultithreadIteratorResetSnapshotAndShutdown) {
  auto ds = std::make_shared<SlowDataset>(8);
  iterators::SerialIterator serial(ds, 3, true, true, 11);
  auto multi = std::make_shared<iterators::MultithreadIterator>(ds, 3, true, true, 2, 11);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(labels(serial.next()), labels(multi->next()));
  // reset() with a batch being prefetched: the same as SerialIterator's reset.
  serial.reset();
  multi->reset();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(labels(serial.next()), labels(multi->next()));
  iterators::StateMap state;
  multi->serialize(state, "m/");
  iterators::MultithreadIterator resumed(ds, 3, true, true, 2, /*seed=*/0);
  resumed.deserialize(state, "m/");
  for (int i = 0; i < 4; ++i) {
    auto expected = labels(serial.next());
    EXPECT_EQ(expected, labels(multi->next()));
    EXPECT_EQ(expected, labels(resumed.next()));
  }
  // A moved iterator keeps its prefetched batch; the moved-from one says so.
  iterators::MultithreadIterator moved(std::move(resumed));
  auto expected = labels(serial.next());
  EXPECT_EQ(expected, labels(moved.next()));
  EXPECT_EQ(expected, labels(multi->next()));
  EXPECT_THAT(error_of([&] { resumed.next(); }), HasSubstr("moved from"));  // NOLINT(bugprone-use-after-move)
  // Destroying iterators with a batch in flight joins the threads cleanly.
  {
    iterators::MultithreadIterator busy(ds, 8, true, true, 4);
    busy.next();
  }
  // finalize() stops the threads; the iterator starts new ones if used again.
  multi->finalize();
  EXPECT_EQ(labels(serial.next()), labels(multi->next()));
  EXPECT_THAT(error_of([&] { iterators::MultithreadIterator(ds, 2, true, true, 0); }),
              HasSubstr("argument 'n_threads' must be positive"));
}

TEST(Threads, MultithreadIteratorRethrowsDatasetErrors) {
  auto ds = std::make_shared<SlowDataset>(6, /*fail_at=*/4);
  iterators::MultithreadIterator it(ds, 3, true, false, 2);
  EXPECT_THAT(labels(it.next()), ElementsAre(0, 1, 2));
  EXPECT_THAT(error_of([&] { it.next(); }), HasSubstr("example 4 is bad"));
  EXPECT_EQ(it.epoch, 1);  // the failed batch counts as read, like SerialIterator's
  EXPECT_THAT(labels(it.next()), ElementsAre(0, 1, 2));
}

TEST(Threads, MultithreadIteratorTrainsLikeSerial) {
  // The same model trained from a SerialIterator and a MultithreadIterator (same seed)
  // ends with the same weights, and an Evaluator can take one too.
  auto train = [](iterators::IteratorHandle it, iterators::IteratorHandle eval_it) {
    Scale model;
    optimizers::SGD opt(0.01);
    opt.setup(model);
    T::LossFunc loss = [&model](const std::vector<Variable>& in) {
      Variable x = F::reshape(F::cast(in[1], DType::f32), {in[1].shape()[0], 1}) * (1.0f / 8.0f);
      Variable d = F::broadcast_to(model.w, x.shape()) * x - x * 3.0f;
      Variable l = F::sum(d * d);
      report("loss", l);
      return l;
    };
    T::StandardUpdater updater(it, opt, loss);
    for (int i = 0; i < 12; ++i) updater.update();
    E::Evaluator ev(eval_it, loss);
    double eval_loss = ev.evaluate().at("validation/main/loss");
    updater.finalize();
    return std::make_pair(model.w.array().to_vector<float>()[0], eval_loss);
  };
  auto ds = std::make_shared<SlowDataset>(8);
  auto serial = train(iterators::SerialIterator(ds, 3, true, true, 4), iterators::SerialIterator(ds, 4, false, false));
  auto multi = train(iterators::MultithreadIterator(ds, 3, true, true, 2, 4),
                     iterators::MultithreadIterator(ds, 4, false, false, 2));
  EXPECT_EQ(serial.first, multi.first);
  EXPECT_EQ(serial.second, multi.second);
  EXPECT_GT(serial.first, 0.5f);  // it learned towards 3
}
