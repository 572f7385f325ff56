// kilnc on an exported forward: the MLIR after kilnc's pipeline, the LLVM IR with the
// entry points and the embedded weights, the header, and the object's undefined symbols.
// RUN: python3 %S/Inputs/make_npz.py %t.npz W=2x3:f32:0.5 b=2:f32:0.25
// RUN: kilnc %s --weights %t.npz --name tiny --emit=mlir -o - | FileCheck %s --check-prefix=MLIR
// RUN: kilnc %s --weights %t.npz --name tiny --emit=llvm -O0 -o - | FileCheck %s --check-prefix=LLVM
// RUN: kilnc %s --weights %t.npz --name tiny --emit=asm -o - | FileCheck %s --check-prefix=ASM
// RUN: kilnc %s --weights %t.npz --name tiny --mcpu=x86-64-v3 -o %t.o --header %t.h
// RUN: FileCheck %s --check-prefix=HEADER < %t.h
// RUN: llvm-nm -u %t.o | FileCheck %s --check-prefix=NM

// MLIR: llvm.func @kilnc_graph_forward(
// MLIR: llvm.func @_mlir_ciface_kilnc_graph_forward(
// MLIR-NOT: kiln_gemm
// MLIR-NOT: __kmpc

// (-O0: the optimizer would fold these small weights into the code.)
// The weights, row-major float32 bytes (0.5 = 0x3F000000, 0.25 = 0x3E800000), read-only.
// LLVM-DAG: @tiny.weight.W = private unnamed_addr constant [24 x i8] c"\00\00\00?\00\00\00?\00\00\00?\00\00\00?\00\00\00?\00\00\00?", align 64
// LLVM-DAG: @tiny.weight.b = private unnamed_addr constant [8 x i8] c"\00\00\80>\00\00\80>", align 64
// LLVM-DAG: define {{.*}}i32 @tiny_forward(ptr {{.*}}, i64 {{.*}}, ptr {{.*}})
// LLVM-DAG: define {{.*}}i64 @tiny_num_inputs()
// LLVM-DAG: define {{.*}}i64 @tiny_num_outputs()
// LLVM-DAG: define {{.*}}i32 @tiny_input_shape(i64 {{.*}}, ptr {{.*}}, ptr {{.*}})
// LLVM-DAG: define {{.*}}i32 @tiny_output_shape(i64 {{.*}}, ptr {{.*}}, ptr {{.*}})
// LLVM-DAG: define internal void @kilnc_graph_forward(

// ASM: .globl tiny_forward
// ASM-NOT: .globl kilnc_graph_forward

// HEADER: #ifndef KILNC_TINY_H
// HEADER: #include <stdint.h>
// HEADER: extern "C" {
// HEADER: input x0: float32 (batch, 3)
// HEADER: output y0: float32 (batch, 2)
// HEADER: int tiny_forward(const float* x0, int64_t batch, float* y0);
// HEADER: int64_t tiny_num_inputs(void);
// HEADER: int64_t tiny_num_outputs(void);
// HEADER: int tiny_input_shape(int64_t i, int64_t* dims, int64_t* rank);
// HEADER: int tiny_output_shape(int64_t i, int64_t* dims, int64_t* rank);

// Only libc.
// NM-NOT: {{kiln|cblas|omp|abort}}

module {
  func.func @forward(%W: tensor<2x3xf32> {kiln.name = "W", kiln.role = "param"},
                     %b: tensor<2xf32> {kiln.name = "b", kiln.role = "param"},
                     %x: tensor<?x3xf32> {kiln.name = "x0", kiln.role = "input"})
      -> (tensor<?x2xf32> {kiln.name = "y0", kiln.role = "output"}) {
    %0 = kiln.matmul %x, %W {transpose_b} : tensor<?x3xf32>, tensor<2x3xf32> -> tensor<?x2xf32>
    %1 = kiln.broadcast_to %b : tensor<2xf32> -> tensor<?x2xf32>
    %2 = kiln.add %0, %1 : tensor<?x2xf32>
    return %2 : tensor<?x2xf32>
  }
}
