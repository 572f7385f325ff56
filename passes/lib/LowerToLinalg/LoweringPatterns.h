// Patterns and builders shared by -kiln-lower-to-linalg's op families (private to passes/lib).
#pragma once

#include "kiln/ir/KilnDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/DialectConversion.h"

namespace kiln::passes {

// One populate function per op family; LowerToLinalg.cpp adds them all.
void populateElementwiseLoweringPatterns(mlir::RewritePatternSet& patterns);   // Elementwise.cpp
void populateShapeOpLoweringPatterns(mlir::RewritePatternSet& patterns);       // ShapeOps.cpp
void populateReductionLoweringPatterns(mlir::RewritePatternSet& patterns);     // Reductions.cpp
// `convCalls`: -kiln-lower-to-linalg's conv-calls option (convolutions as
// linalg.conv_2d_nchw_fchw and the marked filter-gradient generic).
void populateContractionLoweringPatterns(mlir::RewritePatternSet& patterns, bool convCalls);  // Contractions.cpp
void populateGatherScatterRngLoweringPatterns(mlir::RewritePatternSet& patterns);  // GatherScatterRng.cpp

// The scalar computation of an op with ScalarOpInterface on its operands'
// scalars (its expression from KilnOps.td, as arith/math ops at the builder's
// insertion point). Failure (with the op's diagnostic) if it has none.
mlir::FailureOr<mlir::Value> emitScalarOp(mlir::OpBuilder& b, mlir::Location loc, mlir::Operation* op,
                                          mlir::ValueRange scalars);  // Elementwise.cpp

// kiln.fusion regions whose ops all iterate over one space become one kernel
// each: one linalg.generic (after the region's matmul/conv2d, which stays a
// kiln op for the contraction patterns). Other regions are left in place.
mlir::LogicalResult lowerFusionKernels(mlir::func::FuncOp func);  // FusionKernels.cpp

// Base of every kiln lowering: checks that all operand and result types are
// ranked tensors, then calls `lower`, which returns the replacement value of
// the op's single result. A dynamic (`?`) dimension is the function's batch
// size (see batchSize); a lowering that cannot handle one where it appears
// fails to match.
template <typename OpTy>
class KilnLowering : public mlir::OpConversionPattern<OpTy> {
 public:
  using mlir::OpConversionPattern<OpTy>::OpConversionPattern;
  using OpAdaptor = typename OpTy::Adaptor;

  mlir::LogicalResult matchAndRewrite(OpTy op, OpAdaptor adaptor,
                                      mlir::ConversionPatternRewriter& rewriter) const final {
    for (mlir::Type t : op->getOperandTypes())
      if (!mlir::isa<mlir::RankedTensorType>(t)) return rewriter.notifyMatchFailure(op, "operands must be ranked");
    for (mlir::Type t : op->getResultTypes())
      if (!mlir::isa<mlir::RankedTensorType>(t)) return rewriter.notifyMatchFailure(op, "results must be ranked");
    mlir::FailureOr<mlir::Value> result = lower(op, adaptor, rewriter);
    if (mlir::failed(result)) return mlir::failure();
    rewriter.replaceOp(op, *result);
    return mlir::success();
  }

  virtual mlir::FailureOr<mlir::Value> lower(OpTy op, OpAdaptor adaptor,
                                             mlir::ConversionPatternRewriter& rewriter) const = 0;
};

// Whether `type` is static outside its dimensions listed in `mayBeDynamic`.
inline bool staticExcept(mlir::RankedTensorType type, llvm::ArrayRef<int64_t> mayBeDynamic) {
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d) && !llvm::is_contained(mayBeDynamic, d)) return false;
  return true;
}

// Dynamic dimensions: every `?` in a function lowered by -kiln-lower-to-linalg
// has one run-time extent, the batch size. The pass computes it once at the
// function's entry (tensor.dim of the first argument with a dynamic
// dimension, marked with this attribute); batchSize finds that value from
// any insertion point inside the function.
inline constexpr const char* kBatchSizeAttr = "kiln.batch_size";
mlir::Value batchSize(mlir::OpBuilder& b);
// Size of dimension `d` of `type`: a constant, or the batch size when dynamic.
mlir::Value dimValue(mlir::OpBuilder& b, mlir::Location loc, mlir::RankedTensorType type, int64_t d);
// The sizes of `type` as OpFoldResults (the batch size for dynamic dimensions).
llvm::SmallVector<mlir::OpFoldResult> mixedSizes(mlir::OpBuilder& b, mlir::RankedTensorType type);

// The static shape of a value of ranked tensor type.
inline mlir::RankedTensorType tensorType(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType());
}

// tensor.empty of `type` (dynamic dimensions sized by the batch size).
mlir::Value emptyTensor(mlir::OpBuilder& b, mlir::Location loc, mlir::RankedTensorType type);
// linalg.fill of `scalar` into a new tensor of `type`.
mlir::Value filledTensor(mlir::OpBuilder& b, mlir::Location loc, mlir::RankedTensorType type,
                         mlir::Value scalar);
// arith.constant `value` of scalar type `type` (integers truncate toward zero, i1 is value != 0).
mlir::Value scalarConstant(mlir::OpBuilder& b, mlir::Location loc, mlir::Type type, double value);
// The smallest value of `type`: -inf for floats, the signed minimum for integers, false for i1.
mlir::Value lowestScalar(mlir::OpBuilder& b, mlir::Location loc, mlir::Type type);
mlir::Value indexConstant(mlir::OpBuilder& b, mlir::Location loc, int64_t value);
// Static sizes, offsets or strides as OpFoldResults.
llvm::SmallVector<mlir::OpFoldResult> indexAttrs(mlir::OpBuilder& b, llvm::ArrayRef<int64_t> values);

// Converts a scalar with kiln.cast semantics (the interpreter's): float->int
// truncates, int->float is signed (i1 is 0/1), anything->i1 is `!= 0`.
mlir::Value convertScalar(mlir::OpBuilder& b, mlir::Location loc, mlir::Value v, mlir::Type to);
// a + b for any kiln element type (i1: or).
mlir::Value addScalars(mlir::OpBuilder& b, mlir::Location loc, mlir::Value lhs, mlir::Value rhs);

// Row-major reshape through tensor.collapse_shape / tensor.expand_shape.
mlir::Value reshapeTensor(mlir::OpBuilder& b, mlir::Location loc, mlir::Value v,
                          mlir::RankedTensorType target);

using ScalarBodyBuilder =
    llvm::function_ref<mlir::Value(mlir::OpBuilder&, mlir::Location, mlir::ValueRange)>;

// A parallel linalg.generic producing `resultType`, reading `inputs` through
// `inputMaps` (identity maps when empty); `body` gets the input scalars.
mlir::Value buildParallelGeneric(mlir::OpBuilder& b, mlir::Location loc,
                                 mlir::RankedTensorType resultType, mlir::ValueRange inputs,
                                 llvm::ArrayRef<mlir::AffineMap> inputMaps, ScalarBodyBuilder body);

}  // namespace kiln::passes
