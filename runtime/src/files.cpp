// kiln::files: atomic replacement of files (see kiln/files.h).
#include "kiln/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "kiln/error.h"

namespace kiln::files {

namespace {

// A temporary file a dead writer left: this long after its last write, one of another host
// (whose processes cannot be checked) is taken as abandoned.
constexpr int64_t kStaleTempSeconds = 3600;

// 8 hex digits naming this host, so that the pid in a temporary file's name is only checked
// on the host that wrote it (a shared or network directory).
const std::string& host_tag() {
  static const std::string tag = [] {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) != 0) name[0] = '\0';
    uint32_t h = 2166136261u;  // FNV-1a 32
    for (const char* p = name; *p; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 16777619u;
    return fmt::format("{:08x}", h);
  }();
  return tag;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// `path` with symbolic links of its last component followed to the file they name (which
// may not exist yet); `fail` gets the reason when a link cannot be followed.
template <typename Fail>
std::string resolve_symlinks(const std::string& path, const Fail& fail) {
  std::string p = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    std::vector<char> buf(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    ssize_t n = ::readlink(p.c_str(), buf.data(), buf.size());
    if (n < 0 || static_cast<size_t>(n) >= buf.size())
      fail(fmt::format("cannot read the symbolic link '{}': {}", p,
                       n < 0 ? std::strerror(errno) : "it changed while being read"));
    std::string link(buf.data(), static_cast<size_t>(n));
    p = link.front() == '/' || p.find('/') == std::string::npos ? link : parent_dir(p) + "/" + link;
  }
  fail("too many levels of symbolic links");
  return p;
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// The pid in a temporary file's name after its prefix ("<pid>-<n>..."), or -1.
long temp_file_pid(const std::string& rest) {
  size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || dash > 9) return -1;
  if (rest.find_first_not_of("0123456789") < dash) return -1;
  return std::stol(rest.substr(0, dash));
}

// Removes the temporary files of earlier writes of `target` whose writer is gone.
void remove_stale_temp_files(const std::string& target) {
  const std::string dir = parent_dir(target);
  const std::string ours = "." + base_name(target) + ".kiln-tmp-";  // any host
  const std::string this_host = ours + host_tag() + "-";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  while (const struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, ours.size(), ours) != 0) continue;
    const std::string path = dir + "/" + name;
    bool stale;
    if (name.compare(0, this_host.size(), this_host) == 0) {
      long pid = temp_file_pid(name.substr(this_host.size()));
      stale = pid > 0 && pid != static_cast<long>(::getpid()) &&
              ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
    } else {
      struct stat st;
      stale = ::lstat(path.c_str(), &st) == 0 && now - static_cast<int64_t>(st.st_mtime) > kStaleTempSeconds;
    }
    if (stale) ::unlink(path.c_str());
  }
  ::closedir(d);
}

}  // namespace

std::string temp_file_prefix(const std::string& target) {
  return parent_dir(target) + "/." + base_name(target) + ".kiln-tmp-" + host_tag() + "-";
}

void replace_file(const std::string& path, const std::string& who,
                  const std::function<std::string(const std::string& tmp)>& write) {
  auto fail_as = [&](const std::string& shown, const std::string& reason) {
    throw Error(fmt::format("{}: cannot write {}: {}", who, shown, reason));
  };
  const std::string target = resolve_symlinks(path, [&](const std::string& reason) {
    fail_as(fmt::format("'{}'", path), reason);
  });
  const std::string shown =
      target == path ? fmt::format("'{}'", path) : fmt::format("'{}' (a symbolic link to '{}')", path, target);
  struct stat existing;
  const bool exists = ::stat(target.c_str(), &existing) == 0;
  if (exists && !S_ISREG(existing.st_mode))
    fail_as(shown, fmt::format("it is {}, not a regular file; nothing was written", file_kind(existing.st_mode)));
  remove_stale_temp_files(target);

  static std::atomic<uint64_t> counter{0};
  const std::string tmp = fmt::format("{}{}-{}", temp_file_prefix(target), static_cast<long>(::getpid()), counter++);
  auto cleanup_fail = [&](const std::string& reason) {
    ::unlink(tmp.c_str());
    fail_as(shown, reason);
  };
  std::string failed;
  try {
    failed = write(tmp);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  if (!failed.empty()) cleanup_fail(failed);
  if (exists) (void)::chmod(tmp.c_str(), existing.st_mode & 07777);  // the target's permissions
  if (::rename(tmp.c_str(), target.c_str()) != 0) cleanup_fail(std::strerror(errno));
}

void replace_file_contents(const std::string& path, const std::string& who, const std::string& bytes) {
  replace_file(path, who, [&](const std::string& tmp) -> std::string {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return std::strerror(errno);
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string reason = n < 0 ? std::strerror(errno) : "nothing written";
        ::close(fd);
        return reason;
      }
      done += static_cast<size_t>(n);
    }
    return ::close(fd) == 0 ? std::string() : std::string(std::strerror(errno));
  });
}

}  // namespace kiln::files
