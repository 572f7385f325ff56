// RUN: kiln-opt %s -split-input-file -kiln-sequentialize-small-loops="min-parallel-work=1024" | FileCheck %s
// An outermost scf.parallel with enough work stays parallel over its leading dimensions
// only: the fewest whose static trip counts (a dynamic one counted as 1) reach 64
// chunks, never the innermost; the others become scf.for loops inside it, in order.
// Small loops, and loops inside other loops, become scf.for nests.

// CHECK-LABEL: func.func @pool_like
// CHECK:       scf.parallel (%[[N:.*]], %[[C:.*]], %[[Y:.*]]) = (%{{.*}}, %{{.*}}, %{{.*}}) to (%{{.*}}, %c32, %c16) step
// CHECK-NEXT:    scf.for %[[X:.*]] = %{{.*}} to %c16 step
// CHECK-NEXT:      memref.store %{{.*}}, %{{.*}}[%[[N]], %[[C]], %[[Y]], %[[X]]]
// CHECK-NEXT:    }
// CHECK-NEXT:    scf.reduce
func.func @pool_like(%out: memref<?x32x16x16xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %c32 = arith.constant 32 : index
  %n = memref.dim %out, %c0 : memref<?x32x16x16xf32>
  scf.parallel (%i, %j, %k, %l) = (%c0, %c0, %c0, %c0) to (%n, %c32, %c16, %c16) step (%c1, %c1, %c1, %c1) {
    memref.store %v, %out[%i, %j, %k, %l] : memref<?x32x16x16xf32>
  }
  return
}

// -----

// 128 rows are chunks enough: the columns run inside, one row at a time.
// CHECK-LABEL: func.func @rows
// CHECK:       scf.parallel (%[[R:.*]]) = (%{{.*}}) to (%c128) step
// CHECK-NEXT:    scf.for %[[K:.*]] = %{{.*}} to %c1000 step
// CHECK-NEXT:      memref.store %{{.*}}, %{{.*}}[%[[R]], %[[K]]]
func.func @rows(%out: memref<128x1000xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  %c1000 = arith.constant 1000 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c128, %c1000) step (%c1, %c1) {
    memref.store %v, %out[%i, %j] : memref<128x1000xf32>
  }
  return
}

// -----

// Output blocks of a tiled GEMM (x W^T with a batch of one 128-row block): the
// dynamic rows give no chunks, so the columns' loop over 32-wide tiles (step > 1)
// stays parallel too (both dimensions collapsed), not a sequential loop on one thread.
// CHECK-LABEL: func.func @blocks
// CHECK:       scf.parallel (%{{.*}}, %{{.*}}) = (%{{.*}}, %{{.*}}) to (%{{.*}}, %c992) step (%c128, %c32)
// CHECK-NOT:   scf.for
func.func @blocks(%out: memref<?x992xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c128 = arith.constant 128 : index
  %c992 = arith.constant 992 : index
  %n = memref.dim %out, %c0 : memref<?x992xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c992) step (%c128, %c32) {
    memref.store %v, %out[%i, %j] : memref<?x992xf32>
  }
  return
}

// -----

// Too little work for threads: nested scf.for loops only.
// CHECK-LABEL: func.func @small
// CHECK-NOT:   scf.parallel
// CHECK:       scf.for
// CHECK:       scf.for
func.func @small(%out: memref<4x8xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%i, %j) = (%c0, %c0) to (%c4, %c8) step (%c1, %c1) {
    memref.store %v, %out[%i, %j] : memref<4x8xf32>
  }
  return
}

// -----

// A one-dimensional loop and a reduction stay as they are.
// CHECK-LABEL: func.func @flat
// CHECK:       scf.parallel (%{{.*}}) = (%{{.*}}) to (%c4096) step
// CHECK-NOT:   scf.for
func.func @flat(%out: memref<4096xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4096 = arith.constant 4096 : index
  scf.parallel (%i) = (%c0) to (%c4096) step (%c1) {
    memref.store %v, %out[%i] : memref<4096xf32>
  }
  return
}
