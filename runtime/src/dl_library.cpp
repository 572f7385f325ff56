// Loading shared libraries at run time (kiln/dl_library.h).
#include "kiln/dl_library.h"

#include <cstdlib>

namespace kiln::dl {

Opened open_first(const std::vector<std::string>& candidates) {
  Opened r;
  for (const std::string& c : candidates) {
    r.handle = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (r.handle) return r;
    const char* e = ::dlerror();
    r.error = e ? e : "not found";
    r.tried += (r.tried.empty() ? "" : "; ") + c + ": " + r.error;
  }
  return r;
}

std::vector<std::string> candidates(const char* override_var, const std::vector<std::string>& defaults) {
  if (const char* p = std::getenv(override_var); p && *p) return {p};
  return defaults;
}

}  // namespace kiln::dl
