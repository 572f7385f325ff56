// Link, Chain, ChainList and Sequential: parameterized building blocks, like chainer.Link.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/variable.h"

namespace kiln {

namespace detail {
// The registry of a link, shared by all copies of it (links are handles).
struct LinkImpl {
  std::vector<std::pair<std::string, Parameter>> params;
  std::vector<std::pair<std::string, Variable>> persistents;
  std::vector<std::pair<std::string, std::shared_ptr<LinkImpl>>> children;
  // The first Chain this link was added to, and its name there: the link's path
  // ("predictor/l1", see link_path) names the kernels its parameters feed.
  std::weak_ptr<LinkImpl> parent;
  std::string name;
  // Where its parameters and persistents live (Link::to_device).
  Device device;
};
// "predictor/l1": the names from the outermost parent down to `link` ("" for a root).
std::string link_path(const LinkImpl& link);
}  // namespace detail

// Links have handle semantics: a copy shares the parameters and children of
// the original, so a Chain copied or moved into L::Classifier stays wired.
class Link {
 public:
  Link();
  virtual ~Link() = default;

  // Registers a parameter (or persistent value) under `name`; the link keeps a handle.
  void add_param(const std::string& name, const Parameter& param);
  void add_persistent(const std::string& name, const Variable& value);

  // Chainer's names: "/W", "/l1/W", ... in registration order.
  std::vector<std::pair<std::string, Parameter>> namedparams() const;
  std::vector<Parameter> params() const;
  // Persistent values ("/bn/avg_mean", ...).
  std::vector<std::pair<std::string, Variable>> namedpersistents() const;
  void cleargrads();
  void zerograds();
  // Number of parameter elements (initialized parameters only).
  int64_t count_params() const;

  // Chainer's Link.to_device: moves every parameter (with its gradient) and
  // persistent value of this link and of its children to `device`, and
  // initializes lazy parameters there; returns this link. Calling the link
  // with an input on another device then throws kiln::Error naming both devices.
  Link& to_device(const Device& device);
  Link& to_cpu() { return to_device(Device::cpu()); }
  Link& to_gpu(int device = 0) { return to_device(Device::cuda(device)); }
  // Where its parameters live (the last to_device; Device::cpu() by default).
  const Device& device() const;

  const std::shared_ptr<detail::LinkImpl>& impl() const { return impl_; }

 protected:
  // Registers a weight W (LeCunNormal unless `initialW`; its shape is set by the
  // caller, possibly lazily) and, unless `nobias`, a bias b of `bias_size`
  // (zeros unless `initial_bias`): the parameters of Linear and convolutions.
  void add_weight_and_bias(Parameter& W, Parameter& b, bool nobias, int64_t bias_size,
                           Parameter::Initializer initialW, Parameter::Initializer initial_bias);

  std::shared_ptr<detail::LinkImpl> impl_;
};

// A link with named child links.
class Chain : public Link {
 public:
  void add_link(const std::string& name, const Link& child);
};

// A link with children named "0", "1", ...
class ChainList : public Link {
 public:
  void append(const Link& child);
  size_t size() const { return impl_->children.size(); }
};

// Layers applied in order; each layer is a callable on Variables (a link or a function).
class Sequential : public ChainList {
 public:
  using Layer = std::function<Variable(const Variable&)>;
  Sequential() = default;
  template <typename L>
  Sequential& add(L layer) {
    if constexpr (std::is_base_of_v<Link, L>) append(layer);
    layers_.push_back([layer](const Variable& x) mutable { return layer(x); });
    return *this;
  }
  Variable operator()(const Variable& x) const;

 private:
  std::vector<Layer> layers_;
};

// Seeds the generator behind default initializers (fixed default seed 0, so runs repeat).
// Per thread: a model built on a thread draws from that thread's generator.
void set_random_seed(uint64_t seed);
uint64_t next_random_seed();

namespace initializers {
Parameter::Initializer LeCunNormal(double scale = 1.0);
Parameter::Initializer HeNormal(double scale = 1.0);
Parameter::Initializer GlorotUniform(double scale = 1.0);
Parameter::Initializer Normal(double scale = 0.05);
Parameter::Initializer Constant(double value);
Parameter::Initializer Zero();
Parameter::Initializer One();
}  // namespace initializers

}  // namespace kiln
