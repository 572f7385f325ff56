// RUN: kiln-opt %s -split-input-file -kiln-plan-buffers | FileCheck %s
// Intermediate buffers become views into one arena per call; buffers whose
// lifetimes do not overlap share memory.

// %a and %b are alive together (different offsets); %c is allocated after
// both are dead and reuses the first offset. The arena is the peak: 2 x 256 bytes.
// CHECK-LABEL: func.func @static_buffers
// CHECK:         %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<512xi8>
// CHECK-NOT:     memref.alloc
// CHECK:         memref.view %[[ARENA]][%[[O1:.*]]][] {kiln.planned} : memref<512xi8> to memref<64xf32>
// CHECK:         memref.view %[[ARENA]][%[[O2:.*]]][] {kiln.planned} : memref<512xi8> to memref<64xf32>
// CHECK:         memref.view %[[ARENA]][%{{.*}}][] {kiln.planned} : memref<512xi8> to memref<8x8xf32>
// CHECK-NOT:     memref.alloc
func.func @static_buffers(%x: memref<64xf32>, %out: memref<8x8xf32>) {
  %a = memref.alloc() : memref<64xf32>
  memref.copy %x, %a : memref<64xf32> to memref<64xf32>
  %b = memref.alloc() : memref<64xf32>
  memref.copy %a, %b : memref<64xf32> to memref<64xf32>
  %bb = memref.expand_shape %b [[0, 1]] output_shape [8, 8] : memref<64xf32> into memref<8x8xf32>
  %c = memref.alloc() : memref<8x8xf32>
  memref.copy %bb, %c : memref<8x8xf32> to memref<8x8xf32>
  memref.copy %c, %out : memref<8x8xf32> to memref<8x8xf32>
  return
}

// -----

// Buffers sized by the batch size %n: an arena of n * (per-row bytes), offsets
// multiples of n (two live 64-byte rows: 128 bytes per n). A buffer sized by
// another value keeps its own allocation.
// CHECK-LABEL: func.func @batch_buffers
// CHECK:         %[[N:.*]] = memref.dim
// CHECK-NEXT:    %[[BYTES:.*]] = arith.constant 128 : index
// CHECK-NEXT:    %[[TOTAL:.*]] = arith.muli %[[N]], %[[BYTES]] : index
// CHECK-NEXT:    %[[ARENA:.*]] = memref.alloc(%[[TOTAL]]) {alignment = 64 : i64} : memref<?xi8>
// CHECK:         %[[OFF:.*]] = arith.muli %{{.*}}, %[[N]] : index
// CHECK-NEXT:    memref.view %[[ARENA]][%[[OFF]]][%[[N]]] {kiln.planned} : memref<?xi8> to memref<?x16xf32>
// CHECK:         memref.view %[[ARENA]]
// CHECK:         memref.alloc(%{{.*}}) : memref<?x4xf32>
func.func @batch_buffers(%x: memref<?x16xf32>, %y: memref<?x4xf32>, %out: memref<?x16xf32>, %out2: memref<?x4xf32>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %x, %c0 : memref<?x16xf32>
  %m = memref.dim %y, %c0 : memref<?x4xf32>
  %a = memref.alloc(%n) : memref<?x16xf32>
  memref.copy %x, %a : memref<?x16xf32> to memref<?x16xf32>
  %b = memref.alloc(%n) : memref<?x16xf32>
  memref.copy %a, %b : memref<?x16xf32> to memref<?x16xf32>
  memref.copy %b, %out : memref<?x16xf32> to memref<?x16xf32>
  %other = memref.alloc(%m) : memref<?x4xf32>
  memref.copy %y, %other : memref<?x4xf32> to memref<?x4xf32>
  memref.copy %other, %out2 : memref<?x4xf32> to memref<?x4xf32>
  return
}
