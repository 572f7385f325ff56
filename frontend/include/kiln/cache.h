// Statistics of kiln's compiled-graph cache.
#pragma once
#include <cstdint>
#include <string>

namespace kiln {

struct CacheStats {
  int64_t memory_hits = 0;
  int64_t disk_hits = 0;
  int64_t misses = 0;          // graphs compiled
  double compile_seconds = 0;  // total time spent compiling
  std::string to_string() const;
};

CacheStats cache_stats();
void reset_cache_stats();
void clear_memory_cache();
// The backend graphs run on: "interp" (reference interpreter). Set by KILN_BACKEND.
std::string backend_name();

}  // namespace kiln
