// Verifiers, result-type inference and folders of kiln ops.
#include "kiln/ir/KilnDialect.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace kiln::ir;

#define GET_OP_CLASSES
#include "kiln/ir/KilnOps.cpp.inc"

std::pair<int64_t, int64_t> kiln::ir::symbolicSize(ArrayRef<int64_t> shape) {
  int64_t product = 1, dynamic = 0;
  for (int64_t d : shape) {
    if (ShapedType::isDynamic(d)) ++dynamic;
    else product *= d;
  }
  return {product, dynamic};
}

namespace {

RankedTensorType tensorOf(ArrayRef<int64_t> shape, Type elem) {
  return RankedTensorType::get(shape, elem);
}

RankedTensorType rankedType(Value v) { return cast<RankedTensorType>(v.getType()); }

std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + (ShapedType::isDynamic(shape[i]) ? std::string("?") : std::to_string(shape[i]));
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Axis list normalized to [0, rank); fails on duplicates or out-of-range entries.
LogicalResult checkAxes(std::optional<Location> loc, ArrayRef<int64_t> axes, int64_t rank,
                        const char* what) {
  llvm::SmallVector<bool> seen(rank, false);
  for (int64_t a : axes) {
    if (a < 0 || a >= rank)
      return emitOptionalError(loc, what, " axis ", a, " out of range for rank ", rank);
    if (seen[a]) return emitOptionalError(loc, what, " axis ", a, " repeated");
    seen[a] = true;
  }
  return success();
}

// Output size of a sliding window (convolution/pooling), cover_all = false.
// A dynamic (`?`) input size gives a dynamic output size.
int64_t windowOut(int64_t in, int64_t k, int64_t s, int64_t p) {
  if (ShapedType::isDynamic(in)) return ShapedType::kDynamic;
  return (in + 2 * p - k) / s + 1;
}


LogicalResult checkPair(std::optional<Location> loc, ArrayRef<int64_t> v, const char* name,
                        int64_t minimum) {
  if (v.size() != 2) return emitOptionalError(loc, name, " must have 2 entries, got ", v.size());
  for (int64_t e : v)
    if (e < minimum) return emitOptionalError(loc, name, " entries must be >= ", minimum, ", got ", e);
  return success();
}

}  // namespace

//===--- constant, iota --------------------------------------------------===//

LogicalResult ConstantOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                           Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto type = dyn_cast<RankedTensorType>(adaptor.getValue().getType());
  if (!type) return emitOptionalError(loc, "constant value must be a ranked tensor");
  // Elements attributes of dynamic shape are malformed (MLIR asserts on them
  // where assertions are on): a constant of a symbolic shape is a 0-d
  // constant broadcast to it.
  if (!type.hasStaticShape())
    return emitOptionalError(loc, "constant value must have a static shape, got ", type,
                             " (broadcast a 0-d constant to a dynamic shape)");
  types.push_back(type);
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult IotaOp::verify() {
  int64_t rank = getType().getRank();
  if (getDimension() < 0 || getDimension() >= rank)
    return emitOpError("dimension ") << getDimension() << " out of range for rank " << rank;
  return success();
}

LogicalResult RngUniformOp::verify() {
  auto key = getKey().getType();
  if (key.getRank() != 1 || key.getDimSize(0) != 2)
    return emitOpError("key must be tensor<2xi64> (seed, offset), got ") << key;
  return success();
}

//===--- elementwise -------------------------------------------------------===//

LogicalResult CompareOp::inferReturnTypes(MLIRContext* ctx, std::optional<Location> loc,
                                          Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto lhs = rankedType(adaptor.getLhs());
  if (lhs != rankedType(adaptor.getRhs()))
    return emitOptionalError(loc, "compare operands must have one type");
  types.push_back(tensorOf(lhs.getShape(), IntegerType::get(ctx, 1)));
  return success();
}

LogicalResult CompareOp::verify() {
  static const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  if (!llvm::is_contained(names, getPredicate()))
    return emitOpError("unknown predicate '") << getPredicate() << "' (expected eq, ne, lt, le, gt or ge)";
  return success();
}

// The predicate is one of the scalar comparisons (ScalarExpr.h): `ne` is true
// for NaN as C's !=, the others are ordered.
StringRef CompareOp::getScalarSemantics() {
  return llvm::StringSwitch<StringRef>(getPredicate())
      .Case("eq", "(eq x y)").Case("ne", "(ne x y)").Case("lt", "(lt x y)")
      .Case("le", "(le x y)").Case("gt", "(gt x y)").Default("(ge x y)");
}

LogicalResult SelectOp::verify() {
  if (getCond().getType().getShape() != getType().getShape())
    return emitOpError("condition shape must match the operands' shape");
  return success();
}

LogicalResult CastOp::verify() {
  if (getX().getType().getShape() != getType().getShape())
    return emitOpError("cast must keep the shape");
  return success();
}

//===--- shape ops -------------------------------------------------------===//

LogicalResult BroadcastToOp::verify() {
  auto in = getX().getType();
  auto out = getType();
  if (in.getElementType() != out.getElementType())
    return emitOpError("element type must not change");
  if (in.getRank() > out.getRank())
    return emitOpError("cannot broadcast rank ") << in.getRank() << " to rank " << out.getRank();
  int64_t offset = out.getRank() - in.getRank();
  for (int64_t i = 0; i < in.getRank(); ++i) {
    int64_t d = in.getDimSize(i);
    if (d != 1 && d != out.getDimSize(offset + i))
      return emitOpError("cannot broadcast shape ")
             << shapeString(in.getShape()) << " to " << shapeString(out.getShape());
  }
  return success();
}

LogicalResult ReshapeOp::verify() {
  if (symbolicSize(getX().getType().getShape()) != symbolicSize(getType().getShape()))
    return emitOpError("cannot reshape ")
           << shapeString(getX().getType().getShape()) << " to " << shapeString(getType().getShape());
  if (getX().getType().getElementType() != getType().getElementType())
    return emitOpError("element type must not change");
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto in = rankedType(adaptor.getX());
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (static_cast<int64_t>(perm.size()) != in.getRank())
    return emitOptionalError(loc, "permutation has ", perm.size(), " entries for rank ", in.getRank());
  if (failed(checkAxes(loc, perm, in.getRank(), "permutation"))) return failure();
  SmallVector<int64_t> shape;
  for (int64_t p : perm) shape.push_back(in.getDimSize(p));
  types.push_back(tensorOf(shape, in.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                        Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto in = rankedType(adaptor.getX());
  auto start = adaptor.getStart(), limit = adaptor.getLimit(), step = adaptor.getStep();
  int64_t rank = in.getRank();
  if ((int64_t)start.size() != rank || (int64_t)limit.size() != rank || (int64_t)step.size() != rank)
    return emitOptionalError(loc, "start, limit and step need one entry per dimension (", rank, ")");
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rank; ++i) {
    if (step[i] <= 0) return emitOptionalError(loc, "step must be positive, got ", step[i]);
    bool dynamic = in.isDynamicDim(i);
    if (dynamic && (start[i] != 0 || step[i] != 1 || limit[i] != ShapedType::kDynamic))
      return emitOptionalError(loc, "a dynamic dimension (", i, ") can only be kept whole");
    if (dynamic) {
      shape.push_back(ShapedType::kDynamic);
      continue;
    }
    if (start[i] < 0 || limit[i] < start[i] || limit[i] > in.getDimSize(i))
      return emitOptionalError(loc, "slice [", start[i], ", ", limit[i], ") out of bounds for dimension ",
                               i, " of size ", in.getDimSize(i));
    shape.push_back((limit[i] - start[i] + step[i] - 1) / step[i]);
  }
  types.push_back(tensorOf(shape, in.getElementType()));
  return success();
}

LogicalResult PadOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc, Adaptor adaptor,
                                      SmallVectorImpl<Type>& types) {
  auto in = rankedType(adaptor.getX());
  auto low = adaptor.getLow(), high = adaptor.getHigh(), interior = adaptor.getInterior();
  int64_t rank = in.getRank();
  if ((int64_t)low.size() != rank || (int64_t)high.size() != rank || (int64_t)interior.size() != rank)
    return emitOptionalError(loc, "low, high and interior need one entry per dimension (", rank, ")");
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < rank; ++i) {
    if (low[i] < 0 || high[i] < 0 || interior[i] < 0)
      return emitOptionalError(loc, "padding amounts must be non-negative");
    int64_t n = in.getDimSize(i);
    if (ShapedType::isDynamic(n)) {
      if (low[i] || high[i] || interior[i])
        return emitOptionalError(loc, "a dynamic dimension (", i, ") cannot be padded");
      shape.push_back(n);
      continue;
    }
    shape.push_back(low[i] + high[i] + n + std::max<int64_t>(n - 1, 0) * interior[i]);
  }
  types.push_back(tensorOf(shape, in.getElementType()));
  return success();
}

LogicalResult ReverseOp::verify() {
  return checkAxes(getLoc(), getDimensions(), getType().getRank(), "reverse");
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto inputs = adaptor.getInputs();
  if (inputs.empty()) return emitOptionalError(loc, "concat needs at least one input");
  auto first = rankedType(inputs[0]);
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= first.getRank())
    return emitOptionalError(loc, "axis ", axis, " out of range for rank ", first.getRank());
  SmallVector<int64_t> shape(first.getShape());
  shape[axis] = 0;
  for (Value v : inputs) {
    auto t = rankedType(v);
    if (t.getElementType() != first.getElementType() || t.getRank() != first.getRank())
      return emitOptionalError(loc, "concat inputs must share element type and rank");
    for (int64_t d = 0; d < t.getRank(); ++d)
      if (d != axis && t.getDimSize(d) != first.getDimSize(d))
        return emitOptionalError(loc, "concat inputs differ in dimension ", d);
    if (t.isDynamicDim(axis) || ShapedType::isDynamic(shape[axis])) shape[axis] = ShapedType::kDynamic;
    else shape[axis] += t.getDimSize(axis);
  }
  types.push_back(tensorOf(shape, first.getElementType()));
  return success();
}

//===--- reductions --------------------------------------------------------===//

static LogicalResult inferReduce(std::optional<Location> loc, Value x, ArrayRef<int64_t> axes,
                                 bool keepdims, SmallVectorImpl<Type>& types) {
  auto in = rankedType(x);
  if (failed(checkAxes(loc, axes, in.getRank(), "reduction"))) return failure();
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < in.getRank(); ++d) {
    bool reduced = llvm::is_contained(axes, d);
    if (!reduced) shape.push_back(in.getDimSize(d));
    else if (keepdims) shape.push_back(1);
  }
  types.push_back(tensorOf(shape, in.getElementType()));
  return success();
}

LogicalResult ReduceSumOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type>& types) {
  return inferReduce(loc, adaptor.getX(), adaptor.getAxes(), adaptor.getKeepdims(), types);
}

LogicalResult ReduceMaxOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type>& types) {
  return inferReduce(loc, adaptor.getX(), adaptor.getAxes(), adaptor.getKeepdims(), types);
}

LogicalResult ArgmaxOp::inferReturnTypes(MLIRContext* ctx, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto in = rankedType(adaptor.getX());
  int64_t axis = adaptor.getAxis();
  if (axis < 0 || axis >= in.getRank())
    return emitOptionalError(loc, "axis ", axis, " out of range for rank ", in.getRank());
  SmallVector<int64_t> shape(in.getShape());
  shape.erase(shape.begin() + axis);
  types.push_back(tensorOf(shape, IntegerType::get(ctx, 32)));
  return success();
}

LogicalResult DimSizeOp::verify() {
  if (getType().getRank() != 0) return emitOpError("result must be 0-d, got ") << getType();
  return checkAxes(getLoc(), getDims(), getX().getType().getRank(), "dim_size");
}

//===--- matmul, convolution, pooling, gather ------------------------------===//

LogicalResult MatmulOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto a = rankedType(adaptor.getA()), b = rankedType(adaptor.getB());
  bool sharedB = b.getRank() == 2 && a.getRank() > 2;  // (..., M, K) x (K, N): one GEMM over a's rows
  if (a.getRank() < 2 || (a.getRank() != b.getRank() && !sharedB))
    return emitOptionalError(loc, "matmul operands must have one rank >= 2 (or a 2-d b), got ", a.getRank(),
                             " and ", b.getRank());
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "matmul operands must have one element type");
  if (sharedB && adaptor.getTransposeA())
    return emitOptionalError(loc, "matmul with a 2-d b shared by a batch of ", a.getRank(),
                             "-d a takes a untransposed, got transpose_a");
  if (adaptor.getSumBatch() && (a.getRank() < 3 || sharedB || !adaptor.getTransposeA() || adaptor.getTransposeB()))
    return emitOptionalError(loc, "matmul sum_batch needs operands of one rank > 2, transpose_a and not "
                             "transpose_b, got ranks ", a.getRank(), " and ", b.getRank());
  int64_t r = a.getRank();
  if (sharedB) {
    int64_t k = b.getDimSize(adaptor.getTransposeB() ? 1 : 0), n = b.getDimSize(adaptor.getTransposeB() ? 0 : 1);
    if (a.getDimSize(r - 1) != k)
      return emitOptionalError(loc, "matmul inner dimensions differ: ", a.getDimSize(r - 1), " vs ", k);
    SmallVector<int64_t> shape(a.getShape().drop_back());
    shape.push_back(n);
    types.push_back(tensorOf(shape, a.getElementType()));
    return success();
  }
  for (int64_t d = 0; d < r - 2; ++d)
    if (a.getDimSize(d) != b.getDimSize(d))
      return emitOptionalError(loc, "matmul batch dimension ", d, " differs: ", a.getDimSize(d),
                               " vs ", b.getDimSize(d));
  int64_t m = adaptor.getTransposeA() ? a.getDimSize(r - 1) : a.getDimSize(r - 2);
  int64_t ka = adaptor.getTransposeA() ? a.getDimSize(r - 2) : a.getDimSize(r - 1);
  int64_t kb = adaptor.getTransposeB() ? b.getDimSize(r - 1) : b.getDimSize(r - 2);
  int64_t n = adaptor.getTransposeB() ? b.getDimSize(r - 2) : b.getDimSize(r - 1);
  if (ka != kb)
    return emitOptionalError(loc, "matmul inner dimensions differ: ", ka, " vs ", kb);
  SmallVector<int64_t> shape(a.getShape().begin(), a.getShape().end() - 2);
  if (adaptor.getSumBatch()) shape.clear();  // the batch's products summed
  shape.push_back(m);
  shape.push_back(n);
  types.push_back(tensorOf(shape, a.getElementType()));
  return success();
}

// The extent d * (k - 1) + 1 of a filter of size k dilated by d.
static int64_t dilatedExtent(int64_t k, int64_t d) { return d * (k - 1) + 1; }

// Shared checks of conv2d and its two gradients: x (N,C,H,W), w (O,C/groups,kh,kw), y (N,O,Ho,Wo).
static LogicalResult checkConv(std::optional<Location> loc, RankedTensorType x, RankedTensorType w,
                               RankedTensorType y, ArrayRef<int64_t> stride, ArrayRef<int64_t> pad,
                               ArrayRef<int64_t> dilate, int64_t groups) {
  if (failed(checkPair(loc, stride, "stride", 1)) || failed(checkPair(loc, pad, "pad", 0)) ||
      failed(checkPair(loc, dilate, "dilate", 1)))
    return failure();
  if (x.getRank() != 4 || w.getRank() != 4 || y.getRank() != 4)
    return emitOptionalError(loc, "conv2d tensors must be 4-d (NCHW, OIHW)");
  if (groups < 1) return emitOptionalError(loc, "conv2d groups must be >= 1, got ", groups);
  if (x.getDimSize(1) % groups != 0 || w.getDimSize(0) % groups != 0)
    return emitOptionalError(loc, "conv2d channels (input ", x.getDimSize(1), ", output ", w.getDimSize(0),
                             ") not divisible by groups ", groups);
  if (x.getDimSize(1) != w.getDimSize(1) * groups)
    return emitOptionalError(loc, "conv2d channels differ: input ", x.getDimSize(1), ", filter ",
                             w.getDimSize(1), " x groups ", groups);
  int64_t ho = windowOut(x.getDimSize(2), dilatedExtent(w.getDimSize(2), dilate[0]), stride[0], pad[0]);
  int64_t wo = windowOut(x.getDimSize(3), dilatedExtent(w.getDimSize(3), dilate[1]), stride[1], pad[1]);
  if ((ho <= 0 && !ShapedType::isDynamic(ho)) || (wo <= 0 && !ShapedType::isDynamic(wo)))
    return emitOptionalError(loc, "conv2d filter larger than padded input");
  SmallVector<int64_t> expect{x.getDimSize(0), w.getDimSize(0), ho, wo};
  if (y.getShape() != ArrayRef<int64_t>(expect))
    return emitOptionalError(loc, "conv2d output shape ", shapeString(y.getShape()), " expected ",
                             shapeString(expect));
  return success();
}

LogicalResult Conv2DOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto x = rankedType(adaptor.getX()), w = rankedType(adaptor.getW());
  auto s = adaptor.getStride(), p = adaptor.getPad(), d = adaptor.getDilate();
  if (failed(checkPair(loc, s, "stride", 1)) || failed(checkPair(loc, p, "pad", 0)) ||
      failed(checkPair(loc, d, "dilate", 1)))
    return failure();
  if (x.getRank() != 4 || w.getRank() != 4)
    return emitOptionalError(loc, "conv2d operands must be 4-d (NCHW, OIHW)");
  SmallVector<int64_t> shape{x.getDimSize(0), w.getDimSize(0),
                             windowOut(x.getDimSize(2), dilatedExtent(w.getDimSize(2), d[0]), s[0], p[0]),
                             windowOut(x.getDimSize(3), dilatedExtent(w.getDimSize(3), d[1]), s[1], p[1])};
  auto y = tensorOf(shape, x.getElementType());
  if (failed(checkConv(loc, x, w, y, s, p, d, adaptor.getGroups()))) return failure();
  types.push_back(y);
  return success();
}

LogicalResult Conv2DGradInputOp::verify() {
  return checkConv(getLoc(), getType(), getW().getType(), getGy().getType(), getStride(), getPad(), getDilate(),
                   getGroups());
}

LogicalResult Conv2DGradFilterOp::verify() {
  return checkConv(getLoc(), getX().getType(), getType(), getGy().getType(), getStride(), getPad(), getDilate(),
                   getGroups());
}

static LogicalResult checkPool(std::optional<Location> loc, StringRef kind, RankedTensorType x,
                               ArrayRef<int64_t> k, ArrayRef<int64_t> s, ArrayRef<int64_t> p,
                               SmallVectorImpl<int64_t>& out) {
  if (kind != "max" && kind != "avg")
    return emitOptionalError(loc, "pooling kind must be \"max\" or \"avg\", got \"", kind, "\"");
  if (failed(checkPair(loc, k, "ksize", 1)) || failed(checkPair(loc, s, "stride", 1)) ||
      failed(checkPair(loc, p, "pad", 0)))
    return failure();
  if (x.getRank() != 4) return emitOptionalError(loc, "pooling input must be 4-d (NCHW)");
  out.assign({x.getDimSize(0), x.getDimSize(1), windowOut(x.getDimSize(2), k[0], s[0], p[0]),
              windowOut(x.getDimSize(3), k[1], s[1], p[1])});
  if ((out[2] <= 0 && !ShapedType::isDynamic(out[2])) || (out[3] <= 0 && !ShapedType::isDynamic(out[3])))
    return emitOptionalError(loc, "pooling window larger than padded input");
  return success();
}

LogicalResult Pool2DOp::verify() { return success(); }

LogicalResult Pool2DOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto x = rankedType(adaptor.getX());
  SmallVector<int64_t> out;
  if (failed(checkPool(loc, adaptor.getKind(), x, adaptor.getKsize(), adaptor.getStride(),
                       adaptor.getPad(), out)))
    return failure();
  types.push_back(tensorOf(out, x.getElementType()));
  return success();
}

LogicalResult Pool2DGradOp::verify() {
  SmallVector<int64_t> out;
  if (failed(checkPool(getLoc(), getKind(), getX().getType(), getKsize(), getStride(), getPad(), out)))
    return failure();
  if (getGy().getType().getShape() != ArrayRef<int64_t>(out))
    return emitOpError("gy shape ") << shapeString(getGy().getType().getShape()) << " expected "
                                    << shapeString(out);
  if (getType() != getX().getType()) return emitOpError("result type must equal x's type");
  return success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext*, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type>& types) {
  auto table = rankedType(adaptor.getTable()), ids = rankedType(adaptor.getIds());
  if (table.getRank() != 2) return emitOptionalError(loc, "gather table must be 2-d");
  SmallVector<int64_t> shape(ids.getShape());
  shape.push_back(table.getDimSize(1));
  types.push_back(tensorOf(shape, table.getElementType()));
  return success();
}

LogicalResult ScatterAddOp::verify() {
  auto ids = getIds().getType(), upd = getUpdates().getType(), out = getType();
  if (out.getRank() != 2) return emitOpError("result must be 2-d (rows, width)");
  SmallVector<int64_t> expect(ids.getShape());
  expect.push_back(out.getDimSize(1));
  if (upd.getShape() != ArrayRef<int64_t>(expect))
    return emitOpError("updates shape ") << shapeString(upd.getShape()) << " expected "
                                         << shapeString(expect);
  if (upd.getElementType() != out.getElementType())
    return emitOpError("updates and result element types differ");
  if (getBase() && getBase().getType() != getType())
    return emitOpError("base type ") << getBase().getType() << " expected the result type " << getType();
  return success();
}

//===--- run-time checks ---------------------------------------------------===//

LogicalResult CheckRangeOp::inferReturnTypes(MLIRContext* ctx, std::optional<Location>, Adaptor adaptor,
                                             SmallVectorImpl<Type>& types) {
  types.push_back(adaptor.getX().getType());
  types.push_back(tensorOf({2}, IntegerType::get(ctx, 64)));
  return success();
}

LogicalResult CheckRangeOp::verify() {
  auto limit = static_cast<int64_t>(getLimit());  // I64Attr's getter is unsigned
  if (limit < 0) return emitOpError("limit must be >= 0, got ") << limit;
  auto status = dyn_cast<RankedTensorType>(getStatus().getType());
  if (!status || status.getShape() != ArrayRef<int64_t>{2})
    return emitOpError("status must be tensor<2xi64>, got ") << getStatus().getType();
  return success();
}

//===--- grad --------------------------------------------------------------===//

LogicalResult GradOp::inferReturnTypes(MLIRContext*, std::optional<Location>, Adaptor adaptor,
                                       SmallVectorImpl<Type>& types) {
  types.push_back(adaptor.getX().getType());
  return success();
}

LogicalResult GradOp::verify() {
  if (getY().getType() != getSeed().getType())
    return emitOpError("seed type ") << getSeed().getType() << " must equal y's type "
                                     << getY().getType();
  return success();
}

//===--- fusion, yield -----------------------------------------------------===//

FusionOp::Role FusionOp::roleOf(Operation* op) {
  if (!isa<KilnDialect>(op->getDialect()) || op->getNumRegions() != 0) return Role::Opaque;
  auto rankedTensor = [](Type t) { return isa<RankedTensorType>(t); };
  if (!llvm::all_of(op->getResultTypes(), rankedTensor) || !llvm::all_of(op->getOperandTypes(), rankedTensor))
    return Role::Opaque;
  if (op->hasTrait<OpTrait::ConstantLike>()) return Role::Constant;
  if (op->hasTrait<OpTrait::Elementwise>()) return Role::Elementwise;
  if (isa<BroadcastToOp, ReshapeOp>(op)) return Role::Layout;
  if (isa<ReduceSumOp, ReduceMaxOp>(op)) return Role::Reduction;
  if (isa<MatmulOp, Conv2DOp>(op)) return Role::Contraction;
  return Role::Opaque;
}

YieldOp FusionOp::getYield() { return cast<YieldOp>(getBody()->getTerminator()); }

LogicalResult FusionOp::verify() {
  StringRef kind = getKind();
  if (kind != kElementwise && kind != kReduction && kind != kContraction)
    return emitOpError("kind must be \"elementwise\", \"reduction\" or \"contraction\", got \"")
           << kind << "\"";
  if (getNumResults() == 0) return emitOpError("must return at least one value");
  return success();
}

LogicalResult FusionOp::verifyRegions() {
  Block* body = getBody();
  if (body->getArgumentTypes() != getInputs().getTypes())
    return emitOpError("region arguments must match the inputs one to one in type");
  auto yield = dyn_cast<YieldOp>(body->getTerminator());
  if (!yield) return emitOpError("region must end with kiln.yield");
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("yielded types must match the result types");
  for (Operation& op : body->without_terminator()) {
    if (isa<FusionOp>(op)) return op.emitOpError("cannot be nested in another kiln.fusion");
    if (roleOf(&op) == Role::Opaque)
      return op.emitOpError("cannot be fused: only constant, elementwise, broadcast_to/reshape, "
                            "reduction and matmul/conv2d ops go into a kiln.fusion region");
  }
  return success();
}

//===--- custom ------------------------------------------------------------===//

YieldOp CustomOp::getForwardYield() { return cast<YieldOp>(getForwardBody()->getTerminator()); }
YieldOp CustomOp::getBackwardYield() { return cast<YieldOp>(getBackwardBody()->getTerminator()); }

LogicalResult CustomOp::verifyRegions() {
  Block* fwd = getForwardBody();
  Block* bwd = getBackwardBody();
  TypeRange inputs = getInputs().getTypes();
  Type result = getType();
  if (fwd->getArgumentTypes() != inputs)
    return emitOpError("forward region arguments must match the inputs one to one in type");
  auto fwdYield = dyn_cast<YieldOp>(fwd->getTerminator());
  if (!fwdYield) return emitOpError("forward region must end with kiln.yield");
  if (fwdYield.getValues().size() != 1 || fwdYield.getValues()[0].getType() != result)
    return emitOpError("forward region must yield one value of the result type ") << result;
  SmallVector<Type> expected(inputs.begin(), inputs.end());
  expected.append({result, result});
  if (bwd->getArgumentTypes() != TypeRange(expected))
    return emitOpError("backward region arguments must be the inputs' types, then the result "
                       "type twice (result, cotangent)");
  auto bwdYield = dyn_cast<YieldOp>(bwd->getTerminator());
  if (!bwdYield) return emitOpError("backward region must end with kiln.yield");
  if (bwdYield.getValues().getTypes() != inputs)
    return emitOpError("backward region must yield one cotangent per input, of the input's type");
  return success();
}
