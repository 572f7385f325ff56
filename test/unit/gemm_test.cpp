// KILN_GEMM=blas (matmuls call OpenBLAS through kiln's runtime) against KILN_GEMM=codegen
// (generated loops) on the compiled CPU backend: plain, transposed, batched and f64
// matmuls, a training step's gradients, and the disk-cache key; the convolution runtime against direct loops.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/gemm_abi.h>
#include <kiln/kiln.h>
#include <kiln/optimizers.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <type_traits>

#include "expect_arrays.h"

using namespace kiln;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// A fresh disk cache for this process, so that every variant is compiled here (and
// leaves its KILN_DUMP files) instead of coming from an earlier run.
struct FreshDiskCache {
  fs::path dir = fs::temp_directory_path() / ("kiln_gemm_test_cache_" + std::to_string(::getpid()));
  FreshDiskCache() {
    fs::remove_all(dir);
    setenv("KILN_CACHE_DIR", dir.c_str(), 1);
  }
  ~FreshDiskCache() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
} fresh_disk_cache;

using Graph = std::function<std::vector<Array>()>;

struct GemmRun {
  std::vector<Array> results;
  std::string llvm_ir;  // the optimized LLVM IR of every graph compiled for the run
};

// Runs `graph` on the compiled CPU backend with KILN_GEMM=`gemm` (null: unset, the
// default), compiling it afresh.
GemmRun run_with(const char* gemm, const Graph& graph) {
  static int counter = 0;
  fs::path dump = fs::temp_directory_path() /
                  ("kiln_gemm_test_dump_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dump);
  setenv("KILN_BACKEND", "cpu", 1);
  if (gemm)
    setenv("KILN_GEMM", gemm, 1);
  else
    unsetenv("KILN_GEMM");
  setenv("KILN_DUMP", dump.c_str(), 1);
  clear_memory_cache();
  GemmRun run;
  run.results = graph();
  clear_memory_cache();
  unsetenv("KILN_DUMP");
  unsetenv("KILN_GEMM");
  unsetenv("KILN_BACKEND");
  if (fs::exists(dump))
    for (const auto& entry : fs::directory_iterator(dump))
      if (entry.path().extension() == ".ll") {
        std::ifstream in(entry.path());
        std::stringstream text;
        text << in.rdbuf();
        run.llvm_ir += text.str();
      }
  fs::remove_all(dump);
  return run;
}

// Runs `graph` with BLAS and with generated loops: the BLAS build calls `symbols`
// (e.g. "kiln_gemm_f32"), the loops call no kiln_*gemm function, and results agree.
// (Each .array() realizes, and compiles, a graph of its own.)
void expect_same(const Graph& graph, const std::vector<std::string>& symbols, double tolerance = 1e-4) {
  GemmRun blas = run_with("blas", graph);
  GemmRun loops = run_with("codegen", graph);
  for (const std::string& symbol : symbols) EXPECT_THAT(blas.llvm_ir, HasSubstr("_mlir_ciface_" + symbol));
  EXPECT_THAT(loops.llvm_ir, Not(HasSubstr("gemm_f")));
  expect_arrays_near(blas.results, loops.results, tolerance);
}

class Gemm : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("KILN_BACKEND", "cpu", 1);
    bool ok = true;
    try {
      backend_name();
    } catch (const Error&) {
      ok = false;
    }
    unsetenv("KILN_BACKEND");
    if (!ok) GTEST_SKIP() << "this build has no compiled CPU backend";
  }
};

}  // namespace

TEST_F(Gemm, Plain) {
  expect_same(
      [] {
        Variable a(Array::randn({33, 47}, 1)), b(Array::randn({47, 29}, 2));
        return std::vector<Array>{F::matmul(a, b).array()};
      },
      {"kiln_gemm_f32"});
}

// Shapes whose register tiles (6x16 with AVX2, 8x32 with AVX-512) leave partial row
// tiles, peeled and run a row at a time, and n of one, two and three vectors.
TEST_F(Gemm, RegisterTilesWithPartialRows) {
  expect_same(
      [] {
        std::vector<Array> results;
        int64_t shapes[][3] = {{50, 40, 48}, {70, 33, 64}, {13, 17, 24}, {100, 64, 8}};
        for (const auto& s : shapes) {
          Variable a(Array::randn({s[0], s[1]}, 51)), b(Array::randn({s[1], s[2]}, 52));
          results.push_back(F::matmul(a, b).array());
        }
        return results;
      },
      {"kiln_gemm_f32"});
}

// Widths that are no multiple of two vectors (2 x 8 f32 with AVX2, 2 x 16 with AVX-512):
// -kiln-tile-matmuls splits the columns at the last multiple (100 = 96 + 4 on both,
// 1000 = 992 + 8) into two matmuls; with A or B transposed too (x W^T, gy^T x), f64 and
// batched, and one or two vectors plus a few columns (40).
TEST_F(Gemm, SplitColumns) {
  expect_same(
      [] {
        std::vector<Array> results;
        Variable a(Array::randn({19, 37}, 61)), at(Array::randn({37, 19}, 62));
        for (int64_t n : {100, 1000, 40}) {
          Variable b(Array::randn({37, n}, 63)), bt(Array::randn({n, 37}, 64));
          results.push_back(F::matmul(a, b).array());
          results.push_back(F::matmul(a, bt, false, true).array());
          results.push_back(F::matmul(at, b, true, false).array());
        }
        Variable c(Array::randn({3, 9, 5}, 65, DType::f64)), d(Array::randn({3, 5, 100}, 66, DType::f64));
        results.push_back(F::batch_matmul(c, d).array());
        return results;
      },
      {"kiln_gemm_f32", "kiln_batch_gemm_f64"}, 1e-4);
}

TEST_F(Gemm, Transposed) {
  expect_same(
      [] {
        Variable a(Array::randn({13, 21}, 3)), at(Array::randn({21, 13}, 4));
        Variable b(Array::randn({21, 9}, 5)), bt(Array::randn({9, 21}, 6));
        return std::vector<Array>{F::matmul(at, b, true, false).array(), F::matmul(a, bt, false, true).array(),
                                  F::matmul(at, bt, true, true).array(), F::matmul(a, b).array()};
      },
      {"kiln_gemm_f32"});
}

// x W^T over several output blocks in rows and columns (200 rows: a full block of 128
// and a partial one; 320 columns: two blocks of 160) and two k panels of 150, on the
// threads: both block dimensions stay parallel (-kiln-sequentialize-small-loops).
TEST_F(Gemm, TransposedBOverSeveralParallelBlocks) {
  expect_same(
      [] {
        Variable a(Array::randn({200, 300}, 13)), bt(Array::randn({320, 300}, 14));
        return std::vector<Array>{F::matmul(a, bt, false, true).array()};
      },
      {"kiln_gemm_f32"}, 1e-3);
}

TEST_F(Gemm, Batched) {
  expect_same(
      [] {
        Variable a(Array::randn({5, 6, 7}, 7)), b(Array::randn({5, 7, 4}, 8));
        Variable at(Array::randn({5, 7, 6}, 9)), bt(Array::randn({5, 4, 7}, 10));
        // Rank 4: the batch dimensions are collapsed into one.
        Variable c(Array::randn({2, 3, 4, 5}, 11)), d(Array::randn({2, 3, 6, 5}, 12));
        return std::vector<Array>{F::batch_matmul(a, b).array(), F::batch_matmul(at, b, true, false).array(),
                                  F::batch_matmul(a, bt, false, true).array(),
                                  F::batch_matmul(at, bt, true, true).array(), F::matmul(c, d, false, true).array()};
      },
      {"kiln_batch_gemm_f32"});
}

TEST_F(Gemm, Float64) {
  expect_same(
      [] {
        Variable a(Array::randn({17, 23}, 13, DType::f64)), b(Array::randn({23, 11}, 14, DType::f64));
        Variable c(Array::randn({3, 4, 5}, 15, DType::f64)), d(Array::randn({3, 6, 5}, 16, DType::f64));
        return std::vector<Array>{F::matmul(a, b).array(), F::matmul(b, a, true, true).array(),
                                  F::batch_matmul(c, d, false, true).array()};
      },
      {"kiln_gemm_f64", "kiln_batch_gemm_f64"}, 1e-10);
}

// A two-layer MLP's training step: forward matmuls, and the backward ones (x^T gy
// for W's gradient, gy W for the hidden layer's) with transposed operands.
TEST_F(Gemm, TrainingStepGradients) {
  expect_same(
      [] {
        Parameter W1(Array::randn({32, 20}, 21)), b1(Array::randn({32}, 22));
        Parameter W2(Array::randn({10, 32}, 23)), b2(Array::randn({10}, 24));
        Variable x(Array::randn({16, 20}, 25));
        Variable t(Array::from<int32_t>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5}, {16}));
        Variable h = F::relu(F::linear(x, W1, b1));
        Variable loss = F::softmax_cross_entropy(F::linear(h, W2, b2), t);
        loss.backward();
        return std::vector<Array>{loss.array(), W1.grad(), b1.grad(), W2.grad(), b2.grad()};
      },
      {"kiln_gemm_f32"});
}

// SGD training steps of an MLP whose layers are 40 wide (split 32 + 8 on AVX-512 and
// AVX2 alike) over a batch of 20 (partial register tiles): the generated GEMMs with
// their epilogues fused (KILN_FUSE_EPILOGUES=1: bias + relu + mask forward, the relu mask
// of the backward, the SGD update of each weight gradient) give OpenBLAS's parameters,
// and the same as with the epilogues as loops of their own (KILN_FUSE_EPILOGUES=0).
TEST_F(Gemm, TrainingStepsWithFusedEpilogues) {
  struct Net : Chain {
    L::Linear l1{24, 40}, l2{40, 40}, l3{40, 10};
    Net() {
      add_link("l1", l1);
      add_link("l2", l2);
      add_link("l3", l3);
    }
  };
  Graph steps = [] {
    set_random_seed(7);
    Net net;
    optimizers::SGD opt(0.1);
    opt.setup(net);
    std::vector<int32_t> labels(20);
    for (int i = 0; i < 20; ++i) labels[i] = i % 10;
    for (int step = 0; step < 3; ++step) {
      Variable x(Array::randn({20, 24}, 40 + step), false);
      Variable t(Array::from<int32_t>(labels, {20}), false);
      net.cleargrads();
      Variable h = F::relu(net.l2(F::relu(net.l1(x))));
      Variable loss = F::softmax_cross_entropy(net.l3(h), t);
      loss.backward();
      opt.update();
    }
    std::vector<Array> params;
    for (auto& [name, p] : net.namedparams()) params.push_back(p.array());
    return params;
  };
  GemmRun blas = run_with("blas", steps);
  setenv("KILN_FUSE_EPILOGUES", "1", 1);
  GemmRun fused = run_with("codegen", steps);
  setenv("KILN_FUSE_EPILOGUES", "0", 1);
  GemmRun unfused = run_with("codegen", steps);
  unsetenv("KILN_FUSE_EPILOGUES");
  EXPECT_THAT(blas.llvm_ir, HasSubstr("_mlir_ciface_kiln_gemm_f32"));
  EXPECT_THAT(fused.llvm_ir, Not(HasSubstr("gemm_f")));
  EXPECT_NE(fused.llvm_ir, unfused.llvm_ir);
  ASSERT_EQ(blas.results.size(), 6u);
  expect_arrays_near(blas.results, fused.results, 1e-4);
  expect_arrays_near(unfused.results, fused.results, 1e-5);
}

// The GEMM choice is part of the disk-cache key: switching it compiles again
// instead of reusing the other variant's object.
TEST_F(Gemm, ChoiceIsPartOfTheDiskCacheKey) {
  auto graph = [] {
    Variable a(Array::randn({7, 3}, 31)), b(Array::randn({3, 8}, 32));
    return std::vector<Array>{F::matmul(a, b).array()};
  };
  // A fresh, enabled disk cache for this test (ctest turns the cache off for unit tests).
  std::string saved_dir = std::getenv("KILN_CACHE_DIR") ? std::getenv("KILN_CACHE_DIR") : "";
  std::string saved_max = std::getenv("KILN_CACHE_MAX_MB") ? std::getenv("KILN_CACHE_MAX_MB") : "";
  char dir[] = "/tmp/kiln-gemm-cacheXXXXXX";
  setenv("KILN_CACHE_DIR", mkdtemp(dir), 1);
  setenv("KILN_CACHE_MAX_MB", "64", 1);
  auto restore = [&] {
    if (saved_dir.empty()) unsetenv("KILN_CACHE_DIR"); else setenv("KILN_CACHE_DIR", saved_dir.c_str(), 1);
    if (saved_max.empty()) unsetenv("KILN_CACHE_MAX_MB"); else setenv("KILN_CACHE_MAX_MB", saved_max.c_str(), 1);
    std::filesystem::remove_all(dir);
  };
  reset_cache_stats();
  GemmRun blas = run_with("blas", graph);
  EXPECT_EQ(cache_stats().misses, 1);
  GemmRun loops = run_with("codegen", graph);
  EXPECT_EQ(cache_stats().misses, 2);
  EXPECT_EQ(cache_stats().disk_hits, 0);
  GemmRun again = run_with("blas", graph);
  EXPECT_EQ(cache_stats().disk_hits, 1);
  EXPECT_EQ(again.results[0].to_vector<float>(), blas.results[0].to_vector<float>());
  restore();
}

// KILN_GEMM unset: on a host with AVX-512 the matmuls are generated (no GEMM call) and
// the convolution stays a runtime call; elsewhere both call OpenBLAS. Either way the
// results are BLAS's.
TEST_F(Gemm, DefaultFollowsTheTarget) {
  Graph graph = [] {
    Variable x(Array::randn({2, 3, 8, 8}, 51)), w(Array::randn({4, 3, 3, 3}, 52));
    Variable a(Array::randn({40, 72}, 53)), b(Array::randn({72, 24}, 54));
    return std::vector<Array>{F::matmul(a, b).array(), F::convolution_2d(x, w).array()};
  };
  GemmRun blas = run_with("blas", graph);
  GemmRun standard = run_with(nullptr, graph);
  EXPECT_THAT(standard.llvm_ir, HasSubstr("_mlir_ciface_kiln_conv2d_f32"));
  if (__builtin_cpu_supports("avx512f"))
    EXPECT_THAT(standard.llvm_ir, Not(HasSubstr("gemm_f")));
  else
    EXPECT_THAT(standard.llvm_ir, HasSubstr("_mlir_ciface_kiln_gemm_f32"));
  expect_arrays_near(blas.results, standard.results, 1e-4);
}

TEST_F(Gemm, UnknownChoiceIsAnError) {
  setenv("KILN_GEMM", "fast", 1);
  clear_memory_cache();
  Variable a(Array::randn({2, 3}, 41)), b(Array::randn({3, 2}, 42));
  try {
    (void)F::matmul(a, b).array();
    ADD_FAILURE() << "no error for KILN_GEMM=fast";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("KILN_GEMM"));
  }
  unsetenv("KILN_GEMM");
  clear_memory_cache();
}

// KILN_CPU_CAPABILITY=avx2 on an AVX-512 host: the graphs are compiled again, for AVX2 (the
// generated GEMM's 6x16 register tiles: rows of two 8-float vectors, no 16-float FMA), with the
// same results; by default its matmuls are OpenBLAS calls there, as on an AVX2 host. A value
// kiln does not know is an error naming the variable.
TEST_F(Gemm, CpuCapabilityAvx2CompilesTheAvx2Code) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "the host has no AVX-512";
  Graph graph = [] {
    Variable a(Array::randn({50, 40}, 61)), b(Array::randn({40, 64}, 62));
    return std::vector<Array>{F::matmul(a, b).array()};
  };
  GemmRun wide = run_with("codegen", graph);
  setenv("KILN_CPU_CAPABILITY", "avx2", 1);
  GemmRun narrow = run_with("codegen", graph);
  GemmRun standard = run_with(nullptr, graph);
  unsetenv("KILN_CPU_CAPABILITY");
  // Register rows of 32 floats (two 512-bit vectors) with AVX-512, 16 (two 256-bit) with AVX2.
  auto has = [](const std::string& ir, const char* text) { return ir.find(text) != std::string::npos; };
  EXPECT_TRUE(has(wide.llvm_ir, "@llvm.fmuladd.v32f32")) << "no 32-float FMA rows in the AVX-512 code";
  EXPECT_FALSE(has(narrow.llvm_ir, "@llvm.fmuladd.v32f32")) << "32-float FMA rows in the AVX2 code";
  EXPECT_TRUE(has(narrow.llvm_ir, "@llvm.fmuladd.v16f32")) << "no 16-float FMA rows in the AVX2 code";
  EXPECT_TRUE(has(standard.llvm_ir, "_mlir_ciface_kiln_gemm_f32")) << "the AVX2 default is no OpenBLAS call";
  expect_arrays_near(wide.results, narrow.results, 1e-4);
  expect_arrays_near(wide.results, standard.results, 1e-4);

  setenv("KILN_CPU_CAPABILITY", "avx1024", 1);
  clear_memory_cache();
  try {
    (void)graph();
    ADD_FAILURE() << "no error for KILN_CPU_CAPABILITY=avx1024";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("KILN_CPU_CAPABILITY"));
    EXPECT_THAT(e.what(), HasSubstr("avx1024"));
  }
  unsetenv("KILN_CPU_CAPABILITY");
  clear_memory_cache();
}

// The runtime function itself, on layouts the compiled graphs rarely produce: a column-major C
// (computed as C^T += B^T A^T), an operand with no unit stride (copied first), a broadcast
// (zero-stride) operand, and transposes; C accumulates, or is overwritten (accumulate = 0).
// Declared by kiln/gemm_abi.h, the header the pass and the runtime share.
using GemmTestMemRef2D = gemm_abi::StridedMemRef<float, 2>;

TEST(GemmRuntime, AnyStridesAndTransposes) {
  const int64_t m = 5, n = 4, k = 3;
  std::vector<float> storage(1000);
  for (size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<float>((i * 37) % 11) - 5.0f;
  struct Layout {
    int64_t offset, rs, cs;  // of the logical (untransposed operand) rows x cols view
  };
  // Element (i, j) of an operand stored with `layout` (strides of the memref as passed, which is
  // op(X)'s transpose when the flag is set).
  auto desc = [&](float* base, int64_t rows, int64_t cols, Layout l) {
    return GemmTestMemRef2D{base, base, l.offset, {rows, cols}, {l.rs, l.cs}};
  };
  const std::vector<Layout> aLayouts{{0, k, 1}, {7, 1, m}, {3, 2 * k, 2}, {11, 0, 1}};
  const std::vector<Layout> bLayouts{{100, n, 1}, {200, 1, k}, {300, 3, 9}};
  const std::vector<Layout> cLayouts{{0, n, 1}, {0, 1, m}, {0, 2 * n, 2}};
  for (int accumulate = 0; accumulate < 2; ++accumulate)
    for (int t = 0; t < 4; ++t)
      for (const Layout& la : aLayouts)
        for (const Layout& lb : bLayouts)
          for (const Layout& lc : cLayouts) {
            const int ta = t & 1, tb = t >> 1;
            // Stored shapes: A is k x m when transposed, B is n x k when transposed.
            GemmTestMemRef2D a = desc(storage.data(), ta ? k : m, ta ? m : k, la);
            GemmTestMemRef2D b = desc(storage.data(), tb ? n : k, tb ? k : n, lb);
            std::vector<float> cBuf(100, 0.5f);
            GemmTestMemRef2D c = desc(cBuf.data(), m, n, lc);
            auto at = [](const GemmTestMemRef2D& d, int64_t i, int64_t j) {
              return d.aligned[d.offset + i * d.strides[0] + j * d.strides[1]];
            };
            std::vector<float> expected(m * n);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) {
                double sum = accumulate ? at(c, i, j) : 0.0;
                for (int64_t p = 0; p < k; ++p)
                  sum += static_cast<double>(ta ? at(a, p, i) : at(a, i, p)) * (tb ? at(b, j, p) : at(b, p, j));
                expected[i * n + j] = static_cast<float>(sum);
              }
            _mlir_ciface_kiln_gemm_f32(&a, &b, &c, ta, tb, accumulate);
            SCOPED_TRACE(::testing::Message() << "accumulate " << accumulate << " ta " << ta << " tb " << tb
                                              << " A strides " << la.rs << "," << la.cs << " B strides " << lb.rs
                                              << "," << lb.cs << " C strides " << lc.rs << "," << lc.cs);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(at(c, i, j), expected[i * n + j], 1e-4) << i << "," << j;
          }
}

// The 2x2 stride-2 max-pooling gradient (the runtime's vector kernels on AVX-512 / AVX2
// hosts, 16 or 8 windows a step) against direct loops: output widths around and between
// the vector widths (masked or scalar tails), x with padded rows at an offset, values with
// ties (the first maximum in window order wins), gx overwritten or accumulated into.
TEST(PoolRuntime, MaxGradient2x2MatchesDirectLoopsOnOddWidths) {
  using M = gemm_abi::StridedMemRef<float, 4>;
  const int64_t n = 2, c = 3, oh = 3;
  for (int64_t ow : {1, 7, 8, 9, 15, 16, 17, 24, 33})
    for (int accumulate = 0; accumulate < 2; ++accumulate) {
      SCOPED_TRACE(::testing::Message() << "ow " << ow << " accumulate " << accumulate);
      const int64_t h = 2 * oh, w = 2 * ow, xr = w + 3;
      std::vector<float> xs(static_cast<size_t>(5 + n * c * h * xr)), gys(static_cast<size_t>(n * c * oh * ow)),
          gxs(static_cast<size_t>(n * c * h * w));
      for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 7) % 5);  // many ties
      for (size_t i = 0; i < gys.size(); ++i) gys[i] = static_cast<float>(i % 11) + 1.0f;
      for (size_t i = 0; i < gxs.size(); ++i) gxs[i] = 0.5f * static_cast<float>(i % 3);
      M x{xs.data(), xs.data(), 5, {n, c, h, w}, {c * h * xr, h * xr, xr, 1}};
      M gy{gys.data(), gys.data(), 0, {n, c, oh, ow}, {c * oh * ow, oh * ow, ow, 1}};
      M gx{gxs.data(), gxs.data(), 0, {n, c, h, w}, {c * h * w, h * w, w, 1}};
      std::vector<float> expected(gxs.size());
      for (size_t i = 0; i < gxs.size(); ++i) expected[i] = accumulate ? gxs[i] : 0.0f;
      for (int64_t p = 0; p < n * c; ++p)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j) {
            int64_t by = 2 * i, bx = 2 * j;
            auto xAt = [&](int64_t y, int64_t z) { return xs[static_cast<size_t>(5 + p * h * xr + y * xr + z)]; };
            for (int64_t t = 1; t < 4; ++t)
              if (xAt(2 * i + t / 2, 2 * j + t % 2) > xAt(by, bx)) by = 2 * i + t / 2, bx = 2 * j + t % 2;
            expected[static_cast<size_t>(p * h * w + by * w + bx)] += gys[static_cast<size_t>(p * oh * ow + i * ow + j)];
          }
      _mlir_ciface_kiln_pool2d_grad_f32(&x, &gy, &gx, gemm_abi::kPoolMax, 2, 2, 2, 2, 0, 0, accumulate);
      for (size_t i = 0; i < gxs.size(); ++i) ASSERT_EQ(gxs[i], expected[i]) << "gx element " << i;
    }
}

// The pooling runtime (kiln_pool2d_f32 / _f64) against direct loops: the vectorized 2x2
// stride-2 max at widths around the vector length, general windows with strides and
// dilations, sums, f64, x at an offset with padded rows, NaN (propagated, as
// arith.maximumf) and signed zeros (+0 wins), overwritten or accumulated into.
template <typename T>
T referenceMax(T a, T b) {
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}
template <typename T>
void expectPoolForwardMatches(int64_t ow, int64_t kh, int64_t kw, int64_t s, int64_t d, int32_t kind, bool accumulate) {
  using M = gemm_abi::StridedMemRef<T, 4>;
  SCOPED_TRACE(::testing::Message() << "ow " << ow << " window " << kh << "x" << kw << " stride " << s << " dilation "
                                    << d << " kind " << kind << " accumulate " << accumulate);
  const int64_t n = 2, c = 3, oh = 3;
  const int64_t h = (oh - 1) * s + d * (kh - 1) + 1, w = (ow - 1) * s + d * (kw - 1) + 1, xr = w + 3;
  std::vector<T> xs(static_cast<size_t>(5 + n * c * h * xr)), ys(static_cast<size_t>(n * c * oh * ow));
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<T>(static_cast<int>((i * 7) % 9) - 4) * T(0.5);
  // The first window: -0, +0, -1, -0 (its max is +0); a NaN in a later one.
  xs[5] = -T(0), xs[6] = T(0), xs[static_cast<size_t>(5 + xr)] = T(-1), xs[static_cast<size_t>(6 + xr)] = -T(0);
  xs[static_cast<size_t>(5 + xr + 3)] = std::numeric_limits<T>::quiet_NaN();
  for (size_t i = 0; i < ys.size(); ++i) ys[i] = static_cast<T>(static_cast<int>(i % 5) - 2);
  M x{xs.data(), xs.data(), 5, {n, c, h, w}, {c * h * xr, h * xr, xr, 1}};
  M y{ys.data(), ys.data(), 0, {n, c, oh, ow}, {c * oh * ow, oh * ow, ow, 1}};
  std::vector<T> expected(ys.size());
  for (int64_t p = 0; p < n * c; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const size_t at = static_cast<size_t>(p * oh * ow + i * ow + j);
        T acc = accumulate ? ys[at] : kind == gemm_abi::kPoolMax ? -std::numeric_limits<T>::infinity() : T(0);
        for (int64_t a = 0; a < kh; ++a)
          for (int64_t b = 0; b < kw; ++b) {
            const T v = xs[static_cast<size_t>(5 + p * h * xr + (i * s + a * d) * xr + j * s + b * d)];
            acc = kind == gemm_abi::kPoolMax ? referenceMax(acc, v) : acc + v;
          }
        expected[at] = acc;
      }
  if constexpr (std::is_same_v<T, float>)
    _mlir_ciface_kiln_pool2d_f32(&x, &y, kind, kh, kw, s, s, d, d, accumulate);
  else
    _mlir_ciface_kiln_pool2d_f64(&x, &y, kind, kh, kw, s, s, d, d, accumulate);
  for (size_t i = 0; i < ys.size(); ++i) {
    if (std::isnan(expected[i])) {
      ASSERT_TRUE(std::isnan(ys[i])) << "y element " << i;
      continue;
    }
    ASSERT_EQ(ys[i], expected[i]) << "y element " << i;
    ASSERT_EQ(std::signbit(ys[i]), std::signbit(expected[i])) << "the sign of y element " << i;
  }
}

TEST(PoolRuntime, ForwardMatchesDirectLoops) {
  for (int accumulate = 0; accumulate < 2; ++accumulate) {
    for (int64_t ow : {1, 7, 15, 16, 17, 33}) expectPoolForwardMatches<float>(ow, 2, 2, 2, 1, gemm_abi::kPoolMax, accumulate);
    expectPoolForwardMatches<float>(9, 3, 3, 2, 1, gemm_abi::kPoolMax, accumulate);
    expectPoolForwardMatches<float>(9, 2, 3, 1, 2, gemm_abi::kPoolMax, accumulate);
    expectPoolForwardMatches<float>(9, 3, 3, 2, 1, gemm_abi::kPoolSum, accumulate);
    expectPoolForwardMatches<double>(17, 2, 2, 2, 1, gemm_abi::kPoolMax, accumulate);
    expectPoolForwardMatches<double>(5, 3, 2, 1, 1, gemm_abi::kPoolSum, accumulate);
  }
}

// The convolution runtime (kiln_conv2d_f32, kiln_conv2d_grad_filter_f32) against direct loops:
// batches of 1 (one thread, OpenBLAS threading the GEMM) and of several images (spread over the
// worker threads, and the filter gradient summed in parts), strides and dilations, y / gy as NCHW
// planes or channels-last (no plane matrices: a result image copied out, a gy image packed), x at
// an offset with padded rows, overwritten or accumulated into.
using ConvTestMemRef = gemm_abi::StridedMemRef<float, 4>;

TEST(ConvRuntime, MatchesDirectLoopsOnBatchesStridesAndLayouts) {
  const int64_t c = 3, h = 7, w = 8, f = 5, kh = 3, kw = 2;
  struct Geometry {
    int64_t sh, sw, dh, dw;
  };
  for (int64_t n : {1, 3, 11})
    for (Geometry g : {Geometry{1, 1, 1, 1}, Geometry{2, 1, 1, 2}})
      for (bool channelsLast : {false, true})
        for (int accumulate = 0; accumulate < 2; ++accumulate) {
          const int64_t oh = (h - g.dh * (kh - 1) - 1) / g.sh + 1, ow = (w - g.dw * (kw - 1) - 1) / g.sw + 1;
          // x: rows padded to w + 3, at offset 5.
          const int64_t xr = w + 3;
          std::vector<float> xs(static_cast<size_t>(5 + n * c * h * xr)), ws(static_cast<size_t>(f * c * kh * kw));
          for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 29) % 13) - 6.0f;
          for (size_t i = 0; i < ws.size(); ++i) ws[i] = static_cast<float>((i * 17) % 7) - 3.0f;
          ConvTestMemRef x{xs.data(), xs.data(), 5, {n, c, h, w}, {c * h * xr, h * xr, xr, 1}};
          ConvTestMemRef wm{ws.data(), ws.data(), 0, {f, c, kh, kw}, {c * kh * kw, kh * kw, kw, 1}};
          auto outStrides = [&](ConvTestMemRef& m) {
            if (channelsLast) {
              m.strides[0] = oh * ow * f, m.strides[1] = 1, m.strides[2] = ow * f, m.strides[3] = f;
            } else {
              m.strides[0] = f * oh * ow, m.strides[1] = oh * ow, m.strides[2] = ow, m.strides[3] = 1;
            }
          };
          auto xAt = [&](int64_t b, int64_t ch, int64_t i, int64_t j) {
            return static_cast<double>(x.aligned[x.offset + b * x.strides[0] + ch * x.strides[1] + i * x.strides[2] + j]);
          };
          auto at = [](const ConvTestMemRef& m, int64_t a, int64_t b, int64_t i, int64_t j) -> float& {
            return m.aligned[m.offset + a * m.strides[0] + b * m.strides[1] + i * m.strides[2] + j * m.strides[3]];
          };
          SCOPED_TRACE(::testing::Message() << "n " << n << " stride " << g.sh << "," << g.sw << " dilate " << g.dh
                                            << "," << g.dw << " channels last " << channelsLast << " accumulate "
                                            << accumulate);
          // Forward.
          std::vector<float> ys(static_cast<size_t>(n * f * oh * ow), 0.25f);
          ConvTestMemRef y{ys.data(), ys.data(), 0, {n, f, oh, ow}, {}};
          outStrides(y);
          std::vector<double> expected;
          for (int64_t b = 0; b < n; ++b)
            for (int64_t o = 0; o < f; ++o)
              for (int64_t yy = 0; yy < oh; ++yy)
                for (int64_t xx = 0; xx < ow; ++xx) {
                  double sum = accumulate ? at(y, b, o, yy, xx) : 0.0;
                  for (int64_t ch = 0; ch < c; ++ch)
                    for (int64_t i = 0; i < kh; ++i)
                      for (int64_t j = 0; j < kw; ++j)
                        sum += xAt(b, ch, yy * g.sh + i * g.dh, xx * g.sw + j * g.dw) * at(wm, o, ch, i, j);
                  expected.push_back(sum);
                }
          _mlir_ciface_kiln_conv2d_f32(&x, &wm, &y, g.sh, g.sw, g.dh, g.dw, accumulate);
          size_t q = 0;
          for (int64_t b = 0; b < n; ++b)
            for (int64_t o = 0; o < f; ++o)
              for (int64_t yy = 0; yy < oh; ++yy)
                for (int64_t xx = 0; xx < ow; ++xx, ++q)
                  ASSERT_NEAR(at(y, b, o, yy, xx), expected[q], 1e-3) << "y " << b << "," << o << "," << yy << "," << xx;
          // Filter gradient of that y as gy.
          std::vector<float> gws(ws.size(), 0.5f);
          ConvTestMemRef gw{gws.data(), gws.data(), 0, {f, c, kh, kw}, {c * kh * kw, kh * kw, kw, 1}};
          expected.clear();
          for (int64_t o = 0; o < f; ++o)
            for (int64_t ch = 0; ch < c; ++ch)
              for (int64_t i = 0; i < kh; ++i)
                for (int64_t j = 0; j < kw; ++j) {
                  double sum = accumulate ? at(gw, o, ch, i, j) : 0.0;
                  for (int64_t b = 0; b < n; ++b)
                    for (int64_t yy = 0; yy < oh; ++yy)
                      for (int64_t xx = 0; xx < ow; ++xx)
                        sum += xAt(b, ch, yy * g.sh + i * g.dh, xx * g.sw + j * g.dw) * at(y, b, o, yy, xx);
                  expected.push_back(sum);
                }
          _mlir_ciface_kiln_conv2d_grad_filter_f32(&x, &y, &gw, g.sh, g.sw, g.dh, g.dw, accumulate);
          for (size_t i = 0; i < gws.size(); ++i)
            ASSERT_NEAR(gws[i], expected[i], 1e-5 * std::max(1.0, std::fabs(expected[i]))) << "gw " << i;
        }
}

namespace kiln::runtime {  // runtime/src/parallel.h, not a public header
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);
}

// Once the process has loaded libomp with RTLD_GLOBAL (the JIT does, for the generated
// loops), the runtime's parallel loops (convolutions image by image, pooling planes) run
// on libomp's team instead of on a pool of the runtime's own beside libomp's spinning
// workers: every chunk inside an OpenMP parallel region of KILN_NUM_THREADS threads, each
// iteration once, a nested call inline; a convolution gives the same bits on both.
TEST(ParallelRuntime, LoopsRunOnTheOpenMPTeamOnceLibompIsLoaded) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "libomp is not instrumented: TSan cannot see its barriers (a sanitizer build runs 1 thread)";
#endif
  const char* saved = std::getenv("KILN_NUM_THREADS");
  const std::string saved_value = saved ? saved : "";
  setenv("KILN_NUM_THREADS", "2", 1);
  // A convolution over 8 images, on the runtime's pool while libomp is not loaded yet.
  const int64_t n = 8, c = 4, h = 9, w = 10, f = 6;
  std::vector<float> xs(static_cast<size_t>(n * c * h * w)), ws(static_cast<size_t>(f * c * 9));
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 29) % 13) * 0.37f - 2.0f;
  for (size_t i = 0; i < ws.size(); ++i) ws[i] = static_cast<float>((i * 17) % 7) * 0.61f - 1.5f;
  ConvTestMemRef x{xs.data(), xs.data(), 0, {n, c, h, w}, {c * h * w, h * w, w, 1}};
  ConvTestMemRef wm{ws.data(), ws.data(), 0, {f, c, 3, 3}, {c * 9, 9, 3, 1}};
  auto convolve = [&] {
    std::vector<float> ys(static_cast<size_t>(n * f * (h - 2) * (w - 2)));
    ConvTestMemRef y{ys.data(), ys.data(), 0, {n, f, h - 2, w - 2}, {f * (h - 2) * (w - 2), (h - 2) * (w - 2), w - 2, 1}};
    _mlir_ciface_kiln_conv2d_f32(&x, &wm, &y, 1, 1, 1, 1, 0);
    return ys;
  };
  const bool loaded_before = dlopen("libomp.so.5", RTLD_NOW | RTLD_NOLOAD) != nullptr;
  std::vector<float> on_pool = loaded_before ? std::vector<float>() : convolve();

  void* omp = dlopen("libomp.so.5", RTLD_NOW | RTLD_GLOBAL);
  ASSERT_NE(omp, nullptr) << dlerror();
  auto in_parallel = reinterpret_cast<int (*)()>(dlsym(omp, "omp_in_parallel"));
  auto team_size = reinterpret_cast<int (*)()>(dlsym(omp, "omp_get_num_threads"));
  ASSERT_TRUE(in_parallel && team_size);
  std::mutex mutex;
  std::vector<int> hits(1000, 0);
  std::vector<int> teams;
  int64_t nested = 0;
  bool outside = false;
  kiln::runtime::parallel_for(1000, 1, [&](int64_t lo, int64_t hi) {
    int64_t inner = 0;
    kiln::runtime::parallel_for(10, 1, [&](int64_t a, int64_t b) { inner += b - a; });  // inline: no data race
    std::lock_guard<std::mutex> lock(mutex);
    outside |= in_parallel() == 0;
    teams.push_back(team_size());
    for (int64_t i = lo; i < hi; ++i) ++hits[static_cast<size_t>(i)];
    nested += inner;
  });
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_FALSE(outside) << "a chunk ran outside an OpenMP parallel region";
  EXPECT_THAT(teams, ::testing::Each(2));
  EXPECT_THAT(hits, ::testing::Each(1));
  EXPECT_EQ(nested, 10 * static_cast<int64_t>(teams.size()));
  std::vector<float> on_team = convolve();
  if (!loaded_before) EXPECT_EQ(on_team, on_pool);
  for (int repeat = 0; repeat < 3; ++repeat) EXPECT_EQ(convolve(), on_team);
  if (saved)
    setenv("KILN_NUM_THREADS", saved_value.c_str(), 1);
  else
    unsetenv("KILN_NUM_THREADS");
}

// Where OpenBLAS (a DYNAMIC_ARCH build) did not recognize the CPU and fell back to SSE3
// kernels (0.3.21 on Intel family 6 model 207: Prescott), libkiln has it select the kernels
// of the host's ISA when it loads: a core with AVX2 or AVX-512 kernels on a host with AVX2 +
// FMA (GemmRuntime.AnyStridesAndTransposes and ConvRuntime.* check what they compute).
// OPENBLAS_CORETYPE set (the user's choice, kept) or a host without AVX2: skipped.
TEST(GemmRuntime, OpenBlasRunsKernelsOfTheHostsVectorIsa) {
  if (std::getenv("OPENBLAS_CORETYPE")) GTEST_SKIP() << "OPENBLAS_CORETYPE is set: OpenBLAS keeps it";
  if (!dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init")) GTEST_SKIP() << "not a DYNAMIC_ARCH OpenBLAS";
  auto corename = reinterpret_cast<char* (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  ASSERT_NE(corename, nullptr);
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) GTEST_SKIP() << "no AVX2 + FMA here";
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  const std::vector<std::string> vector_cores = {"Haswell",  "Zen",        "Excavator",
                                                 "SkylakeX", "Cooperlake", "SapphireRapids"};
  EXPECT_THAT(vector_cores, ::testing::Contains(std::string(corename()))) << "AVX-512 host: " << avx512;
}
