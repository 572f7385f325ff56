// RUN: kiln-opt %s -kiln-check-collective-buffers | FileCheck %s
// After bufferization: a collective start on an out-param (an argument past the
// kiln.collective_inputs inputs, through memref.cast) stays; one on an input or an
// intermediate buffer would let the communicator write memory that the caller never sees
// (or that is freed), so it is removed, and the caller starts that bucket afterwards.

// CHECK-LABEL: func.func @step(
// CHECK-NOT:     kiln.collective_inputs
// CHECK:         %[[OUT:.*]] = memref.cast %arg1
// CHECK-NEXT:    call @kiln_collective_start_f32(%[[OUT]], %{{.*}})
// CHECK-NOT:     call @kiln_collective_start_f32
// CHECK:         return
func.func private @kiln_collective_start_f32(memref<?xf32, strided<[?], offset: ?>>, i64) attributes {llvm.emit_c_interface}
func.func @step(%in: memref<4xf32>, %out: memref<4xf32>) attributes {kiln.collective_inputs = 1 : i64} {
  %c0 = arith.constant 0 : i64
  %c1 = arith.constant 1 : i64
  %c2 = arith.constant 2 : i64
  %a = memref.cast %out : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
  call @kiln_collective_start_f32(%a, %c0) : (memref<?xf32, strided<[?], offset: ?>>, i64) -> ()
  %b = memref.cast %in : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
  call @kiln_collective_start_f32(%b, %c1) : (memref<?xf32, strided<[?], offset: ?>>, i64) -> ()
  %tmp = memref.alloc() : memref<4xf32>
  %c = memref.cast %tmp : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
  call @kiln_collective_start_f32(%c, %c2) : (memref<?xf32, strided<[?], offset: ?>>, i64) -> ()
  memref.copy %tmp, %out : memref<4xf32> to memref<4xf32>
  memref.dealloc %tmp : memref<4xf32>
  return
}
