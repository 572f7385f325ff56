#!/usr/bin/env bash
# Makes the Python venv for bench/run.sh's PyTorch 2.x and JAX peers (never a build dependency).
#   bash bench/setup_peers.sh [VENV]   (default: $KILN_PEERS_VENV, else build/peers-venv)
# Idempotent: a package already importable in the venv is not installed again. Set
# KILN_PEERS_NO_JAX=1 to skip JAX. Needs python3 with venv and PyPI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${KILN_PEERS_VENV:-$root/build/peers-venv}}
py=$venv/bin/python
if [[ ! -x "$py" ]]; then
  echo "setup_peers: creating venv $venv"
  python3 -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip
fi
has() { "$py" -c "import $1" >/dev/null 2>&1; }
if has torch; then
  echo "setup_peers: torch already present"
else
  echo "setup_peers: pip install torch numpy"
  "$py" -m pip install --quiet torch numpy
fi
if [[ "${KILN_PEERS_NO_JAX:-0}" == 1 ]]; then
  echo "setup_peers: JAX skipped (KILN_PEERS_NO_JAX=1)"
elif has jax; then
  echo "setup_peers: jax already present"
else
  echo "setup_peers: pip install jax[cpu]"
  "$py" -m pip install --quiet "jax[cpu]" || echo "setup_peers: jax[cpu] failed to install; the JAX peer will be skipped"
fi
echo "setup_peers: $venv has:"
"$py" - <<'EOF'
import importlib
for name in ("torch", "jax", "jaxlib", "numpy"):
    try:
        print(f"  {name} {importlib.import_module(name).__version__}")
    except Exception:
        print(f"  {name}: not installed")
EOF
