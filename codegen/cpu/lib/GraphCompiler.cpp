// compile_module: kiln (after the frontend pipeline) -> linalg -> LLVM dialect -> object file.
#include <chrono>
#include <fstream>
#include <functional>

#include "kiln/codegen/cpu.h"
#include "kiln/error.h"
#include "kiln/passes/Passes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/Pass/PassRegistry.h"

namespace kiln::cpu {
namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

const mlir::PassInfo* linalgLoweringPass() {
  static const mlir::PassInfo* info = [] {
    kiln::passes::registerKilnPasses();  // idempotent
    return mlir::PassInfo::lookup("kiln-lower-to-linalg");
  }();
  return info;
}

std::string printModule(mlir::ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os, mlir::OpPrintingFlags().assumeVerified());
  return text;
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Runs one stage; on failure throws kiln::Error with the diagnostics and the
// IR the stage started from, saved to <failure_prefix>.failed.mlir.
void runStage(mlir::ModuleOp module, const char* stage, const CompileOptions& options,
              const std::function<void(mlir::OpPassManager&)>& build) {
  mlir::MLIRContext* ctx = module->getContext();
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(ctx, [&](mlir::Diagnostic& d) {
    llvm::raw_string_ostream os(diagnostics);
    os << d.getLocation() << ": " << d << "\n";
    for (const mlir::Diagnostic& note : d.getNotes()) os << "  note: " << note << "\n";
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> before = module.clone();
  mlir::PassManager pm(ctx, mlir::ModuleOp::getOperationName(), mlir::OpPassManager::Nesting::Implicit);
  build(pm);
  if (mlir::succeeded(pm.run(module))) return;
  std::string path = options.failure_prefix + ".failed.mlir";
  std::string header = "// kiln: " + std::string(stage) + " failed on this IR:\n";
  for (llvm::StringRef line : llvm::split(llvm::StringRef(diagnostics).rtrim(), '\n'))
    header += "// " + line.str() + "\n";
  writeFile(path, header + printModule(*before));
  throw Error("kiln: cpu backend: " + std::string(stage) + " failed:\n" + diagnostics +
              "the IR it started from is in " + path);
}

}  // namespace

bool linalg_lowering_available() { return linalgLoweringPass() != nullptr; }

std::vector<uint8_t> compile_module(mlir::ModuleOp module, const CompileOptions& options,
                                    CompileReport* report) {
  const mlir::PassInfo* lowering = linalgLoweringPass();
  if (!lowering)
    throw Error("kiln: cpu backend: this build has no -kiln-lower-to-linalg pass");
  mlir::DialectRegistry registry;
  registerCpuDialects(registry);
  module->getContext()->appendDialectRegistry(registry);
  CompileReport local;
  CompileReport& r = report ? *report : local;

  auto start = Clock::now();
  runStage(module, "lowering kiln to linalg (-kiln-lower-to-linalg)", options,
           [&](mlir::OpPassManager& pm) {
             // KILN_GEMM=blas: convolutions call the runtime's (im2col + BLAS GEMM) too.
             const char* lowering_options = options.pipeline.gemm_blas ? "conv-calls=true" : "";
             if (mlir::failed(lowering->addToPipeline(pm, lowering_options, [](const llvm::Twine&) {
                   return mlir::failure();
                 })))
               throw Error("kiln: cpu backend: cannot add -kiln-lower-to-linalg");
           });
  r.linalg_ms = millisecondsSince(start);
  r.linalg_ops = 0;
  module.walk([&](mlir::linalg::LinalgOp) { ++r.linalg_ops; });
  if (!options.dump_prefix.empty()) writeFile(options.dump_prefix + ".linalg.mlir", printModule(module));

  start = Clock::now();
  runStage(module, "lowering linalg to the LLVM dialect (-kiln-lower-to-llvm)", options,
           [&](mlir::OpPassManager& pm) { buildLowerToLLVMPipeline(pm, options.pipeline); });
  r.llvm_dialect_ms = millisecondsSince(start);

  start = Clock::now();
  std::string llvmIR;
  std::vector<uint8_t> object;
  try {
    object = compile_to_object(module, "graph", options.opt_level,
                               options.dump_prefix.empty() ? nullptr : &llvmIR);
  } catch (const Error& e) {
    std::string path = options.failure_prefix + ".failed.mlir";
    writeFile(path, printModule(module));
    throw Error(std::string(e.what()) + "\nthe LLVM-dialect IR is in " + path);
  }
  r.object_ms = millisecondsSince(start);
  if (!options.dump_prefix.empty()) writeFile(options.dump_prefix + ".ll", llvmIR);
  return object;
}

}  // namespace kiln::cpu
