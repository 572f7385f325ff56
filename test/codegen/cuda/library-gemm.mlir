// RUN: kiln-opt %s -split-input-file -kiln-fuse -kiln-emit-cuda -o /dev/null | FileCheck %s
//
// Matmul regions whose epilogue cuBLASLt can express (bias along the columns, relu) are a
// library step of the plan (cuBLASLt on a GPU, cblas under the emulator), no kernel; the rest
// of a region's epilogue is a generated elementwise kernel reading the step's result.

// matmul + bias + relu: one library step with the RELU_BIAS epilogue; no kernel, no emulator entry.
// CHECK-LABEL: CUDA program of @linear_relu: 1 kernels
// CHECK: // launch kiln_0_contraction_matmul_add_relu: library-gemm, block 256, buffers in 0 1 2 out 3
// CHECK: // library gemm 0:contraction:matmul+add+relu (cuBLASLt on a GPU, cblas under the emulator; no kernel):
// CHECK-NEXT: //   buf3 = relu(buf0 x buf1 + buf2[col]), m = batch, n = 5, k = 3, epilogue RELU_BIAS
// CHECK-NOT: __global__
// CHECK-NOT: __emulate
func.func @linear_relu(%x: tensor<?x3xf32>, %w: tensor<3x5xf32>, %b: tensor<5xf32>) -> tensor<?x5xf32> {
  %0 = kiln.matmul %x, %w : tensor<?x3xf32>, tensor<3x5xf32> -> tensor<?x5xf32>
  %1 = kiln.broadcast_to %b : tensor<5xf32> -> tensor<?x5xf32>
  %2 = kiln.add %0, %1 : tensor<?x5xf32>
  %3 = kiln.relu %2 : tensor<?x5xf32>
  return %3 : tensor<?x5xf32>
}

// -----

// Transposes (the weight gradient, k = batch) and a rest of the epilogue (a scale) that
// cuBLASLt does not take: the library step writes its own buffer (3), and a generated
// elementwise kernel reads it.
// CHECK-LABEL: CUDA program of @grad_scaled: 2 kernels
// CHECK: // launch kiln_0_contraction_matmul_mul: library-gemm, block 256, buffers in 0 1 out 3
// CHECK: // launch kiln_0_contraction_matmul_mul_epilogue: elementwise{{.*}}, buffers in 3 out 4
// CHECK: //   buf3 = buf0^T x buf1, m = 3, n = 5, k = batch, epilogue DEFAULT
// CHECK: // kernel 0:contraction:matmul+mul+epilogue (elementwise{{.*}})
// CHECK: extern "C" void kiln_0_contraction_matmul_mul_epilogue__emulate(
func.func @grad_scaled(%x: tensor<?x3xf32>, %g: tensor<?x5xf32>, %w: tensor<3x5xf32>) -> tensor<3x5xf32> {
  %c = kiln.constant dense<0.5> : tensor<3x5xf32>
  %0 = kiln.matmul %x, %g {transpose_a} : tensor<?x3xf32>, tensor<?x5xf32> -> tensor<3x5xf32>
  %1 = kiln.mul %0, %c : tensor<3x5xf32>
  return %1 : tensor<3x5xf32>
}

// -----

// Matmuls cuBLASLt steps do not take keep the generated GEMM: a batched matmul, f64. A bias
// along the rows (a (4, 1) column broadcast) is no cuBLASLt bias: the step is the bare
// matmul and the add is the generated rest.
// CHECK-LABEL: CUDA program of @not_for_cublaslt: 4 kernels
// CHECK: // launch kiln_0_contraction_matmul_tanh: gemm,
// CHECK: // launch kiln_1_contraction_matmul: gemm,
// CHECK: // launch kiln_2_contraction_matmul_add: library-gemm, block 256, buffers in 4 5 out 9
// CHECK: // launch kiln_2_contraction_matmul_add_epilogue: elementwise{{.*}}, buffers in 9 6 out 10
// CHECK: //   buf9 = buf4 x buf5, m = 4, n = 5, k = 3, epilogue DEFAULT
func.func @not_for_cublaslt(%a: tensor<3x5x20xf32>, %b: tensor<3x20x6xf32>, %c: tensor<4x3xf64>, %d: tensor<3x2xf64>, %x: tensor<4x3xf32>, %w: tensor<3x5xf32>, %r: tensor<4x1xf32>) -> (tensor<3x5x6xf32>, tensor<4x2xf64>, tensor<4x5xf32>) {
  %0 = kiln.matmul %a, %b : tensor<3x5x20xf32>, tensor<3x20x6xf32> -> tensor<3x5x6xf32>
  %1 = kiln.tanh %0 : tensor<3x5x6xf32>
  %2 = kiln.matmul %c, %d : tensor<4x3xf64>, tensor<3x2xf64> -> tensor<4x2xf64>
  %3 = kiln.matmul %x, %w : tensor<4x3xf32>, tensor<3x5xf32> -> tensor<4x5xf32>
  %4 = kiln.broadcast_to %r : tensor<4x1xf32> -> tensor<4x5xf32>
  %5 = kiln.add %3, %4 : tensor<4x5xf32>
  return %1, %2, %5 : tensor<3x5x6xf32>, tensor<4x2xf64>, tensor<4x5xf32>
}
