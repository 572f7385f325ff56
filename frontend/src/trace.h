// The lazy trace: nodes recorded by every op call, and the handles that keep them.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/array.h"
#include "kiln/variable.h"
#include "block_pool.h"

namespace kiln::detail {

struct GraphSpec;  // graph.h

// One attribute of a recorded op. Kinds map 1:1 onto MLIR attributes when emitted.
struct Attr {
  enum class Kind { Int, Ints, Float, Str, Unit, Splat };
  std::string name;
  Kind kind = Kind::Int;
  int64_t i = 0;
  std::vector<int64_t> ints;
  double f = 0;
  std::string s;
};
using Attrs = std::vector<Attr>;

Attr int_attr(std::string name, int64_t v);
Attr ints_attr(std::string name, std::vector<int64_t> v);
Attr float_attr(std::string name, double v);
Attr str_attr(std::string name, std::string v);
Attr unit_attr(std::string name);  // present = true
Attr splat_attr(std::string name, double v);  // dense splat of the result type

// A recorded op (or a leaf holding data). Only a recording: op name,
// attributes, inputs, result shape and dtype. Realized nodes keep `value`.
struct LinkImpl;  // kiln/link.h
struct Node;
// A node's inputs: in pooled blocks (block_pool.h), as every op call makes one.
using NodeInputs = std::vector<std::shared_ptr<Node>, PoolAllocator<std::shared_ptr<Node>>>;

struct Node {
  std::string op;  // "kiln.add", ... or "leaf"
  Attrs attrs;
  NodeInputs inputs;
  Shape shape;
  DType dtype = DType::f32;
  // Where the value lives and the graph computing it runs: a leaf's array's
  // device, an op's inputs' (all on one device; checked by make_node); none for
  // an op without inputs (a constant), which takes the device of its users.
  std::optional<Device> device;
  std::optional<Array> value;
  // The user's call site (file is a string literal from __builtin_FILE; null if unknown).
  const char* file = nullptr;
  int line = 0;
  // For leaves: the variable whose data this is (gradients are computed for it).
  std::weak_ptr<VariableData> leaf_of;
  // For leaves: state (see VariableData::state) or a gradient, never a data batch.
  bool state = false;
  // Recorded with enable_backprop off (no_backprop_mode): gradients do not flow
  // through this node to its inputs (like a Chainer variable without a creator).
  bool no_backprop = false;
  // A gradient request (kiln.grad, recorded by Variable::backward): the
  // gradient of y = inputs[0], seeded by inputs[1], for the leaf inputs[2].
  bool gradient_request = false;
  // For "kiln.custom" (kiln::FunctionNode): the user's forward and backward,
  // flattened over placeholders (arguments: the inputs; for the backward also
  // the output and its gradient).
  std::shared_ptr<const GraphSpec> forward, backward;

  // Inline (std::string == const char* is a strlen and a call): walks ask it of every node.
  bool is_leaf() const { return op.size() == 4 && std::memcmp(op.data(), "leaf", 4) == 0; }
  bool realized() const { return value.has_value(); }
};
using NodePtr = std::shared_ptr<Node>;

// Nodes to ints for one walk of the trace (realize, backward): open addressing on
// the pointer, one array (node-based hash tables were a third of a small training
// step's host time in allocations). At most half full; sized for `expected` nodes.
class NodeMap {
 public:
  explicit NodeMap(size_t expected = 64) : slots_(VectorStash<Slot>::take()) {
    slots_.assign(capacity_for(expected), Slot{});
  }
  ~NodeMap() { VectorStash<Slot>::give(slots_); }
  NodeMap(const NodeMap&) = default;
  NodeMap& operator=(const NodeMap&) = default;
  size_t size() const { return size_; }
  // The value of `n`, or null.
  int* find(const Node* n) {
    Slot& s = slot(n);
    return s.node ? &s.value : nullptr;
  }
  bool contains(const Node* n) { return find(n) != nullptr; }
  // Adds `n` with `value`; false (and nothing changed) if present.
  bool insert(const Node* n, int value = 0) {
    Slot* s = &slot(n);
    if (s->node) return false;
    if (2 * (size_ + 1) > slots_.size()) {
      grow(size_ + 1);
      s = &slot(n);
    }
    *s = {n, value};
    ++size_;
    return true;
  }

 private:
  struct Slot {
    const Node* node = nullptr;
    int value = 0;
  };
  Slot& slot(const Node* n) {
    size_t mask = slots_.size() - 1;
    size_t i = (reinterpret_cast<uintptr_t>(n) >> 4) * 0x9E3779B97F4A7C15ull >> 20 & mask;
    while (slots_[i].node && slots_[i].node != n) i = (i + 1) & mask;
    return slots_[i];
  }
  static size_t capacity_for(size_t expected) {
    size_t capacity = 16;
    while (capacity < 2 * expected) capacity *= 2;
    return capacity;
  }
  void grow(size_t expected) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity_for(expected), Slot{});
    for (const Slot& s : old)
      if (s.node) slot(s.node) = s;
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

// The shared state behind Variable handles.
struct VariableData {
  NodePtr node;
  NodePtr grad;  // null: no gradient
  bool requires_grad = true;
  std::string name;
  Parameter::Initializer initializer;  // Parameters initialized lazily
  // The link a parameter is registered with (Link::add_param): names kernels.
  std::weak_ptr<LinkImpl> owner;
  // Model or optimizer state (Parameters, optimizer slots, running
  // statistics): never a data batch, so its leading dimension never chooses
  // the symbolic batch size of a compiled graph.
  bool state = false;
  // Where a lazily initialized Parameter is initialized (Link::to_device sets it).
  Device device;
  // The thread that last created or changed this variable (its thread_token()):
  // realize() on that thread computes its pending nodes (see claim()).
  std::atomic<uint64_t> thread{0};
};

NodePtr make_leaf(const Array& value, const std::shared_ptr<VariableData>& owner);
// Marks `data` and its current leaf as state (see VariableData::state).
void mark_state(const std::shared_ptr<VariableData>& data);
// Records an op. Inputs must all be set; shape/dtype are the already-checked result.
// Throws kiln::Error naming both devices when the inputs live on different devices.
NodePtr make_node(std::string op, NodeInputs inputs, Attrs attrs, Shape shape, DType dtype);

// Placeholder nodes stand for a custom function's arguments while its forward
// and backward are recorded (op "placeholder"); they never reach a graph.
constexpr const char* kPlaceholderOp = "placeholder";
// The names of the custom functions being recorded (innermost last); realize()
// refuses to run while one is.
std::vector<std::string>& custom_recording_stack();

// Makes the calling thread the owner of `data`: realize() on this thread
// computes the pending nodes it holds. Called when a variable is created and
// whenever its data or grad is replaced. Each thread realizes only the
// variables it owns, so separate models on separate threads never touch each
// other's nodes; one variable used by two threads at once is not supported.
void claim(const std::shared_ptr<VariableData>& data);
// The calling thread's token, never 0 and never reused by a later thread
// (std::thread::id values are reused once a thread has ended).
uint64_t thread_token();
inline void register_variable(const std::shared_ptr<VariableData>& data) { claim(data); }

// While alive (on this thread), a realize() whose graph computes `next` from
// the argument `current` (each pair: next value, current value; an optimizer's
// update of a parameter or of its state) lists the pair in its GraphSpec's
// donations, so the backend may write `next` into `current`'s buffer when
// nothing else shares it (the parameter keeps its data pointer across steps).
class DonationScope {
 public:
  explicit DonationScope(std::vector<std::pair<const Node*, const Node*>> pairs);
  ~DonationScope();
  DonationScope(const DonationScope&) = delete;
  DonationScope& operator=(const DonationScope&) = delete;

 private:
  std::vector<std::pair<const Node*, const Node*>> pairs_;
  const std::vector<std::pair<const Node*, const Node*>>* outer_;
};

// Computes every pending node that a live variable of this thread references
// (its data or grad), in one compiled graph. Thread-safe: the graph cache is
// locked, compiles are serialized (one MLIRContext), kernels run concurrently.
void realize();

// Turns a realized node into a leaf holding its value: the trace behind it is
// released. Used for gradients once computed (they are not differentiated
// again), so accumulating a gradient over many steps keeps no earlier graph.
void collapse_to_leaf(Node& n);

// The device of a node: its own, or the CPU for one without (a constant).
inline Device device_of(const Node& n) { return n.device ? *n.device : Device::cpu(); }
// `a` on the device of `like` (arrays kiln's functions make for their operands:
// masks, random keys, optimizer state, initial recurrent states).
Array on_device_of(const Array& a, const Variable& like);

}  // namespace kiln::detail
