// kiln::KernelCache: entry format, verification, atomic writes and LRU eviction on disk.
#include "kiln/kernel_cache.h"
#include "hash.h"
#include "kiln/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string_view>
#include <utility>

namespace kiln {

namespace {

// Entry layout, all integers little-endian:
//   0  magic "KILNKC\r\n"        8 bytes
//   8  format version            u32
//  12  key size                  u32
//  16  payload size              u64
//  24  payload checksum          u64  FNV-1a 64 of the payload
//  32  header checksum           u64  FNV-1a 64 of bytes 0..31 then the key
//  40  key bytes, then the payload
constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'K', 'C', '\r', '\n'};
constexpr size_t kHeaderSize = 40;
constexpr const char* kEntrySuffix = ".kc";
constexpr const char* kTempPrefix = ".tmp-";
// A temporary file this old was left by a process that died while writing it.
constexpr int64_t kStaleTempSeconds = 3600;

using detail::fnv1a;
using detail::kFnvOffset;
using detail::mix64;

// 32 hex digits: two FNV-1a 64 hashes with different offset bases, finalized.
std::string hash128_hex(std::string_view s) {
  uint64_t a = fnv1a(s.data(), s.size());
  uint64_t b = fnv1a(s.data(), s.size(), kFnvOffset ^ 0x9e3779b97f4a7c15ull);
  uint64_t hi = mix64(a ^ s.size());
  uint64_t lo = mix64(b + (a << 32 | a >> 32));
  return fmt::format("{:016x}{:016x}", hi, lo);
}

void store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void store_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t load_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{p[i]} << (8 * i);
  return v;
}
uint64_t load_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

uint64_t header_checksum(const uint8_t* header, const std::string& key) {
  return fnv1a(key.data(), key.size(), fnv1a(header, 32));
}

// Reads exactly `size` bytes unless the file ends first; returns the count read, -1 on error.
ssize_t read_full(int fd, void* buf, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, static_cast<char*>(buf) + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

bool write_full(int fd, const void* buf, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, static_cast<const char*>(buf) + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Closes on scope exit.
struct FileDescriptor {
  int fd;
  explicit FileDescriptor(int f) : fd(f) {}
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
};

// Wall-clock time with full resolution (file systems stamp UTIME_NOW with a
// coarse clock, too coarse to order entries used within a few milliseconds).
void touch(int fd) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct timespec times[2] = {now, now};
  (void)::futimens(fd, times);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// mkdir -p; true when `path` is a directory afterwards.
bool make_directories(const std::string& path) {
  if (path.empty()) return false;
  if (is_directory(path)) return true;
  for (size_t pos = path.find('/', 1); ; pos = path.find('/', pos + 1)) {
    std::string prefix = path.substr(0, pos);
    if (!prefix.empty() && prefix.back() != '/' && ::mkdir(prefix.c_str(), 0755) != 0 &&
        errno != EEXIST)
      return false;
    if (pos == std::string::npos) break;
  }
  return is_directory(path);
}

// What a non-regular file is, for messages.
const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string KernelCache::default_dir() {
  if (std::string dir = env::get_string("KILN_CACHE_DIR"); !dir.empty()) return dir;
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    if (const struct passwd* pw = ::getpwuid(::getuid())) home = pw->pw_dir;
  }
  if (!home || !*home) return "";
  return std::string(home) + "/.cache/kiln";
}

uint64_t KernelCache::default_max_bytes() {
  int64_t mb = env::get_int("KILN_CACHE_MAX_MB", kDefaultMaxBytes >> 20, 0, INT64_MAX >> 20,
                            "the default, in megabytes; 0 turns the disk cache off");
  return static_cast<uint64_t>(mb) << 20;
}

KernelCache::KernelCache() : KernelCache(default_dir(), default_max_bytes()) {}

KernelCache::KernelCache(std::string dir, uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  std::random_device device;
  temp_seed_ = (uint64_t{device()} << 32) ^ device() ^
               static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (max_bytes_ == 0) {
    enabled_ = false;  // KILN_CACHE_MAX_MB=0: the user turned the disk cache off
    return;
  }
  if (dir_.empty()) {
    disable("~/.cache/kiln (no home directory, set KILN_CACHE_DIR)");
    return;
  }
  if (!make_directories(dir_) || ::access(dir_.c_str(), R_OK | X_OK) != 0) {
    disable(dir_);
    return;
  }
  if (::access(dir_.c_str(), W_OK) != 0) read_only_ = true;  // warned at the first skipped put
}

void KernelCache::disable(const std::string& dir) {
  enabled_ = false;
  std::lock_guard<std::mutex> lock(mutex_);
  if (warned_) return;
  warned_ = true;
  fmt::print(stderr, "kiln: cache directory {} is not writable; using the in-memory cache only\n",
             dir);
}

void KernelCache::make_read_only() {
  read_only_ = true;
  std::lock_guard<std::mutex> lock(mutex_);
  if (read_only_warned_) return;
  read_only_warned_ = true;
  fmt::print(stderr,
             "kiln: cache directory {} is not writable; reading its entries but storing no new ones\n",
             dir_);
}

// A directory where an entry belongs: get misses and put cannot rename over
// it, so that graph is never cached on disk. Said once per path.
void KernelCache::report_directory(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!reported_.insert(path).second) return;
  fmt::print(stderr,
             "kiln: cache entry {} is a directory, not a file; this graph is not cached on disk "
             "until it is removed\n",
             path);
}

// One warning per corrupt entry: an entry that could not be removed (and so is
// found again by the next get) is not reported again.
void KernelCache::report_corrupt(const std::string& path, const char* reason, bool removed) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.corrupt_entries;
  bool first = removed ? reported_.erase(path) == 0 : reported_.insert(path).second;
  if (first)
    fmt::print(stderr, "kiln: cache entry {} is corrupt ({}); recompiling\n", path, reason);
}

std::string KernelCache::make_key(std::initializer_list<std::string> parts) {
  std::string joined;
  for (const std::string& part : parts) {
    joined += std::to_string(part.size());
    joined += ':';
    joined += part;
  }
  return hash128_hex(joined);
}

std::string KernelCache::entry_path(const std::string& key) const {
  return dir_ + "/" + hash128_hex(key) + kEntrySuffix;
}

std::string KernelCache::temp_path() {
  uint64_t n = temp_counter_.fetch_add(1);
  uint64_t random = mix64(temp_seed_ + n * 0x9e3779b97f4a7c15ull);
  return fmt::format("{}/{}{}-{}-{:016x}", dir_, kTempPrefix, ::getpid(), n, random);
}

KernelCacheEntry KernelCache::decode_entry(const uint8_t* data, size_t size, const std::string& key) {
  KernelCacheEntry entry;
  auto corrupt = [&](const char* reason) {
    entry.status = KernelCacheEntry::Status::corrupt;
    entry.reason = reason;
    return entry;
  };
  if (size < kHeaderSize) return corrupt("truncated");
  if (std::memcmp(data, kMagic, sizeof kMagic) != 0) return corrupt("bad magic");
  if (load_u32(data + 8) != kFormatVersion) {  // another kiln's format: rewritten
    entry.status = KernelCacheEntry::Status::other_format;
    return entry;
  }
  const uint64_t key_size = load_u32(data + 12);
  const uint64_t payload_size = load_u64(data + 16);
  const uint64_t payload_checksum = load_u64(data + 24);
  const uint64_t stored_header_checksum = load_u64(data + 32);
  const uint64_t body_size = size - kHeaderSize;
  if (key_size > body_size || payload_size > body_size - key_size) return corrupt("truncated");
  if (payload_size != body_size - key_size) return corrupt("size mismatch");

  const std::string stored_key(reinterpret_cast<const char*>(data + kHeaderSize), key_size);
  if (header_checksum(data, stored_key) != stored_header_checksum)
    return corrupt("checksum mismatch");
  if (stored_key != key) {  // another key with the same hash
    entry.status = KernelCacheEntry::Status::other_key;
    return entry;
  }
  const uint8_t* payload = data + kHeaderSize + key_size;
  if (fnv1a(payload, payload_size) != payload_checksum) return corrupt("checksum mismatch");
  entry.status = KernelCacheEntry::Status::valid;
  entry.payload_offset = kHeaderSize + key_size;
  entry.payload_size = payload_size;
  return entry;
}

std::vector<uint8_t> KernelCache::encode_entry(const std::string& key,
                                               const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(kHeaderSize + key.size() + payload.size());
  uint8_t* header = out.data();
  std::memcpy(header, kMagic, sizeof kMagic);
  store_u32(header + 8, kFormatVersion);
  store_u32(header + 12, static_cast<uint32_t>(key.size()));
  store_u64(header + 16, payload.size());
  store_u64(header + 24, fnv1a(payload.data(), payload.size()));
  store_u64(header + 32, header_checksum(header, key));
  std::memcpy(out.data() + kHeaderSize, key.data(), key.size());
  if (!payload.empty())
    std::memcpy(out.data() + kHeaderSize + key.size(), payload.data(), payload.size());
  return out;
}

std::optional<std::vector<uint8_t>> KernelCache::get(const std::string& key) {
  auto miss = [&]() -> std::optional<std::vector<uint8_t>> {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.disk_misses;
    return std::nullopt;
  };
  if (!enabled()) return miss();
  const std::string path = entry_path(key);
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it changes nothing for a file).
  FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  struct stat st;
  if (file.fd < 0) {
    // A socket (or a device node without its device) cannot be opened: reported below.
    if (errno != ENXIO || ::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return miss();
  } else if (::fstat(file.fd, &st) != 0) {
    return miss();
  }

  // A corrupt entry is removed, unless another process has already replaced it.
  auto corrupt = [&](const char* reason) {
    struct stat now;
    bool removed = true;
    if (::lstat(path.c_str(), &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev)
      removed = ::unlink(path.c_str()) == 0 || errno == ENOENT;
    report_corrupt(path, reason, removed);
    return miss();
  };
  if (S_ISDIR(st.st_mode)) {
    report_directory(path);
    return miss();
  }
  if (!S_ISREG(st.st_mode))
    return corrupt(fmt::format("{}, not a regular file", file_kind(st.st_mode)).c_str());

  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  ssize_t n = read_full(file.fd, bytes.data(), bytes.size());
  if (n < 0) return miss();
  bytes.resize(static_cast<size_t>(n));  // the file shrank meanwhile: checked as truncated
  const KernelCacheEntry entry = decode_entry(bytes.data(), bytes.size(), key);
  switch (entry.status) {
    case KernelCacheEntry::Status::corrupt: return corrupt(entry.reason);
    case KernelCacheEntry::Status::other_key:
    case KernelCacheEntry::Status::other_format: return miss();
    case KernelCacheEntry::Status::valid: break;
  }
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(entry.payload_offset));

  touch(file.fd);  // most recently used (fails harmlessly in a read-only directory's files)
  std::lock_guard<std::mutex> lock(mutex_);
  ++stats_.disk_hits;
  return bytes;
}

void KernelCache::put(const std::string& key, const std::vector<uint8_t>& bytes) {
  if (!enabled()) return;
  if (read_only_) {
    make_read_only();  // says so once
    return;
  }
  if (key.size() > UINT32_MAX) return;
  const uint64_t entry_size = kHeaderSize + key.size() + bytes.size();
  if (entry_size > max_bytes_) return;  // would evict everything and still not fit
  const std::vector<uint8_t> entry = encode_entry(key, bytes);

  const std::string path = entry_path(key);
  const std::string temp = temp_path();
  auto create = [&] { return ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644); };
  int fd = create();
  if (fd < 0 && errno == ENOENT && make_directories(dir_)) fd = create();  // removed meanwhile
  if (fd < 0) {
    if (errno == EACCES || errno == EPERM || errno == EROFS) make_read_only();
    else if (errno == ENOENT) disable(dir_);
    return;
  }
  bool ok = write_full(fd, entry.data(), entry.size());
  if (ok) touch(fd);
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());  // a full disk or an I/O error: the entry is simply not stored
    if (ok && (error == EISDIR || error == ENOTEMPTY || error == EEXIST)) report_directory(path);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.bytes_written += static_cast<int64_t>(entry_size);
  }
  evict(path);
}

// Removes the least recently used entries (oldest modification time first)
// until the total size fits under the cap; never the entry just written.
// Also removes temporary files that crashed writers left behind.
void KernelCache::evict(const std::string& keep) {
  struct Entry {
    struct timespec mtime;
    uint64_t size;
    std::string path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  DIR* dir = ::opendir(dir_.c_str());
  if (!dir) return;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  while (const struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    bool is_entry = ends_with(name, kEntrySuffix) && name[0] != '.';
    bool is_temp = name.rfind(kTempPrefix, 0) == 0;
    if (!is_entry && !is_temp) continue;
    std::string path = dir_ + "/" + name;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (is_temp) {
      if (now - static_cast<int64_t>(st.st_mtime) > kStaleTempSeconds) ::unlink(path.c_str());
      continue;
    }
    total += static_cast<uint64_t>(st.st_size);
    entries.push_back({st.st_mtim, static_cast<uint64_t>(st.st_size), std::move(path)});
  }
  ::closedir(dir);
  if (total <= max_bytes_) return;

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
    return a.mtime.tv_nsec < b.mtime.tv_nsec;
  });
  int64_t evicted = 0;
  for (const Entry& entry : entries) {
    if (total <= max_bytes_) break;
    if (entry.path == keep) continue;
    if (::unlink(entry.path.c_str()) == 0) ++evicted;
    total -= entry.size;  // gone either way (another process may have evicted it)
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.evictions += evicted;
}

KernelCacheStats KernelCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void KernelCache::reset_stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_ = KernelCacheStats();
}

}  // namespace kiln
