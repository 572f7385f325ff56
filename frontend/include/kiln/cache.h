// Statistics of kiln's compiled-graph cache.
#pragma once
#include <cstdint>
#include <string>

namespace kiln {

struct CacheStats {
  int64_t memory_hits = 0;
  int64_t disk_hits = 0;
  int64_t misses = 0;          // graphs compiled
  double compile_seconds = 0;  // total time spent compiling (misses)
  double load_seconds = 0;     // total time spent loading disk-cache entries
  std::string to_string() const;
};

// The statistics and the cache are process-wide; these are safe from any thread.
CacheStats cache_stats();
void reset_cache_stats();
void clear_memory_cache();
// The backend graphs run on: "cpu" (compiled through LLVM, the default) or
// "interp" (the reference interpreter). Set by KILN_BACKEND.
std::string backend_name();

}  // namespace kiln
