// The registry of backends: the choice by KILN_BACKEND, and cache keys that
// carry each backend's options.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cstdlib>

#include "error_of.h"
#include "scoped_env.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

// Compiles (misses) and disk loads, as the count of new executables.
int64_t built(const CacheStats& s) { return s.misses + s.disk_hits; }

float step(float scale) {
  Variable x(Array::from({1.f, 2.f, 3.f, 4.f}, {2, 2}));
  Variable w(Array::from({0.5f, -1.f, 2.f, 1.f}, {2, 2}));
  return F::sum(F::matmul(x, w) * scale).array().item<float>();
}

}  // namespace

TEST(BackendRegistry, TheDefaultIsCpu) {
  ScopedEnv backend("KILN_BACKEND", nullptr);
  EXPECT_EQ(backend_name(), "cpu");
}

TEST(BackendRegistry, UnknownNamesListTheRegisteredBackends) {
  ScopedEnv backend("KILN_BACKEND", "tpu");
  // With the CUDA toolkit at build time the cuda backend is registered too (KILN_HAVE_CUDA).
  std::string message = error_of([] { backend_name(); });
  EXPECT_TRUE(message ==
                  "kiln: KILN_BACKEND=tpu: unknown backend; this build has 'cpu' (compiled, LLVM) and 'interp' (the "
                  "reference interpreter); 'cuda' needs a build with the CUDA toolkit (KILN_ENABLE_CUDA)" ||
              message ==
                  "kiln: KILN_BACKEND=tpu: unknown backend; this build has 'cpu' (compiled, LLVM), 'interp' (the "
                  "reference interpreter) and 'cuda' (generated CUDA C++ kernels; KILN_CUDA_EMULATE=1 runs them on "
                  "the SIMT emulator)")
      << message;
}

TEST(BackendRegistry, BackendsDoNotShareCompiledGraphs) {
  clear_memory_cache();
  CacheStats before = cache_stats();
  float cpu = 0, interp = 0;
  {
    ScopedEnv backend("KILN_BACKEND", "cpu");
    cpu = step(1.5f);
  }
  {
    ScopedEnv backend("KILN_BACKEND", "interp");
    interp = step(1.5f);
  }
  EXPECT_EQ(built(cache_stats()) - built(before), 2);
  EXPECT_FLOAT_EQ(cpu, interp);
  EXPECT_FLOAT_EQ(cpu, 24.f);  // x @ w = [[4.5, 1], [9.5, 1]]: 16, times 1.5
}

TEST(BackendRegistry, ChangingGemmMidProcessDoesNotReuseTheKernel) {
  // The in-memory key carries the pipeline options, as the disk key does.
  ScopedEnv backend("KILN_BACKEND", "cpu");
  clear_memory_cache();
  CacheStats start = cache_stats();
  float blas = 0, codegen = 0, again = 0;
  {
    ScopedEnv gemm("KILN_GEMM", "blas");
    blas = step(2.f);
  }
  CacheStats after_blas = cache_stats();
  {
    ScopedEnv gemm("KILN_GEMM", "codegen");
    codegen = step(2.f);
  }
  CacheStats after_codegen = cache_stats();
  {
    ScopedEnv gemm("KILN_GEMM", "blas");
    again = step(2.f);
  }
  CacheStats end = cache_stats();
  EXPECT_EQ(built(after_blas) - built(start), 1);
  EXPECT_EQ(built(after_codegen) - built(after_blas), 1);
  EXPECT_EQ(built(end) - built(after_codegen), 0);  // blas's kernel, from memory
  EXPECT_EQ(end.memory_hits - after_codegen.memory_hits, 1);
  EXPECT_FLOAT_EQ(blas, 32.f);
  EXPECT_FLOAT_EQ(codegen, 32.f);
  EXPECT_FLOAT_EQ(again, 32.f);
}
