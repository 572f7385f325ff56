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

// --target=cuda: how @forward and @step run on a GPU (CudaTarget.cpp fills it from kiln's CUDA
// backend), as the plan the object's CUDA executor (cuda_executor.c) reads.
struct CudaPlan {
  struct Buffer {
    int64_t bytes = 0;      // at batch 1
    int64_t power = 0;      // of the batch in its size
    int64_t input = -1;     // the input (or label) it is (its data copied in at each call), or -1
    std::string slot;       // the kiln.name of the weight, parameter or state it is, or ""
  };
  struct Kernel {
    std::string name;             // the __global__ function
    int64_t launch[9] = {};       // kind, block, work, rows, count (factor, power), tile: kiln::cuda::gridOf's
    std::vector<int64_t> params;  // buffer of each pointer parameter (then `long long batch`)
  };
  struct Image {
    int64_t arch = 0;  // 80 for sm_80
    bool ptx = false;  // PTX text (NUL-terminated) that the driver compiles, else a cubin
    std::string data;
  };
  struct Update {
    std::string slot;    // the parameter or state a result of @step is the new value of
    int64_t buffer = 0;  // the buffer holding it (never an argument: the executor swaps them)
  };
  struct Function {
    const FunctionSpec* spec = nullptr;
    std::vector<Buffer> buffers;
    std::vector<Kernel> kernels;   // in launch order
    std::vector<Image> images;
    std::vector<int64_t> outputs;  // buffer of each output (and loss) result, in order
    std::vector<int64_t> statuses; // buffer of each kiln.check_range status result
    std::vector<Update> updates;
    bool symbolic_batch = false;
  };
  std::vector<Function> functions;  // @forward, then @step, those the model has
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
  // --target=cuda: the entry points run this plan through the linked CUDA executor
  // (kilnc_cuda_forward; for a training step kilnc_cuda_create, _run, _copy_slot, _destroy),
  // and <name>_last_error reports why a call failed.
  const CudaPlan* cuda = nullptr;
};

const char* c_type(kiln::DType dtype);

// Adds the embedded weights and the C entry points of `model` to `module`
// (which holds the compiled functions' C interfaces; with model.cuda, the linked CUDA
// executor, whose kilnc_cuda_plan this defines). Throws kiln::Error.
void add_entry_points(llvm::Module& module, const ModelSpec& model);

// The C header declaring those entry points.
std::string header_text(const ModelSpec& model);

}  // namespace kilnc
