// Global configuration and using_config.
#include "kiln/config.h"

#include "kiln/error.h"

namespace kiln {

Config& config() {
  thread_local Config c;
  return c;
}

static bool& config_slot(const std::string& key) {
  if (key == "train") return config().train;
  if (key == "enable_backprop") return config().enable_backprop;
  throw Error("kiln: using_config: unknown key '" + key + "' (expected train or enable_backprop)");
}

ConfigGuard::ConfigGuard(std::string key, bool value) : key_(std::move(key)) {
  bool& slot = config_slot(key_);
  old_ = slot;
  slot = value;
}

ConfigGuard::~ConfigGuard() {
  if (active_) config_slot(key_) = old_;
}

ConfigGuard::ConfigGuard(ConfigGuard&& other) noexcept
    : key_(std::move(other.key_)), old_(other.old_), active_(other.active_) {
  other.active_ = false;
}

ConfigGuard using_config(const std::string& key, bool value) { return ConfigGuard(key, value); }
ConfigGuard no_backprop_mode() { return ConfigGuard("enable_backprop", false); }
ConfigGuard force_backprop_mode() { return ConfigGuard("enable_backprop", true); }

}  // namespace kiln
