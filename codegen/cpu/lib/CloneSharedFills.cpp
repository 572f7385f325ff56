// -kiln-clone-shared-fills: a linalg.fill or tensor.empty that is the init of several ops is cloned per use.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNCLONESHAREDFILLS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

// Every use of `op`'s result as the init (`outs`) of a destination-style op,
// after the first, gets its own clone of `op`, made right before that consumer (at its location).
void cloneForEachInitUse(mlir::Operation* op) {
  bool first = true;
  for (mlir::OpOperand& use : llvm::make_early_inc_range(op->getResult(0).getUses())) {
    auto consumer = mlir::dyn_cast<mlir::DestinationStyleOpInterface>(use.getOwner());
    if (!consumer || !consumer.isDpsInit(&use)) continue;
    if (first) {
      first = false;
      continue;
    }
    mlir::OpBuilder b(consumer);
    mlir::Operation* clone = b.clone(*op);
    clone->setLoc(consumer->getLoc());  // the consumer's line, in dumps and kernel names
    use.set(clone->getResult(0));
  }
}

struct KilnCloneSharedFills : impl::KilnCloneSharedFillsBase<KilnCloneSharedFills> {
  void runOnOperation() override {
    llvm::SmallVector<mlir::linalg::FillOp> fills;
    getOperation().walk([&](mlir::linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics()) fills.push_back(fill);
    });
    for (mlir::linalg::FillOp fill : fills) cloneForEachInitUse(fill);
    // Then the empties, fills' inits included (a cloned fill still writes into its original's).
    llvm::SmallVector<mlir::tensor::EmptyOp> empties;
    getOperation().walk([&](mlir::tensor::EmptyOp empty) { empties.push_back(empty); });
    for (mlir::tensor::EmptyOp empty : empties) cloneForEachInitUse(empty);
  }
};

}  // namespace
}  // namespace kiln::cpu
