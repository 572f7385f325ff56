// An i1 tensor one generic writes and another reads (the relu mask the forward keeps
// for the backward) is stored as i8: the writer extends before its yield, the reader
// truncates its element; a reader that is not a generic (here the return) gets an i1
// copy. Vectors of i1 are bit-packed in memory, so loops over i1 buffers stayed scalar.
// RUN: kiln-opt %s -split-input-file -kiln-widen-bool-buffers | FileCheck %s

// CHECK-LABEL: func.func @mask
// CHECK:         %[[W:.*]]:2 = linalg.generic {{.*}} outs(%{{.*}}, %{{.*}} : tensor<?x256xf32>, tensor<?x256xi8>)
// CHECK:           %[[C:.*]] = arith.cmpf ogt
// CHECK:           %[[E:.*]] = arith.extui %[[C]] : i1 to i8
// CHECK:           linalg.yield %{{.*}}, %[[E]] : f32, i8
// CHECK:         %[[COPY:.*]] = linalg.generic {{.*}} ins(%[[W]]#1 : tensor<?x256xi8>) outs(%{{.*}} : tensor<?x256xi1>)
// CHECK:           arith.trunci %{{.*}} : i8 to i1
// CHECK:         %[[GX:.*]] = linalg.generic {{.*}} ins(%[[W]]#1, %{{.*}} : tensor<?x256xi8>, tensor<?x256xf32>)
// CHECK-NEXT:    ^bb0(%[[M:.*]]: i8, %{{.*}}: f32, %{{.*}}: f32):
// CHECK-NEXT:      %[[B:.*]] = arith.trunci %[[M]] : i8 to i1
// CHECK-NEXT:      arith.select %[[B]]
// CHECK:         return %[[W]]#0, %[[GX]], %[[COPY]]
func.func @mask(%x: tensor<?x256xf32>, %g: tensor<?x256xf32>) -> (tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xi1>) {
  %c0 = arith.constant 0 : index
  %z = arith.constant 0.0 : f32
  %d = tensor.dim %x, %c0 : tensor<?x256xf32>
  %e = tensor.empty(%d) : tensor<?x256xf32>
  %em = tensor.empty(%d) : tensor<?x256xi1>
  %r:2 = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<?x256xf32>) outs(%e, %em : tensor<?x256xf32>, tensor<?x256xi1>) {
  ^bb0(%in: f32, %o: f32, %m: i1):
    %c = arith.cmpf ogt, %in, %z : f32
    %y = arith.select %c, %in, %z : f32
    linalg.yield %y, %c : f32, i1
  } -> (tensor<?x256xf32>, tensor<?x256xi1>)
  %e2 = tensor.empty(%d) : tensor<?x256xf32>
  %gx = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i, j)>], iterator_types = ["parallel", "parallel"]} ins(%r#1, %g : tensor<?x256xi1>, tensor<?x256xf32>) outs(%e2 : tensor<?x256xf32>) {
  ^bb0(%m: i1, %in: f32, %o: f32):
    %y = arith.select %m, %in, %z : f32
    linalg.yield %y : f32
  } -> tensor<?x256xf32>
  return %r#0, %gx, %r#1 : tensor<?x256xf32>, tensor<?x256xf32>, tensor<?x256xi1>
}

// -----

// A reduction reading the mask truncates it too; its own i1 result, whose init the body
// reads (an accumulator), and a result only returned stay i1.
// CHECK-LABEL: func.func @accumulator
// CHECK:         %[[M:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<8xi8>)
// CHECK:         %[[ANY:.*]] = linalg.generic {{.*}} ins(%[[M]] : tensor<8xi8>) outs(%{{.*}} : tensor<i1>)
// CHECK-NEXT:    ^bb0(%[[IN:.*]]: i8, %[[ACC:.*]]: i1):
// CHECK-NEXT:      %[[B:.*]] = arith.trunci %[[IN]] : i8 to i1
// CHECK-NEXT:      arith.ori %[[B]], %[[ACC]] : i1
// CHECK:         %[[ONLY:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<8xi1>)
// CHECK:         return %[[ANY]], %[[ONLY]] : tensor<i1>, tensor<8xi1>
func.func @accumulator(%x: tensor<8xf32>, %acc: tensor<i1>) -> (tensor<i1>, tensor<8xi1>) {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8xi1>
  %m = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%e : tensor<8xi1>) {
  ^bb0(%in: f32, %o: i1):
    %c = arith.cmpf ogt, %in, %z : f32
    linalg.yield %c : i1
  } -> tensor<8xi1>
  %any = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> ()>], iterator_types = ["reduction"]} ins(%m : tensor<8xi1>) outs(%acc : tensor<i1>) {
  ^bb0(%in: i1, %o: i1):
    %r = arith.ori %in, %o : i1
    linalg.yield %r : i1
  } -> tensor<i1>
  %e2 = tensor.empty() : tensor<8xi1>
  %only = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%e2 : tensor<8xi1>) {
  ^bb0(%in: f32, %o: i1):
    %c = arith.cmpf olt, %in, %z : f32
    linalg.yield %c : i1
  } -> tensor<8xi1>
  return %any, %only : tensor<i1>, tensor<8xi1>
}
