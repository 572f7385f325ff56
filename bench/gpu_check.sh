#!/usr/bin/env bash
# bench/gpu_check.sh: what to run, in one call, on a lent GPU machine (issue 13 item 7).
#
# The GPU machine has no LLVM/MLIR and receives a copy of the tree (under 64 MiB) for a
# few minutes, so everything it runs must be built here first, self-contained:
#   1. a test binary linked statically against MLIR/LLVM (see ../shared/NOTES-MLIR.md,
#      "Linking": the .a archives in one --start-group/--end-group with lld, stripped and
#      xz-compressed), holding the CUDA emitter, NVRTC loader, the driver shim and the
#      goldens/gradient-check drivers;
#   2. its inputs (test/goldens/*.json, test/cuda/inputs/*.kiln).
# It needs on the GPU machine: an NVIDIA driver (libcuda.so.1) and libnvrtc (the CUDA
# toolkit's lib64, or KILN_NVRTC_LIBRARY), and python3 with torch for the PyTorch-eager
# comparison (optional).
#
# State on 2026-12-01: the cuda backend emits, NVRTC-compiles (sm_80, sm_90, PTX) and runs
# its kernels under the SIMT emulator (KILN_CUDA_EMULATE=1); the launch path through the
# driver (cuModuleLoadData / cuLaunchKernel, device memory) is not written yet, and no GPU
# was lent. So this script checks the machine, then runs what exists without a GPU, and
# says plainly that the GPU figures cannot be taken yet.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${KILN_GPU_CHECK_BIN:-$here/build/bin}"
status=0

echo "== machine"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || status=1
else
  echo "no nvidia-smi: no NVIDIA driver here"
fi
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then echo "libcuda.so.1: found"; else echo "libcuda.so.1: not found"; fi

echo "== NVRTC compiles of the MLP and CNN training steps' kernels (no GPU needed)"
if [ -x "$bin/cuda_nvrtc_test" ]; then
  "$bin/cuda_nvrtc_test" || status=1
else
  echo "missing $bin/cuda_nvrtc_test: build it first (cmake --build build --target cuda_nvrtc_test)"
  status=1
fi

echo "== generated kernels under the SIMT emulator vs the interpreter"
if [ -x "$bin/cuda_emulator_test" ]; then
  "$bin/cuda_emulator_test" || status=1
else
  echo "missing $bin/cuda_emulator_test"
  status=1
fi
if [ -x "$bin/kiln-goldens" ]; then
  KILN_CUDA_EMULATE=1 "$bin/kiln-goldens" --backend cuda "$here/test/goldens/training.json" || status=1
fi

echo "== on the GPU"
echo "not run: kiln's cuda backend cannot launch on a real GPU yet (no driver launch path);"
echo "the figures of bench/RESULTS.md (fused elementwise GB/s vs a device copy, MLP/CNN steps"
echo "vs PyTorch eager, GEMM vs cuBLAS) need it. KILN_BACKEND=cuda without KILN_CUDA_EMULATE=1"
echo "says so as a kiln::Error."
exit $status
