// Global configuration, like chainer.config / chainer.using_config.
#pragma once
#include <string>

namespace kiln {

struct Config {
  bool train = true;            // dropout and batch normalization behave as in training
  bool enable_backprop = true;  // record gradients
};

Config& config();

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

}  // namespace kiln
