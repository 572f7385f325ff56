// kilnc --target=cuda: @forward and @step as kiln's CUDA programs (one kernel per fusion region,
// codegen/cuda), their launch plan with NVRTC's cubins, and the CUDA executor that runs it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "CEntryPoints.h"
#include "kiln/codegen/cuda.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm
namespace mlir {
class ModuleOp;
}

namespace kilnc {

// One function's CUDA program (one kernel per fusion region, codegen/cuda).
struct CudaProgram {
  const FunctionSpec* spec;
  kiln::cuda::Program program;
};

// Fuses the module (-kiln-fuse) and emits the CUDA program of @forward and of @step, those
// `model` has, in that order. With both, each one's kernels are renamed kiln_forward_N_... and
// kiln_step_N_... (names unique across the object's modules). Throws kiln::Error for an op the
// CUDA emitter does not implement (naming it).
std::vector<CudaProgram> cuda_programs(mlir::ModuleOp module, const ModelSpec& model);

// The plan of `programs` for the executor: per function its buffers (inputs and labels, slots,
// the rest), kernels in launch order, outputs, run-time check statuses, the slots @step updates,
// and NVRTC's cubin for each of `archs` ("sm_80", "sm_90") with the PTX of the newest. Throws
// kiln::Error for an arch that is not sm_XY, when NVRTC cannot be loaded, with NVRTC's log when
// a kernel does not compile, or for a @step result the executor cannot make current by a swap.
CudaPlan cuda_plan(const std::vector<CudaProgram>& programs, const std::vector<std::string>& archs);

// The CUDA executor (cuda_executor.c, as bitcode built with kilnc) in `context`: it defines
// kilnc_cuda_forward, kilnc_cuda_create, kilnc_cuda_run, kilnc_cuda_copy_slot, kilnc_cuda_destroy
// and kilnc_cuda_last_error, and declares kilnc_cuda_plan.
std::unique_ptr<llvm::Module> cuda_executor(llvm::LLVMContext& context);

}  // namespace kilnc
