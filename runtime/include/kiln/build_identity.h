// kiln::compiler_identity: what identifies the running kiln build in disk-cache keys.
#pragma once
#include <string>

namespace kiln {

// The identity of the libkiln that is running, for keys of compiled artifacts
// kept on disk: a rebuilt kiln (another pipeline) must never load objects an
// older build compiled, even when its file has the same size and time.
//  - "build-id:<hex>": the GNU build ID (the NT_GNU_BUILD_ID note, a hash of
//    the linked code that the linker writes with --build-id) of the loaded
//    library, read from memory; or, when the library has none,
//  - file_content_identity() of the library's file; or "unknown-build" when
//    even its file cannot be found or read.
// Computed once per process (the first call reads the library's file when it
// has no build ID); thread-safe; never throws.
const std::string& compiler_identity();

// "build-id:<hex>" of the loaded ELF object (the executable or a shared
// library) whose memory contains `address`, or "" when it has no build ID.
// Thread-safe; never throws.
std::string loaded_build_id(const void* address);

// "content:<32 hex digits>", a 128-bit hash of the bytes of the file at `path`
// (so two files that differ only in content differ, whatever their size and
// times), or "" when the file cannot be read. Reads the whole file; thread-safe;
// never throws.
std::string file_content_identity(const std::string& path);

}  // namespace kiln
