// Ops of the kiln dialect that hand buffers to a communicator (kiln::distributed). Their own
// file, so that the op list of KilnOps.td (and everything built from it) stays as it is.
#ifndef KILN_COLLECTIVE_OPS_TD
#define KILN_COLLECTIVE_OPS_TD

include "kiln/ir/KilnDialect.td"
include "kiln/ir/KilnBatchInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Kiln_CollectiveStartOp : Kiln_Op<"collective_start", [
    MemoryEffects<[MemWrite]>, AllTypesMatch<["x", "result"]>,
    DeclareOpInterfaceMethods<Kiln_BatchDimOpInterface>]> {
  let summary = "Starts the communicator's reduction of a gradient bucket inside the graph";
  let description = [{
    `result` is `x` (a flat f32/f64 gradient bucket); as a side effect the
    backend that runs the graph hands `result`'s buffer, as soon as it is
    written, to the communicator that the caller registered for this run
    (kiln::distributed's gradient allreduce), which reduces it in place
    while the graph computes the rest of the backward. `bucket` is the
    bucket's index in that allreduce.

    Every use of `result` must be the function's return: the graph itself
    never reads the buffer again, since the communicator writes it
    concurrently. The cpu backend places the op right after `x` is computed
    (-kiln-start-collectives) and calls kiln_collective_start_<f32|f64>
    (kiln/collective_abi.h) there; the interpreter evaluates it as the
    identity, so the caller starts every bucket the graph did not once the
    graph has returned.

    ```mlir
    %b = kiln.collective_start %flat, bucket = 0 : tensor<4096xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32, F64]>:$x, I64Attr:$bucket);
  let results = (outs RankedTensorOf<[F32, F64]>:$result);
  let assemblyFormat = "$x `,` `bucket` `=` $bucket attr-dict `:` type($x)";
  let hasVerifier = 1;
}

#endif // KILN_COLLECTIVE_OPS_TD
