// Vector-Jacobian products of kiln ops (VJPOpInterface), one rule per op.
#include "kiln/ir/KilnDialect.h"

#include <cmath>

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;
using namespace kiln::ir;

namespace {

// Small builders the rules share. Every helper emits at b's insertion point.
struct VJPBuilder {
  OpBuilder& b;
  Location loc;

  RankedTensorType type(Value v) { return cast<RankedTensorType>(v.getType()); }

  Value splat(RankedTensorType t, double value) {
    Attribute elem = isa<FloatType>(t.getElementType())
                         ? Attribute(b.getFloatAttr(t.getElementType(), value))
                         : Attribute(b.getIntegerAttr(t.getElementType(), (int64_t)value));
    return createSplat(b, loc, t, elem);  // a dynamic (batch) shape too: a 0-d constant broadcast
  }
  Value splatLike(Value v, double value) { return splat(type(v), value); }
  Value add(Value x, Value y) { return AddOp::create(b, loc, x.getType(), x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, loc, x.getType(), x, y); }
  Value mul(Value x, Value y) { return MulOp::create(b, loc, x.getType(), x, y); }
  Value div(Value x, Value y) { return DivOp::create(b, loc, x.getType(), x, y); }
  Value neg(Value x) { return NegOp::create(b, loc, x.getType(), x); }
  Value compare(StringRef pred, Value x, Value y) { return CompareOp::create(b, loc, pred, x, y); }
  Value select(Value c, Value x, Value y) { return SelectOp::create(b, loc, x.getType(), c, x, y); }
  Value reshape(Value x, RankedTensorType t) {
    return x.getType() == t ? x : ReshapeOp::create(b, loc, t, x).getResult();
  }
  Value broadcast(Value x, RankedTensorType t) {
    return x.getType() == t ? x : BroadcastToOp::create(b, loc, t, x).getResult();
  }
  // g passed through where cond holds, zero elsewhere.
  Value mask(Value cond, Value g) { return select(cond, g, splatLike(g, 0.0)); }
  // Sums g (of the broadcast shape) back to `t`, the shape before broadcasting.
  Value unbroadcast(Value g, RankedTensorType t) {
    auto gt = type(g);
    if (gt == t) return g;
    int64_t offset = gt.getRank() - t.getRank();
    SmallVector<int64_t> axes;
    for (int64_t d = 0; d < gt.getRank(); ++d)
      if (d < offset || (t.getDimSize(d - offset) == 1 && gt.getDimSize(d) != 1)) axes.push_back(d);
    Value s = g;
    if (!axes.empty()) s = ReduceSumOp::create(b, loc, g, b.getDenseI64ArrayAttr(axes), false);
    return reshape(s, t);
  }
  // Shape of a reduction's input with the reduced axes kept as size 1.
  RankedTensorType keptType(RankedTensorType in, ArrayRef<int64_t> axes, Type elem) {
    SmallVector<int64_t> shape(in.getShape());
    for (int64_t a : axes) shape[a] = 1;
    return RankedTensorType::get(shape, elem);
  }
};

}  // namespace

#define KILN_VJP(OP)                                                                   \
  LogicalResult OP::buildVJP(OpBuilder& builder, ValueRange resultGrads,               \
                             SmallVectorImpl<Value>& grads)
#define KILN_VJP_SETUP                        \
  VJPBuilder v{builder, getLoc()};            \
  Value g = resultGrads[0];                   \
  (void)v;                                    \
  (void)g

// ---- unary --------------------------------------------------------------------

KILN_VJP(NegOp) { KILN_VJP_SETUP; grads.push_back(v.neg(g)); return success(); }
KILN_VJP(ExpOp) { KILN_VJP_SETUP; grads.push_back(v.mul(g, getResult())); return success(); }
KILN_VJP(LogOp) { KILN_VJP_SETUP; grads.push_back(v.div(g, getX())); return success(); }
KILN_VJP(SqrtOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.div(v.mul(g, v.splatLike(g, 0.5)), getResult()));
  return success();
}
KILN_VJP(TanhOp) {
  KILN_VJP_SETUP;
  Value y = getResult();
  grads.push_back(v.mul(g, v.sub(v.splatLike(y, 1.0), v.mul(y, y))));
  return success();
}
KILN_VJP(SigmoidOp) {
  KILN_VJP_SETUP;
  Value y = getResult();
  grads.push_back(v.mul(g, v.mul(y, v.sub(v.splatLike(y, 1.0), y))));
  return success();
}
KILN_VJP(ReluOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.mask(v.compare("gt", getResult(), v.splatLike(g, 0.0)), g));
  return success();
}
KILN_VJP(AbsOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.mul(g, SignOp::create(builder, getLoc(), getX().getType(), getX())));
  return success();
}
KILN_VJP(SignOp) { KILN_VJP_SETUP; grads.push_back(v.splatLike(g, 0.0)); return success(); }
KILN_VJP(Log1pOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.div(g, v.add(v.splatLike(g, 1.0), getX())));
  return success();
}
KILN_VJP(Expm1Op) {
  KILN_VJP_SETUP;
  grads.push_back(v.mul(g, v.add(getResult(), v.splatLike(g, 1.0))));
  return success();
}
KILN_VJP(ErfOp) {
  KILN_VJP_SETUP;
  Value x = getX();
  Value e = ExpOp::create(builder, getLoc(), x.getType(), v.neg(v.mul(x, x)));
  grads.push_back(v.mul(g, v.mul(e, v.splatLike(x, 2.0 / std::sqrt(M_PI)))));
  return success();
}
KILN_VJP(SinOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.mul(g, CosOp::create(builder, getLoc(), getX().getType(), getX())));
  return success();
}
KILN_VJP(CosOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.neg(v.mul(g, SinOp::create(builder, getLoc(), getX().getType(), getX()))));
  return success();
}
// d tan = 1 + tan^2.
KILN_VJP(TanOp) {
  KILN_VJP_SETUP;
  Value y = getResult();
  grads.push_back(v.mul(g, v.add(v.splatLike(y, 1.0), v.mul(y, y))));
  return success();
}
// d asin = 1 / sqrt(1 - x^2); d acos = -1 / sqrt(1 - x^2).
KILN_VJP(AsinOp) {
  KILN_VJP_SETUP;
  Value x = getX();
  Value root = SqrtOp::create(builder, getLoc(), x.getType(), v.sub(v.splatLike(x, 1.0), v.mul(x, x)));
  grads.push_back(v.div(g, root));
  return success();
}
KILN_VJP(AcosOp) {
  KILN_VJP_SETUP;
  Value x = getX();
  Value root = SqrtOp::create(builder, getLoc(), x.getType(), v.sub(v.splatLike(x, 1.0), v.mul(x, x)));
  grads.push_back(v.neg(v.div(g, root)));
  return success();
}
KILN_VJP(AtanOp) {
  KILN_VJP_SETUP;
  Value x = getX();
  grads.push_back(v.div(g, v.add(v.splatLike(x, 1.0), v.mul(x, x))));
  return success();
}
// Piecewise constant: no gradient flows (zero almost everywhere).
KILN_VJP(FloorOp) { KILN_VJP_SETUP; grads.push_back(v.splatLike(g, 0.0)); return success(); }
KILN_VJP(CeilOp) { KILN_VJP_SETUP; grads.push_back(v.splatLike(g, 0.0)); return success(); }

// ---- binary -------------------------------------------------------------------

KILN_VJP(AddOp) { KILN_VJP_SETUP; grads.append({g, g}); return success(); }
KILN_VJP(SubOp) { KILN_VJP_SETUP; grads.append({g, v.neg(g)}); return success(); }
KILN_VJP(MulOp) {
  KILN_VJP_SETUP;
  grads.append({v.mul(g, getRhs()), v.mul(g, getLhs())});
  return success();
}
KILN_VJP(DivOp) {
  KILN_VJP_SETUP;
  Value gl = v.div(g, getRhs());
  grads.append({gl, v.neg(v.mul(gl, getResult()))});
  return success();
}
KILN_VJP(MaxOp) {
  KILN_VJP_SETUP;
  Value c = v.compare("gt", getLhs(), getRhs());
  grads.append({v.mask(c, g), v.select(c, v.splatLike(g, 0.0), g)});
  return success();
}
KILN_VJP(MinOp) {
  KILN_VJP_SETUP;
  Value c = v.compare("lt", getLhs(), getRhs());
  grads.append({v.mask(c, g), v.select(c, v.splatLike(g, 0.0), g)});
  return success();
}
KILN_VJP(PowOp) {
  KILN_VJP_SETUP;
  Value x = getLhs(), p = getRhs(), y = getResult();
  Value pm1 = v.sub(p, v.splatLike(p, 1.0));
  Value dx = v.mul(g, v.mul(p, PowOp::create(builder, getLoc(), x.getType(), x, pm1)));
  Value dp = v.mul(g, v.mul(y, LogOp::create(builder, getLoc(), x.getType(), x)));
  grads.append({dx, dp});
  return success();
}
// atan2(y, x): dy = x / (x^2 + y^2), dx = -y / (x^2 + y^2).
KILN_VJP(Atan2Op) {
  KILN_VJP_SETUP;
  Value y = getLhs(), x = getRhs();
  Value gr = v.div(g, v.add(v.mul(x, x), v.mul(y, y)));
  grads.append({v.mul(gr, x), v.neg(v.mul(gr, y))});
  return success();
}
KILN_VJP(SelectOp) {
  KILN_VJP_SETUP;
  Value zero = v.splatLike(g, 0.0);
  grads.append({Value(), v.select(getCond(), g, zero), v.select(getCond(), zero, g)});
  return success();
}
// The count depends on x's shape only: x gets no gradient.
KILN_VJP(DimSizeOp) {
  grads.push_back(Value());
  return success();
}

KILN_VJP(CastOp) {
  KILN_VJP_SETUP;
  auto in = getX().getType();
  if (!isa<FloatType>(in.getElementType()) || !isa<FloatType>(getType().getElementType())) {
    grads.push_back(Value());
  } else {
    grads.push_back(CastOp::create(builder, getLoc(), in, g));
  }
  return success();
}

// ---- shape --------------------------------------------------------------------

KILN_VJP(BroadcastToOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.unbroadcast(g, getX().getType()));
  return success();
}
KILN_VJP(ReshapeOp) {
  KILN_VJP_SETUP;
  grads.push_back(v.reshape(g, getX().getType()));
  return success();
}
KILN_VJP(TransposeOp) {
  KILN_VJP_SETUP;
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = i;
  grads.push_back(TransposeOp::create(builder, getLoc(), g, builder.getDenseI64ArrayAttr(inverse)));
  return success();
}
KILN_VJP(SliceOp) {
  KILN_VJP_SETUP;
  auto in = getX().getType();
  auto out = getType();
  SmallVector<int64_t> low, high, interior;
  for (int64_t d = 0; d < in.getRank(); ++d) {
    int64_t n = out.getDimSize(d), start = getStart()[d], step = getStep()[d];
    if (in.isDynamicDim(d)) {  // kept whole (the verifier allows nothing else)
      low.push_back(0);
      high.push_back(0);
      interior.push_back(0);
      continue;
    }
    low.push_back(start);
    int64_t last = n > 0 ? start + (n - 1) * step + 1 : start;
    high.push_back(in.getDimSize(d) - last);
    interior.push_back(step - 1);
  }
  grads.push_back(PadOp::create(builder, getLoc(), g, builder.getDenseI64ArrayAttr(low),
                                builder.getDenseI64ArrayAttr(high),
                                builder.getDenseI64ArrayAttr(interior),
                                builder.getF64FloatAttr(0.0)));
  return success();
}
KILN_VJP(PadOp) {
  KILN_VJP_SETUP;
  auto in = getX().getType();
  SmallVector<int64_t> start, limit, step;
  for (int64_t d = 0; d < in.getRank(); ++d) {
    int64_t n = in.getDimSize(d), lo = getLow()[d], st = getInterior()[d] + 1;
    if (in.isDynamicDim(d)) {  // not padded (the verifier allows nothing else)
      start.push_back(0);
      limit.push_back(ShapedType::kDynamic);
      step.push_back(1);
      continue;
    }
    start.push_back(lo);
    limit.push_back(n > 0 ? lo + (n - 1) * st + 1 : lo);
    step.push_back(st);
  }
  grads.push_back(SliceOp::create(builder, getLoc(), g, builder.getDenseI64ArrayAttr(start),
                                  builder.getDenseI64ArrayAttr(limit),
                                  builder.getDenseI64ArrayAttr(step)));
  return success();
}
KILN_VJP(ReverseOp) {
  KILN_VJP_SETUP;
  grads.push_back(ReverseOp::create(builder, getLoc(), g.getType(), g, getDimensionsAttr()));
  return success();
}
KILN_VJP(ConcatOp) {
  KILN_VJP_SETUP;
  auto gt = v.type(g);
  int64_t axis = getAxis(), offset = 0;
  for (Value in : getInputs()) {
    auto t = v.type(in);
    SmallVector<int64_t> start(gt.getRank(), 0), limit(gt.getShape()), step(gt.getRank(), 1);
    start[axis] = offset;
    limit[axis] = offset + t.getDimSize(axis);
    offset += t.getDimSize(axis);
    grads.push_back(SliceOp::create(builder, getLoc(), g, builder.getDenseI64ArrayAttr(start),
                                    builder.getDenseI64ArrayAttr(limit),
                                    builder.getDenseI64ArrayAttr(step)));
  }
  return success();
}

// ---- reductions ---------------------------------------------------------------

KILN_VJP(ReduceSumOp) {
  KILN_VJP_SETUP;
  auto in = getX().getType();
  Value kept = v.reshape(g, v.keptType(in, getAxes(), in.getElementType()));
  grads.push_back(v.broadcast(kept, in));
  return success();
}
KILN_VJP(ReduceMaxOp) {
  KILN_VJP_SETUP;
  auto in = getX().getType();
  auto kept = v.keptType(in, getAxes(), in.getElementType());
  Value y = v.broadcast(v.reshape(getResult(), kept), in);
  Value gb = v.broadcast(v.reshape(g, kept), in);
  grads.push_back(v.mask(v.compare("eq", getX(), y), gb));
  return success();
}

// ---- contractions -------------------------------------------------------------

KILN_VJP(MatmulOp) {
  KILN_VJP_SETUP;
  Value a = getA(), bm = getB();
  bool ta = getTransposeA(), tb = getTransposeB();
  auto mm = [&](Value x, Value y, bool tx, bool ty, bool sum = false) -> Value {
    auto op = MatmulOp::create(builder, getLoc(), x, y, tx, ty, sum);
    return op.getResult();
  };
  Value da, db;
  bool sharedB = cast<RankedTensorType>(bm.getType()).getRank() == 2 && cast<RankedTensorType>(a.getType()).getRank() > 2;
  if (getSumBatch()) {  // y = sum_i a[i]^T b[i]
    da = mm(bm, g, false, true);
    db = mm(a, g, false, false);
  } else if (sharedB) {  // y[i] = a[i] op(b): b's gradient sums over the batch
    da = mm(g, bm, false, !tb);
    db = tb ? mm(g, a, true, false, true) : mm(a, g, true, false, true);
  } else if (!ta && !tb) { da = mm(g, bm, false, true); db = mm(a, g, true, false); }
  else if (!ta && tb) { da = mm(g, bm, false, false); db = mm(g, a, true, false); }
  else if (ta && !tb) { da = mm(bm, g, false, true); db = mm(a, g, false, false); }
  else { da = mm(bm, g, true, true); db = mm(g, a, true, true); }
  grads.append({da, db});
  return success();
}
KILN_VJP(Conv2DOp) {
  KILN_VJP_SETUP;
  auto s = getStrideAttr(), p = getPadAttr(), d = getDilateAttr();
  auto groups = getGroupsAttr();
  grads.push_back(Conv2DGradInputOp::create(builder, getLoc(), getX().getType(), g, getW(), s, p, d, groups));
  grads.push_back(Conv2DGradFilterOp::create(builder, getLoc(), getW().getType(), getX(), g, s, p, d, groups));
  return success();
}
KILN_VJP(Conv2DGradInputOp) {
  KILN_VJP_SETUP;
  auto s = getStrideAttr(), p = getPadAttr(), d = getDilateAttr();
  auto groups = getGroupsAttr();
  grads.push_back(Conv2DOp::create(builder, getLoc(), g, getW(), s, p, d, groups));
  grads.push_back(Conv2DGradFilterOp::create(builder, getLoc(), getW().getType(), g, getGy(), s, p, d, groups));
  return success();
}
KILN_VJP(Conv2DGradFilterOp) {
  KILN_VJP_SETUP;
  auto s = getStrideAttr(), p = getPadAttr(), d = getDilateAttr();
  auto groups = getGroupsAttr();
  grads.push_back(Conv2DGradInputOp::create(builder, getLoc(), getX().getType(), getGy(), g, s, p, d, groups));
  grads.push_back(Conv2DOp::create(builder, getLoc(), getX(), g, s, p, d, groups));
  return success();
}
KILN_VJP(Pool2DOp) {
  KILN_VJP_SETUP;
  grads.push_back(Pool2DGradOp::create(builder, getLoc(), getX().getType(), getX(), g, getKindAttr(),
                                       getKsizeAttr(), getStrideAttr(), getPadAttr()));
  return success();
}
// pool2d_grad is linear in gy and, for max pooling, constant in x almost everywhere
// (the argmax moves only at ties): no gradient for x. Its transpose in gy is average
// pooling for "avg"; for "max" it reads g at the tap pool2d_grad routes each window's
// gy to, its first in-bounds maximum (Chainer's MaxPooling2DWithIndexes). That is
// composed of existing ops, one strided slice of x and of g per tap scanned in tap
// order, so every backend runs it and it is differentiable again.
static FailureOr<Value> gatherAtWindowMaxima(VJPBuilder& v, Pool2DGradOp op, Value g) {
  RankedTensorType xType = op.getX().getType(), gyType = op.getGy().getType();
  if (xType.isDynamicDim(2) || xType.isDynamicDim(3) || xType.isDynamicDim(1))
    return op.emitOpError("second-order gradient of max pooling needs static channel and spatial sizes");
  ArrayRef<int64_t> k = op.getKsize(), s = op.getStride(), p = op.getPad();
  int64_t size[2] = {xType.getDimSize(2), xType.getDimSize(3)};
  int64_t out[2] = {gyType.getDimSize(2), gyType.getDimSize(3)};
  // Pad x and g so that every tap's strided slice is in bounds; the masks below keep
  // padding taps from being chosen, whatever the padding holds.
  SmallVector<int64_t> low{0, 0, p[0], p[1]}, high{0, 0, 0, 0}, zeros(4, 0);
  for (int d = 0; d < 2; ++d) high[2 + d] = std::max<int64_t>(0, (out[d] - 1) * s[d] + k[d] - size[d] - p[d]);
  auto padded = [&](Value t) -> Value {
    if (llvm::all_of(low, [](int64_t n) { return n == 0; }) && llvm::all_of(high, [](int64_t n) { return n == 0; }))
      return t;
    return PadOp::create(v.b, v.loc, t, v.b.getDenseI64ArrayAttr(low), v.b.getDenseI64ArrayAttr(high),
                         v.b.getDenseI64ArrayAttr(zeros), v.b.getF64FloatAttr(0.0))
        .getResult();
  };
  Value xp = padded(op.getX()), gp = padded(g);
  auto tap = [&](Value t, int64_t ky, int64_t kx) {
    SmallVector<int64_t> start{0, 0, ky, kx}, step{1, 1, s[0], s[1]};
    SmallVector<int64_t> limit{gyType.getDimSize(0), gyType.getDimSize(1), ky + (out[0] - 1) * s[0] + 1,
                               kx + (out[1] - 1) * s[1] + 1};
    return SliceOp::create(v.b, v.loc, t, v.b.getDenseI64ArrayAttr(start), v.b.getDenseI64ArrayAttr(limit),
                           v.b.getDenseI64ArrayAttr(step))
        .getResult();
  };
  // Per output row (d = 0) or column (d = 1): is tap k of it in bounds, and which is its first such tap.
  auto inBounds = [&](int d, int64_t o, int64_t kk) {
    int64_t i = o * s[d] + kk - p[d];
    return i >= 0 && i < size[d];
  };
  auto firstInBounds = [&](int d, int64_t o) {
    for (int64_t kk = 0; kk < k[d]; ++kk)
      if (inBounds(d, o, kk)) return kk;
    return k[d];
  };
  auto i1 = v.b.getI1Type();
  auto condType = RankedTensorType::get(gyType.getShape(), i1);
  auto maskType = RankedTensorType::get({1, 1, out[0], out[1]}, i1);
  // A constant i1 mask over the output positions, broadcast over batch and channels.
  auto mask = [&](auto&& at) {
    SmallVector<bool> bits;
    for (int64_t oy = 0; oy < out[0]; ++oy)
      for (int64_t ox = 0; ox < out[1]; ++ox) bits.push_back(at(oy, ox));
    Value c = ConstantOp::create(v.b, v.loc, DenseElementsAttr::get(maskType, ArrayRef<bool>(bits)));
    return v.broadcast(c, condType);
  };
  Value best = v.splatLike(op.getGy(), 0.0), picked = v.splatLike(op.getGy(), 0.0);
  Value yes = v.splat(condType, 1.0), no = v.splat(condType, 0.0);
  for (int64_t ky = 0; ky < k[0]; ++ky)
    for (int64_t kx = 0; kx < k[1]; ++kx) {
      bool everywhereValid = true, everywhereFirst = true, nowhereFirst = true;
      for (int64_t oy = 0; oy < out[0]; ++oy)
        for (int64_t ox = 0; ox < out[1]; ++ox) {
          bool valid = inBounds(0, oy, ky) && inBounds(1, ox, kx);
          bool first = firstInBounds(0, oy) == ky && firstInBounds(1, ox) == kx;
          everywhereValid &= valid;
          everywhereFirst &= first;
          nowhereFirst &= !first;
        }
      Value xt = tap(xp, ky, kx), gt = tap(gp, ky, kx);
      if (everywhereFirst) {  // no earlier tap anywhere: x starts the scan
        best = xt;
        picked = gt;
        continue;
      }
      // take = first || (valid && x > best): strictly greater, so ties keep the earlier tap.
      Value take = v.compare("gt", xt, best);
      if (!everywhereValid)
        take = v.select(mask([&](int64_t oy, int64_t ox) { return inBounds(0, oy, ky) && inBounds(1, ox, kx); }),
                        take, no);
      if (!nowhereFirst)
        take = v.select(mask([&](int64_t oy, int64_t ox) {
                          return firstInBounds(0, oy) == ky && firstInBounds(1, ox) == kx;
                        }),
                        yes, take);
      best = v.select(take, xt, best);
      picked = v.select(take, gt, picked);
    }
  return picked;
}
KILN_VJP(Pool2DGradOp) {
  KILN_VJP_SETUP;
  grads.push_back(Value());
  if (getKind() == "avg") {
    grads.push_back(Pool2DOp::create(builder, getLoc(), g, getKindAttr(), getKsizeAttr(),
                                     getStrideAttr(), getPadAttr()));
    return success();
  }
  FailureOr<Value> ggy = gatherAtWindowMaxima(v, *this, g);
  if (failed(ggy)) return failure();
  grads.push_back(*ggy);
  return success();
}
KILN_VJP(GatherOp) {
  KILN_VJP_SETUP;
  grads.push_back(ScatterAddOp::create(builder, getLoc(), getTable().getType(), getIds(), g, Value()));
  grads.push_back(Value());
  return success();
}
KILN_VJP(ScatterAddOp) {
  KILN_VJP_SETUP;
  grads.push_back(Value());
  grads.push_back(GatherOp::create(builder, getLoc(), g, getIds()));
  if (getBase()) grads.push_back(g);  // result = base + scatter: d base = g
  return success();
}

// ---- user-defined functions ---------------------------------------------------

// The user's backward region, cloned at the insertion point with its arguments
// bound to (inputs, result, cotangent).
KILN_VJP(CustomOp) {
  Block* body = getBackwardBody();
  IRMapping map;
  unsigned n = getInputs().size();
  for (unsigned i = 0; i < n; ++i) map.map(body->getArgument(i), getInputs()[i]);
  map.map(body->getArgument(n), getResult());
  map.map(body->getArgument(n + 1), resultGrads[0]);
  for (Operation& op : body->without_terminator()) builder.clone(op, map);
  for (auto [input, value] : llvm::zip(getInputs(), getBackwardYield().getValues())) {
    bool isFloat = isa<FloatType>(cast<RankedTensorType>(input.getType()).getElementType());
    grads.push_back(isFloat ? map.lookupOrDefault(value) : Value());
  }
  return success();
}
