// The named pass pipelines of kiln.
#include "kiln/passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace kiln::passes {

void buildKilnFrontendPipeline(mlir::OpPassManager& pm) {
  pm.addNestedPass<mlir::func::FuncOp>(createKilnAutodiff());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
}

void registerKilnPipelines() {
  registerKilnPasses();
  mlir::PassPipelineRegistration<>("kiln-frontend-pipeline",
                                   "autodiff, canonicalize and CSE, as run before every backend",
                                   buildKilnFrontendPipeline);
}

}  // namespace kiln::passes
