// RUN: kiln-opt %s -split-input-file -kiln-hoist-collectives | FileCheck %s --check-prefix=HOIST
// RUN: kiln-opt %s -split-input-file -kiln-hoist-collectives -kiln-fuse -kiln-emit-cuda -o /dev/null | FileCheck %s
//
// kiln.collective_start on the cuda backend: -kiln-hoist-collectives moves each bucket's
// reshapes, concatenation and collective_start up to right after its last gradient (the
// gradients keep their order); the emitter makes the start a collective step of the plan (no
// kernel, its result the bucket's buffer), between the kernels before and after it.

// Bucket 0 (gb2, gw2) is complete before gw1 is computed; bucket 1 (gw1) after.
// HOIST-LABEL: func.func @step
// HOIST:         %[[GW2:.*]] = kiln.matmul %arg1, %arg0
// HOIST-NEXT:    %[[R0:.*]] = kiln.reshape %[[GW2]]
// HOIST-NEXT:    %[[GB2:.*]] = kiln.reduce_sum %arg1
// HOIST-NEXT:    %[[CAT:.*]] = kiln.concat %[[GB2]], %[[R0]]
// HOIST-NEXT:    %[[B0:.*]] = kiln.collective_start %[[CAT]], bucket = 0
// HOIST-NEXT:    %[[GW1:.*]] = kiln.matmul %arg2, %arg0
// HOIST-NEXT:    %[[R1:.*]] = kiln.reshape %[[GW1]]
// HOIST-NEXT:    %[[B1:.*]] = kiln.collective_start %[[R1]], bucket = 1
// HOIST-NEXT:    return %[[B0]], %[[B1]]

// CHECK-LABEL: CUDA program of @step
// CHECK:       // launch kiln_{{[0-9]+}}_op_concat: {{.*}} out [[CAT:[0-9]+]]
// CHECK-NEXT:  // launch kiln_{{[0-9]+}}_op_collective_start: collective, block 256, buffers in [[CAT]] out
// CHECK-NEXT:  // launch {{.*}}matmul
// CHECK:       // launch kiln_{{[0-9]+}}_op_reshape: {{.*}} out [[R1:[0-9]+]]
// CHECK-NEXT:  // launch kiln_{{[0-9]+}}_op_collective_start: collective, block 256, buffers in [[R1]] out
// CHECK:       // collective start {{[0-9]+}}:op:collective_start {{.*}}(no kernel): buf[[CAT]] (20 elements) to the communicator as bucket 0
// CHECK:       // collective start {{[0-9]+}}:op:collective_start {{.*}}(no kernel): buf[[R1]] (9 elements) to the communicator as bucket 1
// CHECK-NOT:   collective_start__emulate
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

// -----

// No collective step for a bucket that is an argument (the caller's array, of which the run
// returns a copy), nor for one a later kernel reads (here the concatenation's): the caller
// starts those after the run.
// CHECK-LABEL: CUDA program of @no_step
// CHECK-NOT:   {{collective, block|collective start}}
func.func @no_step(%g: tensor<6xf32>, %h: tensor<6xf32>) -> (tensor<6xf32>, tensor<6xf32>, tensor<12xf32>) {
  %b0 = kiln.collective_start %g, bucket = 0 : tensor<6xf32>
  %e = kiln.exp %h : tensor<6xf32>
  %b1 = kiln.collective_start %e, bucket = 1 : tensor<6xf32>
  %c = kiln.concat %e, %h {axis = 0 : i64} : tensor<6xf32>, tensor<6xf32> -> tensor<12xf32>
  return %b0, %b1, %c : tensor<6xf32>, tensor<6xf32>, tensor<12xf32>
}

// -----

// CHECK-LABEL: CUDA program of @end
func.func @end() -> () {
  return
}
