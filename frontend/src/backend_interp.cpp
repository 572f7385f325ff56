// The interp backend: the reference interpreter runs the module after the frontend pipeline.
#include "backend.h"
#include "kiln/codegen/interp.h"
#include "kiln_ir.h"

namespace kiln::detail {
namespace {

class InterpExecutable : public Executable {
 public:
  explicit InterpExecutable(mlir::OwningOpRef<mlir::ModuleOp> m) : module_(std::move(m)) {}
  ~InterpExecutable() override {
    std::lock_guard<std::recursive_mutex> lock(mlir_mutex());
    module_ = nullptr;
  }
  std::vector<Array> run(const std::vector<Array>& args) override {
    std::lock_guard<std::recursive_mutex> lock(mlir_mutex());
    auto func = mlir::cast<mlir::func::FuncOp>(module_->getBody()->front());
    return interp::run(func, args);
  }

 private:
  mlir::OwningOpRef<mlir::ModuleOp> module_;
};

class InterpBackend : public Backend {
 public:
  const char* name() const override { return "interp"; }
  const char* description() const override { return "the reference interpreter"; }
  std::string unavailable_reason() const override { return {}; }
  std::string options_key() const override { return {}; }
  // The interpreter keeps every graph's concrete shapes.
  bool symbolic_batch() const override { return false; }
  std::shared_ptr<Executable> load_cached(const std::string&, mlir::func::FuncOp) const override { return nullptr; }
  std::shared_ptr<Executable> compile(const CompileRequest& request) const override {
    return std::make_shared<InterpExecutable>(std::move(request.module));
  }
};

}  // namespace

const Backend& interp_backend() {
  static const InterpBackend backend;
  return backend;
}

}  // namespace kiln::detail
