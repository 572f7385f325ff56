// A small pool of worker threads for the runtime's data-movement loops (the
// im2col and layout copies around convolution GEMMs). Not for generated code,
// which runs its loops on OpenMP. No MLIR here.
#pragma once
#include <cstdint>
#include <functional>

namespace kiln::runtime {

// Runs body(begin, end) over [0, n) split into contiguous chunks, on up to
// KILN_NUM_THREADS threads (all hardware threads when unset), the calling
// thread included; returns when every chunk is done. Chunks smaller than
// `grain` iterations are not split further. `body` must not throw. Calls
// from several threads at once are serialized (one job runs at a time);
// a call from inside `body` runs inline.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

// How many threads a parallel_for called here would run its chunks on: 1
// inside a parallel_for's body, else KILN_NUM_THREADS (all hardware threads
// when unset).
int parallel_threads();

// KILN_NUM_THREADS=n (n > 0) also bounds OpenBLAS's threads: applied once, on the
// first GEMM or convolution (blas_kernels.cpp).
void applyThreadSetting();

}  // namespace kiln::runtime
