// Recording the graphs a realize() computes, for kiln::export_model / export_training_step.
#pragma once
#include <vector>

#include "graph.h"
#include "kiln/optimizers.h"
#include "trace.h"

namespace kiln::detail {

// One realized graph as the trace flattened it: the spec, the node behind each
// argument (spec.args[i]) and each output (spec.outputs[i]), and the values
// of the arguments.
struct CapturedGraph {
  GraphSpec spec;
  std::vector<const Node*> arg_nodes;
  std::vector<NodePtr> output_nodes;
  std::vector<Array> arg_values;  // the arguments' values at that realize
};

// While one lives, every realize() on this thread appends its graph to
// `graphs` (and still computes it as usual). Not nestable: a second one on
// the same thread throws kiln::Error.
class ScopedGraphCapture {
 public:
  explicit ScopedGraphCapture(std::vector<CapturedGraph>& graphs);
  ~ScopedGraphCapture();
  ScopedGraphCapture(const ScopedGraphCapture&) = delete;
  ScopedGraphCapture& operator=(const ScopedGraphCapture&) = delete;
};

// The calling thread's capture target, or null (read by realize()).
std::vector<CapturedGraph>* active_graph_capture();

// An update count an exported step reads (Adam's t for alpha_t): `before`, a 0-d int64 leaf
// holding the rule's count before the update, becomes the state input "optimizer/<p>/t";
// `after` (before + 1) its result.
struct TracedUpdateCount {
  const optimizers::UpdateRule* rule;
  Variable before, after;
};

// While one lives, Optimizer::update gives update_core an update count traced from a 0-d
// input (StepContext::update_count) instead of leaving it to the host, and appends what it
// made to `counts`. Not nestable.
class ScopedTracedUpdateCounts {
 public:
  explicit ScopedTracedUpdateCounts(std::vector<TracedUpdateCount>& counts);
  ~ScopedTracedUpdateCounts();
  ScopedTracedUpdateCounts(const ScopedTracedUpdateCounts&) = delete;
  ScopedTracedUpdateCounts& operator=(const ScopedTracedUpdateCounts&) = delete;
};
std::vector<TracedUpdateCount>* active_traced_update_counts();

}  // namespace kiln::detail
