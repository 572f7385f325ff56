// RUN: kiln-opt %s -split-input-file -kiln-outline-kernels="kernels-per-function=2 merge-kernels=false" | FileCheck %s
// Without merge-kernels: a public function of at least 2 x 2 kernels is cut into private noinline functions of
// 2 kernels each (the last the rest) with the ops between them, called in order. Each
// recomputes the constants, index arithmetic, memref.dim and views it uses, so loop
// bounds stay constants and buffers views of the arena; it takes the other values
// (arguments, the arena, a loaded scalar) as arguments and returns those used after
// it. The views left unused in @graph are erased.

// CHECK-LABEL: func.func private @graph_part_0
// CHECK-SAME:    (%[[A:.*]]: memref<?x8xf32>, %[[S:.*]]: memref<f32>) -> (memref<4096xi8>, f32)
// CHECK-SAME:    attributes {passthrough = ["noinline"]}
// CHECK-NEXT:    %[[ARENA:.*]] = memref.alloc() {alignment = 64 : i64} : memref<4096xi8>
// CHECK-NEXT:    %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[N:.*]] = memref.dim %[[A]], %[[C0]]
// CHECK-NEXT:    %[[C8:.*]] = arith.constant 8 : index
// CHECK-NEXT:    %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[V0:.*]] = memref.view %[[ARENA]][%[[C0]]][%[[N]]] : memref<4096xi8> to memref<?x8xf32>
// CHECK-NEXT:    scf.parallel {{.*}} = (%[[C0]], %[[C0]]) to (%[[N]], %[[C8]]) step (%[[C1]], %[[C1]])
// CHECK:           memref.store {{.*}}, %[[V0]]
// CHECK:         %[[X:.*]] = memref.load %[[S]][]
// CHECK-NEXT:    linalg.fill ins(%[[X]] : f32) outs(%[[V0]] : memref<?x8xf32>)
// CHECK-NEXT:    return %[[ARENA]], %[[X]] : memref<4096xi8>, f32

// CHECK-LABEL: func.func private @graph_part_1
// CHECK-SAME:    (%[[ARENA:.*]]: memref<4096xi8>, %[[A:.*]]: memref<?x8xf32>, %[[X:.*]]: f32, %[[OUT:.*]]: memref<?x8xf32>)
// CHECK-SAME:    attributes {passthrough = ["noinline"]}
// CHECK-NEXT:    %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[N:.*]] = memref.dim %[[A]], %[[C0]]
// CHECK-NEXT:    %[[V0:.*]] = memref.view %[[ARENA]][%[[C0]]][%[[N]]]
// CHECK-NEXT:    %[[C32:.*]] = arith.constant 32 : index
// CHECK-NEXT:    %[[OFF:.*]] = arith.muli %[[N]], %[[C32]] : index
// CHECK-NEXT:    %[[V1:.*]] = memref.view %[[ARENA]][%[[OFF]]][%[[N]]]
// CHECK-NEXT:    linalg.generic {{.*}} ins(%[[V0]] : memref<?x8xf32>) outs(%[[V1]] : memref<?x8xf32>)
// CHECK:         linalg.fill ins(%[[X]] : f32) outs(%[[OUT]] : memref<?x8xf32>)
// CHECK-NEXT:    memref.dealloc %[[ARENA]]
// CHECK-NEXT:    return{{$}}

// CHECK-LABEL: func.func @graph
// CHECK-SAME:    (%[[A:.*]]: memref<?x8xf32>, %[[S:.*]]: memref<f32>, %[[OUT:.*]]: memref<?x8xf32>)
// CHECK-NEXT:    %[[R:.*]]:2 = call @graph_part_0(%[[A]], %[[S]]) : (memref<?x8xf32>, memref<f32>) -> (memref<4096xi8>, f32)
// CHECK-NEXT:    call @graph_part_1(%[[R]]#0, %[[A]], %[[R]]#1, %[[OUT]])
// CHECK-NEXT:    return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @graph(%a: memref<?x8xf32>, %s: memref<f32>, %out: memref<?x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c32 = arith.constant 32 : index
  %arena = memref.alloc() {alignment = 64 : i64} : memref<4096xi8>
  %n = memref.dim %a, %c0 : memref<?x8xf32>
  %v0 = memref.view %arena[%c0][%n] : memref<4096xi8> to memref<?x8xf32>
  %off = arith.muli %n, %c32 : index
  %v1 = memref.view %arena[%off][%n] : memref<4096xi8> to memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c8) step (%c1, %c1) {
    %e = memref.load %a[%i, %j] : memref<?x8xf32>
    memref.store %e, %v0[%i, %j] : memref<?x8xf32>
  }
  %x = memref.load %s[] : memref<f32>
  linalg.fill ins(%x : f32) outs(%v0 : memref<?x8xf32>)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%v0 : memref<?x8xf32>) outs(%v1 : memref<?x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.mulf %in, %in : f32
    linalg.yield %m : f32
  }
  linalg.fill ins(%x : f32) outs(%out : memref<?x8xf32>)
  memref.dealloc %arena : memref<4096xi8>
  return
}

// -----

// Under 2 x 2 kernels: unchanged. A private function is never cut.
// CHECK-LABEL: func.func @small
// CHECK-NOT:     call
// CHECK:         linalg.fill
// CHECK-NEXT:    linalg.fill
// CHECK-NEXT:    linalg.fill
// CHECK-NEXT:    return
func.func @small(%out: memref<8xf32>, %x: f32) {
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  return
}
// CHECK-LABEL: func.func private @inner
// CHECK-NOT:     call
func.func private @inner(%out: memref<8xf32>, %x: f32) {
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  linalg.fill ins(%x : f32) outs(%out : memref<8xf32>)
  return
}

// -----

// A recomputable op between a run's ops that uses one of its results (here the
// memref.dim returned) moves after the run's call; the runs recompute their own.
// CHECK-LABEL: func.func private @dims_part_0
// CHECK-SAME:    -> memref<?xf32>
// CHECK-LABEL: func.func private @dims_part_1
// CHECK-SAME:    (%{{.*}}: f32, %[[M:.*]]: memref<?xf32>)
// CHECK:         memref.dim %[[M]]
// CHECK-LABEL: func.func @dims
// CHECK-NEXT:    %[[C0:.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[M:.*]] = call @dims_part_0
// CHECK-NEXT:    %[[D:.*]] = memref.dim %[[M]], %[[C0]]
// CHECK-NEXT:    call @dims_part_1(%{{.*}}, %[[M]])
// CHECK-NEXT:    return %[[D]] : index
func.func @dims(%n: index, %x: f32) -> index {
  %c0 = arith.constant 0 : index
  %m = memref.alloc(%n) : memref<?xf32>
  linalg.fill ins(%x : f32) outs(%m : memref<?xf32>)
  %d = memref.dim %m, %c0 : memref<?xf32>
  %v = memref.subview %m[0] [%d] [1] : memref<?xf32> to memref<?xf32, strided<[1]>>
  linalg.fill ins(%x : f32) outs(%v : memref<?xf32, strided<[1]>>)
  linalg.fill ins(%x : f32) outs(%v : memref<?xf32, strided<[1]>>)
  linalg.fill ins(%x : f32) outs(%m : memref<?xf32>)
  memref.dealloc %m : memref<?xf32>
  return %d : index
}
