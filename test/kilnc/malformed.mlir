// Malformed input: MLIR's diagnostic at file:line:col, exit code 1.
// RUN: not kilnc %s --name m -o %t.o 2>&1 | FileCheck %s
// CHECK: malformed.mlir:[[@LINE+3]]:{{[0-9]+}}: error:
module {
  func.func @forward(%x: tensor<?x3xf32> {kiln.name = "x0", kiln.role = "input"}) -> tensor<?x3xf32> {
    %0 = kiln.relu %x : tensor<?x3xf32> tensor<?x3xf32>
    return %0 : tensor<?x3xf32>
  }
}
