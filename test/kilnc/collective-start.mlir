// A graph that starts a gradient bucket's collective (kiln.collective_start, recorded by
// kiln::distributed's allreduce_grad) has no communicator in a --target=cuda object: a clear
// error naming the function and the op, exit code 1.
// RUN: not kilnc %s --name m --target=cuda -o %t.o 2>&1 | FileCheck %s
// CHECK: kilnc: error: --target=cuda: @forward: 1:op:collective_start ({{.*}}collective-start.mlir:{{[0-9]+}}): kiln.collective_start hands its bucket to kiln::distributed's communicator, which a kilnc object has none of
module {
  func.func @forward(%x: tensor<4xf32> {kiln.name = "x0", kiln.role = "input"})
      -> (tensor<4xf32> {kiln.name = "y0", kiln.role = "output"}) {
    %e = kiln.exp %x : tensor<4xf32>
    %b = kiln.collective_start %e, bucket = 0 : tensor<4xf32>
    return %b : tensor<4xf32>
  }
}
