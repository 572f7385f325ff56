// Optimizers and optimizer hooks: updates recorded with F:: ops, realized once per step.
#include "kiln/optimizers.h"

#include <algorithm>
#include <cmath>

#include "graph_capture.h"
#include "kiln/functions.h"
#include "ops.h"

namespace kiln {
namespace optimizers {

namespace {

Array scalar_array(double v, DType dtype) {
  switch (dtype) {
    case DType::f64: return Array::scalar<double>(v);
    case DType::f32: return Array::scalar<float>(static_cast<float>(v));
    default: break;
  }
  throw Error(fmt::format("kiln: optimizer: parameters of dtype {} cannot be updated "
                          "(a floating dtype is needed)", dtype_name(dtype)));
}

// A 0-d input (not a constant) on the parameter's device: its value does not enter the graph's structure.
Variable scalar_input(double v, DType dtype, const Device& device) {
  return Variable(scalar_array(v, dtype).to(device), false);
}

double* field(Hyperparameter& hp, const std::string& name) {
  if (name == "lr") return &hp.lr;
  if (name == "momentum") return &hp.momentum;
  if (name == "alpha") return &hp.alpha;
  if (name == "beta1") return &hp.beta1;
  if (name == "beta2") return &hp.beta2;
  if (name == "eps") return &hp.eps;
  if (name == "eta") return &hp.eta;
  if (name == "weight_decay_rate") return &hp.weight_decay_rate;
  return nullptr;
}

}  // namespace

// ---- Optimizer ------------------------------------------------------------------

Optimizer& Optimizer::setup(const Link& link) {
  target_ = std::make_shared<Link>(link);
  rules_.clear();
  t = 0;
  epoch = 0;
  return *this;
}

Link& Optimizer::target() {
  if (!target_) throw Error("kiln: Optimizer: call setup(link) before using the optimizer");
  return *target_;
}
const Link& Optimizer::target() const {
  if (!target_) throw Error("kiln: Optimizer: call setup(link) before using the optimizer");
  return *target_;
}

UpdateRule& Optimizer::update_rule(const Parameter& param) {
  auto it = rules_.find(param.impl().get());
  if (it == rules_.end())
    it = rules_.emplace(param.impl().get(), std::make_pair(param, UpdateRule())).first;
  return it->second.second;
}

std::vector<std::pair<std::string, UpdateRule*>> Optimizer::named_update_rules() {
  std::vector<std::pair<std::string, UpdateRule*>> out;
  for (auto& [name, p] : target().namedparams()) out.emplace_back(name, &update_rule(p));
  return out;
}

void Optimizer::init_state(UpdateRule& rule, const Parameter& param) const {
  if (!param.is_initialized()) return;
  const Hyperparameter& hp = rule.hyperparam ? *rule.hyperparam : hyperparam;
  for (const std::string& s : state_names(hp)) {
    auto it = rule.state.find(s);
    if (it == rule.state.end() || it->second.is_null()) {
      rule.state[s] = Variable(Array::zeros(param.shape(), param.dtype()).to(param.device()), false);
      detail::mark_state(rule.state[s].impl());
    } else if (it->second.device() != param.device()) {
      it->second.to_device(param.device());  // the link moved (Link::to_device): its state follows
    }
  }
}

void Optimizer::add_hook_fn(HookFn hook, const std::string& name, const std::string& timing) {
  if (name.empty()) throw Error("kiln: Optimizer::add_hook: a hook needs a name");
  if (timing != "pre" && timing != "post")
    throw Error("kiln: Optimizer::add_hook: timing must be 'pre' or 'post', got '" + timing + "'");
  for (const Hook& h : hooks_)
    if (h.name == name) throw Error("kiln: Optimizer::add_hook: hook '" + name + "' already exists");
  hooks_.push_back({name, timing, std::move(hook)});
}

void Optimizer::remove_hook(const std::string& name) {
  auto it = std::find_if(hooks_.begin(), hooks_.end(), [&](const Hook& h) { return h.name == name; });
  if (it == hooks_.end()) throw Error("kiln: Optimizer::remove_hook: no hook named '" + name + "'");
  hooks_.erase(it);
}

std::vector<std::string> Optimizer::hook_names() const {
  std::vector<std::string> out;
  for (const Hook& h : hooks_) out.push_back(h.name);
  return out;
}

void Optimizer::call_hooks(const std::string& timing) {
  // Copy: a hook may add or remove hooks.
  std::vector<Hook> hooks = hooks_;
  for (Hook& h : hooks)
    if (h.timing == timing) h.fn(*this);
}

double Optimizer::get_hyperparam(const std::string& name) const {
  if (name == "amsgrad") return hyperparam.amsgrad ? 1.0 : 0.0;
  double* f = field(const_cast<Hyperparameter&>(hyperparam), name);
  if (!f) throw Error("kiln: Optimizer: unknown hyperparameter '" + name + "'");
  return *f;
}

void Optimizer::set_hyperparam(const std::string& name, double value) {
  if (name == "amsgrad") { hyperparam.amsgrad = value != 0; return; }
  double* f = field(hyperparam, name);
  if (!f) throw Error("kiln: Optimizer: unknown hyperparameter '" + name + "'");
  *f = value;
}

void Optimizer::update() {
  Link& link = target();
  call_hooks("pre");
  ++t;

  struct Pending {
    Parameter param;
    UpdateRule* rule;
    Variable new_value;
  };
  std::vector<Pending> pending;
  // (next value, current value) of each parameter and state slot: the step may
  // write them in place (detail::DonationScope).
  std::vector<std::pair<const detail::Node*, const detail::Node*>> donations;
  // Without names (namedparams builds a path string per parameter): the name is looked up for an error only.
  std::vector<Parameter> params = link.params();
  pending.reserve(params.size());
  donations.reserve(2 * params.size());
  std::vector<std::pair<std::string, const detail::Node*>> slots;
  for (size_t index = 0; index < params.size(); ++index) {
    Parameter& param = params[index];
    if (!param.is_initialized() || !param.has_grad()) continue;
    UpdateRule& rule = update_rule(param);
    if (!rule.enabled) continue;
    if (!is_floating(param.dtype()))
      throw Error(fmt::format("kiln: optimizer: parameter '{}' has dtype {}; only floating "
                              "parameters can be updated", link.namedparams().at(index).first,
                              dtype_name(param.dtype())));
    init_state(rule, param);
    ++rule.t;
    const Hyperparameter& hp = rule.hyperparam ? *rule.hyperparam : hyperparam;
    DType dtype = param.dtype();
    Device device = param.device();
    StepContext ctx{hp, rule.t, [dtype, device](double v) { return scalar_input(v, dtype, device); }, {}};
    if (std::vector<detail::TracedUpdateCount>* counts = detail::active_traced_update_counts()) {
      // The count enters as a 0-d int64 input holding t - 1 and leaves as t (kilnc keeps it).
      ctx.update_count = [counts, &rule]() {
        for (const detail::TracedUpdateCount& c : *counts)
          if (c.rule == &rule) return F::cast(c.after, DType::f64);
        Variable before(Array::scalar<int64_t>(rule.t - 1), false);
        Variable after = F::cast(F::cast(before, DType::f64) + 1.0, DType::i64);
        counts->push_back({&rule, before, after});
        return F::cast(after, DType::f64);
      };
    }
    // Plain copies of the handles, so the new values are recorded from the current ones.
    Variable p = param;
    Variable g = param.grad_var();
    slots.clear();  // reused across parameters (one allocation per step, not per parameter)
    for (auto& [key, s] : rule.state) slots.emplace_back(key, s.impl()->node.get());
    Variable new_p = update_core(ctx, p, g, rule.state);
    donations.emplace_back(new_p.impl()->node.get(), p.impl()->node.get());
    for (auto& [key, before] : slots)
      if (auto it = rule.state.find(key); it != rule.state.end() && it->second.impl()->node.get() != before)
        donations.emplace_back(it->second.impl()->node.get(), before);
    pending.push_back({param, &rule, new_p});
  }

  if (!pending.empty()) {
    // One realize: computes the loss, gradients, new parameters and new state
    // together (every pending node that a live handle holds), in place where it can.
    {
      detail::DonationScope donate(std::move(donations));
      pending.front().new_value.array();
    }
    for (Pending& u : pending) {
      Array grad = u.param.grad();  // realized above; keeps only the value
      u.param.set_array(u.new_value.array());
      u.param.set_grad(grad);
      for (auto& [key, s] : u.rule->state) {
        // A fresh leaf holding the value: the trace behind the state is dropped.
        Variable fresh(s.array(), false);
        detail::mark_state(fresh.impl());
        s = fresh;
      }
    }
  }
  call_hooks("post");
}

// ---- SGD family ----------------------------------------------------------------

SGD::SGD(double lr) { hyperparam.lr = lr; }

Variable SGD::update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                          std::map<std::string, Variable>&) const {
  return p - ctx.scalar(ctx.hp.lr) * g;
}

MomentumSGD::MomentumSGD(double lr, double momentum) {
  hyperparam.lr = lr;
  hyperparam.momentum = momentum;
}

Variable MomentumSGD::update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                                         std::map<std::string, Variable>& state) const {
  Variable v = state.at("v") * ctx.hp.momentum - ctx.scalar(ctx.hp.lr) * g;
  state["v"] = v;
  return p + v;
}

NesterovAG::NesterovAG(double lr, double momentum) {
  hyperparam.lr = lr;
  hyperparam.momentum = momentum;
}

Variable NesterovAG::update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                                        std::map<std::string, Variable>& state) const {
  double mu = ctx.hp.momentum;
  Variable lr = ctx.scalar(ctx.hp.lr);
  Variable v = state.at("v") * mu - lr * g;
  state["v"] = v;
  return p + (mu * mu) * v - (1.0 + mu) * lr * g;
}

AdaGrad::AdaGrad(double lr, double eps) {
  hyperparam.lr = lr;
  hyperparam.eps = eps;
}

Variable AdaGrad::update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                                     std::map<std::string, Variable>& state) const {
  Variable h = state.at("h") + g * g;
  state["h"] = h;
  return p - ctx.scalar(ctx.hp.lr) * g / (F::sqrt(h) + ctx.hp.eps);
}

RMSprop::RMSprop(double lr, double alpha, double eps) {
  hyperparam.lr = lr;
  hyperparam.alpha = alpha;
  hyperparam.eps = eps;
}

Variable RMSprop::update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                                     std::map<std::string, Variable>& state) const {
  double a = ctx.hp.alpha;
  Variable ms = state.at("ms") * a + (1.0 - a) * (g * g);
  state["ms"] = ms;
  return p - ctx.scalar(ctx.hp.lr) * g / (F::sqrt(ms) + ctx.hp.eps);
}

// ---- Adam -------------------------------------------------------------------------

Adam::Adam(double alpha, double beta1, double beta2, double eps, double eta,
           double weight_decay_rate, bool amsgrad) {
  hyperparam.alpha = alpha;
  hyperparam.beta1 = beta1;
  hyperparam.beta2 = beta2;
  hyperparam.eps = eps;
  hyperparam.eta = eta;
  hyperparam.weight_decay_rate = weight_decay_rate;
  hyperparam.amsgrad = amsgrad;
}

double Adam::alpha_t(const Hyperparameter& hp, int64_t t) {
  if (t < 1) throw Error("kiln: Adam::alpha_t: t must be >= 1 (no update has run yet)");
  double fix1 = 1.0 - std::pow(hp.beta1, static_cast<double>(t));
  double fix2 = 1.0 - std::pow(hp.beta2, static_cast<double>(t));
  return hp.alpha * std::sqrt(fix2) / fix1;
}

Variable Adam::alpha_t(const StepContext& ctx) {
  if (!ctx.update_count) return ctx.scalar(alpha_t(ctx.hp, ctx.t));
  // alpha_t(hp, t) of a traced t, with the same float64 operations in the same order.
  Variable t = ctx.update_count();
  auto constant = [&](double v) { return detail::constant_like(v, t); };
  Variable fix1 = 1.0 - F::pow(constant(ctx.hp.beta1), t);
  Variable fix2 = 1.0 - F::pow(constant(ctx.hp.beta2), t);
  Variable alpha = ctx.hp.alpha * F::sqrt(fix2) / fix1;
  return F::cast(alpha, ctx.scalar(0.0).dtype());
}

Variable Adam::update_core(const StepContext& ctx, const Variable& p, const Variable& g,
                                  std::map<std::string, Variable>& state) const {
  const Hyperparameter& hp = ctx.hp;
  Variable m = state.at("m");
  Variable v = state.at("v");
  m = m + (1.0 - hp.beta1) * (g - m);
  v = v + (1.0 - hp.beta2) * (g * g - v);
  state["m"] = m;
  state["v"] = v;
  Variable vhat = v;
  if (hp.amsgrad) {
    vhat = F::maximum(state.at("vhat"), v);
    state["vhat"] = vhat;
  }
  Variable step = alpha_t(ctx) * m / (F::sqrt(vhat) + hp.eps);
  if (hp.weight_decay_rate != 0) step = step + hp.weight_decay_rate * p;
  return p - ctx.scalar(hp.eta) * step;
}

}  // namespace optimizers

// ---- hooks ------------------------------------------------------------------------

namespace optimizer_hooks {

using optimizers::Optimizer;

WeightDecay::WeightDecay(double r) : rate(r) { name = "WeightDecay"; }

void WeightDecay::operator()(Optimizer& opt) const {
  for (Parameter& p : opt.target().params()) {
    if (!p.is_initialized() || !p.has_grad()) continue;
    Variable data = p;
    p.set_grad_var(p.grad_var() + rate * data);
  }
}

Lasso::Lasso(double r) : rate(r) { name = "Lasso"; }

void Lasso::operator()(Optimizer& opt) const {
  for (Parameter& p : opt.target().params()) {
    if (!p.is_initialized() || !p.has_grad()) continue;
    Variable data = p;
    Variable zero = detail::constant_like(0.0, data);
    Variable sign = F::where(F::greater(data, zero), detail::constant_like(1.0, data),
                             F::where(F::less(data, zero), detail::constant_like(-1.0, data), zero));
    p.set_grad_var(p.grad_var() + rate * sign);
  }
}

GradientClipping::GradientClipping(double th) : threshold(th) { name = "GradientClipping"; }

void GradientClipping::operator()(Optimizer& opt) const {
  std::vector<Parameter> params;
  for (Parameter& p : opt.target().params())
    if (p.is_initialized() && p.has_grad()) params.push_back(p);
  if (params.empty()) return;
  DType dtype = params.front().dtype();
  Variable sqnorm;
  for (Parameter& p : params) {
    Variable g = p.grad_var();
    Variable s = F::cast(F::sum(g * g), dtype);
    sqnorm = sqnorm.is_null() ? s : sqnorm + s;
  }
  // rate = min(1, threshold / norm); a zero norm gives inf, then 1.
  Variable rate = F::minimum(threshold / F::sqrt(sqnorm), detail::constant_like(1.0, sqnorm));
  for (Parameter& p : params) p.set_grad_var(p.grad_var() * F::cast(rate, p.dtype()));
}

GradientHardClipping::GradientHardClipping(double lo, double hi) : lower_bound(lo), upper_bound(hi) {
  name = "GradientHardClipping";
  if (!(lo < hi))
    throw Error(fmt::format("kiln: GradientHardClipping: lower_bound ({}) must be less than "
                            "upper_bound ({})", lo, hi));
}

void GradientHardClipping::operator()(Optimizer& opt) const {
  for (Parameter& p : opt.target().params()) {
    if (!p.is_initialized() || !p.has_grad()) continue;
    p.set_grad_var(F::clip(p.grad_var(), lower_bound, upper_bound));
  }
}

}  // namespace optimizer_hooks

}  // namespace kiln
