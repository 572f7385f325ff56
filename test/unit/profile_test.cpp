// KILN_PROFILE: compiled graphs time each kernel (kiln.fusion region) and the report
// has one line per kernel with its calls, time and rate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>
#include <kiln/profile.h>
#include <kiln/optimizers.h>

#include <cstdlib>
#include <sstream>

using namespace kiln;
using ::testing::HasSubstr;

namespace {

// The line of the report whose kernel name contains `what`; "" if none.
std::string line_with(const std::string& report, const std::string& what) {
  std::istringstream in(report);
  std::string line;
  while (std::getline(in, line))
    if (line.find(what) != std::string::npos) return line;
  return {};
}

TEST(Profile, ReportsEveryKernelWithCallsAndRates) {
  setenv("KILN_BACKEND", "cpu", 1);
  setenv("KILN_PROFILE", "1", 1);
  clear_memory_cache();
  reset_profile();
  set_random_seed(0);
  L::Linear l1(8, 16), l2(16, 4);
  Variable x(Array::randn({5, 8}, 1));
  for (int step = 0; step < 3; ++step) {
    Variable y = l2(F::relu(l1(x)));
    EXPECT_EQ(y.array().shape(), (Shape{5, 4}));
  }
  std::string report = profile_report();
  unsetenv("KILN_PROFILE");
  clear_memory_cache();
  EXPECT_THAT(report, HasSubstr("kiln profile: "));
  // Layer 1: the matmul with its bias and relu, one kernel, called once per step.
  std::string l1_line = line_with(report, "contraction:matmul+add+relu");
  ASSERT_FALSE(l1_line.empty()) << report;
  std::istringstream fields(l1_line);
  int64_t calls = 0;
  fields >> calls;
  EXPECT_EQ(calls, 3) << l1_line;
  EXPECT_THAT(l1_line, HasSubstr("GFLOP/s"));
  EXPECT_THAT(l1_line, HasSubstr("profile_test.cpp:"));  // the call site of F::relu / l1
  reset_profile();
  EXPECT_EQ(profile_report(), "");
}

// Kernels are named after the Link whose parameters they read: its path in the
// model, as in Chainer's namedlinks (predictor/l1), forward and backward alike.
struct TwoLayers : Chain {
  L::Linear l1{6, 5}, l2{5, 3};
  TwoLayers() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) { return l2(F::relu(l1(x))); }
};

TEST(Profile, KernelsAreNamedAfterTheirLinks) {
  setenv("KILN_BACKEND", "cpu", 1);
  setenv("KILN_PROFILE", "1", 1);
  clear_memory_cache();
  reset_profile();
  set_random_seed(0);
  L::Classifier<TwoLayers> model;
  optimizers::SGD opt(0.1);
  opt.setup(model);
  Variable x(Array::randn({4, 6}, 2), false);
  Variable t(Array::from<int32_t>({0, 1, 2, 0}, {4}), false);
  model.cleargrads();
  model(x, t).backward();
  opt.update();
  std::string report = profile_report();
  unsetenv("KILN_PROFILE");
  clear_memory_cache();
  reset_profile();
  std::string l1 = line_with(report, "predictor/l1/contraction:matmul+add+relu");
  EXPECT_FALSE(l1.empty()) << report;
  EXPECT_THAT(l1, HasSubstr("profile_test.cpp:"));
  EXPECT_FALSE(line_with(report, "predictor/l2/contraction:matmul+add").empty()) << report;
}

// Ops that are no kiln.fusion region's (a convolution's gradients, pooling) are kernels
// named after their Link and call site too, not after the linalg op they lower to.
struct ConvBlock : Chain {
  L::Convolution2D c{2, 3, 3, 1, 1};
  ConvBlock() { add_link("c", c); }
  Variable operator()(const Variable& x) { return F::max_pooling_2d(F::relu(c(x)), 2); }
};

TEST(Profile, OpsOfNoRegionAreNamedAfterTheirLinks) {
  setenv("KILN_BACKEND", "cpu", 1);
  setenv("KILN_PROFILE", "1", 1);
  clear_memory_cache();
  reset_profile();
  set_random_seed(0);
  ConvBlock block;
  Variable x(Array::randn({2, 2, 6, 6}, 3), false);
  for (int step = 0; step < 2; ++step) {
    block.cleargrads();
    F::sum(block(x)).backward();
    EXPECT_EQ(block.c.W.grad().shape(), (Shape{3, 2, 3, 3}));
  }
  std::string report = profile_report();
  unsetenv("KILN_PROFILE");
  clear_memory_cache();
  reset_profile();
  std::string filter = line_with(report, "c/conv2d_grad_filter");
  ASSERT_FALSE(filter.empty()) << report;
  std::istringstream fields(filter);
  int64_t calls = 0;
  fields >> calls;
  EXPECT_EQ(calls, 2) << filter;
  std::string pool = line_with(report, "pool2d_grad (profile_test.cpp:");
  EXPECT_FALSE(pool.empty()) << report;
  EXPECT_TRUE(line_with(report, "linalg.pooling").empty()) << report;
  EXPECT_TRUE(line_with(report, "linalg.conv").empty()) << report;
}

// Without KILN_PROFILE nothing is timed.
// The generated GEMM's kernels (KILN_GEMM=codegen) count 2 * k FLOPs per output element,
// whichever of their block loop's dimensions have one iteration (a batch of one 128-row
// block and 320 columns in one block; 200 rows in two blocks).
TEST(Profile, GeneratedGemmsCountTheirFlops) {
  setenv("KILN_BACKEND", "cpu", 1);
  setenv("KILN_GEMM", "codegen", 1);
  setenv("KILN_PROFILE", "1", 1);
  clear_memory_cache();
  set_random_seed(0);
  L::Linear l(256, 320, /*nobias=*/true);
  for (int64_t batch : {64, 200}) {
    reset_profile();
    Variable x(Array::randn({batch, 256}, 1), false);
    for (int step = 0; step < 3; ++step) EXPECT_EQ(l(x).array().shape(), (Shape{batch, 320}));
    std::vector<ProfileEntry> entries = profile_entries();
    double flops = 0;
    int64_t calls = 0;
    for (const ProfileEntry& e : entries)
      if (e.kernel.find("matmul") != std::string::npos) flops += e.flops, calls += e.calls;
    EXPECT_EQ(calls, 3) << profile_report();
    EXPECT_EQ(flops, 3.0 * 2 * 256 * 320 * static_cast<double>(batch)) << profile_report();
  }
  unsetenv("KILN_PROFILE");
  unsetenv("KILN_GEMM");
  clear_memory_cache();
  reset_profile();
}

TEST(Profile, OffByDefault) {
  setenv("KILN_BACKEND", "cpu", 1);
  unsetenv("KILN_PROFILE");
  clear_memory_cache();
  reset_profile();
  Variable x(Array::randn({2, 3}, 2));
  EXPECT_EQ(F::relu(x * 2.0).array().shape(), (Shape{2, 3}));
  EXPECT_EQ(profile_report(), "");
}

}  // namespace
