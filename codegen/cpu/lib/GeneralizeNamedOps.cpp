// -kiln-generalize-named-ops: named linalg ops (but contractions, convolutions, fills) become linalg.generic.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/LinalgInterfaces.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNGENERALIZENAMEDOPS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

bool staysNamed(mlir::linalg::LinalgOp op) {
  return mlir::isa<mlir::linalg::GenericOp, mlir::linalg::FillOp>(op) ||
         mlir::linalg::isaContractionOpInterface(op) ||
         mlir::linalg::isaConvolutionOpInterface(op);
}

struct KilnGeneralizeNamedOps : impl::KilnGeneralizeNamedOpsBase<KilnGeneralizeNamedOps> {
  void runOnOperation() override {
    llvm::SmallVector<mlir::linalg::LinalgOp> named;
    getOperation().walk([&](mlir::linalg::LinalgOp op) {
      if (!staysNamed(op)) named.push_back(op);
    });
    mlir::IRRewriter rewriter(&getContext());
    for (mlir::linalg::LinalgOp op : named) {
      rewriter.setInsertionPoint(op);
      // Ops without a generic form (none among kiln's lowerings) stay as they are.
      (void)mlir::linalg::generalizeNamedOp(rewriter, op);
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
