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
    (comparisons, argmax, iota, rng, `kiln.stop_gradient`) pass no gradient.
    Finally every `kiln.stop_gradient` is replaced by its operand.
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
}

def KilnBatchMatmuls : Pass<"kiln-batch-matmuls", "mlir::func::FuncOp"> {
  let summary = "Makes one GEMM of independent matmuls that share their right-hand operand";
  let description = [{
    An unrolled recurrence multiplies every time step's input by one weight:
    T small GEMMs (x_t W^T, and in the backward graph dY_t W) where one
    GEMM over the T x rows would run at full speed. In each block:
    1. matmuls of 2-d operands with one `b` (and one `transpose_b`), an
       untransposed `a` of one type, none of whose `a` depends on another's
       result, become one matmul of a 2-d `b` shared by the concatenation of
       the `a`s (each reshaped to (1, M, K), concatenated along a new leading
       dimension), whose result is sliced back per matmul;
    2. an add chain (single-use kiln.adds) summing products a_i^T b_i of
       2-d operands (a weight gradient, one product per step) becomes one
       `sum_batch` matmul of the concatenated `a`s and `b`s, plus the chain's
       other terms.
    Candidates join a group in block order while their operands do not
    depend on the group's results (a walk back from the operands), so no
    cycle is created; the block is then sorted topologically (the batched
    matmul after its last operand, each slice's users after it). Groups are
    of `min-matmuls` to `max-matmuls` matmuls; a matmul whose rows are static
    and above `max-rows` is a full GEMM already and stays. The sum changes
    order (within rounding); every other result is exact.

    ```mlir
    %y0 = kiln.matmul %x0, %w {transpose_b} : tensor<?x8xf32>, tensor<32x8xf32> -> tensor<?x32xf32>
    %y1 = kiln.matmul %x1, %w {transpose_b} : tensor<?x8xf32>, tensor<32x8xf32> -> tensor<?x32xf32>
    // becomes
    %r0 = kiln.reshape %x0 : tensor<?x8xf32> -> tensor<1x?x8xf32>
    %r1 = kiln.reshape %x1 : tensor<?x8xf32> -> tensor<1x?x8xf32>
    %x = kiln.concat %r0, %r1 {axis = 0 : i64} : ... -> tensor<2x?x8xf32>
    %y = kiln.matmul %x, %w {transpose_b} : tensor<2x?x8xf32>, tensor<32x8xf32> -> tensor<2x?x32xf32>
    // %y0, %y1: kiln.slice of %y, reshaped to tensor<?x32xf32>
    ```
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
  let options = [
    Option<"minMatmuls", "min-matmuls", "int64_t", "2", "Fewest matmuls a group replaces">,
    Option<"maxMatmuls", "max-matmuls", "int64_t", "64",
           "Most matmuls of one group (a longer run makes several groups)">,
    Option<"maxRows", "max-rows", "int64_t", "256",
           "Matmuls with more (static) rows than this stay as they are; a dynamic row count (the batch) is batched">
  ];
}

def KilnFuse : Pass<"kiln-fuse", "mlir::func::FuncOp"> {
  let summary = "Groups kiln ops into kiln.fusion regions, one kernel each";
  let description = [{
    Decides fusion groups in each block, by the role `FusionOp::roleOf` gives
    each op, in three phases of decreasing priority:
    1. contraction: each matmul/conv2d absorbs its elementwise consumers of
       the same element count (the epilogue: bias add, activation, scaling)
       and the broadcast_to/reshape chains that feed them (the bias);
    2. reduction: each reduce_sum/reduce_max absorbs elementwise producers
       and consumers of its input or result element count, and reductions of
       the same input type and axes (softmax, log_softmax, mean, bias
       gradients, loss sums);
    3. elementwise: the remaining elementwise and broadcast_to/reshape ops
       merge with their producers along chains of one element count.
    Work is never duplicated: each op is in one group, and a value a group
    computes that is used outside becomes a result of that group. Merges that
    would make a path between two groups through a third are refused, so the
    groups form a DAG. Small constants are cloned into each group that uses
    them. Groups with no arithmetic (only broadcast_to/reshape) and opaque ops
    stay outside regions.
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
  let options = [
    Option<"maxClonedConstantElements", "max-cloned-constant-elements", "int64_t", "64",
           "Constants with more elements (and not splat) become region inputs instead of clones">
  ];
}

def KilnUnfuse : Pass<"kiln-unfuse", "mlir::func::FuncOp"> {
  let summary = "Inlines kiln.fusion regions back into their block";
  let description = [{
    The inverse of -kiln-fuse, for backends that do not use regions: each
    region's ops move before the fusion op, with block arguments replaced by
    the operands and results by the yielded values.
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
}

def KilnHoistCollectives : Pass<"kiln-hoist-collectives", "mlir::func::FuncOp"> {
  let summary = "Moves each kiln.collective_start right after its bucket's last gradient";
  let description = [{
    For a backend that runs a graph's ops in block order (the cuda backend,
    before -kiln-fuse): each `kiln.collective_start` and the ops that only
    assemble its bucket (reshapes, the concatenation: no regions, no memory
    effects, used only by the chain) move right after the last op computing
    a value they use, so the bucket's reduction starts while the rest of the
    backward runs. The ops computing the gradients keep their order. The cpu
    backend does the same on linalg in -kiln-start-collectives.
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
}

def KilnLowerToLinalg : Pass<"kiln-lower-to-linalg", "mlir::func::FuncOp"> {
  let summary = "Lowers kiln ops to linalg, tensor, arith, math and scf on tensors";
  let description = [{
    Every kiln op except `kiln.grad` (which `-kiln-autodiff` removes first)
    becomes upstream ops on tensors: named linalg ops for
    matmul, convolution and pooling; `linalg.generic` for elementwise ops,
    broadcasts, reversals, argmax, the convolution filter gradient and pooling
    gradients; `linalg.reduce` for reductions; tensor slices, pads, reshapes
    and inserts for data movement; `scf.for` loops on tensors for
    `kiln.scatter_add`; Philox-4x32-10 in arith for `kiln.rng_uniform`.
    `kiln.fusion` regions, if any, are inlined and their ops lowered.
    Semantics follow the reference interpreter (codegen/interp); gather ids
    out of range are clamped to the table. Fails, naming the op, if any kiln
    op is left.

    Dynamic dimensions follow kiln's convention: every `?` in a function is
    one run-time size, the batch size. It is read at the entry from the first
    argument with a dynamic dimension (`tensor.dim`), and a `cf.assert`
    checks that every other dynamic argument dimension has that size. Ops
    whose lowering needs a static size there (a convolution's spatial or
    channel dimensions, a gather table, the axis of a concatenation or
    reversal) fail to lower.
  }];
  let options = [
    Option<"convCalls", "conv-calls", "bool", /*default=*/"false",
           "Lower f32/f64 conv2d and its input gradient (one group) to "
           "linalg.conv_2d_nchw_fchw, and its filter gradient to a linalg.generic "
           "marked kiln.conv2d_grad_filter, for backends that call a convolution "
           "library there (the CPU backend with KILN_GEMM=blas: "
           "-kiln-matmul-to-blas); otherwise im2col + GEMM in linalg">,
    Option<"batchChecks", "batch-checks", "bool", /*default=*/"true",
           "Assert at the function's entry that every dynamic argument dimension "
           "equals the batch size; off where every caller passes one size for all "
           "of them (kilnc's C entry points build each `?` from their batch argument)">
  ];
  let dependentDialects = ["mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect",
                           "mlir::arith::ArithDialect", "mlir::math::MathDialect",
                           "mlir::scf::SCFDialect", "mlir::cf::ControlFlowDialect"];
}

def KilnInlineCustom : Pass<"kiln-inline-custom", "mlir::func::FuncOp"> {
  let summary = "Replaces each kiln.custom by its forward region's ops";
  let description = [{
    Runs after `-kiln-autodiff` (which uses each `kiln.custom`'s backward
    region as its VJP): the forward region's ops move before the op, with
    block arguments replaced by the inputs and the result by the yielded
    value; the backward region is dropped. No backend sees `kiln.custom`.
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
}

def KilnGeneralizeBatch : Pass<"kiln-generalize-batch", "mlir::func::FuncOp"> {
  let summary = "Makes the batch size of a traced function a symbolic (`?`) dimension";
  let description = [{
    The frontend emits a graph with concrete shapes and marks its arguments:
    `kiln.batch_candidate = 2` on data batches (leaves that are not model or
    optimizer state), `= 1` on values computed earlier, and `kiln.state` on
    model or optimizer state and gradients, which never hold the batch. The
    batch size B is the leading dimension most arguments of the highest
    candidate level share (sizes 0 and 1 stay concrete). The leading
    dimension of every argument that is not state and has size B is the
    batch; each op's `BatchDimOpInterface` (or its `Elementwise` trait)
    says which result dimensions follow. Dimensions that ops introduce from
    attributes (broadcast targets, splat constants, iota, random numbers)
    take the answer of the elementwise ops that combine them with other
    values, so a hidden size equal to B stays static; those still unknown
    are the batch where they equal B. Then every batch dimension becomes
    `?`, and ops rewrite the attributes that carry its size (a slice's
    limit; a splat constant becomes a 0-d constant broadcast to the shape).

    When an op has no rule, or its rule cannot take a symbolic batch size
    with its operands (a convolution whose channels are the batch, part of
    the batch sliced), the function keeps its concrete shapes and the pass
    emits a remark on that op saying why. The marks are removed either way,
    so one traced structure gives one function text for every batch size.

    ```mlir
    func.func @f(%x: tensor<8x3xf32> {kiln.batch_candidate = 2 : i64}) -> tensor<8x3xf32>
    // becomes
    func.func @f(%x: tensor<?x3xf32>) -> tensor<?x3xf32>
    ```
  }];
  let dependentDialects = ["kiln::ir::KilnDialect"];
}

#endif // KILN_PASSES_TD
