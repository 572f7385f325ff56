// kiln.collective_start: verifier and batch-dimension rule.
#include "kiln/ir/KilnCollective.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"

using namespace mlir;
using namespace kiln::ir;

#define GET_OP_CLASSES
#include "kiln/ir/KilnCollectiveOps.cpp.inc"

LogicalResult CollectiveStartOp::verify() {
  if (static_cast<int64_t>(getBucket()) < 0)
    return emitOpError("bucket must be >= 0, got ") << static_cast<int64_t>(getBucket());
  if (cast<RankedTensorType>(getX().getType()).getRank() != 1)
    return emitOpError("x must be a flat (rank-1) bucket, got ") << getX().getType();
  for (Operation* user : getResult().getUsers())
    if (!user->hasTrait<OpTrait::ReturnLike>())
      return emitOpError(
                 "result may only be returned (the communicator writes its buffer while the graph "
                 "runs), but '")
             << user->getName() << "' uses it";
  return success();
}

LogicalResult CollectiveStartOp::inferBatchDims(ArrayRef<BatchDims> operands, int64_t,
                                                SmallVectorImpl<BatchDims>& results) {
  results.push_back(operands[0]);
  return success();
}
