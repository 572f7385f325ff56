// Configuration, like chainer.config / chainer.using_config. Per thread, as
// chainer.config is: each thread starts with the defaults below, and
// using_config on one thread does not change another's.
#pragma once
#include <string>

namespace kiln {

struct Config {
  bool train = true;            // dropout and batch normalization behave as in training
  // Off: ops record no backward path, as in Chainer: backward() does not reach
  // the inputs of values computed meanwhile (a frozen feature extractor gets no
  // gradients and is not updated), even when they meet a differentiated path later.
  bool enable_backprop = true;
};

Config& config();  // the calling thread's configuration

// Restores the previous value when destroyed: { auto g = using_config("train", false); ... }
class ConfigGuard {
 public:
  ConfigGuard(std::string key, bool value);
  ~ConfigGuard();
  ConfigGuard(const ConfigGuard&) = delete;
  ConfigGuard& operator=(const ConfigGuard&) = delete;
  ConfigGuard(ConfigGuard&& other) noexcept;

 private:
  std::string key_;
  bool old_ = false;
  bool active_ = true;
};

[[nodiscard]] ConfigGuard using_config(const std::string& key, bool value);
// chainer.no_backprop_mode() / chainer.force_backprop_mode(): enable_backprop off / on in a scope.
[[nodiscard]] ConfigGuard no_backprop_mode();
[[nodiscard]] ConfigGuard force_backprop_mode();

// Chainer's debug mode (chainer.set_debug / chainer.is_debug), for the whole
// process: after each run of a graph, every floating value it realizes is
// checked, and a NaN or inf throws kiln::Error naming the op that first
// produced one and its call site (file:line); to find that op, the graph is
// run again on the interpreter. Off by default; KILN_DEBUG=1 turns it on
// (read once), set_debug overrides.
void set_debug(bool debug);
bool is_debug();

}  // namespace kiln
