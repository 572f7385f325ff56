// The lazy trace: recording nodes, and realize() — flatten, hash, look up or compile, run.
#include "trace.h"

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "block_pool.h"
#include "graph.h"
#include "graph_capture.h"
#include "kiln/cache.h"
#include "kiln/env.h"
#include "kiln/config.h"
#include "kiln/link.h"
#include "ops.h"

namespace kiln::detail {

Attr int_attr(std::string name, int64_t v) { Attr a; a.name = std::move(name); a.kind = Attr::Kind::Int; a.i = v; return a; }
Attr ints_attr(std::string name, std::vector<int64_t> v) { Attr a; a.name = std::move(name); a.kind = Attr::Kind::Ints; a.ints = std::move(v); return a; }
Attr float_attr(std::string name, double v) { Attr a; a.name = std::move(name); a.kind = Attr::Kind::Float; a.f = v; return a; }
Attr str_attr(std::string name, std::string v) { Attr a; a.name = std::move(name); a.kind = Attr::Kind::Str; a.s = std::move(v); return a; }
Attr unit_attr(std::string name) { Attr a; a.name = std::move(name); a.kind = Attr::Kind::Unit; return a; }
Attr splat_attr(std::string name, double v) { Attr a; a.name = std::move(name); a.kind = Attr::Kind::Splat; a.f = v; return a; }

NodePtr make_leaf(const Array& value, const std::shared_ptr<VariableData>& owner) {
  auto n = std::allocate_shared<Node>(PoolAllocator<Node>());
  n->op = "leaf";
  n->shape = value.shape();
  n->dtype = value.dtype();
  n->value = value;
  n->device = value.device();
  n->leaf_of = owner;
  n->state = owner && owner->state;
  return n;
}

void mark_state(const std::shared_ptr<VariableData>& data) {
  data->state = true;
  if (data->node && data->node->is_leaf()) data->node->state = true;
}

namespace {

// What a mixed-device error calls an operand: the variable it comes from (a
// parameter by its link path, else an array), following single-operand ops
// (reshape, transpose, broadcast) back to a leaf.
std::string describe_operand(const Node* n) {
  for (int hops = 0; n && !n->is_leaf() && n->inputs.size() == 1 && hops < 16; ++hops) n = n->inputs[0].get();
  std::string where = device_of(*n).to_string();
  if (!n->is_leaf()) return fmt::format("a value computed by {} on {}", n->op, where);
  std::shared_ptr<VariableData> data = n->leaf_of.lock();
  if (data && !data->name.empty()) {
    std::shared_ptr<LinkImpl> link = data->owner.lock();
    std::string path = link ? link_path(*link) : "";
    return fmt::format("the parameter {}{} on {}", path.empty() ? "" : path + "/", data->name, where);
  }
  return "an array on " + where;
}

}  // namespace

Array on_device_of(const Array& a, const Variable& like) {
  return like.is_null() || !like.node() ? a : a.to(device_of(*like.node()));
}

NodePtr make_node(std::string op, NodeInputs inputs, Attrs attrs, Shape shape, DType dtype) {
  std::optional<Device> device;
  const Node* first = nullptr;
  for (const NodePtr& in : inputs) {
    if (!in->device) continue;
    if (!device) {
      device = in->device;
      first = in.get();
    } else if (*in->device != *device) {
      SourceLocation loc = current_location();
      throw Error(fmt::format("kiln: {}{}: operands on different devices: {} and {}; move arrays with "
                              "Array::to or Variable::to_device, links with Link::to_device",
                              op.rfind("kiln.", 0) == 0 ? op.substr(5) : op,
                              loc.line > 0 ? fmt::format(" (at {}:{})", loc.file, loc.line) : "",
                              describe_operand(first), describe_operand(in.get())));
    }
  }
  auto n = std::allocate_shared<Node>(PoolAllocator<Node>());
  n->device = device;
  n->op = std::move(op);
  n->inputs = std::move(inputs);
  n->attrs = std::move(attrs);
  n->shape = std::move(shape);
  n->dtype = dtype;
  n->no_backprop = !config().enable_backprop && !n->inputs.empty();
  return n;
}

// The variables this thread owns (or owned: entries claimed by another thread
// since are dropped at the next realize).
static std::vector<std::weak_ptr<VariableData>>& registry() {
  thread_local std::vector<std::weak_ptr<VariableData>> r;
  return r;
}

uint64_t thread_token() {
  static std::atomic<uint64_t> next{1};
  thread_local const uint64_t token = next.fetch_add(1, std::memory_order_relaxed);
  return token;
}

void claim(const std::shared_ptr<VariableData>& data) {
  uint64_t me = thread_token();
  if (data->thread.load(std::memory_order_relaxed) == me) return;
  data->thread.store(me, std::memory_order_relaxed);
  registry().push_back(data);
}

void collapse_to_leaf(Node& n) {
  n.op = "leaf";
  n.attrs.clear();
  n.inputs.clear();
  n.forward.reset();
  n.backward.reset();
  n.state = true;  // a gradient: never a data batch
  n.no_backprop = false;
  n.gradient_request = false;
}

std::vector<std::string>& custom_recording_stack() {
  thread_local std::vector<std::string> stack;
  return stack;
}

namespace {

// The key is binary: every field fixed-size or counted, so two graphs share a
// key exactly when they are structurally equal (and it is cheap to build: it is
// made on every realize). KeyWriter writes into the string's storage, grown ahead
// (a std::string::append per field was a third of a small step's key).
class KeyWriter {
 public:
  explicit KeyWriter(std::string& k) : k_(k), used_(k.size()) { open(); }
  ~KeyWriter() { k_.resize(used_); }
  KeyWriter(const KeyWriter&) = delete;
  KeyWriter& operator=(const KeyWriter&) = delete;

  void bytes(const void* data, size_t n) {
    if (used_ + n > k_.size()) k_.resize(std::max(2 * k_.size(), used_ + n));
    if (n) std::memcpy(&k_[used_], data, n);
    used_ += n;
  }
  template <typename T>
  void raw(T v) {
    bytes(&v, sizeof v);
  }
  // Appends what `append` (a function of a std::string&) writes: the string
  // holds exactly the bytes written so far while it runs.
  template <typename F>
  void nested(F&& append) {
    k_.resize(used_);
    append(k_);
    used_ = k_.size();
    open();
  }

 private:
  void open() { k_.resize(std::max(k_.capacity(), used_ + 256)); }
  std::string& k_;
  size_t used_;
};

void append_string(KeyWriter& k, const std::string& s) {
  k.raw<uint32_t>(static_cast<uint32_t>(s.size()));
  k.bytes(s.data(), s.size());
}
void append_shape(KeyWriter& k, const Shape& s, DType t) {
  k.raw<uint8_t>(static_cast<uint8_t>(t));
  k.raw<uint32_t>(static_cast<uint32_t>(s.size()));
  k.bytes(s.data(), s.size() * sizeof(int64_t));
}

// One op's part of a key: what GraphSpec::append_key writes per op, shared with
// realize's key of a pending graph (read from the nodes, no GraphSpec made).
void append_op_key(KeyWriter& k, const std::string& op, const int* operands, size_t count, const Attrs& attrs,
                   const Shape& shape, DType dtype, const std::shared_ptr<const GraphSpec>& forward,
                   const std::shared_ptr<const GraphSpec>& backward) {
  append_string(k, op);
  k.raw<uint32_t>(static_cast<uint32_t>(count));
  k.bytes(operands, count * sizeof(int));
  k.raw<uint32_t>(static_cast<uint32_t>(attrs.size()));
  for (const Attr& a : attrs) {
    append_string(k, a.name);
    k.raw<uint8_t>(static_cast<uint8_t>(a.kind));
    switch (a.kind) {
      case Attr::Kind::Int: k.raw(a.i); break;
      case Attr::Kind::Ints: append_shape(k, a.ints, DType::i64); break;
      case Attr::Kind::Float: case Attr::Kind::Splat: k.raw(a.f); break;  // the bits: exact
      case Attr::Kind::Str: append_string(k, a.s); break;
      case Attr::Kind::Unit: break;
    }
  }
  append_shape(k, shape, dtype);
  for (const std::shared_ptr<const GraphSpec>* region : {&forward, &backward}) {
    k.raw<uint8_t>(*region ? 1 : 0);
    if (*region) k.nested([&](std::string& s) { (*region)->append_key(s); });
  }
}

void append_args_key(KeyWriter& k, const std::vector<GraphSpec::Arg>& args) {
  k.raw<uint32_t>(static_cast<uint32_t>(args.size()));
  for (const GraphSpec::Arg& a : args) append_shape(k, a.shape, a.dtype);
}

void append_outputs_key(KeyWriter& k, const std::vector<int>& outputs,
                        const std::vector<std::pair<int, int>>& donations) {
  k.raw<uint32_t>(static_cast<uint32_t>(outputs.size()));
  k.bytes(outputs.data(), outputs.size() * sizeof(int));
  k.raw<uint32_t>(static_cast<uint32_t>(donations.size()));
  for (auto [output, arg] : donations) {
    k.raw(output);
    k.raw(arg);
  }
}

}  // namespace

void GraphSpec::append_key(std::string& out) const {
  KeyWriter k(out);
  append_args_key(k, args);
  k.raw<uint32_t>(static_cast<uint32_t>(ops.size()));
  for (const GraphOp& op : ops)
    append_op_key(k, op.op, op.operands.data(), op.operands.size(), op.attrs, op.shape, op.dtype, op.forward,
                  op.backward);
  append_outputs_key(k, outputs, donations);
}

std::string GraphSpec::key() const {
  std::string k;
  k.reserve(64 * (ops.size() + args.size()));
  append_key(k);
  return k;
}

namespace {

thread_local const std::vector<std::pair<const Node*, const Node*>>* t_donations = nullptr;

}  // namespace

DonationScope::DonationScope(std::vector<std::pair<const Node*, const Node*>> pairs)
    : pairs_(std::move(pairs)), outer_(t_donations) {
  t_donations = &pairs_;
}
DonationScope::~DonationScope() { t_donations = outer_; }

namespace {

struct GraphCache {
  // By backend_key() and the traced graph's structural key: the fast path,
  // no MLIR. Each entry is a module's executable behind that graph's checks.
  std::unordered_map<std::string, std::shared_ptr<Executable>> compiled;
  // By PreparedGraph::key (the generalized module's text): one executable for
  // every batch size of a structure.
  std::unordered_map<std::string, std::shared_ptr<Executable>> modules;
  // Compiled graphs as KILN_EXPLAIN_CACHE_MISSES shows them (`?`: the batch size).
  std::vector<GraphSpec> specs;
  CacheStats stats;
  // Guards every field above. Held for lookups and bookkeeping, not while a
  // graph compiles or runs.
  std::mutex mutex;
};

std::string describe_value(const GraphSpec& g, int id) {
  int nargs = static_cast<int>(g.args.size());
  if (id < nargs) return fmt::format("argument {} {} {}", id, dtype_name(g.args[id].dtype), shape_str(g.args[id].shape));
  const GraphOp& op = g.ops[id - nargs];
  return fmt::format("op {} {} -> {} {}", id - nargs, op.op, dtype_name(op.dtype), shape_str(op.shape));
}

// What distinguishes `g` from the most similar compiled graph (the longest common prefix).
std::string explain_miss(const GraphSpec& g, const std::vector<GraphSpec>& cached) {
  if (cached.empty()) return "no graph compiled yet";
  auto same_arg = [](const GraphSpec::Arg& a, const GraphSpec::Arg& b) { return a.shape == b.shape && a.dtype == b.dtype; };
  auto same_op = [&](const GraphOp& a, const GraphOp& b) {
    GraphSpec x, y;
    x.ops = {a};
    y.ops = {b};
    return x.key() == y.key();
  };
  size_t best = 0, best_score = 0;
  for (size_t c = 0; c < cached.size(); ++c) {
    const GraphSpec& h = cached[c];
    size_t score = 0;
    while (score < g.args.size() && score < h.args.size() && same_arg(g.args[score], h.args[score])) ++score;
    if (score == g.args.size() && score == h.args.size()) {
      size_t i = 0;
      while (i < g.ops.size() && i < h.ops.size() && same_op(g.ops[i], h.ops[i])) ++i;
      score += i;
    }
    if (score >= best_score) { best_score = score; best = c; }
  }
  const GraphSpec& h = cached[best];
  for (size_t i = 0; i < std::min(g.args.size(), h.args.size()); ++i)
    if (!same_arg(g.args[i], h.args[i]))
      return fmt::format("argument {}: {} {} here, {} {} in the nearest cached graph", i, dtype_name(g.args[i].dtype),
                         shape_str(g.args[i].shape), dtype_name(h.args[i].dtype), shape_str(h.args[i].shape));
  if (g.args.size() != h.args.size())
    return fmt::format("{} arguments here, {} in the nearest cached graph", g.args.size(), h.args.size());
  int nargs = static_cast<int>(g.args.size());
  for (size_t i = 0; i < std::min(g.ops.size(), h.ops.size()); ++i)
    if (!same_op(g.ops[i], h.ops[i]))
      return fmt::format("{} here, {} in the nearest cached graph", describe_value(g, nargs + static_cast<int>(i)),
                         describe_value(h, nargs + static_cast<int>(i)));
  if (g.ops.size() != h.ops.size())
    return fmt::format("{} ops here, {} in the nearest cached graph", g.ops.size(), h.ops.size());
  return "the outputs differ from the nearest cached graph";
}

GraphCache& cache() {
  static GraphCache c;
  return c;
}

// `g` as KILN_EXPLAIN_CACHE_MISSES shows it: the prepared arguments' shapes
// (kBatchDim where `?`), and op dimensions of the symbolic batch's size as `?`.
GraphSpec explained(const GraphSpec& g, const PreparedGraph& prepared) {
  GraphSpec shown = g;
  for (size_t a = 0; a < shown.args.size() && a < prepared.arg_shapes.size(); ++a)
    shown.args[a].shape = prepared.arg_shapes[a];
  if (prepared.batch > 0)
    for (GraphOp& op : shown.ops)
      for (int64_t& d : op.shape)
        if (d == prepared.batch) d = kBatchDim;
  return shown;
}

// The executable compiled before for a graph's structural key (run_graph's:
// the backend's key, '|', the graph's), or null. No MLIR.
std::shared_ptr<Executable> lookup_compiled(const std::string& key) {
  GraphCache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.compiled.find(key);
  if (it == c.compiled.end()) return nullptr;
  ++c.stats.memory_hits;
  return it->second;
}

// The executable of `spec` (whose structural key `key` lookup_compiled did not
// find) for `backend`: by its prepared module's key (another batch size of a
// structure compiled before), else compiled.
std::shared_ptr<Executable> compile_graph(std::string key, const GraphSpec& spec, const Backend& backend) {
  GraphCache& c = cache();
  // The key was read off the trace's nodes; it must be the spec's own (a compile costs far more than this check).
  std::string own = spec.key();
  if (key.size() < own.size() || key.compare(key.size() - own.size(), own.size(), own) != 0)
    throw Error("kiln: internal error: the structural key of a pending graph differs from its GraphSpec's");
  PreparedGraph prepared = prepare_graph(spec, backend);
  std::shared_ptr<Executable> inner;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.modules.find(prepared.key);
    if (it != c.modules.end()) {
      ++c.stats.memory_hits;
      inner = it->second;
    }
  }
  if (!inner) {
    GraphSpec shown = explained(spec, prepared);
    if (env::get_flag("KILN_EXPLAIN_CACHE_MISSES", false)) {
      std::lock_guard<std::mutex> lock(c.mutex);
      fmt::print(stderr, "kiln: cache miss ({} args, {} ops{}): {}\n", spec.args.size(), spec.ops.size(),
                 prepared.batch > 0 ? fmt::format(", batch size {} symbolic", prepared.batch) : "",
                 explain_miss(shown, c.specs));
      if (!prepared.concrete_reason.empty()) fmt::print(stderr, "{}\n", prepared.concrete_reason);
    }
    auto start = std::chrono::steady_clock::now();
    bool from_disk = false;
    inner = compile_prepared(prepared, &from_disk);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.specs.push_back(std::move(shown));
    if (from_disk) {
      ++c.stats.disk_hits;
      c.stats.load_seconds += seconds;
    } else {
      ++c.stats.misses;
      c.stats.compile_seconds += seconds;
    }
    c.modules.emplace(prepared.key, inner);
  }
  std::shared_ptr<Executable> exe = checked_executable(std::move(inner), spec, std::move(prepared.checks));
  // Later calls with these exact shapes find it without MLIR.
  std::lock_guard<std::mutex> lock(c.mutex);
  c.compiled.emplace(std::move(key), exe);
  return exe;
}

// Flattens the pending subgraph behind `outputs` into its arguments, its ops (in
// topological order, read from their nodes) and its structural key. A GraphSpec
// (a copy of every op) is made only when the graph is compiled or captured: on a
// cache hit, the step's host work is the walk, the key and the run.
class GraphBuilder {
 public:
  std::vector<Array> arg_values;

  // The vectors' storage is this thread's from the last graph (VectorStash).
  explicit GraphBuilder(const std::vector<NodePtr>& outputs)
      : arg_values(VectorStash<Array>::take(32)),
        args_(VectorStash<GraphSpec::Arg>::take(32)),
        ops_(VectorStash<PendingOp>::take(128)),
        operands_(VectorStash<int>::take(256)),
        arg_ids_(VectorStash<const Node*>::take(32)) {
    mark_recompute(outputs);
    for (const NodePtr& n : outputs) outputs_.push_back(emit(n.get()));
    // Op ids were provisional (negative): ops are numbered after the arguments.
    for (int& v : operands_) v = final_id(v);
    for (int& v : outputs_) v = final_id(v);
  }

  // The active DonationScope's pairs whose next value is output k and whose
  // current value is an argument of the same type, each argument at most once.
  void add_donations(const std::vector<NodePtr>& outputs) {
    if (!t_donations) return;
    std::vector<bool> donated(args_.size());
    for (size_t k = 0; k < outputs.size(); ++k)
      for (auto [next, current] : *t_donations) {
        if (next != outputs[k].get()) continue;
        const int* id = ids_.find(current);
        if (!id || *id < 0 || *id >= static_cast<int>(args_.size())) continue;
        const GraphSpec::Arg& arg = args_[*id];
        if (arg.shape != next->shape || arg.dtype != next->dtype || donated[*id]) continue;
        donated[*id] = true;
        donations_.push_back({static_cast<int>(k), *id});
      }
  }

  // Appends the key of spec() to `k`, the same bytes as spec().append_key(k).
  void append_key(std::string& out) const {
    static const std::string stop_gradient = "kiln.stop_gradient";
    static const Attrs no_attrs;
    static const std::shared_ptr<const GraphSpec> no_region;
    KeyWriter k(out);
    append_args_key(k, args_);
    k.raw<uint32_t>(static_cast<uint32_t>(ops_.size()));
    for (const PendingOp& p : ops_) {
      const Node& n = *p.node;
      if (p.stop_gradient)
        append_op_key(k, stop_gradient, &operands_[p.first], p.count, no_attrs, n.shape, n.dtype, no_region,
                      no_region);
      else
        append_op_key(k, n.op, &operands_[p.first], p.count, n.attrs, n.shape, n.dtype, n.forward, n.backward);
    }
    append_outputs_key(k, outputs_, donations_);
  }
  size_t size() const { return ops_.size() + args_.size(); }

  // The graph as a GraphSpec (copies of its ops), for a compile or a capture.
  GraphSpec spec() const {
    GraphSpec spec;
    spec.args = args_;
    spec.ops.reserve(ops_.size());
    for (const PendingOp& p : ops_) {
      const Node& n = *p.node;
      std::vector<int> operands(operands_.begin() + p.first, operands_.begin() + p.first + p.count);
      if (p.stop_gradient) {
        // A gradient barrier where a gradient is requested: -kiln-autodiff sends none through it.
        spec.ops.push_back(GraphOp{"kiln.stop_gradient", {}, std::move(operands), n.shape, n.dtype, n.file, n.line});
        continue;
      }
      GraphOp op{n.op, n.attrs, std::move(operands), n.shape, n.dtype, n.file, n.line, n.forward, n.backward};
      for (const NodePtr& in : n.inputs)
        if (op.link.expired() && in->is_leaf())
          if (std::shared_ptr<VariableData> owner = in->leaf_of.lock()) op.link = owner->owner;
      spec.ops.push_back(std::move(op));
    }
    spec.outputs = outputs_;
    spec.donations = donations_;
    return spec;
  }

  const std::vector<const Node*>& arg_nodes() const { return arg_ids_; }

  ~GraphBuilder() {
    VectorStash<Array>::give(arg_values);
    VectorStash<GraphSpec::Arg>::give(args_);
    VectorStash<PendingOp>::give(ops_);
    VectorStash<int>::give(operands_);
    VectorStash<const Node*>::give(arg_ids_);
  }
  GraphBuilder(const GraphBuilder&) = delete;
  GraphBuilder& operator=(const GraphBuilder&) = delete;

 private:
  // An op of the graph: its node's op (or the kiln.stop_gradient recorded after a
  // node without backprop), its operands operands_[first, first + count).
  struct PendingOp {
    const Node* node;
    uint32_t first, count;
    bool stop_gradient;
  };

  int final_id(int v) const { return v < 0 ? static_cast<int>(args_.size()) + (-v - 1) : v; }

  // Realized nodes on a path to a gradient request's y are recomputed, so
  // gradients flow through them to the leaves behind.
  void mark_recompute(const std::vector<NodePtr>& outputs) {
    NodeMap visited(128);
    std::vector<const Node*> work;
    for (const NodePtr& n : outputs) work.push_back(n.get());
    std::vector<const Node*> ys;
    while (!work.empty()) {
      const Node* n = work.back();
      work.pop_back();
      if (n->realized() || !visited.insert(n)) continue;
      if (n->gradient_request) ys.push_back(n->inputs[0].get());
      for (const NodePtr& in : n->inputs) work.push_back(in.get());
    }
    has_grad_requests_ = !ys.empty();
    while (!ys.empty()) {
      const Node* n = ys.back();
      ys.pop_back();
      // No gradient flows through a node recorded without backprop: what is behind it need not be recomputed.
      if (n->is_leaf() || n->no_backprop || !recompute_.insert(n)) continue;
      for (const NodePtr& in : n->inputs) ys.push_back(in.get());
    }
  }

  int emit(const Node* n) {
    if (const int* known = ids_.find(n)) return *known;
    int id;
    if (n->is_leaf() || (n->realized() && !recompute_.contains(n))) {
      id = static_cast<int>(args_.size());
      std::shared_ptr<VariableData> owner = n->leaf_of.lock();
      bool state = n->is_leaf() && (n->state || (owner && owner->state));
      int candidate = n->shape.empty() || state ? 0 : n->is_leaf() ? 2 : n->gradient_request ? 0 : 1;
      args_.push_back({n->shape, n->dtype, candidate, state});
      arg_values.push_back(*n->value);
      arg_ids_.push_back(n);
    } else {
      if (n->op.size() == std::strlen(kPlaceholderOp) && n->op == kPlaceholderOp)
        throw Error("kiln: a variable of a custom function's forward or backward (one of its "
                    "inputs or a value computed from them) was used outside the function");
      for (const NodePtr& in : n->inputs) emit(in.get());  // operands first (post-order)
      auto first = static_cast<uint32_t>(operands_.size());
      for (const NodePtr& in : n->inputs) operands_.push_back(*ids_.find(in.get()));
      ops_.push_back({n, first, static_cast<uint32_t>(n->inputs.size()), false});
      id = -static_cast<int>(ops_.size());  // provisional: ops numbered after args
      if (n->no_backprop && has_grad_requests_) {
        operands_.push_back(id);
        ops_.push_back({n, static_cast<uint32_t>(operands_.size() - 1), 1, true});
        id = -static_cast<int>(ops_.size());
      }
    }
    ids_.insert(n, id);
    return id;
  }

  std::vector<GraphSpec::Arg> args_;
  std::vector<PendingOp> ops_;
  std::vector<int> operands_;
  std::vector<int> outputs_;
  std::vector<std::pair<int, int>> donations_;
  bool has_grad_requests_ = false;
  NodeMap recompute_{64};
  NodeMap ids_{128};
  std::vector<const Node*> arg_ids_;
};

}  // namespace

namespace {

// Computes `outputs` (pending nodes of one device) in one graph on `backend`.
void run_graph(const std::vector<NodePtr>& outputs, const Backend& backend) {
  GraphBuilder builder(outputs);
  builder.add_donations(outputs);
  if (std::vector<CapturedGraph>* capture = active_graph_capture())
    capture->push_back({builder.spec(), builder.arg_nodes(), outputs, builder.arg_values});  // kiln::export_* (export.cpp)
  // Graphs compiled for one backend or under other options are not reused (KILN_BACKEND, KILN_GEMM may change).
  // Built in this thread's buffer (a small step's key is ~5 KB): copied only for a compile.
  thread_local std::string key;
  key.clear();
  key += backend_key(backend);  // (not `=`: a move would drop the buffer)
  key.reserve(key.size() + 1 + 64 * builder.size());
  key += '|';
  builder.append_key(key);
  std::shared_ptr<Executable> exe = lookup_compiled(key);
  if (!exe) exe = compile_graph(key, builder.spec(), backend);
  std::vector<Array> results = exe->run(builder.arg_values);
  if (results.size() != outputs.size())
    throw Error(fmt::format("kiln: internal error: graph returned {} results for {} outputs",
                            results.size(), outputs.size()));
  for (size_t i = 0; i < outputs.size(); ++i) outputs[i]->value = std::move(results[i]);
}

}  // namespace

void realize() {
  if (!custom_recording_stack().empty())
    throw Error(fmt::format("kiln: FunctionNode '{}': its forward and backward only record ops; "
                            "they cannot read values (array(), grad(), item(), printing)",
                            custom_recording_stack().back()));
  auto& reg = registry();
  uint64_t me = thread_token();
  std::vector<NodePtr> outputs;
  NodeMap seen(32), data_nodes(128);
  std::vector<Node*> grads;  // gradients computed here: collapsed to leaves afterwards
  size_t live = 0;
  for (size_t i = 0; i < reg.size(); ++i) {
    auto data = reg[i].lock();
    if (!data || data->thread.load(std::memory_order_relaxed) != me) continue;
    if (live != i) reg[live] = std::move(reg[i]);
    ++live;
    if (data->node) data_nodes.insert(data->node.get());
    for (const NodePtr& n : {data->node, data->grad})
      if (n && !n->realized() && seen.insert(n.get())) {
        outputs.push_back(n);
        if (n == data->grad) grads.push_back(n.get());
      }
  }
  reg.resize(live);
  if (outputs.empty()) return;

  // One graph per device: a graph runs on the device of its inputs (every op's
  // operands share one device, make_node checks), by that device's backend.
  std::vector<std::pair<Device, std::vector<NodePtr>>> by_device;
  for (NodePtr& n : outputs) {
    Device d = device_of(*n);
    auto it = std::find_if(by_device.begin(), by_device.end(), [&](const auto& g) { return g.first == d; });
    if (it == by_device.end()) it = by_device.insert(by_device.end(), {d, {}});
    it->second.push_back(std::move(n));
  }
  for (auto& [device, group] : by_device) run_graph(group, backend_for(device));
  // A computed gradient is a value, not a graph: a gradient accumulated over
  // many steps (an input's, nobody reads) holds no earlier step.
  for (Node* g : grads)
    if (!data_nodes.contains(g)) collapse_to_leaf(*g);
}

}  // namespace kiln::detail

namespace kiln {

std::string CacheStats::to_string() const {
  return fmt::format("cache: {} memory hits, {} disk hits, {} misses, {:.3f} s compiling, {:.3f} s loading",
                     memory_hits, disk_hits, misses, compile_seconds, load_seconds);
}
CacheStats cache_stats() {
  std::lock_guard<std::mutex> lock(detail::cache().mutex);
  return detail::cache().stats;
}
void reset_cache_stats() {
  std::lock_guard<std::mutex> lock(detail::cache().mutex);
  detail::cache().stats = CacheStats();
}
void clear_memory_cache() {
  std::lock_guard<std::mutex> lock(detail::cache().mutex);
  detail::cache().compiled.clear();
  detail::cache().specs.clear();
  detail::cache().modules.clear();
}

}  // namespace kiln
