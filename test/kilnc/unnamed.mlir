// A function that is not an export (no kiln.name on its arguments), or not @forward / @step:
// an error at its location.
// RUN: not kilnc %s --name m -o %t.o 2>&1 | FileCheck %s
// CHECK: unnamed.mlir:[[@LINE+2]]:3: error: argument 0 of @forward has no kiln.name
module {
  func.func @forward(%x: tensor<?x3xf32>) -> tensor<?x3xf32> {
    %0 = kiln.relu %x : tensor<?x3xf32>
    return %0 : tensor<?x3xf32>
  }
}
