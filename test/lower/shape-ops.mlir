// RUN: kiln-opt %s -kiln-lower-to-linalg | FileCheck %s
// Shape and data-movement ops become linalg.generic/transpose and tensor slices, pads and reshapes.

// Stretched size-1 dims read index 0; missing leading dims are dropped.
// CHECK-DAG: #[[$BCAST:.*]] = affine_map<(d0, d1, d2) -> (d1, 0)>
// CHECK-DAG: #[[$REV:.*]] = affine_map<(d0, d1) -> (d0, -d1 + 2)>

// CHECK-LABEL: func.func @broadcast
// CHECK: linalg.generic {indexing_maps = [#[[$BCAST]], #{{.*}}], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME: ins(%{{.*}} : tensor<3x1xf32>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: linalg.yield %[[IN]] : f32
func.func @broadcast(%x: tensor<3x1xf32>) -> tensor<2x3x4xf32> {
  %0 = kiln.broadcast_to %x : tensor<3x1xf32> -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// CHECK-LABEL: func.func @transpose
// CHECK: linalg.transpose ins(%{{.*}} : tensor<2x3x4xf32>) outs(%{{.*}} : tensor<4x2x3xf32>) permutation = [2, 0, 1]
func.func @transpose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = kiln.transpose %x, [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
  return %0 : tensor<4x2x3xf32>
}

// CHECK-LABEL: func.func @strided_slice
// CHECK: tensor.extract_slice %{{.*}}[1, 0] [2, 3] [2, 3] : tensor<5x7xf32> to tensor<2x3xf32>
func.func @strided_slice(%x: tensor<5x7xf32>) -> tensor<2x3xf32> {
  %0 = kiln.slice %x {start = array<i64: 1, 0>, limit = array<i64: 5, 7>, step = array<i64: 2, 3>} : tensor<5x7xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @edge_pad
// CHECK: %[[V:.*]] = arith.constant -1.000000e+00 : f32
// CHECK: tensor.pad %{{.*}} low[1, 0] high[2, 1]
// CHECK: tensor.yield %[[V]] : f32
// CHECK: tensor<2x3xf32> to tensor<5x4xf32>
func.func @edge_pad(%x: tensor<2x3xf32>) -> tensor<5x4xf32> {
  %0 = kiln.pad %x {low = array<i64: 1, 0>, high = array<i64: 2, 1>, interior = array<i64: 0, 0>, value = -1.0 : f64} : tensor<2x3xf32> -> tensor<5x4xf32>
  return %0 : tensor<5x4xf32>
}

// Interior padding: fill, then insert with stride interior + 1.
// CHECK-LABEL: func.func @interior_pad
// CHECK: %[[V:.*]] = arith.constant 5.000000e-01 : f32
// CHECK: %[[F:.*]] = linalg.fill ins(%[[V]] : f32) outs(%{{.*}} : tensor<3x7xf32>)
// CHECK: tensor.insert_slice %{{.*}} into %[[F]][1, 0] [2, 3] [1, 2] : tensor<2x3xf32> into tensor<3x7xf32>
func.func @interior_pad(%x: tensor<2x3xf32>) -> tensor<3x7xf32> {
  %0 = kiln.pad %x {low = array<i64: 1, 0>, high = array<i64: 0, 2>, interior = array<i64: 0, 1>, value = 0.5 : f64} : tensor<2x3xf32> -> tensor<3x7xf32>
  return %0 : tensor<3x7xf32>
}

// CHECK-LABEL: func.func @reverse
// CHECK: linalg.generic {indexing_maps = [#[[$REV]], #{{.*}}]
func.func @reverse(%x: tensor<2x3xi32>) -> tensor<2x3xi32> {
  %0 = kiln.reverse %x, [1] : tensor<2x3xi32>
  return %0 : tensor<2x3xi32>
}

// CHECK-LABEL: func.func @concat
// CHECK: %[[E:.*]] = tensor.empty() : tensor<2x7xf32>
// CHECK: %[[A:.*]] = tensor.insert_slice %{{.*}} into %[[E]][0, 0] [2, 3] [1, 1]
// CHECK: tensor.insert_slice %{{.*}} into %[[A]][0, 3] [2, 4] [1, 1]
func.func @concat(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<2x7xf32> {
  %0 = kiln.concat %a, %b {axis = 1 : i64} : tensor<2x3xf32>, tensor<2x4xf32> -> tensor<2x7xf32>
  return %0 : tensor<2x7xf32>
}

// CHECK-LABEL: func.func @reshape_collapse
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
func.func @reshape_collapse(%x: tensor<2x3x4xf32>) -> tensor<6x4xf32> {
  %0 = kiln.reshape %x : tensor<2x3x4xf32> -> tensor<6x4xf32>
  return %0 : tensor<6x4xf32>
}

// CHECK-LABEL: func.func @reshape_expand
// CHECK: tensor.expand_shape %{{.*}} {{\[}}[0, 1]] output_shape [3, 2] : tensor<6xf32> into tensor<3x2xf32>
func.func @reshape_expand(%x: tensor<6xf32>) -> tensor<3x2xf32> {
  %0 = kiln.reshape %x : tensor<6xf32> -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}

// No single collapse or expand: through the flat vector.
// CHECK-LABEL: func.func @reshape_general
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0, 1]] : tensor<2x3xf32> into tensor<6xf32>
// CHECK: tensor.expand_shape %{{.*}} {{\[}}[0, 1]] output_shape [3, 2] : tensor<6xf32> into tensor<3x2xf32>
func.func @reshape_general(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %0 = kiln.reshape %x : tensor<2x3xf32> -> tensor<3x2xf32>
  return %0 : tensor<3x2xf32>
}
