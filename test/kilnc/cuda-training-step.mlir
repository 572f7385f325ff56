// kilnc --target=cuda of a training step (training-step.mlir: @step updating a parameter and an
// optimizer state, @forward): both functions' kernels (renamed kiln_forward_N_ / kiln_step_N_:
// unique across the object's two modules), the state's slots with their embedded values, the
// step's updates (slot, the buffer swapped in) and loss; the header's state API beside
// _last_error; the entry points, and an object that calls only libc.
// REQUIRES: cuda
// RUN: python3 %S/Inputs/make_npz.py %t.npz w=3:f32:1 optimizer/w/v=3:f32:0 optimizer/t=s:i64:0 optimizer/epoch=s:i64:0 optimizer/w/t=s:i64:0
// RUN: kilnc %S/training-step.mlir --weights %t.npz --name m --target=cuda --emit=cuda -o - | FileCheck %s --check-prefix=CUDA
// RUN: kilnc %S/training-step.mlir --weights %t.npz --name m --target=cuda --gpu-arch=sm_90 --emit=llvm -O0 -o - | FileCheck %s --check-prefix=LLVM
// RUN: kilnc %S/training-step.mlir --weights %t.npz --name m --target=cuda --gpu-arch=sm_90 -o %t.o --header %t.h
// RUN: FileCheck %s --check-prefix=HEADER < %t.h
// RUN: llvm-nm -u %t.o | FileCheck %s --check-prefix=NM
// RUN: llvm-nm --defined-only --extern-only %t.o | FileCheck %s --check-prefix=DEFINED
// A new value that is another argument cannot be swapped in:
// RUN: not kilnc %s --weights %t.npz --name m --target=cuda --gpu-arch=sm_90 -o %t.bad.o 2>&1 | FileCheck %s --check-prefix=ALIAS

// CUDA: // ---- the CUDA program of @forward ----
// CUDA: extern "C" __global__ void kiln_forward_0_elementwise_mul(
// CUDA: extern "C" void kiln_forward_0_elementwise_mul__emulate(
// CUDA: // ---- the CUDA program of @step ----
// CUDA: extern "C" __global__ void kiln_step_0_reduction_mul_reduce_sum(
// CUDA: extern "C" __global__ void kiln_step_1_elementwise_add_sub(
// CUDA: extern "C" void kiln_step_1_elementwise_add_sub__emulate(

// Slots: w, then optimizer/w/v (12 bytes each, from the npz).
// LLVM-DAG: @kilnc_cuda_plan = internal {{.*}}constant %struct.kilnc_cuda_plan { ptr @m.cuda.model, i64 2, ptr @m.cuda.slot_bytes, ptr @m.cuda.slot_data, i64 2, ptr @m.cuda.functions }
// LLVM-DAG: @m.cuda.slot_bytes = private unnamed_addr constant [2 x i64] [i64 12, i64 12]
// LLVM-DAG: @m.cuda.slot_data = private constant [2 x ptr] [ptr @m.weight.w, ptr @"m.weight.optimizer/w/v"]
// LLVM-DAG: @m.cuda.step.kernel = private unnamed_addr constant [37 x i8] c"kiln_step_0_reduction_mul_reduce_sum\00"
// LLVM-DAG: @m.cuda.step.cubin.sm_90 = private constant [{{[0-9]+}} x i8] c"\7FELF
// @step's buffers (bytes at batch 1, batch power, input, slot): w (slot 0), v (slot 1), x0
// (input 0), t (input 1), the loss, the new v and the new w.
// LLVM-DAG: @m.cuda.step.buffers = private unnamed_addr constant [28 x i64] [i64 12, i64 0, i64 -1, i64 0, i64 12, i64 0, i64 -1, i64 1, i64 12, i64 1, i64 0, i64 -1, i64 4, i64 1, i64 1, i64 -1, i64 4, i64 0, i64 -1, i64 -1, i64 12, i64 0, i64 -1, i64 -1, i64 12, i64 0, i64 -1, i64 -1]
// LLVM-DAG: @m.cuda.step.outputs = private unnamed_addr constant [1 x i64] [i64 4]
// Updates (slot, buffer): w from buffer 6, v from buffer 5.
// LLVM-DAG: @m.cuda.step.updates = private unnamed_addr constant [4 x i64] [i64 0, i64 6, i64 1, i64 5]
// LLVM-DAG: @m.cuda.step.entry = private unnamed_addr constant [6 x i8] c"_step\00"
// LLVM-DAG: @m.cuda.functions = private constant [2 x %struct.kilnc_cuda_function] [%struct.kilnc_cuda_function { ptr @m.cuda.forward.entry, i64 1, i64 3, {{.*}} }, %struct.kilnc_cuda_function { ptr @m.cuda.step.entry, i64 1, i64 7, ptr @m.cuda.step.buffers, i64 2, {{.*}}, i64 1, ptr @m.cuda.step.outputs, i64 0, ptr @m.cuda.step.statuses, i64 2, ptr @m.cuda.step.updates }]
// The entry points call the executor: create, step (function 1), forward (function 0), the
// parameter copies (slot, 1: to the host).
// LLVM-DAG: define ptr @m_create()
// LLVM-DAG: call ptr @kilnc_cuda_create()
// LLVM-DAG: define void @m_destroy(ptr
// LLVM-DAG: call void @kilnc_cuda_destroy(ptr
// LLVM-DAG: define i32 @m_step(ptr {{.*}}, ptr {{.*}}, ptr {{.*}}, i64 {{.*}}, ptr {{.*}})
// LLVM-DAG: call i32 @kilnc_cuda_run(ptr {{.*}}, i64 1, ptr {{.*}}, i64 {{.*}}, ptr
// LLVM-DAG: call i32 @kilnc_cuda_run(ptr {{.*}}, i64 0, ptr {{.*}}, i64 {{.*}}, ptr
// LLVM-DAG: define i32 @m_get_param(ptr {{.*}}, i64 {{.*}}, ptr {{.*}})
// LLVM-DAG: call i32 @kilnc_cuda_copy_slot(ptr {{.*}}, i64 {{.*}}, ptr {{.*}}, i32 1)
// LLVM-DAG: call i32 @kilnc_cuda_copy_slot(ptr {{.*}}, i64 {{.*}}, ptr {{.*}}, i32 0)
// LLVM-DAG: define ptr @m_last_error()

// HEADER: the object embeds cubins for sm_90 and PTX for newer GPUs
// HEADER: A state's parameters and optimizer state live on the GPU
// HEADER: 3 no CUDA driver or no GPU; 4 a CUDA call failed
// HEADER: typedef struct m_state m_state;
// HEADER: m_state* m_create(void);  /* NULL when out of memory, without a GPU or when a CUDA call fails (m_last_error() says why) */
// HEADER: void m_destroy(m_state* state);
// HEADER: int m_step(m_state* state, const float* x0, const int32_t* t, int64_t batch, float* loss);
// HEADER: int m_forward(m_state* state, const float* x0, int64_t batch, float* y0);
// HEADER: int64_t m_num_params(void);
// HEADER: const char* m_param_name(int64_t i);
// HEADER: int m_param_shape(int64_t i, int64_t* dims, int64_t* rank);
// HEADER: int m_get_param(m_state* state, int64_t i, float* out);
// HEADER: int m_set_param(m_state* state, int64_t i, const float* in);
// HEADER: const char* m_last_error(void);

// libc only: libcuda is loaded with dlopen, nothing of CUDA, kiln or libstdc++ is linked.
// NM: dlopen
// NM-NOT: {{cu[A-Z]|kiln|abort|_Z|__cxa|cuda|__tls_get_addr}}

// The entry points are the only exported symbols (the executor and its plan are internal).
// DEFINED-NOT: kilnc_cuda
// DEFINED: T m_create
// DEFINED-NEXT: T m_destroy
// DEFINED-NEXT: T m_forward
// DEFINED-NEXT: T m_get_param
// DEFINED-NEXT: T m_input_shape
// DEFINED-NEXT: T m_last_error
// DEFINED-NEXT: T m_num_inputs
// DEFINED-NEXT: T m_num_outputs
// DEFINED-NEXT: T m_num_params
// DEFINED-NEXT: T m_output_shape
// DEFINED-NEXT: T m_param_name
// DEFINED-NEXT: T m_param_shape
// DEFINED-NEXT: T m_set_param
// DEFINED-NEXT: T m_step
// DEFINED-NOT: kilnc_cuda

// ALIAS: kilnc: error: --target=cuda: the state 'optimizer/w/v' that @step returns is also its argument w (the executor swaps each updated slot with a buffer of its own)

module {
  func.func @step(%w: tensor<3xf32> {kiln.name = "w", kiln.role = "param"},
                  %v: tensor<3xf32> {kiln.name = "optimizer/w/v", kiln.role = "state"},
                  %x: tensor<?x3xf32> {kiln.name = "x0", kiln.role = "input"},
                  %t: tensor<?xi32> {kiln.name = "t", kiln.role = "label"})
      -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"},
          tensor<3xf32> {kiln.name = "w", kiln.role = "param"},
          tensor<3xf32> {kiln.name = "optimizer/w/v", kiln.role = "state"}) {
    %b = kiln.broadcast_to %w : tensor<3xf32> -> tensor<?x3xf32>
    %m = kiln.mul %x, %b : tensor<?x3xf32>
    %s = kiln.reduce_sum %m, [0, 1] : tensor<?x3xf32> -> tensor<f32>
    %nw = kiln.sub %w, %v : tensor<3xf32>
    return %s, %nw, %w : tensor<f32>, tensor<3xf32>, tensor<3xf32>
  }
}
