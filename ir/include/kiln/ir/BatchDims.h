// Which dimensions of a value are the batch: the vocabulary of BatchDimOpInterface
// and -kiln-generalize-batch.
#pragma once

#include <cstdint>
#include <string>

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Value.h"
#include "mlir/Support/LogicalResult.h"

namespace mlir {
class OpBuilder;
class Operation;
class RewriterBase;
}  // namespace mlir

namespace kiln::ir {

// Per dimension of a value: not the batch, the batch, or not known yet (a
// dimension an op introduces from an attribute, such as a broadcast target,
// settled by the elementwise ops that combine it with other values).
enum class BatchDim : uint8_t { No, Yes, Unknown };
using BatchDims = llvm::SmallVector<BatchDim, 4>;

// Yes where the dimension equals `batch`, else No.
BatchDims batchDimsByValue(llvm::ArrayRef<int64_t> shape, int64_t batch);
// Unknown where the dimension equals `batch`, else No.
BatchDims introducedBatchDims(llvm::ArrayRef<int64_t> shape, int64_t batch);
// `type` (a ranked tensor) with each Yes dimension dynamic (`?`).
mlir::Type withBatchDims(mlir::Type type, llvm::ArrayRef<BatchDim> dims);

// A kiln.constant of `type` whose every element is `element`; where `type`
// has `?` dimensions, a 0-d constant broadcast to it (kiln.broadcast_to).
mlir::Value createSplat(mlir::OpBuilder& builder, mlir::Location loc, mlir::RankedTensorType type,
                        mlir::Attribute element);

// The batch dimensions of op's results from its operands': by the
// Elementwise trait (each result dimension is the batch where an operand's
// is) or by BatchDimOpInterface. Fails, with `reason` (to follow the op's
// name: "cannot take ..."), when the op has neither or cannot take a
// symbolic batch size with these operands.
mlir::LogicalResult inferBatchDims(mlir::Operation* op, llvm::ArrayRef<BatchDims> operands, int64_t batch,
                                   llvm::SmallVectorImpl<BatchDims>& results, std::string* reason);
// Whether final (settled) dimensions agree with op's rule: the rule accepts
// `operands` and gives `results` (an Unknown of the rule matches either), and
// every operand of an elementwise op has the result's dimensions.
mlir::LogicalResult verifyBatchDims(mlir::Operation* op, llvm::ArrayRef<BatchDims> operands,
                                    llvm::ArrayRef<BatchDims> results, int64_t batch, std::string* reason);
// Gives op's results the dynamic dimensions of `results` (its operands'
// types are generalized already), then lets the op rewrite the attributes
// that carry sizes (BatchDimOpInterface::generalizeBatch). Fails with a
// diagnostic on the op.
mlir::LogicalResult generalizeBatchDims(mlir::RewriterBase& rewriter, mlir::Operation* op,
                                        llvm::ArrayRef<BatchDims> operands, llvm::ArrayRef<BatchDims> results,
                                        int64_t batch);

}  // namespace kiln::ir
