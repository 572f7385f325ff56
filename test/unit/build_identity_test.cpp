// kiln::compiler_identity: the running libkiln's build ID, stable in a process;
// file content identities that see content, not size or time.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <kiln/build_identity.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

// What `command` prints on stdout, "" when it cannot be run.
std::string output_of(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return "";
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0;) out.append(buf.data(), n);
  return out;
}

const std::string kLibrary = std::string(KILN_BINARY_DIR) + "/lib/libkiln.so";

}  // namespace

TEST(CompilerIdentity, IsTheLibrarysBuildIdAndStableInAProcess) {
  const std::string& id = kiln::compiler_identity();
  EXPECT_EQ(&id, &kiln::compiler_identity());  // computed once
  std::vector<std::string> seen(4);
  std::vector<std::thread> threads;
  for (auto& s : seen) threads.emplace_back([&s] { s = kiln::compiler_identity(); });
  for (auto& t : threads) t.join();
  for (const auto& s : seen) EXPECT_EQ(s, id);
  // libkiln is linked with --build-id: the identity is the note readelf shows.
  ASSERT_EQ(id.rfind("build-id:", 0), 0u) << id;
  std::string notes = output_of("readelf -n '" + kLibrary + "' 2>/dev/null");
  if (notes.find("Build ID:") == std::string::npos) GTEST_SKIP() << "no readelf to cross-check";
  EXPECT_NE(notes.find("Build ID: " + id.substr(9) + "\n"), std::string::npos) << id << "\n" << notes;
}

TEST(CompilerIdentity, LoadedBuildIdOfAnAddressOutsideAnyObjectIsEmpty) {
  int on_stack = 0;
  EXPECT_EQ(kiln::loaded_build_id(&on_stack), "");
  EXPECT_EQ(kiln::loaded_build_id(nullptr), "");
}

TEST(CompilerIdentity, FileContentIdentitySeesContentNotSizeOrTime) {
  std::string dir = (fs::temp_directory_path() / "kiln_identity_XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string a = dir + "/a.so", b = dir + "/b.so";
  write_file(a, std::string(4096, 'x') + "build one");
  write_file(b, std::string(4096, 'x') + "build two");
  // Equal size and modification time: what the old path+size+mtime identity could not tell apart.
  struct timespec when[2] = {{1700000000, 0}, {1700000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, a.c_str(), when, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, b.c_str(), when, 0), 0);
  ASSERT_EQ(fs::file_size(a), fs::file_size(b));
  const std::string ida = kiln::file_content_identity(a), idb = kiln::file_content_identity(b);
  EXPECT_EQ(ida.rfind("content:", 0), 0u) << ida;
  EXPECT_EQ(ida.size(), 8u + 32u);
  EXPECT_NE(ida, idb);
  EXPECT_EQ(ida, kiln::file_content_identity(a));  // stable
  // The same bytes elsewhere, at another time: the same identity.
  fs::copy_file(a, dir + "/copy.so");
  EXPECT_EQ(kiln::file_content_identity(dir + "/copy.so"), ida);
  // An empty file and a missing one.
  write_file(dir + "/empty", "");
  EXPECT_EQ(kiln::file_content_identity(dir + "/empty").size(), 40u);
  EXPECT_EQ(kiln::file_content_identity(dir + "/missing"), "");
  fs::remove_all(dir);
}
