// The frontend's MLIR side: kiln's one MLIRContext, its lock, and kiln IR emitted from a GraphSpec.
#pragma once
#include <mutex>
#include <string>

#include "graph.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::detail {

// kiln's MLIRContext is single-threaded (no locks in its uniquers): everything
// that touches it (emitting, passes, the interpreter) holds mlir_mutex().
std::recursive_mutex& mlir_mutex();
mlir::MLIRContext& mlir_context();

// Collects diagnostics while it lives, so failures become kiln::Error with the IR's words.
struct DiagnosticCollector {
  std::string text;
  mlir::ScopedDiagnosticHandler handler;
  explicit DiagnosticCollector(mlir::MLIRContext& ctx);
};

// `g` as a module holding func.func @graph: its arguments, then its ops in
// order; its results are g's outputs, then one status (tensor<2xi64>) per
// kiln.check_range. With `mark_batch`, arguments carry the marks
// -kiln-generalize-batch reads (candidate level, state). Shapes are g's, concrete.
mlir::OwningOpRef<mlir::ModuleOp> emit_module(const GraphSpec& g, bool mark_batch);

}  // namespace kiln::detail
