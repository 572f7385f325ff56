// Batch-dimension rules of kiln ops (BatchDimOpInterface), one rule per op.
#include "kiln/ir/KilnDialect.h"

#include <algorithm>

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace kiln::ir;

BatchDims kiln::ir::batchDimsByValue(ArrayRef<int64_t> shape, int64_t batch) {
  BatchDims dims;
  for (int64_t d : shape) dims.push_back(d == batch ? BatchDim::Yes : BatchDim::No);
  return dims;
}

BatchDims kiln::ir::introducedBatchDims(ArrayRef<int64_t> shape, int64_t batch) {
  BatchDims dims;
  for (int64_t d : shape) dims.push_back(d == batch ? BatchDim::Unknown : BatchDim::No);
  return dims;
}

Type kiln::ir::withBatchDims(Type type, ArrayRef<BatchDim> dims) {
  auto tensor = cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(tensor.getShape());
  for (size_t d = 0; d < shape.size() && d < dims.size(); ++d)
    if (dims[d] == BatchDim::Yes) shape[d] = ShapedType::kDynamic;
  return RankedTensorType::get(shape, tensor.getElementType());
}

Value kiln::ir::createSplat(OpBuilder& builder, Location loc, RankedTensorType type, Attribute element) {
  if (type.hasStaticShape()) return ConstantOp::create(builder, loc, DenseElementsAttr::get(type, element));
  auto scalar = RankedTensorType::get({}, type.getElementType());
  Value c = ConstantOp::create(builder, loc, DenseElementsAttr::get(scalar, element));
  return BroadcastToOp::create(builder, loc, type, c);
}

namespace {

constexpr BatchDim kNo = BatchDim::No, kYes = BatchDim::Yes, kUnknown = BatchDim::Unknown;

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

// The batch if either says so, else not if either says not.
BatchDim join(BatchDim a, BatchDim b) {
  if (a == kYes || b == kYes) return kYes;
  if (a == kNo || b == kNo) return kNo;
  return kUnknown;
}

// One says the batch, the other says not: the two cannot be one dimension.
bool conflict(BatchDim a, BatchDim b) { return (a == kYes && b == kNo) || (a == kNo && b == kYes); }

bool anyYes(ArrayRef<BatchDim> dims, size_t from = 0) {
  return llvm::any_of(dims.drop_front(std::min(from, dims.size())), [](BatchDim d) { return d == kYes; });
}

int64_t product(ArrayRef<int64_t> shape, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to && i < shape.size(); ++i) p *= shape[i];
  return p;
}

// A shape with its batch dimensions written `B`: "(B, 3)".
std::string describe(ArrayRef<int64_t> shape, ArrayRef<BatchDim> dims) {
  std::string s = "(";
  for (size_t d = 0; d < shape.size(); ++d) {
    s += d ? ", " : "";
    s += d < dims.size() && dims[d] == kYes ? std::string("B") : std::to_string(shape[d]);
  }
  return s + ")";
}

std::string describeOperands(Operation* op, ArrayRef<BatchDims> operands) {
  std::string s;
  for (auto [i, v] : llvm::enumerate(op->getOperands()))
    s += (i ? ", " : "") + describe(shapeOf(v), i < operands.size() ? ArrayRef<BatchDim>(operands[i]) : ArrayRef<BatchDim>());
  return s;
}

// Reductions: the kept dimensions keep their batch dimension; a kept axis (keepdims) has size 1.
BatchDims reduceBatchDims(ArrayRef<BatchDim> in, ArrayRef<int64_t> axes, bool keepdims) {
  BatchDims r;
  for (size_t d = 0; d < in.size(); ++d) {
    bool reduced = llvm::is_contained(axes, static_cast<int64_t>(d));
    if (!reduced) r.push_back(in[d]);
    else if (keepdims) r.push_back(kNo);
  }
  return r;
}

// NCHW data whose channels and spatial dimensions are static (convolutions, their gradients).
bool batchOnlyInLeadingDim(ArrayRef<BatchDim> x) { return !anyYes(x, 1); }

// A convolution of NCHW data `x` with a static filter `w`: (N, C', Ho, Wo),
// C' from the filter's dimension `channels`.
LogicalResult convolutionBatchDims(const BatchDims& x, const BatchDims& w, size_t channels,
                                   SmallVectorImpl<BatchDims>& results) {
  if (!batchOnlyInLeadingDim(x) || anyYes(w)) return failure();
  results.push_back(BatchDims{x[0], w[channels], kNo, kNo});
  return success();
}

// By value inside a region: every dimension of size `batch` is the batch.
void byValue(Block& block, int64_t batch, llvm::DenseMap<Value, BatchDims>& dims) {
  for (BlockArgument a : block.getArguments()) dims[a] = batchDimsByValue(shapeOf(a), batch);
  for (Operation& op : block)
    for (Value r : op.getResults()) dims[r] = batchDimsByValue(shapeOf(r), batch);
}

SmallVector<BatchDims> dimsOf(ValueRange values, const llvm::DenseMap<Value, BatchDims>& dims) {
  SmallVector<BatchDims> r;
  for (Value v : values) r.push_back(dims.lookup(v));
  return r;
}

}  // namespace

LogicalResult kiln::ir::inferBatchDims(Operation* op, ArrayRef<BatchDims> operands, int64_t batch,
                                       SmallVectorImpl<BatchDims>& results, std::string* reason) {
  results.clear();
  if (op->hasTrait<OpTrait::Elementwise>()) {
    for (Value r : op->getResults()) {
      size_t rank = shapeOf(r).size();
      BatchDims joined(rank, kUnknown);
      for (const BatchDims& in : operands)
        if (in.size() == rank)
          for (size_t d = 0; d < rank; ++d) joined[d] = join(joined[d], in[d]);
      results.push_back(std::move(joined));
    }
    return success();
  }
  auto rule = dyn_cast<BatchDimOpInterface>(op);
  if (!rule) {
    if (reason) *reason = "has no batch-dimension rule (BatchDimOpInterface)";
    return failure();
  }
  if (failed(rule.inferBatchDims(operands, batch, results)) || results.size() != op->getNumResults()) {
    if (reason) *reason = "cannot take a symbolic batch size with operands " + describeOperands(op, operands);
    return failure();
  }
  return success();
}

LogicalResult kiln::ir::verifyBatchDims(Operation* op, ArrayRef<BatchDims> operands, ArrayRef<BatchDims> results,
                                        int64_t batch, std::string* reason) {
  auto mismatch = [&](const std::string& what) {
    if (reason) *reason = what;
    return failure();
  };
  if (op->hasTrait<OpTrait::Elementwise>()) {
    for (auto [i, in] : llvm::enumerate(operands))
      if (!results.empty() && in != results[0])
        return mismatch("has operands " + describeOperands(op, operands) + " that differ in their batch dimensions");
    return success();
  }
  SmallVector<BatchDims> expected;
  if (failed(inferBatchDims(op, operands, batch, expected, reason))) return failure();
  for (size_t r = 0; r < results.size(); ++r)
    for (size_t d = 0; d < results[r].size(); ++d)
      if (d >= expected[r].size() || (expected[r][d] != kUnknown && expected[r][d] != results[r][d]))
        return mismatch("has a result " + describe(shapeOf(op->getResult(r)), results[r]) +
                        " that does not follow from its operands " + describeOperands(op, operands));
  return success();
}

LogicalResult kiln::ir::generalizeBatchDims(RewriterBase& rewriter, Operation* op, ArrayRef<BatchDims> operands,
                                            ArrayRef<BatchDims> results, int64_t batch) {
  rewriter.modifyOpInPlace(op, [&] {
    for (auto [r, dims] : llvm::zip(op->getResults(), results)) r.setType(withBatchDims(r.getType(), dims));
  });
  if (auto rule = dyn_cast<BatchDimOpInterface>(op)) return rule.generalizeBatch(rewriter, operands, batch);
  return success();
}

//===--- constants and generators: sizes from attributes -------------------===//

LogicalResult ConstantOp::inferBatchDims(ArrayRef<BatchDims>, int64_t batch, SmallVectorImpl<BatchDims>& results) {
  // Only a splat can take a run-time shape (a 0-d constant broadcast to it).
  auto dense = dyn_cast<DenseElementsAttr>(getValue());
  ArrayRef<int64_t> shape = getType().getShape();
  results.push_back(dense && dense.isSplat() ? introducedBatchDims(shape, batch)
                                             : BatchDims(shape.size(), kNo));
  return success();
}

LogicalResult ConstantOp::generalizeBatch(RewriterBase& rewriter, ArrayRef<BatchDims>, int64_t) {
  auto type = cast<RankedTensorType>(getType());
  if (type.hasStaticShape()) return success();
  auto dense = dyn_cast<DenseElementsAttr>(getValue());
  if (!dense || !dense.isSplat()) return emitOpError("only a splat constant can have a symbolic batch size");
  rewriter.setInsertionPoint(*this);
  rewriter.replaceOp(*this, createSplat(rewriter, getLoc(), type, dense.getSplatValue<Attribute>()));
  return success();
}

LogicalResult IotaOp::inferBatchDims(ArrayRef<BatchDims>, int64_t batch, SmallVectorImpl<BatchDims>& results) {
  results.push_back(introducedBatchDims(getType().getShape(), batch));
  return success();
}

LogicalResult RngUniformOp::inferBatchDims(ArrayRef<BatchDims>, int64_t batch,
                                           SmallVectorImpl<BatchDims>& results) {
  results.push_back(introducedBatchDims(getType().getShape(), batch));
  return success();
}

//===--- shape and data movement -------------------------------------------===//

LogicalResult BroadcastToOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t batch,
                                            SmallVectorImpl<BatchDims>& results) {
  ArrayRef<int64_t> in = getX().getType().getShape(), out = getType().getShape();
  size_t offset = out.size() - in.size();
  BatchDims r(out.size(), kNo);
  for (size_t d = 0; d < out.size(); ++d) {
    bool aligned = d >= offset && in[d - offset] == out[d];
    // A stretched or new dimension comes from the target shape: settled by its users.
    r[d] = aligned ? operands[0][d - offset] : (out[d] == batch ? kUnknown : kNo);
  }
  results.push_back(std::move(r));
  return success();
}

LogicalResult ReshapeOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t batch,
                                        SmallVectorImpl<BatchDims>& results) {
  // A batch dimension keeps its place relative to the elements before and after it.
  ArrayRef<int64_t> in = getX().getType().getShape(), out = getType().getShape();
  BatchDims r(out.size(), kNo);
  int64_t yesIn = 0, yesOut = 0;
  for (size_t p = 0; p < in.size(); ++p) {
    if (operands[0][p] == kNo) continue;
    yesIn += operands[0][p] == kYes;
    int64_t before = product(in, 0, p), after = product(in, p + 1, in.size());
    for (size_t q = 0; q < out.size(); ++q)
      if (out[q] == batch && product(out, 0, q) == before && product(out, q + 1, out.size()) == after) {
        r[q] = operands[0][p];
        yesOut += r[q] == kYes;
      }
  }
  // A batch dimension merged with others (or split) has no size of its own in the result.
  if (yesIn != yesOut) return failure();
  results.push_back(std::move(r));
  return success();
}

LogicalResult TransposeOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                          SmallVectorImpl<BatchDims>& results) {
  BatchDims r;
  for (int64_t p : getPermutation()) r.push_back(operands[0][p]);
  results.push_back(std::move(r));
  return success();
}

LogicalResult SliceOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                      SmallVectorImpl<BatchDims>& results) {
  ArrayRef<int64_t> in = getX().getType().getShape();
  auto start = getStart(), limit = getLimit(), step = getStep();
  BatchDims r(in.size(), kNo);
  for (size_t d = 0; d < in.size(); ++d) {
    bool whole = start[d] == 0 && step[d] == 1 && limit[d] == in[d];
    // A batch dimension can be sliced only whole (part of it has a size of its own).
    if (operands[0][d] == kYes && !whole) return failure();
    r[d] = whole ? operands[0][d] : kNo;
  }
  results.push_back(std::move(r));
  return success();
}

LogicalResult SliceOp::generalizeBatch(RewriterBase& rewriter, ArrayRef<BatchDims> operands, int64_t) {
  // kiln.slice's rule for a dynamic dimension: kept whole, limit `?`.
  SmallVector<int64_t> limit(getLimit());
  for (size_t d = 0; d < limit.size(); ++d)
    if (operands[0][d] == kYes) limit[d] = ShapedType::kDynamic;
  rewriter.modifyOpInPlace(*this, [&] { setLimit(limit); });
  return success();
}

LogicalResult PadOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t, SmallVectorImpl<BatchDims>& results) {
  auto low = getLow(), high = getHigh(), interior = getInterior();
  BatchDims r(operands[0].size(), kNo);
  for (size_t d = 0; d < r.size(); ++d) {
    bool unpadded = low[d] == 0 && high[d] == 0 && interior[d] == 0;
    if (operands[0][d] == kYes && !unpadded) return failure();  // a padded batch is not the batch size
    r[d] = unpadded ? operands[0][d] : kNo;
  }
  results.push_back(std::move(r));
  return success();
}

LogicalResult ReverseOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                        SmallVectorImpl<BatchDims>& results) {
  for (int64_t d : getDimensions())
    if (operands[0][d] == kYes) return failure();  // the lowering reverses static dimensions
  results.push_back(operands[0]);
  return success();
}

LogicalResult ConcatOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                       SmallVectorImpl<BatchDims>& results) {
  size_t rank = getType().getRank(), axis = static_cast<size_t>(getAxis());
  BatchDims r(rank, kUnknown);
  for (const BatchDims& in : operands) {
    if (in.size() != rank || in[axis] == kYes) return failure();  // the axis needs static sizes
    for (size_t d = 0; d < rank; ++d) {
      if (conflict(r[d], in[d])) return failure();
      r[d] = join(r[d], in[d]);
    }
  }
  r[axis] = kNo;
  results.push_back(std::move(r));
  return success();
}

//===--- reductions ----------------------------------------------------------===//

LogicalResult ReduceSumOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                          SmallVectorImpl<BatchDims>& results) {
  results.push_back(reduceBatchDims(operands[0], getAxes(), getKeepdims()));
  return success();
}

LogicalResult ReduceMaxOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                          SmallVectorImpl<BatchDims>& results) {
  results.push_back(reduceBatchDims(operands[0], getAxes(), getKeepdims()));
  return success();
}

LogicalResult ArgmaxOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                       SmallVectorImpl<BatchDims>& results) {
  BatchDims r = operands[0];
  r.erase(r.begin() + getAxis());
  results.push_back(std::move(r));
  return success();
}

LogicalResult DimSizeOp::inferBatchDims(ArrayRef<BatchDims>, int64_t, SmallVectorImpl<BatchDims>& results) {
  results.push_back(BatchDims(getType().getRank(), kNo));  // a count: computed at run time
  return success();
}

//===--- contractions, convolution, pooling, gather -------------------------===//

LogicalResult MatmulOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                       SmallVectorImpl<BatchDims>& results) {
  const BatchDims &a = operands[0], &b = operands[1];
  size_t rank = getType().getRank();
  if (getSumBatch()) {  // the batch's products summed: the rows are contracted
    if (a.size() != b.size()) return failure();
    for (size_t d = 0; d + 1 < a.size(); ++d)
      if (conflict(a[d], b[d])) return failure();
    BatchDims r{a.back(), b.back()};
    results.push_back(std::move(r));
    return success();
  }
  if (b.size() == 2 && a.size() == rank && rank > 2) {  // a 2-d b shared by the batch of a
    BatchDims r(a.begin(), a.end() - 1);
    r.push_back(getTransposeB() ? b[0] : b[1]);
    if (conflict(a.back(), getTransposeB() ? b[1] : b[0])) return failure();
    results.push_back(std::move(r));
    return success();
  }
  if (a.size() != rank || b.size() != rank || rank < 2) return failure();
  BatchDims r(rank, kNo);
  for (size_t d = 0; d + 2 < rank; ++d) {
    if (conflict(a[d], b[d])) return failure();
    r[d] = join(a[d], b[d]);
  }
  // The contracted dimension may be the batch (x^T y), but in both operands.
  BatchDim ka = getTransposeA() ? a[rank - 2] : a[rank - 1], kb = getTransposeB() ? b[rank - 1] : b[rank - 2];
  if (conflict(ka, kb)) return failure();
  r[rank - 2] = getTransposeA() ? a[rank - 1] : a[rank - 2];
  r[rank - 1] = getTransposeB() ? b[rank - 2] : b[rank - 1];
  results.push_back(std::move(r));
  return success();
}

LogicalResult Conv2DOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                       SmallVectorImpl<BatchDims>& results) {
  // x (N, C, H, W), w (O, C, kh, kw) -> (N, O, Ho, Wo): only N may be the batch.
  return convolutionBatchDims(operands[0], operands[1], 0, results);
}

LogicalResult Conv2DGradInputOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                                SmallVectorImpl<BatchDims>& results) {
  // gy (N, O, Ho, Wo), w (O, C, kh, kw) -> (N, C, H, W).
  return convolutionBatchDims(operands[0], operands[1], 1, results);
}

LogicalResult Conv2DGradFilterOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                                 SmallVectorImpl<BatchDims>& results) {
  // x (N, C, H, W), gy (N, O, Ho, Wo) -> (O, C, kh, kw): the batch is summed over.
  const BatchDims &x = operands[0], &gy = operands[1];
  if (!batchOnlyInLeadingDim(x) || !batchOnlyInLeadingDim(gy) || conflict(x[0], gy[0])) return failure();
  results.push_back(BatchDims(4, kNo));
  return success();
}

LogicalResult Pool2DOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                       SmallVectorImpl<BatchDims>& results) {
  const BatchDims& x = operands[0];
  if (anyYes(x, 2)) return failure();  // windows over static spatial dimensions
  results.push_back(BatchDims{x[0], x[1], kNo, kNo});
  return success();
}

LogicalResult Pool2DGradOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                           SmallVectorImpl<BatchDims>& results) {
  const BatchDims &x = operands[0], &gy = operands[1];
  if (anyYes(x, 2) || anyYes(gy, 2) || conflict(x[0], gy[0]) || conflict(x[1], gy[1])) return failure();
  results.push_back(BatchDims{x[0], x[1], kNo, kNo});
  return success();
}

LogicalResult GatherOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                       SmallVectorImpl<BatchDims>& results) {
  // table (R, D), ids (...) -> (..., D); the table's rows bound the ids: static.
  const BatchDims &table = operands[0], &ids = operands[1];
  if (anyYes(table)) return failure();
  BatchDims r(ids.begin(), ids.end());
  r.push_back(table[1]);
  results.push_back(std::move(r));
  return success();
}

LogicalResult ScatterAddOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                           SmallVectorImpl<BatchDims>& results) {
  // ids (...), updates (..., D) [, base (R, D)] -> (R, D): the rows come from the result type; a
  // base (the table's accumulated gradient) is never batched.
  const BatchDims &ids = operands[0], &updates = operands[1];
  if (!updates.empty() && updates.back() == kYes) return failure();
  if (operands.size() > 2 && anyYes(operands[2])) return failure();
  for (size_t d = 0; d < ids.size() && d < updates.size(); ++d)
    if (conflict(ids[d], updates[d])) return failure();
  results.push_back(BatchDims(getType().getRank(), kNo));
  return success();
}

LogicalResult CheckRangeOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                           SmallVectorImpl<BatchDims>& results) {
  results.push_back(operands[0]);    // x, passed through
  results.push_back(BatchDims{kNo});  // the status
  return success();
}

//===--- autodiff requests ---------------------------------------------------===//

LogicalResult GradOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t, SmallVectorImpl<BatchDims>& results) {
  // y and its seed have one type (a seed given as a concrete array keeps y concrete).
  const BatchDims &y = operands[0], &seed = operands[1];
  for (size_t d = 0; d < y.size() && d < seed.size(); ++d)
    if (conflict(y[d], seed[d])) return failure();
  results.push_back(operands[2]);  // the gradient has x's type
  return success();
}

LogicalResult StopGradientOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                             SmallVectorImpl<BatchDims>& results) {
  results.push_back(operands[0]);
  return success();
}

//===--- user-defined functions ----------------------------------------------===//

// The regions are the user's graphs: every dimension of the batch's size is
// the batch there (as it is for the op's inputs and result), which each op
// inside must accept.
LogicalResult CustomOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t batch,
                                       SmallVectorImpl<BatchDims>& results) {
  for (auto [v, dims] : llvm::zip(getInputs(), operands))
    if (dims != batchDimsByValue(shapeOf(v), batch)) return failure();
  for (Region* region : {&getForward(), &getBackward()}) {
    llvm::DenseMap<Value, BatchDims> dims;
    byValue(region->front(), batch, dims);
    for (Operation& op : region->front().without_terminator())
      if (failed(verifyBatchDims(&op, dimsOf(op.getOperands(), dims), dimsOf(op.getResults(), dims), batch,
                                 nullptr)))
        return failure();
  }
  results.push_back(batchDimsByValue(getType().getShape(), batch));
  return success();
}

LogicalResult CustomOp::generalizeBatch(RewriterBase& rewriter, ArrayRef<BatchDims>, int64_t batch) {
  for (Region* region : {&getForward(), &getBackward()}) {
    Block& block = region->front();
    llvm::DenseMap<Value, BatchDims> dims;
    byValue(block, batch, dims);
    // Every op's dimensions first: generalizing an op may replace it.
    struct Step {
      Operation* op;
      SmallVector<BatchDims> operands, results;
    };
    SmallVector<Step> steps;
    for (Operation& op : block.without_terminator())
      steps.push_back({&op, dimsOf(op.getOperands(), dims), dimsOf(op.getResults(), dims)});
    for (BlockArgument a : block.getArguments()) a.setType(withBatchDims(a.getType(), dims[a]));
    for (Step& s : steps)
      if (failed(generalizeBatchDims(rewriter, s.op, s.operands, s.results, batch))) return failure();
  }
  return success();
}
