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
};

// A dimension of a compiled graph that is the symbolic batch size (MLIR's `?`).
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
  // Exact structural key (op kinds, attributes, shapes, dtypes, wiring; no values).
  std::string key() const;
};

// The symbolic batch size (symbolic_batch.cpp): `graph` is the traced graph
// with every batch dimension `?` (kBatchDim); `batch` the traced value.
struct SymbolicGraph {
  GraphSpec graph;
  int64_t batch;
};
// The batch size of a traced graph: the leading dimension most data arguments share.
std::optional<int64_t> batch_size_of(const GraphSpec& g);
// `g` with a symbolic batch size, or nullopt when it has none (no data
// arguments, batch size 0 or 1, or KILN_SYMBOLIC_BATCH=0).
std::optional<SymbolicGraph> symbolic_batch_graph(const GraphSpec& g);

// A compiled graph of some backend. run() may be called from several threads
// at once (each call has its own buffers).
class Executable {
 public:
  virtual ~Executable() = default;
  virtual std::vector<Array> run(const std::vector<Array>& args) = 0;
};

// Emits the graph as kiln IR, runs the frontend pipeline and compiles it for
// the backend chosen by KILN_BACKEND. The cpu backend first looks in the disk
// cache ($KILN_CACHE_DIR) and then skips MLIR entirely; *from_disk says so.
// Throws kiln::Error on failure. Thread-safe: compiles are serialized (kiln's
// MLIRContext is single-threaded).
std::shared_ptr<Executable> compile_graph(const GraphSpec& graph, bool* from_disk = nullptr);

}  // namespace kiln::detail
