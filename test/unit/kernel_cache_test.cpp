// kiln::KernelCache: round trips, persistence, corruption, LRU eviction, read-only, unreadable and
// shared directories, and things other than files where entries belong.
#include <fcntl.h>
#include <grp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kernel_cache.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using kiln::KernelCache;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Files in `dir` that are not finished entries (temporary files).
std::vector<std::string> non_entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const std::string& name : list_dir(dir))
    if (name.size() < 3 || name.compare(name.size() - 3, 3, ".kc") != 0 || name[0] == '.')
      names.push_back(name);
  return names;
}

std::string fmt_line(const char* name, int64_t value) {
  return std::string(name) + "=" + std::to_string(value) + "\n";
}

constexpr int kSkip = 77;  // the child's exit code when it cannot test what it should

// What run_unprivileged's child reported.
struct Unprivileged {
  bool skipped = false;
  std::string report;  // what the body appended
  std::string err;     // the child's stderr
};

// Reads `fd` to its end, then closes it.
std::string drain(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Runs `body` in a forked child that cannot bypass file permissions: as root
// (where chmod does not stop writes) the child first becomes the user
// "nobody" (uid/gid 65534); `writable_dir`, if given, is handed to that user.
// The child exits kSkip when it cannot drop the privileges.
Unprivileged run_unprivileged(const std::function<void(std::string&)>& body,
                              const std::string& writable_dir = "") {
  int out[2], err[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0) return {true, "", ""};
  std::fflush(stderr);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(out[0]);
    ::close(err[0]);
    ::dup2(err[1], 2);
    if (::geteuid() == 0) {
      const uid_t nobody = 65534;
      if (!writable_dir.empty() && ::chown(writable_dir.c_str(), nobody, nobody) != 0) ::_exit(kSkip);
      if (::setgroups(0, nullptr) != 0 || ::setgid(nobody) != 0 || ::setuid(nobody) != 0)
        ::_exit(kSkip);
    }
    std::string report;
    body(report);
    std::fflush(stderr);
    (void)!::write(out[1], report.data(), report.size());
    ::_exit(0);
  }
  ::close(out[1]);
  ::close(err[1]);
  Unprivileged result;
  result.report = drain(out[0]);
  result.err = drain(err[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  result.skipped = WIFEXITED(status) && WEXITSTATUS(status) == kSkip;
  if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && !result.skipped))
    ADD_FAILURE() << "child ended with status " << status << ": " << result.err;
  return result;
}

// A fresh directory, removed (permissions restored first) at the end of the test.
class KernelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-kernel-cache-XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir_, ec))
      if (e.is_directory(ec)) fs::permissions(e.path(), fs::perms::owner_all, ec);
    fs::permissions(dir_, fs::perms::owner_all, ec);
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

}  // namespace

TEST(KernelCacheKey, MakeKeyIsStableHexAndSeparatesParts) {
  std::string k = KernelCache::make_key({"graph:1234", "kiln 0.1.0", "llvm 22", "x86-64+avx2"});
  EXPECT_EQ(k.size(), 32u);
  EXPECT_EQ(k.find_first_not_of("0123456789abcdef"), std::string::npos) << k;
  EXPECT_EQ(k, KernelCache::make_key({"graph:1234", "kiln 0.1.0", "llvm 22", "x86-64+avx2"}));
  EXPECT_NE(k, KernelCache::make_key({"graph:1234", "kiln 0.1.0", "llvm 22", "x86-64+avx512f"}));
  EXPECT_NE(k, KernelCache::make_key({"graph:1234", "kiln 0.1.1", "llvm 22", "x86-64+avx2"}));
  EXPECT_NE(KernelCache::make_key({"ab", "c"}), KernelCache::make_key({"a", "bc"}));
  EXPECT_NE(KernelCache::make_key({"abc"}), KernelCache::make_key({"abc", ""}));
  EXPECT_NE(KernelCache::make_key({}), KernelCache::make_key({""}));
}

TEST_F(KernelCacheTest, RoundTrip) {
  KernelCache cache(dir_, 1 << 20);
  EXPECT_TRUE(cache.enabled());
  EXPECT_FALSE(cache.get("missing").has_value());
  std::vector<uint8_t> payload = pattern(5000, 3);
  cache.put("k1", payload);
  cache.put("empty", {});
  auto got = cache.get("k1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, payload);
  auto empty = cache.get("empty");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  kiln::KernelCacheStats s = cache.stats();
  EXPECT_EQ(s.disk_hits, 2);
  EXPECT_EQ(s.disk_misses, 1);
  EXPECT_GE(s.bytes_written, 5000);
  EXPECT_EQ(s.evictions, 0);
  EXPECT_EQ(s.corrupt_entries, 0);
  EXPECT_EQ(list_dir(dir_).size(), 2u);
  cache.reset_stats();
  EXPECT_EQ(cache.stats().disk_hits, 0);
}

TEST_F(KernelCacheTest, PutReplacesAnEntry) {
  KernelCache cache(dir_, 1 << 20);
  cache.put("k", bytes_of("first version"));
  cache.put("k", bytes_of("second"));
  EXPECT_EQ(cache.get("k"), bytes_of("second"));
  EXPECT_EQ(list_dir(dir_).size(), 1u);
}

TEST_F(KernelCacheTest, PersistsAcrossInstances) {
  std::string key = KernelCache::make_key({"graph", "kiln", "llvm", "cpu"});
  {
    KernelCache writer(dir_, 1 << 20);
    writer.put(key, pattern(1234, 9));
  }
  KernelCache reader(dir_, 1 << 20);
  auto got = reader.get(key);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, pattern(1234, 9));
  EXPECT_EQ(reader.stats().disk_hits, 1);
}

TEST_F(KernelCacheTest, DirectoryIsCreatedRecursively) {
  std::string nested = dir_ + "/a/b/c";
  KernelCache cache(nested + "/", 1 << 20);
  EXPECT_TRUE(cache.enabled());
  EXPECT_EQ(cache.dir(), nested);
  cache.put("k", bytes_of("v"));
  EXPECT_EQ(cache.get("k"), bytes_of("v"));
  EXPECT_TRUE(fs::is_directory(nested));
}

TEST_F(KernelCacheTest, CorruptPayloadWarnsOnceIsRemovedAndRecompiled) {
  KernelCache cache(dir_, 1 << 20);
  cache.put("k", pattern(100, 1));
  std::string path = cache.entry_path("k");
  std::vector<uint8_t> data = read_file(path);
  ASSERT_GT(data.size(), 100u);
  data[data.size() - 50] ^= 0x01;  // one bit in the payload
  write_file(path, data);

  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(cache.get("k").has_value());
  EXPECT_FALSE(cache.get("k").has_value());  // already removed: a plain miss, no second warning
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "kiln: cache entry " + path + " is corrupt (checksum mismatch); recompiling\n");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(cache.stats().corrupt_entries, 1);
  EXPECT_EQ(cache.stats().disk_misses, 2);

  cache.put("k", pattern(100, 1));  // the caller recompiles and puts again
  EXPECT_EQ(cache.get("k"), pattern(100, 1));
}

TEST_F(KernelCacheTest, CorruptKeyOrHeaderIsDetected) {
  KernelCache cache(dir_, 1 << 20);
  cache.put("some-key", pattern(64, 5));
  std::string path = cache.entry_path("some-key");
  std::vector<uint8_t> good = read_file(path);

  for (size_t offset : {size_t{0}, size_t{9}, size_t{20}, size_t{27}, size_t{35}, size_t{42}}) {
    std::vector<uint8_t> data = good;
    data[offset] ^= 0x40;  // magic, version, sizes, checksums, key
    write_file(path, data);
    ::testing::internal::CaptureStderr();
    EXPECT_FALSE(cache.get("some-key").has_value()) << "offset " << offset;
    std::string err = ::testing::internal::GetCapturedStderr();
    if (offset == 9) {
      // Another format version: a quiet miss, and the next put rewrites it.
      EXPECT_EQ(err, "");
      cache.put("some-key", pattern(64, 5));
      EXPECT_EQ(cache.get("some-key"), pattern(64, 5));
      continue;
    }
    EXPECT_THAT(err, HasSubstr("is corrupt")) << "offset " << offset;
    EXPECT_FALSE(fs::exists(path)) << "offset " << offset;
  }
}

TEST_F(KernelCacheTest, TruncatedEntryIsCorrupt) {
  KernelCache cache(dir_, 1 << 20);
  std::vector<uint8_t> payload = pattern(4096, 2);
  for (size_t keep : {size_t{0}, size_t{10}, size_t{41}, size_t{2000}, size_t{4096 + 40}}) {
    cache.put("k", payload);
    std::string path = cache.entry_path("k");
    std::vector<uint8_t> data = read_file(path);
    ASSERT_LT(keep, data.size());
    data.resize(keep);
    write_file(path, data);
    ::testing::internal::CaptureStderr();
    EXPECT_FALSE(cache.get("k").has_value()) << "kept " << keep;
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(err, HasSubstr("kiln: cache entry " + path + " is corrupt (truncated)"));
    EXPECT_FALSE(fs::exists(path));
  }
  // Trailing garbage after the payload is corrupt too.
  cache.put("k", payload);
  std::string path = cache.entry_path("k");
  std::vector<uint8_t> data = read_file(path);
  data.push_back(0);
  write_file(path, data);
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(cache.get("k").has_value());
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("is corrupt"));
}

TEST_F(KernelCacheTest, WrongKeyInHeaderIsAMiss) {
  // Simulates a hash collision: the file where "b" lives holds the entry of "a".
  KernelCache cache(dir_, 1 << 20);
  cache.put("a", bytes_of("payload of a"));
  fs::copy_file(cache.entry_path("a"), cache.entry_path("b"));
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(cache.get("b").has_value());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(fs::exists(cache.entry_path("b")));  // a valid entry, not removed
  EXPECT_EQ(cache.get("a"), bytes_of("payload of a"));
  cache.put("b", bytes_of("payload of b"));  // the recompiled "b" replaces it
  EXPECT_EQ(cache.get("b"), bytes_of("payload of b"));
  EXPECT_EQ(cache.stats().corrupt_entries, 0);
}

TEST_F(KernelCacheTest, LeastRecentlyUsedEntriesAreEvicted) {
  const size_t payload = 1000;
  const uint64_t entry = 40 + 2 + payload;  // header + key ("k0".."k9") + payload
  KernelCache cache(dir_, 3 * entry + entry / 2);
  auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); };
  cache.put("k1", pattern(payload, 1));
  pause();
  cache.put("k2", pattern(payload, 2));
  pause();
  cache.put("k3", pattern(payload, 3));
  pause();
  EXPECT_EQ(cache.stats().evictions, 0);
  EXPECT_TRUE(cache.get("k1").has_value());  // k1 becomes the most recently used
  pause();
  cache.put("k4", pattern(payload, 4));  // over the cap: k2, the least recently used, goes
  EXPECT_EQ(cache.stats().evictions, 1);
  EXPECT_FALSE(fs::exists(cache.entry_path("k2")));
  EXPECT_EQ(cache.get("k1"), pattern(payload, 1));
  EXPECT_EQ(cache.get("k3"), pattern(payload, 3));
  EXPECT_EQ(cache.get("k4"), pattern(payload, 4));
  EXPECT_EQ(list_dir(dir_).size(), 3u);

  // An entry larger than the whole cap is not stored and evicts nothing.
  cache.put("k5", pattern(4 * entry, 5));
  EXPECT_FALSE(cache.get("k5").has_value());
  EXPECT_EQ(list_dir(dir_).size(), 3u);
}

TEST_F(KernelCacheTest, EnvironmentSelectsDirectoryAndCap) {
  auto saved = [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    return v ? std::optional<std::string>(v) : std::nullopt;
  };
  auto restore = [](const char* name, const std::optional<std::string>& v) {
    if (v) ::setenv(name, v->c_str(), 1);
    else ::unsetenv(name);
  };
  auto dir = saved("KILN_CACHE_DIR"), mb = saved("KILN_CACHE_MAX_MB"), home = saved("HOME");

  ::setenv("KILN_CACHE_DIR", (dir_ + "/env").c_str(), 1);
  ::setenv("KILN_CACHE_MAX_MB", "3", 1);
  {
    KernelCache cache;
    EXPECT_EQ(cache.dir(), dir_ + "/env");
    EXPECT_EQ(cache.max_bytes(), uint64_t{3} << 20);
    cache.put("k", bytes_of("v"));
    EXPECT_EQ(cache.get("k"), bytes_of("v"));
  }
  ::unsetenv("KILN_CACHE_DIR");
  ::unsetenv("KILN_CACHE_MAX_MB");
  ::setenv("HOME", (dir_ + "/home").c_str(), 1);
  EXPECT_EQ(KernelCache::default_dir(), dir_ + "/home/.cache/kiln");
  EXPECT_EQ(KernelCache::default_max_bytes(), uint64_t{1024} << 20);
  {
    KernelCache cache;
    EXPECT_TRUE(cache.enabled());
    EXPECT_TRUE(fs::is_directory(dir_ + "/home/.cache/kiln"));
  }
  ::setenv("KILN_CACHE_MAX_MB", "lots", 1);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(KernelCache::default_max_bytes(), uint64_t{1024} << 20);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("KILN_CACHE_MAX_MB=lots"));
  ::setenv("KILN_CACHE_MAX_MB", "0", 1);  // 0 turns the disk cache off, silently
  {
    KernelCache cache;
    EXPECT_FALSE(cache.enabled());
  }
  restore("KILN_CACHE_DIR", dir);
  restore("KILN_CACHE_MAX_MB", mb);
  restore("HOME", home);
}

TEST_F(KernelCacheTest, DirectoryThatCannotBeCreatedDisablesTheCache) {
  // Works as root too: nothing can be created below a regular file.
  write_file(dir_ + "/file", bytes_of("x"));
  std::string target = dir_ + "/file/cache";
  ::testing::internal::CaptureStderr();
  KernelCache cache(target, 1 << 20);
  cache.put("k", bytes_of("v"));
  EXPECT_FALSE(cache.get("k").has_value());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "kiln: cache directory " + target + " is not writable; using the in-memory cache only\n");
  EXPECT_FALSE(cache.enabled());
}

TEST_F(KernelCacheTest, ReadOnlyDirectoryIsReadButNotWritten) {
  // A pre-filled cache, then made read-only for a process that cannot write it.
  {
    KernelCache writer(dir_, 1 << 20);
    writer.put("a", bytes_of("1"));
    writer.put("b", pattern(3000, 4));
  }
  const std::vector<std::string> before = list_dir(dir_);
  ASSERT_EQ(::chmod(dir_.c_str(), 0555), 0);
  Unprivileged run = run_unprivileged([&](std::string& report) {
    if (::access(dir_.c_str(), W_OK) == 0 || ::access(dir_.c_str(), R_OK | X_OK) != 0)
      ::_exit(kSkip);
    KernelCache cache(dir_, 1 << 20);
    report += fmt_line("enabled", cache.enabled());
    report += fmt_line("writable", cache.writable());
    report += fmt_line("a", cache.get("a") == bytes_of("1"));
    report += fmt_line("b", cache.get("b") == pattern(3000, 4));
    cache.put("c", bytes_of("3"));  // skipped, with one warning
    cache.put("d", bytes_of("4"));
    report += fmt_line("c", cache.get("c").has_value());
    report += fmt_line("hits", cache.stats().disk_hits);
    report += fmt_line("written", cache.stats().bytes_written);
  });
  if (run.skipped) GTEST_SKIP() << "cannot drop write permission here (root without setuid?)";
  EXPECT_EQ(run.report,
            "enabled=1\nwritable=0\na=1\nb=1\nc=0\nhits=2\nwritten=0\n");
  EXPECT_EQ(run.err, "kiln: cache directory " + dir_ +
                         " is not writable; reading its entries but storing no new ones\n");
  EXPECT_EQ(list_dir(dir_), before);
}

TEST_F(KernelCacheTest, DirectoryThatBecomesReadOnlyLaterKeepsBeingRead) {
  const std::string later = dir_ + "/later";
  ASSERT_EQ(::mkdir(later.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // reachable by the unprivileged child
  Unprivileged run = run_unprivileged([&](std::string& report) {
    // The child owns nothing: it gets a directory of its own, then loses the right to write it.
    const std::string mine = later + "/mine";
    if (::mkdir(mine.c_str(), 0755) != 0 && errno != EEXIST) ::_exit(kSkip);
    KernelCache cache(mine, 1 << 20);
    cache.put("a", bytes_of("1"));
    ::chmod(mine.c_str(), 0555);
    if (::access(mine.c_str(), W_OK) == 0) ::_exit(kSkip);
    cache.put("b", bytes_of("2"));
    cache.put("c", bytes_of("3"));
    report += fmt_line("enabled", cache.enabled());
    report += fmt_line("writable", cache.writable());
    report += fmt_line("a", cache.get("a") == bytes_of("1"));
    report += fmt_line("b", cache.get("b").has_value());
    report += fmt_line("files", list_dir(mine).size());
  }, /*writable_dir=*/later);
  if (run.skipped) GTEST_SKIP() << "cannot drop write permission here (root without setuid?)";
  EXPECT_EQ(run.report, "enabled=1\nwritable=0\na=1\nb=0\nfiles=1\n");
  EXPECT_EQ(run.err, "kiln: cache directory " + later + "/mine" +
                         " is not writable; reading its entries but storing no new ones\n");
}

TEST_F(KernelCacheTest, UnreadableDirectoryWarnsOnceAndDisablesTheCache) {
  std::string locked = dir_ + "/locked";
  ASSERT_EQ(::mkdir(locked.c_str(), 0), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  Unprivileged run = run_unprivileged([&](std::string& report) {
    if (::access(locked.c_str(), R_OK) == 0) ::_exit(kSkip);
    for (const std::string& target : {locked, locked + "/sub/dir"}) {
      KernelCache cache(target, 1 << 20);
      cache.put("k", bytes_of("v"));
      report += fmt_line("hit", cache.get("k").has_value());
      cache.put("k", bytes_of("v"));
      report += fmt_line("enabled", cache.enabled());
      report += fmt_line("misses", cache.stats().disk_misses);
    }
  });
  if (run.skipped) GTEST_SKIP() << "cannot drop read permission here (root without setuid?)";
  EXPECT_EQ(run.report, "hit=0\nenabled=0\nmisses=1\nhit=0\nenabled=0\nmisses=1\n");
  EXPECT_EQ(run.err,
            "kiln: cache directory " + locked + " is not writable; using the in-memory cache only\n"
            "kiln: cache directory " + locked + "/sub/dir is not writable; using the in-memory cache only\n");
}

TEST_F(KernelCacheTest, FifoInPlaceOfAnEntryIsRecompiledWithoutBlocking) {
  KernelCache cache(dir_, 1 << 20);
  const std::string path = cache.entry_path("k");
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  ::testing::internal::CaptureStderr();
  auto got = std::async(std::launch::async, [&] { return cache.get("k"); });
  if (got.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Unblock the reader so the test ends, then fail.
    int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    got.wait();
    ::testing::internal::GetCapturedStderr();
    FAIL() << "get() blocked on a FIFO";
  }
  EXPECT_FALSE(got.get().has_value());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "kiln: cache entry " + path + " is corrupt (a FIFO, not a regular file); recompiling\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(path)));  // removed like a corrupt entry
  EXPECT_EQ(cache.stats().corrupt_entries, 1);
  cache.put("k", bytes_of("v"));  // the recompiled entry takes its place
  EXPECT_EQ(cache.get("k"), bytes_of("v"));
  EXPECT_TRUE(fs::is_regular_file(path));
}

TEST_F(KernelCacheTest, DirectoryInPlaceOfAnEntryWarnsOnceAndOtherKeysAreCached) {
  KernelCache cache(dir_, 1 << 20);
  const std::string path = cache.entry_path("k");
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  write_file(path + "/inside", bytes_of("someone's file"));
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(cache.get("k").has_value());
    cache.put("k", bytes_of("v"));
  }
  cache.put("other", bytes_of("w"));
  EXPECT_EQ(cache.get("other"), bytes_of("w"));
  EXPECT_EQ(::testing::internal::GetCapturedStderr(),
            "kiln: cache entry " + path +
                " is a directory, not a file; this graph is not cached on disk until it is removed\n");
  EXPECT_TRUE(fs::is_directory(path));  // left as it was
  EXPECT_EQ(read_file(path + "/inside"), bytes_of("someone's file"));
  EXPECT_TRUE(non_entries(dir_).empty()) << ::testing::PrintToString(non_entries(dir_));
  // Removing it lets the graph be cached again.
  fs::remove_all(path);
  cache.put("k", bytes_of("v"));
  EXPECT_EQ(cache.get("k"), bytes_of("v"));
}

TEST(KernelCacheEntry, EncodeDecodeRoundTripAndEveryCorruption) {
  const std::string key = "the key";
  const std::vector<uint8_t> payload = pattern(300, 8);
  const std::vector<uint8_t> entry = KernelCache::encode_entry(key, payload);
  ASSERT_EQ(entry.size(), 40 + key.size() + payload.size());
  kiln::KernelCacheEntry ok = KernelCache::decode_entry(entry.data(), entry.size(), key);
  ASSERT_EQ(ok.status, kiln::KernelCacheEntry::Status::valid);
  ASSERT_EQ(ok.payload_size, payload.size());
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), entry.begin() + ok.payload_offset));
  EXPECT_EQ(KernelCache::decode_entry(entry.data(), entry.size(), "another key").status,
            kiln::KernelCacheEntry::Status::other_key);
  // Every prefix is corrupt, and so is every single flipped bit except in the version.
  for (size_t n = 0; n < entry.size(); ++n)
    EXPECT_EQ(KernelCache::decode_entry(entry.data(), n, key).status,
              kiln::KernelCacheEntry::Status::corrupt) << "prefix " << n;
  for (size_t i = 0; i < entry.size(); ++i) {
    std::vector<uint8_t> bad = entry;
    bad[i] ^= 0x10;
    auto status = KernelCache::decode_entry(bad.data(), bad.size(), key).status;
    if (i >= 8 && i < 12) EXPECT_EQ(status, kiln::KernelCacheEntry::Status::other_format);
    else EXPECT_EQ(status, kiln::KernelCacheEntry::Status::corrupt) << "byte " << i;
  }
  // An empty payload and an empty key are entries too.
  const std::vector<uint8_t> empty = KernelCache::encode_entry("", {});
  EXPECT_EQ(KernelCache::decode_entry(empty.data(), empty.size(), "").status,
            kiln::KernelCacheEntry::Status::valid);
}

TEST_F(KernelCacheTest, NoTemporaryFilesRemainAfterPut) {
  KernelCache cache(dir_, 1 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 25; ++i) {
        cache.put("shared", pattern(3000, static_cast<uint8_t>(t)));
        cache.put("k" + std::to_string(t) + "-" + std::to_string(i % 5), pattern(100 + i, 1));
        auto got = cache.get("shared");
        ASSERT_TRUE(got.has_value());
        ASSERT_EQ(got->size(), 3000u);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_TRUE(non_entries(dir_).empty()) << ::testing::PrintToString(non_entries(dir_));
  EXPECT_EQ(list_dir(dir_).size(), 1u + 4 * 5);
  kiln::KernelCacheStats s = cache.stats();
  EXPECT_EQ(s.disk_hits, 100);
  EXPECT_EQ(s.corrupt_entries, 0);
}

TEST_F(KernelCacheTest, StaleTemporaryFilesOfCrashedWritersAreRemoved) {
  KernelCache cache(dir_, 1 << 20);
  std::string stale = dir_ + "/.tmp-999999-0-deadbeef";
  std::string fresh = dir_ + "/.tmp-999999-1-feedface";  // maybe another process writing now
  write_file(stale, bytes_of("half an entry"));
  write_file(fresh, bytes_of("half an entry"));
  struct timespec old[2] = {{std::time(nullptr) - 7200, 0}, {std::time(nullptr) - 7200, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, stale.c_str(), old, 0), 0);
  cache.put("k", bytes_of("v"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh));
}

TEST_F(KernelCacheTest, TwoProcessesPuttingTheSameKeyLeaveAValidEntry) {
  const std::string key = KernelCache::make_key({"graph", "same"});
  const size_t size = 1 << 20;
  std::vector<uint8_t> one(size, 1), two(size, 2);
  ::testing::internal::CaptureStderr();
  pid_t children[2];
  for (int c = 0; c < 2; ++c) {
    children[c] = ::fork();
    ASSERT_GE(children[c], 0);
    if (children[c] == 0) {
      KernelCache cache(dir_, 64 << 20);
      const std::vector<uint8_t>& mine = c == 0 ? one : two;
      for (int i = 0; i < 20; ++i) cache.put(key, mine);
      ::_exit(cache.enabled() ? 0 : 1);
    }
  }
  // Meanwhile a reader only ever sees complete entries.
  KernelCache reader(dir_, 64 << 20);
  for (int i = 0; i < 200; ++i) {
    auto got = reader.get(key);
    if (!got) continue;
    ASSERT_TRUE(*got == one || *got == two);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, Not(HasSubstr("corrupt")));
  auto got = reader.get(key);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(*got == one || *got == two);
  EXPECT_EQ(list_dir(dir_), std::vector<std::string>{fs::path(reader.entry_path(key)).filename().string()});
  EXPECT_EQ(reader.stats().corrupt_entries, 0);
}
