// Registration of the kiln dialect and the definitions generated from ODS.
#include "kiln/ir/KilnDialect.h"

#include "kiln/ir/KilnCollective.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace kiln::ir;

#include "kiln/ir/KilnDialect.cpp.inc"
#include "kiln/ir/KilnInterfaces.cpp.inc"
#include "kiln/ir/KilnBatchInterface.cpp.inc"

void KilnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "kiln/ir/KilnOps.cpp.inc"
      ,
#define GET_OP_LIST
#include "kiln/ir/KilnCollectiveOps.cpp.inc"
      >();
}
