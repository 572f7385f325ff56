// Interfaces of kiln ops: the vector-Jacobian product used by autodiff and the
// scalar semantics of elementwise ops.
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

def Kiln_ScalarOpInterface : OpInterface<"ScalarOpInterface"> {
  let description = [{
    An elementwise op whose result element at each index is a function of its
    operands' elements at that index, stated once, with the op, as a scalar
    expression (syntax and primitives: kiln/ir/ScalarExpr.h). The interpreter
    evaluates it, -kiln-lower-to-linalg emits it as arith/math ops and the
    source emitters render it as C++: no backend has its own table of ops.
  }];
  let cppNamespace = "::kiln::ir";
  let methods = [
    InterfaceMethod<"The scalar expression of this op, e.g. `(select (gtu x 0) x 0)`.",
      "::llvm::StringRef", "getScalarSemantics", (ins)>
  ];
}

#endif // KILN_INTERFACES_TD
