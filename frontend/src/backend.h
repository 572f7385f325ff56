// The backends (interp, cpu) behind one interface, and their registry.
//
// A backend compiles a kiln module (after the frontend pipeline) into an
// Executable, names the options its code depends on (part of every cache
// key), and says whether this build can use it. compile.cpp drives them;
// nothing else asks which backend runs.
#pragma once
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "graph.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::detail {

// One compile: the module (kiln ops after the frontend pipeline, entry
// @graph; the backend may transform it or take it over) and its names.
struct CompileRequest {
  mlir::OwningOpRef<mlir::ModuleOp>& module;
  const std::string& key;   // the cache key of the module (Backend::options_key and its text)
  std::string hash;         // 16 hex digits of the key, for file names
  std::string dump_prefix;  // KILN_DUMP's <dir>/<hash>, or "": where to write <prefix>.<stage> files
  size_t args = 0, ops = 0, outputs = 0;  // of the traced graph, for the dump's summary
  std::chrono::steady_clock::time_point start;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Its KILN_BACKEND name ("cpu", "interp") and what it is ("compiled, LLVM").
  virtual const char* name() const = 0;
  virtual const char* description() const = 0;
  // "" when this build can use it; else the reason, as a kiln::Error message.
  virtual std::string unavailable_reason() const = 0;
  // The options its code depends on that may change within a process (the
  // cpu backend: threads, KILN_GEMM): part of every cache key, so a kernel
  // compiled under other options is never reused. Read on every realize: cheap.
  virtual std::string options_key() const = 0;
  // Whether its executables take any batch size (`?` dimensions), so that
  // graphs go through -kiln-generalize-batch first.
  virtual bool symbolic_batch() const = 0;
  // The kind of device whose arrays its executables take and return: a graph
  // whose inputs live on a CUDA device runs on a backend of Kind::cuda.
  virtual Device::Kind device_kind() const { return Device::Kind::cpu; }
  // The executable of the module with cache key `key` from a cache outside
  // the process (the cpu backend's disk cache), without MLIR work, or null.
  // `graph` is the module's function before the frontend pipeline.
  virtual std::shared_ptr<Executable> load_cached(const std::string& key, mlir::func::FuncOp graph) const = 0;
  // Compiles the request's module. Throws kiln::Error naming the failing op.
  virtual std::shared_ptr<Executable> compile(const CompileRequest& request) const = 0;
};

// The registered backends, the default ("cpu") first.
const std::vector<const Backend*>& backends();
// The backend named `name`; throws kiln::Error when there is none or it is unavailable.
const Backend& backend_named(const std::string& name);
// current_backend(), backend_for() and backend_key(): graph.h.

// The backends' registrations (backend_interp.cpp, backend_cpu.cpp).
const Backend& interp_backend();
const Backend& cpu_backend();
const Backend& cuda_backend();  // backend_cuda.cpp, in builds with the CUDA toolkit (KILN_HAVE_CUDA)

// KILN_DUMP: writes `module` to <prefix><suffix> when prefix is not "" (compile.cpp).
void write_dump(const std::string& prefix, const char* suffix, mlir::ModuleOp module);

}  // namespace kiln::detail
