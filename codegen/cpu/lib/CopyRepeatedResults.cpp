// -kiln-copy-repeated-results: a tensor returned twice gets a linalg.copy for its second result.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNCOPYREPEATEDRESULTS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

struct KilnCopyRepeatedResults : impl::KilnCopyRepeatedResultsBase<KilnCopyRepeatedResults> {
  void runOnOperation() override {
    getOperation().walk([&](mlir::func::ReturnOp ret) {
      llvm::SmallPtrSet<mlir::Value, 8> seen;
      mlir::OpBuilder b(ret);
      for (mlir::OpOperand& operand : ret->getOpOperands()) {
        mlir::Value value = operand.get();
        auto type = mlir::dyn_cast<mlir::RankedTensorType>(value.getType());
        if (!type || seen.insert(value).second) continue;
        mlir::Value empty = mlir::tensor::EmptyOp::create(
            b, ret.getLoc(), mlir::tensor::getMixedSizes(b, ret.getLoc(), value), type.getElementType());
        auto copy = mlir::linalg::CopyOp::create(b, ret.getLoc(), value, empty);
        operand.set(copy->getResult(0));
      }
    });
  }
};

}  // namespace
}  // namespace kiln::cpu
