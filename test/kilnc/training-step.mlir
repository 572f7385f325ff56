// A training step (@step with parameters and optimizer state in and out, @forward): the
// header declares the state API; the object defines it and calls only libc.
// RUN: python3 %S/Inputs/make_npz.py %t.npz w=3:f32:1 optimizer/w/v=3:f32:0 optimizer/t=s:i64:0 optimizer/epoch=s:i64:0 optimizer/w/t=s:i64:0
// RUN: kilnc %s --weights %t.npz --name m -O0 --emit=llvm -o - | FileCheck %s --check-prefix=LLVM
// RUN: kilnc %s --weights %t.npz --name m -o %t.o --header %t.h
// RUN: FileCheck %s --check-prefix=HEADER < %t.h
// RUN: llvm-nm -u %t.o | FileCheck %s --check-prefix=NM
// An optimizer counter of another name is not ignored:
// RUN: python3 %S/Inputs/make_npz.py %t.extra.npz w=3:f32:1 optimizer/w/v=3:f32:0 optimizer/w/steps=s:i64:0
// RUN: not kilnc %s --weights %t.extra.npz --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=EXTRA

// LLVM-DAG: @m.weight.w = private unnamed_addr constant [12 x i8]
// LLVM-DAG: @"m.weight.optimizer/w/v" = private unnamed_addr constant [12 x i8] zeroinitializer
// LLVM-DAG: define ptr @m_create()
// LLVM-DAG: define void @m_destroy(ptr
// LLVM-DAG: define i32 @m_step(ptr {{.*}}, ptr {{.*}}, ptr {{.*}}, i64 {{.*}}, ptr
// LLVM-DAG: define i32 @m_forward(ptr {{.*}}, ptr {{.*}}, i64 {{.*}}, ptr
// LLVM-DAG: define i64 @m_num_params()
// LLVM-DAG: define ptr @m_param_name(i64
// LLVM-DAG: define i32 @m_param_shape(i64 {{.*}}, ptr {{.*}}, ptr
// LLVM-DAG: define i32 @m_get_param(ptr {{.*}}, i64 {{.*}}, ptr
// LLVM-DAG: define i32 @m_set_param(ptr {{.*}}, i64 {{.*}}, ptr
// LLVM-DAG: call ptr @aligned_alloc(i64 64, i64 256)

// HEADER: typedef struct m_state m_state;
// HEADER: m_state* m_create(void);
// HEADER: void m_destroy(m_state* state);
// HEADER: int m_step(m_state* state, const float* x0, const int32_t* t, int64_t batch, float* loss);
// HEADER: int m_forward(m_state* state, const float* x0, int64_t batch, float* y0);
// HEADER: int64_t m_num_params(void);
// HEADER: const char* m_param_name(int64_t i);
// HEADER: int m_param_shape(int64_t i, int64_t* dims, int64_t* rank);
// HEADER: int m_get_param(m_state* state, int64_t i, float* out);
// HEADER: int m_set_param(m_state* state, int64_t i, const float* in);
// HEADER: int64_t m_num_inputs(void);

// NM-NOT: {{kiln|cblas|omp|abort}}

// EXTRA: kilnc: error: weights: {{.*}} has 'optimizer/w/steps' (int64 ()), which {{.*}} does not use

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
    %nv = kiln.add %v, %w : tensor<3xf32>
    %nw = kiln.sub %w, %nv : tensor<3xf32>
    return %s, %nw, %nv : tensor<f32>, tensor<3xf32>, tensor<3xf32>
  }
  func.func @forward(%w: tensor<3xf32> {kiln.name = "w", kiln.role = "param"},
                     %x: tensor<?x3xf32> {kiln.name = "x0", kiln.role = "input"})
      -> (tensor<?x3xf32> {kiln.name = "y0", kiln.role = "output"}) {
    %b = kiln.broadcast_to %w : tensor<3xf32> -> tensor<?x3xf32>
    %m = kiln.mul %x, %b : tensor<?x3xf32>
    return %m : tensor<?x3xf32>
  }
}
