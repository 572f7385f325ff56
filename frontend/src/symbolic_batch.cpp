// The symbolic batch size of graphs compiled by the cpu backend.
//
// A graph is compiled with its batch size as a dynamic dimension (`?`), so that
// another batch size (the last partial batch of an epoch, an evaluation batch)
// reuses the compiled code. The batch size B is the leading dimension shared
// by most data arguments (leaves that are not model or optimizer state).
// Which dimensions of which values are the batch is found by propagation:
// the leading dimension of data arguments (and of computed values passed in)
// is the batch when it equals B, and each op's rule says which result
// dimensions come from its operands' batch dimensions (matmul rows, kept
// reduction axes, a reshape's matching dimension, ...). Dimensions that ops
// introduce from attributes (broadcast targets, constants, iota, random
// numbers) are unknown at first and take the answer of the elementwise ops
// that combine them with other values (a bias broadcast to (B, C) is added
// to a matmul's (B, C)); only those still unknown then match the value B.
// So a hidden size or channel count that happens to equal B stays static.
//
// Soundness does not rest on the rules: two graphs get one key only when
// they differ in nothing but B (all other dimensions and attributes are in the
// key verbatim), and the compiled code computes any `?` as the run-time B. A
// rule that marks a dimension wrongly gives a graph that does not verify or
// lower; realize() then compiles the concrete graph instead.
#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_set>

#include "graph.h"
#include "kiln/env.h"

namespace kiln::detail {
namespace {

// Per dimension: not the batch, the batch, or not known yet.
enum Dim : uint8_t { kNo = 0, kYes = 1, kUnknown = 2 };
using Mask = std::vector<Dim>;

const Attr* find_attr(const GraphOp& op, const char* name) {
  for (const Attr& a : op.attrs)
    if (a.name == name) return &a;
  return nullptr;
}

const std::vector<int64_t>& ints_of(const GraphOp& op, const char* name) {
  static const std::vector<int64_t> none;
  const Attr* a = find_attr(op, name);
  return a ? a->ints : none;
}

int64_t int_of(const GraphOp& op, const char* name, int64_t otherwise) {
  const Attr* a = find_attr(op, name);
  return a ? a->i : otherwise;
}

Mask value_match(const Shape& s, int64_t batch) {
  Mask m(s.size());
  for (size_t i = 0; i < s.size(); ++i) m[i] = s[i] == batch ? kYes : kNo;
  return m;
}

// Dimensions of the value B are unknown (to be settled by the ops that use them), others not the batch.
Mask introduced(const Shape& s, int64_t batch) {
  Mask m(s.size());
  for (size_t i = 0; i < s.size(); ++i) m[i] = s[i] == batch ? kUnknown : kNo;
  return m;
}

// Elementwise join: the batch if any operand says so, else not if any says not.
Dim join(Dim a, Dim b) {
  if (a == kYes || b == kYes) return kYes;
  if (a == kNo || b == kNo) return kNo;
  return kUnknown;
}

// The join, per dimension, of the masks of rank `rank` (kUnknown joins as the identity).
Mask join_all(const std::vector<const Mask*>& masks, size_t rank) {
  Mask r(rank, kUnknown);
  for (const Mask* m : masks)
    if (m->size() == rank)
      for (size_t d = 0; d < rank; ++d) r[d] = join(r[d], (*m)[d]);
  return r;
}

int64_t product(const Shape& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to && i < s.size(); ++i) p *= s[i];
  return p;
}

bool is_elementwise(const std::string& op) {
  static const std::unordered_set<std::string> names{
      "kiln.neg",   "kiln.exp",     "kiln.log",   "kiln.sqrt",  "kiln.tanh", "kiln.sigmoid",
      "kiln.relu",  "kiln.abs",     "kiln.sign",  "kiln.log1p", "kiln.expm1", "kiln.erf",
      "kiln.add",   "kiln.sub",     "kiln.mul",   "kiln.div",   "kiln.max",  "kiln.min",
      "kiln.pow",   "kiln.compare", "kiln.select", "kiln.cast", "kiln.reverse", "kiln.stop_gradient"};
  return names.count(op) > 0;
}

// Which dimensions of op's result are the batch, from its operands'.
Mask result_mask(const GraphOp& op, const std::vector<const Shape*>& shapes, const std::vector<const Mask*>& masks,
                 int64_t batch) {
  const Shape& out = op.shape;
  size_t rank = out.size();
  Mask m(rank, kNo);
  auto in = [&](size_t i) -> const Mask& { return *masks.at(i); };
  auto in_shape = [&](size_t i) -> const Shape& { return *shapes.at(i); };
  const std::string& name = op.op;
  if (is_elementwise(name)) return join_all(masks, rank);
  if (name == "kiln.broadcast_to" && masks.size() == 1 && in(0).size() <= rank) {
    size_t offset = rank - in(0).size();
    for (size_t d = 0; d < rank; ++d) {
      bool aligned = d >= offset && in_shape(0)[d - offset] == out[d];
      m[d] = aligned ? in(0)[d - offset] : (out[d] == batch ? kUnknown : kNo);  // stretched or new
    }
    return m;
  }
  if (name == "kiln.reshape" && masks.size() == 1) {
    // A batch dimension keeps its place relative to the elements before and after it.
    const Shape& s = in_shape(0);
    for (size_t p = 0; p < s.size(); ++p) {
      if (in(0)[p] == kNo) continue;
      int64_t before = product(s, 0, p), after = product(s, p + 1, s.size());
      for (size_t q = 0; q < rank; ++q)
        if (out[q] == batch && product(out, 0, q) == before && product(out, q + 1, rank) == after) m[q] = in(0)[p];
    }
    return m;
  }
  if (name == "kiln.transpose" && masks.size() == 1) {
    const std::vector<int64_t>& perm = ints_of(op, "permutation");
    if (perm.size() != rank) return value_match(out, batch);
    for (size_t d = 0; d < rank; ++d) m[d] = in(0).at(static_cast<size_t>(perm[d]));
    return m;
  }
  if ((name == "kiln.reduce_sum" || name == "kiln.reduce_max") && masks.size() == 1) {
    const std::vector<int64_t>& axes = ints_of(op, "axes");
    bool keepdims = find_attr(op, "keepdims") != nullptr;
    Mask r;
    for (size_t d = 0; d < in(0).size(); ++d) {
      bool reduced = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
      if (!reduced) r.push_back(in(0)[d]);
      else if (keepdims) r.push_back(kNo);
    }
    return r.size() == rank ? r : value_match(out, batch);
  }
  if (name == "kiln.argmax" && masks.size() == 1) {
    Mask r = in(0);
    int64_t axis = int_of(op, "axis", -1);
    if (axis < 0 || static_cast<size_t>(axis) >= r.size()) return value_match(out, batch);
    r.erase(r.begin() + axis);
    return r;
  }
  if (name == "kiln.dim_size") return m;
  if (name == "kiln.check_range" && masks.size() == 1) return in(0);  // x passed through
  if (name == "kiln.matmul" && masks.size() == 2 && in(0).size() == rank && in(1).size() == rank && rank >= 2) {
    bool ta = find_attr(op, "transpose_a") != nullptr, tb = find_attr(op, "transpose_b") != nullptr;
    for (size_t d = 0; d + 2 < rank; ++d) m[d] = join(in(0)[d], in(1)[d]);
    m[rank - 2] = ta ? in(0)[rank - 1] : in(0)[rank - 2];
    m[rank - 1] = tb ? in(1)[rank - 2] : in(1)[rank - 1];
    return m;
  }
  if ((name == "kiln.conv2d" || name == "kiln.conv2d_grad_input") && masks.size() == 2 && rank == 4 &&
      in(0).size() == 4 && in(1).size() == 4) {
    // conv2d(x, w): (N, O, ...); conv2d_grad_input(gy, w): (N, C, ...).
    m[0] = in(0)[0];
    m[1] = name == "kiln.conv2d" ? in(1)[0] : in(1)[1];
    return m;
  }
  if (name == "kiln.pool2d" && masks.size() == 1 && rank == 4 && in(0).size() == 4) {
    m[0] = in(0)[0];
    m[1] = in(0)[1];
    return m;
  }
  if (name == "kiln.gather" && masks.size() == 2 && in(0).size() == 2 && in(1).size() + 1 == rank) {
    for (size_t d = 0; d + 1 < rank; ++d) m[d] = in(1)[d];
    m[rank - 1] = in(0)[1];
    return m;
  }
  if (name == "kiln.slice" && masks.size() == 1 && in(0).size() == rank) {
    const auto &start = ints_of(op, "start"), &limit = ints_of(op, "limit"), &step = ints_of(op, "step");
    if (start.size() != rank || limit.size() != rank || step.size() != rank) return value_match(out, batch);
    for (size_t d = 0; d < rank; ++d)
      m[d] = start[d] == 0 && step[d] == 1 && limit[d] == in_shape(0)[d] ? in(0)[d] : kNo;
    return m;
  }
  if (name == "kiln.pad" && masks.size() == 1 && in(0).size() == rank) {
    const auto &low = ints_of(op, "low"), &high = ints_of(op, "high"), &interior = ints_of(op, "interior");
    if (low.size() != rank || high.size() != rank || interior.size() != rank) return value_match(out, batch);
    for (size_t d = 0; d < rank; ++d) m[d] = low[d] == 0 && high[d] == 0 && interior[d] == 0 ? in(0)[d] : kNo;
    return m;
  }
  if (name == "kiln.concat") {
    int64_t axis = int_of(op, "axis", -1);
    Mask r = join_all(masks, rank);
    if (axis >= 0 && static_cast<size_t>(axis) < rank) r[axis] = kNo;
    return r;
  }
  if (name == "kiln.grad" && masks.size() == 3 && in(2).size() == rank) return in(2);
  // Constants, iota, random numbers: dimensions from attributes, settled by their users.
  if (name == "kiln.constant" || name == "kiln.iota" || name == "kiln.rng_uniform") return introduced(out, batch);
  // Custom functions and anything else: by value.
  return value_match(out, batch);
}

// Every dimension equal to `batch` becomes `?` (custom functions' regions,
// whose values are checked by their own verification).
GraphSpec erase_by_value(const GraphSpec& g, int64_t batch);

// Writes `?` into g's shapes where `masks` (one per value) say so.
GraphSpec apply_masks(const GraphSpec& g, const std::vector<Mask>& masks, int64_t batch) {
  GraphSpec s = g;
  auto erase = [](Shape& shape, const Mask& mask) {
    for (size_t d = 0; d < shape.size() && d < mask.size(); ++d)
      if (mask[d] == kYes) shape[d] = kBatchDim;
  };
  size_t nargs = s.args.size();
  for (size_t a = 0; a < nargs; ++a) erase(s.args[a].shape, masks[a]);
  for (size_t i = 0; i < s.ops.size(); ++i) {
    GraphOp& op = s.ops[i];
    erase(op.shape, masks[nargs + i]);
    if (op.op == "kiln.slice") {
      // A batch dimension kept whole: limit `?` (kiln.slice's rule for dynamic dimensions).
      const Mask& in = masks.at(static_cast<size_t>(op.operands[0]));
      for (Attr& a : op.attrs)
        if (a.name == "limit")
          for (size_t d = 0; d < a.ints.size() && d < in.size(); ++d)
            if (in[d] == kYes && a.ints[d] == batch) a.ints[d] = kBatchDim;
    }
    if (op.forward) op.forward = std::make_shared<GraphSpec>(erase_by_value(*op.forward, batch));
    if (op.backward) op.backward = std::make_shared<GraphSpec>(erase_by_value(*op.backward, batch));
  }
  return s;
}

GraphSpec erase_by_value(const GraphSpec& g, int64_t batch) {
  std::vector<Mask> masks;
  for (const GraphSpec::Arg& a : g.args) masks.push_back(value_match(a.shape, batch));
  for (const GraphOp& op : g.ops) masks.push_back(value_match(op.shape, batch));
  return apply_masks(g, masks, batch);
}

}  // namespace

std::optional<int64_t> batch_size_of(const GraphSpec& g) {
  // Data batches if any are arguments, else values computed earlier.
  int level = 0;
  for (const GraphSpec::Arg& a : g.args) level = std::max(level, a.batch_candidate);
  if (level == 0) return std::nullopt;
  std::vector<std::pair<int64_t, int>> counts;  // leading dim, arguments (first seen first)
  for (const GraphSpec::Arg& a : g.args) {
    if (a.batch_candidate != level || a.shape.empty()) continue;
    auto it = std::find_if(counts.begin(), counts.end(), [&](auto& c) { return c.first == a.shape[0]; });
    if (it == counts.end()) counts.push_back({a.shape[0], 1});
    else ++it->second;
  }
  if (counts.empty()) return std::nullopt;
  auto best = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second < b.second; });
  // Sizes 0 and 1 stay concrete: 1 is also what broadcasting stretches.
  if (best->first < 2) return std::nullopt;
  return best->first;
}

std::optional<SymbolicGraph> symbolic_batch_graph(const GraphSpec& g) {
  if (!env::get_flag("KILN_SYMBOLIC_BATCH", true)) return std::nullopt;
  std::optional<int64_t> batch = batch_size_of(g);
  if (!batch) return std::nullopt;
  size_t nargs = g.args.size();
  std::vector<Mask> masks(nargs + g.ops.size());
  bool any = false;
  for (size_t a = 0; a < nargs; ++a) {
    const GraphSpec::Arg& arg = g.args[a];
    masks[a].assign(arg.shape.size(), kNo);
    // Data and computed values passed in: the leading dimension. Never state.
    if (!arg.state && !arg.shape.empty() && arg.shape[0] == *batch) {
      masks[a][0] = kYes;
      any = true;
    }
  }
  if (!any) return std::nullopt;
  // Forward: each op's rule, keeping what users already settled; backward:
  // elementwise ops settle their operands' unknown dimensions. Until nothing changes.
  std::vector<const Shape*> shapes;
  std::vector<const Mask*> operand_masks;
  for (int round = 0, changed = 1; changed && round < 8; ++round) {
    changed = 0;
    for (size_t i = 0; i < g.ops.size(); ++i) {
      const GraphOp& op = g.ops[i];
      shapes.clear();
      operand_masks.clear();
      for (int v : op.operands) {
        size_t id = static_cast<size_t>(v);
        shapes.push_back(id < nargs ? &g.args[id].shape : &g.ops[id - nargs].shape);
        operand_masks.push_back(&masks[id]);
      }
      Mask fresh = result_mask(op, shapes, operand_masks, *batch);
      Mask& m = masks[nargs + i];
      if (m.size() == fresh.size())
        for (size_t d = 0; d < fresh.size(); ++d)
          if (fresh[d] == kUnknown) fresh[d] = m[d];
      if (fresh != m) changed = 1, m = std::move(fresh);
    }
    for (size_t i = g.ops.size(); i-- > 0;) {
      const GraphOp& op = g.ops[i];
      if (!is_elementwise(op.op)) continue;
      const Mask& result = masks[nargs + i];
      for (int v : op.operands) {
        Mask& operand = masks[static_cast<size_t>(v)];
        if (operand.size() != result.size()) continue;
        for (size_t d = 0; d < operand.size(); ++d)
          if (operand[d] == kUnknown && result[d] != kUnknown) operand[d] = result[d], changed = 1;
      }
    }
  }
  // Still unknown: by value.
  for (size_t i = 0; i < g.ops.size(); ++i)
    for (size_t d = 0; d < masks[nargs + i].size(); ++d)
      if (masks[nargs + i][d] == kUnknown) masks[nargs + i][d] = g.ops[i].shape[d] == *batch ? kYes : kNo;
  return SymbolicGraph{apply_masks(g, masks, *batch), *batch};
}

}  // namespace kiln::detail
