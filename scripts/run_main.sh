#!/usr/bin/env bash
# Installs dependencies, builds kiln and runs the main example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -G Ninja -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j2 --target links_basics
build/bin/links_basics
