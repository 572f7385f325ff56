// Shared libraries kiln loads at run time (libcuda.so.1, libcublasLt, libnccl.so.2): the first
// of several candidate names that dlopen accepts, and a table of entry points resolved from
// it with dlsym (no link-time dependency on the library).
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

namespace kiln::dl {

// The first of `candidates` that dlopen(RTLD_NOW | RTLD_LOCAL) loads. `handle` is nullptr when
// none does; `tried` then lists each candidate with dlerror's reason ("name: reason; ..."), and
// `error` is the last candidate's reason alone.
struct Opened {
  void* handle = nullptr;
  std::string tried, error;
};
Opened open_first(const std::vector<std::string>& candidates);

// The candidates of a library whose path the environment variable `override_var` may give:
// only that path when it is set and not empty, else `defaults`.
std::vector<std::string> candidates(const char* override_var, const std::vector<std::string>& defaults);

// Resolves `name` into `slot` (nullptr when `handle` lacks it; the name is then appended to
// `missing`, comma-separated).
template <typename Fn>
void resolve(void* handle, const char* name, Fn& slot, std::string& missing) {
  slot = reinterpret_cast<Fn>(::dlsym(handle, name));
  if (!slot) missing += (missing.empty() ? "" : ", ") + std::string(name);
}

}  // namespace kiln::dl

// Resolves every entry point of an X-macro list (ENTRY_POINTS(X) calls X(name) for each) into
// the members of `table` of the same names; evaluates to the missing names ("" when none is).
#define KILN_DL_RESOLVE_ENTRY(name) ::kiln::dl::resolve(kiln_dl_handle_, #name, kiln_dl_table_.name, kiln_dl_missing_);
#define KILN_DL_RESOLVE_TABLE(handle, table, ENTRY_POINTS) \
  [&] {                                                    \
    void* kiln_dl_handle_ = (handle);                      \
    auto& kiln_dl_table_ = (table);                        \
    std::string kiln_dl_missing_;                          \
    ENTRY_POINTS(KILN_DL_RESOLVE_ENTRY)                    \
    return kiln_dl_missing_;                               \
  }()
