// Errors found while a graph runs, on every backend: labels and ids out of range
// (kiln.check_range's status, turned into kiln::Error after the call), and debug
// mode (kiln::set_debug, KILN_DEBUG=1), which names the op that produced a NaN or inf.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "on_backend.h"
#include "error_of.h"

using namespace kiln;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string here(int line) { return fmt::format("runtime_checks_test.cpp:{}:", line); }

INSTANTIATE_TEST_SUITE_P(Backends, OnBackend, ::testing::Values("cpu", "interp"),
                         [](const auto& info) { return std::string(info.param); });
// The generated CUDA kernels (the status of a label check computed by softmax_cross_entropy's
// row kernel): run by ctest's cuda-emulated/runtime_checks (KILN_CUDA_EMULATE=1), else skipped.
INSTANTIATE_TEST_SUITE_P(CudaEmulated, OnBackend, ::testing::Values("cuda"),
                         [](const auto& info) { return std::string(info.param); });

// ---- labels and ids out of range ---------------------------------------------------

TEST_P(OnBackend, SoftmaxCrossEntropyLabelAboveRangeRaises) {
  Variable x(Array::randn({4, 10}, 1));
  Variable t(Array::from<int32_t>({1, 12, 3, 4}, {4}), false);
  int line = __LINE__ + 1;
  Variable loss = F::softmax_cross_entropy(x, t);
  EXPECT_THAT(error_of([&] { loss.array(); }),
              AllOf(HasSubstr(here(line)), HasSubstr("softmax_cross_entropy"), HasSubstr("0 <= t < 10 or t == -1"),
                    HasSubstr("t[1] = 12")));
}

TEST_P(OnBackend, SoftmaxCrossEntropyNegativeLabelRaises) {
  Variable x(Array::randn({2, 10, 3}, 2));  // (N, C, d): t is (N, d)
  Variable t(Array::from<int64_t>({0, 9, 2, -5, 1, 1}, {2, 3}), false);
  Variable loss = F::softmax_cross_entropy(x, t);
  EXPECT_THAT(error_of([&] { loss.array(); }), AllOf(HasSubstr("0 <= t < 10 or t == -1"), HasSubstr("t[1, 0] = -5")));
}

// Every label 10 of 10 classes: no "perfectly trained" zero loss, an error, also for the gradient.
TEST_P(OnBackend, AllLabelsOutOfRangeRaiseInTheBackwardGraphToo) {
  Parameter W(Array::randn({10, 5}, 3));
  Variable x(Array::randn({6, 5}, 4));
  Variable t(Array::full({6}, 10, DType::i32), false);
  Variable loss = F::softmax_cross_entropy(F::linear(x, W), t);
  loss.backward();
  EXPECT_THAT(error_of([&] { (void)W.grad(); }), HasSubstr("t[0] = 10"));
}

TEST_P(OnBackend, IgnoreLabelIsNotAnError) {
  Variable x(Array::from<float>({1, 2, 3, 1, 1, 1, 3, 2, 1}, {3, 3}));
  Variable t(Array::from<int32_t>({2, -1, 0}, {3}), false);
  // Rows 0 and 2: -log softmax of (1, 2, 3) at class 2, and of (3, 2, 1) at class 0; row 1 is ignored.
  double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(F::softmax_cross_entropy(x, t).item<float>(), lse - 3.0, 1e-5);
  // Another ignore label: -1 is then out of range.
  Variable t7(Array::from<int32_t>({2, 7, 0}, {3}), false);
  EXPECT_NEAR(F::softmax_cross_entropy(x, t7, true, 7).item<float>(), lse - 3.0, 1e-5);
  Variable loss = F::softmax_cross_entropy(x, t, true, 7);
  EXPECT_THAT(error_of([&] { loss.array(); }), AllOf(HasSubstr("or t == 7"), HasSubstr("t[1] = -1")));
}

// Ids computed in the graph (argmax) were clamped by compiled code, and their gradient dropped.
TEST_P(OnBackend, EmbedIdComputedIdsOutOfRangeRaise) {
  Parameter W(Array::randn({5, 3}, 5));
  Variable scores(Array::from<float>({0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, {2, 7}));
  Variable ids = F::argmax(scores, 1);  // (1, 6): 6 is not a row of W
  int line = __LINE__ + 1;
  Variable y = F::embed_id(ids, W);
  F::sum(y).backward();
  EXPECT_THAT(error_of([&] { (void)W.grad(); }),
              AllOf(HasSubstr(here(line)), HasSubstr("embed_id"), HasSubstr("0 <= x < 5"), HasSubstr("x[1] = 6")));
}

TEST_P(OnBackend, EmbedIdArgumentIdsOutOfRangeRaise) {
  Variable W(Array::zeros({3, 2}));
  Variable ids(Array::from<int32_t>({0, 7, -2}, {3}), false);
  {
    // (A value whose graph failed stays pending while a handle holds it: every realize would
    // compute it again, so it goes out of scope here.)
    Variable y = F::embed_id(ids, W);
    EXPECT_THAT(error_of([&] { y.array(); }), AllOf(HasSubstr("0 <= x < 3`"), HasSubstr("x[1] = 7")));
  }
  // With an ignore label, that label gives a zero row; others are still checked.
  Variable ok(Array::from<int32_t>({2, -1, 0}, {3}), false);
  Variable rows = F::embed_id(ok, Variable(Array::from<float>({1, 2, 3, 4, 5, 6}, {3, 2})), -1);
  EXPECT_EQ(rows.array().to_vector<float>(), (std::vector<float>{5, 6, 0, 0, 1, 2}));
  Variable bad = F::embed_id(ids, W, -1);
  EXPECT_THAT(error_of([&] { bad.array(); }), AllOf(HasSubstr("0 <= x < 3 or x == -1"), HasSubstr("x[1] = 7")));
}

// A graph whose checks pass reports nothing; the same compiled graph then fails on other data.
TEST_P(OnBackend, CheckedGraphRunsAgainWithBadData) {
  reset_cache_stats();
  auto loss_of = [](std::vector<int32_t> labels) {
    Variable x(Array::randn({3, 4}, 6));
    Variable t(Array::from<int32_t>(labels, {3}), false);
    return F::softmax_cross_entropy(x, t);
  };
  EXPECT_TRUE(std::isfinite(loss_of({0, 1, 3}).item<float>()));
  Variable loss = loss_of({0, 4, 3});
  EXPECT_THAT(error_of([&] { loss.array(); }), HasSubstr("t[1] = 4"));
  EXPECT_GE(cache_stats().memory_hits, 1);
}

// ---- debug mode ----------------------------------------------------------------------

TEST_P(OnBackend, DebugModeNamesTheOpThatProducedNaN) {
  set_debug(true);
  EXPECT_TRUE(is_debug());
  Variable x(Array::from<float>({-1.0f, 2.0f}, {2}));
  int line = __LINE__ + 1;
  Variable y = F::log(x);
  Variable z = y * 2.0f + 1.0f;
  EXPECT_THAT(error_of([&] { z.array(); }),
              AllOf(HasSubstr(here(line)), HasSubstr("kiln.log"), HasSubstr("NaN")));
  // Without debug mode the same graph gives NaN.
  set_debug(false);
  EXPECT_FALSE(is_debug());
  Array value = z.array();
  EXPECT_TRUE(std::isnan(value.at(0)));
  EXPECT_NEAR(value.at(1), 2 * std::log(2.0) + 1, 1e-5);
}

TEST_P(OnBackend, DebugModeFindsInfInABatchGraphAndPassesFiniteOnes) {
  set_debug(true);
  Variable ok = F::exp(Variable(Array::randn({8, 3}, 7)));
  EXPECT_NO_THROW(ok.array());
  // log(tanh(0)) = -inf in the second of three ops; a batch of 8 (symbolic on the cpu backend).
  Variable x(Array::from<float>({1, 2, 3, 4, 5, 6, 7, 0}, {8}));
  Variable s = F::tanh(x);
  int line = __LINE__ + 1;
  Variable r = F::sqrt(F::log(s) + 1.0f);
  EXPECT_THAT(error_of([&] { r.array(); }),
              AllOf(HasSubstr(here(line)), HasSubstr("-inf is detected"), HasSubstr("kiln.log")));
}

}  // namespace
