// The compiled CPU backend against the reference interpreter, and its KILN_DUMP files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "expect_arrays.h"

using namespace kiln;
namespace fs = std::filesystem;

namespace {

using Graph = std::function<std::vector<Array>()>;

// Runs `graph` (which records ops and realizes its results) on one backend,
// with an empty in-memory cache so that it is compiled for that backend.
std::vector<Array> run_on(const char* backend, const Graph& graph) {
  setenv("KILN_BACKEND", backend, 1);
  clear_memory_cache();
  std::vector<Array> results = graph();
  clear_memory_cache();
  unsetenv("KILN_BACKEND");
  return results;
}

bool cpu_backend_available() {
  setenv("KILN_BACKEND", "cpu", 1);
  bool ok = true;
  try {
    backend_name();
  } catch (const Error&) {
    ok = false;
  }
  unsetenv("KILN_BACKEND");
  return ok;
}

void expect_same(const Graph& graph, double tolerance = 1e-5) {
  std::vector<Array> expected = run_on("interp", graph);
  expect_arrays_near(run_on("cpu", graph), expected, tolerance);
}

class CpuBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cpu_backend_available()) GTEST_SKIP() << "this build has no -kiln-lower-to-linalg yet";
  }
};

}  // namespace

TEST_F(CpuBackend, ElementwiseChain) {
  expect_same([] {
    Variable x(Array::randn({37, 19}, 1));
    Variable y = F::tanh(x * 2.0f + 1.0f) * F::sigmoid(x) - F::exp(-x) / (F::relu(x) + 3.0f);
    return std::vector<Array>{y.array()};
  });
}

TEST_F(CpuBackend, LargeElementwiseRunsOnThreads) {
  expect_same([] {
    Variable x(Array::randn({512, 300}, 2)), z(Array::randn({512, 300}, 3));
    Variable y = F::exp(F::tanh(x) * z) + x;
    return std::vector<Array>{y.array()};
  });
}

TEST_F(CpuBackend, LinearReluForwardBackward) {
  expect_same([] {
    Parameter W(Array::randn({7, 5}, 11)), b(Array::randn({7}, 12));
    Variable x(Array::randn({4, 5}, 4));
    Variable y = F::relu(F::linear(x, W, b));
    Variable loss = F::sum(y * y);
    loss.backward();
    return std::vector<Array>{y.array(), loss.array(), W.grad(), b.grad()};
  });
}

TEST_F(CpuBackend, MatmulLargeWithBias) {
  expect_same(
      [] {
        Variable a(Array::randn({64, 96}, 5)), b(Array::randn({96, 80}, 6)), bias(Array::randn({80}, 7));
        Variable y = F::relu(F::matmul(a, b) + F::broadcast_to(bias, {64, 80}));
        return std::vector<Array>{y.array()};
      },
      1e-4);
}

TEST_F(CpuBackend, Reductions) {
  expect_same([] {
    Variable x(Array::randn({6, 9}, 8));
    using Axis = std::vector<int64_t>;
    return std::vector<Array>{F::sum(x, Axis{0}).array(), F::sum(x, Axis{1}, true).array(),
                              F::max(x, Axis{1}).array(), F::mean(x).array(),
                              F::softmax(x).array(),      F::log_softmax(x).array()};
  });
}

TEST_F(CpuBackend, SoftmaxCrossEntropyGradient) {
  expect_same([] {
    Parameter W(Array::randn({4, 6}, 13)), b(Array::randn({4}, 14));
    Variable x(Array::randn({5, 6}, 9));
    Variable t(Array::from<int32_t>({0, 3, 1, 2, 3}, {5}));
    Variable loss = F::softmax_cross_entropy(F::linear(x, W, b), t);
    loss.backward();
    return std::vector<Array>{loss.array(), W.grad(), b.grad()};
  });
}

// A large graph's LLVM stage runs in parts on threads (KILN_COMPILE_THREADS): the parts'
// objects link into one kernel that computes what the interpreter does, and the dumped IR
// shows the parts.
TEST_F(CpuBackend, LargeGraphCompilesInPartsOnThreads) {
  fs::path dir = fs::path(KILN_BINARY_DIR) / "test-dump-cpu-parts";
  fs::remove_all(dir);
  setenv("KILN_COMPILE_THREADS", "2", 1);
  setenv("KILN_CACHE_MAX_MB", "0", 1);
  setenv("KILN_DUMP", dir.c_str(), 1);
  expect_same([] {
    Parameter W1(Array::randn({48, 40}, 21)), b1(Array::randn({48}, 22));
    Parameter W2(Array::randn({32, 48}, 23)), b2(Array::randn({32}, 24));
    Parameter W3(Array::randn({10, 32}, 25));
    Variable x(Array::randn({16, 40}, 26));
    Variable t(Array::from<int32_t>({0, 3, 1, 2, 9, 8, 7, 6, 5, 4, 0, 1, 2, 3, 4, 5}, {16}));
    Variable h = F::tanh(F::linear(F::relu(F::linear(x, W1, b1)), W2, b2));
    Variable loss = F::softmax_cross_entropy(F::matmul(h, W3, false, true), t);
    loss.backward();
    return std::vector<Array>{loss.array(), W1.grad(), b1.grad(), W2.grad(), b2.grad(), W3.grad()};
  }, 1e-4);
  unsetenv("KILN_DUMP");
  unsetenv("KILN_CACHE_MAX_MB");
  unsetenv("KILN_COMPILE_THREADS");
  bool parts = false;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".ll") continue;
    std::ifstream ll(entry.path());
    std::string text((std::istreambuf_iterator<char>(ll)), std::istreambuf_iterator<char>());
    parts = parts || text.find("; part 2 of 2") != std::string::npos;
  }
  EXPECT_TRUE(parts) << "no graph was compiled in 2 parts";
}

TEST_F(CpuBackend, DumpWritesEveryStage) {
  fs::path dir = fs::path(KILN_BINARY_DIR) / "test-dump-cpu";
  fs::remove_all(dir);
  setenv("KILN_DUMP", dir.c_str(), 1);
  run_on("cpu", [] {
    Variable x(Array::randn({3, 4}, 10));
    return std::vector<Array>{F::exp(x * 3.0f).array()};
  });
  unsetenv("KILN_DUMP");
  std::vector<std::string> suffixes;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    EXPECT_GT(fs::file_size(entry.path()), 0u) << name;
    suffixes.push_back(name.substr(name.find('.')));
  }
  EXPECT_THAT(suffixes, ::testing::UnorderedElementsAre(".kiln.mlir", ".frontend.mlir", ".fused.mlir", ".linalg.mlir",
                                                        ".ll", ".summary.txt"));
  // The optimized LLVM IR exports only the JIT's entry, kiln_packed_graph: the graph's function
  // and its C wrapper are internal (so unused descriptor arguments are dropped, not passed).
  std::vector<std::string> external;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".ll") continue;
    std::ifstream ll(entry.path());
    for (std::string line; std::getline(ll, line);)
      if (line.rfind("define ", 0) == 0 && line.find(" internal ") == std::string::npos)
        external.push_back(line.substr(line.find('@'), line.find('(') - line.find('@')));
  }
  EXPECT_THAT(external, ::testing::ElementsAre("@kiln_packed_graph"));
}
