// -kiln-clone-shared-fills: a linalg.fill that is the init of several ops is cloned per use.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Builders.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNCLONESHAREDFILLS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

struct KilnCloneSharedFills : impl::KilnCloneSharedFillsBase<KilnCloneSharedFills> {
  void runOnOperation() override {
    llvm::SmallVector<mlir::linalg::FillOp> fills;
    getOperation().walk([&](mlir::linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics()) fills.push_back(fill);
    });
    for (mlir::linalg::FillOp fill : fills) {
      mlir::Value result = fill->getResult(0);
      bool first = true;
      for (mlir::OpOperand& use : llvm::make_early_inc_range(result.getUses())) {
        auto consumer = mlir::dyn_cast<mlir::DestinationStyleOpInterface>(use.getOwner());
        if (!consumer || !consumer.isDpsInit(&use)) continue;
        if (first) {
          first = false;
          continue;
        }
        mlir::OpBuilder b(consumer);
        use.set(b.clone(*fill)->getResult(0));
      }
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
