// RUN: kiln-opt %s -kiln-clone-shared-fills | FileCheck %s
// One zero fill (after CSE) as the init of two matmuls and an add: each
// consumer that accumulates into it gets its own fill, so bufferization fills
// each consumer's buffer in place instead of copying a shared one. (The add
// also reads the fill as an input: that use keeps the original.)

// CHECK-LABEL: func.func @shared
// CHECK:         %[[F0:.*]] = linalg.fill
// CHECK:         %[[F1:.*]] = linalg.fill
// CHECK-NEXT:    linalg.matmul {{.*}} outs(%[[F1]] : tensor<4x5xf32>)
// CHECK:         %[[F2:.*]] = linalg.fill
// CHECK-NEXT:    linalg.matmul {{.*}} outs(%[[F2]] : tensor<4x5xf32>)
// CHECK-NEXT:    linalg.add ins(%[[F0]], %{{.*}} : tensor<4x5xf32>, tensor<4x5xf32>) outs(%[[F0]] : tensor<4x5xf32>)
func.func @shared(%a: tensor<4x3xf32>, %b: tensor<3x5xf32>, %c: tensor<3x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x5xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x5xf32>) -> tensor<4x5xf32>
  %0 = linalg.matmul ins(%a, %b : tensor<4x3xf32>, tensor<3x5xf32>) outs(%f : tensor<4x5xf32>) -> tensor<4x5xf32>
  %1 = linalg.matmul ins(%a, %c : tensor<4x3xf32>, tensor<3x5xf32>) outs(%f : tensor<4x5xf32>) -> tensor<4x5xf32>
  %2 = linalg.add ins(%f, %0 : tensor<4x5xf32>, tensor<4x5xf32>) outs(%f : tensor<4x5xf32>) -> tensor<4x5xf32>
  return %0, %1, %2 : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
}

// One tensor.empty (after CSE) as the init of two kernels and of a fill: each
// init use after the first gets its own empty, so no two kernels share a
// destination (one-shot bufferization's analysis then stays linear).

// CHECK-LABEL: func.func @shared_empty
// CHECK:         %[[E0:.*]] = tensor.empty() : tensor<4x5xf32>
// CHECK-NEXT:    %[[E1:.*]] = tensor.empty() : tensor<4x5xf32>
// CHECK-NEXT:    linalg.add {{.*}} outs(%[[E1]] : tensor<4x5xf32>)
// CHECK-NEXT:    %[[E2:.*]] = tensor.empty() : tensor<4x5xf32>
// CHECK-NEXT:    linalg.fill {{.*}} outs(%[[E2]] : tensor<4x5xf32>)
// CHECK-NEXT:    linalg.exp {{.*}} outs(%[[E0]] : tensor<4x5xf32>)
func.func @shared_empty(%a: tensor<4x5xf32>) -> (tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x5xf32>
  %0 = linalg.add ins(%a, %a : tensor<4x5xf32>, tensor<4x5xf32>) outs(%e : tensor<4x5xf32>) -> tensor<4x5xf32>
  %1 = linalg.fill ins(%zero : f32) outs(%e : tensor<4x5xf32>) -> tensor<4x5xf32>
  %2 = linalg.exp ins(%a : tensor<4x5xf32>) outs(%e : tensor<4x5xf32>) -> tensor<4x5xf32>
  return %0, %1, %2 : tensor<4x5xf32>, tensor<4x5xf32>, tensor<4x5xf32>
}
