// kiln-goldens: checks kiln against the Chainer goldens in test/goldens (format kiln-goldens/1).
//
//   kiln-goldens [--backend interp|cpu|cuda] [--verbose] FILE...
//
// Each FILE is a functions.json (has "cases"), training.json (has "runs") or
// npz.json (has "keys" and "file"); see test/goldens/README.md. Prints one line
// per failing case, then "N passed, N failed". Exit status: 0 when everything
// passed, 1 on any failure, 2 on a usage error.
#include <kiln/kiln.h>

#include <nlohmann/json.hpp>

#if __has_include(<kiln/optimizers.h>) && !defined(KILN_GOLDENS_NO_OPTIMIZERS)
#include <kiln/optimizers.h>
#define KILN_GOLDENS_HAVE_OPTIMIZERS 1
#endif
#if __has_include(<kiln/serializers.h>) && !defined(KILN_GOLDENS_NO_SERIALIZERS)
#include <kiln/serializers.h>
#define KILN_GOLDENS_HAVE_SERIALIZERS 1
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using json = nlohmann::json;
using namespace kiln;

namespace {

bool g_verbose = false;

// A failed check inside a case: the message becomes the case's FAIL line.
struct CaseFailure {
  std::string what;
};

// ---- tensors ---------------------------------------------------------------------

Shape parse_shape(const json& j) {
  Shape s;
  for (const json& d : j) s.push_back(d.get<int64_t>());
  return s;
}

Array parse_tensor(const json& t, const std::string& what) {
  if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data"))
    throw Error(what + ": not a tensor (needs dtype, shape and data)");
  std::string dtype = t.at("dtype").get<std::string>();
  Shape shape = parse_shape(t.at("shape"));
  const json& data = t.at("data");
  if (!data.is_array() || static_cast<int64_t>(data.size()) != shape_size(shape))
    throw Error(what + ": data has " + std::to_string(data.size()) + " values for shape " +
                shape_str(shape));
  if (dtype == "float32") {
    std::vector<float> v;
    for (const json& x : data) v.push_back(static_cast<float>(x.get<double>()));
    return Array::from(v, shape);
  }
  if (dtype == "float64") {
    std::vector<double> v;
    for (const json& x : data) v.push_back(x.get<double>());
    return Array::from(v, shape);
  }
  if (dtype == "int32") {
    std::vector<int32_t> v;
    for (const json& x : data) v.push_back(x.get<int32_t>());
    return Array::from(v, shape);
  }
  throw Error(what + ": unsupported dtype '" + dtype + "'");
}

std::string fmt_g(double v) { return fmt::format("{:.6g}", v); }

// numpy.allclose-style check; throws CaseFailure naming `what` on a mismatch.
void expect_close(const Array& actual, const Array& expected, double rtol, double atol,
                  const std::string& what) {
  if (actual.dtype() != expected.dtype())
    throw CaseFailure{fmt::format("{} dtype {} (expected {})", what, dtype_name(actual.dtype()),
                                  dtype_name(expected.dtype()))};
  if (actual.shape() != expected.shape())
    throw CaseFailure{fmt::format("{} shape {} (expected {})", what, shape_str(actual.shape()),
                                  shape_str(expected.shape()))};
  double max_err = 0.0;
  int64_t bad = -1;
  for (int64_t i = 0; i < actual.size(); ++i) {
    double a = actual.at(i), e = expected.at(i);
    double err = std::fabs(a - e);
    bool ok = err <= atol + rtol * std::fabs(e);  // false for NaN
    if (std::isnan(err)) err = INFINITY;
    max_err = std::max(max_err, err);
    if (!ok && bad < 0) bad = i;
  }
  if (bad >= 0)
    throw CaseFailure{fmt::format("{} max abs err {} (tol atol={} rtol={}; first bad element {}: "
                                  "got {} expected {})",
                                  what, fmt_g(max_err), fmt_g(atol), fmt_g(rtol), bad,
                                  fmt_g(actual.at(bad)), fmt_g(expected.at(bad)))};
}

void expect_close_scalar(double actual, double expected, double rtol, double atol,
                         const std::string& what) {
  double err = std::fabs(actual - expected);
  if (!(err <= atol + rtol * std::fabs(expected)))
    throw CaseFailure{fmt::format("{} max abs err {} (tol atol={} rtol={}; got {} expected {})",
                                  what, fmt_g(std::isnan(err) ? INFINITY : err), fmt_g(atol),
                                  fmt_g(rtol), fmt_g(actual), fmt_g(expected))};
}

// ---- attrs -----------------------------------------------------------------------

// The keyword arguments of a case. Records which keys a function read, so that
// an attribute the driver does not understand is an error instead of being ignored.
class Attrs {
 public:
  explicit Attrs(const json& j) : j_(j.is_null() ? json::object() : j) {
    if (!j_.is_object()) throw Error("attrs is not an object");
  }
  bool has(const std::string& k) const {
    used_.insert(k);
    return j_.contains(k) && !j_.at(k).is_null();
  }
  const json& get(const std::string& k) const {
    used_.insert(k);
    if (!j_.contains(k)) throw Error("missing attribute '" + k + "'");
    return j_.at(k);
  }
  double num(const std::string& k, double def) const { return has(k) ? get(k).get<double>() : def; }
  int64_t integer(const std::string& k, int64_t def) const {
    return has(k) ? get(k).get<int64_t>() : def;
  }
  bool boolean(const std::string& k, bool def) const { return has(k) ? get(k).get<bool>() : def; }
  std::string str(const std::string& k, const std::string& def) const {
    return has(k) ? get(k).get<std::string>() : def;
  }
  std::optional<int64_t> opt_int(const std::string& k) const {
    if (!has(k)) return std::nullopt;
    return get(k).get<int64_t>();
  }
  std::vector<int64_t> ints(const std::string& k, std::vector<int64_t> def = {}) const {
    if (!has(k)) return def;
    const json& v = get(k);
    if (v.is_number_integer()) return {v.get<int64_t>()};
    return v.get<std::vector<int64_t>>();
  }
  // An int or a tuple of ints; null or absent: all axes.
  Axes axes(const std::string& k) const {
    if (!has(k)) return std::nullopt;
    return ints(k);
  }
  Pair pair(const std::string& k, Pair def) const {
    if (!has(k)) return def;
    const json& v = get(k);
    if (v.is_number_integer()) return Pair(v.get<int64_t>());
    auto p = v.get<std::vector<int64_t>>();
    if (p.size() != 2) throw Error("attribute '" + k + "' needs 1 or 2 values");
    return Pair(p[0], p[1]);
  }
  std::optional<Pair> opt_pair(const std::string& k) const {
    if (!has(k)) return std::nullopt;
    return pair(k, Pair(0));
  }
  // Keys present in the case but never read by the function.
  std::vector<std::string> unused() const {
    std::vector<std::string> out;
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!used_.count(it.key())) out.push_back(it.key());
    return out;
  }

 private:
  json j_;
  mutable std::set<std::string> used_;
};

// ---- the function table ----------------------------------------------------------

using Vars = std::vector<Variable>;
using Fn = std::function<Vars(const Vars&, const Attrs&)>;

void need_inputs(const Vars& in, size_t lo, size_t hi) {
  if (in.size() < lo || in.size() > hi)
    throw Error(fmt::format("takes {} inputs, the case has {}",
                            lo == hi ? std::to_string(lo) : fmt::format("{} to {}", lo, hi),
                            in.size()));
}
const Variable& opt_input(const Vars& in, size_t i) {
  static const Variable none;
  return i < in.size() ? in[i] : none;
}

// F:: functions take a trailing SourceLocation; the driver passes its own.
Fn unary(Variable (*f)(const Variable&, SourceLocation)) {
  return [f](const Vars& in, const Attrs&) -> Vars {
    need_inputs(in, 1, 1);
    return {f(in[0], SourceLocation::current())};
  };
}
Fn binary(Variable (*f)(const Variable&, const Variable&, SourceLocation)) {
  return [f](const Vars& in, const Attrs&) -> Vars {
    need_inputs(in, 2, 2);
    return {f(in[0], in[1], SourceLocation::current())};
  };
}

std::vector<Index> parse_slices(const json& items) {
  std::vector<Index> out;
  auto opt = [](const json& v) -> std::optional<int64_t> {
    if (v.is_null()) return std::nullopt;
    return v.get<int64_t>();
  };
  for (const json& it : items) {
    if (it.is_number_integer()) {
      out.emplace_back(it.get<int64_t>());
    } else if (it.is_object() && it.contains("slice")) {
      const json& s = it.at("slice");
      if (!s.is_array() || s.size() != 3) throw Error("a slice needs [start, stop, step]");
      out.emplace_back(Slice{opt(s[0]), opt(s[1]), opt(s[2])});
    } else if (it.is_null() || (it.is_object() && it.contains("newaxis"))) {
      out.emplace_back(NewAxis{});
    } else {
      throw Error("bad get_item slice item " + it.dump());
    }
  }
  return out;
}

// ---- recurrent functions and links (recurrent.json; test/goldens/README.md) -------

// The n-step functions' inputs: [hx, (cx,) ws (layer-direction major), bs, xs...].
struct NStepInputs {
  Vars states;
  F::Weights ws, bs;
  Vars xs;
};
NStepInputs split_n_step_inputs(const Vars& in, int64_t n_states, int64_t n_weights, int64_t n_layers,
                                int64_t directions) {
  const size_t k = static_cast<size_t>(n_layers * directions), nw = static_cast<size_t>(n_weights);
  const size_t head = static_cast<size_t>(n_states) + 2 * k * nw;
  if (in.size() < head + 1) throw Error(fmt::format("takes at least {} inputs, the case has {}", head + 1, in.size()));
  NStepInputs r;
  r.states.assign(in.begin(), in.begin() + n_states);
  for (size_t i = 0; i < k; ++i) {
    auto w0 = in.begin() + n_states + i * nw, b0 = in.begin() + n_states + (k + i) * nw;
    r.ws.emplace_back(w0, w0 + nw);
    r.bs.emplace_back(b0, b0 + nw);
  }
  r.xs.assign(in.begin() + head, in.end());
  return r;
}

Vars flatten_n_step(const Variable& hy, const Variable& cy, const Vars& ys) {
  Vars out{hy};
  if (!cy.is_null()) out.push_back(cy);
  out.insert(out.end(), ys.begin(), ys.end());
  return out;
}

// A link's case: the first inputs are its parameters (attrs "params", namedparams names
// without the leading "/"): each parameter takes its input's value and then its place in
// the driver's inputs, so grad_inputs are read from the link's own parameters.
size_t bind_link_params(const Link& link, const Vars& in, const Attrs& a) {
  std::vector<std::string> names = a.get("params").get<std::vector<std::string>>();
  if (in.size() < names.size()) throw Error("fewer inputs than parameters");
  auto params = link.namedparams();
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == "/" + names[i]; });
    if (it == params.end()) throw CaseFailure{"the link has no parameter '" + names[i] + "'"};
    Parameter p = it->second;
    if (p.is_initialized() && p.shape() != in[i].shape())
      throw CaseFailure{fmt::format("parameter '{}' has shape {}, the case {}", names[i], shape_str(p.shape()),
                                    shape_str(in[i].shape()))};
    p.set_array(in[i].array());
    const_cast<Vars&>(in)[i] = p;
  }
  if (params.size() != names.size())
    throw CaseFailure{fmt::format("the link has {} parameters, the case {}", params.size(), names.size())};
  return names.size();
}

template <typename NStepLink>
Fn nstep_link(int64_t n_states) {
  return [n_states](const Vars& in, const Attrs& a) -> Vars {
    NStepLink link(a.integer("n_layers", 1), a.integer("in_size", 0), a.integer("out_size", 0), a.num("dropout", 0.0));
    size_t first = bind_link_params(link, in, a);
    Vars states(static_cast<size_t>(n_states));
    if (!a.boolean("hx_none", false))
      for (int64_t s = 0; s < n_states; ++s) states[static_cast<size_t>(s)] = in.at(first++);
    Vars xs(in.begin() + static_cast<std::ptrdiff_t>(first), in.end());
    if constexpr (std::is_invocable_v<NStepLink, Variable, Variable, Vars>) {
      auto r = link(states[0], states[1], xs);
      return flatten_n_step(r.hy, r.cy, r.ys);
    } else {
      auto r = link(states[0], xs);
      return flatten_n_step(r.hy, Variable(), r.ys);
    }
  };
}

void add_recurrent(std::map<std::string, Fn>& t) {
  t["lstm"] = [](const Vars& in, const Attrs&) -> Vars {
    need_inputs(in, 2, 2);
    auto [c, h] = F::lstm(in[0], in[1]);
    return {c, h};
  };
  t["slstm"] = [](const Vars& in, const Attrs&) -> Vars {
    need_inputs(in, 4, 4);
    auto [c, h] = F::slstm(in[0], in[1], in[2], in[3]);
    return {c, h};
  };
  auto lstm_fn = [](bool bi) {
    return [bi](const Vars& in, const Attrs& a) -> Vars {
      int64_t n_layers = a.integer("n_layers", 1);
      NStepInputs n = split_n_step_inputs(in, 2, 8, n_layers, bi ? 2 : 1);
      auto r = (bi ? F::n_step_bilstm : F::n_step_lstm)(n_layers, a.num("dropout_ratio", 0.0), n.states[0],
                                                       n.states[1], n.ws, n.bs, n.xs, SourceLocation::current());
      return flatten_n_step(r.hy, r.cy, r.ys);
    };
  };
  t["n_step_lstm"] = lstm_fn(false);
  t["n_step_bilstm"] = lstm_fn(true);
  auto gru_fn = [](bool bi) {
    return [bi](const Vars& in, const Attrs& a) -> Vars {
      int64_t n_layers = a.integer("n_layers", 1);
      NStepInputs n = split_n_step_inputs(in, 1, 6, n_layers, bi ? 2 : 1);
      auto r = (bi ? F::n_step_bigru : F::n_step_gru)(n_layers, a.num("dropout_ratio", 0.0), n.states[0], n.ws,
                                                     n.bs, n.xs, SourceLocation::current());
      return flatten_n_step(r.hy, Variable(), r.ys);
    };
  };
  t["n_step_gru"] = gru_fn(false);
  t["n_step_bigru"] = gru_fn(true);
  auto rnn_fn = [](bool bi) {
    return [bi](const Vars& in, const Attrs& a) -> Vars {
      int64_t n_layers = a.integer("n_layers", 1);
      NStepInputs n = split_n_step_inputs(in, 1, 2, n_layers, bi ? 2 : 1);
      auto r = (bi ? F::n_step_birnn : F::n_step_rnn)(n_layers, a.num("dropout_ratio", 0.0), n.states[0], n.ws,
                                                     n.bs, n.xs, a.str("activation", "tanh"),
                                                     SourceLocation::current());
      return flatten_n_step(r.hy, Variable(), r.ys);
    };
  };
  t["n_step_rnn"] = rnn_fn(false);
  t["n_step_birnn"] = rnn_fn(true);

  // Stateful links: one call per remaining input; outputs the call's results in order.
  t["L.LSTM"] = [](const Vars& in, const Attrs& a) -> Vars {
    L::LSTM link(a.integer("in_size", -1), a.integer("out_size", 0));
    Vars ys;
    for (size_t i = bind_link_params(link, in, a); i < in.size(); ++i) ys.push_back(link(in[i]));
    return ys;
  };
  t["L.GRU"] = [](const Vars& in, const Attrs& a) -> Vars {
    L::GRU link(a.integer("in_size", -1), a.integer("out_size", 0));
    Vars ys;
    for (size_t i = bind_link_params(link, in, a); i < in.size(); ++i) ys.push_back(link(in[i]));
    return ys;
  };
  t["L.StatelessLSTM"] = [](const Vars& in, const Attrs& a) -> Vars {
    L::StatelessLSTM link(a.integer("in_size", -1), a.integer("out_size", 0));
    size_t i = bind_link_params(link, in, a);
    if (in.size() != i + 3) throw Error("L.StatelessLSTM takes (c, h, x)");
    auto [c, h] = link(in[i], in[i + 1], in[i + 2]);
    return {c, h};
  };
  t["L.StatelessGRU"] = [](const Vars& in, const Attrs& a) -> Vars {
    L::StatelessGRU link(a.integer("in_size", -1), a.integer("out_size", 0));
    size_t i = bind_link_params(link, in, a);
    if (in.size() != i + 2) throw Error("L.StatelessGRU takes (h, x)");
    return {link(in[i], in[i + 1])};
  };
  t["L.NStepLSTM"] = nstep_link<L::NStepLSTM>(2);
  t["L.NStepBiLSTM"] = nstep_link<L::NStepBiLSTM>(2);
  t["L.NStepGRU"] = nstep_link<L::NStepGRU>(1);
  t["L.NStepBiGRU"] = nstep_link<L::NStepBiGRU>(1);
  t["L.NStepRNNTanh"] = nstep_link<L::NStepRNNTanh>(1);
  t["L.NStepRNNReLU"] = nstep_link<L::NStepRNNReLU>(1);
  t["L.NStepBiRNNTanh"] = nstep_link<L::NStepBiRNNTanh>(1);
  t["L.NStepBiRNNReLU"] = nstep_link<L::NStepBiRNNReLU>(1);
}

// ---- more of chainer.functions (functions_extra.json) ----------------------------

// pad_width: an int, one [before, after] pair, or one pair per axis.
std::vector<std::pair<int64_t, int64_t>> parse_pad_width(const json& j) {
  if (j.is_number_integer()) return {{j.get<int64_t>(), j.get<int64_t>()}};
  if (j.is_array() && !j.empty() && j[0].is_number_integer()) {
    if (j.size() == 1) return {{j[0].get<int64_t>(), j[0].get<int64_t>()}};
    if (j.size() != 2) throw Error("pad_width needs an int, a pair or a pair per axis");
    return {{j[0].get<int64_t>(), j[1].get<int64_t>()}};
  }
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const json& p : j) {
    if (p.is_number_integer()) out.push_back({p.get<int64_t>(), p.get<int64_t>()});
    else if (p.size() == 1) out.push_back({p[0].get<int64_t>(), p[0].get<int64_t>()});
    else out.push_back({p.at(0).get<int64_t>(), p.at(1).get<int64_t>()});
  }
  return out;
}

Fn unary_extra(Variable (*f)(const Variable&, SourceLocation)) { return unary(f); }

void add_extra(std::map<std::string, Fn>& t) {
  // elementwise math
  for (auto [name, f] : std::initializer_list<std::pair<const char*, Variable (*)(const Variable&, SourceLocation)>>{
           {"sin", F::sin}, {"cos", F::cos}, {"tan", F::tan}, {"arcsin", F::arcsin}, {"arccos", F::arccos},
           {"arctan", F::arctan}, {"sinh", F::sinh}, {"cosh", F::cosh}, {"log1p", F::log1p}, {"expm1", F::expm1},
           {"log2", F::log2}, {"log10", F::log10}, {"erf", F::erf}, {"erfc", F::erfc}, {"floor", F::floor},
           {"ceil", F::ceil}, {"fix", F::fix}, {"sign", F::sign}, {"hard_sigmoid", F::hard_sigmoid},
           {"relu6", F::relu6}, {"fliplr", F::fliplr}, {"flipud", F::flipud},
           {"batch_l2_norm_squared", F::batch_l2_norm_squared}})
    t[name] = unary_extra(f);
  for (auto [name, f] :
       std::initializer_list<std::pair<const char*, Variable (*)(const Variable&, const Variable&, SourceLocation)>>{
           {"arctan2", F::arctan2}, {"fmod", F::fmod}, {"squared_difference", F::squared_difference},
           {"squared_error", F::squared_error}, {"absolute_error", F::absolute_error},
           {"mean_absolute_error", F::mean_absolute_error}, {"binary_accuracy", F::binary_accuracy},
           {"prelu", F::prelu}, {"select_item", F::select_item}})
    t[name] = binary(f);
  t["linear_interpolate"] = [](const Vars& in, const Attrs&) -> Vars {
    need_inputs(in, 3, 3);
    return {F::linear_interpolate(in[0], in[1], in[2])};
  };
  t["cumsum"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::cumsum(in[0], a.opt_int("axis"))};
  };
  t["cumprod"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::cumprod(in[0], a.opt_int("axis"))};
  };
  t["prod"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::prod(in[0], a.axes("axis"), a.boolean("keepdims", false))};
  };
  t["average"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 2);
    return {F::average(in[0], a.axes("axis"), opt_input(in, 1), a.boolean("keepdims", false))};
  };
  // activations
  t["selu"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::selu(in[0], a.num("alpha", 1.6732632423543772848170429916717),
                    a.num("scale", 1.0507009873554804934193349852946))};
  };
  t["clipped_relu"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::clipped_relu(in[0], a.num("z", 20.0))};
  };
  t["crelu"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::crelu(in[0], a.integer("axis", 1))};
  };
  t["maxout"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::maxout(in[0], a.get("pool_size").get<int64_t>(), a.integer("axis", 1))};
  };
  // shapes
  t["hstack"] = [](const Vars& in, const Attrs&) -> Vars { return {F::hstack(in)}; };
  t["vstack"] = [](const Vars& in, const Attrs&) -> Vars { return {F::vstack(in)}; };
  t["dstack"] = [](const Vars& in, const Attrs&) -> Vars { return {F::dstack(in)}; };
  t["broadcast"] = [](const Vars& in, const Attrs&) -> Vars { return F::broadcast(in); };
  t["tile"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::tile(in[0], a.ints("reps"))};
  };
  t["repeat"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::repeat(in[0], a.ints("repeats"), a.opt_int("axis"))};
  };
  t["flip"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::flip(in[0], a.get("axis").get<int64_t>())};
  };
  t["moveaxis"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::moveaxis(in[0], a.ints("source"), a.ints("destination"))};
  };
  t["rollaxis"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::rollaxis(in[0], a.get("axis").get<int64_t>(), a.integer("start", 0))};
  };
  t["swapaxes"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::swapaxes(in[0], a.get("axis1").get<int64_t>(), a.get("axis2").get<int64_t>())};
  };
  t["tensordot"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    if (!a.has("axes")) return {F::tensordot(in[0], in[1])};
    const json& ax = a.get("axes");
    if (ax.is_number_integer()) return {F::tensordot(in[0], in[1], ax.get<int64_t>())};
    if (!ax.is_array() || ax.size() != 2) throw Error("tensordot axes: an int or [a_axes, b_axes]");
    auto side = [](const json& v) {
      return v.is_number_integer() ? std::vector<int64_t>{v.get<int64_t>()} : v.get<std::vector<int64_t>>();
    };
    return {F::tensordot(in[0], in[1], std::make_pair(side(ax[0]), side(ax[1])))};
  };
  t["einsum"] = [](const Vars& in, const Attrs& a) -> Vars {
    return {F::einsum(a.get("subscripts").get<std::string>(), in)};
  };
  t["separate"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return F::separate(in[0], a.integer("axis", 0));
  };
  t["diagonal"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::diagonal(in[0], a.integer("offset", 0), a.integer("axis1", 0), a.integer("axis2", 1))};
  };
  t["space2depth"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::space2depth(in[0], a.get("r").get<int64_t>())};
  };
  t["depth2space"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::depth2space(in[0], a.get("r").get<int64_t>())};
  };
  t["scale"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    return {F::scale(in[0], in[1], a.integer("axis", 1))};
  };
  t["bias"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    return {F::bias(in[0], in[1], a.integer("axis", 1))};
  };
  t["bilinear"] = [](const Vars& in, const Attrs&) -> Vars {
    if (in.size() != 3 && in.size() != 6) throw Error(fmt::format("takes 3 or 6 inputs, the case has {}", in.size()));
    return {F::bilinear(in[0], in[1], in[2], opt_input(in, 3), opt_input(in, 4), opt_input(in, 5))};
  };
  t["pad"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    double value = 0.0;
    if (a.has("constant_values")) {
      const json& v = a.get("constant_values");
      if (!v.is_number()) throw Error("constant_values: only one number is supported");
      value = v.get<double>();
    }
    return {F::pad(in[0], parse_pad_width(a.get("pad_width")), a.str("mode", "constant"), value)};
  };
  // losses and metrics
  t["hinge"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    return {F::hinge(in[0], in[1], a.str("norm", "L1"), a.str("reduce", "mean"))};
  };
  t["contrastive"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 3, 3);
    return {F::contrastive(in[0], in[1], in[2], a.num("margin", 1.0), a.str("reduce", "mean"))};
  };
  t["triplet"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 3, 3);
    return {F::triplet(in[0], in[1], in[2], a.num("margin", 0.2), a.str("reduce", "mean"))};
  };
  t["gaussian_kl_divergence"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    return {F::gaussian_kl_divergence(in[0], in[1], a.str("reduce", "sum"))};
  };
  t["bernoulli_nll"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    return {F::bernoulli_nll(in[0], in[1], a.str("reduce", "sum"))};
  };
  t["gaussian_nll"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 3, 3);
    return {F::gaussian_nll(in[0], in[1], in[2], a.str("reduce", "sum"))};
  };
  t["r2_score"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 3);
    return {F::r2_score(in[0], in[1], opt_input(in, 2), a.str("multioutput", "uniform_average"))};
  };
  // x (T, B, V) is passed to Chainer as the list x[0], ..., x[T-1].
  t["connectionist_temporal_classification"] = [](const Vars& in, const Attrs& a) -> Vars {
    if (in.size() != 2 && in.size() != 4) throw Error(fmt::format("takes 2 or 4 inputs, the case has {}", in.size()));
    return {F::connectionist_temporal_classification(F::separate(in[0], 0), in[1], a.get("blank_symbol").get<int64_t>(),
                                                     opt_input(in, 2), opt_input(in, 3), a.str("reduce", "mean"))};
  };
  // normalization
  t["normalize"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::normalize(in[0], a.num("eps", 1e-5), a.integer("axis", 1))};
  };
  t["local_response_normalization"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::local_response_normalization(in[0], a.integer("n", 5), a.num("k", 2), a.num("alpha", 1e-4),
                                            a.num("beta", 0.75))};
  };
  t["group_normalization"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 3, 3);
    return {F::group_normalization(in[0], a.get("groups").get<int64_t>(), in[1], in[2], a.num("eps", 1e-5))};
  };
  // CNN
  t["depthwise_convolution_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 3);
    return {F::depthwise_convolution_2d(in[0], in[1], opt_input(in, 2), a.pair("stride", 1), a.pair("pad", 0))};
  };
  t["unpooling_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::unpooling_2d(in[0], a.pair("ksize", 0), a.opt_pair("stride"), a.pair("pad", 0), a.opt_pair("outsize"),
                            a.boolean("cover_all", true))};
  };
  t["upsampling_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 2, 2);
    return {F::upsampling_2d(in[0], in[1], a.pair("ksize", 0), a.opt_pair("stride"), a.pair("pad", 0),
                             a.opt_pair("outsize"), a.boolean("cover_all", true))};
  };
  t["resize_images"] = [](const Vars& in, const Attrs& a) -> Vars {
    need_inputs(in, 1, 1);
    return {F::resize_images(in[0], a.pair("output_shape", 0), a.str("mode", "bilinear"),
                             a.boolean("align_corners", true))};
  };
}

const std::map<std::string, Fn>& function_table() {
  static const std::map<std::string, Fn> table = [] {
    std::map<std::string, Fn> t;
    // arithmetic
    t["identity"] = unary(F::identity);
    t["add"] = binary(F::add);
    t["sub"] = [](const Vars& in, const Attrs&) -> Vars { need_inputs(in, 2, 2); return {in[0] - in[1]}; };
    t["mul"] = [](const Vars& in, const Attrs&) -> Vars { need_inputs(in, 2, 2); return {in[0] * in[1]}; };
    t["div"] = [](const Vars& in, const Attrs&) -> Vars { need_inputs(in, 2, 2); return {in[0] / in[1]}; };
    t["negative"] = unary(F::negative);
    t["maximum"] = binary(F::maximum);
    t["minimum"] = binary(F::minimum);
    t["absolute"] = unary(F::absolute);
    t["square"] = unary(F::square);
    t["sqrt"] = unary(F::sqrt);
    t["rsqrt"] = unary(F::rsqrt);
    t["exp"] = unary(F::exp);
    t["log"] = unary(F::log);
    t["clip"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::clip(in[0], a.get("x_min").get<double>(), a.get("x_max").get<double>())};
    };
    // activations
    t["relu"] = unary(F::relu);
    t["sigmoid"] = unary(F::sigmoid);
    t["tanh"] = unary(F::tanh);
    t["gelu"] = unary(F::gelu);
    t["leaky_relu"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::leaky_relu(in[0], a.num("slope", 0.2))};
    };
    t["elu"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::elu(in[0], a.num("alpha", 1.0))};
    };
    t["softplus"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::softplus(in[0], a.num("beta", 1.0))};
    };
    t["swish"] = binary(F::swish);
    t["softmax"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::softmax(in[0], a.integer("axis", 1))};
    };
    t["log_softmax"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::log_softmax(in[0], a.integer("axis", 1))};
    };
    // shapes
    t["reshape"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::reshape(in[0], a.ints("shape"))};
    };
    t["transpose"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::transpose(in[0], a.ints("axes"))};
    };
    t["broadcast_to"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::broadcast_to(in[0], a.ints("shape"))};
    };
    t["expand_dims"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::expand_dims(in[0], a.get("axis").get<int64_t>())};
    };
    t["squeeze"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::squeeze(in[0], a.axes("axis"))};
    };
    t["flatten"] = unary(F::flatten);
    t["concat"] = [](const Vars& in, const Attrs& a) -> Vars {
      return {F::concat(in, a.integer("axis", 1))};
    };
    t["stack"] = [](const Vars& in, const Attrs& a) -> Vars {
      return {F::stack(in, a.integer("axis", 0))};
    };
    t["split_axis"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      const json& ios = a.get("indices_or_sections");
      int64_t axis = a.get("axis").get<int64_t>();
      a.has("force_tuple");  // always a tuple here
      if (ios.is_number_integer()) return F::split_axis(in[0], ios.get<int64_t>(), axis);
      return F::split_axis(in[0], ios.get<std::vector<int64_t>>(), axis);
    };
    t["get_item"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::get_item(in[0], parse_slices(a.get("slices")))};
    };
    // reductions
    t["sum"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::sum(in[0], a.axes("axis"), a.boolean("keepdims", false))};
    };
    t["mean"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::mean(in[0], a.axes("axis"), a.boolean("keepdims", false))};
    };
    t["max"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::max(in[0], a.axes("axis"), a.boolean("keepdims", false))};
    };
    t["min"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::min(in[0], a.axes("axis"), a.boolean("keepdims", false))};
    };
    t["logsumexp"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::logsumexp(in[0], a.axes("axis"))};
    };
    // linear algebra
    t["matmul"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 2);
      return {F::matmul(in[0], in[1], a.boolean("transa", false), a.boolean("transb", false))};
    };
    t["linear"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 3);
      return {F::linear(in[0], in[1], opt_input(in, 2), a.integer("n_batch_axes", 1))};
    };
    // losses and metrics
    t["softmax_cross_entropy"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 2);
      return {F::softmax_cross_entropy(in[0], in[1], a.boolean("normalize", true),
                                       a.integer("ignore_label", -1), a.str("reduce", "mean"))};
    };
    t["sigmoid_cross_entropy"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 2);
      return {F::sigmoid_cross_entropy(in[0], in[1], a.boolean("normalize", true),
                                       a.str("reduce", "mean"))};
    };
    t["mean_squared_error"] = binary(F::mean_squared_error);
    t["huber_loss"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 2);
      return {F::huber_loss(in[0], in[1], a.get("delta").get<double>(),
                            a.str("reduce", "sum_along_second_axis"))};
    };
    t["accuracy"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 2);
      return {F::accuracy(in[0], in[1], a.opt_int("ignore_label"))};
    };
    // CNN
    t["convolution_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 3);
      return {F::convolution_2d(in[0], in[1], opt_input(in, 2), a.pair("stride", 1), a.pair("pad", 0),
                                a.boolean("cover_all", false), a.pair("dilate", 1), a.integer("groups", 1))};
    };
    t["deconvolution_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 3);
      return {F::deconvolution_2d(in[0], in[1], opt_input(in, 2), a.pair("stride", 1), a.pair("pad", 0),
                                  a.opt_pair("outsize"), a.pair("dilate", 1), a.integer("groups", 1))};
    };
    t["max_pooling_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::max_pooling_2d(in[0], a.pair("ksize", 0), a.opt_pair("stride"), a.pair("pad", 0),
                                a.boolean("cover_all", true))};
    };
    t["average_pooling_2d"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 1, 1);
      return {F::average_pooling_2d(in[0], a.pair("ksize", 0), a.opt_pair("stride"),
                                    a.pair("pad", 0))};
    };
    t["batch_normalization"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 3, 3);
      return {F::batch_normalization(in[0], in[1], in[2], a.num("eps", 2e-5))};
    };
    t["fixed_batch_normalization"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 5, 5);
      return {F::fixed_batch_normalization(in[0], in[1], in[2], in[3], in[4], a.num("eps", 2e-5))};
    };
    t["layer_normalization"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 3, 3);
      return {F::layer_normalization(in[0], in[1], in[2], a.num("eps", 1e-5))};
    };
    t["embed_id"] = [](const Vars& in, const Attrs& a) -> Vars {
      need_inputs(in, 2, 2);
      return {F::embed_id(in[0], in[1], a.opt_int("ignore_label"))};
    };
    add_recurrent(t);
    add_extra(t);
    return t;
  }();
  return table;
}

// ---- results ---------------------------------------------------------------------

struct Tally {
  int passed = 0, failed = 0;
};

// Runs one case: `body` throws CaseFailure or an exception on failure.
void run_case(Tally& tally, const std::string& name, const std::function<void()>& body) {
  std::string failure;
  try {
    body();
  } catch (const CaseFailure& f) {
    failure = f.what;
  } catch (const json::exception& e) {
    failure = std::string("malformed case: ") + e.what();
  } catch (const std::exception& e) {
    failure = std::string("error: ") + e.what();
  }
  if (failure.empty()) {
    ++tally.passed;
    if (g_verbose) std::cout << "PASS " << name << "\n";
  } else {
    ++tally.failed;
    // Keep the report one line per case.
    for (char& c : failure)
      if (c == '\n') c = ' ';
    std::cout << "FAIL " << name << ": " << failure << "\n";
  }
  std::cout.flush();
}

double tol(const json& c, const char* key) {
  if (!c.contains(key)) throw Error(std::string("missing '") + key + "'");
  return c.at(key).get<double>();
}

// ---- functions.json --------------------------------------------------------------

void run_function_case(const json& c) {
  const std::string fname = c.at("function").get<std::string>();
  const auto& table = function_table();
  auto it = table.find(fname);
  if (it == table.end()) throw CaseFailure{"unknown function '" + fname + "'"};
  const double rtol = tol(c, "rtol"), atol = tol(c, "atol");
  Attrs attrs(c.value("attrs", json::object()));

  Vars inputs;
  const json& jin = c.at("inputs");
  for (size_t i = 0; i < jin.size(); ++i) {
    Array a = parse_tensor(jin[i], fmt::format("inputs[{}]", i));
    inputs.emplace_back(a, is_floating(a.dtype()));
  }
  Vars outputs = it->second(inputs, attrs);
  std::vector<std::string> unused = attrs.unused();
  if (!unused.empty())
    throw CaseFailure{fmt::format("unsupported attribute '{}' for {}", unused[0], fname)};

  const json& jout = c.at("outputs");
  if (outputs.size() != jout.size())
    throw CaseFailure{fmt::format("{} outputs (expected {})", outputs.size(), jout.size())};
  for (size_t j = 0; j < outputs.size(); ++j)
    expect_close(outputs[j].array(), parse_tensor(jout[j], fmt::format("outputs[{}]", j)), rtol,
                 atol, fmt::format("output {}", j));

  const json& jgo = c.at("grad_outputs");
  const json& jgi = c.at("grad_inputs");
  if (jgi.size() != inputs.size())
    throw Error(fmt::format("grad_inputs has {} entries for {} inputs", jgi.size(), inputs.size()));
  if (jgo.empty()) return;  // forward-only case
  if (jgo.size() != outputs.size())
    throw Error(fmt::format("grad_outputs has {} entries for {} outputs", jgo.size(),
                            outputs.size()));
  if (outputs.size() == 1) {
    outputs[0].set_grad(parse_tensor(jgo[0], "grad_outputs[0]"));
    outputs[0].backward();
  } else {
    // One backward of sum_j <outputs[j], grad_outputs[j]> (the definition of grad_inputs):
    // one gradient graph for all outputs, not one per output (the n-step RNN cases have many).
    Variable total;
    for (size_t j = 0; j < outputs.size(); ++j) {
      Variable gy(parse_tensor(jgo[j], fmt::format("grad_outputs[{}]", j)), false);
      if (gy.shape() != outputs[j].shape())
        throw CaseFailure{fmt::format("grad_outputs[{}] has shape {}, output {} has {}", j, shape_str(gy.shape()), j,
                                      shape_str(outputs[j].shape()))};
      Variable term = F::sum(outputs[j] * gy);
      total = j == 0 ? term : total + term;
    }
    total.backward();
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (jgi[i].is_null()) continue;
    Array expected = parse_tensor(jgi[i], fmt::format("grad_inputs[{}]", i));
    if (!inputs[i].has_grad()) throw CaseFailure{fmt::format("grad input {} has no gradient", i)};
    expect_close(inputs[i].grad(), expected, rtol, atol, fmt::format("grad input {}", i));
  }
}

void run_functions(const json& doc, Tally& tally) {
  const json& cases = doc.at("cases");
  for (size_t k = 0; k < cases.size(); ++k) {
    const json& c = cases[k];
    std::string name = c.is_object() && c.contains("name") && c.at("name").is_string()
                           ? c.at("name").get<std::string>()
                           : fmt::format("cases[{}]", k);
    run_case(tally, name, [&] { run_function_case(c); });
  }
}

// ---- training.json ---------------------------------------------------------------

// The MLP of training.json: l0 ... l{K-1}, relu between.
struct TrainMLP : Chain {
  std::vector<L::Linear> layers;
  explicit TrainMLP(const std::vector<int64_t>& sizes) {
    if (sizes.size() < 2) throw Error("model.layers needs at least 2 sizes");
    for (size_t i = 0; i + 1 < sizes.size(); ++i) {
      layers.emplace_back(sizes[i], sizes[i + 1]);
      add_link("l" + std::to_string(i), layers.back());
    }
  }
  Variable operator()(const Variable& x) const {
    Variable h = x;
    for (size_t i = 0; i < layers.size(); ++i) {
      h = layers[i](h);
      if (i + 1 < layers.size()) h = F::relu(h);
    }
    return h;
  }
};

// Sets every parameter of `link` from `params` ({"l0/W": T, ...}); the names must match exactly.
void load_params(const Link& link, const json& params, const std::string& prefix = "") {
  std::set<std::string> seen;
  for (auto& [name, p] : link.namedparams()) {
    std::string key = prefix + name.substr(name.rfind('/', 0) == 0 ? 1 : 0);
    if (!params.contains(key)) throw Error("params lacks '" + key + "'");
    Array a = parse_tensor(params.at(key), "params." + key);
    if (a.shape() != p.shape())
      throw Error(fmt::format("params.{} has shape {}, the model's parameter {}", key,
                              shape_str(a.shape()), shape_str(p.shape())));
    Parameter q = p;
    q.set_array(a);
    seen.insert(key);
  }
  for (auto it = params.begin(); it != params.end(); ++it)
    if (!seen.count(it.key())) throw Error("the model has no parameter '" + it.key() + "'");
}

void expect_params(const Link& link, const json& params, double rtol, double atol,
                   const std::string& what) {
  for (auto& [name, p] : link.namedparams()) {
    std::string key = name.substr(name.rfind('/', 0) == 0 ? 1 : 0);
    if (!params.contains(key)) throw Error(what + " lacks '" + key + "'");
    expect_close(p.array(), parse_tensor(params.at(key), what + "." + key), rtol, atol,
                 what + " " + key);
  }
}

#ifdef KILN_GOLDENS_HAVE_OPTIMIZERS
// The optimizer of a training run ("optimizer": {"name", "hyper"}), set up on
// `model`, with its hooks in order.
std::shared_ptr<optimizers::Optimizer> make_optimizer(const json& spec, const json& hooks,
                                                      Link& model) {
  std::string name = spec.at("name").get<std::string>();
  const json& h = spec.value("hyper", json::object());
  auto num = [&](const char* k, double def) { return h.contains(k) ? h.at(k).get<double>() : def; };
  auto flag = [&](const char* k) { return h.contains(k) && h.at(k).get<bool>(); };
  if (flag("adabound")) throw Error("adabound is not supported");
  std::shared_ptr<optimizers::Optimizer> opt;
  if (name == "SGD") {
    opt = std::make_shared<optimizers::SGD>(num("lr", 0.01));
  } else if (name == "MomentumSGD") {
    opt = std::make_shared<optimizers::MomentumSGD>(num("lr", 0.01), num("momentum", 0.9));
  } else if (name == "Adam" || name == "AdamW") {
    double alpha = num("alpha", 0.001), beta1 = num("beta1", 0.9), beta2 = num("beta2", 0.999),
           eps = num("eps", 1e-8), eta = num("eta", 1.0), wd = num("weight_decay_rate", 0.0);
    bool amsgrad = flag("amsgrad");
    if (name == "Adam")
      opt = std::make_shared<optimizers::Adam>(alpha, beta1, beta2, eps, eta, wd, amsgrad);
    else
      opt = std::make_shared<optimizers::AdamW>(alpha, beta1, beta2, eps, eta, wd, amsgrad);
  } else {
    throw Error("unknown optimizer '" + name + "'");
  }
  opt->setup(model);
  for (const json& hk : hooks) {
    std::string hname = hk.at("name").get<std::string>();
    if (hname == "WeightDecay")
      opt->add_hook(optimizer_hooks::WeightDecay(hk.at("rate").get<double>()));
    else if (hname == "GradientClipping")
      opt->add_hook(optimizer_hooks::GradientClipping(hk.at("threshold").get<double>()));
    else
      throw Error("unknown optimizer hook '" + hname + "'");
  }
  return opt;
}
#endif

void run_training_run(const json& r) {
#ifndef KILN_GOLDENS_HAVE_OPTIMIZERS
  (void)r;
  throw CaseFailure{"training goldens need kiln::optimizers (kiln/optimizers.h is not in this build)"};
#else
  const double rtol = tol(r, "rtol"), atol = tol(r, "atol");
  const json& model_spec = r.at("model");
  std::string act = model_spec.value("activation", "relu");
  if (act != "relu") throw Error("unsupported activation '" + act + "'");
  TrainMLP model(model_spec.at("layers").get<std::vector<int64_t>>());
  load_params(model, r.at("params"));
  auto opt = make_optimizer(r.at("optimizer"), r.value("hooks", json::array()), model);
  const json& steps = r.at("steps");
  for (size_t s = 0; s < steps.size(); ++s) {
    const json& st = steps[s];
    Variable x(parse_tensor(st.at("x"), "x"), false);
    Variable t(parse_tensor(st.at("t"), "t"), false);
    model.cleargrads();
    Variable loss = F::softmax_cross_entropy(model(x), t);
    loss.backward();
    opt->update();
    expect_close_scalar(loss.array().astype(DType::f64).at(0), st.at("loss").get<double>(), rtol,
                        atol, fmt::format("step {} loss", s));
    if (st.contains("params_after"))
      expect_params(model, st.at("params_after"), rtol, atol, fmt::format("step {} params", s));
  }
  if (r.contains("final_params")) expect_params(model, r.at("final_params"), rtol, atol, "final params");
#endif
}

void run_training(const json& doc, Tally& tally) {
  const json& runs = doc.at("runs");
  for (size_t k = 0; k < runs.size(); ++k) {
    const json& r = runs[k];
    std::string name = r.is_object() && r.contains("name") && r.at("name").is_string()
                           ? r.at("name").get<std::string>()
                           : fmt::format("runs[{}]", k);
    run_case(tally, "training/" + name, [&] { run_training_run(r); });
  }
}

// ---- npz.json --------------------------------------------------------------------

// The MLP of npz.json: l1, l2, l3 with relu between.
struct NpzMLP : Chain {
  L::Linear l1, l2, l3;
  explicit NpzMLP(const std::vector<int64_t>& s = {1, 1, 1, 1})
      : l1(s.at(0), s.at(1)), l2(s.at(1), s.at(2)), l3(s.at(2), s.at(3)) {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::relu(l2(F::relu(l1(x))))); }
};

void run_npz_file(const json& doc, const std::string& dir, const std::string& file) {
#ifndef KILN_GOLDENS_HAVE_SERIALIZERS
  (void)doc, (void)dir, (void)file;
  throw CaseFailure{"npz goldens need kiln::serializers (kiln/serializers.h is not in this build)"};
#else
  const double rtol = tol(doc, "rtol"), atol = tol(doc, "atol");
  auto sizes = doc.at("model").at("layers").get<std::vector<int64_t>>();
  if (sizes.size() != 4) throw Error("model.layers needs 4 sizes (l1, l2, l3)");
  L::Classifier<NpzMLP> model{NpzMLP(sizes)};
  // The archive's keys must be the model's parameters.
  std::map<std::string, Shape> shapes;
  for (auto& [name, p] : model.namedparams()) shapes[name.substr(1)] = p.shape();
  for (const json& k : doc.at("keys")) {
    std::string key = k.at("key").get<std::string>();
    auto it = shapes.find(key);
    if (it == shapes.end()) throw Error("the model has no parameter '" + key + "'");
    if (it->second != parse_shape(k.at("shape")))
      throw Error("keys: '" + key + "' has shape " + shape_str(parse_shape(k.at("shape"))) +
                  ", the model's parameter " + shape_str(it->second));
  }
  std::string path = dir.empty() ? file : dir + "/" + file;
  serializers::load_npz(path, model);

  Variable x(parse_tensor(doc.at("x"), "x"), false);
  Variable t(parse_tensor(doc.at("t"), "t"), false);
  Variable y = model.predictor(x);
  expect_close(y.array(), parse_tensor(doc.at("expected"), "expected"), rtol, atol,
               "predictor(x)");
  Variable loss = model(x, t);
  expect_close_scalar(loss.array().astype(DType::f64).at(0), doc.at("loss").get<double>(), rtol,
                      atol, "loss");
  expect_close_scalar(model.accuracy.array().astype(DType::f64).at(0),
                      doc.at("accuracy").get<double>(), rtol, atol, "accuracy");
#endif
}

void run_npz(const json& doc, const std::string& dir, Tally& tally) {
  for (const char* key : {"file", "file_uncompressed"}) {
    if (!doc.contains(key)) continue;
    std::string file = doc.at(key).is_string() ? doc.at(key).get<std::string>() : "?";
    run_case(tally, "npz/" + file, [&] { run_npz_file(doc, dir, doc.at(key).get<std::string>()); });
  }
}

// ---- main ------------------------------------------------------------------------

void run_file(const std::string& path, Tally& tally) {
  json doc;
  try {
    std::ifstream in(path);
    if (!in) throw Error("cannot open the file");
    doc = json::parse(in);
    if (!doc.is_object()) throw Error("the top level is not a JSON object");
    if (doc.contains("format") && doc.at("format") != "kiln-goldens/1")
      throw Error("unknown format " + doc.at("format").dump() + " (expected \"kiln-goldens/1\")");
  } catch (const std::exception& e) {
    ++tally.failed;
    std::cout << "FAIL " << path << ": " << e.what() << "\n";
    return;
  }
  std::string dir;
  if (auto slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash);
  if (doc.contains("cases") && doc.at("cases").is_array()) {
    run_functions(doc, tally);
  } else if (doc.contains("runs") && doc.at("runs").is_array()) {
    run_training(doc, tally);
  } else if (doc.contains("keys") && doc.contains("file")) {
    run_npz(doc, dir, tally);
  } else {
    ++tally.failed;
    std::cout << "FAIL " << path
              << ": not a kiln goldens file (no \"cases\", \"runs\" or \"keys\"/\"file\")\n";
  }
}

int usage(const char* msg) {
  if (msg) std::cerr << "kiln-goldens: " << msg << "\n";
  std::cerr << "usage: kiln-goldens [--backend interp|cpu|cuda] [--verbose] FILE...\n"
               "  FILE: a kiln-goldens/1 functions.json, training.json or npz.json\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string backend;
    if (arg == "--backend") {
      if (i + 1 >= argc) return usage("--backend needs a value");
      backend = argv[++i];
    } else if (arg.rfind("--backend=", 0) == 0) {
      backend = arg.substr(10);
    } else if (arg == "--verbose" || arg == "-v") {
      g_verbose = true;
      continue;
    } else if (arg == "--help" || arg == "-h") {
      usage(nullptr);
      return 0;
    } else if (arg.size() > 1 && arg[0] == '-') {
      return usage(("unknown option '" + arg + "'").c_str());
    } else {
      files.push_back(arg);
      continue;
    }
    if (backend != "interp" && backend != "cpu" && backend != "cuda")
      return usage(("unknown backend '" + backend + "' (interp, cpu or cuda)").c_str());
    setenv("KILN_BACKEND", backend.c_str(), 1);
  }
  if (files.empty()) return usage("no goldens file given");

  Tally tally;
  for (const std::string& f : files) run_file(f, tally);
  std::cout << tally.passed << " passed, " << tally.failed << " failed\n";
  return tally.failed == 0 ? 0 : 1;
}
