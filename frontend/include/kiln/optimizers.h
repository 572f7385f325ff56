// kiln::optimizers and kiln::optimizer_hooks: Chainer's optimizers, traced.
//
// An update does not compute on host arrays: for every parameter with a
// gradient it records the new value and the new state (moments) with F:: ops
// on the gradient Variable, so forward, backward, hooks and the update are one
// graph, realized once. Hyperparameters that change between steps (lr, Adam's
// alpha_t, eta) enter the graph as 0-d inputs, so every step has the same
// structure and hits the compiled-graph cache.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/link.h"
#include "kiln/variable.h"

namespace kiln {
namespace optimizers {

// Chainer's hyperparameters. Each optimizer uses the fields it names in
// hyperparam_names(); `alpha` is Adam's step size and RMSprop's decay rate,
// as in Chainer.
struct Hyperparameter {
  double lr = 0.01;
  double momentum = 0.9;
  double alpha = 0.001;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double eta = 1.0;
  double weight_decay_rate = 0.0;
  bool amsgrad = false;
};

// The per-parameter part of an optimizer (Chainer's UpdateRule): update count,
// state arrays and optional own hyperparameters.
class UpdateRule {
 public:
  // Unset: the optimizer's hyperparam is used. Set: this parameter's own values.
  std::optional<Hyperparameter> hyperparam;
  bool enabled = true;
  int64_t t = 0;  // number of updates of this parameter
  // State arrays ("v", "m", ...), created as zeros like the parameter at its first update.
  std::map<std::string, Variable> state;
};

class Optimizer;

// An optimizer hook: called with the optimizer. Pre hooks run after backward
// and before the update; post hooks after the update.
struct OptimizerHook {
  std::string name;
  std::string timing = "pre";
};

// Note: every virtual function of these classes is inline, so none has a key
// function in libkiln (built without RTTI) and code built with RTTI can
// derive from them.
class Optimizer {
 public:
  using HookFn = std::function<void(Optimizer&)>;

  virtual ~Optimizer() = default;

  // Attaches the optimizer to `link` (a handle: the link's parameters are shared).
  Optimizer& setup(const Link& link);
  bool is_setup() const { return target_ != nullptr; }
  Link& target();
  const Link& target() const;

  // One update from the gradients already computed: pre hooks, then (in the
  // same graph) the update of every parameter that has a gradient, one
  // realize, then post hooks.
  void update();
  // cleargrads(), loss = lossfun(args...), loss.backward(), update().
  template <class F, class... A>
  void update(F lossfun, A&&... args) {
    target().cleargrads();
    Variable loss = lossfun(std::forward<A>(args)...);
    loss.backward();
    update();
  }

  // Hooks. A hook class derived from OptimizerHook gives its name and timing;
  // any other callable needs a name. Names are unique (kiln::Error otherwise).
  template <class H>
  void add_hook(H hook, const std::string& name = "") {
    if constexpr (std::is_base_of_v<OptimizerHook, H>) {
      std::string n = name.empty() ? hook.name : name;
      std::string timing = hook.timing;
      add_hook_fn(HookFn(std::move(hook)), n, timing);
    } else {
      add_hook_fn(HookFn(std::move(hook)), name, "pre");
    }
  }
  void add_hook_fn(HookFn hook, const std::string& name, const std::string& timing = "pre");
  void remove_hook(const std::string& name);
  std::vector<std::string> hook_names() const;
  void call_hooks(const std::string& timing = "pre");

  void new_epoch() { ++epoch; }

  // The optimizer-wide hyperparameters (update rules without their own use these).
  Hyperparameter hyperparam;
  // Names of the hyperparameters this optimizer uses ("lr", "momentum", ...).
  virtual std::vector<std::string> hyperparam_names() const = 0;
  // Get/set a hyperparameter by Chainer's name (for extensions such as ExponentialShift).
  double get_hyperparam(const std::string& name) const;
  void set_hyperparam(const std::string& name, double value);

  // Names of the state arrays of an update rule under `hp` (e.g. {"m", "v"}).
  virtual std::vector<std::string> state_names(const Hyperparameter& hp) const = 0;
  // The update rule of a parameter of the target (created on first use).
  UpdateRule& update_rule(const Parameter& param);
  // (namedparams name, rule) for every parameter of the target, in order.
  std::vector<std::pair<std::string, UpdateRule*>> named_update_rules();
  // Creates zero state arrays for a rule whose parameter is initialized (no-op if present).
  void init_state(UpdateRule& rule, const Parameter& param) const;

  int64_t t = 0;      // number of updates
  int64_t epoch = 0;  // number of new_epoch() calls

 protected:
  // Records the update of one parameter: given its value p and gradient g,
  // returns the new value and writes the new state Variables into `state`.
  // `scalar(v)` makes a 0-d input Variable of p's dtype holding v.
  struct StepContext {
    const Hyperparameter& hp;
    int64_t t;  // the rule's update count, already incremented
    std::function<Variable(double)> scalar;
    // When exporting a training step (kiln/export.h): a 0-d float64 Variable equal to t,
    // traced from the step's state, for values computed from t in the graph (Adam's
    // alpha_t); empty otherwise (use t).
    std::function<Variable()> update_count;
  };
  virtual Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                               std::map<std::string, Variable>& state) const = 0;

 private:
  struct Hook {
    std::string name, timing;
    HookFn fn;
  };
  std::shared_ptr<Link> target_;
  std::vector<Hook> hooks_;
  std::map<const void*, std::pair<Parameter, UpdateRule>> rules_;  // by the parameter's identity
};

// p -= lr * g
class SGD : public Optimizer {
 public:
  explicit SGD(double lr = 0.01);
  std::vector<std::string> hyperparam_names() const override { return {"lr"}; }
  std::vector<std::string> state_names(const Hyperparameter&) const override { return {}; }

 protected:
  Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                       std::map<std::string, Variable>& state) const override;
};

// v = momentum * v - lr * g; p += v
class MomentumSGD : public Optimizer {
 public:
  explicit MomentumSGD(double lr = 0.01, double momentum = 0.9);
  std::vector<std::string> hyperparam_names() const override { return {"lr", "momentum"}; }
  std::vector<std::string> state_names(const Hyperparameter&) const override { return {"v"}; }

 protected:
  Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                       std::map<std::string, Variable>& state) const override;
};

// Nesterov's accelerated gradient (Chainer's form):
// v = momentum * v - lr * g; p += momentum^2 * v - (1 + momentum) * lr * g
class NesterovAG : public Optimizer {
 public:
  explicit NesterovAG(double lr = 0.01, double momentum = 0.9);
  std::vector<std::string> hyperparam_names() const override { return {"lr", "momentum"}; }
  std::vector<std::string> state_names(const Hyperparameter&) const override { return {"v"}; }

 protected:
  Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                       std::map<std::string, Variable>& state) const override;
};

// h += g^2; p -= lr * g / (sqrt(h) + eps)
class AdaGrad : public Optimizer {
 public:
  explicit AdaGrad(double lr = 0.001, double eps = 1e-8);
  std::vector<std::string> hyperparam_names() const override { return {"lr", "eps"}; }
  std::vector<std::string> state_names(const Hyperparameter&) const override { return {"h"}; }

 protected:
  Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                       std::map<std::string, Variable>& state) const override;
};

// ms = alpha * ms + (1 - alpha) * g^2; p -= lr * g / (sqrt(ms) + eps)
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(double lr = 0.01, double alpha = 0.99, double eps = 1e-8);
  std::vector<std::string> hyperparam_names() const override { return {"lr", "alpha", "eps"}; }
  std::vector<std::string> state_names(const Hyperparameter&) const override { return {"ms"}; }

 protected:
  Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                       std::map<std::string, Variable>& state) const override;
};

// m += (1-beta1)(g-m); v += (1-beta2)(g^2-v); (amsgrad: vhat = max(vhat, v))
// alpha_t = alpha * sqrt(1-beta2^t) / (1-beta1^t)
// p -= eta * (alpha_t * m / (sqrt(v or vhat) + eps) + weight_decay_rate * p)
class Adam : public Optimizer {
 public:
  explicit Adam(double alpha = 0.001, double beta1 = 0.9, double beta2 = 0.999,
                double eps = 1e-8, double eta = 1.0, double weight_decay_rate = 0.0,
                bool amsgrad = false);
  std::vector<std::string> hyperparam_names() const override {
    return {"alpha", "beta1", "beta2", "eps", "eta", "weight_decay_rate", "amsgrad"};
  }
  std::vector<std::string> state_names(const Hyperparameter& hp) const override {
    if (hp.amsgrad) return {"m", "v", "vhat"};
    return {"m", "v"};
  }
  // alpha_t for update count t (Chainer's Adam.alpha_t); t >= 1.
  static double alpha_t(const Hyperparameter& hp, int64_t t);
  // The current effective learning rate, alpha_t at the optimizer's t (Chainer's Adam.lr).
  double lr() const { return alpha_t(hyperparam, t); }

 protected:
  // alpha_t as a 0-d Variable: an input holding alpha_t(ctx.hp, ctx.t), or computed in the
  // graph from ctx.update_count when a training step is exported.
  static Variable alpha_t(const StepContext& ctx);
  Variable update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                       std::map<std::string, Variable>& state) const override;
};

// Chainer's AdamW: Adam whose weight decay is decoupled from the gradient
// (weight_decay_rate scaled by eta, not by alpha_t).
class AdamW : public Adam {
 public:
  explicit AdamW(double alpha = 0.001, double beta1 = 0.9, double beta2 = 0.999,
                 double eps = 1e-8, double eta = 1.0, double weight_decay_rate = 0.0,
                 bool amsgrad = false)
      : Adam(alpha, beta1, beta2, eps, eta, weight_decay_rate, amsgrad) {}
};

}  // namespace optimizers

// Hooks called with the optimizer (Chainer's chainer.optimizer_hooks). They
// rewrite the gradients as traced Variables (no realize).
namespace optimizer_hooks {

// g += rate * p for every parameter with a gradient.
struct WeightDecay : optimizers::OptimizerHook {
  explicit WeightDecay(double rate);
  void operator()(optimizers::Optimizer& opt) const;
  double rate;
};

// g += rate * sign(p).
struct Lasso : optimizers::OptimizerHook {
  explicit Lasso(double rate);
  void operator()(optimizers::Optimizer& opt) const;
  double rate;
};

// norm = sqrt(sum over all gradients of sum(g^2)); g *= min(1, threshold / norm).
struct GradientClipping : optimizers::OptimizerHook {
  explicit GradientClipping(double threshold);
  void operator()(optimizers::Optimizer& opt) const;
  double threshold;
};

// g = clip(g, lower_bound, upper_bound) elementwise.
struct GradientHardClipping : optimizers::OptimizerHook {
  GradientHardClipping(double lower_bound, double upper_bound);
  void operator()(optimizers::Optimizer& opt) const;
  double lower_bound, upper_bound;
};

}  // namespace optimizer_hooks

}  // namespace kiln
