// Shared by the unit tests: the message of the kiln::Error that `f` throws, or "(no error)".
#pragma once
#include <kiln/error.h>

#include <functional>
#include <string>

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "(no error)";
}
