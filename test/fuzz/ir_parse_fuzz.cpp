// libFuzzer target: kiln-opt's parser entry (MLIR's parser and verifier with
// the kiln dialect and the dialects kiln-opt reads) on any text. Invalid IR
// must be a diagnostic; a crash, an assertion or a sanitizer report is a bug.
#include <cstdint>

#include "kiln/ir/KilnDialect.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mlir::DialectRegistry* registry = [] {
    auto* r = new mlir::DialectRegistry;
    r->insert<kiln::ir::KilnDialect, mlir::func::FuncDialect, mlir::arith::ArithDialect,
              mlir::linalg::LinalgDialect, mlir::math::MathDialect, mlir::scf::SCFDialect,
              mlir::tensor::TensorDialect>();
    return r;
  }();
  // A fresh context per input, so that a crash reproduces from its input alone.
  mlir::MLIRContext context(*registry, mlir::MLIRContext::Threading::DISABLED);
  mlir::ScopedDiagnosticHandler quiet(&context, [](mlir::Diagnostic&) { return mlir::success(); });
  // Like kiln-opt reading a file: a null-terminated copy (MLIR's lexer relies on the
  // terminator), parsed, then verified (the parser's default).
  llvm::SourceMgr sources;
  sources.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(reinterpret_cast<const char*>(data), size),
                                           "fuzz-input.mlir"),
      llvm::SMLoc());
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceFile<mlir::ModuleOp>(sources, &context);
  return 0;
}
