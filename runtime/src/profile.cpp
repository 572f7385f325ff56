// KILN_PROFILE's counters and report (kiln/profile.h).
#include "kiln/profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <vector>

#include "kiln/env.h"

namespace kiln {
namespace {

struct KernelStats {
  int64_t calls = 0;
  double seconds = 0;
  double bytes = 0;
  double flops = 0;
};

struct Profile {
  std::mutex mutex;
  std::map<std::string, KernelStats> kernels;
  bool report_at_exit = false;
};

Profile& profile() {
  static Profile* p = new Profile;  // never destroyed: the exit report reads it
  return *p;
}

thread_local std::chrono::steady_clock::time_point t_begin;

void report_at_exit() {
  std::string text = profile_report();
  if (text.empty()) return;
  std::string target = env::get_string("KILN_PROFILE");
  bool to_file = !target.empty() && env::parse_flag("KILN_PROFILE", target.c_str(), false).warning.size();
  if (to_file) {
    if (std::FILE* f = std::fopen(target.c_str(), "w")) {
      bool ok = std::fputs(text.c_str(), f) >= 0;
      ok &= std::fclose(f) == 0;
      if (ok) return;
    }
    std::fprintf(stderr, "kiln: KILN_PROFILE: cannot write '%s'; the report follows on stderr\n",
                 target.c_str());
  }
  std::fputs(text.c_str(), stderr);
}

}  // namespace

std::vector<ProfileEntry> profile_entries() {
  Profile& p = profile();
  std::vector<ProfileEntry> rows;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    for (const auto& [name, s] : p.kernels) rows.push_back({name, s.calls, s.seconds, s.bytes, s.flops});
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  return rows;
}

std::string profile_report() {
  std::vector<ProfileEntry> rows = profile_entries();
  if (rows.empty()) return {};
  double total = 0;
  for (const ProfileEntry& s : rows) total += s.seconds;
  std::string out = fmt::format("kiln profile: {} kernels, {:.3f} ms in all\n", rows.size(), total * 1e3);
  out += fmt::format("{:>8} {:>10} {:>9} {:>12}  {}\n", "calls", "total ms", "ms/call", "rate", "kernel");
  for (const ProfileEntry& s : rows) {
    std::string rate = s.seconds <= 0 ? "" :
                       s.flops > 0   ? fmt::format("{:.2f} GFLOP/s", s.flops / s.seconds * 1e-9)
                       : s.bytes > 0 ? fmt::format("{:.2f} GB/s", s.bytes / s.seconds * 1e-9)
                                     : "";
    out += fmt::format("{:>8} {:>10.3f} {:>9.4f} {:>12}  {}\n", s.calls, s.seconds * 1e3,
                       s.seconds * 1e3 / static_cast<double>(s.calls), rate, s.kernel);
  }
  return out;
}

void reset_profile() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.kernels.clear();
}

}  // namespace kiln

extern "C" void kiln_profile_begin(const char*) { kiln::t_begin = std::chrono::steady_clock::now(); }

extern "C" void kiln_profile_end(const char* name, int64_t bytes, int64_t flops) {
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - kiln::t_begin).count();
  kiln::Profile& p = kiln::profile();
  std::lock_guard<std::mutex> lock(p.mutex);
  kiln::KernelStats& s = p.kernels[name];
  ++s.calls;
  s.seconds += seconds;
  s.bytes += static_cast<double>(bytes);
  s.flops += static_cast<double>(flops);
  if (!p.report_at_exit) {
    p.report_at_exit = true;
    std::atexit(kiln::report_at_exit);
  }
}

// The same entry points under the names of MLIR's C-interface wrappers (the
// cpu pipeline requests them for every function it declares).
extern "C" __attribute__((visibility("default"))) void _mlir_ciface_kiln_profile_begin(const char* name) {
  kiln_profile_begin(name);
}
extern "C" __attribute__((visibility("default"))) void _mlir_ciface_kiln_profile_end(const char* name, int64_t bytes,
                                                                                      int64_t flops) {
  kiln_profile_end(name, bytes, flops);
}
