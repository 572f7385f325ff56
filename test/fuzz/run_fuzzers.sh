#!/usr/bin/env bash
# Builds kiln's three libFuzzer targets with clang in their own build folder and runs
# each for a bounded time over a copy of its checked-in seed corpus; fails on any crash.
#   test/fuzz/run_fuzzers.sh [seconds per target, default 30]
# Environment: KILN_FUZZ_BUILD_DIR (default <source>/build-fuzz), KILN_FUZZ_CXX and
# KILN_FUZZ_CC (default clang 22), KILN_FUZZ_JOBS (build jobs, default all cores),
# KILN_BUILD_LOCK (a file to flock around the build, for machines shared by several builds).
# Needs libclang-rt-22-dev (libFuzzer's runtime). A crash leaves its input in
# <build>/fuzz-artifacts/ and prints the command that reproduces it.
set -euo pipefail
seconds=${1:-30}
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${KILN_FUZZ_BUILD_DIR:-$source_dir/build-fuzz}
cxx=${KILN_FUZZ_CXX:-/usr/lib/llvm-22/bin/clang++}
cc=${KILN_FUZZ_CC:-/usr/lib/llvm-22/bin/clang}
jobs=${KILN_FUZZ_JOBS:-$(nproc)}
targets=(npz_fuzz cache_entry_fuzz ir_parse_fuzz)

locked() {  # runs "$@" under KILN_BUILD_LOCK when set
  if [[ -n ${KILN_BUILD_LOCK:-} ]]; then flock "$KILN_BUILD_LOCK" "$@"; else "$@"; fi
}

if ! "$cxx" -fsanitize=fuzzer -x c++ - -o /dev/null <<<'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' 2>/dev/null; then
  echo "run_fuzzers: $cxx cannot link -fsanitize=fuzzer (install libclang-rt-22-dev)" >&2
  exit 1
fi
mkdir -p "$build"
# Debug: kiln's and MLIR's assertions stay on (the fuzz flags add -O1). Configuring
# defines every target (tests and examples too); only the three fuzzers are built.
locked cmake -S "$source_dir" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  -DKILN_BUILD_FUZZERS=ON -DKILN_BUILD_TESTS=ON >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
locked cmake --build "$build" -j "$jobs" --target "${targets[@]}"

artifacts=$build/fuzz-artifacts
mkdir -p "$artifacts"
failed=()
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)
  cp -r "$source_dir/test/fuzz/corpus/$t/." "$corpus/"
  dict=()
  [[ -f $source_dir/test/fuzz/$t.dict ]] && dict=(-dict="$source_dir/test/fuzz/$t.dict")
  echo "== $t: ${seconds}s over $(ls "$corpus" | wc -l) seeds"
  # -max_len: big enough for the seeds, small enough that inputs stay quick;
  # -rss_limit_mb / -malloc_limit_mb: a corrupt size field must not allocate gigabytes.
  started=$artifacts/.started-$t
  touch "$started"
  rc=0
  "$build/bin/$t" "$corpus" "${dict[@]}" -max_total_time="$seconds" -max_len=16384 \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -interrupted_exitcode=72 \
    -artifact_prefix="$artifacts/$t-" >"$artifacts/$t.log" 2>&1 || rc=$?
  if ((rc == 0)); then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$artifacts/$t.log" || true
  elif ((rc == 72 || rc > 128)) && [[ -z $(find "$artifacts" -name "$t-*" -newer "$started") ]]; then
    # Stopped from outside (libFuzzer exits 72 on SIGINT/SIGTERM; > 128 killed): not a finding.
    rm -rf "$corpus"
    echo "run_fuzzers: $t was interrupted (exit $rc) before its ${seconds}s; no crash was found" >&2
    exit "$rc"
  else
    tail -60 "$artifacts/$t.log"
    echo "FAIL: $t found a crash; reproduce with: $build/bin/$t $artifacts/$t-<crash file>"
    ls "$artifacts" | grep "^$t-" || true
    failed+=("$t")
  fi
  rm -rf "$corpus"
done
if ((${#failed[@]})); then
  echo "fuzzing: ${#failed[@]} failed: ${failed[*]}"
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash"
