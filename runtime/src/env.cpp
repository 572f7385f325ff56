// Parsing of kiln's environment variables, with one warning per bad value and process.
#include "kiln/env.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

namespace kiln::env {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Warns about `name`'s value `text` once: the key is the variable and its value.
template <typename T>
T warned(const char* name, const char* text, Parsed<T> parsed) {
  if (!parsed.warning.empty()) warn_once(std::string(name) + "=" + text, parsed.warning);
  return parsed.value;
}

}  // namespace

Parsed<int64_t> parse_int(std::string_view name, const char* text, int64_t fallback, int64_t min,
                          int64_t max, std::string_view fallback_meaning) {
  if (!text || !*text) return {fallback, ""};
  std::string_view s(text);
  int64_t value = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  bool whole = end == s.data() + s.size();
  std::string accepted = fmt::format("a whole number from {} to {}", min, max);
  std::string used = fallback_meaning.empty() ? std::to_string(fallback)
                                              : fmt::format("{} ({})", fallback, fallback_meaning);
  if (error == std::errc::result_out_of_range && whole && s[0] != '-') {
    return {max, fmt::format("kiln: {}={} is too large: expected {}; using {}", name, s, accepted, max)};
  }
  if (error != std::errc() || !whole || value < min) {
    return {fallback, fmt::format("kiln: ignoring {}={}: expected {}; using {}", name, s, accepted, used)};
  }
  if (value > max) {
    return {max, fmt::format("kiln: {}={} is too large: expected {}; using {}", name, s, accepted, max)};
  }
  return {value, ""};
}

int64_t get_int(const char* name, int64_t fallback, int64_t min, int64_t max, std::string_view fallback_meaning) {
  const char* text = std::getenv(name);
  return warned(name, text ? text : "", parse_int(name, text, fallback, min, max, fallback_meaning));
}

Parsed<bool> parse_flag(std::string_view name, const char* text, bool fallback) {
  if (!text || !*text) return {fallback, ""};
  std::string s = lower(text);
  if (s == "1" || s == "true" || s == "on" || s == "yes") return {true, ""};
  if (s == "0" || s == "false" || s == "off" || s == "no") return {false, ""};
  return {fallback, fmt::format("kiln: ignoring {}={}: expected 0 or 1; using {}", name, text, fallback ? 1 : 0)};
}

bool get_flag(const char* name, bool fallback) {
  const char* text = std::getenv(name);
  return warned(name, text ? text : "", parse_flag(name, text, fallback));
}

std::string get_string(const char* name) {
  const char* text = std::getenv(name);
  return text ? text : "";
}

void warn_once(const std::string& key, const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string>* printed = new std::set<std::string>;  // never destroyed: usable at exit
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!printed->insert(key).second) return;
  }
  fmt::print(stderr, "{}\n", message);
}

int max_threads() {
  unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::max(8u, 4 * hardware));
}

int num_threads() {
  int max = max_threads();
  return static_cast<int>(get_int("KILN_NUM_THREADS", 0, 1, max,
                                  fmt::format("the default: OpenMP's and OpenBLAS's, all {} hardware threads",
                                              std::max(1u, std::thread::hardware_concurrency()))));
}

}  // namespace kiln::env
