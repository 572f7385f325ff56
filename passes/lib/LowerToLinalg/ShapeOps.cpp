// Lowers kiln's shape and data-movement ops (broadcast_to, reshape, transpose,
// slice, pad, reverse, concat) to linalg and tensor ops.
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
namespace {

Value forward(OpBuilder&, Location, ValueRange args) { return args[0]; }

// numpy broadcasting: a linalg.generic reading x with constant 0 for its
// stretched (size-1) dimensions.
struct BroadcastToLowering : KilnLowering<BroadcastToOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(BroadcastToOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    auto in = op.getX().getType();
    auto out = op.getType();
    if (in == out) return adaptor.getX();
    int64_t offset = out.getRank() - in.getRank();
    SmallVector<AffineExpr> exprs;
    for (int64_t d = 0; d < in.getRank(); ++d) {
      bool stretched = in.getDimSize(d) == 1 && out.getDimSize(offset + d) != 1;
      exprs.push_back(stretched ? rewriter.getAffineConstantExpr(0) : rewriter.getAffineDimExpr(offset + d));
    }
    auto map = AffineMap::get(out.getRank(), 0, exprs, rewriter.getContext());
    return buildParallelGeneric(rewriter, op.getLoc(), out, adaptor.getX(), {map}, forward);
  }
};

struct ReshapeLowering : KilnLowering<ReshapeOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(ReshapeOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    return reshapeTensor(rewriter, op.getLoc(), adaptor.getX(), op.getType());
  }
};

struct TransposeLowering : KilnLowering<TransposeOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(TransposeOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    Value init = emptyTensor(rewriter, op.getLoc(), type);
    return linalg::TransposeOp::create(rewriter, op.getLoc(), adaptor.getX(), init, op.getPermutation())
        .getResult()[0];
  }
};

// x[start:limit:step] is a strided tensor.extract_slice.
struct SliceLowering : KilnLowering<SliceOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(SliceOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    return tensor::ExtractSliceOp::create(rewriter, op.getLoc(), type, adaptor.getX(),
                                          indexAttrs(rewriter, op.getStart()),
                                          mixedSizes(rewriter, type), indexAttrs(rewriter, op.getStep()))
        .getResult();
  }
};

// Edge padding is tensor.pad; interior padding fills the result with the
// value and inserts x with stride interior + 1.
struct PadLowering : KilnLowering<PadOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(PadOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    Value value = scalarConstant(rewriter, loc, type.getElementType(), op.getValue().convertToDouble());
    if (llvm::all_of(op.getInterior(), [](int64_t i) { return i == 0; }))
      return tensor::PadOp::create(rewriter, loc, type, adaptor.getX(), indexAttrs(rewriter, op.getLow()),
                                   indexAttrs(rewriter, op.getHigh()), value)
          .getResult();
    SmallVector<int64_t> strides;
    for (int64_t i : op.getInterior()) strides.push_back(i + 1);
    Value filled = filledTensor(rewriter, loc, type, value);
    return tensor::InsertSliceOp::create(rewriter, loc, adaptor.getX(), filled, indexAttrs(rewriter, op.getLow()),
                                         mixedSizes(rewriter, op.getX().getType()),
                                         indexAttrs(rewriter, strides))
        .getResult();
  }
};

// A linalg.generic reading x at (size - 1 - i) along the reversed dimensions.
struct ReverseLowering : KilnLowering<ReverseOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(ReverseOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    auto type = op.getType();
    for (int64_t d : op.getDimensions())
      if (type.isDynamicDim(d)) return rewriter.notifyMatchFailure(op, "reversing a dynamic dimension");
    SmallVector<AffineExpr> exprs;
    for (int64_t d = 0; d < type.getRank(); ++d) {
      AffineExpr i = rewriter.getAffineDimExpr(d);
      exprs.push_back(llvm::is_contained(op.getDimensions(), d) ? type.getDimSize(d) - 1 - i : i);
    }
    auto map = AffineMap::get(type.getRank(), 0, exprs, rewriter.getContext());
    return buildParallelGeneric(rewriter, op.getLoc(), type, adaptor.getX(), {map}, forward);
  }
};

// Each input inserted at its offset along `axis` of a tensor.empty.
struct ConcatLowering : KilnLowering<ConcatOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(ConcatOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    if (adaptor.getInputs().size() == 1) return adaptor.getInputs()[0];
    auto type = cast<RankedTensorType>(op.getType());
    int64_t axis = op.getAxis();
    if (type.isDynamicDim(axis)) return rewriter.notifyMatchFailure(op, "concatenating along a dynamic dimension");
    Value result = emptyTensor(rewriter, op.getLoc(), type);
    SmallVector<int64_t> offsets(type.getRank(), 0), strides(type.getRank(), 1);
    for (Value input : adaptor.getInputs()) {
      auto inputType = tensorType(input);
      result = tensor::InsertSliceOp::create(rewriter, op.getLoc(), input, result, indexAttrs(rewriter, offsets),
                                             mixedSizes(rewriter, inputType), indexAttrs(rewriter, strides));
      offsets[axis] += inputType.getDimSize(axis);
    }
    return result;
  }
};

}  // namespace

void populateShapeOpLoweringPatterns(RewritePatternSet& patterns) {
  patterns.add<BroadcastToLowering, ReshapeLowering, TransposeLowering, SliceLowering, PadLowering,
               ReverseLowering, ConcatLowering>(patterns.getContext());
}

}  // namespace kiln::passes
