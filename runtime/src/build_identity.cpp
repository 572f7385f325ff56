// kiln::compiler_identity: the GNU build ID of the loaded libkiln, or a hash of its file.
#include "kiln/build_identity.h"

#include "hash.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <link.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace kiln {

namespace {

// An address inside libkiln (internal linkage: never resolved to another object).
void anchor() {}

struct BuildIdSearch {
  uintptr_t address;
  std::string id;
  bool found_object = false;
};

uintptr_t align_up(uintptr_t n, uintptr_t alignment) { return (n + alignment - 1) & ~(alignment - 1); }

// The NT_GNU_BUILD_ID note among the notes in [begin, end), as hex; "" if none.
std::string build_id_in_notes(const uint8_t* begin, const uint8_t* end, uintptr_t alignment) {
  const uint8_t* p = begin;
  while (end - p >= static_cast<std::ptrdiff_t>(sizeof(ElfW(Nhdr)))) {
    ElfW(Nhdr) note;
    std::memcpy(&note, p, sizeof note);
    const uintptr_t name_at = sizeof note;
    const uintptr_t desc_at = align_up(name_at + note.n_namesz, alignment);
    const uintptr_t next = align_up(desc_at + note.n_descsz, alignment);
    if (next > static_cast<uintptr_t>(end - p)) return "";
    if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
        std::memcmp(p + name_at, "GNU", 4) == 0 && note.n_descsz > 0) {
      std::string hex;
      for (uintptr_t i = 0; i < note.n_descsz; ++i) hex += fmt::format("{:02x}", p[desc_at + i]);
      return hex;
    }
    p += next;
  }
  return "";
}

int find_build_id(struct dl_phdr_info* info, size_t, void* data) {
  auto* search = static_cast<BuildIdSearch*>(data);
  bool contains = false;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && search->address >= start && search->address < start + ph.p_memsz)
      contains = true;
  }
  if (!contains) return 0;
  search->found_object = true;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum && search->id.empty(); ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* begin = reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr);
    search->id = build_id_in_notes(begin, begin + ph.p_filesz, ph.p_align >= 8 ? 8 : 4);
  }
  return 1;  // the object holding the address: stop
}

using detail::fnv1a;
using detail::kFnvOffset;
using detail::mix64;

}  // namespace

std::string loaded_build_id(const void* address) {
  BuildIdSearch search{reinterpret_cast<uintptr_t>(address), "", false};
  dl_iterate_phdr(find_build_id, &search);
  return search.id.empty() ? std::string() : "build-id:" + search.id;
}

std::string file_content_identity(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  // Two FNV-1a 64 streams with different offset bases, finalized with the length.
  uint64_t a = kFnvOffset, b = kFnvOffset ^ 0x9e3779b97f4a7c15ull, size = 0;
  std::vector<uint8_t> buffer(1 << 20);
  bool ok = true;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    a = fnv1a(buffer.data(), static_cast<size_t>(n), a);
    b = fnv1a(buffer.data(), static_cast<size_t>(n), b);
    size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (!ok) return "";
  return fmt::format("content:{:016x}{:016x}", mix64(a ^ size), mix64(b + (a << 32 | a >> 32)));
}

const std::string& compiler_identity() {
  static const std::string id = [] {
    const void* address = reinterpret_cast<const void*>(&anchor);
    if (std::string build_id = loaded_build_id(address); !build_id.empty()) return build_id;
    Dl_info info{};
    if (dladdr(address, &info) && info.dli_fname && *info.dli_fname)
      if (std::string content = file_content_identity(info.dli_fname); !content.empty())
        return content;
    return std::string("unknown-build");
  }();
  return id;
}

}  // namespace kiln
