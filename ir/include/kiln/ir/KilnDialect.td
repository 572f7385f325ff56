// The kiln dialect: tensor-level ops traced from kiln's define-by-run frontend.
#ifndef KILN_DIALECT_TD
#define KILN_DIALECT_TD

include "mlir/IR/OpBase.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let summary = "Tensor ops of kiln's define-by-run deep-learning frontend";
  let description = [{
    Ops on ranked tensors of f32, f64, i32, i64 and i1. Elementwise binary ops
    take operands of one shape; broadcasting is explicit (`kiln.broadcast_to`).
    Every differentiable op implements `VJPOpInterface`, used by `-kiln-autodiff`.

    Dynamic dimensions (`?`) stand for one size per function, the symbolic
    batch size: the frontend compiles a graph with every batch dimension `?`
    so other batch sizes reuse it. Shape rules treat two `?` as equal; a
    dynamic dimension can be sliced only whole and not padded; run-time
    counts over it come from `kiln.dim_size`.
  }];
  let cppNamespace = "::kiln::ir";
}

def Kiln_Element : AnyTypeOf<[F32, F64, I32, I64, I1]>;
def Kiln_Tensor : RankedTensorOf<[F32, F64, I32, I64, I1]>;
def Kiln_FloatTensor : RankedTensorOf<[F32, F64]>;
def Kiln_IntTensor : RankedTensorOf<[I32, I64]>;

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

#endif // KILN_DIALECT_TD
