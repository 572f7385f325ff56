// kiln::training core: summaries, triggers, StandardUpdater, Trainer and its serialization.
#include "kiln/training.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "kiln/serializers.h"

namespace kiln {

// ---- values and summaries ----------------------------------------------------------

double observation_value(const Variable& value) {
  Array a = value.array();
  if (a.size() == 1) return a.at(0);
  if (a.size() == 0) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (int64_t i = 0; i < a.size(); ++i) s += a.at(i);
  return s / static_cast<double>(a.size());
}

void DictSummary::add(const Observation& observation) {
  for (const auto& [key, value] : observation) {
    if (value.is_null()) continue;
    add(key, observation_value(value));
  }
}

void DictSummary::add(const std::string& key, double value) {
  Stat& s = stats_[key];
  s.x += value;
  s.x2 += value * value;
  s.n += 1;
}

std::map<std::string, double> DictSummary::compute_mean() const {
  std::map<std::string, double> out;
  for (const auto& [key, s] : stats_)
    if (s.n > 0) out[key] = s.x / static_cast<double>(s.n);
  return out;
}

std::map<std::string, double> DictSummary::compute_std() const {
  std::map<std::string, double> out;
  for (const auto& [key, s] : stats_) {
    if (s.n == 0) continue;
    double n = static_cast<double>(s.n), mean = s.x / n;
    out[key] = std::sqrt(std::max(0.0, s.x2 / n - mean * mean));
  }
  return out;
}

void DictSummary::serialize(ArrayMap& out, const std::string& prefix) const {
  for (const auto& [key, s] : stats_) {
    out[prefix + key + "/_x"] = Array::scalar<double>(s.x);
    out[prefix + key + "/_x2"] = Array::scalar<double>(s.x2);
    out[prefix + key + "/_n"] = Array::scalar<int64_t>(s.n);
  }
}

void DictSummary::deserialize(const ArrayMap& in, const std::string& prefix) {
  stats_.clear();
  const std::string suffix = "/_n";
  for (auto it = in.lower_bound(prefix); it != in.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    const std::string& k = it->first;
    if (k.size() < prefix.size() + suffix.size() || k.compare(k.size() - suffix.size(), suffix.size(), suffix))
      continue;
    std::string key = k.substr(prefix.size(), k.size() - prefix.size() - suffix.size());
    Stat s;
    s.n = static_cast<int64_t>(it->second.at(0));
    auto x = in.find(prefix + key + "/_x"), x2 = in.find(prefix + key + "/_x2");
    if (x != in.end()) s.x = x->second.at(0);
    if (x2 != in.end()) s.x2 = x2->second.at(0);
    stats_[key] = s;
  }
}

namespace training {

namespace {

int64_t get_int(const ArrayMap& in, const std::string& key, const std::string& file) {
  auto it = in.find(key);
  if (it == in.end()) throw Error(fmt::format("kiln: load_snapshot: '{}': missing key '{}'", file, key));
  if (it->second.size() != 1)
    throw Error(fmt::format("kiln: load_snapshot: '{}': key '{}' is not a scalar", file, key));
  return static_cast<int64_t>(it->second.at(0));
}

double get_double(const ArrayMap& in, const std::string& key, double fallback) {
  auto it = in.find(key);
  if (it == in.end() || it->second.size() != 1) return fallback;
  return it->second.at(0);
}

void check_unit(const std::string& unit, const char* who) {
  if (unit != "iteration" && unit != "epoch")
    throw Error(fmt::format("kiln: {}: unit must be 'iteration' or 'epoch', got '{}'", who, unit));
}

class FunctionTrigger : public TriggerBase {
 public:
  explicit FunctionTrigger(std::function<bool(Trainer&)> fn) : fn_(std::move(fn)) {}
  bool operator()(Trainer& trainer) override { return fn_(trainer); }

 private:
  std::function<bool(Trainer&)> fn_;
};

class LambdaExtension : public Extension {
 public:
  explicit LambdaExtension(std::function<void(Trainer&)> fn) : fn_(std::move(fn)) {}
  void operator()(Trainer& trainer) override { fn_(trainer); }
  std::string default_name() const override { return "lambda"; }

 private:
  std::function<void(Trainer&)> fn_;
};

}  // namespace

// ---- triggers ----------------------------------------------------------------------

TriggerBase::~TriggerBase() = default;

Trigger::Trigger(int64_t period, const std::string& unit)
    : impl_(std::make_shared<triggers::IntervalTrigger>(period, unit)) {}

std::shared_ptr<TriggerBase> Trigger::make_function_trigger(std::function<bool(Trainer&)> fn) {
  return std::make_shared<FunctionTrigger>(std::move(fn));
}

namespace triggers {

IntervalTrigger::IntervalTrigger(int64_t period_, std::string unit_) : period(period_), unit(std::move(unit_)) {
  check_unit(unit, "IntervalTrigger");
  if (period <= 0) throw Error(fmt::format("kiln: IntervalTrigger: period must be positive, got {}", period));
}

bool IntervalTrigger::operator()(Trainer& trainer) {
  const Updater& u = trainer.updater();
  if (unit == "iteration") return u.iteration() > 0 && u.iteration() % period == 0;
  if (u.iteration() == 0) return false;
  double p = static_cast<double>(period);
  return std::floor(u.epoch_detail() / p + 1e-12) != std::floor(u.previous_epoch_detail() / p + 1e-12);
}

ManualScheduleTrigger::ManualScheduleTrigger(std::vector<double> points_, std::string unit_)
    : points(std::move(points_)), unit(std::move(unit_)) {
  check_unit(unit, "ManualScheduleTrigger");
}

bool ManualScheduleTrigger::operator()(Trainer& trainer) {
  const Updater& u = trainer.updater();
  if (u.iteration() == 0) return false;
  for (double p : points) {
    if (unit == "iteration") {
      if (static_cast<double>(u.iteration()) == p) return true;
    } else if (u.previous_epoch_detail() < p && p <= u.epoch_detail() + 1e-12) {
      return true;
    }
  }
  return false;
}

BestValueTrigger::BestValueTrigger(std::string key, std::function<bool(double, double)> compare, Trigger trigger)
    : key_(std::move(key)), compare_(std::move(compare)), interval_(std::move(trigger)) {}

bool BestValueTrigger::operator()(Trainer& trainer) {
  auto it = trainer.observation.find(key_);
  if (it != trainer.observation.end()) summary_.add(key_, observation_value(it->second));
  if (!interval_(trainer)) return false;
  auto stats = summary_.compute_mean();
  auto s = stats.find(key_);
  if (s == stats.end()) return false;
  double value = s->second;
  summary_.reset();
  if (!best_value || compare_(*best_value, value)) {
    best_value = value;
    return true;
  }
  return false;
}

void BestValueTrigger::serialize(ArrayMap& out, const std::string& prefix) const {
  if (best_value) out[prefix + "_best_value"] = Array::scalar<double>(*best_value);
  summary_.serialize(out, prefix + "_summary/");
}

void BestValueTrigger::deserialize(const ArrayMap& in, const std::string& prefix) {
  auto it = in.find(prefix + "_best_value");
  best_value.reset();
  if (it != in.end()) best_value = it->second.at(0);
  summary_.deserialize(in, prefix + "_summary/");
}

MaxValueTrigger::MaxValueTrigger(std::string key, Trigger trigger)
    : BestValueTrigger(std::move(key), [](double best, double v) { return best < v; }, std::move(trigger)) {}

MinValueTrigger::MinValueTrigger(std::string key, Trigger trigger)
    : BestValueTrigger(std::move(key), [](double best, double v) { return best > v; }, std::move(trigger)) {}

EarlyStoppingTrigger::EarlyStoppingTrigger(std::string monitor_, int64_t patience_, Trigger max_trigger,
                                           std::string mode, Trigger check_trigger, bool verbose_)
    : monitor(std::move(monitor_)),
      patience(patience_),
      verbose(verbose_),
      max_trigger_(std::move(max_trigger)),
      check_trigger_(std::move(check_trigger)) {
  if (mode == "auto")
    maximize = monitor.find("acc") != std::string::npos;
  else if (mode == "max")
    maximize = true;
  else if (mode == "min")
    maximize = false;
  else
    throw Error("kiln: EarlyStoppingTrigger: mode must be 'auto', 'min' or 'max', got '" + mode + "'");
  best = maximize ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

bool EarlyStoppingTrigger::operator()(Trainer& trainer) {
  auto it = trainer.observation.find(monitor);
  bool present = it != trainer.observation.end();
  if (present) summary_.add(monitor, observation_value(it->second));
  if (max_trigger_(trainer)) return true;
  if (!check_trigger_(trainer)) return false;
  if (!present) {
    fmt::print(stderr, "kiln: EarlyStoppingTrigger: '{}' is not in the observation\n", monitor);
    return false;
  }
  double current = summary_.compute_mean()[monitor];
  summary_.reset();
  if (maximize ? current > best : current < best) {
    best = current;
    count = 0;
  } else {
    ++count;
  }
  if (count >= patience) {
    if (verbose) fmt::print("Early stopping: {} did not improve for {} checks\n", monitor, patience);
    count = 0;
    return true;
  }
  return false;
}

void EarlyStoppingTrigger::serialize(ArrayMap& out, const std::string& prefix) const {
  out[prefix + "best"] = Array::scalar<double>(best);
  out[prefix + "count"] = Array::scalar<int64_t>(count);
  summary_.serialize(out, prefix + "_summary/");
  if (max_trigger_) max_trigger_.get()->serialize(out, prefix + "max_trigger/");
}

void EarlyStoppingTrigger::deserialize(const ArrayMap& in, const std::string& prefix) {
  best = get_double(in, prefix + "best", best);
  count = static_cast<int64_t>(get_double(in, prefix + "count", static_cast<double>(count)));
  summary_.deserialize(in, prefix + "_summary/");
  if (max_trigger_) max_trigger_.get()->deserialize(in, prefix + "max_trigger/");
}

std::optional<std::pair<int64_t, std::string>> EarlyStoppingTrigger::training_length() const {
  if (!max_trigger_) return std::nullopt;
  return max_trigger_.get()->training_length();
}

}  // namespace triggers

// ---- updaters ----------------------------------------------------------------------

Updater::~Updater() = default;

StandardUpdater::StandardUpdater(iterators::IteratorHandle iterator, optimizers::Optimizer& optimizer,
                                 LossFunc loss_func, Converter converter)
    : iterator_(std::move(iterator)),
      optimizer_(&optimizer),
      loss_func_(std::move(loss_func)),
      converter_(std::move(converter)) {
  if (!iterator_) throw Error("kiln: StandardUpdater: argument 'iterator' is null");
  if (!optimizer.is_setup())
    throw Error("kiln: StandardUpdater: call optimizer.setup(model) before creating the updater");
  if (!loss_func_) throw Error("kiln: StandardUpdater: no model or loss function given");
  if (!converter_) converter_ = [](const std::vector<std::vector<Array>>& b) { return concat_examples(b); };
}

optimizers::Optimizer& StandardUpdater::get_optimizer(const std::string& name) {
  if (name != "main") throw Error("kiln: StandardUpdater: no optimizer named '" + name + "'");
  return *optimizer_;
}

iterators::Iterator& StandardUpdater::get_iterator(const std::string& name) {
  if (name != "main") throw Error("kiln: StandardUpdater: no iterator named '" + name + "'");
  return *iterator_;
}

std::vector<Array> StandardUpdater::convert(const iterators::Batch& batch) const {
  try {
    return converter_(batch);
  } catch (const Error& e) {
    throw Error(fmt::format("kiln: StandardUpdater: the batch of iterator 'main' at iteration {} cannot be "
                            "converted: {}",
                            iteration_, e.what()));
  }
}

void StandardUpdater::update() {
  previous_epoch_detail_ = iterator_->epoch_detail();
  update_core();
  ++iteration_;
}

void StandardUpdater::update_core() {
  auto batch = iterator_->next();
  std::vector<Array> arrays = convert(batch);
  std::vector<Variable> inputs;
  inputs.reserve(arrays.size());
  for (const Array& a : arrays) inputs.emplace_back(a, /*requires_grad=*/false);
  {
    auto observer = Reporter::observe("main");
    optimizer_->update([&] { return loss_func_(inputs); });
  }
  if (iterator_->is_new_epoch) optimizer_->new_epoch();
}

void StandardUpdater::serialize(ArrayMap& out, const std::string& prefix) {
  out[prefix + "iteration"] = Array::scalar<int64_t>(iteration_);
  iterator_->serialize(out, prefix + "iterator:main/");
  out[prefix + "iterator:main/previous_epoch_detail"] = Array::scalar<double>(previous_epoch_detail_);
  for (auto& [k, v] : serializers::to_arrays(optimizer_->target(), prefix + "model:main/")) out[k] = v;
  for (auto& [k, v] : serializers::to_arrays(*optimizer_, prefix + "optimizer:main/")) out[k] = v;
}

void StandardUpdater::deserialize(const ArrayMap& in, const std::string& prefix, const std::string& file) {
  int64_t iteration = get_int(in, prefix + "iteration", file);
  if (iteration < 0) throw Error(fmt::format("kiln: load_snapshot: '{}': negative iteration count", file));
  // Model first: lazy parameters take their shapes, then the optimizer state can attach to them.
  serializers::from_arrays(in, optimizer_->target(), prefix + "model:main/", true, file);
  serializers::from_arrays(in, *optimizer_, prefix + "optimizer:main/", true, file);
  try {
    iterator_->deserialize(in, prefix + "iterator:main/");
  } catch (const Error& e) {
    throw Error(fmt::format("kiln: load_snapshot: '{}': {}", file, e.what()));
  }
  previous_epoch_detail_ =
      get_double(in, prefix + "iterator:main/previous_epoch_detail", iterator_->epoch_detail());
  iteration_ = iteration;
}

// ---- extensions ----------------------------------------------------------------------

Extension::~Extension() = default;

// ---- the trainer -------------------------------------------------------------------

Trainer::Trainer(std::shared_ptr<Updater> updater, Trigger stop_trigger, std::string out)
    : updater_(std::move(updater)), stop_trigger_(std::move(stop_trigger)), out_(std::move(out)) {
  if (!updater_) throw Error("kiln: Trainer: no updater");
}

std::shared_ptr<Extension> Trainer::make_lambda_extension(std::function<void(Trainer&)> fn) {
  return std::make_shared<LambdaExtension>(std::move(fn));
}

void Trainer::extend(std::shared_ptr<Extension> extension, Trigger trigger, std::string name,
                     std::optional<int> priority) {
  if (!extension) throw Error("kiln: Trainer::extend: null extension");
  if (running_) throw Error("kiln: Trainer::extend: cannot add an extension while the trainer runs");
  if (name.empty()) name = extension->default_name();
  if (has_extension(name)) {
    for (int i = 1;; ++i) {
      std::string n = name + "_" + std::to_string(i);
      if (!has_extension(n)) {
        name = n;
        break;
      }
    }
  }
  if (!trigger) trigger = extension->default_trigger();
  int p = priority ? *priority : extension->priority();
  extensions_.push_back(
      Entry{std::move(name), std::move(extension), std::move(trigger), p, static_cast<int64_t>(extensions_.size())});
}

bool Trainer::has_extension(const std::string& name) const {
  for (const Entry& e : extensions_)
    if (e.name == name) return true;
  return false;
}

Extension& Trainer::get_extension(const std::string& name) {
  for (Entry& e : extensions_)
    if (e.name == name) return *e.extension;
  throw Error("kiln: Trainer::get_extension: no extension named '" + name + "'");
}

std::vector<Trainer::Entry*> Trainer::sorted_entries() {
  std::vector<Entry*> out;
  for (Entry& e : extensions_) out.push_back(&e);
  std::stable_sort(out.begin(), out.end(), [](const Entry* a, const Entry* b) { return a->priority > b->priority; });
  return out;
}

std::vector<std::string> Trainer::extension_names() const {
  auto* self = const_cast<Trainer*>(this);
  std::vector<std::string> names;
  for (Entry* e : self->sorted_entries()) names.push_back(e->name);
  return names;
}

double Trainer::elapsed_time() const {
  if (!running_) return snapshot_elapsed_;
  return snapshot_elapsed_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Trainer::run() {
  if (done_) throw Error("kiln: Trainer::run: the training loop has already finished (a trainer runs once)");
  if (!out_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_, ec);
    if (ec) throw Error(fmt::format("kiln: Trainer: cannot create the output folder '{}': {}", out_, ec.message()));
  }
  std::vector<Entry*> entries = sorted_entries();
  start_ = std::chrono::steady_clock::now();
  running_ = true;
  auto stop = [&] {
    snapshot_elapsed_ = elapsed_time();
    running_ = false;
  };
  try {
    for (Entry* e : entries) e->extension->initialize(*this);
    while (!stop_trigger_(*this)) {
      observation.clear();
      auto scope = Reporter::scope(observation);
      updater_->update();
      for (Entry* e : entries)
        if (e->trigger(*this)) (*e->extension)(*this);
    }
    for (Entry* e : entries) e->extension->finalize(*this);
    updater_->finalize();
  } catch (...) {
    stop();
    throw;
  }
  stop();
  done_ = true;
}

ArrayMap Trainer::serialize() {
  ArrayMap out;
  updater_->serialize(out, "updater/");
  if (stop_trigger_) stop_trigger_.get()->serialize(out, "stop_trigger/");
  for (Entry& e : extensions_) {
    e.extension->serialize(out, "extensions/" + e.name + "/");
    if (e.trigger) e.trigger.get()->serialize(out, "extension_triggers/" + e.name + "/");
  }
  out["_snapshot_elapsed_time"] = Array::scalar<double>(elapsed_time());
  return out;
}

void Trainer::deserialize(const ArrayMap& in, const std::string& file) {
  if (running_) throw Error("kiln: Trainer: cannot load a snapshot while the trainer runs");
  updater_->deserialize(in, "updater/", file);
  if (stop_trigger_) stop_trigger_.get()->deserialize(in, "stop_trigger/");
  for (Entry& e : extensions_) {
    e.extension->deserialize(in, "extensions/" + e.name + "/");
    if (e.trigger) e.trigger.get()->deserialize(in, "extension_triggers/" + e.name + "/");
  }
  snapshot_elapsed_ = get_double(in, "_snapshot_elapsed_time", 0.0);
}

void load_snapshot(const std::string& path, Trainer& trainer) { trainer.deserialize(npz::read(path), path); }

}  // namespace training

namespace serializers {
void save_npz(const std::string& path, training::Trainer& trainer, bool compression) {
  npz::write(path, trainer.serialize(), compression);
}
void load_npz(const std::string& path, training::Trainer& trainer) { training::load_snapshot(path, trainer); }
}  // namespace serializers

}  // namespace kiln
