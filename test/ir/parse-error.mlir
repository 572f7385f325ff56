// RUN: not kiln-opt %s 2>&1 | FileCheck %s
// Malformed IR: a diagnostic with file:line:col and a non-zero exit, no crash.

// CHECK: parse-error.mlir:[[@LINE+2]]:{{[0-9]+}}: error:
func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {
  %0 = kiln.exp %x tensor<2xf32>
  return %0 : tensor<2xf32>
}
