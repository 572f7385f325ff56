// RUN: kiln-opt %s -split-input-file -kiln-outline-kernels="kernels-per-function=4" | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-outline-kernels="kernels-per-function=4" | FileCheck %s --check-prefix=NAMES
// With merge-kernels (the default), each kernel of a function of at least 2 x 4 kernels
// first becomes a private noinline function taking its buffers as arguments (views of the
// arena, a loaded scalar); a kernel structurally equal to an earlier one calls its function.
// The two subtractions (other buffers, other kiln.kernel names) share @steps_kernel_0; the
// one with its operands swapped, the fills of a loaded scalar, of 0 and of 1 stay apart; the
// copies of the left and right halves (subviews at offsets 0 and 4, which become loops) share
// one function whose arguments' offsets are dynamic; a contiguous copy (a memcpy) stays.
// Then the calls are cut into runs of 4 as before. (Of the 9 kernels that become loops,
// 3 kinds when values are ignored, so at least half repeat: see @distinct.)

// NAMES-NOT:   kiln.kernel
// CHECK-LABEL: func.func private @steps_kernel_0
// CHECK-SAME:    (%[[X:.*]]: memref<4x8xf32>, %[[Y:.*]]: memref<4x8xf32>, %[[O:.*]]: memref<4x8xf32>)
// CHECK-SAME:    attributes {passthrough = ["noinline"]}
// CHECK-NEXT:    linalg.generic {{.*}} ins(%[[X]], %[[Y]] : {{.*}}) outs(%[[O]] : memref<4x8xf32>) {
// CHECK-NEXT:    ^bb0(%[[IX:.*]]: f32, %[[IY:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:      arith.subf %[[IX]], %[[IY]] : f32
// CHECK-LABEL: func.func private @steps_kernel_1
// CHECK:         ^bb0(%[[IX:.*]]: f32, %[[IY:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:      arith.subf %[[IY]], %[[IX]] : f32
// CHECK-LABEL: func.func private @steps_kernel_2
// CHECK-SAME:    (%[[S:.*]]: f32, %[[O:.*]]: memref<4x8xf32>)
// CHECK-NEXT:    linalg.fill ins(%[[S]] : f32) outs(%[[O]] : memref<4x8xf32>)
// CHECK-LABEL: func.func private @steps_kernel_3
// CHECK-NEXT:    arith.constant 0.000000e+00 : f32
// CHECK-LABEL: func.func private @steps_kernel_4
// CHECK-NEXT:    arith.constant 1.000000e+00 : f32
// CHECK-LABEL: func.func private @steps_kernel_5
// CHECK-SAME:    (%[[I:.*]]: memref<4x4xf32, strided<[8, 1], offset: ?>>, %[[O:.*]]: memref<4x4xf32, strided<[8, 1], offset: ?>>)
// CHECK-NEXT:    memref.copy %[[I]], %[[O]]
// CHECK-NOT:   func.func private @steps_kernel_6

// CHECK-LABEL: func.func private @steps_part_0
// CHECK-SAME:    (%[[A:.*]]: memref<4x8xf32>, %[[B:.*]]: memref<4x8xf32>, %[[SP:.*]]: memref<f32>)
// CHECK:         %[[V0:.*]] = memref.view
// CHECK-NEXT:    call @steps_kernel_0(%[[A]], %[[B]], %[[V0]])
// CHECK:         %[[V1:.*]] = memref.view
// CHECK-NEXT:    call @steps_kernel_0(%[[V0]], %[[B]], %[[V1]])
// CHECK:         %[[V2:.*]] = memref.view
// CHECK-NEXT:    call @steps_kernel_1(%[[V1]], %[[B]], %[[V2]])
// CHECK-NEXT:    %[[S:.*]] = memref.load %[[SP]][]
// CHECK-NEXT:    call @steps_kernel_2(%[[S]], %[[V0]])
// CHECK-LABEL: func.func private @steps_part_1
// CHECK:         call @steps_kernel_2
// CHECK:         call @steps_kernel_3
// CHECK-NEXT:    call @steps_kernel_4
// CHECK:         %[[L:.*]] = memref.subview {{.*}}[0, 0] [4, 4] [1, 1]
// CHECK-NEXT:    %[[LC:.*]] = memref.cast %[[L]] : memref<4x4xf32, strided<[8, 1]>> to memref<4x4xf32, strided<[8, 1], offset: ?>>
// CHECK:         call @steps_kernel_5(%[[LC]],
// CHECK-LABEL: func.func private @steps_part_2
// CHECK:         %[[R:.*]] = memref.subview {{.*}}[0, 4] [4, 4] [1, 1]
// CHECK-NEXT:    %[[RC:.*]] = memref.cast %[[R]] : memref<4x4xf32, strided<[8, 1], offset: 4>> to memref<4x4xf32, strided<[8, 1], offset: ?>>
// CHECK:         call @steps_kernel_5(%[[RC]],
// CHECK:         memref.copy
// CHECK-NEXT:    memref.dealloc
// CHECK-LABEL: func.func @steps
// CHECK-NEXT:    call @steps_part_0
// CHECK-NEXT:    call @steps_part_1
// CHECK-NEXT:    call @steps_part_2
// CHECK-NEXT:    return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @steps(%a: memref<4x8xf32>, %b: memref<4x8xf32>, %s: memref<f32>, %out: memref<4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c128 = arith.constant 128 : index
  %c256 = arith.constant 256 : index
  %arena = memref.alloc() {alignment = 64 : i64} : memref<384xi8>
  %v0 = memref.view %arena[%c0][] {kiln.planned} : memref<384xi8> to memref<4x8xf32>
  %v1 = memref.view %arena[%c128][] {kiln.planned} : memref<384xi8> to memref<4x8xf32>
  %v2 = memref.view %arena[%c256][] {kiln.planned} : memref<384xi8> to memref<4x8xf32>
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : memref<4x8xf32>, memref<4x8xf32>) outs(%v0 : memref<4x8xf32>) attrs = {kiln.kernel = "0:step"} {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  }
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%v0, %b : memref<4x8xf32>, memref<4x8xf32>) outs(%v1 : memref<4x8xf32>) attrs = {kiln.kernel = "1:step"} {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %x, %y : f32
    linalg.yield %d : f32
  }
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%v1, %b : memref<4x8xf32>, memref<4x8xf32>) outs(%v2 : memref<4x8xf32>) attrs = {kiln.kernel = "2:step"} {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %d = arith.subf %y, %x : f32
    linalg.yield %d : f32
  }
  %x = memref.load %s[] : memref<f32>
  linalg.fill ins(%x : f32) outs(%v0 : memref<4x8xf32>)
  linalg.fill ins(%x : f32) outs(%v2 : memref<4x8xf32>)
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%zero : f32) outs(%v1 : memref<4x8xf32>)
  linalg.fill ins(%one : f32) outs(%v1 : memref<4x8xf32>)
  %left = memref.subview %v2[0, 0] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1]>>
  %right = memref.subview %v2[0, 4] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1], offset: 4>>
  %oleft = memref.subview %out[0, 0] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1]>>
  %oright = memref.subview %out[0, 4] [4, 4] [1, 1] : memref<4x8xf32> to memref<4x4xf32, strided<[8, 1], offset: 4>>
  memref.copy %left, %oleft : memref<4x4xf32, strided<[8, 1]>> to memref<4x4xf32, strided<[8, 1]>>
  memref.copy %right, %oright : memref<4x4xf32, strided<[8, 1], offset: 4>> to memref<4x4xf32, strided<[8, 1], offset: 4>>
  memref.copy %v1, %v0 : memref<4x8xf32> to memref<4x8xf32>
  memref.dealloc %arena : memref<384xi8>
  return
}

// -----

// Fewer than half of the kernels repeat (here none: other shapes): no function per kernel
// (it would cost LLVM more than it saves); the runs hold the kernels themselves.
// CHECK-NOT:   @distinct_kernel_
// CHECK-LABEL: func.func private @distinct_part_0
// CHECK-COUNT-4: linalg.fill
// CHECK-LABEL: func.func private @distinct_part_1
// CHECK-COUNT-4: linalg.fill
// CHECK-LABEL: func.func @distinct
// CHECK-NEXT:    call @distinct_part_0
// CHECK-NEXT:    call @distinct_part_1
// CHECK-NEXT:    return
func.func @distinct(%x: f32, %m1: memref<1xf32>, %m2: memref<2xf32>, %m3: memref<3xf32>, %m4: memref<4xf32>,
                    %m5: memref<5xf32>, %m6: memref<6xf32>, %m7: memref<7xf32>, %m8: memref<8xf32>) {
  linalg.fill ins(%x : f32) outs(%m1 : memref<1xf32>)
  linalg.fill ins(%x : f32) outs(%m2 : memref<2xf32>)
  linalg.fill ins(%x : f32) outs(%m3 : memref<3xf32>)
  linalg.fill ins(%x : f32) outs(%m4 : memref<4xf32>)
  linalg.fill ins(%x : f32) outs(%m5 : memref<5xf32>)
  linalg.fill ins(%x : f32) outs(%m6 : memref<6xf32>)
  linalg.fill ins(%x : f32) outs(%m7 : memref<7xf32>)
  linalg.fill ins(%x : f32) outs(%m8 : memref<8xf32>)
  return
}
