// Numerics defined the same on every backend: integer division by zero and
// MIN / -1 (NumPy's answers, never a signal), NaN through relu, argmax and max,
// and kiln's Philox-4x32-10 against the Random123 known-answer vectors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>
#include <kiln/philox.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "on_backend.h"

using namespace kiln;

namespace {

INSTANTIATE_TEST_SUITE_P(Backends, OnBackend, ::testing::Values("cpu", "interp"),
                         [](const auto& info) { return std::string(info.param); });

constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();

// ---- integer division ----------------------------------------------------------------

TEST_P(OnBackend, Int32DivisionByZeroAndMinByMinusOne) {
  Variable a(Array::from<int32_t>({7, -7, 7, -7, 5, kMin32, kMin32, 0, 9}, {9}), false);
  Variable b(Array::from<int32_t>({2, 2, -2, -2, 0, -1, 0, 0, -1}, {9}), false);
  // Truncation toward zero; x / 0 = 0; MIN / -1 = MIN (wraps); 9 / -1 = -9.
  EXPECT_EQ(F::div(a, b).array().to_vector<int32_t>(),
            (std::vector<int32_t>{3, -3, -3, 3, 0, kMin32, 0, 0, -9}));
}

TEST_P(OnBackend, Int64DivisionByZeroAndMinByMinusOne) {
  Variable a(Array::from<int64_t>({kMin64, 12, -12}, {3}), false);
  Variable b(Array::from<int64_t>({-1, 0, 5}, {3}), false);
  EXPECT_EQ(F::div(a, b).array().to_vector<int64_t>(), (std::vector<int64_t>{kMin64, 0, -2}));
}

// A divisor computed in the graph (b - b = 0 everywhere), in a batch of 16 (symbolic on the cpu backend).
TEST_P(OnBackend, DivisionByAComputedZero) {
  std::vector<int32_t> values(16);
  for (int i = 0; i < 16; ++i) values[i] = i * 3 - 20;
  Variable a(Array::from<int32_t>(values, {16}), false);
  Variable zero = a - a;
  EXPECT_EQ(F::div(a, zero).array().to_vector<int32_t>(), std::vector<int32_t>(16, 0));
  Variable minus_one = zero - Variable(Array::full({16}, 1, DType::i32), false);
  std::vector<int32_t> negated(16);
  for (int i = 0; i < 16; ++i) negated[i] = -values[i];
  EXPECT_EQ(F::div(a, minus_one).array().to_vector<int32_t>(), negated);
}

// ---- NaN propagation -----------------------------------------------------------------

TEST_P(OnBackend, ReluPropagatesNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Array y = F::relu(Variable(Array::from<float>({nan, -1.0f, 2.0f, -nan}, {4}))).array();
  EXPECT_TRUE(std::isnan(y.at(0)));
  EXPECT_EQ(y.at(1), 0.0);
  EXPECT_EQ(y.at(2), 2.0);
  EXPECT_TRUE(std::isnan(y.at(3)));
}

TEST_P(OnBackend, ArgmaxReturnsTheFirstNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // Rows: NaN after the maximum; two NaNs; NaN first; no NaN (first of two maxima); all -inf.
  const double inf = std::numeric_limits<double>::infinity();
  Variable x(Array::from<double>({1, 5, nan, 3,    //
                                  2, nan, 9, nan,  //
                                  nan, 1, 2, 3,    //
                                  4, 7, 7, 1,      //
                                  -inf, -inf, -inf, -inf},
                                 {5, 4}));
  EXPECT_EQ(F::argmax(x, 1).array().to_vector<int32_t>(), (std::vector<int32_t>{2, 1, 0, 1, 0}));
  // Along axis 0 (a strided reduction): column 1 has its NaN at row 1.
  EXPECT_EQ(F::argmax(x, 0).array().to_vector<int32_t>(), (std::vector<int32_t>{2, 1, 0, 1}));
}

TEST_P(OnBackend, MaxPropagatesNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Array m = F::max(Variable(Array::from<float>({1, nan, 3, 4, 5, 6}, {2, 3})), std::vector<int64_t>{1}).array();
  EXPECT_TRUE(std::isnan(m.at(0)));
  EXPECT_EQ(m.at(1), 6.0);
}

// ---- Philox-4x32-10 --------------------------------------------------------------------

// Random123's kat_vectors ("philox4x32 10" lines: counter, key -> output).
TEST(Philox, Random123KnownAnswers) {
  struct Kat {
    std::array<uint32_t, 4> ctr;
    std::array<uint32_t, 2> key;
    std::array<uint32_t, 4> out;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) EXPECT_EQ(philox::philox4x32_10(k.ctr, k.key), k.out);
  // What kiln.rng_uniform draws: the first word, key (seed low, high), counter (low, high, 0, 0).
  EXPECT_EQ(philox::random_u32(0, 0), 0x6627e8d5u);
  EXPECT_EQ(philox::uniform(0, 0), (0x6627e8d5u >> 8) / 16777216.0);
}

// The uniform numbers each backend's kiln.rng_uniform draws for F::dropout, read back
// exactly: element i is kept iff u[i] >= ratio, and u[i] is a multiple of 2^-24, so
// ratio = u (kept) and ratio = u + 2^-24 (dropped) say that u[i] is u.
bool kept(uint64_t seed, int64_t n, int64_t i, double ratio) {
  F::set_dropout_seed(seed);
  Array y = F::dropout(Variable(Array::ones({n})), ratio).array();
  return y.at(i) != 0.0;
}

TEST_P(OnBackend, RngUniformIsPhiloxOnEveryBackend) {
  // Random123's first vector: key (0, 0), counter 0 -> 0x6627e8d5, so u[0] = 0x6627e8 / 2^24.
  const double u0 = 0x6627e8 / 16777216.0;
  EXPECT_TRUE(kept(0, 1, 0, u0));
  EXPECT_FALSE(kept(0, 1, 0, u0 + 1.0 / 16777216.0));
  // Other counters and an all-ones key (k0 = k1 = 0xffffffff): each backend agrees with kiln/philox.h.
  for (uint64_t seed : {uint64_t{0}, ~uint64_t{0}, uint64_t{0x299f31d0a4093822}})
    for (int64_t i : {0, 1, 5}) {
      double u = philox::uniform(seed, static_cast<uint64_t>(i));
      SCOPED_TRACE(::testing::Message() << "seed " << seed << " element " << i);
      if (seed == uint64_t{0x299f31d0a4093822} && std::string(GetParam()) == "interp")
        continue;  // the interpreter holds int64 values as doubles: a seed above 2^53 is rounded
      EXPECT_TRUE(kept(seed, 8, i, u));
      EXPECT_FALSE(kept(seed, 8, i, u + 1.0 / 16777216.0));
    }
}

}  // namespace
