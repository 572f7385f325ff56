// Interfaces of kiln ops: the vector-Jacobian product used by autodiff.
#ifndef KILN_INTERFACES_TD
#define KILN_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Kiln_VJPOpInterface : OpInterface<"VJPOpInterface"> {
  let description = [{
    An op that knows its vector-Jacobian product. Given the cotangents of its
    results (null where a result has none), `buildVJP` emits kiln ops at the
    builder's insertion point and returns one cotangent per operand (a null
    Value for operands that receive no gradient, such as integer labels).
  }];
  let cppNamespace = "::kiln::ir";
  let methods = [
    InterfaceMethod<"Builds the VJP of this op.", "::mlir::LogicalResult", "buildVJP",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::ValueRange":$resultGrads,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

#endif // KILN_INTERFACES_TD
