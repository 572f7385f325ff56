// The named pass pipelines of kiln.
#include "kiln/passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace kiln::passes {

void buildKilnFrontendPipeline(mlir::OpPassManager& pm, bool batchMatmuls) {
  pm.addNestedPass<mlir::func::FuncOp>(createKilnAutodiff());
  // kiln.custom ops have served autodiff (their backward regions): inline their forwards.
  pm.addNestedPass<mlir::func::FuncOp>(createKilnInlineCustom());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  if (!batchMatmuls) return;
  // After CSE (one value per weight and step input); before the backends' fusion.
  pm.addNestedPass<mlir::func::FuncOp>(createKilnBatchMatmuls());
  pm.addPass(mlir::createCSEPass());  // stacks of the same operands (a step's gradient in dW and dU)
}

void registerKilnPipelines() {
  registerKilnPasses();
  mlir::PassPipelineRegistration<>("kiln-frontend-pipeline",
                                   "autodiff, custom-op inlining, canonicalize and CSE, matmul batching, as run before every backend",
                                   [](mlir::OpPassManager& pm) { buildKilnFrontendPipeline(pm); });
}

}  // namespace kiln::passes
