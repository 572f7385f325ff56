// -kiln-widen-bool-buffers: an i1 tensor that one kernel (a linalg.generic) writes and
// others read, e.g. the relu mask the forward keeps for the backward, is stored as i8:
// the writer yields arith.extui, each reading linalg.generic truncates its element back
// to i1. In memory an i1 element takes a byte, but a vector of i1 is bit-packed, so
// LLVM's vectorizer leaves loops loading or storing i1 scalar (the masked backward
// epilogues ran at ~1 element per ns); i8 loads and stores vectorize. Other readers
// (reshapes, returns, library calls) get an i1 copy. Runs on tensors, before
// bufferization.
#include "kiln/codegen/cpu.h"
#include "kiln/passes/LibraryCalls.h"
#include "kiln/passes/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNWIDENBOOLBUFFERS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

bool isBoolTensor(Type t) {
  auto type = dyn_cast<RankedTensorType>(t);
  return type && type.getElementType().isInteger(1);
}

// A generic whose body kiln's library-call passes match as a whole: left as it is.
bool isLibraryGeneric(linalg::GenericOp op) {
  return op->hasAttr(passes::kPool2DGradAttr) || op->hasAttr(passes::kConvGradFilterAttr);
}

// `op`'s result `index` (i1) can be written as i8: an elementwise-style generic whose
// init for it is not read by the body.
// A reader that can take the i8 element and truncate it.
bool readsWide(OpOperand& use) {
  auto reader = dyn_cast<linalg::GenericOp>(use.getOwner());
  return reader && reader.hasPureTensorSemantics() && !isLibraryGeneric(reader) && reader.isDpsInput(&use);
}

// `op`'s result `index` (i1) is better written as i8: an elementwise-style generic whose
// init for it is not read by the body, with a generic among its readers.
bool widenable(linalg::GenericOp op, unsigned index) {
  if (!op.hasPureTensorSemantics() || isLibraryGeneric(op)) return false;
  OpOperand* init = op.getDpsInitOperand(index);
  if (!op.getMatchingBlockArgument(init).use_empty()) return false;
  return llvm::any_of(op->getResult(index).getUses(), [](OpOperand& use) { return readsWide(use); });
}

// tensor<...xi8> of the shape of `like` (an i1 tensor), as tensor.empty.
Value emptyLike(OpBuilder& b, Location loc, Value like, Type elem) {
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, like);
  return tensor::EmptyOp::create(b, loc, sizes, elem);
}

// The i1 copy of an i8 tensor, for readers that are not generics.
Value narrowed(OpBuilder& b, Location loc, Value wide) {
  auto type = cast<RankedTensorType>(wide.getType());
  Value init = emptyLike(b, loc, wide, b.getI1Type());
  AffineMap id = b.getMultiDimIdentityMap(type.getRank());
  SmallVector<utils::IteratorType> iterators(type.getRank(), utils::IteratorType::parallel);
  auto copy = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, ValueRange{wide}, ValueRange{init}, ArrayRef<AffineMap>{id, id}, iterators,
      [](OpBuilder& nb, Location nloc, ValueRange args) {
        Value bit = arith::TruncIOp::create(nb, nloc, nb.getI1Type(), args[0]);
        linalg::YieldOp::create(nb, nloc, bit);
      });
  return copy.getResult(0);
}

void widen(linalg::GenericOp op, unsigned index) {
  MLIRContext* ctx = op->getContext();
  Type i8 = IntegerType::get(ctx, 8), i1 = IntegerType::get(ctx, 1);
  Location loc = op.getLoc();
  OpResult result = op->getResult(index);
  auto wideType = cast<RankedTensorType>(result.getType()).clone(i8);

  // The writer: an i8 init, its yield widened.
  OpBuilder b(op);
  OpOperand* init = op.getDpsInitOperand(index);
  init->set(emptyLike(b, loc, init->get(), i8));
  op.getMatchingBlockArgument(init).setType(i8);
  auto yield = cast<linalg::YieldOp>(op.getBody()->getTerminator());
  b.setInsertionPoint(yield);
  yield->setOperand(index, arith::ExtUIOp::create(b, loc, i8, yield->getOperand(index)));
  result.setType(wideType);

  // The readers.
  Value copy;
  for (OpOperand& use : llvm::make_early_inc_range(result.getUses())) {
    if (readsWide(use)) {
      auto reader = cast<linalg::GenericOp>(use.getOwner());
      BlockArgument arg = reader.getMatchingBlockArgument(&use);
      arg.setType(i8);
      OpBuilder inner = OpBuilder::atBlockBegin(reader.getBody());
      Value bit = arith::TruncIOp::create(inner, loc, i1, arg);
      arg.replaceAllUsesExcept(bit, bit.getDefiningOp());
      continue;
    }
    if (!copy) {
      OpBuilder after(op->getContext());
      after.setInsertionPointAfter(op);
      copy = narrowed(after, loc, result);
    }
    use.set(copy);
  }
}

struct WidenBoolBuffersPass : impl::KilnWidenBoolBuffersBase<WidenBoolBuffersPass> {
  void runOnOperation() override {
    SmallVector<std::pair<linalg::GenericOp, unsigned>> work;
    getOperation().walk([&](linalg::GenericOp op) {
      for (OpResult r : op->getResults())
        if (isBoolTensor(r.getType()) && widenable(op, r.getResultNumber()))
          work.push_back({op, r.getResultNumber()});
    });
    for (auto& [op, index] : work) widen(op, index);
  }
};

}  // namespace
}  // namespace kiln::cpu
