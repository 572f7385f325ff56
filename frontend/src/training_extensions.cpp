// kiln::training::extensions: Evaluator, LogReport, PrintReport, ProgressBar, snapshots, observe_value.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "kiln/files.h"
#include "kiln/serializers.h"
#include "kiln/training.h"

namespace kiln::training::extensions {

namespace {

std::string join_out(const Trainer& trainer, const std::string& name) {
  if (trainer.out().empty()) return name;
  return (std::filesystem::path(trainer.out()) / name).string();
}

// Strings are stored in snapshots as int32 arrays of their bytes.
Array string_to_array(const std::string& s) {
  std::vector<int32_t> v(s.begin(), s.end());
  for (auto& c : v) c &= 0xff;
  return Array::from(v, Shape{static_cast<int64_t>(v.size())});
}

std::string array_to_string(const Array& a) {
  std::string s;
  s.reserve(static_cast<size_t>(a.size()));
  for (int64_t i = 0; i < a.size(); ++i) s.push_back(static_cast<char>(static_cast<int>(a.at(i))));
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

std::string hms(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--:--";
  auto s = static_cast<int64_t>(seconds + 0.5);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s / 60) % 60, s % 60);
}

}  // namespace

std::string format_filename(const std::string& pattern, const Trainer& trainer) {
  std::string it = std::to_string(trainer.updater().iteration());
  std::string ep = std::to_string(trainer.updater().epoch());
  std::string s = replace_all(pattern, "{.updater.iteration}", it);
  s = replace_all(s, "{.updater.epoch}", ep);
  s = replace_all(s, "{iteration}", it);
  return replace_all(s, "{epoch}", ep);
}

// ---- Evaluator --------------------------------------------------------------------

Evaluator::Evaluator(iterators::IteratorHandle iterator, LossFunc eval_func, Converter converter, std::string name,
                     EvalHook eval_hook)
    : iterator_(std::move(iterator)), eval_func_(std::move(eval_func)), converter_(std::move(converter)),
      name_(std::move(name)), eval_hook_(std::move(eval_hook)) {
  if (!iterator_) throw Error("kiln: Evaluator: argument 'iterator' is null");
  if (!eval_func_) throw Error("kiln: Evaluator: no model or evaluation function given");
  if (!converter_) converter_ = [](const std::vector<std::vector<Array>>& b) { return concat_examples(b); };
}

iterators::Iterator& Evaluator::get_iterator(const std::string& name) {
  if (name != "main") throw Error("kiln: Evaluator: no iterator named '" + name + "'");
  return *iterator_;
}

std::map<std::string, double> Evaluator::evaluate() {
  if (eval_hook_) eval_hook_(*this);
  auto no_train = using_config("train", false);
  auto no_backprop = using_config("enable_backprop", false);
  // A fresh pass every time (Chainer resets the iterator).
  iterators::Iterator& it = *iterator_;
  it.reset();
  DictSummary summary;
  std::string observer = name_.empty() ? "main" : name_ + "/main";
  while (!it.exhausted()) {
    auto batch = it.next();
    std::vector<Array> arrays;
    try {
      arrays = converter_(batch);
    } catch (const Error& e) {
      throw Error(fmt::format("kiln: Evaluator '{}': a batch of iterator 'main' cannot be converted: {}", name_,
                              e.what()));
    }
    std::vector<Variable> inputs;
    for (const Array& a : arrays) inputs.emplace_back(a, false);
    Observation observation;
    {
      auto scope = Reporter::scope(observation);
      auto obs = Reporter::observe(observer);
      eval_func_(inputs);
    }
    summary.add(observation);
    if (it.epoch > 0) break;  // one pass, even with repeat = true
  }
  return summary.compute_mean();
}

void Evaluator::operator()(Trainer&) {
  for (const auto& [key, value] : evaluate()) report(key, value);
}

// ---- LogReport ---------------------------------------------------------------------

LogReport::LogReport(std::vector<std::string> keys, Trigger trigger, std::string filename)
    : keys_(std::move(keys)), trigger_(std::move(trigger)), filename_(std::move(filename)) {
  if (!trigger_) trigger_ = Trigger(1, "epoch");
}

void LogReport::operator()(Trainer& trainer) {
  if (keys_.empty()) {
    summary_.add(trainer.observation);
  } else {
    for (const std::string& k : keys_) {
      auto it = trainer.observation.find(k);
      if (it != trainer.observation.end() && !it->second.is_null()) summary_.add(k, observation_value(it->second));
    }
  }
  if (!trigger_(trainer)) return;
  std::map<std::string, double> entry = summary_.compute_mean();
  entry["epoch"] = static_cast<double>(trainer.updater().epoch());
  entry["iteration"] = static_cast<double>(trainer.updater().iteration());
  entry["elapsed_time"] = trainer.elapsed_time();
  log_.push_back(std::move(entry));
  if (!filename_.empty()) files::replace_file_contents(join_out(trainer, filename_), "kiln: LogReport", to_json());
  summary_.reset();
}

std::string LogReport::to_json() const {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const auto& entry : log_) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (const auto& [k, v] : entry)
      if (k != "epoch" && k != "iteration" && k != "elapsed_time") o[k] = v;
    auto get = [&](const char* k) {
      auto it = entry.find(k);
      return it == entry.end() ? 0.0 : it->second;
    };
    o["epoch"] = static_cast<int64_t>(get("epoch"));
    o["iteration"] = static_cast<int64_t>(get("iteration"));
    o["elapsed_time"] = get("elapsed_time");
    arr.push_back(std::move(o));
  }
  return arr.dump(4);
}

void LogReport::serialize(ArrayMap& out, const std::string& prefix) const {
  summary_.serialize(out, prefix + "_summary/");
  out[prefix + "_log"] = string_to_array(to_json());
}

void LogReport::deserialize(const ArrayMap& in, const std::string& prefix) {
  summary_.deserialize(in, prefix + "_summary/");
  auto it = in.find(prefix + "_log");
  if (it == in.end()) return;
  log_.clear();
  auto j = nlohmann::json::parse(array_to_string(it->second), nullptr, false);
  if (!j.is_array()) throw Error("kiln: LogReport: the snapshot's log is not a JSON list");
  for (const auto& e : j) {
    std::map<std::string, double> entry;
    for (auto kv = e.begin(); kv != e.end(); ++kv)
      if (kv.value().is_number()) entry[kv.key()] = kv.value().get<double>();
    log_.push_back(std::move(entry));
  }
}

// ---- PrintReport -------------------------------------------------------------------

PrintReport::PrintReport(std::vector<std::string> entries, std::string log_report, std::FILE* out)
    : entries_(std::move(entries)), log_report_(std::move(log_report)), out_(out) {}

void PrintReport::operator()(Trainer& trainer) {
  auto& log_report = trainer.get_extension<LogReport>(log_report_);
  const auto& log = log_report.log();
  if (header_done_ && printed_ >= log.size()) return;
  // On a terminal, first clear the current line (a ProgressBar may be drawn there).
  if (::isatty(::fileno(out_))) std::fputs("\r\033[K", out_);
  if (!header_done_) {
    std::string header;
    for (const std::string& e : entries_) header += fmt::format("{:<{}}  ", e, std::max<size_t>(10, e.size()));
    while (!header.empty() && header.back() == ' ') header.pop_back();
    fmt::print(out_, "{}\n", header);
    header_done_ = true;
  }
  for (; printed_ < log.size(); ++printed_) {
    const auto& entry = log[printed_];
    std::string line;
    for (const std::string& e : entries_) {
      size_t w = std::max<size_t>(10, e.size());
      auto it = entry.find(e);
      if (it == entry.end())
        line += fmt::format("{:<{}}  ", "", w);
      else if (e == "epoch" || e == "iteration")
        line += fmt::format("{:<{}}  ", static_cast<int64_t>(it->second), w);
      else
        line += fmt::format("{:<{}.6g}  ", it->second, w);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print(out_, "{}\n", line);
  }
  std::fflush(out_);
}

void PrintReport::serialize(ArrayMap& out, const std::string& prefix) const {
  out[prefix + "_printed"] = Array::scalar<int64_t>(static_cast<int64_t>(printed_));
}

void PrintReport::deserialize(const ArrayMap& in, const std::string& prefix) {
  auto it = in.find(prefix + "_printed");
  if (it != in.end()) printed_ = static_cast<size_t>(it->second.at(0));
}

// ---- ProgressBar -------------------------------------------------------------------

ProgressBar::ProgressBar(std::optional<std::pair<int64_t, std::string>> training_length, int64_t update_interval,
                         int bar_length, std::FILE* out)
    : length_(std::move(training_length)),
      update_interval_(std::max<int64_t>(1, update_interval)),
      bar_length_(std::max(10, bar_length)),
      out_(out) {}

void ProgressBar::initialize(Trainer& trainer) {
  if (!length_ && trainer.stop_trigger()) length_ = trainer.stop_trigger().get()->training_length();
  tty_ = out_ && ::isatty(::fileno(out_));
  start_ = last_print_ = std::chrono::steady_clock::now();
  start_iteration_ = trainer.updater().iteration();
  recent_.clear();
  recent_.emplace_back(0.0, start_iteration_);
}

std::string ProgressBar::status_line(Trainer& trainer) {
  const Updater& u = trainer.updater();
  double now = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  int64_t iteration = u.iteration();
  // Speed over the recent window (up to the last 10 samples).
  double speed = 0;
  if (!recent_.empty()) {
    const auto& [t0, i0] = recent_.front();
    if (now > t0 && iteration > i0) speed = static_cast<double>(iteration - i0) / (now - t0);
  }
  std::string text;
  double fraction = -1;
  if (length_) {
    double total = static_cast<double>(length_->first);
    double done = length_->second == "epoch" ? u.epoch_detail() : static_cast<double>(iteration);
    fraction = std::clamp(done / total, 0.0, 1.0);
  }
  if (fraction >= 0) {
    auto filled = static_cast<int>(fraction * bar_length_);
    text += "[" + std::string(static_cast<size_t>(filled), '#') +
            std::string(static_cast<size_t>(bar_length_ - filled), '.') + "] " + fmt::format("{:6.2f}%", 100 * fraction);
  }
  text += fmt::format(" iter {}", iteration);
  if (length_ && length_->second == "iteration") text += fmt::format("/{}", length_->first);
  text += fmt::format(", epoch {}", u.epoch());
  if (length_ && length_->second == "epoch") text += fmt::format("/{}", length_->first);
  text += fmt::format(", {:.2f} iters/sec", speed);
  if (fraction >= 0) {
    double eta = std::numeric_limits<double>::infinity();
    if (fraction >= 1) {
      eta = 0;
    } else if (speed > 0 && length_) {
      double remaining_iters;
      if (length_->second == "iteration") {
        remaining_iters = static_cast<double>(length_->first - iteration);
      } else {
        // iterations per epoch estimated from progress so far
        double ed = u.epoch_detail();
        remaining_iters = ed > 0 ? (static_cast<double>(length_->first) - ed) * static_cast<double>(iteration) / ed
                                 : std::numeric_limits<double>::infinity();
      }
      eta = remaining_iters / speed;
    }
    text += ", ETA " + hms(eta);
  }
  return text;
}

void ProgressBar::draw(Trainer& trainer, bool final_line) {
  std::string line = status_line(trainer);
  if (tty_) {
    fmt::print(out_, "\r{}\033[K", line);
    if (final_line) fmt::print(out_, "\n");
  } else {
    fmt::print(out_, "{}\n", line);
  }
  std::fflush(out_);
  drawn_ = true;
  last_print_ = std::chrono::steady_clock::now();
}

void ProgressBar::operator()(Trainer& trainer) {
  int64_t iteration = trainer.updater().iteration();
  if (iteration % update_interval_ != 0) return;
  auto now = std::chrono::steady_clock::now();
  recent_.emplace_back(std::chrono::duration<double>(now - start_).count(), iteration);
  if (recent_.size() > 10) recent_.erase(recent_.begin());
  if (tty_ || std::chrono::duration<double>(now - last_print_).count() >= 10.0) draw(trainer, false);
}

void ProgressBar::finalize(Trainer& trainer) {
  if (!out_) return;
  recent_.assign(1, {0.0, start_iteration_});  // the final line shows the mean speed of the run
  draw(trainer, true);
}

// ---- snapshots -------------------------------------------------------------------------

Snapshot::Snapshot(std::string filename) : filename_(std::move(filename)) {}

void Snapshot::operator()(Trainer& trainer) {
  npz::write(join_out(trainer, format_filename(filename_, trainer)), trainer.serialize());
}

Snapshot snapshot(std::string filename) { return Snapshot(std::move(filename)); }

SnapshotObject::SnapshotObject(const Link& link, std::string filename) : link_(link), filename_(std::move(filename)) {}

void SnapshotObject::operator()(Trainer& trainer) {
  npz::write(join_out(trainer, format_filename(filename_, trainer)), serializers::to_arrays(link_));
}

SnapshotObject snapshot_object(const Link& link, std::string filename) {
  return SnapshotObject(link, std::move(filename));
}

// ---- observe_value -----------------------------------------------------------------

ObserveValue::ObserveValue(std::string key, std::function<double(Trainer&)> fn)
    : key_(std::move(key)), fn_(std::move(fn)) {}

void ObserveValue::operator()(Trainer& trainer) { report(key_, fn_(trainer)); }

ObserveValue observe_value(std::string key, std::function<double(Trainer&)> fn) {
  return ObserveValue(std::move(key), std::move(fn));
}

ObserveValue observe_lr(optimizers::Optimizer& optimizer, std::string key) {
  optimizers::Optimizer* opt = &optimizer;
  return ObserveValue(std::move(key), [opt](Trainer&) -> double {
    if (auto* adam = dynamic_cast<optimizers::Adam*>(opt)) return adam->lr();
    return opt->get_hyperparam("lr");
  });
}

}  // namespace kiln::training::extensions
