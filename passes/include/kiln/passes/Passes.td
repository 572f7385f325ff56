// Passes of kiln.
#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnAutodiff : Pass<"kiln-autodiff", "mlir::func::FuncOp"> {
  let summary = "Replaces kiln.grad requests by the backward graph built from each op's VJP";
  let description = [{
    For each distinct (y, seed) pair of `kiln.grad` ops, walks the ops between
    the requested inputs and y in reverse order, asks each op's
    `VJPOpInterface` for its operand cotangents, sums cotangents of values
    with several uses, and replaces each `kiln.grad` by the cotangent of its
    `x` (zeros where y does not depend on x). Ops without the interface
    (comparisons, argmax, iota, rng) pass no gradient.
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
}

#endif // KILN_PASSES_TD
