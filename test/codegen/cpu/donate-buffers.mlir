// RUN: kiln-opt %s -split-input-file -verify-diagnostics -kiln-donate-buffers | FileCheck %s

// SGD-like: %w is read by the matmul, then the elementwise update reads it at the
// index it writes the out-param %out: sharing %w's buffer with %out is safe, nothing changes.
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @safe
// CHECK-NOT:     memref.copy
// CHECK:         linalg.matmul ins(%arg1, %arg0
// CHECK:         linalg.generic {{.*}} ins(%arg0, %arg2 : {{.*}}) outs(%arg3 :
func.func @safe(%w: memref<4x4xf32>, %x: memref<2x4xf32>, %g: memref<4x4xf32>, %out: memref<4x4xf32>, %y: memref<2x4xf32>)
    attributes {kiln.donations = {results = 2 : i64, pairs = array<i64: 0, 0>}} {
  linalg.matmul ins(%x, %w : memref<2x4xf32>, memref<4x4xf32>) outs(%y : memref<2x4xf32>)
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%w, %g : memref<4x4xf32>, memref<4x4xf32>) outs(%out : memref<4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %d = arith.subf %a, %b : f32
    linalg.yield %d : f32
  }
  return
}

// -----

// The out-param is written before %w's last read (the matmul): %w is copied at the
// entry and every read (the matmul's, the update's) goes to the copy.
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @unsafe
// CHECK:         %[[C:.*]] = memref.alloc() : memref<4x4xf32>
// CHECK-NEXT:    memref.copy %arg0, %[[C]]
// CHECK:         linalg.generic {{.*}} ins(%[[C]], %arg2 : {{.*}}) outs(%arg3 :
// CHECK:         linalg.matmul ins(%arg1, %[[C]]
// CHECK:         memref.dealloc %[[C]]
// CHECK-NEXT:    return
func.func @unsafe(%w: memref<4x4xf32>, %x: memref<2x4xf32>, %g: memref<4x4xf32>, %out: memref<4x4xf32>, %y: memref<2x4xf32>)
    attributes {kiln.donations = {results = 2 : i64, pairs = array<i64: 0, 0>}} {
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%w, %g : memref<4x4xf32>, memref<4x4xf32>) outs(%out : memref<4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %d = arith.subf %a, %b : f32
    linalg.yield %d : f32
  }
  linalg.matmul ins(%x, %w : memref<2x4xf32>, memref<4x4xf32>) outs(%y : memref<2x4xf32>)
  return
}

// -----

// A transposed read at the writer (a different index): not the same-index read, so a copy.
#id = affine_map<(d0, d1) -> (d0, d1)>
#t = affine_map<(d0, d1) -> (d1, d0)>
// CHECK-LABEL: func.func @transposed
// CHECK:         memref.copy %arg0
func.func @transposed(%w: memref<4x4xf32>, %out: memref<4x4xf32>)
    attributes {kiln.donations = {results = 1 : i64, pairs = array<i64: 0, 0>}} {
  linalg.generic {indexing_maps = [#t, #id], iterator_types = ["parallel", "parallel"]}
      ins(%w : memref<4x4xf32>) outs(%out : memref<4x4xf32>) {
  ^bb0(%a: f32, %c: f32):
    linalg.yield %a : f32
  }
  return
}

// -----

// expected-error @below {{kiln-donate-buffers: result 0 and argument 0 differ in type}}
func.func @mismatch(%w: memref<4x4xf32>, %out: memref<4x3xf32>)
    attributes {kiln.donations = {results = 1 : i64, pairs = array<i64: 0, 0>}} {
  return
}
