// kiln::training: Chainer's training loop in C++ -- Reporter, StandardUpdater, Trainer,
// triggers and extensions (Evaluator, LogReport, PrintReport, ProgressBar, snapshot,
// snapshot_object, PlotReport, observe_value, observe_lr).
//
//   auto model = L::Classifier<MLP>();
//   optimizers::Adam opt; opt.setup(model);
//   iterators::SerialIterator train_iter(train, 64), test_iter(test, 128, false, false);
//   training::StandardUpdater updater(train_iter, opt, model);
//   training::Trainer trainer(updater, {20, "epoch"}, "result");
//   namespace E = training::extensions;
//   trainer.extend(E::Evaluator(test_iter, model));
//   trainer.extend(E::LogReport());
//   trainer.extend(E::PrintReport({"epoch", "main/loss", "validation/main/accuracy"}));
//   trainer.extend(E::snapshot(), {10, "epoch"});
//   trainer.run();
//
// Observations: while the trainer runs an update, report("loss", v) inside the
// model writes "main/loss" into the trainer's observation (the observer "main"
// is the updater's model); the Evaluator's model reports "validation/main/loss".
// Values are Variables: reporting does not realize; summaries read them after
// the step's single realize.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/config.h"
#include "kiln/datasets.h"
#include "kiln/link.h"
#include "kiln/optimizers.h"
#include "kiln/variable.h"

namespace kiln {

// The observation dictionary: reported name -> value.
using Observation = std::map<std::string, Variable>;

// Declared in links.h too: writes `value` under the current observer's prefix.
void report(const std::string& name, const Variable& value);
// A host number (stored as a 0-d float64 Variable).
void report(const std::string& name, double value);
// Every entry of `values`, each under the current observer's prefix.
void report(const Observation& values);

// Chainer's Reporter: which observation dictionary report() writes into, and
// under which observer name. Scopes nest; each restores the previous state
// when destroyed.
class Reporter {
 public:
  class Scope {
   public:
    Scope(Observation* observation, bool set_observation, std::optional<std::string> observer);
    ~Scope();
    Scope(Scope&& other) noexcept;
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Scope& operator=(Scope&&) = delete;

   private:
    Observation* prev_observation_ = nullptr;
    std::string prev_observer_;
    bool restore_observation_ = false, restore_observer_ = false, active_ = true;
  };
  // report() writes into `observation` while the scope lives (chainer.Reporter.scope).
  [[nodiscard]] static Scope scope(Observation& observation);
  // report(name, v) writes "<observer>/<name>" while the scope lives (Chainer's observer
  // prefix, e.g. "main/loss"). An empty observer writes names unchanged.
  [[nodiscard]] static Scope observe(const std::string& observer);
  static Observation* current_observation();  // nullptr outside any scope
  static const std::string& current_observer();
};

// The value of an observation as a number: the item of a size-1 value, else its mean.
double observation_value(const Variable& value);

using ArrayMap = std::map<std::string, Array>;

// Chainer's DictSummary: running mean (and std) of every key added.
class DictSummary {
 public:
  void add(const Observation& observation);  // realizes each value
  void add(const std::string& key, double value);
  std::map<std::string, double> compute_mean() const;
  std::map<std::string, double> compute_std() const;
  bool has(const std::string& key) const { return stats_.count(key) != 0; }
  bool empty() const { return stats_.empty(); }
  void reset() { stats_.clear(); }
  // Keys "<prefix><key>/_x", "/_x2", "/_n" like Chainer's Summary.serialize.
  void serialize(ArrayMap& out, const std::string& prefix) const;
  void deserialize(const ArrayMap& in, const std::string& prefix);

 private:
  struct Stat {
    double x = 0, x2 = 0;
    int64_t n = 0;
  };
  std::map<std::string, Stat> stats_;
};

namespace training {

class Trainer;

// Converts a minibatch of examples into input arrays (default: concat_examples).
using Converter = std::function<std::vector<Array>(const std::vector<std::vector<Array>>&)>;
// A model or loss function called on the converted inputs (as Variables) that returns the loss.
using LossFunc = std::function<Variable(const std::vector<Variable>&)>;

// Wraps `model` (kept by reference) as a LossFunc: model(args) when it takes the vector,
// otherwise model(x), model(x, t) or model(x, t, u) by the number of converted arrays.
template <class Model>
LossFunc as_loss_func(Model& model);

// ---- triggers ----------------------------------------------------------------------

class TriggerBase {
 public:
  virtual ~TriggerBase();
  virtual bool operator()(Trainer& trainer) = 0;
  virtual void serialize(ArrayMap&, const std::string&) const {}
  virtual void deserialize(const ArrayMap&, const std::string&) {}
  // (length, unit) when the trigger stops the training at a known point (ProgressBar).
  virtual std::optional<std::pair<int64_t, std::string>> training_length() const { return std::nullopt; }
};

// A shared handle to a trigger. Trigger(10, "epoch") (or {10, "epoch"}) is an
// IntervalTrigger; any TriggerBase subclass or callable bool(Trainer&) converts.
// An empty Trigger never fires (as a stop trigger: train until stopped otherwise);
// given to Trainer::extend it means the extension's default trigger.
class Trigger {
 public:
  Trigger() = default;
  Trigger(int64_t period, const std::string& unit);
  template <class T, std::enable_if_t<std::is_base_of_v<TriggerBase, T>, int> = 0>
  Trigger(T trigger) : impl_(std::make_shared<T>(std::move(trigger))) {}  // NOLINT
  template <class F, std::enable_if_t<!std::is_base_of_v<TriggerBase, F> &&
                                          !std::is_same_v<std::decay_t<F>, Trigger> &&
                                          std::is_invocable_r_v<bool, F&, Trainer&>,
                                      int> = 0>
  Trigger(F fn) : impl_(make_function_trigger(std::function<bool(Trainer&)>(std::move(fn)))) {}  // NOLINT
  explicit Trigger(std::shared_ptr<TriggerBase> impl) : impl_(std::move(impl)) {}

  bool operator()(Trainer& trainer) const { return impl_ && (*impl_)(trainer); }
  explicit operator bool() const { return impl_ != nullptr; }
  TriggerBase* get() const { return impl_.get(); }

 private:
  static std::shared_ptr<TriggerBase> make_function_trigger(std::function<bool(Trainer&)> fn);
  std::shared_ptr<TriggerBase> impl_;
};

namespace triggers {

// Fires every `period` iterations, or whenever the epoch count (epoch_detail)
// crosses a multiple of `period` epochs. Stateless: it reads the updater.
class IntervalTrigger : public TriggerBase {
 public:
  IntervalTrigger(int64_t period, std::string unit);
  bool operator()(Trainer& trainer) override;
  std::optional<std::pair<int64_t, std::string>> training_length() const override {
    return std::make_pair(period, unit);
  }
  int64_t period;
  std::string unit;
};

// Fires at the given iterations or epochs.
class ManualScheduleTrigger : public TriggerBase {
 public:
  ManualScheduleTrigger(std::vector<double> points, std::string unit);
  bool operator()(Trainer& trainer) override;
  std::vector<double> points;
  std::string unit;
};

// Accumulates `key` every call; when `trigger` fires, compares the mean with the
// best one so far and fires if it is better (chainer.training.triggers.BestValueTrigger).
class BestValueTrigger : public TriggerBase {
 public:
  BestValueTrigger(std::string key, std::function<bool(double best, double current)> compare,
                   Trigger trigger = Trigger(1, "epoch"));
  bool operator()(Trainer& trainer) override;
  void serialize(ArrayMap& out, const std::string& prefix) const override;
  void deserialize(const ArrayMap& in, const std::string& prefix) override;
  std::optional<double> best_value;

 private:
  std::string key_;
  std::function<bool(double, double)> compare_;
  Trigger interval_;
  DictSummary summary_;
};

// Fires when the mean of `key` over the interval is the largest so far.
class MaxValueTrigger : public BestValueTrigger {
 public:
  explicit MaxValueTrigger(std::string key, Trigger trigger = Trigger(1, "epoch"));
};
// Fires when the mean of `key` over the interval is the smallest so far.
class MinValueTrigger : public BestValueTrigger {
 public:
  explicit MinValueTrigger(std::string key, Trigger trigger = Trigger(1, "epoch"));
};

// A stop trigger: fires when `monitor` has not improved for `patience` checks
// (every `check_trigger`), or when `max_trigger` fires. mode "auto" maximizes keys
// containing "accuracy" and minimizes the others; "min" / "max" force it.
class EarlyStoppingTrigger : public TriggerBase {
 public:
  EarlyStoppingTrigger(std::string monitor = "main/loss", int64_t patience = 3,
                       Trigger max_trigger = Trigger(100, "epoch"), std::string mode = "auto",
                       Trigger check_trigger = Trigger(1, "epoch"), bool verbose = false);
  bool operator()(Trainer& trainer) override;
  void serialize(ArrayMap& out, const std::string& prefix) const override;
  void deserialize(const ArrayMap& in, const std::string& prefix) override;
  std::optional<std::pair<int64_t, std::string>> training_length() const override;
  std::string monitor;
  int64_t patience;
  bool maximize;
  bool verbose;
  double best;
  int64_t count = 0;

 private:
  Trigger max_trigger_, check_trigger_;
  DictSummary summary_;
};

}  // namespace triggers

using triggers::IntervalTrigger;

// ---- updaters ----------------------------------------------------------------------

class Updater {
 public:
  virtual ~Updater();
  virtual void update() = 0;
  virtual int64_t iteration() const = 0;
  virtual int64_t epoch() const = 0;
  virtual double epoch_detail() const = 0;
  virtual double previous_epoch_detail() const = 0;  // epoch_detail before the last update
  virtual bool is_new_epoch() const = 0;
  virtual optimizers::Optimizer& get_optimizer(const std::string& name = "main") = 0;
  virtual void serialize(ArrayMap& out, const std::string& prefix) = 0;
  virtual void deserialize(const ArrayMap& in, const std::string& prefix, const std::string& file) = 0;
  virtual void finalize() {}
};

// chainer.training.updaters.StandardUpdater: each update takes the next batch,
// converts it, and runs optimizer.update(loss_func, inputs...) -- cleargrads,
// loss = loss_func(inputs), backward, update -- with report() writing under the
// observer "main". The model is the optimizer's target: pass it (or a loss
// function) as the third argument; it is kept by reference.
// The iterator is any iterators::Iterator: a value (SerialIterator, a user subclass) is
// copied or moved in; a std::shared_ptr is shared with the caller.
// Another step (Chainer's BPTTUpdater of the ptb example) overrides update_core() and
// reads get_iterator(), get_optimizer(), converter() and loss_func().
class StandardUpdater : public Updater {
 public:
  StandardUpdater(iterators::IteratorHandle iterator, optimizers::Optimizer& optimizer, LossFunc loss_func,
                  Converter converter = nullptr);
  template <class Model, std::enable_if_t<!std::is_convertible_v<Model&, LossFunc> ||
                                              std::is_base_of_v<Link, Model>,
                                          int> = 0>
  StandardUpdater(iterators::IteratorHandle iterator, optimizers::Optimizer& optimizer, Model& model,
                  Converter converter = nullptr)
      : StandardUpdater(std::move(iterator), optimizer, as_loss_func(model), std::move(converter)) {}

  // Chainer's update(): update_core(), then the iteration count + 1.
  void update() override;
  // One training step from the next batch (see the class comment). A batch the converter
  // rejects (e.g. examples of different shapes) throws kiln::Error naming the iterator.
  virtual void update_core();
  int64_t iteration() const override { return iteration_; }
  int64_t epoch() const override { return iterator_->epoch; }
  double epoch_detail() const override { return iterator_->epoch_detail(); }
  double previous_epoch_detail() const override { return previous_epoch_detail_; }
  bool is_new_epoch() const override { return iterator_->is_new_epoch; }
  optimizers::Optimizer& get_optimizer(const std::string& name = "main") override;
  iterators::Iterator& get_iterator(const std::string& name = "main");
  const Converter& converter() const { return converter_; }
  const LossFunc& loss_func() const { return loss_func_; }
  // Converts a batch with converter(); errors name the updater and the iterator.
  std::vector<Array> convert(const iterators::Batch& batch) const;
  // Keys (Chainer's layout under `prefix`): iteration, iterator:main/... (the iterator's
  // serialize(), e.g. SerialIterator's current_position, epoch, is_new_epoch, order) and
  // iterator:main/previous_epoch_detail, model:main/..., optimizer:main/...
  void serialize(ArrayMap& out, const std::string& prefix) override;
  // Restores the model, then the optimizer, then the iterator (its deserialize()), then
  // the iteration count.
  void deserialize(const ArrayMap& in, const std::string& prefix, const std::string& file) override;
  void finalize() override { iterator_->finalize(); }

 private:
  iterators::IteratorHandle iterator_;
  optimizers::Optimizer* optimizer_;
  LossFunc loss_func_;
  Converter converter_;
  int64_t iteration_ = 0;
  double previous_epoch_detail_ = 0;
};

// ---- extensions ----------------------------------------------------------------------

constexpr int PRIORITY_WRITER = 300;
constexpr int PRIORITY_EDITOR = 200;
constexpr int PRIORITY_READER = 100;
constexpr int PRIORITY_SNAPSHOT = -100;

// A trainer extension (chainer.training.Extension). Extensions run after each
// update whose trigger fires, in decreasing priority (writers such as the
// Evaluator first, readers such as LogReport after, snapshots last).
class Extension {
 public:
  virtual ~Extension();
  virtual void operator()(Trainer& trainer) = 0;
  virtual std::string default_name() const = 0;
  virtual Trigger default_trigger() const { return Trigger(1, "iteration"); }
  virtual int priority() const { return PRIORITY_READER; }
  virtual void initialize(Trainer&) {}  // at the start of run()
  virtual void finalize(Trainer&) {}    // at the end of run()
  virtual void serialize(ArrayMap&, const std::string&) const {}
  virtual void deserialize(const ArrayMap&, const std::string&) {}
};

// ---- the trainer -------------------------------------------------------------------

class Trainer {
 public:
  // Runs `updater` until `stop_trigger` fires (checked before each update); `out` is
  // the output folder (created by run()). Like Chainer, the trainer uses the updater
  // object it is given: a named updater (an lvalue) is used by reference and must
  // outlive the trainer; a temporary is moved into the trainer.
  Trainer(std::shared_ptr<Updater> updater, Trigger stop_trigger = Trigger(), std::string out = "result");
  template <class U, std::enable_if_t<std::is_base_of_v<Updater, std::decay_t<U>>, int> = 0>
  Trainer(U&& updater, Trigger stop_trigger = Trigger(), std::string out = "result")  // NOLINT
      : Trainer(hold<Updater>(std::forward<U>(updater)), std::move(stop_trigger), std::move(out)) {}

  // Registers an extension: an Extension subclass, or a callable void(Trainer&).
  // A named extension object (an lvalue) is used by reference and must outlive the
  // trainer; a temporary is moved in. An empty trigger means the extension's default;
  // names default to default_name() and are made unique with "_1", "_2", ...
  void extend(std::shared_ptr<Extension> extension, Trigger trigger = Trigger(), std::string name = "",
              std::optional<int> priority = std::nullopt);
  template <class E, std::enable_if_t<std::is_base_of_v<Extension, std::decay_t<E>>, int> = 0>
  void extend(E&& extension, Trigger trigger = Trigger(), std::string name = "",
              std::optional<int> priority = std::nullopt) {
    extend(hold<Extension>(std::forward<E>(extension)), std::move(trigger), std::move(name), priority);
  }
  template <class F, std::enable_if_t<!std::is_base_of_v<Extension, std::decay_t<F>> &&
                                          !std::is_convertible_v<F, std::shared_ptr<Extension>> &&
                                          std::is_invocable_v<F&, Trainer&>,
                                      int> = 0>
  void extend(F fn, Trigger trigger = Trigger(), std::string name = "",
              std::optional<int> priority = std::nullopt) {
    extend(make_lambda_extension(std::function<void(Trainer&)>(std::move(fn))), std::move(trigger),
           name.empty() ? "lambda" : std::move(name), priority);
  }

  // The training loop: while !stop_trigger: observation = {}; within a reporter scope,
  // updater.update(), then every extension whose trigger fires.
  void run();

  Updater& updater() { return *updater_; }
  const Updater& updater() const { return *updater_; }
  const std::string& out() const { return out_; }
  const Trigger& stop_trigger() const { return stop_trigger_; }
  // The observation of the current (or last) iteration.
  Observation observation;
  // Seconds of training, including those before a resumed snapshot.
  double elapsed_time() const;

  Extension& get_extension(const std::string& name);
  template <class E>
  E& get_extension(const std::string& name);
  bool has_extension(const std::string& name) const;
  std::vector<std::string> extension_names() const;  // in execution order

  // Trainer state under Chainer's keys: updater/..., stop_trigger/..., extensions/<name>/...,
  // extension_triggers/<name>/..., _snapshot_elapsed_time.
  ArrayMap serialize();
  // Restores a state written by serialize(); `file` names the source in errors.
  void deserialize(const ArrayMap& in, const std::string& file = "<arrays>");

 private:
  struct Entry {
    std::string name;
    std::shared_ptr<Extension> extension;
    Trigger trigger;
    int priority;
    int64_t order;
  };
  static std::shared_ptr<Extension> make_lambda_extension(std::function<void(Trainer&)> fn);
  // An lvalue by reference (a non-owning handle), an rvalue moved into an owned object.
  template <class Base, class T>
  static std::shared_ptr<Base> hold(T&& object) {
    using D = std::decay_t<T>;
    if constexpr (std::is_lvalue_reference_v<T>)
      return std::shared_ptr<Base>(std::shared_ptr<Base>(), static_cast<Base*>(&object));
    else
      return std::make_shared<D>(std::move(object));
  }
  std::vector<Entry*> sorted_entries();
  std::shared_ptr<Updater> updater_;
  Trigger stop_trigger_;
  std::string out_;
  std::vector<Entry> extensions_;
  bool running_ = false, done_ = false;
  double snapshot_elapsed_ = 0;
  std::chrono::steady_clock::time_point start_;
};

template <class E>
E& Trainer::get_extension(const std::string& name) {
  auto* e = dynamic_cast<E*>(&get_extension(name));
  if (!e) throw Error("kiln: Trainer::get_extension: extension '" + name + "' has another type");
  return *e;
}

// Restores a trainer from a snapshot written by extensions::snapshot (call after
// every extend(), before run()); training continues at the saved iteration.
void load_snapshot(const std::string& path, Trainer& trainer);

namespace extensions {

// Evaluates `model` on every batch of `iterator` (a fresh pass each time: eval_hook(*this)
// if given, then iterator.reset(), then batches until the iterator is exhausted or an
// epoch ends) with train=false and enable_backprop=false, reporting under "<name>/main"
// and returning the means over batches ("validation/main/loss", ...). The iterator is
// any iterators::Iterator (a value is copied in, a std::shared_ptr shared); eval_hook
// is Chainer's (e.g. resetting an RNN's state before the pass).
class Evaluator : public Extension {
 public:
  using EvalHook = std::function<void(Evaluator&)>;
  Evaluator(iterators::IteratorHandle iterator, LossFunc eval_func, Converter converter = nullptr,
            std::string name = "validation", EvalHook eval_hook = nullptr);
  template <class Model, std::enable_if_t<!std::is_convertible_v<Model&, LossFunc> ||
                                              std::is_base_of_v<Link, Model>,
                                          int> = 0>
  Evaluator(iterators::IteratorHandle iterator, Model& model, Converter converter = nullptr,
            std::string name = "validation", EvalHook eval_hook = nullptr)
      : Evaluator(std::move(iterator), as_loss_func(model), std::move(converter), std::move(name),
                  std::move(eval_hook)) {}

  std::map<std::string, double> evaluate();
  void operator()(Trainer& trainer) override;
  std::string default_name() const override { return name_; }
  Trigger default_trigger() const override { return Trigger(1, "epoch"); }
  int priority() const override { return PRIORITY_WRITER; }
  void finalize(Trainer&) override { iterator_->finalize(); }
  iterators::Iterator& get_iterator(const std::string& name = "main");

 private:
  iterators::IteratorHandle iterator_;
  LossFunc eval_func_;
  Converter converter_;
  std::string name_;
  EvalHook eval_hook_;
};

// Accumulates the observations every iteration; when `trigger` fires, appends
// {means..., epoch, iteration, elapsed_time} to the log and writes it as JSON to
// out/<filename> (atomically). keys empty: every observed key.
class LogReport : public Extension {
 public:
  explicit LogReport(std::vector<std::string> keys = {}, Trigger trigger = Trigger(1, "epoch"),
                     std::string filename = "log");
  void operator()(Trainer& trainer) override;
  std::string default_name() const override { return "LogReport"; }
  void serialize(ArrayMap& out, const std::string& prefix) const override;
  void deserialize(const ArrayMap& in, const std::string& prefix) override;
  // One entry per report; "epoch" and "iteration" are whole numbers.
  const std::vector<std::map<std::string, double>>& log() const { return log_; }
  std::string to_json() const;  // the file's content

 private:
  std::vector<std::string> keys_;
  Trigger trigger_;
  std::string filename_;
  DictSummary summary_;
  std::vector<std::map<std::string, double>> log_;
};

// Prints the entries of each new LogReport entry as a table (a header first).
class PrintReport : public Extension {
 public:
  explicit PrintReport(std::vector<std::string> entries, std::string log_report = "LogReport",
                       std::FILE* out = stdout);
  void operator()(Trainer& trainer) override;
  std::string default_name() const override { return "PrintReport"; }
  void serialize(ArrayMap& out, const std::string& prefix) const override;
  void deserialize(const ArrayMap& in, const std::string& prefix) override;

 private:
  std::vector<std::string> entries_;
  std::string log_report_;
  std::FILE* out_;
  size_t printed_ = 0;
  bool header_done_ = false;
};

// Shows training progress (total and this-epoch bars, iterations/s, ETA) on stderr,
// redrawn in place every `update_interval` iterations when stderr is a terminal;
// otherwise one plain line at most every 10 seconds and at the end.
// training_length defaults to the stop trigger's.
class ProgressBar : public Extension {
 public:
  explicit ProgressBar(std::optional<std::pair<int64_t, std::string>> training_length = std::nullopt,
                       int64_t update_interval = 100, int bar_length = 40, std::FILE* out = stderr);
  void initialize(Trainer& trainer) override;
  void operator()(Trainer& trainer) override;
  void finalize(Trainer& trainer) override;
  std::string default_name() const override { return "ProgressBar"; }
  // The text shown for the trainer's current state (used by the extension and tests).
  std::string status_line(Trainer& trainer);

 private:
  void draw(Trainer& trainer, bool final_line);
  std::optional<std::pair<int64_t, std::string>> length_;
  int64_t update_interval_;
  int bar_length_;
  std::FILE* out_;
  bool tty_ = false, drawn_ = false;
  int64_t start_iteration_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::vector<std::pair<double, int64_t>> recent_;  // (time, iteration) for the speed
};

// Plots the means of `y_keys` against `x_key` ("iteration" or "epoch") each time
// `trigger` fires, as a PNG line chart at out/<file_name> (cairo; written atomically).
class PlotReport : public Extension {
 public:
  PlotReport(std::vector<std::string> y_keys, std::string x_key = "iteration",
             Trigger trigger = Trigger(1, "epoch"), std::string file_name = "plot.png", bool grid = true);
  void operator()(Trainer& trainer) override;
  std::string default_name() const override;
  void serialize(ArrayMap& out, const std::string& prefix) const override;
  void deserialize(const ArrayMap& in, const std::string& prefix) override;
  // (x, y) points per key.
  const std::map<std::string, std::vector<std::pair<double, double>>>& data() const { return data_; }
  // Draws `data` to a PNG file (write atomically); throws kiln::Error on failure.
  static void write_png(const std::string& path, const std::vector<std::string>& y_keys,
                        const std::map<std::string, std::vector<std::pair<double, double>>>& data,
                        const std::string& x_label, bool grid = true);

 private:
  std::vector<std::string> y_keys_;
  std::string x_key_;
  Trigger trigger_;
  std::string file_name_;
  bool grid_;
  DictSummary summary_;
  std::map<std::string, std::vector<std::pair<double, double>>> data_;
};

// Saves the whole trainer state (Trainer::serialize) as npz to out/<filename>, atomically.
// "{iteration}" and "{epoch}" (or Chainer's "{.updater.iteration}", "{.updater.epoch}")
// in the name are replaced. Default trigger (1, "epoch"), priority PRIORITY_SNAPSHOT.
class Snapshot : public Extension {
 public:
  explicit Snapshot(std::string filename = "snapshot_iter_{iteration}");
  void operator()(Trainer& trainer) override;
  std::string default_name() const override { return "snapshot"; }
  Trigger default_trigger() const override { return Trigger(1, "epoch"); }
  int priority() const override { return PRIORITY_SNAPSHOT; }

 private:
  std::string filename_;
};
Snapshot snapshot(std::string filename = "snapshot_iter_{iteration}");

// Saves `link` (its parameters and persistents, save_npz's layout) to out/<filename>.
class SnapshotObject : public Extension {
 public:
  SnapshotObject(const Link& link, std::string filename);
  void operator()(Trainer& trainer) override;
  std::string default_name() const override { return "snapshot_object"; }
  Trigger default_trigger() const override { return Trigger(1, "epoch"); }
  int priority() const override { return PRIORITY_SNAPSHOT; }

 private:
  Link link_;
  std::string filename_;
};
SnapshotObject snapshot_object(const Link& link, std::string filename);

// Reports fn(trainer) under `key` every time it runs (default: every iteration).
class ObserveValue : public Extension {
 public:
  ObserveValue(std::string key, std::function<double(Trainer&)> fn);
  void operator()(Trainer& trainer) override;
  std::string default_name() const override { return "observe_" + key_; }
  int priority() const override { return PRIORITY_WRITER; }

 private:
  std::string key_;
  std::function<double(Trainer&)> fn_;
};
ObserveValue observe_value(std::string key, std::function<double(Trainer&)> fn);
// The optimizer's learning rate ("lr"; Adam's effective lr alpha_t) under `key`.
ObserveValue observe_lr(optimizers::Optimizer& optimizer, std::string key = "lr");

// Formats "{iteration}"/"{epoch}" (and Chainer's "{.updater.iteration}") in a file name.
std::string format_filename(const std::string& pattern, const Trainer& trainer);

}  // namespace extensions

// ---- template implementations ----------------------------------------------------

template <class Model>
LossFunc as_loss_func(Model& model) {
  return [m = &model](const std::vector<Variable>& a) -> Variable {
    if constexpr (std::is_invocable_v<Model&, const std::vector<Variable>&>) {
      return (*m)(a);
    } else {
      constexpr bool one = std::is_invocable_v<Model&, const Variable&>;
      constexpr bool two = std::is_invocable_v<Model&, const Variable&, const Variable&>;
      constexpr bool three = std::is_invocable_v<Model&, const Variable&, const Variable&, const Variable&>;
      static_assert(one || two || three, "kiln::training: the model must be callable on 1, 2 or 3 Variables");
      if constexpr (two) {
        if (a.size() == 2) return (*m)(a[0], a[1]);
      }
      if constexpr (one) {
        if (a.size() == 1) return (*m)(a[0]);
      }
      if constexpr (three) {
        if (a.size() == 3) return (*m)(a[0], a[1], a[2]);
      }
      throw Error("kiln::training: the model cannot be called with " + std::to_string(a.size()) +
                  " converted arrays");
    }
  };
}

}  // namespace training

namespace serializers {
// Trainer snapshots (the same as Trainer::serialize / load_snapshot).
void save_npz(const std::string& path, training::Trainer& trainer, bool compression = true);
void load_npz(const std::string& path, training::Trainer& trainer);
}  // namespace serializers

}  // namespace kiln
