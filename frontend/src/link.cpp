// Link registries, Chain/ChainList/Sequential, initializers and the global seed.
#include "kiln/link.h"

#include "trace.h"

#include <algorithm>
#include <cmath>

#include "kiln/functions.h"

namespace kiln {

Link::Link() : impl_(std::make_shared<detail::LinkImpl>()) {}

void Link::add_param(const std::string& name, const Parameter& param) {
  for (auto& [n, p] : impl_->params)
    if (n == name) throw Error("kiln: Link::add_param: a parameter named '" + name + "' exists already");
  if (param.name().empty()) const_cast<Parameter&>(param).set_name(name);
  if (param.impl()->owner.expired()) param.impl()->owner = impl_;
  impl_->params.emplace_back(name, param);
}

std::string detail::link_path(const detail::LinkImpl& link) {
  std::string path;
  const detail::LinkImpl* at = &link;
  std::shared_ptr<detail::LinkImpl> hold;
  for (int depth = 0; at && depth < 64; ++depth) {  // a cycle (never built by add_link) stops here
    hold = at->parent.lock();
    if (!hold) break;
    path = path.empty() ? at->name : at->name + "/" + path;
    at = hold.get();
  }
  return path;
}

void Link::add_persistent(const std::string& name, const Variable& value) {
  impl_->persistents.emplace_back(name, value);
}

static void collect_params(const detail::LinkImpl& link, const std::string& prefix,
                           std::vector<std::pair<std::string, Parameter>>& out) {
  for (auto& [name, p] : link.params) out.emplace_back(prefix + "/" + name, p);
  for (auto& [name, child] : link.children) collect_params(*child, prefix + "/" + name, out);
}

static void collect_persistents(const detail::LinkImpl& link, const std::string& prefix,
                                std::vector<std::pair<std::string, Variable>>& out) {
  for (auto& [name, v] : link.persistents) out.emplace_back(prefix + "/" + name, v);
  for (auto& [name, child] : link.children) collect_persistents(*child, prefix + "/" + name, out);
}

std::vector<std::pair<std::string, Parameter>> Link::namedparams() const {
  std::vector<std::pair<std::string, Parameter>> out;
  collect_params(*impl_, "", out);
  return out;
}

// namedparams()'s order without its names (params() runs every step: cleargrads, the optimizer).
static void collect_unnamed_params(const detail::LinkImpl& link, std::vector<Parameter>& out) {
  for (auto& [name, p] : link.params) out.push_back(p);
  for (auto& [name, child] : link.children) collect_unnamed_params(*child, out);
}

std::vector<Parameter> Link::params() const {
  std::vector<Parameter> out;
  out.reserve(16);
  collect_unnamed_params(*impl_, out);
  return out;
}

std::vector<std::pair<std::string, Variable>> Link::namedpersistents() const {
  std::vector<std::pair<std::string, Variable>> out;
  collect_persistents(*impl_, "", out);
  return out;
}

void Link::cleargrads() {
  for (Parameter& p : params()) p.cleargrad();
}

void Link::zerograds() {
  for (Parameter& p : params())
    if (p.is_initialized()) p.set_grad(Array::zeros(p.shape(), p.dtype()).to(p.device()));
}

// The link and its descendants, each once (a child registered twice moves once).
static void collect_links(const std::shared_ptr<detail::LinkImpl>& link, std::vector<detail::LinkImpl*>& out) {
  if (std::find(out.begin(), out.end(), link.get()) != out.end()) return;
  out.push_back(link.get());
  for (auto& [name, child] : link->children) collect_links(child, out);
}

Link& Link::to_device(const Device& device) {
  std::vector<detail::LinkImpl*> links;
  collect_links(impl_, links);
  for (detail::LinkImpl* link : links) {
    for (auto& [name, p] : link->params) {
      if (p.is_initialized() && !p.node()->realized()) p.array();  // pending (an update not read yet): compute it
      p.to_device(device);
    }
    for (auto& [name, v] : link->persistents) {
      if (v.is_null()) continue;
      if (!v.node()->realized()) v.array();
      v.to_device(device);
    }
    link->device = device;
  }
  return *this;
}

const Device& Link::device() const { return impl_->device; }

int64_t Link::count_params() const {
  int64_t n = 0;
  for (const Parameter& p : params())
    if (p.is_initialized()) n += p.size();
  return n;
}

void Link::add_weight_and_bias(Parameter& W, Parameter& b, bool nobias, int64_t bias_size,
                               Parameter::Initializer initialW, Parameter::Initializer initial_bias) {
  W = Parameter(initialW ? std::move(initialW) : initializers::LeCunNormal());
  add_param("W", W);
  if (nobias) return;
  b = Parameter(initial_bias ? std::move(initial_bias) : initializers::Zero());
  b.initialize({bias_size});
  add_param("b", b);
}

void Chain::add_link(const std::string& name, const Link& child) {
  for (auto& [n, c] : impl_->children)
    if (n == name) throw Error("kiln: Chain::add_link: a child named '" + name + "' exists already");
  if (child.impl() == impl_) throw Error("kiln: Chain::add_link: a link cannot be its own child");
  impl_->children.emplace_back(name, child.impl());
  if (child.impl()->parent.expired()) {
    child.impl()->parent = impl_;
    child.impl()->name = name;
  }
}

void ChainList::append(const Link& child) {
  impl_->children.emplace_back(std::to_string(impl_->children.size()), child.impl());
  if (child.impl()->parent.expired()) {
    child.impl()->parent = impl_;
    child.impl()->name = impl_->children.back().first;
  }
}

Variable Sequential::operator()(const Variable& x) const {
  Variable h = x;
  for (const Layer& layer : layers_) h = layer(h);
  return h;
}

// ---- seeds and initializers --------------------------------------------------------

static uint64_t& seed_state() {
  thread_local uint64_t s = 0;  // per thread: models built on separate threads do not race
  return s;
}
static uint64_t& seed_counter() {
  thread_local uint64_t c = 0;
  return c;
}

void set_random_seed(uint64_t seed) {
  seed_state() = seed;
  seed_counter() = 0;
}

uint64_t next_random_seed() { return seed_state() * 1000003ull + (++seed_counter()); }

static int64_t fan_in(const Shape& s) {
  if (s.size() < 2) return s.empty() ? 1 : s[0];
  int64_t receptive = 1;
  for (size_t i = 2; i < s.size(); ++i) receptive *= s[i];
  return s[1] * receptive;
}
static int64_t fan_out(const Shape& s) {
  if (s.size() < 2) return s.empty() ? 1 : s[0];
  int64_t receptive = 1;
  for (size_t i = 2; i < s.size(); ++i) receptive *= s[i];
  return s[0] * receptive;
}

static Array scaled_normal(const Shape& shape, DType dtype, double stddev) {
  Array a = Array::randn(shape, next_random_seed(), DType::f64);
  Array out(shape, dtype);
  for (int64_t i = 0; i < a.size(); ++i) out.set(i, a.at(i) * stddev);
  return out;
}

namespace initializers {

Parameter::Initializer LeCunNormal(double scale) {
  return [scale](const Shape& s, DType t) { return scaled_normal(s, t, scale * std::sqrt(1.0 / fan_in(s))); };
}
Parameter::Initializer HeNormal(double scale) {
  return [scale](const Shape& s, DType t) { return scaled_normal(s, t, scale * std::sqrt(2.0 / fan_in(s))); };
}
Parameter::Initializer Normal(double scale) {
  return [scale](const Shape& s, DType t) { return scaled_normal(s, t, scale); };
}
Parameter::Initializer GlorotUniform(double scale) {
  return [scale](const Shape& s, DType t) {
    double limit = scale * std::sqrt(6.0 / static_cast<double>(fan_in(s) + fan_out(s)));
    Array u = Array::randn(s, next_random_seed(), DType::f64);  // map normals to uniforms via erf
    Array out(s, t);
    for (int64_t i = 0; i < u.size(); ++i) out.set(i, limit * std::erf(u.at(i) / std::sqrt(2.0)));
    return out;
  };
}
Parameter::Initializer Constant(double value) {
  return [value](const Shape& s, DType t) { return Array::full(s, value, t); };
}
Parameter::Initializer Zero() { return Constant(0.0); }
Parameter::Initializer One() { return Constant(1.0); }

}  // namespace initializers

}  // namespace kiln
