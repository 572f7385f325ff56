// Ops of the kiln dialect.
#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "kiln/ir/KilnDialect.td"
include "kiln/ir/KilnInterfaces.td"
include "kiln/ir/KilnBatchInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

defvar VJP = DeclareOpInterfaceMethods<Kiln_VJPOpInterface>;
// The batch-dimension rule (ir/lib/KilnBatch.cpp); BatchAttrs: it also rewrites
// attributes that carry sizes. Elementwise ops follow their operands without one.
defvar Batch = DeclareOpInterfaceMethods<Kiln_BatchDimOpInterface>;
defvar BatchAttrs = DeclareOpInterfaceMethods<Kiln_BatchDimOpInterface, ["generalizeBatch"]>;

//===----------------------------------------------------------------------===//
// Constants and generators
//===----------------------------------------------------------------------===//

def Kiln_ConstantOp : Kiln_Op<"constant", [ConstantLike, Pure, BatchAttrs,
    InferTypeOpAdaptor]> {
  let summary = "A tensor constant";
  let description = [{
    ```mlir
    %c = kiln.constant dense<2.0> : tensor<2x3xf32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$value attr-dict";
  let hasFolder = 1;
}

def Kiln_IotaOp : Kiln_Op<"iota", [Pure, Batch]> {
  let summary = "Index along one dimension: result[i...] = i[dimension]";
  let arguments = (ins I64Attr:$dimension);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "`dim` `=` $dimension attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_RngUniformOp : Kiln_Op<"rng_uniform", [Pure, Batch]> {
  let summary = "Counter-based (Philox-4x32-10) uniform numbers in [0, 1)";
  let description = [{
    `key` holds (seed, offset). Element i (C order) is derived from the key
    `seed` and the counter `offset + i`, so results are identical on every
    backend. The key is an operand, not an attribute, so a training loop that
    draws new numbers each step keeps one graph structure (one compile).
  }];
  let arguments = (ins TensorOf<[I64]>:$key);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$key attr-dict `:` type($key) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

// An elementwise op whose scalar computation is `scalar` (kiln/ir/ScalarExpr.h:
// `x`, `y` are the operands), read by every backend through ScalarOpInterface.
class Kiln_ScalarOpBase<string scalar> {
  code scalarSemantics = [{
    ::llvm::StringRef getScalarSemantics() { return "}] # scalar # [{"; }
  }];
}

class Kiln_UnaryOp<string mnemonic, string desc, string scalar, list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat([Pure, Elementwise, SameOperandsAndResultType, VJP,
                                     Kiln_ScalarOpInterface], traits)>,
      Kiln_ScalarOpBase<scalar> {
  let summary = "Elementwise " # desc # ": `" # scalar # "`";
  let arguments = (ins Kiln_Tensor:$x);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
  let extraClassDeclaration = scalarSemantics;
}

def Kiln_NegOp : Kiln_UnaryOp<"neg", "negation", "(neg x)">;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", "exponential", "(exp x)">;
def Kiln_LogOp : Kiln_UnaryOp<"log", "natural logarithm", "(log x)">;
def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", "square root", "(sqrt x)">;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", "hyperbolic tangent", "(tanh x)">;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", "logistic sigmoid",
                                  "(div 1 (add 1 (exp (neg x))))">;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", "max(x, 0)", "(select (gtu x 0) x 0)"> {
  let description = [{
    NumPy's `maximum(x, 0)`: x where x > 0, else 0; NaN stays NaN (so a NaN
    is not hidden, as in Chainer).
  }];
}
def Kiln_AbsOp : Kiln_UnaryOp<"abs", "absolute value", "(abs x)">;
def Kiln_SignOp : Kiln_UnaryOp<"sign", "sign (-1, 0 or 1)",
                               "(select (gt x 0) 1 (select (lt x 0) -1 0))">;
def Kiln_Log1pOp : Kiln_UnaryOp<"log1p", "log(1 + x)", "(log1p x)">;
def Kiln_Expm1Op : Kiln_UnaryOp<"expm1", "exp(x) - 1", "(expm1 x)">;
def Kiln_ErfOp : Kiln_UnaryOp<"erf", "error function", "(erf x)">;
def Kiln_SinOp : Kiln_UnaryOp<"sin", "sine", "(sin x)">;
def Kiln_CosOp : Kiln_UnaryOp<"cos", "cosine", "(cos x)">;
def Kiln_TanOp : Kiln_UnaryOp<"tan", "tangent", "(tan x)">;
def Kiln_AsinOp : Kiln_UnaryOp<"asin", "arcsine (NaN outside [-1, 1])", "(asin x)">;
def Kiln_AcosOp : Kiln_UnaryOp<"acos", "arccosine (NaN outside [-1, 1])", "(acos x)">;
def Kiln_AtanOp : Kiln_UnaryOp<"atan", "arctangent", "(atan x)">;
def Kiln_FloorOp : Kiln_UnaryOp<"floor", "largest integer <= x", "(floor x)">;
def Kiln_CeilOp : Kiln_UnaryOp<"ceil", "smallest integer >= x", "(ceil x)">;

class Kiln_BinaryOp<string mnemonic, string desc, string scalar>
    : Kiln_Op<mnemonic, [Pure, Elementwise, SameOperandsAndResultType, VJP,
                         Kiln_ScalarOpInterface]>,
      Kiln_ScalarOpBase<scalar> {
  let summary = "Elementwise " # desc # " of two tensors of one type: `" # scalar # "`";
  let arguments = (ins Kiln_Tensor:$lhs, Kiln_Tensor:$rhs);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
  let extraClassDeclaration = scalarSemantics;
}

def Kiln_AddOp : Kiln_BinaryOp<"add", "sum", "(add x y)">;
def Kiln_SubOp : Kiln_BinaryOp<"sub", "difference", "(sub x y)">;
def Kiln_MulOp : Kiln_BinaryOp<"mul", "product", "(mul x y)">;
def Kiln_DivOp : Kiln_BinaryOp<"div", "quotient", "(div x y)"> {
  let description = [{
    Floats: IEEE division (x / 0 is +-inf or NaN). Integers: truncation
    toward zero, defined for every operand, on every backend, never a trap:
    as NumPy answers (with its RuntimeWarning) where C is undefined,
    x / 0 = 0 and MIN / -1 = MIN (the quotient wraps).
  }];
}
// std::max / std::min: (x < y) ? y : x and (y < x) ? y : x.
def Kiln_MaxOp : Kiln_BinaryOp<"max", "maximum", "(select (lt x y) y x)">;
def Kiln_MinOp : Kiln_BinaryOp<"min", "minimum", "(select (lt y x) y x)">;
def Kiln_PowOp : Kiln_BinaryOp<"pow", "power lhs^rhs", "(pow x y)">;
def Kiln_Atan2Op : Kiln_BinaryOp<"atan2", "arctangent of lhs / rhs in (-pi, pi] by the signs of both (C's atan2)",
                                 "(atan2 x y)">;

def Kiln_CompareOp : Kiln_Op<"compare", [Pure, Elementwise, AllTypesMatch<["lhs", "rhs"]>,
    InferTypeOpAdaptor, DeclareOpInterfaceMethods<Kiln_ScalarOpInterface>]> {
  let summary = "Elementwise comparison (eq, ne, lt, le, gt, ge) giving i1";
  let arguments = (ins StrAttr:$predicate, Kiln_Tensor:$lhs, Kiln_Tensor:$rhs);
  let results = (outs TensorOf<[I1]>:$result);
  let assemblyFormat = "$predicate `,` $lhs `,` $rhs attr-dict `:` type($lhs)";
  let hasVerifier = 1;
}

def Kiln_SelectOp : Kiln_Op<"select", [Pure, Elementwise, VJP, Kiln_ScalarOpInterface,
    AllTypesMatch<["on_true", "on_false", "result"]>]>, Kiln_ScalarOpBase<"(select x y z)"> {
  let summary = "Elementwise cond ? on_true : on_false";
  let arguments = (ins TensorOf<[I1]>:$cond, Kiln_Tensor:$on_true, Kiln_Tensor:$on_false);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$cond `,` $on_true `,` $on_false attr-dict `:` type($cond) `,` type($result)";
  let hasVerifier = 1;
  let extraClassDeclaration = scalarSemantics;
}

def Kiln_CastOp : Kiln_Op<"cast", [Pure, Elementwise, VJP, Kiln_ScalarOpInterface]>,
    Kiln_ScalarOpBase<"(convert x)"> {
  let summary = "Elementwise conversion to another element type";
  let arguments = (ins Kiln_Tensor:$x);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
  let extraClassDeclaration = scalarSemantics;
}

//===----------------------------------------------------------------------===//
// Shape and data movement
//===----------------------------------------------------------------------===//

def Kiln_BroadcastToOp : Kiln_Op<"broadcast_to", [Pure, VJP, Batch]> {
  let summary = "numpy broadcasting of x to the result's shape";
  let description = [{
    Trailing dimensions are aligned; each input dimension is 1 or equal to the
    result's. `%y = kiln.broadcast_to %x : tensor<3xf32> -> tensor<2x3xf32>`
  }];
  let arguments = (ins Kiln_Tensor:$x);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure, VJP, Batch]> {
  let summary = "Row-major reshape to the result's shape (same element count)";
  let arguments = (ins Kiln_Tensor:$x);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_TransposeOp : Kiln_Op<"transpose", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "Permutes dimensions: result.shape[i] = x.shape[permutation[i]]";
  let arguments = (ins Kiln_Tensor:$x, DenseI64ArrayAttr:$permutation);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x `,` $permutation attr-dict `:` type($x) `->` type($result)";
}

def Kiln_SliceOp : Kiln_Op<"slice", [Pure, VJP, BatchAttrs,
    InferTypeOpAdaptor]> {
  let summary = "Strided slice x[start:limit:step] per dimension (step > 0)";
  let arguments = (ins Kiln_Tensor:$x, DenseI64ArrayAttr:$start,
                   DenseI64ArrayAttr:$limit, DenseI64ArrayAttr:$step);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
}

def Kiln_PadOp : Kiln_Op<"pad", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "Pads with a constant: low/high edges and interior gaps per dimension";
  let description = [{
    Output size of a dimension: low + high + n + (n - 1) * interior. The
    transpose of a strided `kiln.slice`.
  }];
  let arguments = (ins Kiln_Tensor:$x, DenseI64ArrayAttr:$low, DenseI64ArrayAttr:$high,
                   DenseI64ArrayAttr:$interior, F64Attr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x) `->` type($result)";
}

def Kiln_ReverseOp : Kiln_Op<"reverse", [Pure, VJP, Batch, SameOperandsAndResultType]> {
  let summary = "Reverses the order of elements along the given dimensions";
  let arguments = (ins Kiln_Tensor:$x, DenseI64ArrayAttr:$dimensions);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x `,` $dimensions attr-dict `:` type($x)";
  let hasVerifier = 1;
}

def Kiln_ConcatOp : Kiln_Op<"concat", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "Concatenates tensors of one element type along `axis`";
  let arguments = (ins Variadic<Kiln_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

class Kiln_ReduceOp<string mnemonic, string desc>
    : Kiln_Op<mnemonic, [Pure, VJP, Batch, InferTypeOpAdaptor]> {
  let summary = desc # " over `axes`, keeping them as size 1 with `keepdims`";
  let arguments = (ins Kiln_Tensor:$x, DenseI64ArrayAttr:$axes, UnitAttr:$keepdims);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x `,` $axes (`keepdims` $keepdims^)? attr-dict `:` type($x) `->` type($result)";
}

def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", "Sum">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", "Maximum">;

def Kiln_ArgmaxOp : Kiln_Op<"argmax", [Pure, Batch, InferTypeOpAdaptor]> {
  let summary = "Index (i32) of the first maximum along `axis` (removed)";
  let description = [{
    NaN counts as larger than any number: where a slice holds NaN the result
    is the index of its first NaN (NumPy's argmax).
  }];
  let arguments = (ins Kiln_Tensor:$x, I64Attr:$axis);
  let results = (outs TensorOf<[I32]>:$result);
  let assemblyFormat = "$x `,` $axis attr-dict `:` type($x) `->` type($result)";
}

def Kiln_DimSizeOp : Kiln_Op<"dim_size", [Pure, Batch, VJP]> {
  let summary = "The product of some dimensions of `x`, as a 0-d tensor";
  let description = [{
    Counts for means and normalizations. With a symbolic (`?`) batch
    dimension the count is known only at run time, so it is an op rather
    than a constant; static dimensions lower to a constant. `x` is read for
    its shape only: its VJP gives `x` no gradient (the count is constant in
    x's values).

    ```mlir
    %n = kiln.dim_size %x, [0, 2] : tensor<?x3x4xf32> -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$x, DenseI64ArrayAttr:$dims);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x `,` $dims attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Contractions, convolution, pooling, gather
//===----------------------------------------------------------------------===//

// conv2d's filter dilation (one entry per spatial dim) and group count;
// defaults make a plain convolution.
def Kiln_ConvDilateAttr : DefaultValuedAttr<DenseI64ArrayAttr, "{1, 1}">;
def Kiln_ConvGroupsAttr : DefaultValuedAttr<I64Attr, "1">;

def Kiln_MatmulOp : Kiln_Op<"matmul", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "Batched matrix product over the last two dimensions";
  let description = [{
    `a`: (..., M, K) or (..., K, M) with `transpose_a`; `b`: (..., K, N) or
    (..., N, K) with `transpose_b`. Leading (batch) dimensions must be equal.

    Two forms that `-kiln-batch-matmuls` builds, each one GEMM over the rows
    of all the matrices of a batch (their leading dimensions collapse into
    the rows, which are contiguous):
    - a shared `b`: a 2-d `b` multiplies every matrix of an untransposed `a`
      of rank > 2, (..., M, K) x (K, N) -> (..., M, N);
    - `sum_batch`: the sum of the batch's products a[i]^T b[i], with
      `transpose_a`, not `transpose_b`, and operands of one rank > 2 and
      equal leading dimensions: (..., K, M) x (..., K, N) -> (M, N).
  }];
  let arguments = (ins Kiln_FloatTensor:$a, Kiln_FloatTensor:$b,
                   UnitAttr:$transpose_a, UnitAttr:$transpose_b, UnitAttr:$sum_batch);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$a `,` $b attr-dict `:` type($a) `,` type($b) `->` type($result)";
}

def Kiln_Conv2DOp : Kiln_Op<"conv2d", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "2-D cross-correlation, NCHW input, OIHW filter";
  let description = [{
    x (N, C, H, W), w (O, C/groups, kh, kw), result (N, O, Ho, Wo) with
    Ho = (H + 2 pad - (dilate (kh - 1) + 1)) / stride + 1 (likewise Wo), as
    Chainer's convolution_2d with cover_all false. `dilate` spaces the filter
    taps; with `groups` g, C and O split into g groups and output group i
    reads only input group i. Both default to 1 (and are then not printed).
  }];
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$w,
                   DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$pad,
                   Kiln_ConvDilateAttr:$dilate, Kiln_ConvGroupsAttr:$groups);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x `,` $w attr-dict `:` type($x) `,` type($w) `->` type($result)";
}

def Kiln_Conv2DGradInputOp : Kiln_Op<"conv2d_grad_input", [Pure, VJP, Batch]> {
  let summary = "Transpose of conv2d with respect to its input (deconvolution)";
  let description = [{
    Given gy (N, O, Ho, Wo) and the filter (O, C/groups, kh, kw), returns the
    input gradient (N, C, H, W) of the result type, for the conv2d with the
    same stride, pad, dilate and groups.
  }];
  let arguments = (ins Kiln_FloatTensor:$gy, Kiln_FloatTensor:$w,
                   DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$pad,
                   Kiln_ConvDilateAttr:$dilate, Kiln_ConvGroupsAttr:$groups);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$gy `,` $w attr-dict `:` type($gy) `,` type($w) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_Conv2DGradFilterOp : Kiln_Op<"conv2d_grad_filter", [Pure, VJP, Batch]> {
  let summary = "Gradient of conv2d with respect to its filter";
  let description = [{
    Given x (N, C, H, W) and gy (N, O, Ho, Wo), returns the filter gradient
    (O, C/groups, kh, kw) of the result type, for the conv2d with the same
    stride, pad, dilate and groups.
  }];
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$gy,
                   DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$pad,
                   Kiln_ConvDilateAttr:$dilate, Kiln_ConvGroupsAttr:$groups);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$x `,` $gy attr-dict `:` type($x) `,` type($gy) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_Pool2DOp : Kiln_Op<"pool2d", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "2-D max or average pooling over NCHW";
  let description = [{
    `kind` is "max" (padding acts as -inf) or "avg" (zero padding, divisor
    kh*kw).
  }];
  let arguments = (ins Kiln_FloatTensor:$x, StrAttr:$kind, DenseI64ArrayAttr:$ksize,
                   DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$pad);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$kind `,` $x attr-dict `:` type($x) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_Pool2DGradOp : Kiln_Op<"pool2d_grad", [Pure, VJP, Batch]> {
  let summary = "Gradient of pool2d with respect to its input x";
  let arguments = (ins Kiln_FloatTensor:$x, Kiln_FloatTensor:$gy, StrAttr:$kind,
                   DenseI64ArrayAttr:$ksize, DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$pad);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$kind `,` $x `,` $gy attr-dict `:` type($x) `,` type($gy) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_GatherOp : Kiln_Op<"gather", [Pure, VJP, Batch,
    InferTypeOpAdaptor]> {
  let summary = "Rows of a table: result[i..., :] = table[ids[i...], :]";
  let description = [{
    An id outside [0, rows) reads the nearest row (it is clamped), on every
    backend, so no memory outside the table is read. Ids from users are
    checked by a `kiln.check_range` in front, which raises the error.
  }];
  let arguments = (ins Kiln_Tensor:$table, Kiln_IntTensor:$ids);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$table `,` $ids attr-dict `:` type($table) `,` type($ids) `->` type($result)";
}

def Kiln_ScatterAddOp : Kiln_Op<"scatter_add", [Pure, VJP, Batch]> {
  let summary = "Transpose of gather: result = base (or zeros) with result[ids[i...], :] += updates[i..., :]";
  let description = [{
    Without `base` the result starts from zeros; with `base` (the result's
    type) it starts from `base`, so a chain of embedding-gradient
    accumulations (add(A, scatter_add(ids, u)), see Autodiff.cpp) updates one
    buffer in place instead of making a full-size zero table per step.
  }];
  let arguments = (ins Kiln_IntTensor:$ids, Kiln_Tensor:$updates, Optional<Kiln_Tensor>:$base);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$ids `,` $updates (`base` `(` $base^ `)`)? attr-dict `:` type($ids) `,` type($updates) (`,` type($base)^)? `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Run-time checks
//===----------------------------------------------------------------------===//

def Kiln_CheckRangeOp : Kiln_Op<"check_range", [Pure, Batch, InferTypeOpAdaptor]> {
  let summary = "Passes integer ids through and reports the first one outside [0, limit)";
  let description = [{
    How a run-time error (an id or a label out of range) leaves a kernel, on
    every backend. `result` is `x` unchanged; `status` is [the flat index (C
    order) of the first element of `x` outside [0, `limit`) and not equal to
    `ignore`, that element], or [-1, 0] when there is none.

    Compiled code cannot throw: the frontend makes every status a result of
    the graph's function (an out-param of the CPU kernel) and, after the
    call, turns a status other than [-1, 0] into a kiln::Error naming
    `function` (the user's function, e.g. "softmax_cross_entropy"),
    `operand` (its argument, e.g. "t"), the value and the valid range. The
    users of `result` (gather clamps, a one-hot compare matches nothing)
    read no memory out of bounds meanwhile.

    ```mlir
    %t2, %status = kiln.check_range %t, limit = 10, ignore = -1
        {function = "softmax_cross_entropy", operand = "t"} : tensor<4xi32>
    ```
  }];
  let arguments = (ins Kiln_IntTensor:$x, I64Attr:$limit, OptionalAttr<I64Attr>:$ignore,
                   StrAttr:$function, StrAttr:$operand);
  let results = (outs Kiln_IntTensor:$result, TensorOf<[I64]>:$status);
  let assemblyFormat = "$x `,` `limit` `=` $limit (`,` `ignore` `=` $ignore^)? attr-dict `:` type($x)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Autodiff request
//===----------------------------------------------------------------------===//

def Kiln_GradOp : Kiln_Op<"grad", [Pure, Batch, AllTypesMatch<["y", "seed"]>, InferTypeOpAdaptor]> {
  let summary = "Gradient of <y, seed> with respect to x (replaced by -kiln-autodiff)";
  let description = [{
    ```mlir
    %gw = kiln.grad %loss, %one, %w : tensor<f32>, tensor<3x2xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$y, Kiln_FloatTensor:$seed, Kiln_FloatTensor:$x);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$y `,` $seed `,` $x attr-dict `:` type($y) `,` type($x)";
  let hasVerifier = 1;
}

def Kiln_StopGradientOp : Kiln_Op<"stop_gradient", [Pure, Batch, SameOperandsAndResultType]> {
  let summary = "The identity, through which no gradient flows (removed by -kiln-autodiff)";
  let description = [{
    Marks a value computed with backprop disabled (Chainer's
    `no_backprop_mode`): `-kiln-autodiff` sends no cotangent through it to
    its operand, then replaces it by its operand, so later passes and every
    backend never see it.
    ```mlir
    %f = kiln.stop_gradient %features : tensor<4x8xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$x);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$x attr-dict `:` type($x)";
}

//===----------------------------------------------------------------------===//
// Fusion regions (built by -kiln-fuse, inlined back by -kiln-unfuse)
//===----------------------------------------------------------------------===//

def Kiln_FusionOp : Kiln_Op<"fusion", [IsolatedFromAbove, RecursiveMemoryEffects,
    SingleBlock]> {
  let summary = "A group of ops compiled as one kernel";
  let description = [{
    The region computes the yielded values from its block arguments, which
    are bound to the operands (the values the group reads from outside).
    Results are the group's values used outside it. `kind` names the
    kernel's shape: "elementwise" (elementwise/broadcast/reshape chains),
    "reduction" (reductions of one signature with their elementwise
    producers and consumers) or "contraction" (one matmul/conv2d with an
    elementwise epilogue). Small constants are cloned into the region. The
    op is pure when every op inside is. It has no VJP: autodiff runs first.

    ```mlir
    %r = kiln.fusion "contraction" ins(%x, %w, %b : tensor<2x3xf32>, tensor<3x4xf32>, tensor<4xf32>)
        -> (tensor<2x4xf32>) {
    ^bb0(%a: tensor<2x3xf32>, %c: tensor<3x4xf32>, %d: tensor<4xf32>):
      %y = kiln.matmul %a, %c : tensor<2x3xf32>, tensor<3x4xf32> -> tensor<2x4xf32>
      %e = kiln.broadcast_to %d : tensor<4xf32> -> tensor<2x4xf32>
      %s = kiln.add %y, %e : tensor<2x4xf32>
      %t = kiln.relu %s : tensor<2x4xf32>
      kiln.yield %t : tensor<2x4xf32>
    }
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$inputs, StrAttr:$kind);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$region);
  let assemblyFormat = [{
    $kind (`ins` `(` $inputs^ `:` type($inputs) `)`)? `->` `(` type($results) `)`
    attr-dict-with-keyword $region
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    /// How -kiln-fuse and the backends treat an op with respect to fusion.
    /// The one place where ops are classified (by trait, then by op family).
    enum class Role {
      Opaque,       // never fused (transpose, conv gradients, gather, ...)
      Constant,     // ConstantLike: cloned into the groups that use it
      Layout,       // broadcast_to, reshape: index remapping, no arithmetic
      Elementwise,  // ops with the Elementwise trait
      Reduction,    // reduce_sum, reduce_max
      Contraction,  // matmul, conv2d
    };
    static Role roleOf(::mlir::Operation* op);
    /// The kind names accepted by `kind`.
    static constexpr ::llvm::StringLiteral kElementwise = "elementwise";
    static constexpr ::llvm::StringLiteral kReduction = "reduction";
    static constexpr ::llvm::StringLiteral kContraction = "contraction";
    YieldOp getYield();
  }];
}

def Kiln_YieldOp : Kiln_Op<"yield", [Pure, Terminator, ParentOneOf<["FusionOp", "CustomOp"]>]> {
  let summary = "Terminates a kiln.fusion or kiln.custom region with the values it returns";
  let arguments = (ins Variadic<AnyType>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

//===----------------------------------------------------------------------===//
// User-defined functions (kiln::FunctionNode; inlined by -kiln-inline-custom)
//===----------------------------------------------------------------------===//

def Kiln_CustomOp : Kiln_Op<"custom", [IsolatedFromAbove, RecursiveMemoryEffects,
    SingleBlock, VJP, BatchAttrs]> {
  let summary = "A user-defined function: a forward region and its own backward region";
  let description = [{
    Recorded by `kiln::FunctionNode` (Chainer's FunctionNode): one op whose
    value is computed by the `forward` region and whose vector-Jacobian
    product is the `backward` region, written by the user (a straight-through
    estimator, a gradient-clipping identity, ...).

    - `forward`: block arguments are bound to the inputs; yields the result.
    - `backward`: block arguments are the inputs, the result and the result's
      cotangent; yields one cotangent per input, of the input's type (zeros
      where the user gives none; integer inputs get no gradient).

    `-kiln-autodiff` clones the backward region in place of the VJP; then
    `-kiln-inline-custom` replaces the op by its forward region's ops, so no
    backend sees it. The op is pure when every op inside is.

    ```mlir
    %y = kiln.custom "ste" ins(%x : tensor<3xf32>) -> tensor<3xf32> forward {
    ^bb0(%a: tensor<3xf32>):
      %s = kiln.sign %a : tensor<3xf32>
      kiln.yield %s : tensor<3xf32>
    } backward {
    ^bb0(%a: tensor<3xf32>, %r: tensor<3xf32>, %g: tensor<3xf32>):
      kiln.yield %g : tensor<3xf32>
    }
    ```
  }];
  let arguments = (ins StrAttr:$name, Variadic<Kiln_Tensor>:$inputs);
  let results = (outs Kiln_Tensor:$result);
  let regions = (region SizedRegion<1>:$forward, SizedRegion<1>:$backward);
  let assemblyFormat = [{
    $name (`ins` `(` $inputs^ `:` type($inputs) `)`)? `->` type($result)
    attr-dict-with-keyword `forward` $forward `backward` $backward
  }];
  let hasRegionVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::Block* getForwardBody() { return &getForward().front(); }
    ::mlir::Block* getBackwardBody() { return &getBackward().front(); }
    YieldOp getForwardYield();
    YieldOp getBackwardYield();
  }];
}

#endif // KILN_OPS_TD
