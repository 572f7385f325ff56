#!/usr/bin/env bash
# Builds kiln with sanitizers and runs its tests: build-asan (AddressSanitizer, LeakSanitizer
# and UBSan; every ctest test) and build-tsan (ThreadSanitizer; the Threads.* tests of
# threads_test and iterators_test).
# JIT-compiled kernels, LLVM/MLIR, libomp and OpenBLAS are not instrumented.
# KILN_JOBS sets the build and test parallelism (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${KILN_JOBS:-2}
configure() {  # configure DIR SANITIZERS
  cmake -G Ninja -S . -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_TESTS=ON -DKILN_SANITIZE="$2" >/dev/null
}

configure build-asan address,undefined
cmake --build build-asan -j"$jobs"
# Left to the Release run (they check compiled values, not more of kiln's C++): the golden
# files whose cpu and emulated cuda cases are compiles of large unrolled graphs (LLVM, the host
# compiler for the SIMT emulator's uninstrumented kernels), and the sequence
# examples' training loops (minutes on the interpreter once instrumented).
asan_skip='^(goldens/(recurrent|functions_extra)-(cpu|cuda-emulated)|examples/(ptb|seq2seq|text_classification_rnn))$'
ctest --test-dir build-asan -j"$jobs" --output-on-failure -E "$asan_skip"

# ThreadSanitizer: only what the Threads tests need (libkiln, threads_test, and iterators_test
# for MultithreadIterator's Threads.MultithreadIterator* tests; its Iterators.* stay out).
if [[ -f test/unit/threads_test.cpp ]]; then
  configure build-tsan thread
  cmake --build build-tsan -j"$jobs" --target threads_test iterators_test
  ctest --test-dir build-tsan -j"$jobs" -R Threads --no-tests=error --output-on-failure
else
  echo "run_sanitizers.sh: no test/unit/threads_test.cpp: no ThreadSanitizer tests to run"
fi
