// kiln::env: the environment variables kiln reads (KILN_*), parsed in one place.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

// Every KILN_* variable is read through these functions. They read the
// environment at each call (cheap; a program or a test that changes a variable
// is followed), and a value that cannot be used is reported on stderr once per
// process and variable value, in one line that says the value, what is
// accepted and what is used instead.
//
// The parse_* functions only parse (no environment, no output), so tests can
// exercise every case; the get_* functions read the environment and print the
// parse's warning once. All functions are thread-safe.
namespace kiln::env {

// A parsed value and the warning to print ("" when the value was fine).
template <typename T>
struct Parsed {
  T value;
  std::string warning;
};

// `text` (the value of variable `name`; nullptr when unset) as a whole number in
// [min, max]. Unset or empty: `fallback`, no warning. Not a whole number, or below
// `min`: `fallback` and a warning. Above `max`: `max` and a warning. The warning
// names the fallback by `fallback_meaning` when given ("the default: all cores").
Parsed<int64_t> parse_int(std::string_view name, const char* text, int64_t fallback, int64_t min,
                          int64_t max, std::string_view fallback_meaning = {});
int64_t get_int(const char* name, int64_t fallback, int64_t min, int64_t max,
                std::string_view fallback_meaning = {});

// `text` as a switch: 1/true/on/yes or 0/false/off/no (any case). Unset or empty:
// `fallback`, no warning; anything else: `fallback` and a warning.
Parsed<bool> parse_flag(std::string_view name, const char* text, bool fallback);
bool get_flag(const char* name, bool fallback);

// The variable's value, "" when unset.
std::string get_string(const char* name);

// Prints `message` (one line, "kiln: " prefixed by the caller) to stderr unless a
// message with this `key` was printed before in this process.
void warn_once(const std::string& key, const std::string& message);

// KILN_NUM_THREADS: the threads of compiled loops (OpenMP) and OpenBLAS, or 0 when
// unset (their defaults: all cores). A value above max_threads() is clamped to it.
int num_threads();
// The largest KILN_NUM_THREADS used: 4 times the hardware threads, at least 8
// (more only oversubscribes the cores, and 100000 makes libomp abort).
int max_threads();

}  // namespace kiln::env
