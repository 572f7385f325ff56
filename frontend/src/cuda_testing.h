// The cuda backend's one test hook (test/unit/fake_gpu_test.cpp): a test that stands in for
// the CUDA driver (cuda_driver::set_driver_for_testing) learns which program each module image
// it is given to load holds, so its fake cuModuleLoadData can run that program's kernels.
#pragma once

#include <functional>

#include "kiln/codegen/cuda.h"

namespace kiln::detail {

// Called with the program and the image (cubin or PTX) just before cuModuleLoadData.
using CudaModuleHook = std::function<void(const cuda::Program& program, const void* image)>;
// Empty unless a test sets it; not thread-safe to change while graphs compile.
CudaModuleHook& cuda_module_hook_for_testing();

}  // namespace kiln::detail
