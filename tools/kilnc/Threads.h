// kilnc's --threads: a thread count argument for the compiled functions' parallel loops, and
// the OpenMP runtime calls they make implemented over pthreads (--threads=pthread).
#pragma once
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"

namespace llvm {
class Module;
}

namespace kilnc {

enum class Threads { none, pthread, openmp };

// Appends an i32 argument (the thread count) to `func`, before the CPU pipeline. It is the
// only i32 argument of the function once lowered to the LLVM dialect.
void add_thread_count_argument(mlir::func::FuncOp func);

// After the CPU pipeline (LLVM dialect, OpenMP ops): every omp.parallel of the function
// `symbol` runs on the number of threads its i32 argument gives. Throws kiln::Error.
void use_thread_count_argument(mlir::ModuleOp module, llvm::StringRef symbol);

// Replaces the OpenMP runtime calls that the translation of omp.parallel / omp.wsloop emits
// (__kmpc_fork_call, __kmpc_for_static_init_*, ...) by definitions in `module` over
// pthread_create/pthread_join, so that the object needs libpthread only. Throws kiln::Error
// naming a runtime function it does not implement.
void implement_openmp_with_pthreads(llvm::Module& module);

}  // namespace kilnc
