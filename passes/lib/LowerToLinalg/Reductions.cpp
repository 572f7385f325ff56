// Lowers kiln's reductions (reduce_sum, reduce_max, argmax) to linalg.reduce
// and a two-output linalg.generic.
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
namespace {

Value maxScalars(OpBuilder& b, Location loc, Value lhs, Value rhs) {
  if (isa<FloatType>(lhs.getType())) return arith::MaximumFOp::create(b, loc, lhs, rhs);
  if (lhs.getType().isInteger(1)) return arith::OrIOp::create(b, loc, lhs, rhs);
  return arith::MaxSIOp::create(b, loc, lhs, rhs);
}

// linalg.reduce over the sorted axes, starting from `init` (0 or the lowest
// value), then tensor.expand_shape for keepdims.
template <typename OpTy, bool IsMax>
struct ReduceLowering : KilnLowering<OpTy> {
  using KilnLowering<OpTy>::KilnLowering;
  FailureOr<Value> lower(OpTy op, typename OpTy::Adaptor adaptor,
                         ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto in = op.getX().getType();
    SmallVector<int64_t> axes(op.getAxes());
    llvm::sort(axes);
    axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    if (axes.empty()) return adaptor.getX();
    SmallVector<int64_t> kept;
    for (int64_t d = 0; d < in.getRank(); ++d)
      if (!llvm::is_contained(axes, d)) kept.push_back(in.getDimSize(d));
    Type elem = in.getElementType();
    auto reducedType = RankedTensorType::get(kept, elem);
    Value start = IsMax ? lowestScalar(rewriter, loc, elem) : scalarConstant(rewriter, loc, elem, 0);
    Value init = filledTensor(rewriter, loc, reducedType, start);
    auto reduce = linalg::ReduceOp::create(
        rewriter, loc, ValueRange{adaptor.getX()}, ValueRange{init}, axes,
        [](OpBuilder& b, Location l, ValueRange args) {
          Value r = IsMax ? maxScalars(b, l, args[0], args[1]) : addScalars(b, l, args[0], args[1]);
          linalg::YieldOp::create(b, l, r);
        });
    return reshapeTensor(rewriter, loc, reduce.getResult(0), cast<RankedTensorType>(op.getType()));
  }
};

// One generic with outputs (running max, its index); the reduction keeps the
// larger value and, on ties, the smaller index, so the first maximum wins
// whatever the iteration order. NaN is larger than everything (NumPy: the
// index of the first NaN): a NaN is taken over any number, and over another
// NaN when earlier.
struct ArgmaxLowering : KilnLowering<ArgmaxOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(ArgmaxOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto in = op.getX().getType();
    auto out = cast<RankedTensorType>(op.getType());
    int64_t rank = in.getRank(), axis = op.getAxis();
    Type elem = in.getElementType();
    Value values = filledTensor(rewriter, loc, RankedTensorType::get(out.getShape(), elem),
                                lowestScalar(rewriter, loc, elem));
    Value indices = filledTensor(rewriter, loc, out, scalarConstant(rewriter, loc, out.getElementType(), 0));
    SmallVector<AffineExpr> outExprs;
    SmallVector<utils::IteratorType> iterators;
    for (int64_t d = 0; d < rank; ++d) {
      if (d != axis) outExprs.push_back(rewriter.getAffineDimExpr(d));
      iterators.push_back(d == axis ? utils::IteratorType::reduction : utils::IteratorType::parallel);
    }
    auto outMap = AffineMap::get(rank, 0, outExprs, rewriter.getContext());
    SmallVector<AffineMap> maps{rewriter.getMultiDimIdentityMap(rank), outMap, outMap};
    bool isFloat = isa<FloatType>(elem), boolean = elem.isInteger(1);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{values.getType(), out}, ValueRange{adaptor.getX()}, ValueRange{values, indices},
        maps, iterators, [&](OpBuilder& b, Location l, ValueRange args) {
          Value x = args[0], best = args[1], bestIndex = args[2];
          Value k = arith::IndexCastOp::create(b, l, b.getI32Type(), linalg::IndexOp::create(b, l, axis));
          Value greater, equal;
          if (isFloat) {
            greater = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, x, best);
            equal = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, x, best);
          } else {
            greater = arith::CmpIOp::create(b, l, boolean ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt,
                                            x, best);
            equal = arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, x, best);
          }
          Value earlier = arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, k, bestIndex);
          Value take = arith::OrIOp::create(b, l, greater, arith::AndIOp::create(b, l, equal, earlier));
          if (isFloat) {
            // best is NaN: only an earlier NaN; else a NaN x, or the ordered rule above.
            Value xNaN = arith::CmpFOp::create(b, l, arith::CmpFPredicate::UNO, x, x);
            Value bestNaN = arith::CmpFOp::create(b, l, arith::CmpFPredicate::UNO, best, best);
            Value earlierNaN = arith::AndIOp::create(b, l, xNaN, earlier);
            Value nanOrOrdered = arith::OrIOp::create(b, l, xNaN, take);
            take = arith::SelectOp::create(b, l, bestNaN, earlierNaN, nanOrOrdered);
          }
          linalg::YieldOp::create(b, l, ValueRange{arith::SelectOp::create(b, l, take, x, best),
                                                   arith::SelectOp::create(b, l, take, k, bestIndex)});
        });
    return generic.getResult(1);
  }
};

// The product of the selected sizes: constants, times tensor.dim of x for dynamic ones.
struct DimSizeLowering : KilnLowering<DimSizeOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(DimSizeOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto in = op.getX().getType();
    auto type = cast<RankedTensorType>(op.getType());
    int64_t product = 1;
    for (int64_t d : op.getDims())
      if (!in.isDynamicDim(d)) product *= in.getDimSize(d);
    Value count = indexConstant(rewriter, loc, product);
    for (int64_t d : op.getDims())
      if (in.isDynamicDim(d))
        count = arith::MulIOp::create(rewriter, loc, count, tensor::DimOp::create(rewriter, loc, adaptor.getX(), d));
    Value scalar = arith::IndexCastOp::create(rewriter, loc, rewriter.getI64Type(), count);
    scalar = convertScalar(rewriter, loc, scalar, type.getElementType());
    return tensor::FromElementsOp::create(rewriter, loc, type, ValueRange{scalar}).getResult();
  }
};

}  // namespace

void populateReductionLoweringPatterns(RewritePatternSet& patterns) {
  patterns.add<ReduceLowering<ReduceSumOp, false>, ReduceLowering<ReduceMaxOp, true>, ArgmaxLowering, DimSizeLowering>(
      patterns.getContext());
}

}  // namespace kiln::passes
