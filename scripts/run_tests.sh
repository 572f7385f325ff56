#!/usr/bin/env bash
# Installs dependencies, builds kiln with its tests, and runs every test (lit and GoogleTest) with ctest,
# then the sanitizer builds and their tests (scripts/run_sanitizers.sh) and the libFuzzer targets
# (test/fuzz/run_fuzzers.sh: npz reader, kernel-cache entries, kiln IR parser; 30 s each).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_TESTS=ON
cmake --build build -j2
ctest --test-dir build -j2 --output-on-failure
bash scripts/run_sanitizers.sh
bash test/fuzz/run_fuzzers.sh 30
