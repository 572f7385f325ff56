// The registry of backends and the choice by KILN_BACKEND.
#include "backend.h"

#include "kiln/cache.h"
#include "kiln/env.h"

namespace kiln::detail {

const std::vector<const Backend*>& backends() {
#ifdef KILN_HAVE_CUDA
  static const std::vector<const Backend*> all{&cpu_backend(), &interp_backend(), &cuda_backend()};
#else
  static const std::vector<const Backend*> all{&cpu_backend(), &interp_backend()};
#endif
  return all;
}

const Backend& backend_named(const std::string& name) {
  for (const Backend* b : backends())
    if (name == b->name()) {
      if (std::string reason = b->unavailable_reason(); !reason.empty()) throw Error(reason);
      return *b;
    }
  std::string known;
  for (size_t i = 0; i < backends().size(); ++i) {
    const Backend* b = backends()[i];
    known += i == 0 ? "" : i + 1 == backends().size() ? " and " : ", ";
    known += fmt::format("'{}' ({})", b->name(), b->description());
  }
#ifdef KILN_HAVE_CUDA
  throw Error("kiln: KILN_BACKEND=" + name + ": unknown backend; this build has " + known);
#else
  throw Error("kiln: KILN_BACKEND=" + name + ": unknown backend; this build has " + known +
              "; 'cuda' needs a build with the CUDA toolkit (KILN_ENABLE_CUDA)");
#endif
}

const Backend& current_backend() {
  std::string name = env::get_string("KILN_BACKEND");
  return backend_named(!name.empty() ? name : backends().front()->name());
}

const Backend& backend_for(const Device& device) {
  if (device.is_cpu()) return current_backend();
  for (const Backend* b : backends())
    if (b->device_kind() == device.kind()) {
      if (std::string reason = b->unavailable_reason(); !reason.empty())
        throw Error(fmt::format("kiln: a graph on {}: {}", device.to_string(), reason));
      return *b;
    }
  throw Error(fmt::format("kiln: a graph on {}: this build has no backend for it (the cuda backend needs "
                          "a build with the CUDA toolkit, KILN_ENABLE_CUDA)", device.to_string()));
}

std::string backend_key(const Backend& backend) {
  std::string key = backend.name();
  key += '|';
  key += backend.options_key();
  key += ";KILN_BATCH_MATMULS=";  // read by the frontend pipeline (compile_prepared)
  key += env::get_string("KILN_BATCH_MATMULS");
  return key;
}

}  // namespace kiln::detail

namespace kiln {

std::string backend_name() { return detail::current_backend().name(); }

}  // namespace kiln
