// -kiln-emit-cuda: prints the CUDA C++ program of each function (after -kiln-fuse),
// for kiln-opt and lit tests; the IR is left unchanged.
#include "kiln/codegen/cuda.h"
#include "kiln/error.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassRegistry.h"

namespace kiln::cuda {
namespace {

struct EmitCudaPass : mlir::PassWrapper<EmitCudaPass, mlir::OperationPass<mlir::ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(EmitCudaPass)
  EmitCudaPass() = default;
  EmitCudaPass(const EmitCudaPass& other) : PassWrapper(other) {}
  Option<bool> generatedGemms{*this, "generated-gemms",
                              llvm::cl::desc("Every matmul a generated GEMM kernel (no cuBLASLt library steps)"),
                              llvm::cl::init(false)};
  llvm::StringRef getArgument() const final { return "kiln-emit-cuda"; }
  llvm::StringRef getDescription() const final {
    return "Print the CUDA C++ kernels of each function (one per kiln.fusion region) to stdout";
  }
  void runOnOperation() override {
    for (auto func : getOperation().getOps<mlir::func::FuncOp>()) {
      try {
        EmitOptions options;
        options.library_gemms = !generatedGemms;
        Program program = emitProgram(func, options);
        llvm::outs() << "// ---- CUDA program of @" << func.getName() << ": " << program.kernels.size()
                     << " kernels ----\n";
        for (const KernelInfo& k : program.kernels) {
          llvm::outs() << "// launch " << k.name << ": " << k.shape << ", block " << k.block << ", buffers in";
          for (int b : k.inputs) llvm::outs() << " " << b;
          llvm::outs() << " out";
          for (int b : k.outputs) llvm::outs() << " " << b;
          llvm::outs() << "\n";
        }
        llvm::outs() << program.source;
      } catch (const Error& e) {
        func.emitError(e.what());
        signalPassFailure();
      }
    }
  }
};

}  // namespace

void registerCudaPasses() { mlir::PassRegistration<EmitCudaPass>(); }

}  // namespace kiln::cuda
