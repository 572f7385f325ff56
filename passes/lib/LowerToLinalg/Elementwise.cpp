// Lowers kiln's elementwise ops (every op with ScalarOpInterface: unary,
// binary, compare, select, cast) and the constant and iota generators to
// linalg.generic with arith/math bodies.
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "kiln/ir/ScalarExpr.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
namespace {

namespace scalar = kiln::ir::scalar;

bool isFloat(Type t) { return isa<FloatType>(t); }

scalar::Type scalarTypeOf(Type t) {
  if (t.isInteger(1)) return scalar::Type::Bool;
  if (t.isInteger(32)) return scalar::Type::I32;
  if (t.isInteger(64)) return scalar::Type::I64;
  if (t.isF32()) return scalar::Type::F32;
  return scalar::Type::F64;
}

Value compare(OpBuilder& b, Location loc, scalar::Prim prim, Value x, Value y) {
  using P = scalar::Prim;
  if (isFloat(x.getType())) {
    // Ordered, except ne (C's !=) and gtu, which are true for NaN.
    arith::CmpFPredicate pred;
    switch (prim) {
      case P::Eq: pred = arith::CmpFPredicate::OEQ; break;
      case P::Ne: pred = arith::CmpFPredicate::UNE; break;
      case P::Lt: pred = arith::CmpFPredicate::OLT; break;
      case P::Le: pred = arith::CmpFPredicate::OLE; break;
      case P::Gt: pred = arith::CmpFPredicate::OGT; break;
      case P::Ge: pred = arith::CmpFPredicate::OGE; break;
      default: pred = arith::CmpFPredicate::UGT; break;
    }
    return arith::CmpFOp::create(b, loc, pred, x, y);
  }
  bool boolean = x.getType().isInteger(1);  // i1 holds 0/1, compared unsigned
  arith::CmpIPredicate pred;
  switch (prim) {
    case P::Eq: pred = arith::CmpIPredicate::eq; break;
    case P::Ne: pred = arith::CmpIPredicate::ne; break;
    case P::Lt: pred = boolean ? arith::CmpIPredicate::ult : arith::CmpIPredicate::slt; break;
    case P::Le: pred = boolean ? arith::CmpIPredicate::ule : arith::CmpIPredicate::sle; break;
    case P::Ge: pred = boolean ? arith::CmpIPredicate::uge : arith::CmpIPredicate::sge; break;
    default: pred = boolean ? arith::CmpIPredicate::ugt : arith::CmpIPredicate::sgt; break;  // gt, gtu
  }
  return arith::CmpIOp::create(b, loc, pred, x, y);
}

// Integer division truncates toward zero and never traps (NumPy's answers for
// the cases C leaves undefined): x / 0 = 0, and MIN / -1 = MIN (wraps). The
// divisor is made safe first, so that no lane of a vectorized loop divides by
// 0 or -1: q = x / (d == 0 || d == -1 ? 1 : d), then d == -1 gives 0 - x
// (wrapping) and d == 0 gives 0.
Value integerDivide(OpBuilder& b, Location loc, Value x, Value d) {
  Type t = x.getType();
  Value zero = scalarConstant(b, loc, t, 0), one = scalarConstant(b, loc, t, 1);
  Value minusOne = scalarConstant(b, loc, t, -1);
  Value byZero = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, d, zero);
  Value byMinusOne = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, d, minusOne);
  Value safe = arith::SelectOp::create(b, loc, arith::OrIOp::create(b, loc, byZero, byMinusOne), one, d);
  Value q = arith::DivSIOp::create(b, loc, x, safe);
  q = arith::SelectOp::create(b, loc, byMinusOne, arith::SubIOp::create(b, loc, zero, x), q);
  return arith::SelectOp::create(b, loc, byZero, zero, q);
}

// Emits arith/math ops computing an expression of computation type `t`
// (ScalarExpr.h), operands left to right, each constant once; the caller has
// widened integer types to f64 where the expression needs it.
class ScalarEmitter {
 public:
  ScalarEmitter(OpBuilder& b, Location loc, ValueRange args, Type t, Type resultElem)
      : b_(b), loc_(loc), args_(args), t_(t), resultElem_(resultElem) {}

  Value emit(const scalar::Expr& e) {
    using P = scalar::Prim;
    if (e.prim == P::Arg) return args_[e.arg];
    if (e.prim == P::Const) return constant(e.value);
    SmallVector<Value, 3> v;
    for (const scalar::Expr& operand : e.operands) v.push_back(emit(operand));
    bool fp = isFloat(t_);
    switch (e.prim) {
      case P::Neg:
        if (fp) return arith::NegFOp::create(b_, loc_, v[0]);
        return arith::SubIOp::create(b_, loc_, constant(0), v[0]);
      case P::Add:
        if (fp) return arith::AddFOp::create(b_, loc_, v[0], v[1]);
        return arith::AddIOp::create(b_, loc_, v[0], v[1]);
      case P::Sub:
        if (fp) return arith::SubFOp::create(b_, loc_, v[0], v[1]);
        return arith::SubIOp::create(b_, loc_, v[0], v[1]);
      case P::Mul:
        if (fp) return arith::MulFOp::create(b_, loc_, v[0], v[1]);
        return arith::MulIOp::create(b_, loc_, v[0], v[1]);
      case P::Div:
        if (fp) return arith::DivFOp::create(b_, loc_, v[0], v[1]);
        return integerDivide(b_, loc_, v[0], v[1]);
      case P::Abs: {
        if (fp) return math::AbsFOp::create(b_, loc_, v[0]);
        // select rather than math.absi, which math-to-libm does not handle.
        Value negated = arith::SubIOp::create(b_, loc_, constant(0), v[0]);
        return arith::SelectOp::create(b_, loc_, compare(b_, loc_, P::Lt, v[0], constant(0)), negated, v[0]);
      }
      case P::Pow: return math::PowFOp::create(b_, loc_, v[0], v[1]);
      case P::Exp: return math::ExpOp::create(b_, loc_, v[0]);
      case P::Log: return math::LogOp::create(b_, loc_, v[0]);
      case P::Sqrt: return math::SqrtOp::create(b_, loc_, v[0]);
      case P::Tanh: return math::TanhOp::create(b_, loc_, v[0]);
      case P::Log1p: return math::Log1pOp::create(b_, loc_, v[0]);
      case P::Expm1: return math::ExpM1Op::create(b_, loc_, v[0]);
      case P::Erf: return math::ErfOp::create(b_, loc_, v[0]);
      case P::Sin: return math::SinOp::create(b_, loc_, v[0]);
      case P::Cos: return math::CosOp::create(b_, loc_, v[0]);
      case P::Tan: return math::TanOp::create(b_, loc_, v[0]);
      case P::Asin: return math::AsinOp::create(b_, loc_, v[0]);
      case P::Acos: return math::AcosOp::create(b_, loc_, v[0]);
      case P::Atan: return math::AtanOp::create(b_, loc_, v[0]);
      case P::Atan2: return math::Atan2Op::create(b_, loc_, v[0], v[1]);
      case P::Floor: return math::FloorOp::create(b_, loc_, v[0]);
      case P::Ceil: return math::CeilOp::create(b_, loc_, v[0]);
      case P::Eq: case P::Ne: case P::Lt: case P::Le: case P::Gt: case P::Ge: case P::Gtu:
        return compare(b_, loc_, e.prim, v[0], v[1]);
      case P::Select: return arith::SelectOp::create(b_, loc_, v[0], v[1], v[2]);
      case P::Convert: return convertScalar(b_, loc_, v[0], resultElem_);
      case P::Arg: case P::Const: break;
    }
    return {};
  }

 private:
  Value constant(double value) {
    for (auto& [v, c] : constants_)
      if (v == value) return c;
    Value c = scalarConstant(b_, loc_, t_, value);
    constants_.push_back({value, c});
    return c;
  }

  OpBuilder& b_;
  Location loc_;
  ValueRange args_;
  Type t_, resultElem_;
  SmallVector<std::pair<double, Value>, 4> constants_;
};

// The scalar computation of `e` on `args`, widened to f64 where ScalarExpr.h says so.
Value emitScalarExpr(OpBuilder& b, Location loc, const scalar::Expr& e, ValueRange args, Type resultElem) {
  Type t = args.back().getType();
  if (!scalar::computesInF64(e, scalarTypeOf(t))) return ScalarEmitter(b, loc, args, t, resultElem).emit(e);
  SmallVector<Value> wide;
  for (Value a : args) wide.push_back(a.getType() == t ? convertScalar(b, loc, a, b.getF64Type()) : a);
  Value r = ScalarEmitter(b, loc, wide, b.getF64Type(), resultElem).emit(e);
  return convertScalar(b, loc, r, resultElem);
}

// Every op with ScalarOpInterface: a parallel linalg.generic whose body is the
// op's scalar expression (declared with the op in ODS), computed in f64 where
// ScalarExpr.h says so.
struct ScalarOpLowering : OpInterfaceConversionPattern<ScalarOpInterface> {
  using OpInterfaceConversionPattern::OpInterfaceConversionPattern;

  LogicalResult matchAndRewrite(ScalarOpInterface scalarOp, ArrayRef<Value> operands,
                                ConversionPatternRewriter& rewriter) const override {
    Operation* op = scalarOp.getOperation();
    for (Type t : op->getOperandTypes())
      if (!isa<RankedTensorType>(t)) return rewriter.notifyMatchFailure(op, "operands must be ranked");
    auto type = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    if (!type || operands.empty()) return rewriter.notifyMatchFailure(op, "results must be ranked");
    FailureOr<const scalar::Expr*> expr = scalar::expressionOf(op);
    if (failed(expr)) return failure();
    const scalar::Expr& e = **expr;
    Type resultElem = type.getElementType();
    // A conversion to the operand's own type is the operand.
    if (e.prim == scalar::Prim::Convert && operands[0].getType() == type) {
      rewriter.replaceOp(op, operands[0]);
      return success();
    }
    Value result = buildParallelGeneric(rewriter, op->getLoc(), type, operands, {},
                                        [&](OpBuilder& b, Location loc, ValueRange args) {
                                          return emitScalarExpr(b, loc, e, args, resultElem);
                                        });
    rewriter.replaceOp(op, result);
    return success();
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

FailureOr<Value> emitScalarOp(OpBuilder& b, Location loc, Operation* op, ValueRange scalars) {
  FailureOr<const scalar::Expr*> expr = scalar::expressionOf(op);
  if (failed(expr)) return failure();
  Type resultElem = cast<ShapedType>(op->getResult(0).getType()).getElementType();
  return emitScalarExpr(b, loc, **expr, scalars, resultElem);
}

void populateElementwiseLoweringPatterns(RewritePatternSet& patterns) {
  MLIRContext* ctx = patterns.getContext();
  patterns.add<ScalarOpLowering>(ctx);
  patterns.add<ConstantLowering, IotaLowering>(ctx);
}

}  // namespace kiln::passes
