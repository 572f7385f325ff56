// A --target=cuda object run on examples/aot/fake_libcuda.c (a fake libcuda.so.1 whose launches
// run the kernels' SIMT-emulator build, kilnc --emit=emulated): a row-reduction kernel (softmax
// of the inputs times a weight) and an elementwise one (tanh), two inputs and two outputs, three
// batch sizes, against the same computed in C (Inputs/run_cuda.c).
// REQUIRES: cuda
// RUN: rm -rf %t && mkdir -p %t/fake
// RUN: python3 %S/Inputs/make_npz.py %t/s.npz s=5:f32:0.5
// RUN: kilnc %s --weights %t/s.npz --name m --target=cuda -o %t/m.o --header %t/m.h
// RUN: kilnc %s --weights %t/s.npz --name m --target=cuda --emit=emulated -o %t/m_emulated.so
// RUN: cc -std=c11 -O2 -Wall -Werror -shared -fPIC %S/../../examples/aot/fake_libcuda.c -o %t/fake/libcuda.so.1 -ldl
// RUN: cc -std=c11 -O2 -Wall -Werror -I%t %S/Inputs/run_cuda.c %t/m.o -lm -o %t/run
// RUN: env LD_LIBRARY_PATH=%t/fake KILNC_FAKE_CUDA_KERNELS=%t/m_emulated.so %t/run 2>&1 | FileCheck %s
// RUN: kilnc %s --weights %t/s.npz --name m --target=cuda --emit=cuda -o - | FileCheck %s --check-prefix=KERNELS

// CHECK: fake libcuda.so.1: cuModuleLoadData: a cubin (ELF)
// CHECK: m_forward: batches 2, 7, 3: largest difference within 1e-6
// CHECK: m_forward(batch 0): 1

// KERNELS: __global__ void kiln_0_reduction_mul_reduce_max_sub_exp_reduce_sum_div(
// KERNELS: __global__ void kiln_1_elementwise_tanh(

module {
  func.func @forward(%s: tensor<5xf32> {kiln.name = "s", kiln.role = "param"},
                     %x: tensor<?x5xf32> {kiln.name = "x", kiln.role = "input"},
                     %z: tensor<?x5xf32> {kiln.name = "z", kiln.role = "input"})
      -> (tensor<?x5xf32> {kiln.name = "p", kiln.role = "output"},
          tensor<?x5xf32> {kiln.name = "q", kiln.role = "output"}) {
    %sb = kiln.broadcast_to %s : tensor<5xf32> -> tensor<?x5xf32>
    %y = kiln.mul %x, %sb : tensor<?x5xf32>
    %0 = kiln.reduce_max %y, [1] keepdims : tensor<?x5xf32> -> tensor<?x1xf32>
    %1 = kiln.broadcast_to %0 : tensor<?x1xf32> -> tensor<?x5xf32>
    %2 = kiln.sub %y, %1 : tensor<?x5xf32>
    %3 = kiln.exp %2 : tensor<?x5xf32>
    %4 = kiln.reduce_sum %3, [1] keepdims : tensor<?x5xf32> -> tensor<?x1xf32>
    %5 = kiln.broadcast_to %4 : tensor<?x1xf32> -> tensor<?x5xf32>
    %6 = kiln.div %3, %5 : tensor<?x5xf32>
    %q = kiln.tanh %z : tensor<?x5xf32>
    return %6, %q : tensor<?x5xf32>, tensor<?x5xf32>
  }
}
