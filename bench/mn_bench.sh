#!/usr/bin/env bash
# kiln::distributed benchmarks: steps/s of 1 process x 2 threads against 2 processes x 1
# thread (global batch 128), and the bucketed gradient allreduce on 10 MB against a bare
# MPI_Allreduce of the same bytes (2 processes).   bench/mn_bench.sh [build/bin/mn_bench]
set -euo pipefail
bin=${1:-build/bin/mn_bench}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 KILN_CACHE_MAX_MB=0
mpirun=(mpirun --oversubscribe --bind-to none)
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
KILN_NUM_THREADS=2 OMP_NUM_THREADS=2 "${mpirun[@]}" -np 1 "$bin" steps
KILN_NUM_THREADS=1 OMP_NUM_THREADS=1 "${mpirun[@]}" -np 2 -x KILN_NUM_THREADS -x OMP_NUM_THREADS "$bin" steps
KILN_NUM_THREADS=1 "${mpirun[@]}" -np 2 -x KILN_NUM_THREADS "$bin" allreduce
