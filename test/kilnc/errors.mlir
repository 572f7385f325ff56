// kilnc's bad input: options, weights missing, extra, of another shape or dtype; each an
// error naming what is wrong, exit code 1.
// RUN: python3 %S/Inputs/make_npz.py %t.good.npz W=2x3:f32:1 b=2:f32:0
// RUN: not kilnc %s --weights %t.good.npz --name 9lives -o %t.o 2>&1 | FileCheck %s --check-prefix=NAME
// RUN: not kilnc %s --weights %t.good.npz --name int -o %t.o 2>&1 | FileCheck %s --check-prefix=KEYWORD
// RUN: not kilnc %s --weights %t.good.npz --name m --target=cuda --threads=pthread -o %t.o 2>&1 | FileCheck %s --check-prefix=CUDA
// RUN: not kilnc %s --weights %t.good.npz --name m --target=cuda --gpu-arch=sm_9x -o %t.o 2>&1 | FileCheck %s --check-prefix=GPUARCH
// RUN: not kilnc %s --weights %t.good.npz --name m --gpu-arch=sm_90 -o %t.o 2>&1 | FileCheck %s --check-prefix=CPUARCH
// RUN: not kilnc %s --weights %t.good.npz --name m --emit=cuda -o %t.o 2>&1 | FileCheck %s --check-prefix=EMITCUDA
// RUN: not kilnc %s --weights %t.good.npz --name m --target=tpu -o %t.o 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not kilnc %s --weights %t.good.npz --name m --threads=tbb -o %t.o 2>&1 | FileCheck %s --check-prefix=THREADS
// RUN: not kilnc %s --weights %t.good.npz --name m --threads=pthread --min-parallel-work=0 -o %t.o 2>&1 | FileCheck %s --check-prefix=WORK
// RUN: not kilnc %s --weights %t.good.npz --name m --mcpu=no-such-cpu -o %t.o 2>&1 | FileCheck %s --check-prefix=MCPU
// RUN: not kilnc %s --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=NOWEIGHTS
// RUN: python3 %S/Inputs/make_npz.py %t.missing.npz W=2x3:f32:1
// RUN: not kilnc %s --weights %t.missing.npz --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: python3 %S/Inputs/make_npz.py %t.shape.npz W=2x3:f32:1 b=3:f32:0
// RUN: not kilnc %s --weights %t.shape.npz --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=SHAPE
// RUN: python3 %S/Inputs/make_npz.py %t.dtype.npz W=2x3:f64:1 b=2:f32:0
// RUN: not kilnc %s --weights %t.dtype.npz --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: python3 %S/Inputs/make_npz.py %t.extra.npz W=2x3:f32:1 b=2:f32:0 l9/W=4:f32:0
// RUN: not kilnc %s --weights %t.extra.npz --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=EXTRA
// RUN: not kilnc %s --weights %t.no-such.npz --name m -o %t.o 2>&1 | FileCheck %s --check-prefix=NOFILE
// RUN: kilnc --help | FileCheck %s --check-prefix=HELP
// RUN: kilnc --version | FileCheck %s --check-prefix=VERSION

// NAME: kilnc: error: --name=9lives: not a C identifier
// KEYWORD: kilnc: error: --name=int: not a C identifier
// CUDA: kilnc: error: --threads=pthread: not with --target=cuda
// GPUARCH: kilnc: error: --gpu-arch=sm_9x: not a GPU architecture (sm_80, sm_86, sm_89, sm_90, ...)
// CPUARCH: kilnc: error: --gpu-arch: only with --target=cuda
// EMITCUDA: kilnc: error: --emit=cuda: only with --target=cuda
// TARGET: kilnc: error: --target=tpu: unknown target (cpu or cuda)
// THREADS: kilnc: error: --threads=tbb: unknown (none, pthread or openmp)
// WORK: kilnc: error: --min-parallel-work=0: must be at least 1
// MCPU: kilnc: error: --mcpu=no-such-cpu: not a CPU that LLVM knows
// NOWEIGHTS: kilnc: error: --weights: {{.*}}errors.mlir has parameters
// MISSING: kilnc: error: weights: {{.*}}.missing.npz has no array 'b' (float32 (2,), the param of @forward
// SHAPE: kilnc: error: weights: 'b' is float32 (3,) in {{.*}}.shape.npz but float32 (2,) in {{.*}}errors.mlir
// DTYPE: kilnc: error: weights: 'W' is float64 (2, 3) in {{.*}}.dtype.npz but float32 (2, 3) in
// EXTRA: kilnc: error: weights: {{.*}}.extra.npz has 'l9/W' (float32 (4,)), which {{.*}}errors.mlir does not use
// NOFILE: kilnc: error: {{.*}}no-such.npz
// HELP: USAGE: kilnc [options] <model.mlir>
// HELP: --emit=<value>
// HELP: --header=<file.h>
// HELP: --mcpu=<string>
// HELP: --name=<identifier>
// HELP: --weights=<file.npz>
// HELP: --threads=<none|pthread|openmp>
// VERSION: kilnc (kiln {{[0-9.]+}}) with LLVM 22

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
