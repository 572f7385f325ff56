// kilnc's C ABI: the description of an exported model and the entry points and header made from it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/array.h"

namespace llvm {
class Module;
}

namespace kilnc {

// One argument or result of an exported function (kiln.role, kiln.name), its
// type (-1: the batch dimension) and, for embedded ones, its data.
struct TensorSpec {
  std::string role, name;
  std::vector<int64_t> shape;
  kiln::DType dtype = kiln::DType::f32;
  int64_t elements() const;  // with the batch dimension counted as 1
  int64_t bytes() const;
};

// An exported function (@forward or @step) and the symbol of its compiled C interface.
struct FunctionSpec {
  std::string name;
  std::string ciface;  // _mlir_ciface_<symbol>
  std::vector<TensorSpec> args, results;
  // The traced batch size of a function whose batch stayed concrete, else 0.
  int64_t static_batch = 0;
  bool has_batch() const;
};

struct ModelSpec {
  std::string name;                 // the C prefix (--name)
  const FunctionSpec* forward = nullptr;  // @forward, if any
  const FunctionSpec* step = nullptr;     // @step (a training step), if any
  std::vector<FunctionSpec> functions;
  std::map<std::string, kiln::Array> weights;  // by kiln.name, checked against the functions
  // --threads=pthread|openmp: the compiled functions take a trailing i32 thread count, and
  // <name>_forward_threads / <name>_step_threads pass it (the plain entry points pass 1).
  bool threaded = false;
};

const char* c_type(kiln::DType dtype);

// Adds the embedded weights and the C entry points of `model` to `module`
// (which holds the compiled functions' C interfaces). Throws kiln::Error.
void add_entry_points(llvm::Module& module, const ModelSpec& model);

// The C header declaring those entry points.
std::string header_text(const ModelSpec& model);

}  // namespace kilnc
