#!/usr/bin/env bash
# Runs kiln's benchmarks and the LibTorch peer with the same thread count; prints a table, writes JSON.
#   run.sh KILN_BENCH OUT.json [TORCH_BENCH]   (no TORCH_BENCH: the LibTorch row shows n/a)
# Then the Python peers (PyTorch 2.x eager and torch.compile, JAX jit: bench/torch_step_bench.py) from the
# venv that bench/setup_peers.sh makes ($KILN_PEERS_VENV, default build/peers-venv); none there: skipped.
set -euo pipefail
kiln_bench=$1 out=$2 torch_bench=${3:-}
threads=${KILN_NUM_THREADS:-$(nproc)}
# OpenBLAS at its best (the image sets Haswell kernels): see shared NOTES-MLIR.md.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export KILN_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
torch_ms="" torch_cnn_ms="" torch_digits_ms=""
if [[ -n "$torch_bench" && -x "$torch_bench" ]]; then
  # LibTorch at its best: libgomp waits passively (its default spin-wait on 2 cores is several times slower).
  torch_ms=$(OMP_WAIT_POLICY=passive "$torch_bench" "$threads" mlp)
  torch_cnn_ms=$(OMP_WAIT_POLICY=passive "$torch_bench" "$threads" cnn)
  # The digits-sized MLP runs on 1 thread for every program (kiln_bench too).
  torch_digits_ms=$(OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$torch_bench" 1 digits)
fi
KILN_BENCH_TORCH_MS="$torch_ms" KILN_BENCH_TORCH_CNN_MS="$torch_cnn_ms" KILN_BENCH_TORCH_DIGITS_MS="$torch_digits_ms" \
  "$kiln_bench" "$out"
# The LSTM language-model update of Chainer's ptb example (2 layers, 650 units, vocabulary 10000,
# batch 20, 35 steps BPTT): kiln's first two updates (they compile the unrolled graphs, minutes)
# apart from its steady update time, LibTorch's torch::nn::LSTM beside it. KILN_BENCH_ONLY set
# without "lstm" skips it.
bench_dir=$(dirname "$kiln_bench")
if [[ -z "${KILN_BENCH_ONLY:-}" || ",${KILN_BENCH_ONLY}," == *,lstm,* ]] && [[ -x "$bench_dir/kiln_lstm_bench" ]]; then
  lstm_torch=n/a
  if [[ -n "$torch_bench" && -x "$(dirname "$torch_bench")/torch_lstm_bench" ]]; then
    lstm_torch="$(OMP_WAIT_POLICY=passive "$(dirname "$torch_bench")/torch_lstm_bench" "$threads") ms/update"
  fi
  echo "LSTM LM update (ptb: 2x650, vocab 10000, batch 20, bprop 35): kiln $("$bench_dir/kiln_lstm_bench")," \
       "LibTorch nn::LSTM $lstm_torch"
fi
venv=${KILN_PEERS_VENV:-$(cd "$(dirname "$0")/.." && pwd)/build/peers-venv}
if [[ -x "$venv/bin/python" ]]; then
  "$venv/bin/python" "$(dirname "$0")/torch_step_bench.py" all "$out" "$threads"
else
  echo "PyTorch 2.x and JAX peers skipped: no venv at $venv (make it with: bash bench/setup_peers.sh)"
fi
