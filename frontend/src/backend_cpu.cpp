// The cpu backend: kiln -> fusion regions -> linalg -> LLVM -> object file, cached on disk, run by the JIT.
#include <filesystem>
#include <fstream>

#include "backend.h"
#include "kiln/build_identity.h"
#include "kiln/codegen/cpu.h"
#include "kiln/config.h"
#include "kiln/env.h"
#include "kiln/kernel_cache.h"
#include "kiln/passes/Passes.h"
#include "kiln_ir.h"
#include "mlir/Pass/PassManager.h"

namespace kiln::detail {
namespace {

DType dtypeOf(mlir::Type t) {
  if (t.isF32()) return DType::f32;
  if (t.isF64()) return DType::f64;
  if (t.isInteger(32)) return DType::i32;
  if (t.isInteger(64)) return DType::i64;
  return DType::b8;
}

Shape shapeOf(mlir::Type t) {
  auto tensor = mlir::cast<mlir::RankedTensorType>(t);
  return Shape(tensor.getShape().begin(), tensor.getShape().end());
}

// The kernel's interface, from the function it was compiled from: its
// results (kBatchDim: the run-time batch size) and where that size is read,
// the first argument dimension that is `?`, as -kiln-lower-to-linalg does.
struct Signature {
  std::vector<GraphSpec::Arg> outputs;
  size_t batch_arg = 0, batch_dim = 0;
  bool symbolic = false;
  // (result, argument): the result may be written into the argument's buffer
  // (kiln.donations; -kiln-donate-buffers made the kernel safe for it).
  std::vector<std::pair<size_t, size_t>> donations;

  explicit Signature(mlir::func::FuncOp graph) {
    for (mlir::Type t : graph.getFunctionType().getResults())
      outputs.push_back({shapeOf(t), dtypeOf(mlir::cast<mlir::RankedTensorType>(t).getElementType())});
    mlir::TypeRange inputs = graph.getFunctionType().getInputs();
    for (size_t a = 0; a < inputs.size() && !symbolic; ++a) {
      Shape s = shapeOf(inputs[a]);
      for (size_t d = 0; d < s.size() && !symbolic; ++d)
        if (s[d] == kBatchDim) batch_arg = a, batch_dim = d, symbolic = true;
    }
    if (auto attr = graph->getAttrOfType<mlir::DictionaryAttr>(passes::kDonationsAttr))
      if (auto pairs = attr.getAs<mlir::DenseI64ArrayAttr>("pairs"))
        for (size_t p = 0; p + 1 < pairs.size(); p += 2)
          if (pairs[p] >= 0 && static_cast<size_t>(pairs[p]) < outputs.size() && pairs[p + 1] >= 0 &&
              static_cast<size_t>(pairs[p + 1]) < inputs.size())
            donations.emplace_back(pairs[p], pairs[p + 1]);
  }
};

// A graph compiled by the CPU backend: outputs are allocated here and written
// by the kernel in place (out-params); inputs are read in place.
class CpuExecutable : public Executable {
 public:
  // The holders of a realized argument's buffer during run(): its node's value
  // and the graph's argument list (trace.cpp realize()).
  static constexpr long kExclusiveUses = 2;

  CpuExecutable(std::unique_ptr<cpu::Kernel> kernel, Signature signature)
      : kernel_(std::move(kernel)), signature_(std::move(signature)) {}
  std::vector<Array> run(const std::vector<Array>& args) override {
    int64_t batch = signature_.symbolic ? args.at(signature_.batch_arg).shape().at(signature_.batch_dim) : 0;
    std::vector<Array> results;
    results.reserve(signature_.outputs.size());
    // Out-params are written entirely by the kernel: no zero-fill needed.
    // A donated result (an optimizer update) is written into its argument's
    // buffer when only the argument's variable and this call hold it: the
    // parameter keeps its data pointer, and no array the user holds changes.
    std::vector<int> donor(signature_.outputs.size(), -1);
    for (auto [k, j] : signature_.donations)
      if (args.at(j).use_count() <= kExclusiveUses) donor[k] = static_cast<int>(j);
    for (size_t k = 0; k < signature_.outputs.size(); ++k) {
      const GraphSpec::Arg& o = signature_.outputs[k];
      if (donor[k] >= 0) {
        results.push_back(args[donor[k]]);
        continue;
      }
      Shape shape = o.shape;
      for (int64_t& d : shape)
        if (d == kBatchDim) d = batch;
      results.push_back(Array::empty(shape, o.dtype));
    }
    kernel_->call(args, results);
    return results;
  }

 private:
  std::unique_ptr<cpu::Kernel> kernel_;
  Signature signature_;
};

// The disk cache of compiled objects, keyed by the module, kiln's version and
// the target (LLVM version, CPU, features, threading, -O level, GEMM choice).
// Follows KILN_CACHE_DIR and KILN_CACHE_MAX_MB when they change (tests, tools).
KernelCache& diskCache() {
  static std::unique_ptr<KernelCache> cache;
  static std::string settings;
  std::string now = KernelCache::default_dir() + "|" + std::to_string(KernelCache::default_max_bytes());
  if (!cache || now != settings) {
    cache = std::make_unique<KernelCache>();
    settings = now;
  }
  return *cache;
}

std::string diskKey(const std::string& key) {
  // Not cached: the pipeline options in it (KILN_GEMM, ...) follow the environment.
  return KernelCache::make_key(
      {"kiln-cpu-object", KILN_VERSION_STRING, kiln::compiler_identity(), cpu::host_target_id(), key});
}

class CpuBackend : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  const char* description() const override { return "compiled, LLVM"; }
  std::string unavailable_reason() const override {
    if (cpu::linalg_lowering_available()) return {};
    return "kiln: KILN_BACKEND=cpu: the compiled CPU backend needs the -kiln-lower-to-linalg "
           "pass, which this build does not have yet; use KILN_BACKEND=interp";
  }
  std::string options_key() const override { return cpu::pipeline_environment(); }
  bool symbolic_batch() const override { return true; }

  std::shared_ptr<Executable> load_cached(const std::string& key, mlir::func::FuncOp graph) const override {
    // A disk hit links the cached object: no compile.
    std::optional<std::vector<uint8_t>> object = diskCache().get(diskKey(key));
    if (!object) return nullptr;
    if (!env::get_string("KILN_DUMP").empty())
      env::warn_once("KILN_DUMP and the disk cache",
                     "kiln: KILN_DUMP: graphs loaded from the disk cache (" + diskCache().dir() +
                         ") are not compiled, so nothing is dumped for them; to dump every graph, "
                         "turn the disk cache off with KILN_CACHE_MAX_MB=0 or clear that folder");
    return std::make_shared<CpuExecutable>(cpu::Kernel::load_object(*object), Signature(graph));
  }

  std::shared_ptr<Executable> compile(const CompileRequest& request) const override {
    mlir::ModuleOp module = *request.module;
    Signature signature(mlir::cast<mlir::func::FuncOp>(module.getBody()->front()));
    // Fusion regions group each kernel's ops; the lowering turns a region into fused loops.
    DiagnosticCollector diagnostics(*module.getContext());
    mlir::PassManager fuse(module.getContext());
    fuse.addNestedPass<mlir::func::FuncOp>(passes::createKilnFuse());
    if (mlir::failed(fuse.run(module))) throw Error("kiln: fusing the graph failed:\n" + diagnostics.text);
    const std::string& dump = request.dump_prefix;
    write_dump(dump, ".fused.mlir", module);
    cpu::CompileOptions options;
    options.dump_prefix = dump;
    options.failure_prefix =
        !dump.empty() ? dump : (std::filesystem::temp_directory_path() / ("kiln-" + request.hash)).string();
    cpu::CompileReport report;
    std::vector<uint8_t> object = cpu::compile_module(module, options, &report);
    auto loadStart = std::chrono::steady_clock::now();
    diskCache().put(diskKey(request.key), object);
    std::unique_ptr<cpu::Kernel> kernel = cpu::Kernel::load_object(object);
    auto end = std::chrono::steady_clock::now();
    if (!dump.empty()) {
      auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
      std::ofstream(dump + ".summary.txt") << fmt::format(
          "graph {}: {} args, {} kiln ops, {} linalg ops, {} outputs, object {} bytes; "
          "compile {:.1f} ms (kiln->linalg {:.1f}, ->LLVM dialect {:.1f}, LLVM {:.1f}, load {:.1f})\n",
          request.hash, request.args, request.ops, report.linalg_ops, request.outputs, object.size(),
          ms(request.start, end), report.linalg_ms, report.llvm_dialect_ms, report.object_ms, ms(loadStart, end));
    }
    return std::make_shared<CpuExecutable>(std::move(kernel), std::move(signature));
  }
};

}  // namespace

const Backend& cpu_backend() {
  static const CpuBackend backend;
  return backend;
}

}  // namespace kiln::detail
