// The named pass pipelines of kiln.
#include "kiln/passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace kiln::passes {

void buildKilnFrontendPipeline(mlir::OpPassManager& pm) {
  pm.addNestedPass<mlir::func::FuncOp>(createKilnAutodiff());
  // kiln.custom ops have served autodiff (their backward regions): inline their forwards.
  pm.addNestedPass<mlir::func::FuncOp>(createKilnInlineCustom());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
}

void registerKilnPipelines() {
  registerKilnPasses();
  mlir::PassPipelineRegistration<>("kiln-frontend-pipeline",
                                   "autodiff, custom-op inlining, canonicalize and CSE, as run before every backend",
                                   buildKilnFrontendPipeline);
}

}  // namespace kiln::passes
