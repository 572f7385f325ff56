// kiln's passes and pipelines.
#pragma once

#include <memory>

#include "kiln/ir/KilnDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace kiln::passes {

#define GEN_PASS_DECL
#include "kiln/passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/passes/Passes.h.inc"

// The pipeline the frontend runs before a backend: autodiff, inline kiln.custom,
// canonicalize, CSE.
void buildKilnFrontendPipeline(mlir::OpPassManager& pm);
// Registers the passes above and the named pipeline `kiln-frontend-pipeline`.
void registerKilnPipelines();

}  // namespace kiln::passes
