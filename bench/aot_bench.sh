#!/bin/sh
# AOT against JIT on the digits MLP (issue 14 item 5), in one run on one machine, one thread:
# export_digits times the JIT's compiled training step and forward (KILN_GEMM=blas, its
# default, and KILN_GEMM=codegen, the GEMMs kilnc compiles), kilnc compiles the export,
# bench/aot_bench.c times the object's digits_train_step and digits_forward on the same batch.
#   bench/aot_bench.sh [BUILD_DIR] [SECONDS]   (default build, 2 s per figure)
set -eu
build=${1:-build}
seconds=${2:-2}
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$build/bin
export KILN_NUM_THREADS=1 KILN_CACHE_MAX_MB=0
for gemm in blas codegen; do
  KILN_GEMM=$gemm "$bin/export_digits" --out "$work/$gemm" --epochs 1 --steps 1 --time "$seconds" >/dev/null
done
for name in digits digits_train; do
  "$bin/kilnc" "$work/codegen/$name.mlir" --weights "$work/codegen/$name.npz" --name "$name" \
    -o "$work/$name.o" --header "$work/$name.h"
done
cc -std=c99 -O2 -I"$work" "$src/aot_bench.c" "$work/digits.o" "$work/digits_train.o" -lm -o "$work/aot_bench"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: /CPU: /'
for gemm in blas codegen; do
  echo "JIT with KILN_GEMM=$gemm:"
  "$work/aot_bench" "$work/$gemm" "$seconds"
done
