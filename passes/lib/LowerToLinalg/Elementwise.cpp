// Lowers kiln's elementwise ops (unary, binary, compare, select, cast) and the
// constant and iota generators to linalg.generic with arith/math bodies.
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
namespace {

// The scalar computation of one elementwise op. Returns a null Value (and
// builds nothing) when the op has no native integer form: the pattern then
// computes in f64 and converts back, as the interpreter does.
using ScalarFn = Value (*)(OpBuilder&, Location, ValueRange);

bool isFloat(Value v) { return isa<FloatType>(v.getType()); }

Value cmpGreater(OpBuilder& b, Location loc, Value x, Value y) {
  if (isFloat(x)) return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, y);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sgt, x, y);
}

Value cmpLess(OpBuilder& b, Location loc, Value x, Value y) {
  if (isFloat(x)) return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, x, y);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, x, y);
}

Value zeroLike(OpBuilder& b, Location loc, Value x) { return scalarConstant(b, loc, x.getType(), 0); }

// Unary scalar functions, one per op.
Value negFn(OpBuilder& b, Location loc, ValueRange a) {
  if (isFloat(a[0])) return arith::NegFOp::create(b, loc, a[0]);
  return arith::SubIOp::create(b, loc, zeroLike(b, loc, a[0]), a[0]);
}
template <typename MathOp>
Value floatOnlyFn(OpBuilder& b, Location loc, ValueRange a) {
  if (!isFloat(a[0])) return {};
  return MathOp::create(b, loc, a[0]);
}
Value sigmoidFn(OpBuilder& b, Location loc, ValueRange a) {
  if (!isFloat(a[0])) return {};
  Value one = scalarConstant(b, loc, a[0].getType(), 1.0);
  Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, a[0]));
  return arith::DivFOp::create(b, loc, one, arith::AddFOp::create(b, loc, one, e));
}
// x > 0 ? x : 0, with NaN passed through (NumPy's maximum(x, 0)): the unordered
// `ugt` is true for NaN.
Value reluFn(OpBuilder& b, Location loc, ValueRange a) {
  Value zero = zeroLike(b, loc, a[0]);
  Value keep = isFloat(a[0]) ? arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UGT, a[0], zero).getResult()
                             : cmpGreater(b, loc, a[0], zero);
  return arith::SelectOp::create(b, loc, keep, a[0], zero);
}
Value absFn(OpBuilder& b, Location loc, ValueRange a) {
  if (isFloat(a[0])) return math::AbsFOp::create(b, loc, a[0]);
  // select rather than math.absi, which math-to-libm does not handle.
  Value negated = arith::SubIOp::create(b, loc, zeroLike(b, loc, a[0]), a[0]);
  return arith::SelectOp::create(b, loc, cmpLess(b, loc, a[0], zeroLike(b, loc, a[0])), negated, a[0]);
}
Value signFn(OpBuilder& b, Location loc, ValueRange a) {
  Type t = a[0].getType();
  Value zero = scalarConstant(b, loc, t, 0), one = scalarConstant(b, loc, t, 1), minusOne = scalarConstant(b, loc, t, -1);
  Value negOrZero = arith::SelectOp::create(b, loc, cmpLess(b, loc, a[0], zero), minusOne, zero);
  return arith::SelectOp::create(b, loc, cmpGreater(b, loc, a[0], zero), one, negOrZero);
}

// Binary scalar functions.
template <typename FloatOp, typename IntOp>
Value arithFn(OpBuilder& b, Location loc, ValueRange a) {
  if (isFloat(a[0])) return FloatOp::create(b, loc, a[0], a[1]);
  return IntOp::create(b, loc, a[0], a[1]);
}
// Integer division truncates toward zero and never traps (NumPy's answers for
// the cases C leaves undefined): x / 0 = 0, and MIN / -1 = MIN (wraps). The
// divisor is made safe first, so that no lane of a vectorized loop divides by
// 0 or -1: q = x / (d == 0 || d == -1 ? 1 : d), then d == -1 gives 0 - x
// (wrapping) and d == 0 gives 0.
Value divFn(OpBuilder& b, Location loc, ValueRange a) {
  if (isFloat(a[0])) return arith::DivFOp::create(b, loc, a[0], a[1]);
  Type t = a[0].getType();
  Value zero = scalarConstant(b, loc, t, 0), one = scalarConstant(b, loc, t, 1);
  Value minusOne = scalarConstant(b, loc, t, -1);
  Value byZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, a[1], zero);
  Value byMinusOne = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, a[1], minusOne);
  Value safe = arith::SelectOp::create(b, loc, arith::OrIOp::create(b, loc, byZero, byMinusOne), one, a[1]);
  Value q = arith::DivSIOp::create(b, loc, a[0], safe);
  q = arith::SelectOp::create(b, loc, byMinusOne, arith::SubIOp::create(b, loc, zero, a[0]), q);
  return arith::SelectOp::create(b, loc, byZero, zero, q);
}

// std::max(a, b) is (a < b) ? b : a; std::min(a, b) is (b < a) ? b : a.
Value maxFn(OpBuilder& b, Location loc, ValueRange a) {
  if (!isFloat(a[0])) return arith::MaxSIOp::create(b, loc, a[0], a[1]);
  return arith::SelectOp::create(b, loc, cmpLess(b, loc, a[0], a[1]), a[1], a[0]);
}
Value minFn(OpBuilder& b, Location loc, ValueRange a) {
  if (!isFloat(a[0])) return arith::MinSIOp::create(b, loc, a[0], a[1]);
  return arith::SelectOp::create(b, loc, cmpLess(b, loc, a[1], a[0]), a[1], a[0]);
}
Value powFn(OpBuilder& b, Location loc, ValueRange a) {
  if (!isFloat(a[0])) return {};
  return math::PowFOp::create(b, loc, a[0], a[1]);
}

// One pattern for every unary and binary elementwise op: a parallel
// linalg.generic whose body is `fn`, computed in f64 for element types `fn`
// has no native form for (and always for i1).
template <typename OpTy>
class ElementwiseLowering : public KilnLowering<OpTy> {
 public:
  ElementwiseLowering(MLIRContext* ctx, ScalarFn fn) : KilnLowering<OpTy>(ctx), fn_(fn) {}

  FailureOr<Value> lower(OpTy op, typename OpTy::Adaptor adaptor,
                         ConversionPatternRewriter& rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    ScalarFn fn = fn_;
    return buildParallelGeneric(rewriter, op.getLoc(), type, adaptor.getOperands(), {},
                                [fn](OpBuilder& b, Location loc, ValueRange args) {
                                  Type elem = args[0].getType();
                                  if (!elem.isInteger(1))
                                    if (Value v = fn(b, loc, args)) return v;
                                  SmallVector<Value> wide;
                                  for (Value a : args) wide.push_back(convertScalar(b, loc, a, b.getF64Type()));
                                  return convertScalar(b, loc, fn(b, loc, wide), elem);
                                });
  }

 private:
  ScalarFn fn_;
};

struct CompareLowering : KilnLowering<CompareOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(CompareOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    StringRef p = op.getPredicate();
    return buildParallelGeneric(
        rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()), adaptor.getOperands(), {},
        [p](OpBuilder& b, Location loc, ValueRange a) -> Value {
          if (isFloat(a[0])) {
            // C++'s != is true for NaN (une); the others are ordered.
            auto pred = llvm::StringSwitch<arith::CmpFPredicate>(p)
                            .Case("eq", arith::CmpFPredicate::OEQ).Case("ne", arith::CmpFPredicate::UNE)
                            .Case("lt", arith::CmpFPredicate::OLT).Case("le", arith::CmpFPredicate::OLE)
                            .Case("gt", arith::CmpFPredicate::OGT).Default(arith::CmpFPredicate::OGE);
            return arith::CmpFOp::create(b, loc, pred, a[0], a[1]);
          }
          bool boolean = a[0].getType().isInteger(1);  // i1 holds 0/1, compared unsigned
          auto pred = llvm::StringSwitch<arith::CmpIPredicate>(p)
                          .Case("eq", arith::CmpIPredicate::eq).Case("ne", arith::CmpIPredicate::ne)
                          .Case("lt", boolean ? arith::CmpIPredicate::ult : arith::CmpIPredicate::slt)
                          .Case("le", boolean ? arith::CmpIPredicate::ule : arith::CmpIPredicate::sle)
                          .Case("gt", boolean ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt)
                          .Default(boolean ? arith::CmpIPredicate::uge : arith::CmpIPredicate::sge);
          return arith::CmpIOp::create(b, loc, pred, a[0], a[1]);
        });
  }
};

struct SelectLowering : KilnLowering<SelectOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(SelectOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    return buildParallelGeneric(rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()), adaptor.getOperands(), {},
                                [](OpBuilder& b, Location loc, ValueRange a) -> Value {
                                  return arith::SelectOp::create(b, loc, a[0], a[1], a[2]);
                                });
  }
};

struct CastLowering : KilnLowering<CastOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(CastOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    if (op.getX().getType() == op.getType()) return adaptor.getX();
    Type to = op.getType().getElementType();
    return buildParallelGeneric(rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()), adaptor.getOperands(), {},
                                [to](OpBuilder& b, Location loc, ValueRange a) {
                                  return convertScalar(b, loc, a[0], to);
                                });
  }
};

struct ConstantLowering : KilnLowering<ConstantOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(ConstantOp op, OpAdaptor, ConversionPatternRewriter& rewriter) const override {
    auto value = dyn_cast<TypedAttr>(op.getValue());
    if (!value || value.getType() != op.getType())
      return rewriter.notifyMatchFailure(op, "constant value type differs from the result type");
    return arith::ConstantOp::create(rewriter, op.getLoc(), value).getResult();
  }
};

// result[i...] = i[dimension], through linalg.index.
struct IotaLowering : KilnLowering<IotaOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(IotaOp op, OpAdaptor, ConversionPatternRewriter& rewriter) const override {
    int64_t dim = op.getDimension();
    Type elem = op.getType().getElementType();
    return buildParallelGeneric(rewriter, op.getLoc(), cast<RankedTensorType>(op.getType()), {}, {},
                                [dim, elem](OpBuilder& b, Location loc, ValueRange) {
                                  Value i = linalg::IndexOp::create(b, loc, dim);
                                  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), i);
                                  return convertScalar(b, loc, i64, elem);
                                });
  }
};

}  // namespace

void populateElementwiseLoweringPatterns(RewritePatternSet& patterns) {
  MLIRContext* ctx = patterns.getContext();
  patterns.add<ElementwiseLowering<NegOp>>(ctx, negFn);
  patterns.add<ElementwiseLowering<ExpOp>>(ctx, floatOnlyFn<math::ExpOp>);
  patterns.add<ElementwiseLowering<LogOp>>(ctx, floatOnlyFn<math::LogOp>);
  patterns.add<ElementwiseLowering<SqrtOp>>(ctx, floatOnlyFn<math::SqrtOp>);
  patterns.add<ElementwiseLowering<TanhOp>>(ctx, floatOnlyFn<math::TanhOp>);
  patterns.add<ElementwiseLowering<SigmoidOp>>(ctx, sigmoidFn);
  patterns.add<ElementwiseLowering<ReluOp>>(ctx, reluFn);
  patterns.add<ElementwiseLowering<AbsOp>>(ctx, absFn);
  patterns.add<ElementwiseLowering<SignOp>>(ctx, signFn);
  patterns.add<ElementwiseLowering<Log1pOp>>(ctx, floatOnlyFn<math::Log1pOp>);
  patterns.add<ElementwiseLowering<Expm1Op>>(ctx, floatOnlyFn<math::ExpM1Op>);
  patterns.add<ElementwiseLowering<ErfOp>>(ctx, floatOnlyFn<math::ErfOp>);
  patterns.add<ElementwiseLowering<AddOp>>(ctx, arithFn<arith::AddFOp, arith::AddIOp>);
  patterns.add<ElementwiseLowering<SubOp>>(ctx, arithFn<arith::SubFOp, arith::SubIOp>);
  patterns.add<ElementwiseLowering<MulOp>>(ctx, arithFn<arith::MulFOp, arith::MulIOp>);
  patterns.add<ElementwiseLowering<DivOp>>(ctx, divFn);
  patterns.add<ElementwiseLowering<MaxOp>>(ctx, maxFn);
  patterns.add<ElementwiseLowering<MinOp>>(ctx, minFn);
  patterns.add<ElementwiseLowering<PowOp>>(ctx, powFn);
  patterns.add<CompareLowering, SelectLowering, CastLowering, ConstantLowering, IotaLowering>(ctx);
}

}  // namespace kiln::passes
