// kilnc --target=cuda: @forward's kernels as CUDA C++ (--emit=cuda), the LLVM IR with the
// embedded cubins (sm_80, sm_90), the PTX of the newest, the weights, the launch plan and
// the entry points; the header; and an object that calls only libc (dlopen for libcuda).
// REQUIRES: cuda
// RUN: python3 %S/Inputs/make_npz.py %t.npz W=2x3:f32:0.5 b=2:f32:0.25
// RUN: kilnc %s --weights %t.npz --name tiny --target=cuda --emit=cuda -o - | FileCheck %s --check-prefix=CUDA
// RUN: kilnc %s --weights %t.npz --name tiny --target=cuda --emit=llvm -O0 -o - | FileCheck %s --check-prefix=LLVM
// RUN: kilnc %s --weights %t.npz --name tiny --target=cuda --gpu-arch=sm_86 --emit=llvm -O0 -o - | FileCheck %s --check-prefix=ARCH
// RUN: kilnc %s --weights %t.npz --name tiny --target=cuda -o %t.o --header %t.h
// RUN: FileCheck %s --check-prefix=HEADER < %t.h
// RUN: llvm-nm -u %t.o | FileCheck %s --check-prefix=NM
// RUN: llvm-nm --defined-only --extern-only %t.o | FileCheck %s --check-prefix=DEFINED
// (A training step: cuda-training-step.mlir.)

// CUDA: extern "C" __global__ void kiln_0_contraction_matmul_add(const float* __restrict__ in0, const float* __restrict__ in1, const float* __restrict__ in2, float* __restrict__ out0, long long batch)

// Cubins are ELF images, the PTX NUL-terminated text; image_info: (arch, 0 cubin / 1 PTX, bytes).
// LLVM-DAG: @tiny.weight.W = private unnamed_addr constant [24 x i8] c"\00\00\00?\00\00\00?\00\00\00?\00\00\00?\00\00\00?\00\00\00?", align 64
// LLVM-DAG: @tiny.cuda.forward.kernel = private unnamed_addr constant [30 x i8] c"kiln_0_contraction_matmul_add\00"
// LLVM-DAG: @tiny.cuda.forward.cubin.sm_80 = private constant [[[SM80:[0-9]+]] x i8] c"\7FELF
// LLVM-DAG: @tiny.cuda.forward.cubin.sm_90 = private constant [[[SM90:[0-9]+]] x i8] c"\7FELF
// LLVM-DAG: @tiny.cuda.forward.ptx.compute_90 = private constant [[[PTX:[0-9]+]] x i8] c"//{{.*}}.target sm_90{{.*}}\00", align 64
// LLVM-DAG: @tiny.cuda.forward.image_info = private unnamed_addr constant [9 x i64] [i64 80, i64 0, i64 [[SM80]], i64 90, i64 0, i64 [[SM90]], i64 90, i64 1, i64 [[PTX]]]
// Buffers (bytes at batch 1, batch power, input, slot): W, b, x0, the result.
// LLVM-DAG: @tiny.cuda.forward.buffers = private unnamed_addr constant [16 x i64] [i64 24, i64 0, i64 -1, i64 0, i64 8, i64 0, i64 -1, i64 1, i64 12, i64 1, i64 0, i64 -1, i64 8, i64 1, i64 -1, i64 -1]
// LLVM-DAG: @tiny.cuda.forward.outputs = private unnamed_addr constant [1 x i64] [i64 3]
// The kernel's parameters: x0, W, b, then the result.
// LLVM-DAG: @tiny.cuda.forward.params = private unnamed_addr constant [4 x i64] [i64 2, i64 0, i64 1, i64 3]
// The slots (the weights W, b: bytes, embedded data) and the one function.
// LLVM-DAG: @tiny.cuda.slot_bytes = private unnamed_addr constant [2 x i64] [i64 24, i64 8]
// LLVM-DAG: @tiny.cuda.slot_data = private constant [2 x ptr] [ptr @tiny.weight.W, ptr @tiny.weight.b]
// LLVM-DAG: @kilnc_cuda_plan = internal {{.*}}constant %struct.kilnc_cuda_plan { ptr @tiny.cuda.model, i64 2, ptr @tiny.cuda.slot_bytes, ptr @tiny.cuda.slot_data, i64 1, ptr @tiny.cuda.functions }
// LLVM-DAG: @tiny.cuda.functions = private constant [1 x %struct.kilnc_cuda_function] [%struct.kilnc_cuda_function { ptr @tiny.cuda.forward.entry, i64 1, i64 4, ptr @tiny.cuda.forward.buffers, i64 1,
// LLVM-DAG: define i32 @tiny_forward(ptr {{.*}}, i64 {{.*}}, ptr {{.*}})
// LLVM-DAG: define ptr @tiny_last_error()
// LLVM-DAG: define i64 @tiny_num_inputs()
// LLVM-DAG: define i32 @tiny_output_shape(i64 {{.*}}, ptr {{.*}}, ptr {{.*}})
// LLVM-DAG: define internal {{.*}}i32 @kilnc_cuda_forward(

// ARCH: @tiny.cuda.forward.cubin.sm_86 = private constant
// ARCH-NOT: @tiny.cuda.forward.cubin.sm_{{[0-9]+}} =
// ARCH: @tiny.cuda.forward.ptx.compute_86 = private constant
// ARCH-NOT: @tiny.cuda.forward.cubin.sm_{{[0-9]+}} =
// ARCH: @tiny.cuda.forward.image_info = private unnamed_addr constant [6 x i64] [i64 86, i64 0,

// HEADER: the object embeds cubins for sm_80, sm_90 and PTX for newer GPUs
// HEADER: 3 no CUDA driver or no GPU; 4 a CUDA call failed
// HEADER: int tiny_forward(const float* x0, int64_t batch, float* y0);
// HEADER: int tiny_output_shape(int64_t i, int64_t* dims, int64_t* rank);
// HEADER: const char* tiny_last_error(void);

// libc only: libcuda is loaded with dlopen, nothing of CUDA, kiln or libstdc++ is linked.
// NM: dlopen
// NM: dlsym
// NM-NOT: {{cu[A-Z]|kiln|abort|_Z|__cxa|cuda}}

// The entry points are the only exported symbols (the executor and its plan are internal).
// DEFINED-NOT: kilnc_cuda
// DEFINED: T tiny_forward
// DEFINED-NEXT: T tiny_input_shape
// DEFINED-NEXT: T tiny_last_error
// DEFINED-NEXT: T tiny_num_inputs
// DEFINED-NEXT: T tiny_num_outputs
// DEFINED-NEXT: T tiny_output_shape
// DEFINED-NOT: kilnc_cuda

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
