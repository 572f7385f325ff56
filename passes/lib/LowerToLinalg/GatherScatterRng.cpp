// Lowers kiln's indexed ops and the random generator: gather (linalg.generic
// with tensor.extract), scatter_add (scf.for loops on tensors), check_range
// (a reduction to the first bad id) and rng_uniform (Philox-4x32-10 in arith,
// bit-exact with runtime/include/kiln/philox.h).
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
namespace {

// An id as an index clamped to [0, rows - 1], and whether it was in range.
std::pair<Value, Value> clampRow(OpBuilder& b, Location loc, Value id, int64_t rows) {
  Value i = arith::IndexCastOp::create(b, loc, b.getIndexType(), id);
  Value zero = indexConstant(b, loc, 0), last = indexConstant(b, loc, rows - 1);
  Value inRange = arith::AndIOp::create(b, loc, arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, i, zero),
                                        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle, i, last));
  Value clamped = arith::MinSIOp::create(b, loc, arith::MaxSIOp::create(b, loc, i, zero), last);
  return {clamped, inRange};
}

// result[i..., j] = table[ids[i...], j]. Ids out of [0, rows) are clamped, as
// in the interpreter; the kiln.check_range in front of a user's gather reports them.
struct GatherLowering : KilnLowering<GatherOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(GatherOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    int64_t rank = type.getRank(), rows = op.getTable().getType().getDimSize(0);
    if (!staticExcept(op.getTable().getType(), {}))
      return rewriter.notifyMatchFailure(op, "the table must be static");
    Value table = adaptor.getTable();
    SmallVector<AffineExpr> leading;
    for (int64_t d = 0; d < rank - 1; ++d) leading.push_back(rewriter.getAffineDimExpr(d));
    auto idsMap = AffineMap::get(rank, 0, leading, rewriter.getContext());
    return buildParallelGeneric(rewriter, op.getLoc(), type, adaptor.getIds(), {idsMap},
                                [&](OpBuilder& b, Location loc, ValueRange a) -> Value {
                                  Value row = clampRow(b, loc, a[0], rows).first;
                                  Value col = linalg::IndexOp::create(b, loc, rank - 1);
                                  return tensor::ExtractOp::create(b, loc, table, ValueRange{row, col});
                                });
  }
};

// result = base (or zeros); for each id i (in C order), for each column j:
// result[ids[i], j] += updates[i, j]; ids out of range add nothing.
struct ScatterAddLowering : KilnLowering<ScatterAddOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(ScatterAddOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = op.getType();
    Type elem = type.getElementType();
    int64_t rows = type.getDimSize(0), width = type.getDimSize(1);
    if (!type.hasStaticShape()) return rewriter.notifyMatchFailure(op, "the result (table) must be static");
    auto idsType = op.getIds().getType();
    int64_t count = idsType.hasStaticShape() ? idsType.getNumElements() : ShapedType::kDynamic;
    Value ids = reshapeTensor(rewriter, loc, adaptor.getIds(),
                              RankedTensorType::get({count}, op.getIds().getType().getElementType()));
    Value updates = reshapeTensor(rewriter, loc, adaptor.getUpdates(), RankedTensorType::get({count, width}, elem));
    // From the base the loop's tensor.inserts bufferize in place onto the base's buffer.
    Value init = adaptor.getBase() ? adaptor.getBase()
                                   : filledTensor(rewriter, loc, type, scalarConstant(rewriter, loc, elem, 0));
    Value zero = indexConstant(rewriter, loc, 0), one = indexConstant(rewriter, loc, 1);
    auto outer = scf::ForOp::create(
        rewriter, loc, zero, tensor::DimOp::create(rewriter, loc, ids, 0), one, ValueRange{init},
        [&](OpBuilder& b, Location l, Value i, ValueRange acc) {
          auto [row, inRange] = clampRow(b, l, tensor::ExtractOp::create(b, l, ids, i), rows);
          auto inner = scf::ForOp::create(
              b, l, zero, indexConstant(b, l, width), one, acc,
              [&](OpBuilder& ib, Location il, Value j, ValueRange rowAcc) {
                Value u = tensor::ExtractOp::create(ib, il, updates, ValueRange{i, j});
                u = arith::SelectOp::create(ib, il, inRange, u, scalarConstant(ib, il, elem, 0));
                Value old = tensor::ExtractOp::create(ib, il, rowAcc[0], ValueRange{row, j});
                Value sum = addScalars(ib, il, old, u);
                scf::YieldOp::create(ib, il, ValueRange{tensor::InsertOp::create(ib, il, sum, rowAcc[0],
                                                                                  ValueRange{row, j})});
              });
          scf::YieldOp::create(b, l, inner.getResults());
        });
    return outer.getResult(0);
  }
};

// result = x; status = [flat index, value] of the first element outside
// [0, limit) and not `ignore`, or [-1, 0]: one linalg.generic reducing over
// every dimension into two 0-d accumulators. An element replaces the kept one
// when it is bad and comes earlier (or none is kept), so the answer does not
// depend on the iteration order.
struct CheckRangeLowering : OpConversionPattern<CheckRangeOp> {
  using OpConversionPattern::OpConversionPattern;
  LogicalResult matchAndRewrite(CheckRangeOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = dyn_cast<RankedTensorType>(op.getX().getType());
    if (!type) return rewriter.notifyMatchFailure(op, "x must be ranked");
    int64_t rank = type.getRank();
    Type i64 = rewriter.getI64Type();
    auto scalar = RankedTensorType::get({}, i64);
    Value index = filledTensor(rewriter, loc, scalar, scalarConstant(rewriter, loc, i64, -1));
    Value value = filledTensor(rewriter, loc, scalar, scalarConstant(rewriter, loc, i64, 0));
    SmallVector<Value> sizes;
    for (int64_t d = 0; d < rank; ++d) sizes.push_back(dimValue(rewriter, loc, type, d));
    auto toScalar = AffineMap::get(rank, 0, {}, rewriter.getContext());
    SmallVector<AffineMap> maps{rewriter.getMultiDimIdentityMap(rank), toScalar, toScalar};
    SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::reduction);
    auto limit = static_cast<int64_t>(op.getLimit());  // I64Attr's getters are unsigned
    std::optional<int64_t> ignore;
    if (op.getIgnore()) ignore = static_cast<int64_t>(*op.getIgnore());
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{scalar, scalar}, ValueRange{adaptor.getX()}, ValueRange{index, value}, maps,
        iterators, [&](OpBuilder& b, Location l, ValueRange args) {
          Value v = args[0];
          if (v.getType() != i64) v = arith::ExtSIOp::create(b, l, i64, v);
          Value flat = indexConstant(b, l, 0);
          for (int64_t d = 0; d < rank; ++d) {
            flat = arith::MulIOp::create(b, l, flat, sizes[d]);
            flat = arith::AddIOp::create(b, l, flat, linalg::IndexOp::create(b, l, d));
          }
          flat = arith::IndexCastOp::create(b, l, i64, flat);
          auto constant = [&](int64_t c) -> Value { return arith::ConstantIntOp::create(b, l, c, 64); };
          Value below = arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, v, constant(0));
          Value above = arith::CmpIOp::create(b, l, arith::CmpIPredicate::sge, v, constant(limit));
          Value bad = arith::OrIOp::create(b, l, below, above);
          if (ignore) {
            Value ignored = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ne, v, constant(*ignore));
            bad = arith::AndIOp::create(b, l, bad, ignored);
          }
          Value none = arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, args[1], constant(0));
          Value earlier = arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, flat, args[1]);
          Value take = arith::AndIOp::create(b, l, bad, arith::OrIOp::create(b, l, none, earlier));
          linalg::YieldOp::create(b, l, ValueRange{arith::SelectOp::create(b, l, take, flat, args[1]),
                                                   arith::SelectOp::create(b, l, take, v, args[2])});
        });
    Value first = tensor::ExtractOp::create(rewriter, loc, generic.getResult(0), ValueRange{});
    Value offending = tensor::ExtractOp::create(rewriter, loc, generic.getResult(1), ValueRange{});
    Value status = tensor::FromElementsOp::create(rewriter, loc, RankedTensorType::get({2}, i64),
                                                  ValueRange{first, offending});
    rewriter.replaceOp(op, ValueRange{adaptor.getX(), status});
    return success();
  }
};

// Element i (C order) = philox::uniform(seed, offset + i) with key = (seed, offset).
struct RngUniformLowering : KilnLowering<RngUniformOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(RngUniformOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    Type i32 = rewriter.getI32Type(), i64 = rewriter.getI64Type();
    auto constant32 = [&](OpBuilder& b, Location l, uint32_t v) -> Value {
      return arith::ConstantOp::create(b, l, b.getIntegerAttr(i32, APInt(32, v)));
    };
    auto low32 = [&](OpBuilder& b, Location l, Value v) -> Value { return arith::TruncIOp::create(b, l, i32, v); };
    auto high32 = [&](OpBuilder& b, Location l, Value v) -> Value {
      Value shift = arith::ConstantOp::create(b, l, b.getIntegerAttr(i64, 32));
      return arith::TruncIOp::create(b, l, i32, arith::ShRUIOp::create(b, l, v, shift));
    };
    Value seed = tensor::ExtractOp::create(rewriter, loc, adaptor.getKey(), ValueRange{indexConstant(rewriter, loc, 0)});
    Value offset = tensor::ExtractOp::create(rewriter, loc, adaptor.getKey(), ValueRange{indexConstant(rewriter, loc, 1)});
    // The round keys: k0 += 0x9E3779B9, k1 += 0xBB67AE85 after each round.
    SmallVector<Value> k0{low32(rewriter, loc, seed)}, k1{high32(rewriter, loc, seed)};
    for (int round = 1; round < 10; ++round) {
      k0.push_back(arith::AddIOp::create(rewriter, loc, k0.back(), constant32(rewriter, loc, 0x9E3779B9u)));
      k1.push_back(arith::AddIOp::create(rewriter, loc, k1.back(), constant32(rewriter, loc, 0xBB67AE85u)));
    }
    SmallVector<Value> sizes;
    for (int64_t d = 0; d < type.getRank(); ++d) sizes.push_back(dimValue(rewriter, loc, type, d));
    return buildParallelGeneric(rewriter, loc, type, {}, {}, [&](OpBuilder& b, Location l, ValueRange) -> Value {
      Value flat = indexConstant(b, l, 0);
      for (int64_t d = 0; d < type.getRank(); ++d) {
        flat = arith::MulIOp::create(b, l, flat, sizes[d]);
        flat = arith::AddIOp::create(b, l, flat, linalg::IndexOp::create(b, l, d));
      }
      Value counter = arith::AddIOp::create(b, l, offset, arith::IndexCastOp::create(b, l, i64, flat));
      Value c0 = low32(b, l, counter), c1 = high32(b, l, counter);
      Value c2 = constant32(b, l, 0), c3 = c2;
      Value m0 = constant32(b, l, 0xD2511F53u), m1 = constant32(b, l, 0xCD9E8D57u);
      for (int round = 0; round < 10; ++round) {
        auto p0 = arith::MulUIExtendedOp::create(b, l, m0, c0);
        auto p1 = arith::MulUIExtendedOp::create(b, l, m1, c2);
        Value n0 = arith::XOrIOp::create(b, l, arith::XOrIOp::create(b, l, p1.getHigh(), c1), k0[round]);
        Value n2 = arith::XOrIOp::create(b, l, arith::XOrIOp::create(b, l, p0.getHigh(), c3), k1[round]);
        c1 = p1.getLow();
        c3 = p0.getLow();
        c0 = n0;
        c2 = n2;
      }
      // 24 random bits, exact in f32 and f64: (c0 >> 8) * 2^-24.
      Value bits = arith::ShRUIOp::create(b, l, c0, constant32(b, l, 8));
      Value f = arith::UIToFPOp::create(b, l, type.getElementType(), bits);
      return arith::MulFOp::create(b, l, f, scalarConstant(b, l, type.getElementType(), 1.0 / 16777216.0));
    });
  }
};

}  // namespace

void populateGatherScatterRngLoweringPatterns(RewritePatternSet& patterns) {
  patterns.add<GatherLowering, ScatterAddLowering, CheckRangeLowering, RngUniformLowering>(patterns.getContext());
}

}  // namespace kiln::passes
