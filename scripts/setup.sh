#!/usr/bin/env bash
# Installs what kiln needs on Debian 12 (run as root or with sudo), skipping what is present.
set -euo pipefail
packages=(cmake ninja-build g++ ccache pkg-config libfmt-dev libgtest-dev libgmock-dev nlohmann-json3-dev
          libzip-dev libcairo2-dev zlib1g-dev libopenblas-dev libomp5-14 python3 python3-numpy python3-sklearn
          llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -ne 0 ]] && sudo_cmd=sudo
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi
