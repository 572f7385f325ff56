#!/usr/bin/env bash
# bench/gpu_check.sh: what to run, in one call, on a lent GPU machine (issue 13 item 7).
#
# The GPU machine has no LLVM/MLIR and receives a copy of the tree (under 64 MiB) for a
# few minutes, so what it runs is built here first, self-contained:
#   cmake -G Ninja -S . -B build-gpu -DKILN_GPU_CHECK=ON -DKILN_BUILD_BENCH=ON
#   cmake --build build-gpu --target gpu-check      -> build-gpu/kiln-gpu-check.run (~37 MB)
# (cmake/GpuCheck.cmake: libkiln.so with the static MLIR/LLVM archives, kiln-goldens,
# gradient_check_test, cuda_nvrtc_test, cuda_emulator_test, gpu_bench and the shared
# libraries they load, stripped, xz-compressed behind a small sh extractor). Send the tree
# with build-gpu/kiln-gpu-check.run carried; this script unpacks it into $TMPDIR.
#
# On the GPU machine it needs the NVIDIA driver (libcuda.so.1) and libnvrtc (found from
# KILN_NVRTC_LIBRARY, the toolkit, ldconfig or torch's nvidia wheels); python3 with torch
# for the peers (optional). It runs, each step under a time limit (all in under ~8 min):
#   1. the machine (nvidia-smi), NVRTC compiles of every kernel kind (cuda_nvrtc_test);
#   2. every golden file and the gradient checks with --backend cuda on the real GPU (matmuls on
#      cuBLASLt), and the training goldens again with generated GEMMs (KILN_CUDA_CUBLASLT=0);
#   2b. the digits program over a kilnc --target=cuda object (aot-cuda/ of the bundle, built
#      by examples/aot/run_aot.sh cuda): the JIT's logits (1e-5) from the cubin for this GPU,
#      and the training program: its steps end with the JIT's parameters (1e-5);
#   3. gpu_bench (fused elementwise GB/s, GEMM, MLP and CNN steps on the GPU) and
#      gpu_torch_bench.py (device copy GB/s, cuBLAS GEMM, PyTorch eager steps): the figures
#      for bench/RESULTS.md.
# Without a GPU it says so and runs the emulated checks (KILN_CUDA_EMULATE=1) instead.
# KILN_GPU_CHECK_BIN=<folder of the programs> skips the bundle (e.g. build/bin here).
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
goldens="$here/test/goldens"
status=0
step() { echo; echo "== $*"; }
# run SECONDS NAME CMD...: one step under a limit; a failure or timeout makes the status 1.
run() {
  local limit="$1" name="$2"
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@"
  local rc=$?
  echo "-- $name: exit $rc, $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || status=1
}

bin="${KILN_GPU_CHECK_BIN:-}"
if [ -z "$bin" ]; then
  bundle="${KILN_GPU_CHECK_BUNDLE:-$here/build-gpu/kiln-gpu-check.run}"
  if [ ! -f "$bundle" ]; then
    echo "no $bundle: build it first (cmake --build build-gpu --target gpu-check), or set KILN_GPU_CHECK_BIN"
    exit 1
  fi
  dir="$(sh "$bundle" "${TMPDIR:-/tmp}/kiln-gpu-check")" || { echo "cannot unpack $bundle"; exit 1; }
  bin="$dir/bin"
  export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export KILN_CACHE_DIR="${KILN_CACHE_DIR:-${TMPDIR:-/tmp}/kiln-gpu-check-cache}"
# The kilnc --target=cuda program and its data (beside bin/ in the bundle).
aot="${KILN_GPU_CHECK_AOT:-$(dirname "$bin")/aot-cuda}"

step "machine"
uname -m; nproc
gpu=0
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader && gpu=1
else
  echo "no nvidia-smi: no NVIDIA driver here"
fi
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then echo "libcuda.so.1: found"; else echo "libcuda.so.1: not found"; gpu=0; fi
# libnvrtc and libcublasLt: the toolkit's, ldconfig's, or torch's pip wheels (nvidia/<wheel>/lib).
find_cuda_lib() {  # <library name> <wheel module>
  local wheel
  wheel="$(python3 -c "import os, $2 as m; print(os.path.dirname(m.__file__))" 2>/dev/null)"
  for f in /usr/local/cuda/lib64/$1.so.* /usr/local/cuda-*/lib64/$1.so.* \
           $(ldconfig -p 2>/dev/null | awk -v pat="$1[.]so" '$0 ~ pat { print $NF }') ${wheel:+$wheel/lib/$1.so.*}; do
    case "$f" in *builtins*|*alt*) continue ;; esac
    if [ -f "$f" ]; then echo "$f"; return; fi
  done
}
[ -n "${KILN_NVRTC_LIBRARY:-}" ] || KILN_NVRTC_LIBRARY="$(find_cuda_lib libnvrtc nvidia.cuda_nvrtc)"
[ -n "$KILN_NVRTC_LIBRARY" ] && export KILN_NVRTC_LIBRARY
# The matmuls' library GEMM steps (KILN_CUDA_CUBLASLT=0 runs generated GEMM kernels instead).
[ -n "${KILN_CUBLASLT_LIBRARY:-}" ] || KILN_CUBLASLT_LIBRARY="$(find_cuda_lib libcublasLt nvidia.cublas)"
[ -n "$KILN_CUBLASLT_LIBRARY" ] && export KILN_CUBLASLT_LIBRARY
if [ -n "$KILN_CUBLASLT_LIBRARY" ]; then
  echo "libcublasLt: $KILN_CUBLASLT_LIBRARY"
else
  echo "libcublasLt: not found: matmuls as generated GEMM kernels (KILN_CUDA_CUBLASLT=0)"
  export KILN_CUDA_CUBLASLT=0
fi
echo "libnvrtc: ${KILN_NVRTC_LIBRARY:-the default of the build}"

step "NVRTC compiles of every kernel kind (sm_80, sm_90, PTX)"
run 120 cuda_nvrtc_test "$bin/cuda_nvrtc_test"

if [ $gpu -eq 0 ]; then
  step "no GPU: the generated kernels under the SIMT emulator instead"
  export KILN_CUDA_EMULATE=1
  run 240 cuda_emulator_test "$bin/cuda_emulator_test"
  run 120 "goldens training (emulated)" "$bin/kiln-goldens" --backend cuda "$goldens/training.json"
  run 60 "gpu_bench (emulated smoke run)" "$bin/gpu_bench"
  if [ -x "$aot/infer_digits" ]; then
    run 30 "kilnc --target=cuda digits without a GPU (code 3)" "$aot/infer_digits" "$aot" --expect-code 3
    run 30 "kilnc --target=cuda digits training step without a GPU (no state)" "$aot/train_digits_aot" "$aot" --expect-no-state
  fi
  echo
  echo "not measured: no GPU here, so no figures for bench/RESULTS.md (the emulated and NVRTC checks are the evidence)"
  exit $status
fi

step "goldens and gradient checks on the GPU (--backend cuda)"
for f in functions functions_extra convolutions recurrent training npz; do
  run 90 "goldens $f" "$bin/kiln-goldens" --backend cuda "$goldens/$f.json"
done
KILN_BACKEND=cuda run 120 "gradient checks" "$bin/gradient_check_test" --gtest_brief=1
# The same training goldens with every matmul a generated GEMM kernel instead of cuBLASLt.
KILN_CUDA_CUBLASLT=0 run 90 "goldens training (generated GEMMs, KILN_CUDA_CUBLASLT=0)" "$bin/kiln-goldens" --backend cuda "$goldens/training.json"

step "kilnc --target=cuda: the digits program (cubins, libcuda by dlopen) on the GPU"
if [ -x "$aot/infer_digits" ]; then
  run 60 "aot-cuda infer_digits" "$aot/infer_digits" "$aot"
  # The exported MomentumSGD step with its state on the GPU: the JIT's parameters (1e-5).
  run 60 "aot-cuda train_digits_aot" "$aot/train_digits_aot" "$aot"
else
  echo "no $aot/infer_digits (a bundle built without NVRTC, or KILN_GPU_CHECK_BIN without KILN_GPU_CHECK_AOT)"
  status=1
fi

step "benchmarks (load: $(cut -d' ' -f1-3 /proc/loadavg))"
run 150 gpu_bench "$bin/gpu_bench"
if python3 -c 'import torch' >/dev/null 2>&1; then
  run 90 gpu_torch_bench python3 "$here/bench/gpu_torch_bench.py"
else
  echo "no python3 torch here: device copy and cuBLAS through kiln's figures only; PyTorch eager not compared"
fi
exit $status
