// The kiln dialect, its ops and interfaces.
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "kiln/ir/KilnDialect.h.inc"
#include "kiln/ir/BatchDims.h"
#include "kiln/ir/KilnInterfaces.h.inc"
#include "kiln/ir/KilnBatchInterface.h.inc"

#define GET_OP_CLASSES
#include "kiln/ir/KilnOps.h.inc"

namespace kiln::ir {
// Static element count and number of dynamic dimensions of a shape: two
// shapes hold the same number of elements for every value of the (one)
// symbolic batch size when both agree.
std::pair<int64_t, int64_t> symbolicSize(llvm::ArrayRef<int64_t> shape);
}  // namespace kiln::ir
