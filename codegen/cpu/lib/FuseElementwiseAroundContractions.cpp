// -kiln-fuse-elementwise: upstream linalg elementwise fusion, except that contractions stay whole.
#include "kiln/codegen/cpu.h"
#include "kiln/passes/LibraryCalls.h"
#include "kiln/passes/Passes.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNFUSEELEMENTWISE
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// Contractions, and the marked generics -kiln-matmul-to-blas calls a library for
// (a convolution's filter gradient, a pooling gradient).
bool isContraction(Operation* op) {
  auto linalgOp = dyn_cast_or_null<linalg::LinalgOp>(op);
  return linalgOp && (linalg::isaContractionOpInterface(linalgOp) || passes::isMarkedLibraryCall(op));
}

// Whether fusing `producer` into `consumer` keeps kiln's kernels whole: a
// region lowered as one kernel (kernelOf) takes no other op and goes into
// none; other ops fuse by upstream's rule.
bool sameKernel(Operation* producer, Operation* consumer) {
  return passes::kernelOf(producer) == passes::kernelOf(consumer);
}

struct KilnFuseElementwise : impl::KilnFuseElementwiseBase<KilnFuseElementwise> {
  void runOnOperation() override {
    MLIRContext* ctx = &getContext();
    // Upstream's rule (a producer with one use), within one kernel (see
    // sameKernel: the fusion pass decided which ops form a kernel, this pass
    // does not merge two of them), and never into or out of a
    // contraction: folding a reshape into a matmul would turn it into a
    // generic contraction loop that no GEMM pass recognizes.
    linalg::ControlFusionFn control = [](OpOperand* fused) {
      Operation* producer = fused->get().getDefiningOp();
      Operation* consumer = fused->getOwner();
      return producer && producer->hasOneUse() && !isContraction(producer) && !isContraction(consumer) &&
             sameKernel(producer, consumer);
    };
    RewritePatternSet patterns(ctx);
    linalg::populateElementwiseOpsFusionPatterns(patterns, control);
    linalg::populateFoldReshapeOpsByExpansionPatterns(patterns, control);
    tensor::populateBubbleUpExpandShapePatterns(patterns);
    affine::AffineApplyOp::getCanonicalizationPatterns(patterns, ctx);
    linalg::GenericOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    ctx->getLoadedDialect<linalg::LinalgDialect>()->getCanonicalizationPatterns(patterns);
    linalg::populateConstantFoldLinalgOperations(patterns, control);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     GreedyRewriteConfig().setUseTopDownTraversal())))
      return signalPassFailure();
  }
};

}  // namespace
}  // namespace kiln::cpu
