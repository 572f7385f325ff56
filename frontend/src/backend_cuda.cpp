// The cuda backend: each kiln.fusion region a generated CUDA C++ kernel (codegen/cuda).
// Under KILN_CUDA_EMULATE=1 the program is compiled for the host and its kernels run on
// kiln's SIMT emulator (device memory = host memory). A real GPU needs the CUDA driver
// (libcuda.so.1, dlopen'd by kiln/device.h); launching through it is not implemented yet.
#ifdef KILN_HAVE_CUDA
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backend.h"
#include "kiln/codegen/cuda.h"
#include "kiln/device.h"
#include "kiln/kernel_cache.h"
#include "kiln/passes/Passes.h"
#include "kiln_ir.h"
#include "mlir/Pass/PassManager.h"

namespace kiln::detail {
namespace {

// Where emulated programs (.so files) are kept: the disk cache's folder, or a temporary
// one when the disk cache is off.
std::string emulatorDir() {
  if (KernelCache::default_max_bytes() > 0) return KernelCache::default_dir() + "/cuda-emulator";
  return (std::filesystem::temp_directory_path() / ("kiln-cuda-emulator-" + std::to_string(::getuid()))).string();
}

class EmulatedExecutable : public Executable {
 public:
  explicit EmulatedExecutable(cuda::EmulatedProgram program) : program_(std::move(program)) {}

  std::vector<Array> run(const std::vector<Array>& args) override {
    const cuda::Program& p = program_.program();
    // The batch size: a `?` dimension of an argument.
    int64_t batch = 0;
    for (const cuda::BufferInfo& b : p.buffers)
      if (b.argument >= 0)
        for (size_t d = 0; d < b.shape.size(); ++d)
          if (b.shape[d] < 0 && batch == 0) batch = args.at(b.argument).shape()[d];
    // Buffers and results on the arguments' device: a CUDA device, or the CPU where
    // KILN_BACKEND=cuda runs a graph of host arrays (emulated device memory is host memory).
    Device device = args.empty() ? Device::cpu() : args.front().device();
    std::vector<Array> storage;
    std::vector<void*> buffers;
    storage.reserve(p.buffers.size());
    for (const cuda::BufferInfo& b : p.buffers) {
      if (b.argument >= 0) {
        storage.push_back(args.at(b.argument));
      } else {
        Shape shape;
        for (int64_t d : b.shape) shape.push_back(d < 0 ? batch : d);
        storage.push_back(Array::empty(shape, b.dtype, device));
      }
      buffers.push_back(storage.back().raw_data());
    }
    for (size_t k = 0; k < p.kernels.size(); ++k) program_.launch(k, buffers, batch);
    std::vector<Array> results;
    for (int r : p.results)
      results.push_back(p.buffers[r].argument >= 0 ? storage[r].copy() : storage[r]);
    return results;
  }

 private:
  cuda::EmulatedProgram program_;
};

class CudaBackend : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  const char* description() const override { return "generated CUDA C++ kernels; KILN_CUDA_EMULATE=1 runs them on the SIMT emulator"; }
  std::string unavailable_reason() const override {
    if (cuda_driver::emulated()) return {};
    if (std::string reason = cuda_driver::unavailable_reason(); !reason.empty())
      return "kiln: KILN_BACKEND=cuda: no CUDA device: " + reason +
             "; KILN_CUDA_EMULATE=1 runs the generated CUDA kernels on kiln's SIMT emulator";
    return "kiln: KILN_BACKEND=cuda: running on a real GPU (module loading and launches through the "
           "CUDA driver) is not implemented yet; KILN_CUDA_EMULATE=1 runs the generated CUDA kernels on "
           "kiln's SIMT emulator";
  }
  std::string options_key() const override { return cuda_driver::emulated() ? "emulated" : "gpu"; }
  bool symbolic_batch() const override { return true; }
  Device::Kind device_kind() const override { return Device::Kind::cuda; }
  std::shared_ptr<Executable> load_cached(const std::string&, mlir::func::FuncOp) const override { return nullptr; }

  std::shared_ptr<Executable> compile(const CompileRequest& request) const override {
    if (std::string reason = unavailable_reason(); !reason.empty()) throw Error(reason);
    mlir::ModuleOp module = *request.module;
    DiagnosticCollector diagnostics(*module.getContext());
    mlir::PassManager fuse(module.getContext());
    fuse.addNestedPass<mlir::func::FuncOp>(passes::createKilnFuse());
    if (mlir::failed(fuse.run(module))) throw Error("kiln: fusing the graph failed:\n" + diagnostics.text);
    write_dump(request.dump_prefix, ".fused.mlir", module);
    cuda::Program program = cuda::emitProgram(mlir::cast<mlir::func::FuncOp>(module.getBody()->front()));
    if (!request.dump_prefix.empty()) std::ofstream(request.dump_prefix + ".cu") << program.source;
    return std::make_shared<EmulatedExecutable>(cuda::EmulatedProgram::load(program, emulatorDir()));
  }
};

}  // namespace

const Backend& cuda_backend() {
  static const CudaBackend backend;
  return backend;
}

}  // namespace kiln::detail
#endif  // KILN_HAVE_CUDA
