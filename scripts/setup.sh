#!/usr/bin/env bash
# Installs what kiln needs on Debian 12 (run as root or with sudo), skipping what is present.
set -euo pipefail
packages=(cmake ninja-build make g++ ccache pkg-config libfmt-dev libgtest-dev libgmock-dev nlohmann-json3-dev
          libzip-dev libcairo2-dev zlib1g-dev libopenblas-dev libomp5-14 python3 python3-numpy python3-sklearn
          llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools clang-22 libclang-rt-22-dev
          libopenmpi-dev openmpi-bin)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "scripts/setup.sh: these packages are missing: ${missing[*]}" >&2
      echo "Installing them needs root, and sudo is not installed. Run as root:" >&2
      echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
      echo "then run this script again." >&2
      exit 1
    fi
    sudo_cmd=(sudo)
  fi
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
