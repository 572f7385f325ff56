#!/usr/bin/env bash
# Installs dependencies, builds kiln, runs the Links example, then trains an MLP on digits.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target train_digits links_basics
build/bin/links_basics
build/bin/train_digits
