// RUN: kiln-opt %s -split-input-file -kiln-write-results-in-place | FileCheck %s
// A buffer of dynamic size copied into its out-param at the end becomes the
// out-param: no allocation, no copy.

// CHECK-LABEL: func.func @dynamic_result
// CHECK-SAME:    (%[[X:.*]]: memref<?xf32>, %[[OUT:.*]]: memref<?xf32>)
// CHECK-NOT:     memref.alloc
// CHECK:         linalg.generic {{.*}} ins(%[[X]] : memref<?xf32>) outs(%[[OUT]] : memref<?xf32>)
// CHECK-NOT:     memref.copy
// CHECK:         return
#id = affine_map<(d0) -> (d0)>
func.func @dynamic_result(%x: memref<?xf32>, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %x, %c0 : memref<?xf32>
  %buf = memref.alloc(%n) {alignment = 64 : i64} : memref<?xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : memref<?xf32>) outs(%buf : memref<?xf32>) {
  ^bb0(%a: f32, %b: f32):
    %e = math.exp %a : f32
    linalg.yield %e : f32
  }
  memref.copy %buf, %out : memref<?xf32> to memref<?xf32>
  return
}

// -----

// A buffer copied into two out-params: it becomes the second (its last use),
// which is copied into the first.
// CHECK-LABEL: func.func @two_results
// CHECK-SAME:    (%[[X:.*]]: memref<?xf32>, %[[OUT:.*]]: memref<?xf32>, %[[OUT2:.*]]: memref<?xf32>)
// CHECK-NOT:     memref.alloc
// CHECK:         memref.copy %[[X]], %[[OUT2]]
// CHECK-NEXT:    memref.copy %[[OUT2]], %[[OUT]]
func.func @two_results(%x: memref<?xf32>, %out: memref<?xf32>, %out2: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %x, %c0 : memref<?xf32>
  %buf = memref.alloc(%n) : memref<?xf32>
  memref.copy %x, %buf : memref<?xf32> to memref<?xf32>
  memref.copy %buf, %out : memref<?xf32> to memref<?xf32>
  memref.copy %buf, %out2 : memref<?xf32> to memref<?xf32>
  return
}

// -----

// Read after the copy: unchanged. An input copied out: unchanged.
// CHECK-LABEL: func.func @read_after_copy
// CHECK:         memref.alloc
// CHECK:         memref.copy
// CHECK:         memref.load
// CHECK-LABEL: func.func @input_copied
// CHECK:         memref.copy %{{.*}}, %{{.*}} : memref<?xf32> to memref<?xf32>
func.func @read_after_copy(%x: memref<?xf32>, %out: memref<?xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %n = memref.dim %x, %c0 : memref<?xf32>
  %buf = memref.alloc(%n) : memref<?xf32>
  memref.copy %x, %buf : memref<?xf32> to memref<?xf32>
  memref.copy %buf, %out : memref<?xf32> to memref<?xf32>
  %v = memref.load %buf[%c0] : memref<?xf32>
  return %v : f32
}
func.func @input_copied(%x: memref<?xf32>, %out: memref<?xf32>) {
  memref.copy %x, %out : memref<?xf32> to memref<?xf32>
  return
}
