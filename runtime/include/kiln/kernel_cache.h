// kiln::KernelCache: the on-disk store of compiled artifacts (checksummed, atomic, LRU-capped).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kiln {

// Counters of one KernelCache; a snapshot is returned by KernelCache::stats().
struct KernelCacheStats {
  int64_t disk_hits = 0;        // get() found a valid entry
  int64_t disk_misses = 0;      // get() returned nullopt (absent, collision, corrupt, disabled)
  int64_t bytes_written = 0;    // entry bytes (header + key + payload) written by put()
  int64_t evictions = 0;        // entries removed to stay under the size cap
  int64_t corrupt_entries = 0;  // entries found corrupt, truncated or not regular files
};

// The verdict of KernelCache::decode_entry on the bytes of one entry file.
struct KernelCacheEntry {
  enum class Status {
    valid,         // a complete entry of the key asked for
    corrupt,       // truncated, bad magic, inconsistent sizes or a checksum mismatch
    other_key,     // a complete entry of another key with the same file name (hash collision)
    other_format,  // written by a kiln with another format version
  };
  Status status = Status::corrupt;
  const char* reason = "";    // for corrupt: "truncated", "bad magic", "size mismatch", "checksum mismatch"
  size_t payload_offset = 0;  // where the payload lies in the bytes (valid only)
  size_t payload_size = 0;
};

// A content store of compiled artifacts (opaque bytes) keyed by a string.
//
// Each key is stored in one file, `<dir>/<128-bit hash of the key in hex>.kc`,
// holding a header (magic, format version, the full key, the payload size, a
// checksum of the header and one of the payload) followed by the payload.
//  - get() verifies the whole entry. A corrupt or truncated entry is reported
//    once on stderr, removed, and reported as a miss (the caller recompiles and
//    puts again). An entry for another key with the same hash is a miss.
//  - Something other than a regular file at an entry's path is never read (a
//    FIFO does not block get()). A FIFO, socket or device node is reported and
//    removed like a corrupt entry; a directory cannot be replaced, so it is
//    reported once, clearly, and that key is simply not cached on disk.
//  - put() writes a unique temporary file in the same directory, fsyncs it and
//    renames it over the entry: readers and concurrent writers (threads or
//    processes) only ever see complete entries, and no temporary file remains.
//  - The total size of the entries is capped: a hit refreshes the entry's
//    modification time, and after each put the least recently used entries are
//    removed until the total fits. An entry larger than the cap is not stored.
//  - A directory that is readable but not writable (a shared, pre-filled
//    cache) is used read-only: get() hits as usual, put() stores nothing and
//    the first skipped put says so once on stderr. A directory that becomes
//    unwritable later switches to read-only the same way.
//  - A directory that cannot be created or read is reported once on stderr and
//    the cache becomes a no-op (get misses, put does nothing). No method throws.
//
// Thread-safety: all methods may be called concurrently on one instance, and
// any number of instances and processes may share one directory.
class KernelCache {
 public:
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr uint64_t kDefaultMaxBytes = uint64_t{1024} << 20;  // 1024 MB

  // $KILN_CACHE_DIR (default ~/.cache/kiln) capped at $KILN_CACHE_MAX_MB
  // megabytes (default 1024; 0 disables the disk cache).
  KernelCache();
  // An explicit directory (created recursively) and size cap in bytes.
  KernelCache(std::string dir, uint64_t max_bytes);
  KernelCache(const KernelCache&) = delete;
  KernelCache& operator=(const KernelCache&) = delete;

  // The location and cap the environment selects (see the default constructor).
  static std::string default_dir();
  static uint64_t default_max_bytes();

  // A key built from parts (structural hash, kiln version, LLVM version,
  // target...): 32 hex digits, a 128-bit hash of the length-prefixed parts, so
  // {"ab", "c"} and {"a", "bc"} differ.
  static std::string make_key(std::initializer_list<std::string> parts);

  // The payload stored under `key`, or nullopt on a miss.
  std::optional<std::vector<uint8_t>> get(const std::string& key);
  // Stores `bytes` under `key`, replacing any previous entry, then evicts.
  void put(const std::string& key, const std::vector<uint8_t>& bytes);

  // False when the directory is unusable or the cap is 0: get misses, put is a no-op.
  bool enabled() const { return enabled_.load(); }
  // False when put stores nothing: disabled, or the directory is read-only.
  bool writable() const { return enabled_.load() && !read_only_.load(); }
  const std::string& dir() const { return dir_; }
  uint64_t max_bytes() const { return max_bytes_; }
  // The file that holds (or would hold) the entry of `key`.
  std::string entry_path(const std::string& key) const;

  KernelCacheStats stats() const;
  void reset_stats();

  // The entry format on its own, for tools and fuzzing. encode_entry returns the
  // whole file stored for `key`; decode_entry checks the bytes of a file against
  // `key` (never reads outside [data, data + size), never throws) and says where
  // the payload is. decode_entry(encode_entry(k, p), k) is valid with payload p.
  static std::vector<uint8_t> encode_entry(const std::string& key, const std::vector<uint8_t>& payload);
  static KernelCacheEntry decode_entry(const uint8_t* data, size_t size, const std::string& key);

 private:
  void disable(const std::string& why);
  void make_read_only();
  void report_corrupt(const std::string& path, const char* reason, bool removed);
  void report_directory(const std::string& path);
  void evict(const std::string& keep);
  std::string temp_path();

  std::string dir_;
  uint64_t max_bytes_;
  std::atomic<bool> enabled_{true};
  std::atomic<bool> read_only_{false};
  std::atomic<uint64_t> temp_counter_{0};
  uint64_t temp_seed_ = 0;
  mutable std::mutex mutex_;  // guards stats_, reported_, warned_, read_only_warned_
  KernelCacheStats stats_;
  std::set<std::string> reported_;  // corrupt entries or directories reported but not removable
  bool warned_ = false;             // the directory warning was printed
  bool read_only_warned_ = false;   // the read-only warning was printed
};

}  // namespace kiln
