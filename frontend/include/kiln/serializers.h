// kiln::serializers: Chainer-compatible npz snapshots of links and optimizers,
// over kiln::npz, the NumPy .npz reader/writer (kiln/npz.h).
#pragma once
#include <map>
#include <string>

#include "kiln/array.h"
#include "kiln/link.h"
#include "kiln/npz.h"
#include "kiln/optimizers.h"

namespace kiln {

namespace serializers {

// Saves the initialized parameters and the persistent values of `link` under
// Chainer's keys (namedparams names without the leading "/": "predictor/l1/W").
// Written by npz::write: atomically, through symbolic links, and never over
// anything but a regular file (see kiln/npz.h).
void save_npz(const std::string& path, const Link& link, bool compression = true);

// Loads parameters and persistents saved by save_npz or by Chainer. Keys are
// `path_prefix` + name (e.g. path_prefix "updater/model:main/" for a trainer
// snapshot). Everything is read and checked first (missing key when strict,
// unexpected key under path_prefix when strict, shape or dtype mismatch, a
// corrupt file); only then are values assigned, so a failed load leaves the
// link unchanged. An uninitialized (lazy) parameter takes the file's shape.
// Errors are kiln::Error naming the file and the key.
void load_npz(const std::string& path, Link& link, const std::string& path_prefix = "",
              bool strict = true);

// The same for an optimizer's state, with Chainer's keys: "t", "epoch" and
// for each parameter "<name>/t" and its state arrays ("<name>/m", "<name>/v", ...).
// The optimizer must be set up (its target gives the parameter names).
void save_npz(const std::string& path, optimizers::Optimizer& optimizer, bool compression = true);
void load_npz(const std::string& path, optimizers::Optimizer& optimizer,
              const std::string& path_prefix = "", bool strict = true);

// The key/value maps behind the functions above (what save_npz writes,
// what load_npz reads), for composing snapshots of several objects.
std::map<std::string, Array> to_arrays(const Link& link, const std::string& prefix = "");
std::map<std::string, Array> to_arrays(optimizers::Optimizer& optimizer,
                                       const std::string& prefix = "");
// Checks and assigns from an already-read map; `file` names the source in errors.
void from_arrays(const std::map<std::string, Array>& arrays, Link& link,
                 const std::string& path_prefix = "", bool strict = true,
                 const std::string& file = "<arrays>");
void from_arrays(const std::map<std::string, Array>& arrays, optimizers::Optimizer& optimizer,
                 const std::string& path_prefix = "", bool strict = true,
                 const std::string& file = "<arrays>");

}  // namespace serializers

}  // namespace kiln
