// KILN_PROFILE: time spent in each compiled kernel (one kiln.fusion region, or
// one op outside any), like tinygrad's DEBUG=2.
//
// With KILN_PROFILE set (1, or a file path), the cpu backend compiles graphs
// with a call to kiln_profile_begin/end around each kernel (a separate cache
// entry from unprofiled code). At process exit kiln prints one line per kernel,
// slowest first: calls, total ms, ms per call, and GFLOP/s (matmuls,
// convolutions) or GB/s (the bytes its operands span) to stderr, or writes
// them to the file (a path that cannot be written is warned about, and the
// report goes to stderr). profile_report() gives the same text at any time.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

std::string profile_report();

// One kernel of the profile: its name, its calls, their time, and the bytes and FLOPs of
// all its calls (0 when not known).
struct ProfileEntry {
  std::string kernel;
  int64_t calls = 0;
  double seconds = 0, bytes = 0, flops = 0;
};
// The kernels profiled so far, slowest first: what profile_report() prints.
std::vector<ProfileEntry> profile_entries();
void reset_profile();

}  // namespace kiln

// Called by compiled code (the symbols are exported by libkiln): `name` is
// the kernel's name, a string constant of the compiled object; `bytes` and
// `flops` the work of this call (0 when not known).
extern "C" {
void kiln_profile_begin(const char* name);
void kiln_profile_end(const char* name, int64_t bytes, int64_t flops);
}
