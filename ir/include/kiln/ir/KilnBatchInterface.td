// The batch-dimension rule of kiln ops, used by -kiln-generalize-batch.
#ifndef KILN_BATCH_INTERFACE_TD
#define KILN_BATCH_INTERFACE_TD

include "mlir/IR/OpBase.td"

def Kiln_BatchDimOpInterface : OpInterface<"BatchDimOpInterface"> {
  let description = [{
    An op that says which dimensions of its results are the batch, given
    which dimensions of its operands are (`BatchDim::Yes`, `No`, or
    `Unknown` for a dimension not settled yet). Ops with the `Elementwise`
    trait need no rule: their result dimensions follow their operands'.
    `-kiln-generalize-batch` propagates these through a function and makes
    every batch dimension `?`; an op without the interface, or whose rule
    fails (it cannot take a symbolic batch size there, e.g. a convolution
    whose channels are the batch), keeps the function's shapes concrete.
  }];
  let cppNamespace = "::kiln::ir";
  let methods = [
    InterfaceMethod<[{
        Sets one BatchDims per result from the operands' (`batch` is the
        traced batch size); fails where the op cannot take a symbolic batch
        size with these operands.
      }], "::mlir::LogicalResult", "inferBatchDims",
      (ins "::llvm::ArrayRef<::kiln::ir::BatchDims>":$operands, "int64_t":$batch,
           "::llvm::SmallVectorImpl<::kiln::ir::BatchDims>&":$results)>,
    InterfaceMethod<[{
        Called once the operand and result types have their `?`: rewrites
        the attributes that carry sizes of batch dimensions (a slice's
        limit), or replaces the op by ops that take a dynamic shape.
      }], "::mlir::LogicalResult", "generalizeBatch",
      (ins "::mlir::RewriterBase&":$rewriter, "::llvm::ArrayRef<::kiln::ir::BatchDims>":$operands,
           "int64_t":$batch),
      [{}], [{ return ::mlir::success(); }]>
  ];
}

#endif // KILN_BATCH_INTERFACE_TD
