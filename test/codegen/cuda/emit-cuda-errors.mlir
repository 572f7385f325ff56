// RUN: not kiln-opt %s -kiln-emit-cuda -o /dev/null 2>&1 | FileCheck %s
//
// An op the emitter does not implement is an error naming the op (here a gradient
// request, which -kiln-autodiff replaces before any backend).
// CHECK: error: kiln-emit-cuda: kiln.grad is not implemented in the CUDA emitter (at {{.*}}emit-cuda-errors.mlir":7
func.func @grad(%y: tensor<f32>, %one: tensor<f32>, %w: tensor<3xf32>) -> tensor<3xf32> {
  %0 = kiln.grad %y, %one, %w : tensor<f32>, tensor<3xf32>
  return %0 : tensor<3xf32>
}
