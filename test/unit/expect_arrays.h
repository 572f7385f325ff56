// Shared by the unit tests: element-wise comparison of result arrays.
#pragma once
#include <gtest/gtest.h>
#include <kiln/array.h>

#include <cmath>
#include <string>
#include <vector>

// Each actual array has the expected shape and dtype, and every element is
// within tolerance * (1 + |expected|) of the expected one.
inline void expect_arrays_near(const std::vector<kiln::Array>& actual, const std::vector<kiln::Array>& expected,
                               double tolerance) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE("result " + std::to_string(i));
    ASSERT_EQ(actual[i].shape(), expected[i].shape());
    ASSERT_EQ(actual[i].dtype(), expected[i].dtype());
    for (int64_t j = 0; j < expected[i].size(); ++j) {
      double e = expected[i].at(j), a = actual[i].at(j);
      ASSERT_NEAR(a, e, tolerance * (1 + std::abs(e))) << "at flat index " << j;
    }
  }
}
