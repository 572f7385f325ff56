// RUN: kiln-opt %s -split-input-file -kiln-vectorize-reductions="vector-bits=512" -canonicalize | FileCheck %s
// Float reductions along the innermost, contiguous dimension get vector accumulators:
// the parallel dimensions outermost, the outer reduction dimensions as scf.for loops
// carrying the accumulators, the contiguous innermost reduction dimensions as one flat
// run (4 vectors a step, one vector a step, a scalar tail), one horizontal reduction
// per output element and the output's initial value combined in once.

// A convolution's bias gradient (relu mask applied) over N, H, W of NCHW: channels in
// parallel, the batch a loop, H*W one run of 1024 floats.
// CHECK-LABEL: func.func @bias_grad
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant dense<-0.000000e+00> : vector<16xf32>
// CHECK-DAG:     %[[MASK:.*]] = memref.collapse_shape %arg0 {{\[}}[0], [1], [2, 3]] : memref<?x32x32x32xi8> into memref<?x32x1024xi8>
// CHECK-DAG:     %[[GY:.*]] = memref.collapse_shape %arg1 {{\[}}[0], [1], [2, 3]] : memref<?x32x32x32xf32> into memref<?x32x1024xf32>
// CHECK-DAG:     %[[N:.*]] = memref.dim %arg0, %c0
// CHECK:         scf.parallel (%[[C:.*]]) = (%c0) to (%c32) step (%c1) {
// CHECK-NEXT:      %[[ACC:.*]]:4 = scf.for %[[B:.*]] = %c0 to %[[N]] step %c1 iter_args(%{{.*}} = %[[ZERO]], %{{.*}} = %[[ZERO]], %{{.*}} = %[[ZERO]], %{{.*}} = %[[ZERO]])
// CHECK-NEXT:        %[[FLAT:.*]]:4 = scf.for %[[I:.*]] = %c0 to %c1024 step %c64 iter_args(%[[A0:.*]] = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}}, %{{.*}} = %{{.*}})
// CHECK-NEXT:          %[[M:.*]] = vector.load %[[MASK]][%[[B]], %[[C]], %[[I]]] : memref<?x32x1024xi8>, vector<16xi8>
// CHECK-NEXT:          %[[G:.*]] = vector.load %[[GY]][%[[B]], %[[C]], %[[I]]] : memref<?x32x1024xf32>, vector<16xf32>
// CHECK-NEXT:          %[[BIT:.*]] = arith.trunci %[[M]] : vector<16xi8> to vector<16xi1>
// CHECK-NEXT:          %[[V:.*]] = arith.select %[[BIT]], %[[G]], %{{.*}} : vector<16xi1>, vector<16xf32>
// CHECK-NEXT:          arith.addf %[[A0]], %[[V]] : vector<16xf32>
// CHECK-COUNT-3:       vector.load %[[GY]]
// CHECK:               scf.yield
// CHECK-NEXT:        }
// CHECK-NEXT:        scf.yield %[[FLAT]]#0, %[[FLAT]]#1, %[[FLAT]]#2, %[[FLAT]]#3
// CHECK-NEXT:      }
// CHECK-NEXT:      %[[S1:.*]] = arith.addf %[[ACC]]#0, %[[ACC]]#1 : vector<16xf32>
// CHECK-NEXT:      %[[S2:.*]] = arith.addf %[[S1]], %[[ACC]]#2 : vector<16xf32>
// CHECK-NEXT:      %[[S3:.*]] = arith.addf %[[S2]], %[[ACC]]#3 : vector<16xf32>
// CHECK-NEXT:      %[[H:.*]] = vector.reduction <add>, %[[S3]] fastmath<reassoc> : vector<16xf32> into f32
// CHECK-NEXT:      %[[OLD:.*]] = memref.load %arg2[%[[C]]] : memref<32xf32>
// CHECK-NEXT:      %[[NEW:.*]] = arith.addf %[[H]], %[[OLD]] : f32
// CHECK-NEXT:      memref.store %[[NEW]], %arg2[%[[C]]] : memref<32xf32>
// CHECK-NOT:     linalg.generic
#in = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1)>
func.func @bias_grad(%mask: memref<?x32x32x32xi8>, %gy: memref<?x32x32x32xf32>, %out: memref<32xf32>) {
  linalg.generic {indexing_maps = [#in, #in, #ch], iterator_types = ["reduction", "parallel", "reduction", "reduction"]}
      ins(%mask, %gy : memref<?x32x32x32xi8>, memref<?x32x32x32xf32>) outs(%out : memref<32xf32>) {
  ^bb0(%m: i8, %g: f32, %acc: f32):
    %zero = arith.constant 0.0 : f32
    %b = arith.trunci %m : i8 to i1
    %v = arith.select %b, %g, %zero : f32
    %s = arith.addf %v, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A row maximum of 1000: 15 steps of 4 vectors, 2 single vectors, a tail of 8 scalars.
// CHECK-LABEL: func.func @row_max
// CHECK:         scf.parallel (%[[R:.*]]) = (%c0) to (%c128) step (%c1) {
// CHECK-NEXT:      %[[BLOCKS:.*]]:4 = scf.for %{{.*}} = %c0 to %c960 step %c64
// CHECK-COUNT-4:     arith.maximumf %{{.*}} : vector<16xf32>
// CHECK:           %[[ONE:.*]] = scf.for %{{.*}} = %c960 to %c992 step %c16 iter_args(%{{.*}} = %[[BLOCKS]]#0) -> (vector<16xf32>)
// CHECK:           %[[TAIL:.*]] = scf.for %[[T:.*]] = %c992 to %c1000 step %c1 iter_args(%{{.*}} = %{{.*}}) -> (f32)
// CHECK-NEXT:        memref.load %arg0[%[[R]], %[[T]]] : memref<128x1000xf32>
// CHECK:           vector.reduction <maximumf>, %{{.*}} fastmath<reassoc> : vector<16xf32> into f32
// CHECK-NEXT:      arith.maximumf %{{.*}}, %[[TAIL]] : f32
// CHECK:           memref.store %{{.*}}, %arg1[%[[R]]] : memref<128xf32>
#r = affine_map<(d0, d1) -> (d0, d1)>
#o = affine_map<(d0, d1) -> (d0)>
func.func @row_max(%x: memref<128x1000xf32>, %out: memref<128xf32>) {
  linalg.generic {indexing_maps = [#r, #o], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<128x1000xf32>) outs(%out : memref<128xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.maximumf %a, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A softmax's row sum of exp(x - max), the max broadcast along the row: one vector
// exp per 16 elements, the broadcast operand read once per row.
// CHECK-LABEL: func.func @softmax_sum
// CHECK:         scf.parallel (%[[R:.*]]) =
// CHECK-NEXT:      %[[MAX:.*]] = memref.load %arg1[%[[R]]] : memref<64xf32>
// CHECK-NEXT:      %[[SPLAT:.*]] = vector.broadcast %[[MAX]] : f32 to vector<16xf32>
// CHECK:           %[[X:.*]] = vector.load %arg0[%[[R]], %{{.*}}] : memref<64x256xf32>, vector<16xf32>
// CHECK-NEXT:      %[[D:.*]] = arith.subf %[[X]], %[[SPLAT]] : vector<16xf32>
// CHECK-NEXT:      math.exp %[[D]] : vector<16xf32>
#r = affine_map<(d0, d1) -> (d0, d1)>
#o = affine_map<(d0, d1) -> (d0)>
func.func @softmax_sum(%x: memref<64x256xf32>, %max: memref<64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#r, #o, #o], iterator_types = ["parallel", "reduction"]}
      ins(%x, %max : memref<64x256xf32>, memref<64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%a: f32, %m: f32, %acc: f32):
    %d = arith.subf %a, %m : f32
    %e = math.exp %d : f32
    %s = arith.addf %e, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A column sum (the innermost dimension parallel) stays a generic: its innermost loop
// is elementwise, LLVM's vectorizer takes it. So do integer sums and reads through
// a transposed map.
// CHECK-LABEL: func.func @column_sum
// CHECK:         linalg.generic
// CHECK-LABEL: func.func @integer_row_sum
// CHECK:         linalg.generic
// CHECK-LABEL: func.func @transposed_row_sum
// CHECK:         linalg.generic
#r = affine_map<(d0, d1) -> (d0, d1)>
#t = affine_map<(d0, d1) -> (d1, d0)>
#c = affine_map<(d0, d1) -> (d1)>
#o = affine_map<(d0, d1) -> (d0)>
func.func @column_sum(%x: memref<?x10xf32>, %out: memref<10xf32>) {
  linalg.generic {indexing_maps = [#r, #c], iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<?x10xf32>) outs(%out : memref<10xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  }
  return
}
func.func @integer_row_sum(%x: memref<64x256xi32>, %out: memref<64xi32>) {
  linalg.generic {indexing_maps = [#r, #o], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x256xi32>) outs(%out : memref<64xi32>) {
  ^bb0(%a: i32, %acc: i32):
    %s = arith.addi %a, %acc : i32
    linalg.yield %s : i32
  }
  return
}
func.func @transposed_row_sum(%x: memref<256x64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#t, #o], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<256x64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  }
  return
}
