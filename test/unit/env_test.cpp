// kiln::env: parsing of KILN_* variables, one warning per bad value and process, and the fallbacks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/env.h>
#include <kiln/kernel_cache.h>
#include <kiln/kiln.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "scoped_env.h"

using namespace kiln;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A graph big enough for parallel loops (1M elements), computed once.
void run_graph(uint64_t seed) {
  Variable x(Array::randn({1 << 20}, seed));
  Variable y = F::relu(x * 2.0f + 1.0f);
  Array out = y.array();
  Array in = x.array();
  for (int64_t i : {int64_t{0}, int64_t{12345}, (int64_t{1} << 20) - 1})
    ASSERT_FLOAT_EQ(out.at(i), std::max(0.0, 2.0 * in.at(i) + 1.0)) << i;
}

}  // namespace

// ---- the parsers ---------------------------------------------------------------------

TEST(EnvParse, IntUnsetOrEmptyIsTheFallbackSilently) {
  for (const char* text : {static_cast<const char*>(nullptr), ""}) {
    auto p = env::parse_int("KILN_X", text, 4, 1, 8);
    EXPECT_EQ(p.value, 4);
    EXPECT_EQ(p.warning, "");
  }
  auto p = env::parse_int("KILN_X", "7", 4, 1, 8);
  EXPECT_EQ(p.value, 7);
  EXPECT_EQ(p.warning, "");
}

TEST(EnvParse, IntNotANumberOrBelowTheMinimumIsTheFallback) {
  for (const char* text : {"abc", "4x", " 4", "+4", "0", "-3", "2.5", "-99999999999999999999"}) {
    auto p = env::parse_int("KILN_X", text, 4, 1, 8, "the default");
    EXPECT_EQ(p.value, 4) << text;
    EXPECT_EQ(p.warning, std::string("kiln: ignoring KILN_X=") + text +
                             ": expected a whole number from 1 to 8; using 4 (the default)");
  }
}

TEST(EnvParse, IntAboveTheMaximumIsClamped) {
  for (const char* text : {"9", "100000", "99999999999999999999"}) {
    auto p = env::parse_int("KILN_X", text, 4, 1, 8);
    EXPECT_EQ(p.value, 8) << text;
    EXPECT_EQ(p.warning,
              std::string("kiln: KILN_X=") + text + " is too large: expected a whole number from 1 to 8; using 8");
  }
}

TEST(EnvParse, Flag) {
  for (const char* on : {"1", "true", "ON", "yes"}) EXPECT_TRUE(env::parse_flag("KILN_F", on, false).value) << on;
  for (const char* off : {"0", "false", "Off", "no"}) EXPECT_FALSE(env::parse_flag("KILN_F", off, true).value) << off;
  EXPECT_EQ(env::parse_flag("KILN_F", nullptr, true).warning, "");
  auto p = env::parse_flag("KILN_F", "maybe", true);
  EXPECT_TRUE(p.value);
  EXPECT_EQ(p.warning, "kiln: ignoring KILN_F=maybe: expected 0 or 1; using 1");
}

TEST(EnvParse, WarnOncePrintsEachKeyOnce) {
  ::testing::internal::CaptureStderr();
  env::warn_once("EnvParse.key", "kiln: first");
  env::warn_once("EnvParse.key", "kiln: second");
  env::warn_once("EnvParse.other", "kiln: third");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "kiln: first\nkiln: third\n");
}

TEST(EnvParse, MaxThreadsIsAFewTimesTheHardware) {
  EXPECT_GE(env::max_threads(), 8);
  EXPECT_LE(env::max_threads(), 4 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) + 8);
}

// ---- each variable: one warning per process, and the fallback ------------------------

TEST(EnvVariables, BadCacheMaxMbWarnsOnceAndUsesTheDefault) {
  ScopedEnv mb("KILN_CACHE_MAX_MB", "-5");
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(KernelCache::default_max_bytes(), KernelCache::kDefaultMaxBytes);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "KILN_CACHE_MAX_MB"), 1) << err;
  EXPECT_THAT(err, HasSubstr("ignoring KILN_CACHE_MAX_MB=-5: expected a whole number from 0 to"));
  EXPECT_THAT(err, HasSubstr("using 1024 (the default, in megabytes; 0 turns the disk cache off)"));
}

TEST(EnvVariables, BadSymbolicBatchWarnsOnceAndStaysSymbolic) {
  ScopedEnv mb("KILN_SYMBOLIC_BATCH", "perhaps");
  clear_memory_cache();
  ::testing::internal::CaptureStderr();
  CacheStats before = cache_stats();
  for (int64_t batch : {8, 5}) {  // symbolic (the fallback): the second batch size reuses the graph
    Variable x(Array::randn({batch, 3}, 1));
    Variable y = F::relu(x * 3.0f);
    y.array();
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "KILN_SYMBOLIC_BATCH"), 1) << err;
  EXPECT_THAT(err, HasSubstr("kiln: ignoring KILN_SYMBOLIC_BATCH=perhaps: expected 0 or 1; using 1"));
  if (backend_name() == "cpu") EXPECT_EQ(cache_stats().misses - before.misses, 1);
}

TEST(EnvVariables, BadNumThreadsWarnsOnce) {
  ScopedEnv threads("KILN_NUM_THREADS", "many");
  clear_memory_cache();
  ::testing::internal::CaptureStderr();
  run_graph(2);
  run_graph(3);
  EXPECT_EQ(env::num_threads(), 0);  // the default
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "KILN_NUM_THREADS"), 1) << err;
  EXPECT_THAT(err, HasSubstr("kiln: ignoring KILN_NUM_THREADS=many: expected a whole number from 1 to"));
}

// ctest runs each test in its own process: this one sets the thread count
// before anything starts OpenMP (libomp aborted on 100000 threads).
TEST(EnvVariables, HugeNumThreadsIsClampedAndRuns) {
  ScopedEnv threads("KILN_NUM_THREADS", "100000");
  clear_memory_cache();
  ::testing::internal::CaptureStderr();
  run_graph(4);
  Parameter W(Array::randn({64, 256}, 5));
  Variable x(Array::randn({128, 256}, 6));
  Variable loss = F::sum(F::linear(x, W));  // a GEMM: OpenBLAS's threads too
  loss.backward();
  W.grad();
  run_graph(7);
  EXPECT_EQ(env::num_threads(), env::max_threads());
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(count(err, "KILN_NUM_THREADS"), 1) << err;
  EXPECT_THAT(err, HasSubstr("kiln: KILN_NUM_THREADS=100000 is too large: expected a whole number from 1 to " +
                             std::to_string(env::max_threads()) + "; using " + std::to_string(env::max_threads())));
}

TEST(EnvVariables, UnwritableDumpWarnsOnce) {
  // A folder below a regular file can never be created (also not by root).
  fs::path file = fs::temp_directory_path() / ("kiln-env-test-" + std::to_string(::getpid()));
  std::ofstream(file) << "not a folder";
  ScopedEnv dump("KILN_DUMP", (file / "dumps").string());
  ScopedEnv no_disk_cache("KILN_CACHE_MAX_MB", "0");  // every graph is compiled
  clear_memory_cache();
  ::testing::internal::CaptureStderr();
  run_graph(8);
  Variable x(Array::randn({3, 3}, 9));
  Variable y = F::exp(x);
  y.array();
  std::string err = ::testing::internal::GetCapturedStderr();
  fs::remove(file);
  EXPECT_EQ(count(err, "KILN_DUMP"), 1) << err;
  EXPECT_THAT(err, HasSubstr("kiln: KILN_DUMP=" + (file / "dumps").string() + ": cannot create or write this folder ("));
  EXPECT_THAT(err, HasSubstr("); nothing is dumped"));
}

TEST(EnvVariables, DumpOfGraphsFromTheDiskCacheIsExplainedOnce) {
  if (backend_name() != "cpu") GTEST_SKIP() << "only the cpu backend has a disk cache";
  fs::path dir = fs::temp_directory_path() / ("kiln-env-test-dir-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  ScopedEnv cache_dir("KILN_CACHE_DIR", (dir / "cache").string());
  ScopedEnv cache_mb("KILN_CACHE_MAX_MB", "64");
  ScopedEnv dump("KILN_DUMP", (dir / "dump").string());
  clear_memory_cache();
  auto step = [] {
    Variable x(Array::randn({4, 5}, 10));
    Variable y = F::tanh(x * 5.0f);
    y.array();
  };
  step();  // compiled: dumped, and stored in the disk cache
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 2; ++i) {
    clear_memory_cache();
    step();  // loaded from the disk cache: nothing dumped
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  fs::remove_all(dir);
  EXPECT_EQ(count(err, "KILN_DUMP"), 1) << err;
  EXPECT_THAT(err, HasSubstr("graphs loaded from the disk cache ("));
  EXPECT_THAT(err, HasSubstr("KILN_CACHE_MAX_MB=0"));
}
