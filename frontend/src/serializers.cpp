// Chainer-compatible npz snapshots of links and optimizers (the npz format itself: npz.cpp).
#include "kiln/serializers.h"
#include "trace.h"

#include <set>

namespace kiln {

namespace serializers {

namespace {

std::string strip_slash(const std::string& name) {
  return !name.empty() && name.front() == '/' ? name.substr(1) : name;
}

bool same_kind(DType a, DType b) {
  if (is_floating(a) && is_floating(b)) return true;
  auto is_int = [](DType t) { return t == DType::i32 || t == DType::i64; };
  return (is_int(a) && is_int(b)) || a == b;
}

// One value to assign after every check has passed.
struct Assignment {
  Variable target;
  Array value;
};

void check_unexpected(const std::map<std::string, Array>& arrays, const std::set<std::string>& expected,
                      const std::string& prefix, const std::string& file, const char* what) {
  for (const auto& [key, a] : arrays) {
    if (key.compare(0, prefix.size(), prefix) != 0) continue;
    if (!expected.count(key))
      throw Error(fmt::format("kiln: {}: '{}': unexpected key '{}' (strict mode: the file holds a "
                              "value that the target does not have)", what, file, key));
  }
}

int64_t scalar_int(const std::map<std::string, Array>& arrays, const std::string& key,
                   const std::string& file) {
  const Array& a = arrays.at(key);
  if (a.size() != 1)
    throw Error(fmt::format("kiln: load_npz: '{}': key '{}': expected a scalar, got shape {}", file,
                            key, shape_str(a.shape())));
  return static_cast<int64_t>(a.at(0));
}

}  // namespace

std::map<std::string, Array> to_arrays(const Link& link, const std::string& prefix) {
  std::map<std::string, Array> out;
  for (const auto& [name, p] : link.namedparams())
    if (p.is_initialized()) out[prefix + strip_slash(name)] = p.array();
  for (const auto& [name, v] : link.namedpersistents())
    if (!v.is_null()) out[prefix + strip_slash(name)] = v.array();
  return out;
}

void from_arrays(const std::map<std::string, Array>& arrays, Link& link, const std::string& path_prefix,
                 bool strict, const std::string& file) {
  std::vector<Assignment> todo;
  std::set<std::string> expected;
  auto missing = [&](const std::string& key) {
    throw Error(fmt::format("kiln: load_npz: '{}': missing key '{}'", file, key));
  };
  for (const auto& [name, p] : link.namedparams()) {
    std::string key = path_prefix + strip_slash(name);
    expected.insert(key);
    auto it = arrays.find(key);
    if (it == arrays.end()) {
      if (strict && p.is_initialized()) missing(key);
      continue;
    }
    const Array& a = it->second;
    if (p.is_initialized()) {
      if (a.shape() != p.shape())
        throw Error(fmt::format("kiln: load_npz: '{}': key '{}': shape {} in the file does not match "
                                "the parameter's shape {}", file, key, shape_str(a.shape()),
                                shape_str(p.shape())));
      if (a.dtype() != p.dtype())
        throw Error(fmt::format("kiln: load_npz: '{}': key '{}': dtype {} in the file does not match "
                                "the parameter's dtype {}", file, key, dtype_name(a.dtype()),
                                dtype_name(p.dtype())));
    } else if (!is_floating(a.dtype())) {
      throw Error(fmt::format("kiln: load_npz: '{}': key '{}': dtype {} cannot initialize a parameter",
                              file, key, dtype_name(a.dtype())));
    }
    todo.push_back({p, a.copy()});
  }
  for (const auto& [name, v] : link.namedpersistents()) {
    std::string key = path_prefix + strip_slash(name);
    expected.insert(key);
    auto it = arrays.find(key);
    if (it == arrays.end()) {
      if (strict) missing(key);
      continue;
    }
    const Array& a = it->second;
    if (v.is_null()) continue;  // nothing to assign into
    if (a.shape() != v.shape())
      throw Error(fmt::format("kiln: load_npz: '{}': key '{}': shape {} in the file does not match "
                              "the persistent value's shape {}", file, key, shape_str(a.shape()),
                              shape_str(v.shape())));
    if (!same_kind(a.dtype(), v.dtype()))
      throw Error(fmt::format("kiln: load_npz: '{}': key '{}': dtype {} in the file does not match "
                              "the persistent value's dtype {}", file, key, dtype_name(a.dtype()),
                              dtype_name(v.dtype())));
    todo.push_back({v, a.dtype() == v.dtype() ? a.copy() : a.astype(v.dtype())});
  }
  if (strict) check_unexpected(arrays, expected, path_prefix, file, "load_npz");
  for (Assignment& as : todo) as.target.set_array(as.value.to(as.target.device()));  // stays on its device
}

void save_npz(const std::string& path, const Link& link, bool compression) {
  npz::write(path, to_arrays(link), compression);
}

void load_npz(const std::string& path, Link& link, const std::string& path_prefix, bool strict) {
  from_arrays(npz::read(path), link, path_prefix, strict, path);
}

// ---- optimizers -----------------------------------------------------------------

std::map<std::string, Array> to_arrays(optimizers::Optimizer& opt, const std::string& prefix) {
  std::map<std::string, Array> out;
  out[prefix + "t"] = Array::scalar<int64_t>(opt.t);
  out[prefix + "epoch"] = Array::scalar<int64_t>(opt.epoch);
  for (const auto& [name, p] : opt.target().namedparams()) {
    optimizers::UpdateRule& rule = opt.update_rule(p);
    std::string base = prefix + strip_slash(name) + "/";
    out[base + "t"] = Array::scalar<int64_t>(rule.t);
    if (!p.is_initialized()) continue;
    const optimizers::Hyperparameter& hp = rule.hyperparam ? *rule.hyperparam : opt.hyperparam;
    for (const std::string& s : opt.state_names(hp)) {
      auto it = rule.state.find(s);
      out[base + s] = (it != rule.state.end() && !it->second.is_null())
                          ? it->second.array()
                          : Array::zeros(p.shape(), p.dtype());
    }
  }
  return out;
}

void from_arrays(const std::map<std::string, Array>& arrays, optimizers::Optimizer& opt,
                 const std::string& path_prefix, bool strict, const std::string& file) {
  std::set<std::string> expected;
  auto missing = [&](const std::string& key) {
    throw Error(fmt::format("kiln: load_npz: '{}': missing key '{}'", file, key));
  };
  auto opt_int = [&](const std::string& key, int64_t current, bool required) {
    expected.insert(key);
    auto it = arrays.find(key);
    if (it == arrays.end()) {
      if (strict && required) missing(key);
      return current;
    }
    return scalar_int(arrays, key, file);
  };
  int64_t t = opt_int(path_prefix + "t", opt.t, true);
  int64_t epoch = opt_int(path_prefix + "epoch", opt.epoch, true);

  struct RuleLoad {
    optimizers::UpdateRule* rule;
    int64_t t;
    std::map<std::string, Array> state;
  };
  std::vector<RuleLoad> rules;
  for (const auto& [name, p] : opt.target().namedparams()) {
    optimizers::UpdateRule& rule = opt.update_rule(p);
    std::string base = path_prefix + strip_slash(name) + "/";
    // A per-parameter "t" missing from the file (older writers) defaults to the optimizer's.
    RuleLoad rl{&rule, opt_int(base + "t", t, false), {}};
    const optimizers::Hyperparameter& hp = rule.hyperparam ? *rule.hyperparam : opt.hyperparam;
    for (const std::string& s : opt.state_names(hp)) {
      std::string key = base + s;
      expected.insert(key);
      auto it = arrays.find(key);
      if (it == arrays.end()) {
        if (strict && p.is_initialized()) missing(key);
        continue;
      }
      if (!p.is_initialized())
        throw Error(fmt::format("kiln: load_npz: '{}': key '{}': the parameter '{}' is not "
                                "initialized yet (load the link first)", file, key, name));
      const Array& a = it->second;
      if (a.shape() != p.shape() || a.dtype() != p.dtype())
        throw Error(fmt::format("kiln: load_npz: '{}': key '{}': {} {} in the file does not match "
                                "the parameter's {} {}", file, key, shape_str(a.shape()),
                                dtype_name(a.dtype()), shape_str(p.shape()), dtype_name(p.dtype())));
      rl.state[s] = a.copy();
    }
    rules.push_back(std::move(rl));
  }
  if (strict) check_unexpected(arrays, expected, path_prefix, file, "load_npz");
  opt.t = t;
  opt.epoch = epoch;
  for (RuleLoad& rl : rules) {
    rl.rule->t = rl.t;
    for (auto& [s, a] : rl.state) {
      rl.rule->state[s] = Variable(a, false);
      detail::mark_state(rl.rule->state[s].impl());
    }
  }
}

void save_npz(const std::string& path, optimizers::Optimizer& opt, bool compression) {
  npz::write(path, to_arrays(opt), compression);
}

void load_npz(const std::string& path, optimizers::Optimizer& opt, const std::string& path_prefix,
              bool strict) {
  from_arrays(npz::read(path), opt, path_prefix, strict, path);
}

}  // namespace serializers

}  // namespace kiln
