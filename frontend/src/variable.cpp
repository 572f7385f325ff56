// Variable and Parameter: handles onto the trace, gradients and backward().
#include "kiln/variable.h"

#include <unordered_set>

#include "kiln/functions.h"
#include "block_pool.h"
#include "ops.h"
#include "trace.h"

namespace kiln {

using detail::NodePtr;
using detail::VariableData;

static std::shared_ptr<VariableData> new_data() {
  auto d = std::allocate_shared<VariableData>(detail::PoolAllocator<VariableData>());
  detail::register_variable(d);
  return d;
}

Variable::Variable() = default;

Variable::Variable(const Array& data, bool requires_grad) : data_(new_data()) {
  data_->node = detail::make_leaf(data, data_);
  data_->requires_grad = requires_grad;
}

Variable::Variable(std::shared_ptr<detail::Node> node) : data_(new_data()) {
  data_->node = std::move(node);
}

static const VariableData& checked(const std::shared_ptr<VariableData>& d, const char* what) {
  if (!d) throw Error(std::string("kiln: Variable::") + what + ": the variable is empty (default-constructed)");
  if (!d->node)
    throw Error(std::string("kiln: Variable::") + what +
                ": the parameter is not initialized yet (a lazy link initializes it at its first call)");
  return *d;
}

const std::shared_ptr<detail::Node>& Variable::node() const { return checked(data_, "node").node; }
const Shape& Variable::shape() const { return checked(data_, "shape").node->shape; }
DType Variable::dtype() const { return checked(data_, "dtype").node->dtype; }

Array Variable::array() const {
  const NodePtr& n = checked(data_, "array").node;
  if (!n->realized()) {
    detail::claim(data_);
    detail::realize();
  }
  return *n->value;
}

void Variable::set_array(const Array& a) {
  if (!data_) data_ = new_data();
  detail::claim(data_);
  data_->node = detail::make_leaf(a, data_);
}

Device Variable::device() const {
  if (!data_) return Device::cpu();
  if (!data_->node) return data_->device;  // an uninitialized Parameter: where it will be initialized
  return detail::device_of(*data_->node);
}

void Variable::to_device(const Device& device) {
  const std::shared_ptr<VariableData>& d = data_;
  if (!d) throw Error("kiln: Variable::to_device: the variable is empty (default-constructed)");
  d->device = device;
  if (d->node) {
    const NodePtr& n = d->node;
    if (detail::device_of(*n) != device) {
      if (!n->realized())
        throw Error(fmt::format("kiln: Variable::to_device: the variable is computed on {} and not realized yet "
                                "(not a leaf holding data); only values (Parameters, inputs, realized results) "
                                "move to {}", detail::device_of(*n).to_string(), device.to_string()));
      Array moved = n->value->to(device);
      detail::claim(d);
      d->node = detail::make_leaf(moved, d);
    }
  }
  if (d->grad && detail::device_of(*d->grad) != device) {
    Array g = grad().to(device);
    detail::claim(d);
    d->grad = detail::make_leaf(g, nullptr);
    d->grad->state = true;  // a gradient, not a data batch
  }
}

bool Variable::has_grad() const { return data_ && data_->grad; }

Array Variable::grad() const {
  if (!has_grad())
    throw Error("kiln: Variable::grad: the variable has no gradient (call backward() first, or "
                "check has_grad())");
  if (!data_->grad->realized()) {
    detail::claim(data_);
    detail::realize();
  }
  return *data_->grad->value;
}

Variable Variable::grad_var() const {
  if (!has_grad()) return Variable();
  return Variable(data_->grad);
}

static void check_grad_shape(const Variable& v, const Shape& shape, DType dtype) {
  if (shape != v.shape() || dtype != v.dtype())
    throw Error(fmt::format("kiln: Variable::set_grad: gradient of shape {} and dtype {} does not "
                            "match the variable's shape {} and dtype {}",
                            shape_str(shape), dtype_name(dtype), shape_str(v.shape()),
                            dtype_name(v.dtype())));
}

void Variable::set_grad(const Array& g) {
  check_grad_shape(*this, g.shape(), g.dtype());
  if (g.device() != device())
    throw Error(fmt::format("kiln: Variable::set_grad: the gradient is on {}, the variable on {}; "
                            "move the gradient with Array::to first",
                            g.device().to_string(), device().to_string()));
  detail::claim(data_);
  data_->grad = detail::make_leaf(g, nullptr);
  data_->grad->state = true;  // a gradient, not a data batch
}

void Variable::set_grad_var(const Variable& g) {
  if (g.is_null()) { cleargrad(); return; }
  check_grad_shape(*this, g.shape(), g.dtype());
  detail::claim(data_);
  data_->grad = g.node();
}

void Variable::cleargrad() {
  if (!data_) return;
  detail::claim(data_);
  data_->grad = nullptr;
}

bool Variable::requires_grad() const { return data_ && data_->requires_grad; }
void Variable::set_requires_grad(bool on) { if (data_) data_->requires_grad = on; }

const std::string& Variable::name() const {
  static const std::string empty;
  return data_ ? data_->name : empty;
}
void Variable::set_name(const std::string& name) { if (data_) data_->name = name; }

void Variable::backward() {
  const NodePtr& y = checked(data_, "backward").node;
  if (!is_floating(y->dtype))
    throw Error(fmt::format("kiln: Variable::backward: cannot differentiate a variable of dtype {}",
                            dtype_name(y->dtype)));
  NodePtr seed = data_->grad;
  if (!seed) {
    if (shape_size(y->shape) != 1)
      throw Error(fmt::format("kiln: Variable::backward: the variable has shape {}; only a size-1 "
                              "variable gets the initial gradient 1, set one with set_grad() first",
                              shape_str(y->shape)));
    seed = detail::make_node("kiln.constant", {}, {detail::splat_attr("value", 1.0)}, y->shape, y->dtype);
    detail::claim(data_);
    data_->grad = seed;
  }
  // A leaf's own backward leaves its gradient as it is (the seed), as in Chainer.
  // (Another variable on the same leaf, F::identity's result, passes the seed to it.)
  if (y->is_leaf() && y->leaf_of.lock() == data_) return;
  // Every leaf variable that y depends on and that requires a gradient. The walk holds
  // pointers to the handles in y's graph (which keeps them alive): no reference count moves.
  detail::NodeMap visited(128);
  std::vector<const NodePtr*> work{&y};
  std::vector<NodePtr> leaves;
  work.reserve(64);
  while (!work.empty()) {
    const NodePtr& n = *work.back();
    work.pop_back();
    if (!visited.insert(n.get())) continue;
    if (n->is_leaf()) {
      auto owner = n->leaf_of.lock();
      if (owner && owner->requires_grad && is_floating(n->dtype)) leaves.push_back(n);
      continue;
    }
    if (n->no_backprop) continue;  // recorded under no_backprop_mode: no creator to go back through
    for (const NodePtr& in : n->inputs) work.push_back(&in);
  }
  for (const NodePtr& leaf : leaves) {
    auto owner = leaf->leaf_of.lock();
    NodePtr g = detail::make_node("kiln.grad", {y, seed, leaf}, {}, leaf->shape, leaf->dtype);
    g->gradient_request = true;
    if (owner->grad) g = detail::make_node("kiln.add", {owner->grad, g}, {}, leaf->shape, leaf->dtype);
    detail::claim(owner);
    owner->grad = g;
  }
}

void Variable::backward(bool retain_grad, bool enable_double_backprop) {
  if (retain_grad)
    throw Error("kiln: Variable::backward: retain_grad=true (keeping the gradients of intermediate "
                "variables) is not implemented; kiln::grad(outputs, inputs) gives the gradient of any "
                "intermediate value");
  backward();
  if (enable_double_backprop) return;
  // The gradients just requested become values no gradient flows back through.
  std::unordered_set<const detail::Node*> visited;
  std::vector<NodePtr> work{data_->node};
  while (!work.empty()) {
    NodePtr n = work.back();
    work.pop_back();
    if (!n || !visited.insert(n.get()).second || n->is_leaf()) continue;
    for (const NodePtr& in : n->inputs) work.push_back(in);
  }
  for (const detail::Node* n : visited) {
    if (!n->is_leaf()) continue;
    auto owner = n->leaf_of.lock();
    if (owner && owner->grad && !owner->grad->is_leaf()) owner->grad->no_backprop = true;
  }
}

void Variable::unchain() {
  Array value = array();
  detail::claim(data_);
  data_->node = detail::make_leaf(value, data_);
}

void Variable::unchain_backward() {
  // Chainer: every variable behind this one loses its creator. The realize in unchain()
  // computed every pending value a handle holds; each computed node behind this one
  // becomes a leaf holding its value (in place, so every handle onto it sees the cut), e.g.
  // the state of a stateful LSTM after loss.unchain_backward() in truncated BPTT.
  NodePtr root = checked(data_, "unchain_backward").node;
  if (root->is_leaf())
    throw Error("kiln: Variable::unchain_backward: this variable has no creator (it is a leaf: an input, a "
                "Parameter, or a variable already unchained), so there is no graph behind it to cut; call it "
                "on a value computed from others, such as the loss of a truncated-BPTT window");
  unchain();
  std::unordered_set<const detail::Node*> visited;
  std::vector<NodePtr> work{root};
  while (!work.empty()) {
    NodePtr n = std::move(work.back());
    work.pop_back();
    if (!n || n->is_leaf() || !visited.insert(n.get()).second) continue;
    work.insert(work.end(), n->inputs.begin(), n->inputs.end());
    if (n->realized()) {
      bool state = n->state;
      detail::collapse_to_leaf(*n);
      n->state = state;  // a data value stays one (it may choose the symbolic batch)
    }
  }
}

namespace {
// Whether `from` depends on `target` through nodes gradients flow through.
bool depends_on(const NodePtr& from, const detail::Node* target) {
  std::unordered_set<const detail::Node*> visited;
  std::vector<const detail::Node*> work{from.get()};
  while (!work.empty()) {
    const detail::Node* n = work.back();
    work.pop_back();
    if (n == target) return true;
    if (!visited.insert(n).second || n->is_leaf() || n->no_backprop) continue;
    for (const NodePtr& in : n->inputs) work.push_back(in.get());
  }
  return false;
}
}  // namespace

std::vector<Variable> grad(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs,
                           const std::vector<Variable>& grad_outputs, bool enable_double_backprop) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw Error(fmt::format("kiln: grad: grad_outputs has {} entries, expected one per output ({})",
                            grad_outputs.size(), outputs.size()));
  std::vector<NodePtr> seeds;
  for (size_t j = 0; j < outputs.size(); ++j) {
    const Variable& y = outputs[j];
    if (y.is_null()) throw Error(fmt::format("kiln: grad: outputs[{}] is a variable with no data", j));
    if (!is_floating(y.dtype()))
      throw Error(fmt::format("kiln: grad: outputs[{}] has dtype {}; only floating outputs can be "
                              "differentiated", j, dtype_name(y.dtype())));
    const Variable* gy = grad_outputs.empty() || grad_outputs[j].is_null() ? nullptr : &grad_outputs[j];
    if (gy && (gy->shape() != y.shape() || gy->dtype() != y.dtype()))
      throw Error(fmt::format("kiln: grad: grad_outputs[{}] must match outputs[{}]: expected shape {} "
                              "dtype {}, got shape {} dtype {}", j, j, shape_str(y.shape()),
                              dtype_name(y.dtype()), shape_str(gy->shape()), dtype_name(gy->dtype())));
    seeds.push_back(gy ? gy->node()
                       : detail::make_node("kiln.constant", {}, {detail::splat_attr("value", 1.0)}, y.shape(),
                                           y.dtype()));
  }
  std::vector<Variable> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Variable& x = inputs[i];
    if (x.is_null()) throw Error(fmt::format("kiln: grad: inputs[{}] is a variable with no data", i));
    if (!is_floating(x.dtype()))
      throw Error(fmt::format("kiln: grad: inputs[{}] has dtype {}; gradients exist for floating "
                              "variables only", i, dtype_name(x.dtype())));
    NodePtr sum;
    for (size_t j = 0; j < outputs.size(); ++j) {
      if (!depends_on(outputs[j].node(), x.node().get())) continue;
      NodePtr g = detail::make_node("kiln.grad", {outputs[j].node(), seeds[j], x.node()}, {}, x.shape(), x.dtype());
      g->gradient_request = true;
      sum = sum ? detail::make_node("kiln.add", {sum, g}, {}, x.shape(), x.dtype()) : g;
    }
    if (!sum) {
      result.emplace_back();
      continue;
    }
    if (!enable_double_backprop) sum->no_backprop = true;
    Variable gx(sum);
    result.push_back(gx);
  }
  return result;
}

// ---- Parameter ------------------------------------------------------------------

Parameter::Parameter() {
  data_ = new_data();
  data_->state = true;
}

Parameter::Parameter(const Array& data) {
  data_ = new_data();
  data_->state = true;
  data_->node = detail::make_leaf(data, data_);
}

Parameter::Parameter(Initializer init) {
  data_ = new_data();
  data_->state = true;
  data_->initializer = std::move(init);
}

bool Parameter::is_initialized() const { return data_->node != nullptr; }

void Parameter::initialize(const Shape& shape, DType dtype) {
  if (!data_->initializer)
    throw Error("kiln: Parameter::initialize: the parameter has no initializer");
  detail::claim(data_);
  data_->node = detail::make_leaf(data_->initializer(shape, dtype).to(data_->device), data_);
}

std::string to_string(const Variable& v) {
  if (v.is_null()) return "variable(None)";
  std::string body = v.array().to_string();
  std::string out = "variable(";
  for (char c : body) {
    out += c;
    if (c == '\n') out += "         ";
  }
  return out + ")";
}

}  // namespace kiln
