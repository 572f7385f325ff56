// RUN: kiln-opt %s -kiln-lower-to-linalg -kiln-start-collectives | FileCheck %s
// RUN: kiln-opt %s -kiln-lower-to-linalg -kiln-lower-to-llvm="parallel=false" | FileCheck %s --check-prefix=LLVM

// Two gradient buckets of a backward that computes gw2 and gb2 (bucket 0), then gw1
// (bucket 1): bucket 0's concatenation and the call that starts its reduction move up to
// right after its last gradient, before the kernel of gw1; the gradient kernels keep their
// order. The call passes the bucket's buffer (read_only: no copy) and the bucket index.

// CHECK-LABEL: func.func private @kiln_collective_start_f32(memref<?xf32, strided<[?], offset: ?>>, i64)
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @step
// CHECK-SAME:    attributes {kiln.collective_inputs = 3 : i64}
// CHECK:         %[[GW2:.*]] = linalg.matmul {{.*}} ins(%arg1, %arg0 : tensor<4x5xf32>, tensor<4x3xf32>)
// CHECK:         %[[R2:.*]] = tensor.collapse_shape %[[GW2]]
// CHECK:         %[[GB2:.*]] = linalg.reduce ins(%arg1
// CHECK:         %[[S0:.*]] = tensor.insert_slice %[[GB2]] into %{{.*}}[0] [5] [1]
// CHECK-NEXT:    %[[B0:.*]] = tensor.insert_slice %[[R2]] into %[[S0]][5] [15] [1]
// CHECK-NEXT:    %[[M0:.*]] = bufferization.to_buffer %[[B0]] read_only : tensor<20xf32> to memref<20xf32>
// CHECK-NEXT:    %[[C0:.*]] = memref.cast %[[M0]] : memref<20xf32> to memref<?xf32, strided<[?], offset: ?>>
// CHECK-NEXT:    %[[I0:.*]] = arith.constant 0 : i64
// CHECK-NEXT:    call @kiln_collective_start_f32(%[[C0]], %[[I0]])
// CHECK:         %[[GW1:.*]] = linalg.matmul {{.*}} ins(%arg2, %arg0 : tensor<4x3xf32>, tensor<4x3xf32>)
// CHECK:         %[[R1:.*]] = tensor.collapse_shape %[[GW1]]
// CHECK:         %[[B1:.*]] = linalg.copy ins(%[[R1]] : tensor<9xf32>)
// CHECK:         bufferization.to_buffer %[[B1]] read_only
// CHECK:         call @kiln_collective_start_f32(%{{.*}}, %{{.*}})
// CHECK-NOT:     kiln.collective_start
// CHECK:         return %[[B0]], %[[B1]]

// Bucket 1, one reshaped gradient, is copied into a fresh tensor right there (the copy
// into its out-param that the return needs anyway, made before the call, not at the end).
// After bufferization each bucket is its out-param (the descriptors of three inputs, 7
// words each, then the out-params from argument 21), and the call for bucket 0 comes
// between the two GEMMs.
// LLVM-LABEL: llvm.func @step(
// LLVM:         llvm.call @kiln_gemm_f32(%arg7,
// LLVM:         llvm.call @kiln_collective_start_f32(%arg21, %arg22, %arg23, %arg24, %arg25,
// LLVM:         llvm.call @kiln_gemm_f32(%arg14,
// LLVM:         llvm.call @kiln_collective_start_f32(%arg26, %arg27, %arg28, %arg29, %arg30,
// LLVM:         llvm.return
func.func @step(%x: tensor<4x3xf32>, %gy2: tensor<4x5xf32>, %gy1: tensor<4x3xf32>) -> (tensor<20xf32>, tensor<9xf32>) {
  %gw2 = kiln.matmul %gy2, %x {transpose_a} : tensor<4x5xf32>, tensor<4x3xf32> -> tensor<5x3xf32>
  %gb2 = kiln.reduce_sum %gy2, [0] : tensor<4x5xf32> -> tensor<5xf32>
  %gw1 = kiln.matmul %gy1, %x {transpose_a} : tensor<4x3xf32>, tensor<4x3xf32> -> tensor<3x3xf32>
  %r0 = kiln.reshape %gw2 : tensor<5x3xf32> -> tensor<15xf32>
  %cat = kiln.concat %gb2, %r0 {axis = 0 : i64} : tensor<5xf32>, tensor<15xf32> -> tensor<20xf32>
  %b0 = kiln.collective_start %cat, bucket = 0 : tensor<20xf32>
  %r1 = kiln.reshape %gw1 : tensor<3x3xf32> -> tensor<9xf32>
  %b1 = kiln.collective_start %r1, bucket = 1 : tensor<9xf32>
  return %b0, %b1 : tensor<20xf32>, tensor<9xf32>
}

