#!/bin/sh
# Runs the AOT examples end to end (ctest examples/aot_inference, examples/aot_training,
# examples/aot_training_adamw, examples/aot_threads, examples/aot_cuda, examples/aot_cuda_sgd):
# export_digits trains with the JIT and exports, kilnc compiles, the C
# program is built with `cc` from the object alone (+ -lm), its dependencies are checked
# (nm -u, ldd), and it runs.
#   run_aot.sh inference|training|training_adamw|threads|cuda|cuda_sgd BIN_DIR SOURCE_DIR WORK_DIR CC
# training_adamw: the training step of AdamW (with weight decay) instead of MomentumSGD.
# threads: both programs from objects built with --threads=pthread (small loops parallel too,
# so the training step's are), checked against one thread bit for bit and against the JIT;
# then the inference program over --threads=openmp and libomp, where libomp is installed.
# cuda: the inference program over a --target=cuda object (cubins, the CUDA executor, libc
# only): without a driver, with a driver but no GPU and on a GPU it has no image for, it returns
# its error code with a message; then on fake_libcuda.c's GPU (LD_LIBRARY_PATH), whose launches
# run the same kernels on kiln's SIMT emulator (kilnc --emit=emulated), it classifies like the
# JIT (1e-5), from the sm_90 cubin and, on a newer GPU, from the PTX; then the training program
# over a --target=cuda object of the MomentumSGD step (sm_90 only, to keep the test's time): no
# state without a driver, without a GPU or on an sm_80 GPU (no image for it), and on the fake GPU (both functions' emulator builds) 3 steps end with
# the JIT's parameters (1e-5). cuda_sgd: that training part alone, for plain SGD (no optimizer
# state) from an untrained model.
# KILNC_CUDA_BUILD_ONLY=1: stops once the program is built (the gpu-check bundle carries WORK_DIR
# to a GPU machine, where bench/gpu_check.sh runs it: cmake/GpuCheck.cmake).
set -eu
mode=$1 bin=$2 src=$3 work=$4 cc=$5
case $mode in
  inference|training|training_adamw|threads|cuda|cuda_sgd) ;;
  *) echo "run_aot.sh: unknown mode $mode" >&2; exit 2 ;;
esac
rm -rf "$work"
mkdir -p "$work"
# The JIT with kiln's generated GEMM, as kilnc uses.
optimizer=momentum epochs=2 steps=10
if [ "$mode" = training_adamw ] || [ "$mode" = cuda ]; then epochs=1; fi  # its own compiles; the steps matter
if [ "$mode" = training_adamw ]; then optimizer=adamw; fi
if [ "$mode" = cuda ] || [ "$mode" = cuda_sgd ]; then steps=3; fi  # on the SIMT emulator
if [ "$mode" = cuda_sgd ]; then optimizer=sgd epochs=0; fi
KILN_GEMM=codegen KILN_CACHE_MAX_MB=0 "$bin/export_digits" --out "$work" --epochs $epochs --steps $steps --optimizer $optimizer

libc=$("$cc" -print-file-name=libc.so.6)
libm=$("$cc" -print-file-name=libm.so.6)
libpthread=$("$cc" -print-file-name=libpthread.so.0)
provided=$work/provided.txt
{
  nm -D --defined-only "$libc"
  nm -D --defined-only "$libm"
  if [ "$mode" = threads ] && [ -f "$libpthread" ]; then nm -D --defined-only "$libpthread"; fi
} | awk '{print $3}' | sed 's/@.*//' | sort -u >"$provided"

# compile NAME PROGRAM [KILNC_FLAGS...]: kilnc, the dependency check of the object, cc.
compile() {
  name=$1 program=$2
  shift 2
  "$bin/kilnc" "$work/$name.mlir" --weights "$work/$name.npz" --name "$name" -o "$work/$name.o" \
    --header "$work/$name.h" "$@"
  # The object calls nothing outside libc and libm (libpthread with threads), and never abort().
  undefined=$(nm -u "$work/$name.o" | awk '{print $2}')
  echo "undefined symbols of $name.o ($*):" $undefined
  for symbol in $undefined; do
    case $symbol in
      abort|__assert_fail|exit) echo "run_aot.sh: $name.o calls $symbol" >&2; exit 1 ;;
    esac
    if ! grep -qx "$symbol" "$provided"; then
      echo "run_aot.sh: $name.o needs $symbol, which neither libc nor libm (nor libpthread) defines" >&2
      exit 1
    fi
  done
  flags=
  case " $* " in
    *" --threads="*) flags="-DKILNC_THREADS -pthread" ;;
    *" --target=cuda "*) flags="-DKILNC_CUDA" ;;
  esac
  # shellcheck disable=SC2086
  "$cc" -std=c99 -O2 -Wall -Werror $flags -I"$work" "$src/$program.c" "$work/$name.o" -lm -o "$work/$program"
  # The program needs nothing but libc and libm (and libpthread, and the loader).
  ldd "$work/$program" | while read -r line; do
    case $line in
      *linux-vdso*|*libc.so*|*libm.so*|*libpthread.so*|*ld-linux*) ;;
      *) echo "run_aot.sh: $program needs $line" >&2; exit 1 ;;
    esac
  done
}

case $mode in
  inference)
    compile digits infer_digits && "$work/infer_digits" "$work"
    # AVX2's register tiles and 8x8 transposes (the host's are AVX-512's where it has them): same logits.
    if grep -qw avx2 /proc/cpuinfo; then
      compile digits infer_digits --mcpu=x86-64-v3 && "$work/infer_digits" "$work"
    fi
    ;;
  training|training_adamw) compile digits_train train_digits_aot && "$work/train_digits_aot" "$work" ;;
  threads)
    compile digits infer_digits --threads=pthread --min-parallel-work=512
    "$work/infer_digits" "$work"
    compile digits_train train_digits_aot --threads=pthread --min-parallel-work=512
    "$work/train_digits_aot" "$work"
    libomp=$("$cc" -print-file-name=libomp.so.5)
    if [ -f "$libomp" ]; then
      "$bin/kilnc" "$work/digits.mlir" --weights "$work/digits.npz" --name digits -o "$work/digits_omp.o" \
        --header "$work/digits.h" --threads=openmp --min-parallel-work=512
      "$cc" -std=c99 -O2 -Wall -Werror -DKILNC_THREADS -I"$work" "$src/infer_digits.c" "$work/digits_omp.o" \
        "$libomp" -lm -o "$work/infer_digits_omp"
      "$work/infer_digits_omp" "$work"
    else
      echo "run_aot.sh: no libomp.so.5; --threads=openmp not run"
    fi
    ;;
  cuda|cuda_sgd)
    if [ "$mode" = cuda ] && [ "${KILNC_CUDA_BUILD_ONLY:-0}" = 1 ]; then
      compile digits infer_digits --target=cuda
      compile digits_train train_digits_aot --target=cuda  # sm_80 and sm_90 for the GPU check
      exit 0
    fi
    mkdir -p "$work/fake"
    "$cc" -std=c11 -O2 -Wall -Werror -shared -fPIC "$src/fake_libcuda.c" -o "$work/fake/libcuda.so.1" -ldl
    fake() { env LD_LIBRARY_PATH="$work/fake" "$@"; }
    if [ "$mode" = cuda ]; then
      compile digits infer_digits --target=cuda
      # No driver (a file that does not exist, so also where one is installed): code 3, and why.
      KILNC_LIBCUDA="$work/no-such-libcuda.so.1" "$work/infer_digits" "$work" --expect-code 3
      "$bin/kilnc" "$work/digits.mlir" --weights "$work/digits.npz" --name digits --target=cuda --emit=emulated \
        -o "$work/digits_emulated.so"
      export KILNC_FAKE_CUDA_KERNELS="$work/digits_emulated.so"
      fake KILNC_FAKE_CUDA_DEVICES=0 "$work/infer_digits" "$work" --expect-code 3  # a driver, no GPU
      fake KILNC_FAKE_CUDA_CC=75 "$work/infer_digits" "$work" --expect-code 4      # no cubin or PTX for sm_75
      for gpu in 90:cubin 100:PTX; do
        fake KILNC_FAKE_CUDA_CC="${gpu%%:*}" "$work/infer_digits" "$work" 2>"$work/fake.log"
        cat "$work/fake.log"
        grep -q "cuModuleLoadData: .*${gpu#*:}" "$work/fake.log" || {
          echo "run_aot.sh: sm_${gpu%%:*} did not load the ${gpu#*:}" >&2
          exit 1
        }
      done
    fi
    # The training step: its state on the GPU.
    compile digits_train train_digits_aot --target=cuda --gpu-arch=sm_90
    KILNC_LIBCUDA="$work/no-such-libcuda.so.1" "$work/train_digits_aot" "$work" --expect-no-state
    # -o: @step's emulator build; digits_train_emulated_forward.so: @forward's.
    "$bin/kilnc" "$work/digits_train.mlir" --weights "$work/digits_train.npz" --name digits_train --target=cuda \
      --emit=emulated -o "$work/digits_train_emulated.so"
    export KILNC_FAKE_CUDA_KERNELS="$work/digits_train_emulated_forward.so:$work/digits_train_emulated.so"
    fake KILNC_FAKE_CUDA_DEVICES=0 "$work/train_digits_aot" "$work" --expect-no-state  # a driver, no GPU
    fake KILNC_FAKE_CUDA_CC=80 "$work/train_digits_aot" "$work" --expect-no-state      # no sm_80 cubin, no PTX <= 80
    fake "$work/train_digits_aot" "$work"
    ;;
esac
