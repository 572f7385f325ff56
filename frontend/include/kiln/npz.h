// kiln::npz: the NumPy .npz reader and writer (no MLIR, no graph: arrays in, arrays out).
#pragma once
#include <cstddef>
#include <map>
#include <string>

#include "kiln/array.h"

namespace kiln::npz {

// Reads every array of a NumPy .npz archive (entries "<key>.npy", NPY format
// v1/v2/v3, C or Fortran order, either byte order; dtypes float32, float64,
// int32, int64, bool, and int8/uint8/int16/uint16 (as int32) and uint32 (as
// int64)). Entries that hold no numbers (Python objects such as Chainer's
// None, strings) are left out.
// Throws kiln::Error naming the file (and the key) when the archive cannot be
// opened, is corrupt or truncated, or holds an unsupported array.
std::map<std::string, Array> read(const std::string& path);

// The same for an archive already in memory; `name` stands for the file in
// error messages. Any bytes are safe to pass: what is not a valid archive
// throws kiln::Error (the npz fuzzer checks it never does anything else).
std::map<std::string, Array> read_bytes(const void* data, size_t size, const std::string& name);

// Writes `arrays` as an .npz archive (NPY v1.0, little-endian, C order),
// deflate-compressed or stored, through kiln::files::replace_file (kiln/files.h):
//  - Atomic: a temporary file beside the target renamed onto it, so readers see
//    the old file or the new one, never a partial one; an existing target keeps
//    its permission bits.
//  - A symbolic link at `path` is followed (to any depth): its target file is
//    replaced and the link stays as it was.
//  - Only a regular file is replaced: when `path` (or the file it links to) is
//    a directory, FIFO, socket or device node, throws kiln::Error naming the
//    path and what it is, and touches nothing.
//  - A save killed midway (kill -9) leaves its temporary file, named
//    temp_file_prefix(target) + "<pid>-<n>" (plus libzip's ".XXXXXX" while
//    libzip writes). The next save of the same target removes the temporary
//    files of processes that no longer run (those of other hosts when older
//    than an hour), so they never pile up.
// Throws kiln::Error naming the file when it cannot be written. Thread-safe
// for different targets; concurrent saves of one target leave one of them.
void write(const std::string& path, const std::map<std::string, Array>& arrays,
           bool compression = true);

// "<dir>/.<name>.kiln-tmp-<host tag>-": how the temporary files of saves to
// the regular file `target` begin on this host (files::temp_file_prefix).
std::string temp_file_prefix(const std::string& target);

// The NPY encoding of one array (v1.0) and its parser; `what` names the
// array in error messages.
std::string encode_npy(const Array& a);
Array decode_npy(const std::string& bytes, const std::string& what);

}  // namespace kiln::npz
