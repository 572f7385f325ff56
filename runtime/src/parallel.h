// The runtime's parallel loops (convolutions image by image, pooling planes):
// on the OpenMP runtime's threads once the process has loaded libomp (the
// JIT's generated loops run there, so the two never compete for the cores),
// else on a small pool of worker threads of the runtime's own. No MLIR here.
#pragma once
#include <cstdint>
#include <functional>

namespace kiln::runtime {

// Runs body(begin, end) over [0, n) split into contiguous chunks, on up to
// KILN_NUM_THREADS threads (all hardware threads when unset), the calling
// thread included (an OpenMP team of that many threads when libomp is
// loaded); returns when every chunk is done. Chunks smaller than
// `grain` iterations are not split further. `body` must not throw. Calls
// from several threads at once each get a team of their own (OpenMP) or are
// serialized (the pool: one job runs at a time); a call from inside `body`
// runs inline.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

// How many threads a parallel_for called here would run its chunks on: 1
// inside a parallel_for's body, else KILN_NUM_THREADS (all hardware threads
// when unset).
int parallel_threads();

// KILN_NUM_THREADS=n (n > 0) also bounds OpenBLAS's threads: applied once, on the
// first GEMM or convolution (blas_kernels.cpp).
void applyThreadSetting();

}  // namespace kiln::runtime
