// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=false" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-lower-to-llvm="parallel=true min-parallel-work=1" | FileCheck %s --check-prefix=OMP

// Two fused elementwise ops; the result becomes a caller-provided out-param
// (no allocation, no copy), and a C interface taking descriptor pointers.
// Two rank-2 descriptors (allocated, aligned, offset, 2 sizes, 2 strides):
// CHECK-LABEL: llvm.func @graph
// CHECK-SAME:    (%{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64,
// CHECK-SAME:    %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: !llvm.ptr, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64)
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK-NOT:     llvm.call @malloc
// CHECK:         llvm.fadd
// CHECK-NEXT:    llvm.intr.exp
// CHECK-NOT:     llvm.call @malloc
// CHECK:         llvm.return
// CHECK-LABEL: llvm.func @_mlir_ciface_graph(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr)
// OMP-LABEL:   llvm.func @graph
// OMP:           omp.parallel
// OMP:           omp.wsloop
#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @graph(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %e = tensor.empty() : tensor<4x8xf32>
  %0 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %a : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %1 = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel"]}
      ins(%0 : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = math.exp %a : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}

// -----

// A temporary between a matmul and a reduction is allocated and freed; erf
// becomes a libm call, and a strided copy (insert_slice) becomes loops, not
// a call to MLIR's memrefCopy.
// CHECK-LABEL: llvm.func @graph
// CHECK:         llvm.call @malloc
// CHECK:         llvm.call @erff
// CHECK:         llvm.call @free
// CHECK-NOT:     memrefCopy
// CHECK-LABEL: llvm.func @_mlir_ciface_graph
func.func @graph(%a: tensor<4x3xf32>, %b: tensor<3x5xf32>) -> (tensor<4xf32>, tensor<6x5xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x5xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<4x5xf32>) -> tensor<4x5xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<4x3xf32>, tensor<3x5xf32>) outs(%f : tensor<4x5xf32>) -> tensor<4x5xf32>
  %e1 = tensor.empty() : tensor<4x5xf32>
  %erf = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                         iterator_types = ["parallel", "parallel"]}
      ins(%mm : tensor<4x5xf32>) outs(%e1 : tensor<4x5xf32>) {
  ^bb0(%v: f32, %o: f32):
    %r = math.erf %v : f32
    linalg.yield %r : f32
  } -> tensor<4x5xf32>
  %e2 = tensor.empty() : tensor<4xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<4xf32>) -> tensor<4xf32>
  %sum = linalg.reduce ins(%erf : tensor<4x5xf32>) outs(%f2 : tensor<4xf32>) dimensions = [1]
    (%in: f32, %acc: f32) {
      %s = arith.addf %in, %acc : f32
      linalg.yield %s : f32
    }
  %e3 = tensor.empty() : tensor<6x5xf32>
  %f3 = linalg.fill ins(%zero : f32) outs(%e3 : tensor<6x5xf32>) -> tensor<6x5xf32>
  %ins = tensor.insert_slice %mm into %f3[1, 0] [4, 5] [1, 1] : tensor<4x5xf32> into tensor<6x5xf32>
  return %sum, %ins : tensor<4xf32>, tensor<6x5xf32>
}
