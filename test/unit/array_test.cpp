// kiln::Array: creation, conversion and numpy-style printing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

using namespace kiln;
using ::testing::HasSubstr;

TEST(Array, FromValuesAndShape) {
  Array a = Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.size(), 6);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(a.to_vector<double>()[5], 6.0);
}

TEST(Array, IntAndVector) {
  Array i = Array::from<int32_t>({0, 2}, {2});
  EXPECT_EQ(i.dtype(), DType::i32);
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{0, 2}));
  Array v = Array::from(std::vector<float>(6, 0.5f), {2, 3});
  EXPECT_FLOAT_EQ(v.to_vector<float>()[3], 0.5f);
  Array l = Array::from<int64_t>({7}, {});
  EXPECT_EQ(l.item<int64_t>(), 7);
}

TEST(Array, Creation) {
  EXPECT_EQ(Array::zeros({2, 3}).to_vector<float>(), std::vector<float>(6, 0.f));
  Array o = Array::ones({2, 3}, DType::f64);
  EXPECT_EQ(o.dtype(), DType::f64);
  EXPECT_EQ(o.to_vector<double>(), std::vector<double>(6, 1.0));
  Array r1 = Array::randn({1000}, 0), r2 = Array::randn({1000}, 0), r3 = Array::randn({1000}, 1);
  EXPECT_EQ(r1.to_vector<float>(), r2.to_vector<float>());
  EXPECT_NE(r1.to_vector<float>(), r3.to_vector<float>());
  double mean = 0, var = 0;
  for (float x : r1.to_vector<float>()) mean += x / 1000.0;
  for (float x : r1.to_vector<float>()) var += (x - mean) * (x - mean) / 1000.0;
  EXPECT_NEAR(mean, 0.0, 0.1);
  EXPECT_NEAR(var, 1.0, 0.15);
}

TEST(Array, AstypeAndReshape) {
  Array a = Array::from({1.5f, -2.5f}, {2});
  EXPECT_EQ(a.astype(DType::i32).to_vector<int32_t>(), (std::vector<int32_t>{1, -2}));
  Array b = Array::from({1.f, 2.f, 3.f, 4.f}, {2, 2}).reshape({4});
  EXPECT_EQ(b.shape(), (Shape{4}));
  EXPECT_THROW(b.reshape({3}), Error);
}

TEST(Array, NumpyPrinting) {
  EXPECT_EQ(fmt::format("{}", Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3})), "[[1. 2. 3.]\n [4. 5. 6.]]");
  EXPECT_EQ(fmt::format("{}", Array::from({1.5f, 2.f, 3.25f}, {3})), "[1.5  2.   3.25]");
  EXPECT_EQ(fmt::format("{}", Array::from<int32_t>({0, 12}, {2})), "[ 0 12]");
  EXPECT_EQ(fmt::format("{}", Array::from({-1.f}, {})), "-1.");
  EXPECT_EQ(fmt::format("{}", Array::zeros({2, 1, 2})), "[[[0. 0.]]\n\n [[0. 0.]]]");
}

TEST(Array, BadInput) {
  try {
    Array::from({1.f, 2.f, 3.f}, {2, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("3 values do not fill shape (2, 2)"));
  }
  EXPECT_THROW(Array::from({1.f, 2.f}, {2}).item<float>(), Error);
  EXPECT_THROW(Array::from({1.f}, {1}).data<double>(), Error);
  EXPECT_THROW(dtype_from_name("float16"), Error);
}

// Default arrays share one block holding no element (Array() allocates nothing); an array
// made for data owns its buffer alone, so a backend's donation check (use_count) sees it so.
TEST(Array, DefaultArraysHoldNothingAndFreshArraysOwnTheirBuffers) {
  Array a, b;
  EXPECT_EQ(a.shape(), (Shape{0}));
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.size(), 0);
  EXPECT_TRUE(a.to_vector<float>().empty());
  EXPECT_EQ(a.to_string(), b.to_string());
  Array e = Array::empty({3}), f = Array::empty({3}), z = Array::zeros({3});
  EXPECT_EQ(e.use_count(), 1);
  EXPECT_EQ(z.use_count(), 1);
  EXPECT_NE(e.raw_data(), f.raw_data());
  e.data<float>()[0] = 5.f;
  f.data<float>()[0] = 7.f;
  EXPECT_EQ(e.at(0), 5.0);
  EXPECT_EQ(f.at(0), 7.0);
  EXPECT_EQ(z.to_vector<float>(), (std::vector<float>{0, 0, 0}));
  a = e;  // a default array assigned keeps no link to the shared block
  EXPECT_EQ(a.use_count(), 2);
  EXPECT_EQ(a.at(0), 5.0);
  EXPECT_EQ(b.size(), 0);
}
