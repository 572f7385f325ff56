// Lowers kiln's contractions: matmul (linalg.matmul / linalg.batch_matmul),
// conv2d and its gradients (im2col + a GEMM per image and group, one
// linalg.batch_matmul over them; 1x1 filters without im2col; with
// conv-calls, linalg.conv_2d_nchw_fchw and a marked filter-gradient generic
// that the CPU backend turns into calls of kiln's convolutions), pool2d
// (linalg.pooling_nchw_max / _sum) and pool2d_grad (linalg.generic; with
// conv-calls one generic marked kiln.pool2d_grad that the CPU backend calls
// kiln's pooling gradient for).
#include "LoweringPatterns.h"
#include "kiln/passes/LibraryCalls.h"
#include "kiln/passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace kiln::ir;

namespace kiln::passes {
namespace {

Value zeros(OpBuilder& b, Location loc, RankedTensorType type) {
  return filledTensor(b, loc, type, scalarConstant(b, loc, type.getElementType(), 0));
}

// Pads the two spatial dimensions of an NCHW tensor by `pad` on both sides.
Value padSpatial(OpBuilder& b, Location loc, Value x, ArrayRef<int64_t> pad, Value padValue) {
  if (pad[0] == 0 && pad[1] == 0) return x;
  auto type = tensorType(x);
  SmallVector<int64_t> shape(type.getShape());  // spatial dims are static (checked by the callers)
  shape[2] += 2 * pad[0];
  shape[3] += 2 * pad[1];
  SmallVector<int64_t> amounts{0, 0, pad[0], pad[1]};
  return tensor::PadOp::create(b, loc, RankedTensorType::get(shape, type.getElementType()), x,
                               indexAttrs(b, amounts), indexAttrs(b, amounts), padValue)
      .getResult();
}

// Convolution and pooling lowerings take a dynamic size only in dimension 0
// (the batch) of their NCHW tensors; filters are static.
bool batchOnlyDynamic(Operation* op) {
  for (Type t : llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes())) {
    auto type = cast<RankedTensorType>(t);
    if (!staticExcept(type, type.getRank() == 4 ? ArrayRef<int64_t>{0} : ArrayRef<int64_t>{})) return false;
  }
  return true;
}

DenseIntElementsAttr pairAttr(OpBuilder& b, ArrayRef<int64_t> values) {
  return DenseIntElementsAttr::get(RankedTensorType::get({2}, b.getI64Type()), values);
}

// Gives a linalg.matmul / batch_matmul the indexing_maps that read A as
// [k, m] and B as [n, k] where the flags say so (loop dims [batch,] m, n, k).
void setTransposeMaps(OpBuilder& b, Operation* mm, bool batched, bool transposeA, bool transposeB) {
  if (!transposeA && !transposeB) return;
  int64_t first = batched ? 1 : 0, numDims = first + 3;
  auto dim = [&](int64_t i) { return b.getAffineDimExpr(first + i); };
  SmallVector<AffineExpr> lead;
  if (batched) lead.push_back(b.getAffineDimExpr(0));
  auto mapOf = [&](AffineExpr r, AffineExpr c) {
    SmallVector<AffineExpr> e(lead);
    e.push_back(r);
    e.push_back(c);
    return AffineMapAttr::get(AffineMap::get(numDims, 0, e, b.getContext()));
  };
  AffineExpr m = dim(0), n = dim(1), k = dim(2);
  mm->setAttr("indexing_maps", b.getArrayAttr({transposeA ? mapOf(k, m) : mapOf(m, k),
                                               transposeB ? mapOf(n, k) : mapOf(k, n), mapOf(m, n)}));
}

// (D1, ..., Dn, C) -> (D1 * ... * Dn, C): the rows of every matrix of a batch as one matrix.
RankedTensorType rowsType(RankedTensorType t) {
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < t.getRank(); ++d)
    rows = ShapedType::isDynamic(rows) || t.isDynamicDim(d) ? ShapedType::kDynamic : rows * t.getDimSize(d);
  return RankedTensorType::get({rows, t.getShape().back()}, t.getElementType());
}

// Batched matmul: rank 2 is linalg.matmul, rank 3 linalg.batch_matmul, more
// batch dimensions are collapsed into one. Transpose flags become the named
// op's indexing_maps. A 2-d b shared by a batch of a, and the sum over a
// batch (sum_batch), are one linalg.matmul over the rows of all matrices.
struct MatmulLowering : KilnLowering<MatmulOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(MatmulOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    Value a = adaptor.getA(), b = adaptor.getB();
    auto resultType = cast<RankedTensorType>(op.getType());
    int64_t rank = resultType.getRank();
    bool sharedB = tensorType(b).getRank() == 2 && tensorType(a).getRank() > 2;
    if (sharedB || op.getSumBatch()) {
      a = reshapeTensor(rewriter, loc, a, rowsType(tensorType(a)));
      if (!sharedB) b = reshapeTensor(rewriter, loc, b, rowsType(tensorType(b)));
      auto accType = rowsType(resultType);
      Value init = reshapeTensor(rewriter, loc, zeros(rewriter, loc, resultType), accType);
      auto mm = linalg::MatmulOp::create(rewriter, loc, TypeRange{accType}, ValueRange{a, b}, ValueRange{init});
      setTransposeMaps(rewriter, mm, false, op.getTransposeA(), op.getTransposeB());
      return reshapeTensor(rewriter, loc, mm.getResult(0), resultType);
    }
    // (B1, ..., Bn, R, C) -> (B1 * ... * Bn, R, C)
    auto collapsedType = [&](RankedTensorType t) {
      SmallVector<int64_t> shape{1, t.getDimSize(rank - 2), t.getDimSize(rank - 1)};
      for (int64_t d = 0; d < rank - 2; ++d)
        shape[0] = ShapedType::isDynamic(shape[0]) || t.isDynamicDim(d) ? ShapedType::kDynamic
                                                                         : shape[0] * t.getDimSize(d);
      return RankedTensorType::get(shape, t.getElementType());
    };
    auto accType = resultType;
    if (rank > 3) {
      a = reshapeTensor(rewriter, loc, a, collapsedType(tensorType(a)));
      b = reshapeTensor(rewriter, loc, b, collapsedType(tensorType(b)));
      accType = collapsedType(resultType);
    }
    bool batched = rank >= 3;
    // Zeros of the result type (whose `?` is the batch size), collapsed like the operands.
    Value init = reshapeTensor(rewriter, loc, zeros(rewriter, loc, resultType), accType);
    Operation* mm = batched ? linalg::BatchMatmulOp::create(rewriter, loc, TypeRange{accType}, ValueRange{a, b},
                                                            ValueRange{init}).getOperation()
                            : linalg::MatmulOp::create(rewriter, loc, TypeRange{accType}, ValueRange{a, b},
                                                       ValueRange{init}).getOperation();
    setTransposeMaps(rewriter, mm, batched, op.getTransposeA(), op.getTransposeB());
    return reshapeTensor(rewriter, loc, mm->getResult(0), resultType);
  }
};

// The product of two sizes, dynamic when either is.
int64_t mulSizes(int64_t a, int64_t b) { return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) ? ShapedType::kDynamic : a * b; }

// The extent d * (k - 1) + 1 of a filter of size k dilated by d.
int64_t dilatedExtent(int64_t k, int64_t d) { return d * (k - 1) + 1; }

// im2col of a padded NCHW x for a kh x kw window at `stride` and `dilate`, image by
// image: cols[n, (c*kh + i)*kw + j, y, x] = xpad[n, c, y*s0 + i*d0, x*s1 + j*d1], an
// [n, C*kh*kw, oh, ow] tensor whose image n is the [C*kh*kw, oh*ow] matrix its GEMM
// reads (the rows of one channel group contiguous). One gather pass whose inner loop
// runs along a row of x.
Value im2col(OpBuilder& b, Location loc, Value xPadded, int64_t kh, int64_t kw, ArrayRef<int64_t> stride,
             ArrayRef<int64_t> dilate, int64_t oh, int64_t ow) {
  auto xType = tensorType(xPadded);
  int64_t n = xType.getDimSize(0), c = xType.getDimSize(1);
  Type elem = xType.getElementType();
  auto windowsType = RankedTensorType::get({n, c, kh, kw, oh, ow}, elem);
  SmallVector<AffineExpr> d;
  for (int64_t i = 0; i < 6; ++i) d.push_back(b.getAffineDimExpr(i));  // n c i j y x
  auto map = AffineMap::get(
      6, 0, {d[0], d[1], d[4] * stride[0] + d[2] * dilate[0], d[5] * stride[1] + d[3] * dilate[1]}, b.getContext());
  Value windows = buildParallelGeneric(b, loc, windowsType, xPadded, {map},
                                       [](OpBuilder&, Location, ValueRange args) { return args[0]; });
  return reshapeTensor(b, loc, windows, RankedTensorType::get({n, c * kh * kw, oh, ow}, elem));
}

// The GEMM op(lhs)[m, k] * op(rhs)[k, n] onto zeros, where op reads lhs as [k, m]
// (`transposeLhs`) and rhs as [n, k] (`transposeRhs`); 3-d operands multiply
// batch-wise over their leading dimension. A linalg.matmul or batch_matmul as
// -kiln-matmul-to-blas and -kiln-tile-matmuls expect it. A dynamic dimension
// here is the batch size or a multiple of it (n*oh*ow), so the result is sized
// from the operands, not by batchSize.
Value gemm(OpBuilder& b, Location loc, Value lhs, Value rhs, bool transposeLhs, bool transposeRhs,
           RankedTensorType resultType) {
  bool batched = resultType.getRank() == 3;
  int64_t first = batched ? 1 : 0;
  SmallVector<Value> dynamic;
  if (batched && resultType.isDynamicDim(0)) dynamic.push_back(tensor::DimOp::create(b, loc, lhs, 0));
  if (resultType.isDynamicDim(first))
    dynamic.push_back(tensor::DimOp::create(b, loc, lhs, first + (transposeLhs ? 1 : 0)));
  if (resultType.isDynamicDim(first + 1))
    dynamic.push_back(tensor::DimOp::create(b, loc, rhs, first + (transposeRhs ? 0 : 1)));
  Value empty = tensor::EmptyOp::create(b, loc, resultType.getShape(), resultType.getElementType(), dynamic);
  Value zero = scalarConstant(b, loc, resultType.getElementType(), 0);
  Value init = linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{empty}).getResult(0);
  Operation* mm = batched ? linalg::BatchMatmulOp::create(b, loc, TypeRange{resultType}, ValueRange{lhs, rhs},
                                                          ValueRange{init}).getOperation()
                          : linalg::MatmulOp::create(b, loc, TypeRange{resultType}, ValueRange{lhs, rhs},
                                                     ValueRange{init}).getOperation();
  setTransposeMaps(b, mm, batched, transposeLhs, transposeRhs);
  return mm->getResult(0);
}

// A 1x1 filter at stride 1 without padding in one group (dilation is moot):
// each image is a matrix [channels, h*w] already, so the convolution is a GEMM
// per image with no im2col. It pays when broadcasting the filter over the batch
// copies less than the im2col and NCHW transposes it replaces (or the batch is 1).
template <typename Conv>
bool isPointwise(Conv op, RankedTensorType filter, RankedTensorType image) {
  if (filter.getDimSize(2) != 1 || filter.getDimSize(3) != 1 || op.getGroups() != 1) return false;
  if (llvm::any_of(op.getStride(), [](int64_t s) { return s != 1; }) ||
      llvm::any_of(op.getPad(), [](int64_t p) { return p != 0; }))
    return false;
  int64_t o = filter.getDimSize(0), c = filter.getDimSize(1);
  return image.getDimSize(0) == 1 || o * c <= (o + c) * image.getDimSize(2) * image.getDimSize(3);
}

// out[n] = op(w)[r, k] * x[n][k, h*w] for every image n of the NCHW x, op
// transposing w (given as [k, r]) when `transposeW`, block by block in `groups`
// groups (x's channels, w's first dimension and out's channels split in equal
// consecutive parts, block g of out being block g of w times block g of x): one
// GEMM of reshapes for one image in one group, else one batched GEMM over the
// images and groups with w broadcast over the images (a copy of the filter per
// image, which leaves every GEMM with static sizes and the batch dynamic). The
// results are out's NCHW planes, in place.
Value gemmPerImage(OpBuilder& b, Location loc, Value w, bool transposeW, Value x, int64_t groups,
                   RankedTensorType resultType) {
  auto xType = tensorType(x), wType = tensorType(w);
  Type elem = resultType.getElementType();
  int64_t n = xType.getDimSize(0), c = xType.getDimSize(1), r = resultType.getDimSize(1);
  int64_t plane = xType.getDimSize(2) * xType.getDimSize(3);
  if (n == 1 && groups == 1) {
    Value image = reshapeTensor(b, loc, x, RankedTensorType::get({c, plane}, elem));
    return reshapeTensor(b, loc, gemm(b, loc, w, image, transposeW, false, RankedTensorType::get({r, plane}, elem)),
                         resultType);
  }
  auto filtersType = RankedTensorType::get({n, wType.getDimSize(0), wType.getDimSize(1)}, elem);
  auto broadcast = AffineMap::get(3, 0, {b.getAffineDimExpr(1), b.getAffineDimExpr(2)}, b.getContext());
  Value filters = buildParallelGeneric(b, loc, filtersType, w, {broadcast},
                                       [](OpBuilder&, Location, ValueRange args) { return args[0]; });
  int64_t blocks = mulSizes(n, groups);
  filters = reshapeTensor(b, loc, filters,
                          RankedTensorType::get({blocks, wType.getDimSize(0) / groups, wType.getDimSize(1)}, elem));
  Value images = reshapeTensor(b, loc, x, RankedTensorType::get({blocks, c / groups, plane}, elem));
  Value out = gemm(b, loc, filters, images, transposeW, false, RankedTensorType::get({blocks, r / groups, plane}, elem));
  return reshapeTensor(b, loc, out, resultType);
}

// A convolution of a padded NCHW x with an FCHW filter (C = channels / groups) as one
// GEMM per image and group, w[f, c*kh*kw] * im2col(x)[n][c*kh*kw, oh*ow] (gemmPerImage):
// the results are the NCHW planes of the output, in place.
Value convolutionAsGemm(OpBuilder& b, Location loc, Value xPadded, Value w, ArrayRef<int64_t> stride,
                        ArrayRef<int64_t> dilate, int64_t groups, RankedTensorType resultType) {
  auto wType = tensorType(w);
  int64_t f = wType.getDimSize(0), k = wType.getDimSize(1) * wType.getDimSize(2) * wType.getDimSize(3);
  Value cols = im2col(b, loc, xPadded, wType.getDimSize(2), wType.getDimSize(3), stride, dilate,
                      resultType.getDimSize(2), resultType.getDimSize(3));
  Value wMatrix = reshapeTensor(b, loc, w, RankedTensorType::get({f, k}, resultType.getElementType()));
  return gemmPerImage(b, loc, wMatrix, false, cols, groups, resultType);
}

// The filter as an [rows, cols] matrix (a 1x1 filter's O x C).
Value filterMatrix(OpBuilder& b, Location loc, Value w) {
  auto type = tensorType(w);
  return reshapeTensor(b, loc, w, RankedTensorType::get({type.getDimSize(0), type.getDimSize(1)},
                                                        type.getElementType()));
}

// The convolution lowerings, which know -kiln-lower-to-linalg's conv-calls option.
template <typename OpTy>
struct ConvLowering : KilnLowering<OpTy> {
  ConvLowering(MLIRContext* ctx, bool convCalls) : KilnLowering<OpTy>(ctx), convCalls(convCalls) {}
  // Whether a convolution of `groups` groups on `elem` goes to a library call (conv-calls).
  bool callsLibrary(int64_t groups, Type elem) const { return convCalls && groups == 1 && (elem.isF32() || elem.isF64()); }
  bool convCalls;
};

// conv-calls: the convolution of a padded NCHW x with an FCHW filter as
// linalg.conv_2d_nchw_fchw onto zeros, which -kiln-matmul-to-blas turns into
// a call of kiln's convolution (im2col + one GEMM over the batch).
Value namedConvolution(OpBuilder& b, Location loc, Value xPadded, Value w, ArrayRef<int64_t> stride,
                       ArrayRef<int64_t> dilate, RankedTensorType resultType) {
  return linalg::Conv2DNchwFchwOp::create(b, loc, TypeRange{resultType}, ValueRange{xPadded, w},
                                          ValueRange{zeros(b, loc, resultType)}, pairAttr(b, stride),
                                          pairAttr(b, dilate))
      .getResult(0);
}

struct Conv2DLowering : ConvLowering<Conv2DOp> {
  using ConvLowering::ConvLowering;
  FailureOr<Value> lower(Conv2DOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    if (!batchOnlyDynamic(op)) return rewriter.notifyMatchFailure(op, "only the batch dimension may be dynamic");
    if (isPointwise(op, op.getW().getType(), op.getX().getType()))
      return gemmPerImage(rewriter, loc, filterMatrix(rewriter, loc, adaptor.getW()), false, adaptor.getX(), 1, type);
    Value zero = scalarConstant(rewriter, loc, type.getElementType(), 0);
    Value x = padSpatial(rewriter, loc, adaptor.getX(), op.getPad(), zero);
    if (callsLibrary(op.getGroups(), type.getElementType()))
      return namedConvolution(rewriter, loc, x, adaptor.getW(), op.getStride(), op.getDilate(), type);
    return convolutionAsGemm(rewriter, loc, x, adaptor.getW(), op.getStride(), op.getDilate(), op.getGroups(), type);
  }
};

// The input gradient is a stride-1 convolution of gy, dilated by the stride
// and padded by the dilated kernel extent - 1 - pad (cropped where that is
// negative), with the filter flipped spatially and, within each group, its O
// and C dimensions swapped; the filter's dilation and the groups stay.
struct Conv2DGradInputLowering : ConvLowering<Conv2DGradInputOp> {
  using ConvLowering::ConvLowering;
  FailureOr<Value> lower(Conv2DGradInputOp op, OpAdaptor adaptor,
                         ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = op.getType();
    auto gyType = op.getGy().getType(), wType = op.getW().getType();
    if (!batchOnlyDynamic(op)) return rewriter.notifyMatchFailure(op, "only the batch dimension may be dynamic");
    if (isPointwise(op, wType, type))
      return gemmPerImage(rewriter, loc, filterMatrix(rewriter, loc, adaptor.getW()), true, adaptor.getGy(), 1, type);
    Type elem = type.getElementType();
    ArrayRef<int64_t> stride = op.getStride(), dilate = op.getDilate();
    // Per spatial dim: the dilated and padded gy is buffer[cropOffset : cropOffset + size].
    SmallVector<int64_t> buffer{gyType.getDimSize(0), gyType.getDimSize(1), 0, 0};
    SmallVector<int64_t> insertAt(4, 0), cropAt(4, 0), cropSize(buffer);
    for (int64_t d = 0; d < 2; ++d) {
      int64_t k = dilatedExtent(wType.getDimSize(2 + d), dilate[d]), s = stride[d], p = op.getPad()[d];
      int64_t dilated = (gyType.getDimSize(2 + d) - 1) * s + 1, size = type.getDimSize(2 + d) + k - 1;
      int64_t low = k - 1 - p, high = size - low - dilated;
      buffer[2 + d] = std::max<int64_t>(low, 0) + dilated + std::max<int64_t>(high, 0);
      insertAt[2 + d] = std::max<int64_t>(low, 0);
      cropAt[2 + d] = std::max<int64_t>(-low, 0);
      cropSize[2 + d] = size;
    }
    Value dilated = tensor::InsertSliceOp::create(
        rewriter, loc, adaptor.getGy(), zeros(rewriter, loc, RankedTensorType::get(buffer, elem)),
        indexAttrs(rewriter, insertAt), mixedSizes(rewriter, gyType),
        indexAttrs(rewriter, {1, 1, stride[0], stride[1]}));
    if (cropSize != buffer)
      dilated = tensor::ExtractSliceOp::create(rewriter, loc, RankedTensorType::get(cropSize, elem), dilated,
                                               indexAttrs(rewriter, cropAt),
                                               mixedSizes(rewriter, RankedTensorType::get(cropSize, elem)),
                                               indexAttrs(rewriter, {1, 1, 1, 1}));
    Value flipped = flipFilter(rewriter, loc, adaptor.getW(), op.getGroups());
    if (callsLibrary(op.getGroups(), elem))
      return namedConvolution(rewriter, loc, dilated, flipped, {1, 1}, dilate, type);
    return convolutionAsGemm(rewriter, loc, dilated, flipped, {1, 1}, dilate, op.getGroups(), type);
  }

  // flipped[g*C + c, o, i, j] = w[g*O + o, c, kh - 1 - i, kw - 1 - j] for the
  // O output and C input channels per group of w (the whole of w in one group).
  static Value flipFilter(OpBuilder& b, Location loc, Value w, int64_t groups) {
    auto wType = tensorType(w);
    Type elem = wType.getElementType();
    int64_t o = wType.getDimSize(0), c = wType.getDimSize(1), kh = wType.getDimSize(2), kw = wType.getDimSize(3);
    auto flippedType = RankedTensorType::get({c * groups, o / groups, kh, kw}, elem);
    SmallVector<AffineExpr> d;
    for (int64_t i = 0; i < 5; ++i) d.push_back(b.getAffineDimExpr(i));  // [g] c o i j
    auto body = [](OpBuilder&, Location, ValueRange args) { return args[0]; };
    if (groups == 1)
      return buildParallelGeneric(b, loc, flippedType, w,
                                  {AffineMap::get(4, 0, {d[1], d[0], kh - 1 - d[2], kw - 1 - d[3]}, b.getContext())},
                                  body);
    Value blocks = reshapeTensor(b, loc, w, RankedTensorType::get({groups, o / groups, c, kh, kw}, elem));
    auto map = AffineMap::get(5, 0, {d[0], d[2], d[1], kh - 1 - d[3], kw - 1 - d[4]}, b.getContext());
    Value flipped = buildParallelGeneric(b, loc, RankedTensorType::get({groups, c, o / groups, kh, kw}, elem),
                                         blocks, {map}, body);
    return reshapeTensor(b, loc, flipped, flippedType);
  }
};

// gw[o, c, i, j] = sum over n, oy, ox of xpad[n, c, oy*s + i*d, ox*s + j*d] * gy[n, o, oy, ox]
// (c within o's group): a GEMM gy[n][o, oh*ow] * im2col(x)[n]^T per image and group,
// over the forward's im2col (which CSE shares), summed over the images. A 1x1 filter on one image at stride 1
// without padding is one GEMM gy[o, h*w] * x[c, h*w]^T of the tensors as they are.
struct Conv2DGradFilterLowering : ConvLowering<Conv2DGradFilterOp> {
  using ConvLowering::ConvLowering;

  // conv-calls: gw[f, c, i, j] = sum over n, y, x of xpad[n, c, y*s0 + i*d0, x*s1 + j*d1] * gy[n, f, y, x]
  // as one linalg.generic (loops f c i j | n y x) marked kConvGradFilterAttr for -kiln-matmul-to-blas.
  static Value markedGradFilter(OpBuilder& b, Location loc, Value xPadded, Value gy, ArrayRef<int64_t> s,
                                ArrayRef<int64_t> d, RankedTensorType type) {
    MLIRContext* ctx = b.getContext();
    SmallVector<AffineExpr> e;
    for (int64_t i = 0; i < 7; ++i) e.push_back(b.getAffineDimExpr(i));  // f c i j n y x
    SmallVector<AffineMap> maps{AffineMap::get(7, 0, {e[4], e[1], e[5] * s[0] + e[2] * d[0], e[6] * s[1] + e[3] * d[1]}, ctx),
                                AffineMap::get(7, 0, {e[4], e[0], e[5], e[6]}, ctx),
                                AffineMap::get(7, 0, {e[0], e[1], e[2], e[3]}, ctx)};
    SmallVector<utils::IteratorType> iterators(4, utils::IteratorType::parallel);
    iterators.append(3, utils::IteratorType::reduction);
    auto generic = linalg::GenericOp::create(
        b, loc, TypeRange{type}, ValueRange{xPadded, gy}, ValueRange{zeros(b, loc, type)}, maps, iterators,
        [](OpBuilder& nb, Location l, ValueRange a) {
          Value product = arith::MulFOp::create(nb, l, a[0], a[1]);
          linalg::YieldOp::create(nb, l, ValueRange{arith::AddFOp::create(nb, l, a[2], product).getResult()});
        });
    generic->setAttr(kConvGradFilterAttr,
                     b.getDictionaryAttr({b.getNamedAttr("strides", b.getDenseI64ArrayAttr(s)),
                                          b.getNamedAttr("dilations", b.getDenseI64ArrayAttr(d))}));
    return generic.getResult(0);
  }

  FailureOr<Value> lower(Conv2DGradFilterOp op, OpAdaptor adaptor,
                         ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = op.getType();
    if (!batchOnlyDynamic(op)) return rewriter.notifyMatchFailure(op, "only the batch dimension may be dynamic");
    Type elem = type.getElementType();
    auto gyType = tensorType(adaptor.getGy());
    int64_t f = type.getDimSize(0), k = type.getDimSize(1) * type.getDimSize(2) * type.getDimSize(3);
    int64_t n = gyType.getDimSize(0), oh = gyType.getDimSize(2), ow = gyType.getDimSize(3);
    auto matrixType = RankedTensorType::get({f, k}, elem);
    if (n == 1 && isPointwise(op, type, op.getX().getType())) {
      auto plane = [&](Value v) {
        auto t = tensorType(v);
        return reshapeTensor(rewriter, loc, v, RankedTensorType::get({t.getDimSize(1), oh * ow}, elem));
      };
      Value gw = gemm(rewriter, loc, plane(adaptor.getGy()), plane(adaptor.getX()), false, true, matrixType);
      return reshapeTensor(rewriter, loc, gw, type);
    }
    Value zero = scalarConstant(rewriter, loc, elem, 0);
    Value x = padSpatial(rewriter, loc, adaptor.getX(), op.getPad(), zero);
    if (callsLibrary(op.getGroups(), elem))
      return markedGradFilter(rewriter, loc, x, adaptor.getGy(), op.getStride(), op.getDilate(), type);
    Value cols = im2col(rewriter, loc, x, type.getDimSize(2), type.getDimSize(3), op.getStride(), op.getDilate(),
                        oh, ow);
    // Per image and group, gy[n][fg, oh*ow] * cols[n][k, oh*ow]^T (static sizes, the
    // images a dynamic batch), then the sum over the images.
    int64_t groups = op.getGroups(), blocks = mulSizes(n, groups), plane = oh * ow;
    Value gyBlocks = reshapeTensor(rewriter, loc, adaptor.getGy(), RankedTensorType::get({blocks, f / groups, plane}, elem));
    Value colBlocks = reshapeTensor(rewriter, loc, cols, RankedTensorType::get({blocks, k, plane}, elem));
    Value products = gemm(rewriter, loc, gyBlocks, colBlocks, false, true, RankedTensorType::get({blocks, f / groups, k}, elem));
    if (n == 1) return reshapeTensor(rewriter, loc, products, type);
    Value perImage = reshapeTensor(rewriter, loc, products, RankedTensorType::get({n, f, k}, elem));
    MLIRContext* ctx = rewriter.getContext();
    AffineExpr i = rewriter.getAffineDimExpr(0), o = rewriter.getAffineDimExpr(1), c = rewriter.getAffineDimExpr(2);
    auto sum = linalg::GenericOp::create(
        rewriter, loc, TypeRange{matrixType}, ValueRange{perImage}, ValueRange{zeros(rewriter, loc, matrixType)},
        SmallVector<AffineMap>{AffineMap::get(3, 0, {i, o, c}, ctx), AffineMap::get(3, 0, {o, c}, ctx)},
        SmallVector<utils::IteratorType>{utils::IteratorType::reduction, utils::IteratorType::parallel,
                                         utils::IteratorType::parallel},
        [](OpBuilder& nb, Location l, ValueRange a) {
          linalg::YieldOp::create(nb, l, ValueRange{addScalars(nb, l, a[1], a[0])});
        });
    return reshapeTensor(rewriter, loc, sum.getResult(0), type);
  }
};

// Max pooling pads with -inf; average pooling sums zero-padded windows and
// divides by kh * kw.
struct Pool2DLowering : KilnLowering<Pool2DOp> {
  using KilnLowering::KilnLowering;
  FailureOr<Value> lower(Pool2DOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = cast<RankedTensorType>(op.getType());
    if (!batchOnlyDynamic(op)) return rewriter.notifyMatchFailure(op, "only the batch dimension may be dynamic");
    Type elem = type.getElementType();
    bool isMax = op.getKind() == "max";
    Value padValue = isMax ? lowestScalar(rewriter, loc, elem) : scalarConstant(rewriter, loc, elem, 0);
    Value x = padSpatial(rewriter, loc, adaptor.getX(), op.getPad(), padValue);
    Value init = filledTensor(rewriter, loc, type, padValue);
    ArrayRef<int64_t> k = op.getKsize();
    Value window = tensor::EmptyOp::create(rewriter, loc, k, elem);
    auto strides = pairAttr(rewriter, op.getStride()), dilations = pairAttr(rewriter, {1, 1});
    if (isMax)
      return linalg::PoolingNchwMaxOp::create(rewriter, loc, TypeRange{type}, ValueRange{x, window},
                                              ValueRange{init}, strides, dilations)
          .getResult(0);
    Value sum = linalg::PoolingNchwSumOp::create(rewriter, loc, TypeRange{type}, ValueRange{x, window},
                                                 ValueRange{init}, strides, dilations)
                    .getResult(0);
    double area = static_cast<double>(k[0] * k[1]);
    return buildParallelGeneric(rewriter, loc, type, sum, {}, [area](OpBuilder& b, Location l, ValueRange a) {
      return arith::DivFOp::create(b, l, a[0], scalarConstant(b, l, a[0].getType(), area)).getResult();
    });
  }
};

// pool2d_grad gathers into each x position from the windows that cover it:
// a generic over (n, c, iy, ix, ky, kx) with the window (oy, ox) computed from
// iy + pad - ky = oy * stride. Max pooling first computes, per window, the
// index ky * kw + kx of its first maximum (padding taps never count).
struct Pool2DGradLowering : KilnLowering<Pool2DGradOp> {
  Pool2DGradLowering(MLIRContext* ctx, bool convCalls) : KilnLowering(ctx), convCalls(convCalls) {}
  bool convCalls;

  // Per window: i32 index of its first in-bounds maximum, -1 if none.
  static Value windowArgmax(OpBuilder& rewriter, Location loc, Pool2DGradOp op, Value x) {
    auto xType = op.getX().getType(), gyType = op.getGy().getType();
    Type elem = xType.getElementType();
    ArrayRef<int64_t> k = op.getKsize(), s = op.getStride(), p = op.getPad();
    Value padded = padSpatial(rewriter, loc, x, p, lowestScalar(rewriter, loc, elem));
    Value best = filledTensor(rewriter, loc, gyType, lowestScalar(rewriter, loc, elem));
    auto indexType = RankedTensorType::get(gyType.getShape(), rewriter.getI32Type());
    Value bestIndex = filledTensor(rewriter, loc, indexType, scalarConstant(rewriter, loc, rewriter.getI32Type(), -1));
    SmallVector<AffineExpr> d;
    for (int64_t i = 0; i < 6; ++i) d.push_back(rewriter.getAffineDimExpr(i));  // n c oy ox ky kx
    MLIRContext* ctx = rewriter.getContext();
    auto outMap = AffineMap::get(6, 0, {d[0], d[1], d[2], d[3]}, ctx);
    // The (unread) window tensor gives the loop bounds of ky and kx, as in linalg's pooling ops.
    Value window = tensor::EmptyOp::create(rewriter, loc, k, elem);
    SmallVector<AffineMap> maps{AffineMap::get(6, 0, {d[0], d[1], d[2] * s[0] + d[4], d[3] * s[1] + d[5]}, ctx),
                                AffineMap::get(6, 0, {d[4], d[5]}, ctx), outMap, outMap};
    SmallVector<utils::IteratorType> iterators(4, utils::IteratorType::parallel);
    iterators.append(2, utils::IteratorType::reduction);
    int64_t height = xType.getDimSize(2), width = xType.getDimSize(3);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{gyType, indexType}, ValueRange{padded, window}, ValueRange{best, bestIndex}, maps,
        iterators, [&](OpBuilder& b, Location l, ValueRange a) {
          auto inRange = [&](int64_t outDim, int64_t tapDim, int64_t dim) {
            // oy * s + ky - p in [0, size)
            Value o = linalg::IndexOp::create(b, l, outDim), t = linalg::IndexOp::create(b, l, tapDim);
            Value i = arith::AddIOp::create(b, l, arith::MulIOp::create(b, l, o, indexConstant(b, l, s[dim])), t);
            i = arith::SubIOp::create(b, l, i, indexConstant(b, l, p[dim]));
            Value size = indexConstant(b, l, dim == 0 ? height : width);
            return arith::AndIOp::create(
                b, l, arith::CmpIOp::create(b, l, arith::CmpIPredicate::sge, i, indexConstant(b, l, 0)),
                arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, i, size));
          };
          Value valid = arith::AndIOp::create(b, l, inRange(2, 4, 0), inRange(3, 5, 1));
          Value tap = arith::AddIOp::create(
              b, l, arith::MulIOp::create(b, l, linalg::IndexOp::create(b, l, 4), indexConstant(b, l, k[1])),
              linalg::IndexOp::create(b, l, 5));
          tap = arith::IndexCastOp::create(b, l, b.getI32Type(), tap);
          Value v = a[0], cur = a[2], curIndex = a[3];
          Value none = arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, curIndex,
                                             scalarConstant(b, l, b.getI32Type(), 0));
          Value greater = arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, v, cur);
          Value tie = arith::AndIOp::create(b, l, arith::CmpFOp::create(b, l, arith::CmpFPredicate::OEQ, v, cur),
                                            arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, tap, curIndex));
          Value better = arith::OrIOp::create(b, l, arith::OrIOp::create(b, l, none, greater), tie);
          Value take = arith::AndIOp::create(b, l, valid, better);
          linalg::YieldOp::create(b, l, ValueRange{arith::SelectOp::create(b, l, take, v, cur),
                                                   arith::SelectOp::create(b, l, take, tap, curIndex)});
        });
    return generic.getResult(1);
  }

  // Windows that tile x exactly (stride = window, no padding, no remainder):
  // each x element lies in one window, so no loop over the window's taps.
  static bool tilesExactly(Pool2DGradOp op) {
    ArrayRef<int64_t> k = op.getKsize(), s = op.getStride(), p = op.getPad();
    auto xType = op.getX().getType(), gyType = op.getGy().getType();
    for (int64_t d = 0; d < 2; ++d)
      if (k[d] != s[d] || p[d] != 0 || gyType.getDimSize(2 + d) * k[d] != xType.getDimSize(2 + d)) return false;
    return true;
  }

  // gx viewed as [n, c, oy, ky, ox, kx]: gy[n, c, oy, ox] where (ky, kx) is the
  // window's chosen tap (max) or gy / (kh * kw) (average); one parallel pass.
  static Value nonOverlappingGrad(OpBuilder& b, Location loc, Pool2DGradOp op, Value gy, Value argmax,
                                  double scale) {
    auto type = op.getType();
    Type elem = type.getElementType();
    ArrayRef<int64_t> k = op.getKsize();
    auto gyType = op.getGy().getType();
    auto tiledType = RankedTensorType::get({type.getDimSize(0), type.getDimSize(1), gyType.getDimSize(2), k[0],
                                            gyType.getDimSize(3), k[1]}, elem);
    SmallVector<AffineExpr> d;
    for (int64_t i = 0; i < 6; ++i) d.push_back(b.getAffineDimExpr(i));  // n c oy ky ox kx
    auto windowMap = AffineMap::get(6, 0, {d[0], d[1], d[2], d[4]}, b.getContext());
    SmallVector<Value> inputs{gy};
    if (argmax) inputs.push_back(argmax);
    SmallVector<AffineMap> maps(inputs.size(), windowMap);
    Value tiled = buildParallelGeneric(b, loc, tiledType, inputs, maps, [&](OpBuilder& nb, Location l, ValueRange a) {
      if (!argmax) return arith::MulFOp::create(nb, l, a[0], scalarConstant(nb, l, elem, scale)).getResult();
      Value tap = arith::AddIOp::create(
          nb, l, arith::MulIOp::create(nb, l, linalg::IndexOp::create(nb, l, 3), indexConstant(nb, l, k[1])),
          linalg::IndexOp::create(nb, l, 5));
      tap = arith::IndexCastOp::create(nb, l, nb.getI32Type(), tap);
      Value hit = arith::CmpIOp::create(nb, l, arith::CmpIPredicate::eq, a[1], tap);
      return arith::SelectOp::create(nb, l, hit, a[0], scalarConstant(nb, l, elem, 0)).getResult();
    });
    return reshapeTensor(b, loc, tiled, type);
  }

  // conv-calls: gx[n, c, iy, ix] as one all-parallel generic ins(x, gy) (max)
  // or ins(gy) (avg) marked kPool2DGradAttr, for -kiln-matmul-to-blas to
  // replace by kiln's pooling gradient. Its body states the semantics with scf
  // loops: over the taps (ky, kx) whose window (oy, ox) covers (iy, ix),
  // gy[oy, ox] where that window's first in-bounds maximum is this tap (max)
  // or gy / (kh * kw) (avg). The body reads its block arguments (x here,
  // gy[n, c, 0, 0]) where the windows reach those points, so that
  // canonicalization keeps the operands the call needs.
  static Value markedGrad(OpBuilder& rewriter, Location loc, Pool2DGradOp op, Value x, Value gy) {
    auto type = op.getType(), gyType = op.getGy().getType();
    Type elem = type.getElementType();
    ArrayRef<int64_t> k = op.getKsize(), s = op.getStride(), p = op.getPad();
    bool isMax = op.getKind() == "max";
    MLIRContext* ctx = rewriter.getContext();
    SmallVector<AffineExpr> d;
    for (int64_t i = 0; i < 4; ++i) d.push_back(rewriter.getAffineDimExpr(i));  // n c iy ix
    AffineExpr zero = rewriter.getAffineConstantExpr(0);
    SmallVector<Value> inputs{gy};
    SmallVector<AffineMap> maps{AffineMap::get(4, 0, {d[0], d[1], zero, zero}, ctx), AffineMap::get(4, 0, d, ctx)};
    if (isMax) {
      inputs.insert(inputs.begin(), x);
      maps.insert(maps.begin(), AffineMap::get(4, 0, d, ctx));
    }
    SmallVector<utils::IteratorType> iterators(4, utils::IteratorType::parallel);
    int64_t sizes[2] = {type.getDimSize(2), type.getDimSize(3)}, outSizes[2] = {gyType.getDimSize(2), gyType.getDimSize(3)};
    double scale = 1.0 / static_cast<double>(k[0] * k[1]);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, inputs, ValueRange{zeros(rewriter, loc, type)}, maps, iterators,
        [&](OpBuilder& b, Location l, ValueRange a) {
          Value xHere = isMax ? a[0] : Value(), gyCorner = a[isMax ? 1 : 0], init = a.back();
          auto c = [&](int64_t v) { return indexConstant(b, l, v); };
          auto cmp = [&](arith::CmpIPredicate pred, Value lhs, Value rhs) {
            return arith::CmpIOp::create(b, l, pred, lhs, rhs).getResult();
          };
          auto both = [&](Value lhs, Value rhs) { return arith::AndIOp::create(b, l, lhs, rhs).getResult(); };
          // tensor[n, c, at] as `extracted`, or the block argument `here` when `at` is (i0, i1).
          auto readAt = [&](Value extracted, Value here, Value i0, Value i1, Value* at) {
            Value same = both(cmp(arith::CmpIPredicate::eq, at[0], i0), cmp(arith::CmpIPredicate::eq, at[1], i1));
            return arith::SelectOp::create(b, l, same, here, extracted).getResult();
          };
          Value n = linalg::IndexOp::create(b, l, 0), ch = linalg::IndexOp::create(b, l, 1);
          Value in[2] = {linalg::IndexOp::create(b, l, 2), linalg::IndexOp::create(b, l, 3)};
          Value taps = c(k[0] * k[1]), one = c(1), zeroIndex = c(0);
          Value zeroValue = scalarConstant(b, l, elem, 0);
          // Over the taps t = ky * kw + kx: acc += gy[window of (iy, ix) at t] where it counts.
          auto loop = scf::ForOp::create(b, l, zeroIndex, taps, one, ValueRange{init},
                                         [&](OpBuilder& lb, Location ll, Value t, ValueRange acc) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(lb.getInsertionBlock(), lb.getInsertionPoint());
            Value tap[2] = {arith::DivUIOp::create(b, l, t, c(k[1])), arith::RemUIOp::create(b, l, t, c(k[1]))};
            // o = (i + p - tap) / s when exact and in [0, out), clamped to 0 otherwise.
            Value out[2], valid;
            for (int dim = 0; dim < 2; ++dim) {
              Value shifted = arith::SubIOp::create(b, l, arith::AddIOp::create(b, l, in[dim], c(p[dim])), tap[dim]);
              Value o = arith::DivSIOp::create(b, l, shifted, c(s[dim]));
              Value ok = both(cmp(arith::CmpIPredicate::sge, shifted, zeroIndex),
                              cmp(arith::CmpIPredicate::eq, arith::RemSIOp::create(b, l, shifted, c(s[dim])), zeroIndex));
              ok = both(ok, cmp(arith::CmpIPredicate::slt, o, c(outSizes[dim])));
              valid = dim == 0 ? ok : both(valid, ok);
              out[dim] = o;
            }
            for (Value& o : out) o = arith::SelectOp::create(b, l, valid, o, zeroIndex);
            Value g = readAt(tensor::ExtractOp::create(b, l, gy, ValueRange{n, ch, out[0], out[1]}), gyCorner,
                             zeroIndex, zeroIndex, out);
            Value hit = valid;
            if (isMax) {
              // The window's first in-bounds maximum, in window order (-1: all padding).
              Value minusOne = c(-1);
              auto search = scf::ForOp::create(
                  b, l, zeroIndex, taps, one, ValueRange{minusOne, zeroValue},
                  [&](OpBuilder& sb, Location, Value u, ValueRange best) {
                    OpBuilder::InsertionGuard inner(b);
                    b.setInsertionPoint(sb.getInsertionBlock(), sb.getInsertionPoint());
                    Value at[2] = {arith::DivUIOp::create(b, l, u, c(k[1])), arith::RemUIOp::create(b, l, u, c(k[1]))};
                    Value inBounds;
                    for (int dim = 0; dim < 2; ++dim) {
                      Value i = arith::SubIOp::create(
                          b, l, arith::AddIOp::create(b, l, arith::MulIOp::create(b, l, out[dim], c(s[dim])), at[dim]),
                          c(p[dim]));
                      Value ok = both(cmp(arith::CmpIPredicate::sge, i, zeroIndex),
                                      cmp(arith::CmpIPredicate::slt, i, c(sizes[dim])));
                      inBounds = dim == 0 ? ok : both(inBounds, ok);
                      at[dim] = i;
                    }
                    for (Value& i : at) i = arith::SelectOp::create(b, l, inBounds, i, zeroIndex);
                    Value v = readAt(tensor::ExtractOp::create(b, l, x, ValueRange{n, ch, at[0], at[1]}), xHere,
                                     in[0], in[1], at);
                    Value better = arith::OrIOp::create(b, l, cmp(arith::CmpIPredicate::slt, best[0], zeroIndex),
                                                        arith::CmpFOp::create(b, l, arith::CmpFPredicate::OGT, v, best[1]));
                    Value take = both(inBounds, better);
                    scf::YieldOp::create(b, l, ValueRange{arith::SelectOp::create(b, l, take, u, best[0]),
                                                          arith::SelectOp::create(b, l, take, v, best[1])});
                  });
              hit = both(valid, cmp(arith::CmpIPredicate::eq, search.getResult(0), t));
            } else {
              g = arith::MulFOp::create(b, l, g, scalarConstant(b, l, elem, scale));
            }
            Value contribution = arith::SelectOp::create(b, l, hit, g, zeroValue);
            scf::YieldOp::create(b, l, ValueRange{arith::AddFOp::create(b, l, acc[0], contribution).getResult()});
          });
          linalg::YieldOp::create(b, l, loop.getResults());
        });
    generic->setAttr(kPool2DGradAttr,
                     rewriter.getDictionaryAttr({rewriter.getNamedAttr("kind", op.getKindAttr()),
                                                 rewriter.getNamedAttr("ksize", rewriter.getDenseI64ArrayAttr(k)),
                                                 rewriter.getNamedAttr("stride", rewriter.getDenseI64ArrayAttr(s)),
                                                 rewriter.getNamedAttr("pad", rewriter.getDenseI64ArrayAttr(p))}));
    return generic.getResult(0);
  }

  FailureOr<Value> lower(Pool2DGradOp op, OpAdaptor adaptor, ConversionPatternRewriter& rewriter) const override {
    Location loc = op.getLoc();
    auto type = op.getType(), gyType = op.getGy().getType();
    if (!batchOnlyDynamic(op)) return rewriter.notifyMatchFailure(op, "only the batch dimension may be dynamic");
    Type elem = type.getElementType();
    ArrayRef<int64_t> k = op.getKsize(), s = op.getStride(), p = op.getPad();
    if (convCalls && (elem.isF32() || elem.isF64()))
      return markedGrad(rewriter, loc, op, adaptor.getX(), adaptor.getGy());
    bool isMax = op.getKind() == "max";
    Value argmax = isMax ? windowArgmax(rewriter, loc, op, adaptor.getX()) : Value();
    Value gy = adaptor.getGy();
    double scale = 1.0 / static_cast<double>(k[0] * k[1]);
    if (tilesExactly(op)) return nonOverlappingGrad(rewriter, loc, op, gy, argmax, scale);
    SmallVector<AffineExpr> d;
    for (int64_t i = 0; i < 6; ++i) d.push_back(rewriter.getAffineDimExpr(i));  // n c iy ix ky kx
    // The (unread) window tensor gives the loop bounds of ky and kx, as in linalg's pooling ops.
    Value window = tensor::EmptyOp::create(rewriter, loc, k, elem);
    SmallVector<AffineMap> maps{AffineMap::get(6, 0, {d[4], d[5]}, rewriter.getContext()),
                                AffineMap::get(6, 0, {d[0], d[1], d[2], d[3]}, rewriter.getContext())};
    SmallVector<utils::IteratorType> iterators(4, utils::IteratorType::parallel);
    iterators.append(2, utils::IteratorType::reduction);
    auto generic = linalg::GenericOp::create(
        rewriter, loc, TypeRange{type}, ValueRange{window}, ValueRange{zeros(rewriter, loc, type)}, maps, iterators,
        [&](OpBuilder& b, Location l, ValueRange a) {
          Value zeroIndex = indexConstant(b, l, 0);
          // The window along one dim: oy = (iy + p - ky) / s when exact and in range (clamped to 0 otherwise).
          auto window = [&](int64_t inDim, int64_t tapDim, int64_t dim, Value& valid) {
            Value t = arith::SubIOp::create(
                b, l, arith::AddIOp::create(b, l, linalg::IndexOp::create(b, l, inDim), indexConstant(b, l, p[dim])),
                linalg::IndexOp::create(b, l, tapDim));
            Value stride = indexConstant(b, l, s[dim]);
            Value o = arith::DivSIOp::create(b, l, t, stride);
            Value ok = arith::CmpIOp::create(b, l, arith::CmpIPredicate::sge, t, zeroIndex);
            ok = arith::AndIOp::create(b, l, ok, arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq,
                                                                       arith::RemSIOp::create(b, l, t, stride), zeroIndex));
            ok = arith::AndIOp::create(
                b, l, ok, arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, o,
                                                indexConstant(b, l, gyType.getDimSize(2 + dim))));
            valid = valid ? arith::AndIOp::create(b, l, valid, ok).getResult() : ok;
            return o;
          };
          Value valid;
          Value oy = window(2, 4, 0, valid), ox = window(3, 5, 1, valid);
          oy = arith::SelectOp::create(b, l, valid, oy, zeroIndex);
          ox = arith::SelectOp::create(b, l, valid, ox, zeroIndex);
          SmallVector<Value> at{linalg::IndexOp::create(b, l, 0), linalg::IndexOp::create(b, l, 1), oy, ox};
          Value g = tensor::ExtractOp::create(b, l, gy, at);
          Value zero = scalarConstant(b, l, elem, 0);
          Value contribution;
          if (isMax) {
            Value tap = arith::AddIOp::create(
                b, l, arith::MulIOp::create(b, l, linalg::IndexOp::create(b, l, 4), indexConstant(b, l, k[1])),
                linalg::IndexOp::create(b, l, 5));
            tap = arith::IndexCastOp::create(b, l, b.getI32Type(), tap);
            Value chosen = tensor::ExtractOp::create(b, l, argmax, at);
            Value hit = arith::AndIOp::create(b, l, valid,
                                              arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq, chosen, tap));
            contribution = arith::SelectOp::create(b, l, hit, g, zero);
          } else {
            Value scaled = arith::MulFOp::create(b, l, g, scalarConstant(b, l, elem, scale));
            contribution = arith::SelectOp::create(b, l, valid, scaled, zero);
          }
          linalg::YieldOp::create(b, l, ValueRange{arith::AddFOp::create(b, l, a[1], contribution)});
        });
    return generic.getResult(0);
  }
};

}  // namespace

void populateContractionLoweringPatterns(RewritePatternSet& patterns, bool convCalls) {
  patterns.add<MatmulLowering, Pool2DLowering>(patterns.getContext());
  patterns.add<Conv2DLowering, Conv2DGradInputLowering, Conv2DGradFilterLowering, Pool2DGradLowering>(
      patterns.getContext(), convCalls);
}

}  // namespace kiln::passes
