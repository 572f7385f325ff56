#!/usr/bin/env bash
# The disk cache across processes: a second run of a program compiles nothing;
# a corrupted entry is reported, recompiled and replaced; results stay right.
set -euo pipefail
program=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export KILN_CACHE_DIR=$dir KILN_BACKEND=cpu
expect() {  # expect OUTPUT REGEX WHAT
  if ! grep -Eq "$2" <<<"$1"; then echo "FAIL: $3"; echo "$1"; exit 1; fi
}
first=$("$program" 2>&1)
expect "$first" "0 disk hits, [1-9][0-9]* misses" "first run compiles"
expect "$first" "^\[2\. 2\.\]$" "first run computes"
second=$("$program" 2>&1)
expect "$second" "[1-9][0-9]* disk hits, 0 misses" "second run loads everything from disk"
expect "$second" "^\[2\. 2\.\]$" "second run computes the same"
# Flip one byte in the middle of every entry's payload.
for f in "$dir"/*.kc; do
  size=$(stat -c %s "$f")
  printf '\xff' | dd of="$f" bs=1 seek=$((size - 100)) conv=notrunc status=none
done
third=$("$program" 2>&1)
expect "$third" "is corrupt" "a corrupt entry is reported"
expect "$third" "[1-9][0-9]* misses" "a corrupt entry is recompiled"
expect "$third" "^\[2\. 2\.\]$" "results after recompiling are right"
fourth=$("$program" 2>&1)
expect "$fourth" "0 misses" "the recompiled entries replaced the corrupt ones"
if grep -q "is corrupt" <<<"$fourth"; then echo "FAIL: warning repeated"; exit 1; fi
echo "disk cache: ok"
