// kilnc --target=cuda: @forward as kiln's CUDA program (one kernel per fusion region,
// codegen/cuda), its launch plan with NVRTC's cubins, and the CUDA executor that runs it.
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

// Fuses @forward (-kiln-fuse) and emits its CUDA program. Throws kiln::Error for an op the
// CUDA emitter does not implement (naming it).
kiln::cuda::Program cuda_program(mlir::ModuleOp module, const ModelSpec& model);

// The plan of `program` for the executor: buffers (inputs, weights, the rest), kernels in
// launch order, and NVRTC's cubin for each of `archs` ("sm_80", "sm_90") with the PTX of
// the newest. Throws kiln::Error for an arch that is not sm_XY, when NVRTC cannot be loaded,
// or with NVRTC's log when a kernel does not compile.
CudaPlan cuda_plan(const kiln::cuda::Program& program, const ModelSpec& model, const std::vector<std::string>& archs);

// The CUDA executor (cuda_executor.c, as bitcode built with kilnc) in `context`: it defines
// kilnc_cuda_forward and kilnc_cuda_last_error and declares kilnc_cuda_plan.
std::unique_ptr<llvm::Module> cuda_executor(llvm::LLVMContext& context);

}  // namespace kilnc
