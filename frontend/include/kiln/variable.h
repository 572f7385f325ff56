// kiln::Variable and kiln::Parameter: handles to nodes of the lazy trace.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/array.h"

namespace kiln {

namespace detail {
struct Node;
struct VariableData;
}  // namespace detail

// A node of the computational graph, like chainer.Variable. Copies share one
// variable (its data and grad). Ops on variables only record; `array()`,
// `grad()`, `item()` and printing realize (compile or hit the cache, then run).
class Variable {
 public:
  Variable();  // a variable with no data (shape (0,))
  Variable(const Array& data, bool requires_grad = true);  // NOLINT: implicit like Chainer

  const Shape& shape() const;
  DType dtype() const;
  int64_t ndim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size() const { return shape_size(shape()); }

  Array array() const;           // realize and return the value
  Array data() const { return array(); }
  void set_array(const Array& a);  // replace the value (this becomes a new leaf)
  template <typename T> T item() const { return array().item<T>(); }

  bool has_grad() const;
  Array grad() const;  // realize and return the gradient; throws if there is none
  Variable grad_var() const;  // the gradient as a Variable (no realize); empty if none
  void set_grad(const Array& g);
  void set_grad_var(const Variable& g);
  void cleargrad();
  // Records a gradient request; gradients of every leaf variable reachable
  // from this one are computed at the next realize. Like Chainer, a size-1
  // variable gets the seed gradient 1 by default; larger ones need set_grad.
  void backward();
  // Chainer's backward(retain_grad, enable_double_backprop): with
  // enable_double_backprop the gradients are themselves differentiable (a
  // gradient penalty's backward goes through them); without, they are values
  // no gradient flows back through. retain_grad=true (gradients of
  // intermediate variables) is not implemented and throws kiln::Error.
  void backward(bool retain_grad, bool enable_double_backprop = false);

  // Chainer's unchain(): this variable becomes a leaf holding its value (it is
  // computed now if pending); backward() from values computed later stops
  // here, and the graph behind it is freed unless another variable holds it.
  void unchain();
  // Chainer's unchain_backward(), as used by truncated BPTT: unchain() this
  // variable and every variable behind it (each becomes a leaf holding its
  // value), so `loss.unchain_backward()` also cuts the state a stateful link
  // (L::LSTM's h() and c()) carries into the next window.
  void unchain_backward();

  bool requires_grad() const;
  void set_requires_grad(bool on);
  const std::string& name() const;
  void set_name(const std::string& name);

  // Where the value lives (Chainer's Variable.device): the device of its array,
  // or of the inputs it is computed from; Device::cpu() for an empty variable.
  Device device() const;
  // Chainer's Variable.to_device: moves the data (and gradient) of this
  // variable (a Parameter, an input, a realized result) to `device`, in place;
  // it becomes a leaf holding the moved value (as after unchain()). An
  // uninitialized Parameter is initialized there later. A pending computed
  // variable (not realized yet) on another device throws kiln::Error. Same as to_device(Device::cpu()) /
  // to_device(Device::cuda(i)): to_cpu(), to_gpu(i).
  void to_device(const Device& device);
  void to_cpu() { to_device(Device::cpu()); }
  void to_gpu(int device = 0) { to_device(Device::cuda(device)); }

  bool is_null() const { return data_ == nullptr; }
  // The same variable (shared data) as `other`?
  bool is(const Variable& other) const { return data_ == other.data_; }

  // Internals for the frontend's implementation.
  explicit Variable(std::shared_ptr<detail::Node> node);
  const std::shared_ptr<detail::Node>& node() const;
  const std::shared_ptr<detail::VariableData>& impl() const { return data_; }

 protected:
  std::shared_ptr<detail::VariableData> data_;
};

// Chainer's chainer.grad: the gradients of sum_j <outputs[j], grad_outputs[j]>
// with respect to each of `inputs` (leaves or intermediate values), without
// touching any variable's grad. grad_outputs empty or an entry null: ones of
// the output's shape. An input no output depends on gets a null Variable.
// With enable_double_backprop the results are differentiable (grad of grad,
// gradient penalties); without, no gradient flows back through them.
std::vector<Variable> grad(const std::vector<Variable>& outputs, const std::vector<Variable>& inputs,
                           const std::vector<Variable>& grad_outputs = {}, bool enable_double_backprop = false);

// A Variable owned by a Link. Its value may be set lazily (`L::Linear(out)`
// infers in_size at the first call), through an initializer.
class Parameter : public Variable {
 public:
  using Initializer = std::function<Array(const Shape&, DType)>;
  Parameter();  // uninitialized
  explicit Parameter(const Array& data);
  explicit Parameter(Initializer init);  // shape given later by initialize()
  bool is_initialized() const;
  void initialize(const Shape& shape, DType dtype = DType::f32);
};

std::string to_string(const Variable& v);  // "variable([[...]])" like Chainer

}  // namespace kiln

template <typename T>
struct fmt::formatter<T, char, std::enable_if_t<std::is_base_of_v<kiln::Variable, T>>>
    : fmt::formatter<std::string> {
  template <typename Ctx>
  auto format(const kiln::Variable& v, Ctx& ctx) const {
    return fmt::formatter<std::string>::format(kiln::to_string(v), ctx);
  }
};
