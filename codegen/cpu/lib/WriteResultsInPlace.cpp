// -kiln-write-results-in-place: a result buffer copied into its out-param becomes the out-param.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNWRITERESULTSINPLACE
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

struct KilnWriteResultsInPlace : impl::KilnWriteResultsInPlaceBase<KilnWriteResultsInPlace> {
  void runOnOperation() override {
    mlir::func::FuncOp func = getOperation();
    if (func.isExternal()) return;
    mlir::Block& entry = func.front();
    llvm::SmallVector<mlir::memref::CopyOp> copies;
    for (mlir::Operation& op : entry) {
      auto copy = mlir::dyn_cast<mlir::memref::CopyOp>(op);
      if (!copy) continue;
      auto out = mlir::dyn_cast<mlir::BlockArgument>(copy.getTarget());
      if (!out || out.getOwner() != &entry || !out.hasOneUse()) continue;
      auto alloc = copy.getSource().getDefiningOp<mlir::memref::AllocOp>();
      if (!alloc || alloc->getBlock() != &entry || alloc.getType() != out.getType()) continue;
      // The copy must be the buffer's last use: nothing reads it afterwards.
      bool usedLater = llvm::any_of(alloc->getUsers(), [&](mlir::Operation* user) {
        mlir::Operation* inEntry = entry.findAncestorOpInBlock(*user);
        return user != copy && (!inEntry || copy->isBeforeInBlock(inEntry));
      });
      if (!usedLater) copies.push_back(copy);
    }
    for (mlir::memref::CopyOp copy : copies) {
      mlir::Operation* alloc = copy.getSource().getDefiningOp();
      mlir::Value out = copy.getTarget();
      copy->erase();
      alloc->getResult(0).replaceAllUsesWith(out);
      alloc->erase();
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
