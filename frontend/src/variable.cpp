// Variable and Parameter: handles onto the trace, gradients and backward().
#include "kiln/variable.h"

#include <unordered_set>

#include "kiln/functions.h"
#include "ops.h"
#include "trace.h"

namespace kiln {

using detail::NodePtr;
using detail::VariableData;

static std::shared_ptr<VariableData> new_data() {
  auto d = std::make_shared<VariableData>();
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
  // Every leaf variable that y depends on and that requires a gradient.
  std::unordered_set<const detail::Node*> visited;
  std::vector<NodePtr> work{y}, leaves;
  while (!work.empty()) {
    NodePtr n = work.back();
    work.pop_back();
    if (!visited.insert(n.get()).second) continue;
    if (n->is_leaf()) {
      auto owner = n->leaf_of.lock();
      if (owner && owner->requires_grad && is_floating(n->dtype)) leaves.push_back(n);
      continue;
    }
    if (n->no_backprop) continue;  // recorded under no_backprop_mode: no creator to go back through
    for (const NodePtr& in : n->inputs) work.push_back(in);
  }
  for (const NodePtr& leaf : leaves) {
    auto owner = leaf->leaf_of.lock();
    NodePtr g = detail::make_node("kiln.grad", {y, seed, leaf}, {}, leaf->shape, leaf->dtype);
    if (owner->grad) g = detail::make_node("kiln.add", {owner->grad, g}, {}, leaf->shape, leaf->dtype);
    detail::claim(owner);
    owner->grad = g;
  }
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
  data_->node = detail::make_leaf(data_->initializer(shape, dtype), data_);
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
