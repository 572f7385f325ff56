// Shared by the unit tests: a fixture that runs each TEST_P on the backend named by its
// parameter (KILN_BACKEND), every graph compiled afresh for it; skipped where the backend
// is not available.
#pragma once
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cstdlib>

class OnBackend : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    setenv("KILN_BACKEND", GetParam(), 1);
    kiln::clear_memory_cache();
    try {
      kiln::backend_name();
    } catch (const kiln::Error& e) {
      GTEST_SKIP() << e.what();
    }
  }
  void TearDown() override {
    kiln::set_debug(false);
    kiln::clear_memory_cache();
    unsetenv("KILN_BACKEND");
  }
};
