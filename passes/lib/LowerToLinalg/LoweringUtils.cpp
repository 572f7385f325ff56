// Builders shared by the op families of -kiln-lower-to-linalg.
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"

using namespace mlir;

namespace kiln::passes {

Value batchSize(OpBuilder& b) {
  Operation* parent = b.getInsertionBlock()->getParentOp();
  auto func = dyn_cast<func::FuncOp>(parent);
  if (!func) func = parent->getParentOfType<func::FuncOp>();
  if (func)
    for (Operation& op : func.front())
      if (op.hasAttr(kBatchSizeAttr)) return op.getResult(0);
  llvm::report_fatal_error("kiln-lower-to-linalg: a dynamic dimension without the function's batch size");
}

Value dimValue(OpBuilder& b, Location loc, RankedTensorType type, int64_t d) {
  return type.isDynamicDim(d) ? batchSize(b) : indexConstant(b, loc, type.getDimSize(d));
}

SmallVector<OpFoldResult> mixedSizes(OpBuilder& b, RankedTensorType type) {
  SmallVector<OpFoldResult> sizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    sizes.push_back(type.isDynamicDim(d) ? OpFoldResult(batchSize(b)) : OpFoldResult(b.getIndexAttr(type.getDimSize(d))));
  return sizes;
}

Value emptyTensor(OpBuilder& b, Location loc, RankedTensorType type) {
  SmallVector<Value> dynamic;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d)) dynamic.push_back(batchSize(b));
  return tensor::EmptyOp::create(b, loc, type.getShape(), type.getElementType(), dynamic);
}

Value filledTensor(OpBuilder& b, Location loc, RankedTensorType type, Value scalar) {
  return linalg::FillOp::create(b, loc, ValueRange{scalar}, ValueRange{emptyTensor(b, loc, type)})
      .getResult(0);
}

Value scalarConstant(OpBuilder& b, Location loc, Type type, double value) {
  if (auto f = dyn_cast<FloatType>(type)) return arith::ConstantOp::create(b, loc, b.getFloatAttr(f, value));
  auto i = cast<IntegerType>(type);
  APInt bits = i.getWidth() == 1 ? APInt(1, value != 0 ? 1 : 0)
                                 : APInt(i.getWidth(), static_cast<uint64_t>(static_cast<int64_t>(value)),
                                         /*isSigned=*/true, /*implicitTrunc=*/true);
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(i, bits));
}

Value lowestScalar(OpBuilder& b, Location loc, Type type) {
  if (auto f = dyn_cast<FloatType>(type))
    return arith::ConstantOp::create(
        b, loc, b.getFloatAttr(f, APFloat::getInf(f.getFloatSemantics(), /*Negative=*/true)));
  auto i = cast<IntegerType>(type);
  APInt bits = i.getWidth() == 1 ? APInt(1, 0) : APInt::getSignedMinValue(i.getWidth());
  return arith::ConstantOp::create(b, loc, b.getIntegerAttr(i, bits));
}

Value indexConstant(OpBuilder& b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

SmallVector<OpFoldResult> indexAttrs(OpBuilder& b, ArrayRef<int64_t> values) {
  SmallVector<OpFoldResult> out;
  for (int64_t v : values) out.push_back(b.getIndexAttr(v));
  return out;
}

Value convertScalar(OpBuilder& b, Location loc, Value v, Type to) {
  Type from = v.getType();
  if (from == to) return v;
  auto fromFloat = dyn_cast<FloatType>(from);
  auto toFloat = dyn_cast<FloatType>(to);
  if (fromFloat && toFloat) {
    if (toFloat.getWidth() > fromFloat.getWidth()) return arith::ExtFOp::create(b, loc, to, v);
    return arith::TruncFOp::create(b, loc, to, v);
  }
  if (toFloat) {
    if (from.isInteger(1)) return arith::UIToFPOp::create(b, loc, to, v);
    return arith::SIToFPOp::create(b, loc, to, v);
  }
  if (to.isInteger(1)) {
    Value zero = scalarConstant(b, loc, from, 0);
    if (fromFloat) return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, v, zero);
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, v, zero);
  }
  if (fromFloat) return arith::FPToSIOp::create(b, loc, to, v);
  if (from.isInteger(1)) return arith::ExtUIOp::create(b, loc, to, v);
  if (to.getIntOrFloatBitWidth() > from.getIntOrFloatBitWidth()) return arith::ExtSIOp::create(b, loc, to, v);
  return arith::TruncIOp::create(b, loc, to, v);
}

Value addScalars(OpBuilder& b, Location loc, Value lhs, Value rhs) {
  if (isa<FloatType>(lhs.getType())) return arith::AddFOp::create(b, loc, lhs, rhs);
  if (lhs.getType().isInteger(1)) return arith::OrIOp::create(b, loc, lhs, rhs);
  return arith::AddIOp::create(b, loc, lhs, rhs);
}

// All dimensions of a rank-`rank` tensor in one reassociation group.
static SmallVector<ReassociationIndices> oneGroup(int64_t rank) {
  if (rank == 0) return {};
  ReassociationIndices all;
  for (int64_t d = 0; d < rank; ++d) all.push_back(d);
  return {all};
}

Value reshapeTensor(OpBuilder& b, Location loc, Value v, RankedTensorType target) {
  auto source = tensorType(v);
  if (source.getShape() == target.getShape()) return v;
  if (source.getRank() > target.getRank()) {
    if (auto groups = getReassociationIndicesForCollapse(source.getShape(), target.getShape()))
      return tensor::CollapseShapeOp::create(b, loc, target, v, *groups);
  } else if (source.getRank() < target.getRank()) {
    if (auto groups = getReassociationIndicesForCollapse(target.getShape(), source.getShape()))
      return tensor::ExpandShapeOp::create(b, loc, target, v, *groups);
  }
  // No single collapse/expand: go through the flat vector (dynamic when the
  // source has a dynamic dimension; the expansion infers it back).
  auto flat = RankedTensorType::get({source.hasStaticShape() ? source.getNumElements() : ShapedType::kDynamic},
                                    source.getElementType());
  Value flatValue = v;
  if (source.getRank() != 1) flatValue = tensor::CollapseShapeOp::create(b, loc, flat, v, oneGroup(source.getRank()));
  if (target.getRank() == 1) return flatValue;
  return tensor::ExpandShapeOp::create(b, loc, target, flatValue, oneGroup(target.getRank()));
}

Value buildParallelGeneric(OpBuilder& b, Location loc, RankedTensorType resultType, ValueRange inputs,
                           ArrayRef<AffineMap> inputMaps, ScalarBodyBuilder body) {
  int64_t rank = resultType.getRank();
  AffineMap identity = b.getMultiDimIdentityMap(rank);
  SmallVector<AffineMap> maps(inputMaps.begin(), inputMaps.end());
  if (maps.empty()) maps.assign(inputs.size(), identity);
  maps.push_back(identity);
  SmallVector<utils::IteratorType> iterators(rank, utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{resultType}, inputs, ValueRange{emptyTensor(b, loc, resultType)}, maps, iterators,
      [&](OpBuilder& nb, Location nloc, ValueRange args) {
        Value result = body(nb, nloc, args.drop_back());
        linalg::YieldOp::create(nb, nloc, result);
      });
  return generic.getResult(0);
}

}  // namespace kiln::passes
