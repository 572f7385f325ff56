// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// RUN: kiln-opt %s -kiln-lower-to-linalg="batch-checks=false" | FileCheck %s --check-prefix=NOCHECK
// Dynamic (`?`) dimensions are the batch size: the pass reads it once at the
// function's entry from the first argument with a dynamic dimension, and sizes
// every new tensor with it.

// CHECK-LABEL: func.func @linear_relu
// CHECK-SAME: (%[[X:.*]]: tensor<?x4xf32>, %[[W:.*]]: tensor<3x4xf32>, %[[B:.*]]: tensor<3xf32>)
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT: %[[N:.*]] = tensor.dim %[[X]], %[[C0]] : tensor<?x4xf32>
// CHECK-NOT: kiln.batch_size
// CHECK: tensor.empty(%[[N]]) : tensor<?x3xf32>
// CHECK: linalg.matmul {{.*}} ins(%[[X]], %[[W]] : tensor<?x4xf32>, tensor<3x4xf32>) outs(%{{.*}} : tensor<?x3xf32>)
// CHECK: tensor.empty(%[[N]]) : tensor<?x3xf32>
// CHECK: linalg.generic {{.*}} ins(%[[B]] : tensor<3xf32>) outs(%{{.*}} : tensor<?x3xf32>)
func.func @linear_relu(%x: tensor<?x4xf32>, %w: tensor<3x4xf32>, %b: tensor<3xf32>) -> tensor<?x3xf32> {
  %0 = kiln.matmul %x, %w {transpose_b} : tensor<?x4xf32>, tensor<3x4xf32> -> tensor<?x3xf32>
  %1 = kiln.broadcast_to %b : tensor<3xf32> -> tensor<?x3xf32>
  %2 = kiln.add %0, %1 : tensor<?x3xf32>
  %3 = kiln.relu %2 : tensor<?x3xf32>
  return %3 : tensor<?x3xf32>
}

// The batch size comes from the first argument that has a dynamic dimension.
// CHECK-LABEL: func.func @from_second_argument
// CHECK-SAME: (%{{.*}}: tensor<5xf32>, %[[T:.*]]: tensor<2x?xi32>)
// CHECK: %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT: %[[N:.*]] = tensor.dim %[[T]], %[[C1]] : tensor<2x?xi32>
// CHECK: tensor.empty(%[[N]]) : tensor<?x5xf32>
func.func @from_second_argument(%b: tensor<5xf32>, %t: tensor<2x?xi32>) -> tensor<?x5xf32> {
  %0 = kiln.broadcast_to %b : tensor<5xf32> -> tensor<?x5xf32>
  return %0 : tensor<?x5xf32>
}

// dim_size multiplies constants and tensor.dim of its operand.
// CHECK-LABEL: func.func @mean_over_batch
// CHECK: %[[C6:.*]] = arith.constant 6 : index
// CHECK: %[[D:.*]] = tensor.dim %{{.*}}, %{{.*}} : tensor<?x2x3xf32>
// CHECK: %[[P:.*]] = arith.muli %[[C6]], %[[D]] : index
// CHECK: %[[I:.*]] = arith.index_cast %[[P]] : index to i64
// CHECK: %[[F:.*]] = arith.sitofp %[[I]] : i64 to f32
// CHECK: tensor.from_elements %[[F]] : tensor<f32>
func.func @mean_over_batch(%x: tensor<?x2x3xf32>) -> tensor<f32> {
  %s = kiln.reduce_sum %x, [0, 1, 2] : tensor<?x2x3xf32> -> tensor<f32>
  %n = kiln.dim_size %x, [0, 1, 2] : tensor<?x2x3xf32> -> tensor<f32>
  %m = kiln.div %s, %n : tensor<f32>
  return %m : tensor<f32>
}

// Static dimensions only: a constant count.
// CHECK-LABEL: func.func @static_count
// CHECK: %[[C12:.*]] = arith.constant 12 : index
// CHECK-NOT: tensor.dim
// CHECK: arith.index_cast %[[C12]] : index to i64
func.func @static_count(%x: tensor<4x3xf32>) -> tensor<i32> {
  %n = kiln.dim_size %x, [0, 1] : tensor<4x3xf32> -> tensor<i32>
  return %n : tensor<i32>
}

// Keeping dims, flattening the static ones and slicing a static dimension.
// CHECK-LABEL: func.func @shapes
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0], [1, 2, 3]] : tensor<?x1x2x3xf32> into tensor<?x6xf32>
// CHECK: tensor.extract_slice %{{.*}}[0, 1] [%{{.*}}, 4] [1, 1] : tensor<?x6xf32> to tensor<?x4xf32>
// CHECK: linalg.reduce ins(%{{.*}} : tensor<?x4xf32>) outs(%{{.*}} : tensor<?xf32>) dimensions = [1]
// CHECK: tensor.expand_shape %{{.*}} {{\[}}[0, 1]] output_shape [%{{.*}}, 1] : tensor<?xf32> into tensor<?x1xf32>
func.func @shapes(%x: tensor<?x1x2x3xf32>) -> tensor<?x1xf32> {
  %0 = kiln.reshape %x : tensor<?x1x2x3xf32> -> tensor<?x6xf32>
  %1 = kiln.slice %0 {start = array<i64: 0, 1>, limit = array<i64: -9223372036854775808, 5>, step = array<i64: 1, 1>} : tensor<?x6xf32> -> tensor<?x4xf32>
  %2 = kiln.reduce_sum %1, [1] keepdims : tensor<?x4xf32> -> tensor<?x1xf32>
  return %2 : tensor<?x1xf32>
}

// A convolution's batch dimension may be dynamic: im2col has n images, the filter is
// broadcast over them, and the per-image GEMMs' batch is sized from the operands.
// CHECK-LABEL: func.func @conv
// CHECK: %[[N:.*]] = tensor.dim %arg0, %c0
// CHECK: %[[E:.*]] = tensor.empty(%[[N]]) : tensor<?x2x3x3x5x5xf32>
// CHECK: %[[WIN:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<?x2x7x7xf32>) outs(%[[E]] : tensor<?x2x3x3x5x5xf32>)
// CHECK: %[[COLS:.*]] = tensor.collapse_shape %[[WIN]] {{.*}} into tensor<?x18x5x5xf32>
// CHECK: %[[WS:.*]] = linalg.generic {{.*}} ins(%{{.*}} : tensor<3x18xf32>) outs(%{{.*}} : tensor<?x3x18xf32>)
// CHECK: %[[IMAGES:.*]] = tensor.collapse_shape %[[COLS]] {{.*}} into tensor<?x18x25xf32>
// CHECK: %[[B:.*]] = tensor.dim %[[WS]], %{{.*}} : tensor<?x3x18xf32>
// CHECK: %[[O:.*]] = tensor.empty(%[[B]]) : tensor<?x3x25xf32>
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}}) outs(%[[O]] : tensor<?x3x25xf32>)
// CHECK: linalg.batch_matmul ins(%[[WS]], %[[IMAGES]] : tensor<?x3x18xf32>, tensor<?x18x25xf32>) outs(%[[Z]] : tensor<?x3x25xf32>)
func.func @conv(%x: tensor<?x2x5x5xf32>, %w: tensor<3x2x3x3xf32>) -> tensor<?x3x5x5xf32> {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 1, 1>, pad = array<i64: 1, 1>} : tensor<?x2x5x5xf32>, tensor<3x2x3x3xf32> -> tensor<?x3x5x5xf32>
  return %0 : tensor<?x3x5x5xf32>
}

// Every other dynamic argument dimension is checked to be the batch size (not with
// batch-checks=false, for callers that pass one size for all of them, as kilnc's C
// entry points do).
// NOCHECK-LABEL: func.func @two_dynamic_arguments
// NOCHECK-NOT:     cf.assert
// NOCHECK:         linalg.generic
// CHECK-LABEL: func.func @two_dynamic_arguments
// CHECK:         %[[N:.*]] = tensor.dim %arg0, %{{.*}} : tensor<?x3xf32>
// CHECK:         %[[M:.*]] = tensor.dim %arg1, %{{.*}} : tensor<?x3xf32>
// CHECK:         %[[SAME:.*]] = arith.cmpi eq, %[[M]], %[[N]] : index
// CHECK:         cf.assert %[[SAME]], "kiln: every dynamic dimension must be the batch size (argument 1, dimension 0)"
// CHECK:         linalg.generic
func.func @two_dynamic_arguments(%x: tensor<?x3xf32>, %y: tensor<?x3xf32>) -> tensor<?x3xf32> {
  %0 = kiln.add %x, %y : tensor<?x3xf32>
  return %0 : tensor<?x3xf32>
}
