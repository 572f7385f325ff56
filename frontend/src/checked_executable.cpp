// The run-time checks every backend's executable runs behind: ids and labels
// out of range (kiln.check_range), and debug mode's NaN/inf search.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "backend.h"
#include "graph.h"
#include "kiln/config.h"

namespace kiln::detail {
namespace {

// Chainer's message: "Each label `t` need to satisfy `0 <= t < x.shape[1] or t == -1`",
// with the offending element: "..., but t[3] = 12".
[[noreturn]] void raiseRangeError(const RangeCheck& c, int64_t flat, int64_t value) {
  std::string index;
  if (!c.shape.empty()) {
    std::vector<int64_t> idx(c.shape.size());
    for (size_t d = c.shape.size(); d-- > 0;) {
      int64_t size = c.shape[d];
      idx[d] = size > 0 ? flat % size : 0;
      flat = size > 0 ? flat / size : 0;
    }
    for (size_t d = 0; d < idx.size(); ++d) index += (d ? ", " : "[") + std::to_string(idx[d]);
    index += "]";
  }
  std::string valid = fmt::format("0 <= {} < {}", c.operand, c.limit);
  if (c.ignore) valid += fmt::format(" or {} == {}", c.operand, *c.ignore);
  throw Error(fmt::format("{}kiln: {}: each value of `{}` needs to satisfy `{}`, but {}{} = {}", c.where, c.function,
                          c.operand, valid, c.operand, index, value));
}

int64_t firstNonFinite(const Array& value) {
  if (!is_floating(value.dtype())) return -1;
  const Array a = value.to(Device::cpu());  // one copy of a device array, not one per element
  for (int64_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(a.at(i))) return i;
  return -1;
}

std::string nonFiniteName(double v) { return std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf"; }

// Debug mode found a non-finite value in output `output`: runs the graph again
// on the interpreter with every floating op value as an output, and names the
// first op (in the order the user's code recorded them) whose value is not finite.
[[noreturn]] void raiseNonFinite(const GraphSpec& graph, const std::vector<Array>& args, size_t output, double value) {
  GraphSpec all = graph;
  int nargs = static_cast<int>(all.args.size());
  all.outputs.clear();
  for (size_t i = 0; i < all.ops.size(); ++i)
    if (is_floating(all.ops[i].dtype)) all.outputs.push_back(nargs + static_cast<int>(i));
  const GraphOp* culprit = nullptr;
  std::string found;
  std::string failure;
  try {
    PreparedGraph prepared = prepare_graph(all, interp_backend());
    std::vector<Array> values = compile_prepared(prepared)->run(args);
    values.resize(all.outputs.size());  // not the checks' statuses
    for (size_t k = 0; k < all.outputs.size() && k < values.size() && !culprit; ++k)
      if (int64_t i = firstNonFinite(values[k]); i >= 0) {
        culprit = &all.ops[all.outputs[k] - nargs];
        found = nonFiniteName(values[k].at(i));
      }
  } catch (const Error& e) {
    failure = e.what();
  }
  if (!culprit) {
    // Not reproduced by the interpreter: name the op behind the output.
    int id = graph.outputs.at(output);
    if (id < nargs)
      throw Error(fmt::format("kiln: debug mode: {} in output {} of the graph, an input of it{}", nonFiniteName(value),
                              output, failure.empty() ? "" : " (" + failure + ")"));
    culprit = &graph.ops[id - nargs];
    found = nonFiniteName(value);
  }
  std::string where = culprit->line > 0 ? fmt::format("{}:{}: ", culprit->file, culprit->line) : "";
  throw Error(fmt::format("{}kiln: debug mode: {} is detected on forward computation of {}", where, found,
                          culprit->op));
}

// Every backend's executable behind the same checks (kiln::set_debug, KILN_DEBUG=1: debug mode).
class CheckedExecutable : public Executable {
 public:
  CheckedExecutable(std::shared_ptr<Executable> inner, const GraphSpec& graph, std::vector<RangeCheck> checks)
      : inner_(std::move(inner)), graph_(graph), checks_(std::move(checks)) {}

  std::vector<Array> run(const std::vector<Array>& args) override {
    std::vector<Array> results = inner_->run(args);
    size_t outputs = graph_.outputs.size();
    if (results.size() != outputs + checks_.size())
      throw Error(fmt::format("kiln: internal error: the compiled graph returned {} results for {} outputs and {} "
                              "checks", results.size(), outputs, checks_.size()));
    for (size_t c = 0; c < checks_.size(); ++c) {
      const Array& status = results[outputs + c];
      if (status.at(0) >= 0)
        raiseRangeError(checks_[c], static_cast<int64_t>(status.at(0)), static_cast<int64_t>(status.at(1)));
    }
    results.resize(outputs);
    if (is_debug())
      for (size_t o = 0; o < outputs; ++o)
        if (int64_t i = firstNonFinite(results[o]); i >= 0) raiseNonFinite(graph_, args, o, results[o].at(i));
    return results;
  }

 private:
  std::shared_ptr<Executable> inner_;
  GraphSpec graph_;
  std::vector<RangeCheck> checks_;
};

// set_debug's value: -1 until set, then 0 or 1.
std::atomic<int>& debugSetting() {
  static std::atomic<int> setting{-1};
  return setting;
}

}  // namespace

std::shared_ptr<Executable> checked_executable(std::shared_ptr<Executable> inner, const GraphSpec& graph,
                                               std::vector<RangeCheck> checks) {
  return std::make_shared<CheckedExecutable>(std::move(inner), graph, std::move(checks));
}

}  // namespace kiln::detail

namespace kiln {

void set_debug(bool debug) { detail::debugSetting().store(debug ? 1 : 0); }

bool is_debug() {
  int setting = detail::debugSetting().load();
  if (setting >= 0) return setting != 0;
  static const bool from_environment = [] {
    const char* env = std::getenv("KILN_DEBUG");
    return env && *env && std::string(env) != "0";
  }();
  return from_environment;
}

}  // namespace kiln
