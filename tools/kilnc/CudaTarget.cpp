// kilnc --target=cuda: @forward and @step as kiln's CUDA programs, their plan with NVRTC's images, and the executor's bitcode.
#include "CudaTarget.h"

#include <algorithm>
#include <cctype>

#include "kiln/error.h"
#include "kiln/passes/Passes.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/MemoryBuffer.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"

namespace kilnc {
namespace {

#if KILNC_HAVE_CUDA_EXECUTOR
// cuda_executor.c compiled to LLVM bitcode (tools/kilnc/CMakeLists.txt).
const unsigned char kExecutorBitcode[] = {
#include "cuda_executor_bc.inc"
};
#endif

int64_t launchKind(kiln::cuda::LaunchKind kind) {
  switch (kind) {
    case kiln::cuda::LaunchKind::Elements: return 0;
    case kiln::cuda::LaunchKind::Rows: return 1;
    case kiln::cuda::LaunchKind::Tiles: return 2;
  }
  throw kiln::Error("kilnc: internal error: an unknown launch kind");
}

// "sm_90" -> 90.
int64_t archNumber(const std::string& arch) {
  bool digits = arch.size() >= 5 && arch.rfind("sm_", 0) == 0 &&
                std::all_of(arch.begin() + 3, arch.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || arch.size() > 6)
    throw kiln::Error("--gpu-arch=" + arch + ": not a GPU architecture (sm_80, sm_86, sm_89, sm_90, ...)");
  return std::stoll(arch.substr(3));
}

// Renames the kernels of `program` (each an identifier kiln_N_... of its source: the kernel,
// its fill, its emulator entry) to `prefix` N_...
void renameKernels(kiln::cuda::Program& program, const std::string& prefix) {
  auto isIdentifier = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  auto isKernel = [](const std::string& name) {
    return name.size() >= 6 && name.rfind("kiln_", 0) == 0 && std::isdigit(static_cast<unsigned char>(name[5]));
  };
  for (kiln::cuda::KernelInfo& k : program.kernels) {
    if (!isKernel(k.name)) throw kiln::Error("kilnc: internal error: the CUDA kernel " + k.name + " is not named kiln_N_...");
    k.name = prefix + k.name.substr(5);
  }
  const std::string& in = program.source;
  std::string out;
  out.reserve(in.size() + in.size() / 16);
  for (size_t i = 0; i < in.size();) {
    if (!isIdentifier(in[i])) {
      out += in[i++];
      continue;
    }
    size_t end = i;
    while (end < in.size() && isIdentifier(in[end])) ++end;
    std::string token = in.substr(i, end - i);
    out += isKernel(token) ? prefix + token.substr(5) : token;
    i = end;
  }
  program.source = std::move(out);
}

}  // namespace

std::vector<CudaProgram> cuda_programs(mlir::ModuleOp module, const ModelSpec& model) {
  mlir::PassManager pm(module.getContext());
  pm.addNestedPass<mlir::func::FuncOp>(kiln::passes::createKilnFuse());
  if (mlir::failed(pm.run(module))) throw kiln::Error("--target=cuda: fusing the module failed");
  kiln::cuda::EmitOptions options;
  options.library_gemms = false;  // objects that need only libcuda: every matmul a generated kernel
  std::vector<CudaProgram> programs;
  for (const FunctionSpec* f : {model.forward, model.step}) {
    if (!f) continue;
    auto func = module.lookupSymbol<mlir::func::FuncOp>(f->name);
    programs.push_back({f, kiln::cuda::emitProgram(func, options)});
    if (model.forward && model.step) renameKernels(programs.back().program, "kiln_" + f->name + "_");
  }
  return programs;
}

CudaPlan cuda_plan(const std::vector<CudaProgram>& programs, const std::vector<std::string>& archs) {
  if (archs.empty()) throw kiln::Error("--gpu-arch: no architecture given");
  std::vector<std::pair<int64_t, std::string>> sorted;
  for (const std::string& a : archs) sorted.emplace_back(archNumber(a), a);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (!kiln::cuda::nvrtcAvailable())
    throw kiln::Error("--target=cuda needs NVRTC (libnvrtc of the CUDA toolkit) to compile the kernels, and it "
                      "cannot be loaded here (KILN_NVRTC_LIBRARY names it)");
  CudaPlan plan;
  for (const auto& [spec, program] : programs) {
    const FunctionSpec& f = *spec;
    CudaPlan::Function& function = plan.functions.emplace_back();
    function.spec = spec;
    function.symbolic_batch = f.has_batch();
    std::vector<int64_t> inputIndex(f.args.size(), -1);
    for (size_t i = 0, n = 0; i < f.args.size(); ++i)
      if (f.args[i].role == "input" || f.args[i].role == "label") inputIndex[i] = static_cast<int64_t>(n++);
    for (const kiln::cuda::BufferInfo& b : program.buffers) {
      CudaPlan::Buffer buffer;
      buffer.bytes = static_cast<int64_t>(kiln::dtype_size(b.dtype));
      for (int64_t d : b.shape) {
        if (d < 0) ++buffer.power;
        else buffer.bytes *= d;
      }
      if (b.argument >= 0) {
        if (static_cast<size_t>(b.argument) >= f.args.size())
          throw kiln::Error("kilnc: internal error: the CUDA program has an argument @" + f.name + " lacks");
        if (inputIndex[b.argument] >= 0) buffer.input = inputIndex[b.argument];
        else buffer.slot = f.args[b.argument].name;
      }
      function.buffers.push_back(buffer);
    }
    if (program.results.size() != f.results.size())
      throw kiln::Error("kilnc: internal error: the CUDA program has another number of results than @" + f.name);
    std::vector<bool> taken(program.buffers.size(), false);
    for (size_t i = 0; i < f.results.size(); ++i) {
      const TensorSpec& t = f.results[i];
      int64_t b = program.results[i];
      if (t.role == "output" || t.role == "loss") {
        function.outputs.push_back(b);
      } else if (t.role == "status") {
        function.statuses.push_back(b);
      } else if (t.role == "param" || t.role == "state") {
        // The executor makes the new value current by swapping the slot's buffer with the one
        // written, so that must be the step's own, and this slot's alone.
        if (function.buffers[b].slot == t.name) continue;  // returned unchanged
        if (program.buffers[b].argument >= 0 || taken[b])
          throw kiln::Error("--target=cuda: the " + t.role + " '" + t.name + "' that @" + f.name +
                            " returns is also " +
                            (taken[b] ? std::string("another result") : "its argument " + f.args[program.buffers[b].argument].name) +
                            " (the executor swaps each updated slot with a buffer of its own)");
        taken[b] = true;
        function.updates.push_back({t.name, b});
      }
    }
    for (const kiln::cuda::KernelInfo& k : program.kernels) {
      if (k.launch == kiln::cuda::LaunchKind::Collective)
        throw kiln::Error("--target=cuda: @" + f.name + ": " + k.label +
                          ": kiln.collective_start hands its bucket to kiln::distributed's communicator, which a kilnc "
                          "object has none of (the JIT's cuda backend runs it)");
      CudaPlan::Kernel kernel;
      kernel.name = k.name;
      const int64_t launch[9] = {launchKind(k.launch), k.block,       k.work.factor,  k.work.batch_power, k.rows.factor,
                                 k.rows.batch_power,  k.count.factor, k.count.batch_power, k.tile};
      std::copy(std::begin(launch), std::end(launch), kernel.launch);
      for (int b : k.inputs) kernel.params.push_back(b);
      for (int b : k.outputs) kernel.params.push_back(b);
      function.kernels.push_back(std::move(kernel));
    }
    for (size_t i = 0; i < sorted.size(); ++i) {
      kiln::cuda::NvrtcOutput out = kiln::cuda::nvrtcCompile(program, sorted[i].second);
      if (out.cubin.empty()) throw kiln::Error("kilnc: NVRTC gave no cubin for " + sorted[i].second);
      function.images.push_back({sorted[i].first, false, std::string(out.cubin.begin(), out.cubin.end())});
      if (i + 1 == sorted.size())  // the newest's PTX, for GPUs newer than every cubin
        function.images.push_back({sorted[i].first, true, out.ptx + std::string(1, '\0')});
    }
  }
  return plan;
}

std::unique_ptr<llvm::Module> cuda_executor(llvm::LLVMContext& context) {
#if !KILNC_HAVE_CUDA_EXECUTOR
  (void)context;
  throw kiln::Error("--target=cuda: this kilnc was built without LLVM's clang, which compiles the CUDA "
                    "executor it links into the object");
#else
  llvm::StringRef bytes(reinterpret_cast<const char*>(kExecutorBitcode), sizeof kExecutorBitcode);
  llvm::Expected<std::unique_ptr<llvm::Module>> module =
      llvm::parseBitcodeFile(llvm::MemoryBufferRef(bytes, "cuda_executor.bc"), context);
  if (!module) throw kiln::Error("kilnc: internal error: the CUDA executor's bitcode: " + llvm::toString(module.takeError()));
  return std::move(*module);
#endif
}

}  // namespace kilnc
