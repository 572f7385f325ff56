// A realizable graph: the pending part of the trace flattened in topological order.
#pragma once
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trace.h"

namespace kiln::detail {

struct GraphOp {
  std::string op;
  Attrs attrs;
  std::vector<int> operands;  // value ids: arguments first, then ops in order
  Shape shape;
  DType dtype;
  const char* file = nullptr;  // user call site, not part of the key
  int line = 0;
  // "kiln.custom" only: the regions' graphs (args: the block arguments;
  // outputs: the yielded values). Part of the key.
  std::shared_ptr<const GraphSpec> forward, backward;
  // The link whose parameter this op reads, if any (not part of the key):
  // kiln.scope = its path, for kernel names.
  std::weak_ptr<LinkImpl> link;
};

// A dimension of a compiled graph that is the symbolic batch size (MLIR's `?`,
// which kiln::shape_str prints as "?").
inline constexpr int64_t kBatchDim = std::numeric_limits<int64_t>::min();

struct GraphSpec {
  struct Arg {
    Shape shape;
    DType dtype;
    // Not part of the key:
    // whose leading dimension may choose the symbolic batch size: 2 for a data
    // batch (a leaf that is not model or optimizer state, rank >= 1), 1 for a
    // value computed earlier (not a gradient), used when no data batch is an
    // argument; 0 otherwise;
    int batch_candidate = 0;
    // model or optimizer state, or a gradient: never has a batch dimension.
    bool state = false;
  };
  std::vector<Arg> args;
  std::vector<GraphOp> ops;
  std::vector<int> outputs;  // value ids
  // (output index, argument index): the output is the next value of that
  // argument (an optimizer's update of a parameter or of its state), so a
  // backend may write it into the argument's buffer (see DonationScope).
  std::vector<std::pair<int, int>> donations;
  // Exact structural key (op kinds, attributes, shapes, dtypes, wiring; no values).
  std::string key() const;
  void append_key(std::string& out) const;  // appends key() to `out`
};

// A compiled graph of some backend. run() may be called from several threads
// at once (each call has its own buffers).
class Executable {
 public:
  virtual ~Executable() = default;
  virtual std::vector<Array> run(const std::vector<Array>& args) = 0;
};

// A kiln.check_range of a graph, and what its error names.
struct RangeCheck {
  std::string function, operand;
  int64_t limit = 0;
  std::optional<int64_t> ignore;
  Shape shape;        // of the checked value
  std::string where;  // "file:line: " of the user's call, or ""
};

class Backend;  // backend.h
struct PreparedModule;

// The backend KILN_BACKEND names (default "cpu"); throws kiln::Error when it
// is unknown or unavailable in this build.
const Backend& current_backend();
// The backend that runs a graph whose inputs live on `device`: for the CPU the
// one KILN_BACKEND names (current_backend()), else the first registered backend
// of the device's kind (Backend::device_kind). Throws kiln::Error when there is
// none or it is unavailable.
const Backend& backend_for(const Device& device);
// Its name and options (Backend::options_key): what its cache keys start with.
std::string backend_key(const Backend& backend);

// A graph emitted as kiln IR for a backend (compile.cpp), with its batch
// size symbolic (`?`, by -kiln-generalize-batch) where the backend takes one
// and KILN_SYMBOLIC_BATCH is not 0.
struct PreparedGraph {
  const Backend* backend = nullptr;
  // backend_key() and the module's text: one key for every batch size of one
  // structure, and the key of the compiled code in memory and on disk.
  std::string key;
  // The traced batch size where it became `?`, else 0; the argument shapes
  // with kBatchDim where they are `?`.
  int64_t batch = 0;
  std::vector<Shape> arg_shapes;
  // Why the batch size stays concrete where the graph had one, from
  // -kiln-generalize-batch: "file:line: kiln: the batch size stays concrete:
  // 'kiln.slice' cannot take ...", else "".
  std::string concrete_reason;
  // The graph's run-time checks, in the order of their statuses among its results.
  std::vector<RangeCheck> checks;
  std::shared_ptr<PreparedModule> module;
};

// Emits, verifies and generalizes `graph` for `backend`. Throws kiln::Error.
PreparedGraph prepare_graph(const GraphSpec& graph, const Backend& backend);
// Compiles a prepared graph for its backend (its module is used up), or
// loads it from the backend's disk cache (*from_disk says so). The
// executable's run() returns the graph's outputs, then the statuses of its
// run-time checks. Throws kiln::Error. Thread-safe: compiles are serialized
// (kiln's MLIRContext is single-threaded).
std::shared_ptr<Executable> compile_prepared(PreparedGraph& graph, bool* from_disk = nullptr);
// `inner` (an executable of `graph`, or of its generalized form) behind
// `graph`'s run-time checks (checked_executable.cpp): a failed
// kiln.check_range (`checks`, from prepare_graph) becomes a kiln::Error, and in debug mode a NaN or inf in
// an output names the op that produced it. run() returns the outputs only.
std::shared_ptr<Executable> checked_executable(std::shared_ptr<Executable> inner, const GraphSpec& graph,
                                               std::vector<RangeCheck> checks);

}  // namespace kiln::detail
