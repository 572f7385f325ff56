// kilnc --threads: the *_threads entry points, the thread count reaching every parallel
// region, and the runtime each mode needs (pthread: kilnc's own over pthread_create; openmp:
// libomp's __kmpc_* calls). --min-parallel-work=1 makes this small model's loops parallel.
// RUN: python3 %S/Inputs/make_npz.py %t.npz W=2x3:f32:0.5 b=2:f32:0.25
// RUN: kilnc %s --weights %t.npz --name tiny --threads=pthread --min-parallel-work=1 --emit=llvm -O0 -o - | FileCheck %s --check-prefix=PTHREAD
// RUN: kilnc %s --weights %t.npz --name tiny --threads=openmp --min-parallel-work=1 --emit=llvm -O0 -o - | FileCheck %s --check-prefix=OPENMP
// RUN: kilnc %s --weights %t.npz --name tiny --threads=pthread --min-parallel-work=1 -o %t.o --header %t.h
// RUN: FileCheck %s --check-prefix=HEADER < %t.h
// RUN: llvm-nm -u %t.o | FileCheck %s --check-prefix=NM
// RUN: kilnc %s --weights %t.npz --name tiny --threads=none --emit=llvm -O0 -o - | FileCheck %s --check-prefix=NONE

// The graph's parallel loops run on the thread count it takes after the arguments (i32);
// the threaded entry point refuses nthreads <= 0 and passes it; the plain one passes 1.
// PTHREAD: define internal void @kilnc_graph_forward({{.*}}, i32 %[[N:[0-9]+]],
// PTHREAD: call void @kilnc.parallel(i32 %[[N]], ptr @kilnc_graph_forward..omp_par
// PTHREAD: call void @kilnc.static_init_8u(
// PTHREAD: define i32 @tiny_forward_threads(i32 %0, ptr %1, i64 %2, ptr %3)
// PTHREAD: icmp sle i32 %0, 0
// PTHREAD: call void @_mlir_ciface_kilnc_graph_forward({{.*}}, i32 %0, ptr
// PTHREAD: define i32 @tiny_forward(ptr %0, i64 %1, ptr %2)
// PTHREAD-NEXT: entry:
// PTHREAD-NEXT: call i32 @tiny_forward_threads(i32 1, ptr %0, i64 %1, ptr %2)
// PTHREAD: define internal void @kilnc.parallel(i32 %0, ptr %1, ptr %2)
// PTHREAD: call i32 @pthread_create(
// PTHREAD: call i32 @pthread_join(
// PTHREAD-NOT: __kmpc

// OPENMP-DAG: define i32 @tiny_forward_threads(i32 %0, ptr %1, i64 %2, ptr %3)
// OPENMP-DAG: call void @__kmpc_push_num_threads(ptr @{{.*}}, i32 %{{.*}}, i32 %{{.*}})
// OPENMP-DAG: call void (ptr, i32, ptr, ...) @__kmpc_fork_call(

// HEADER: Threads: each <f>_threads(nthreads, ...)
// HEADER: int tiny_forward(const float* x0, int64_t batch, float* y0);
// HEADER-NEXT: int tiny_forward_threads(int nthreads, const float* x0, int64_t batch, float* y0);

// Only libc (malloc, free) and libpthread's functions (in libc since glibc 2.34).
// NM-NOT: {{kmpc|omp_|kiln|abort}}
// NM: pthread_create
// NM-NEXT: pthread_join
// NM-NOT: {{kmpc|omp_|kiln|abort}}

// NONE-NOT: _threads
// NONE-NOT: pthread

module {
  func.func @forward(%W: tensor<2x3xf32> {kiln.name = "W", kiln.role = "param"},
                     %b: tensor<2xf32> {kiln.name = "b", kiln.role = "param"},
                     %x: tensor<?x3xf32> {kiln.name = "x0", kiln.role = "input"})
      -> (tensor<?x2xf32> {kiln.name = "y0", kiln.role = "output"}) {
    %0 = kiln.matmul %x, %W {transpose_b} : tensor<?x3xf32>, tensor<2x3xf32> -> tensor<?x2xf32>
    %1 = kiln.broadcast_to %b : tensor<2xf32> -> tensor<?x2xf32>
    %2 = kiln.add %0, %1 : tensor<?x2xf32>
    %3 = kiln.relu %2 : tensor<?x2xf32>
    return %3 : tensor<?x2xf32>
  }
}
