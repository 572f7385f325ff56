#!/bin/sh
# Runs one AOT example end to end (ctest examples/aot_inference, examples/aot_training):
# export_digits trains with the JIT and exports, kilnc compiles, the C program is built with
# `cc` from the object alone (+ -lm), its dependencies are checked (nm -u, ldd), and it runs.
#   run_aot.sh inference|training BIN_DIR SOURCE_DIR WORK_DIR CC
set -eu
mode=$1 bin=$2 src=$3 work=$4 cc=$5
case $mode in
  inference) name=digits program=infer_digits ;;
  training) name=digits_train program=train_digits_aot ;;
  *) echo "run_aot.sh: unknown mode $mode" >&2; exit 2 ;;
esac
rm -rf "$work"
mkdir -p "$work"
# The JIT with kiln's generated GEMM, as kilnc uses.
KILN_GEMM=codegen KILN_CACHE_MAX_MB=0 "$bin/export_digits" --out "$work" --epochs 2 --steps 10
"$bin/kilnc" "$work/$name.mlir" --weights "$work/$name.npz" --name "$name" -o "$work/$name.o" --header "$work/$name.h"

# The object calls nothing outside libc and libm (and never abort()).
libc=$("$cc" -print-file-name=libc.so.6)
libm=$("$cc" -print-file-name=libm.so.6)
provided=$work/provided.txt
{ nm -D --defined-only "$libc"; nm -D --defined-only "$libm"; } | awk '{print $3}' | sed 's/@.*//' | sort -u >"$provided"
undefined=$(nm -u "$work/$name.o" | awk '{print $2}')
echo "undefined symbols of $name.o:" $undefined
for symbol in $undefined; do
  case $symbol in
    abort|__assert_fail|exit) echo "run_aot.sh: $name.o calls $symbol" >&2; exit 1 ;;
  esac
  if ! grep -qx "$symbol" "$provided"; then
    echo "run_aot.sh: $name.o needs $symbol, which neither libc nor libm defines" >&2
    exit 1
  fi
done

"$cc" -std=c99 -O2 -Wall -Werror -I"$work" "$src/$program.c" "$work/$name.o" -lm -o "$work/$program"
# The program needs nothing but libc and libm (and the loader).
ldd "$work/$program" | while read -r line; do
  case $line in
    *linux-vdso*|*libc.so*|*libm.so*|*ld-linux*) ;;
    *) echo "run_aot.sh: $program needs $line" >&2; exit 1 ;;
  esac
done
"$work/$program" "$work"
