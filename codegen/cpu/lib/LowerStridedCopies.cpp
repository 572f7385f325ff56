// -kiln-lower-strided-copies: memref.copy with a non-identity layout becomes linalg.copy.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNLOWERSTRIDEDCOPIES
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

bool hasIdentityLayout(mlir::Value memref) {
  auto type = mlir::dyn_cast<mlir::MemRefType>(memref.getType());
  return type && type.getLayout().isIdentity();
}

struct KilnLowerStridedCopies : impl::KilnLowerStridedCopiesBase<KilnLowerStridedCopies> {
  void runOnOperation() override {
    llvm::SmallVector<mlir::memref::CopyOp> copies;
    getOperation().walk([&](mlir::memref::CopyOp copy) {
      if (!hasIdentityLayout(copy.getSource()) || !hasIdentityLayout(copy.getTarget()))
        copies.push_back(copy);
    });
    mlir::IRRewriter rewriter(&getContext());
    for (mlir::memref::CopyOp copy : copies) {
      rewriter.setInsertionPoint(copy);
      mlir::linalg::CopyOp::create(rewriter, copy.getLoc(), copy.getSource(), copy.getTarget());
      rewriter.eraseOp(copy);
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
