// -kiln-lower-to-linalg: lowers every kiln op to linalg, tensor, arith, math and scf on tensors.
#include "LoweringPatterns.h"
#include "kiln/ir/KilnCollective.h"
#include "kiln/passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNLOWERTOLINALG
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;

namespace kiln::passes {
namespace {

// kiln.fusion regions (made by the fusion pass) are lowered by inlining their
// body in place of the op: block arguments, if any, stand for the operands and
// the kiln.yield operands for the results.
LogicalResult inlineFusionRegions(func::FuncOp func) {
  SmallVector<Operation*> fusions;
  func.walk([&](kiln::ir::FusionOp op) { fusions.push_back(op); });
  IRRewriter rewriter(func.getContext());
  for (Operation* fusion : fusions) {  // post-order: inner regions first
    if (fusion->getNumRegions() != 1 || !fusion->getRegion(0).hasOneBlock())
      return fusion->emitError("kiln-lower-to-linalg: expected kiln.fusion with one single-block region");
    Block& body = fusion->getRegion(0).front();
    Operation* yield = body.getTerminator();
    if (!yield || !isa<kiln::ir::YieldOp>(yield) ||
        yield->getNumOperands() != fusion->getNumResults())
      return fusion->emitError("kiln-lower-to-linalg: kiln.fusion must end in a kiln.yield of its results");
    SmallVector<Value> arguments;
    if (body.getNumArguments() != 0) {
      if (body.getNumArguments() != fusion->getNumOperands())
        return fusion->emitError("kiln-lower-to-linalg: kiln.fusion block arguments do not match its operands");
      arguments.assign(fusion->operand_begin(), fusion->operand_end());
    }
    rewriter.inlineBlockBefore(&body, fusion, arguments);
    rewriter.replaceOp(fusion, yield->getOperands());
    rewriter.eraseOp(yield);
  }
  return success();
}

// Errors the patterns cannot report well, given before any rewriting. When
// some kiln value has a dynamic dimension, the batch size is computed at the
// function's entry from the first argument with a dynamic dimension, and (with
// `batchChecks`) every other dynamic argument dimension is asserted to equal it.
LogicalResult checkLowerable(func::FuncOp func, bool batchChecks) {
  bool dynamic = false;
  WalkResult result = func.walk([&](Operation* op) {
    if (!isa_and_nonnull<kiln::ir::KilnDialect>(op->getDialect())) return WalkResult::advance();
    if (isa<kiln::ir::GradOp>(op)) {
      op->emitError("kiln-lower-to-linalg: 'kiln.grad' must be removed by -kiln-autodiff before lowering");
      return WalkResult::interrupt();
    }
    for (Type t : llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes())) {
      auto ranked = dyn_cast<RankedTensorType>(t);
      if (!ranked) {
        op->emitError("kiln-lower-to-linalg: '") << op->getName() << "' needs ranked tensors, got " << t;
        return WalkResult::interrupt();
      }
      dynamic |= !ranked.hasStaticShape();
    }
    return WalkResult::advance();
  });
  if (result.wasInterrupted()) return failure();
  if (!dynamic || func.isExternal()) return success();
  for (BlockArgument arg : func.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type || type.hasStaticShape()) continue;
    int64_t d = 0;
    while (!type.isDynamicDim(d)) ++d;
    OpBuilder b = OpBuilder::atBlockBegin(&func.front());
    Operation* size = tensor::DimOp::create(b, arg.getLoc(), arg, d);
    size->setAttr(kBatchSizeAttr, b.getUnitAttr());
    // Every other dynamic argument dimension must be that size (kiln's convention).
    for (BlockArgument other : func.getArguments()) {
      if (!batchChecks) break;
      auto otherType = dyn_cast<RankedTensorType>(other.getType());
      if (!otherType) continue;
      for (int64_t od = 0; od < otherType.getRank(); ++od) {
        if (!otherType.isDynamicDim(od) || (other == arg && od == d)) continue;
        Value extent = tensor::DimOp::create(b, other.getLoc(), other, od);
        Value same = arith::CmpIOp::create(b, other.getLoc(), arith::CmpIPredicate::eq, extent, size->getResult(0));
        cf::AssertOp::create(b, other.getLoc(), same,
                             "kiln: every dynamic dimension must be the batch size (argument " +
                                 std::to_string(other.getArgNumber()) + ", dimension " + std::to_string(od) + ")");
      }
    }
    return success();
  }
  return func.emitError("kiln-lower-to-linalg: dynamic dimensions need an argument with a dynamic (batch) "
                        "dimension to take their size from");
}

class KilnLowerToLinalg : public impl::KilnLowerToLinalgBase<KilnLowerToLinalg> {
 public:
  using KilnLowerToLinalgBase::KilnLowerToLinalgBase;
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    // Regions of one iteration space become one kernel each; the others are
    // inlined, their ops named after their region.
    if (failed(checkLowerable(func, batchChecks)) || failed(lowerFusionKernels(func)) || failed(inlineFusionRegions(func)))
      return signalPassFailure();
    MLIRContext* ctx = &getContext();
    RewritePatternSet patterns(ctx);
    populateElementwiseLoweringPatterns(patterns);
    populateShapeOpLoweringPatterns(patterns);
    populateReductionLoweringPatterns(patterns);
    populateContractionLoweringPatterns(patterns, convCalls);
    populateGatherScatterRngLoweringPatterns(patterns);
    ConversionTarget target(*ctx);
    target.addIllegalDialect<ir::KilnDialect>();
    // Stays for the backend: the cpu backend's -kiln-start-collectives turns it into a call.
    target.addLegalOp<ir::CollectiveStartOp>();
    target.addLegalDialect<linalg::LinalgDialect, tensor::TensorDialect, arith::ArithDialect, math::MathDialect,
                           scf::SCFDialect, func::FuncDialect, cf::ControlFlowDialect>();
    // Any kiln op left is reported by the driver: "failed to legalize operation 'kiln.<op>'".
    if (failed(applyPartialConversion(func, target, std::move(patterns)))) return signalPassFailure();
    func.walk([](tensor::DimOp dim) { dim->removeAttr(kBatchSizeAttr); });
  }
};

}  // namespace
}  // namespace kiln::passes
