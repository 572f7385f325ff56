// kiln::files: replacing a file on disk without ever leaving a part of it, for everything
// kiln writes (npz archives and snapshots, plots, logs, generated sources and the CUDA
// emulator's libraries).
#pragma once
#include <functional>
#include <string>

namespace kiln::files {

// Creates or replaces the file at `path` with what `write(tmp)` puts into a temporary file
// beside it, then one rename:
//  - readers and a crash see the old file or the new one, never a partial one; when `write`
//    or the rename fails, the old file is left as it was and the temporary one removed;
//  - a symbolic link at `path` is followed (to any depth): the file it names is replaced and
//    the link stays;
//  - only a regular file is replaced: a directory, FIFO, socket or device node at `path` is
//    refused and nothing is touched;
//  - an existing file's permission bits are kept; a new one gets 0666 & ~umask;
//  - a writer killed midway (kill -9) leaves its temporary file, named temp_file_prefix(target)
//    + "<pid>-<n>..."; the next replace_file of the same target removes those of processes that
//    no longer run (those of other hosts when older than an hour), so they never pile up.
// `write` gets the temporary file's path (which does not exist yet; it may create it with an
// exclusive open), creates and fills it, and returns "" or what failed.
// Throws kiln::Error "<who>: cannot write '<path>': <reason>" when the file cannot be written.
// Thread-safe; concurrent replacements of one target leave one of them whole.
void replace_file(const std::string& path, const std::string& who,
                  const std::function<std::string(const std::string& tmp)>& write);

// replace_file with `bytes` as the file's content.
void replace_file_contents(const std::string& path, const std::string& who, const std::string& bytes);

// "<dir>/.<name>.kiln-tmp-<host tag>-": how replace_file's temporary files for the regular file
// `target` begin on this host.
std::string temp_file_prefix(const std::string& target);

}  // namespace kiln::files
