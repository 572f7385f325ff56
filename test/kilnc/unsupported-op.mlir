// An op kilnc cannot compile (here a kiln.custom left unexpanded; exports inline them):
// the error names the op and its location in the .mlir, exit code 1.
// RUN: not kilnc %s --name m -o %t.o 2>&1 | FileCheck %s
// The same with --target=cuda, from kiln's CUDA emitter:
// RUN: not kilnc %s --name m --target=cuda -o %t.o 2>&1 | FileCheck %s --check-prefix=CUDA
// CUDA: kilnc: error: kiln-emit-cuda: kiln.custom is not implemented in the CUDA emitter (at loc("{{.*}}unsupported-op.mlir":{{[0-9]+}}:10))
// CHECK: unsupported-op.mlir:[[@LINE+4]]:10: error: failed to legalize operation 'kiln.custom'
module {
  func.func @forward(%x: tensor<?x3xf32> {kiln.name = "x0", kiln.role = "input"})
      -> (tensor<?x3xf32> {kiln.name = "y0", kiln.role = "output"}) {
    %0 = "kiln.custom"(%x) ({
    ^bb0(%a: tensor<?x3xf32>):
      %r = kiln.relu %a : tensor<?x3xf32>
      kiln.yield %r : tensor<?x3xf32>
    }, {
    ^bb0(%a: tensor<?x3xf32>, %y: tensor<?x3xf32>, %g: tensor<?x3xf32>):
      kiln.yield %g : tensor<?x3xf32>
    }) {name = "f"} : (tensor<?x3xf32>) -> tensor<?x3xf32>
    return %0 : tensor<?x3xf32>
  }
}
