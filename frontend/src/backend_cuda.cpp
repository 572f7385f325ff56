// The cuda backend: each kiln.fusion region a generated CUDA C++ kernel (codegen/cuda).
// Under KILN_CUDA_EMULATE=1 the program is compiled for the host and its kernels run on
// kiln's SIMT emulator (device memory = host memory). On a real GPU (the driver dlopen'd by
// kiln/cuda_driver.h) it is compiled by NVRTC for the device's arch, loaded as a module,
// and each run is one CUDA graph of its kernel launches, captured once and replayed. Library
// GEMM steps (cuda::LibraryGemm) run on cuBLASLt (kiln/cublaslt.h) on kiln's stream, inside the
// same graph; under the emulator on cblas (cuda::runLibraryGemmOnHost). KILN_CUDA_CUBLASLT=0
// emits every matmul as a generated GEMM kernel instead.
#ifdef KILN_HAVE_CUDA
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <mutex>

#include "backend.h"
#include "kiln/codegen/cuda.h"
#include "kiln/collective_abi.h"
#include "cuda_testing.h"
#include "kiln/device.h"
#include "kiln/env.h"
#include "kiln/files.h"
#include "kiln/kernel_cache.h"
#if KILN_HAVE_CUDA_DRIVER_API
#include "kiln/cublaslt.h"
#include "kiln/cuda_driver.h"
#endif
#include "kiln/passes/Passes.h"
#include "kiln_ir.h"
#include "mlir/Pass/PassManager.h"

namespace kiln::detail {
namespace {

// A folder of the disk cache's (`name`), or a temporary one when the disk cache is off:
// where emulated programs (.so files) and the sources of GPU modules are kept.
std::string cacheFolder(const std::string& name) {
  if (KernelCache::default_max_bytes() > 0) return KernelCache::default_dir() + "/" + name;
  return (std::filesystem::temp_directory_path() / ("kiln-" + name + "-" + std::to_string(::getuid()))).string();
}

// The batch size of a run: a `?` dimension of an argument (0 when none is symbolic).
int64_t batchOf(const cuda::Program& p, const std::vector<Array>& args) {
  for (const cuda::BufferInfo& b : p.buffers)
    if (b.argument >= 0)
      for (size_t d = 0; d < b.shape.size(); ++d)
        if (b.shape[d] < 0) return args.at(b.argument).shape()[d];
  return 0;
}

Shape shapeOf(const cuda::BufferInfo& b, int64_t batch) {
  Shape shape;
  for (int64_t d : b.shape) shape.push_back(d < 0 ? batch : d);
  return shape;
}

// The results of a run from its buffers: an argument returned as a result is copied.
std::vector<Array> resultsOf(const cuda::Program& p, const std::vector<Array>& storage) {
  std::vector<Array> results;
  for (int r : p.results) results.push_back(p.buffers[r].argument >= 0 ? storage[r].copy() : storage[r]);
  return results;
}

// Collective step `step` (kiln.collective_start): its bucket's buffer to the handler registered
// on this thread (kiln/collective_abi.h; kiln::distributed's allreduce_grad), which starts the
// bucket's reduction; nothing without one (the caller then starts it after the run).
void startCollective(const cuda::Program& p, const cuda::KernelInfo& step, void* buffer, int64_t batch) {
  if (collective_abi::Handler* h = collective_abi::current_handler())
    h->start(step.bucket, buffer, step.work.at(batch), p.buffers[step.inputs.at(0)].dtype);
}

class EmulatedExecutable : public Executable {
 public:
  explicit EmulatedExecutable(cuda::EmulatedProgram program) : program_(std::move(program)) {}

  std::vector<Array> run(const std::vector<Array>& args) override {
    const cuda::Program& p = program_.program();
    int64_t batch = batchOf(p, args);
    // Buffers and results on the arguments' device: a CUDA device, or the CPU where
    // KILN_BACKEND=cuda runs a graph of host arrays (emulated device memory is host memory).
    Device device = args.empty() ? Device::cpu() : args.front().device();
    std::vector<Array> storage;
    std::vector<void*> buffers;
    storage.reserve(p.buffers.size());
    for (const cuda::BufferInfo& b : p.buffers) {
      storage.push_back(b.argument >= 0 ? args.at(b.argument) : Array::empty(shapeOf(b, batch), b.dtype, device));
      buffers.push_back(storage.back().raw_data());
    }
    for (size_t k = 0; k < p.kernels.size(); ++k) {
      if (p.kernels[k].launch == cuda::LaunchKind::Collective)
        startCollective(p, p.kernels[k], buffers[p.kernels[k].inputs[0]], batch);
      else
        program_.launch(k, buffers, batch);
    }
    return resultsOf(p, storage);
  }

 private:
  cuda::EmulatedProgram program_;
};

}  // namespace

#if KILN_HAVE_CUDA_DRIVER_API
CudaModuleHook& cuda_module_hook_for_testing() {
  static CudaModuleHook hook;
  return hook;
}

namespace {

// The program on real GPUs. Per device: the module (NVRTC's cubin for the device's sm_XY
// from kiln's disk cache, or PTX for compute_90 that the driver JIT-compiles when the GPU is
// newer than NVRTC knows), loaded on the first run there. A run's launches are one CUDA graph
// per batch size, captured and instantiated on the first run of that size and replayed after;
// intermediate buffers are the executable's own per batch size, so only arguments and results
// move: when their addresses differ from the last run, the launches are captured again and the
// instantiated graph updated in place (cuGraphExecUpdate, no new instantiation). KILN_CUDA_GRAPHS=0
// launches each kernel instead. Runs are serialized (one stream per device). A program with
// collective steps (kiln.collective_start) is one graph per segment between them, and each
// collective step runs on the host between the segments' launches (startCollective: the
// bucket's NCCL allreduce, on the communicator's stream after an event of this one, so after
// the kernels that computed it and beside the later segments'), never captured, so that each
// run, a replay too, starts its buckets once.
class GpuExecutable : public Executable {
 public:
  explicit GpuExecutable(cuda::Program program) : program_(std::move(program)) {
    // The pieces of a run: kernel segments (a single one, maybe empty, without collectives)
    // and the collective steps between them.
    size_t begin = 0;
    for (size_t i = 0; i <= program_.kernels.size(); ++i) {
      const bool collective = i < program_.kernels.size() && program_.kernels[i].launch == cuda::LaunchKind::Collective;
      if (i < program_.kernels.size() && !collective) continue;
      if (i > begin || (i == program_.kernels.size() && pieces_.empty())) pieces_.push_back({begin, i, false});
      if (collective) pieces_.push_back({i, i + 1, true});
      begin = i + 1;
    }
    // The source is kept for error messages: in the disk cache's folder, else (a folder
    // that cannot take it: read-only, not a folder) in a temporary one; where neither can,
    // the messages say so instead of the compile failing.
    const std::string name = "kiln-" + std::to_string(std::hash<std::string>()(program_.source)) + ".cu";
    auto keep = [&](const std::filesystem::path& dir) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      sourcePath_ = (dir / name).string();
      if (std::filesystem::exists(sourcePath_, ec)) return true;
      try {
        files::replace_file_contents(sourcePath_, "kiln: cuda backend", program_.source);
        return true;
      } catch (const Error&) {
        return false;
      }
    };
    if (!keep(cacheFolder("cuda-sources")) &&
        !keep(std::filesystem::temp_directory_path() / ("kiln-cuda-sources-" + std::to_string(::getuid()))))
      sourcePath_ = name + " (not written: no writable folder)";
  }

  ~GpuExecutable() override {
    try {  // the driver may be gone (a test's fake replaced); nothing to report from a destructor
      const cuda_driver::DriverTable& t = cuda_driver::driver();
      for (auto& [index, d] : devices_) {
        for (Graph& g : d.graphs) destroy(g);
        if (d.module) t.cuModuleUnload(d.module);
#if KILN_HAVE_CUBLASLT
        if (!d.gemms.empty()) {
          const cuda_driver::CublasLtTable& lt = cuda_driver::cublaslt();
          for (auto& [key, plan] : d.gemms) {
            for (cublasLtMatrixLayout_t l : {plan.a, plan.b, plan.c})
              if (l) lt.cublasLtMatrixLayoutDestroy(l);
            if (plan.desc) lt.cublasLtMatmulDescDestroy(plan.desc);
          }
        }
#endif
      }
    } catch (const Error&) {
    }
  }

  std::vector<Array> run(const std::vector<Array>& args) override {
    if (args.empty() || args.front().device().is_cpu()) {
      // KILN_BACKEND=cuda on host arrays: they run on GPU 0 and the results come back.
      std::vector<Array> on_gpu;
      for (const Array& a : args) on_gpu.push_back(a.to(Device::cuda(0)));
      std::vector<Array> results = runOnDevice(on_gpu, Device::cuda(0));
      for (Array& r : results) r = r.to(Device::cpu());
      return results;
    }
    return runOnDevice(args, args.front().device());
  }

 private:
  std::vector<Array> runOnDevice(const std::vector<Array>& args, const Device& device) {
    const cuda::Program& p = program_;
    std::lock_guard<std::mutex> lock(mutex_);
    PerDevice& d = loaded(device.index());
    const cuda_driver::DriverTable& t = cuda_driver::driver();
    CUstream stream = cuda_driver::stream(device.index());
    const int64_t batch = batchOf(p, args);
    std::vector<bool> result(p.buffers.size(), false);
    for (int r : p.results) result[r] = true;
    std::vector<Array>& scratch = d.scratch[batch];
    if (scratch.empty()) {
      for (size_t i = 0; i < p.buffers.size(); ++i)
        scratch.push_back(p.buffers[i].argument < 0 && !result[i]
                              ? Array::empty(shapeOf(p.buffers[i], batch), p.buffers[i].dtype, device)
                              : Array());
    }
    std::vector<Array> storage;
    std::vector<CUdeviceptr> addresses;
    for (size_t i = 0; i < p.buffers.size(); ++i) {
      const cuda::BufferInfo& b = p.buffers[i];
      storage.push_back(b.argument >= 0 ? args.at(b.argument)
                        : result[i]     ? Array::empty(shapeOf(b, batch), b.dtype, device)
                                        : scratch[i]);
      addresses.push_back(reinterpret_cast<CUdeviceptr>(storage.back().raw_data()));
    }
    if (!env::get_flag("KILN_CUDA_GRAPHS", true)) {
      launchAll(d, device.index(), addresses, batch, stream, 0, p.kernels.size());
    } else {
      const std::vector<CUgraphExec>& execs = graphsOf(d, device.index(), addresses, batch, stream);
      for (size_t i = 0; i < pieces_.size(); ++i) {
        if (pieces_[i].collective) {
          launchAll(d, device.index(), addresses, batch, stream, pieces_[i].begin, pieces_[i].end);
          continue;
        }
        cuda_driver::check(t.cuGraphLaunch(execs[i], stream), "cuGraphLaunch",
                           "cuda backend: replaying the graph of " + sourcePath_ + " on " + device.to_string());
      }
    }
    return resultsOf(p, storage);
  }

  // Steps [begin, end) of the plan, or one collective step.
  struct Piece {
    size_t begin, end;
    bool collective;
  };
  struct Graph {
    int64_t batch;
    std::vector<CUdeviceptr> addresses;
    std::vector<CUgraphExec> execs;  // by piece; null for a collective step
    bool complete = false;           // every segment instantiated for `addresses`
  };
  static void destroy(Graph& g) {
    for (CUgraphExec e : g.execs)
      if (e) cuda_driver::driver().cuGraphExecDestroy(e);
    g.execs.clear();
  }
#if KILN_HAVE_CUBLASLT
  // A library step's cuBLASLt descriptors for one batch size, made on its first run.
  struct GemmPlan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  // cuBLASLt's A (kiln's B), B (kiln's A), C = D
    cublasLtMatmulAlgo_t algo{};
  };
#endif
  struct PerDevice {
    CUmodule module = nullptr;
    std::vector<CUfunction> functions;  // nullptr for a library step
#if KILN_HAVE_CUBLASLT
    std::map<std::pair<size_t, int64_t>, GemmPlan> gemms;  // by (step, batch size)
#endif
    std::map<int64_t, std::vector<Array>> scratch;  // intermediate buffers by batch size
    std::list<Graph> graphs;                        // one per batch size, most recently used first
  };
  static constexpr size_t kMaxGraphs = 8;

  // "cuda backend: kernel K (region L, source FILE:LINE) on @cuda:N", for errors.
  std::string kernelWhat(const cuda::KernelInfo& k, int device) const {
    return "cuda backend: kernel " + k.name + " (region " + k.label + ", source " + sourcePath_ + ":" +
           std::to_string(k.first_line) + ") on @cuda:" + std::to_string(device);
  }

  PerDevice& loaded(int device) {
    auto it = devices_.find(device);
    if (it != devices_.end()) return it->second;
    const int cc = cuda_driver::compute_capability(device);
    KernelCache cache;
    cuda::NvrtcOutput out;
    try {
      out = cuda::nvrtcCompileCached(program_, "sm_" + std::to_string(cc), cache);
    } catch (const Error&) {
      if (cc <= 90) throw;  // NVRTC knows this arch: its error stands
      out = cuda::nvrtcCompileCached(program_, "compute_90", cache);  // a newer GPU JIT-compiles the PTX
    }
    const void* image = out.cubin.empty() ? static_cast<const void*>(out.ptx.c_str()) : out.cubin.data();
    if (cuda_module_hook_for_testing()) cuda_module_hook_for_testing()(program_, image);
    const cuda_driver::DriverTable& t = cuda_driver::driver();
    cuda_driver::make_current(device);
    PerDevice d;
    std::string labels;
    for (const cuda::KernelInfo& k : program_.kernels) labels += (labels.empty() ? "" : ", ") + k.label;
    cuda_driver::check(t.cuModuleLoadData(&d.module, image), "cuModuleLoadData",
                       "cuda backend: loading the " + out.arch + " module of " + sourcePath_ + " (regions " + labels +
                           ") on @cuda:" + std::to_string(device));
    for (const cuda::KernelInfo& k : program_.kernels) {
      CUfunction f = nullptr;
      if (k.launch == cuda::LaunchKind::Library || k.launch == cuda::LaunchKind::Collective) {
        d.functions.push_back(nullptr);
        continue;
      }
      cuda_driver::check(t.cuModuleGetFunction(&f, d.module, k.name.c_str()), "cuModuleGetFunction", kernelWhat(k, device));
      d.functions.push_back(f);
    }
    return devices_.emplace(device, std::move(d)).first->second;
  }

  // Library step `i` on cuBLASLt. cuBLASLt is column-major: kiln's row-major C = op(A) op(B) is
  // its column-major C^T = op(B)^T op(A)^T, so its A is kiln's B and its B kiln's A, and the
  // bias (one per column of C) is one per row of C^T, as CUBLASLT_EPILOGUE_BIAS adds it.
  void launchGemm(PerDevice& d, int device, size_t i, const std::vector<CUdeviceptr>& addresses, int64_t batch,
                  CUstream stream) {
    const cuda::KernelInfo& k = program_.kernels[i];
    const cuda::LibraryGemm& g = k.gemm;
    const int64_t m = g.m.at(batch), n = g.n.at(batch), kk = g.k.at(batch);
    const std::string what = "cuda backend: library gemm " + k.label + " (m " + std::to_string(m) + ", n " +
                             std::to_string(n) + ", k " + std::to_string(kk) + ") on @cuda:" + std::to_string(device);
#if KILN_HAVE_CUBLASLT
    if (m == 0 || n == 0) return;
    if (kk == 0 && g.bias < 0 && !g.relu) {  // an empty sum
      cuda_driver::check(cuda_driver::driver().cuMemsetD8Async(addresses[g.c], 0, static_cast<size_t>(m * n) * sizeof(float), stream),
                         "cuMemsetD8Async", what);
      return;
    }
    const cuda_driver::CublasLtTable& lt = cuda_driver::cublaslt();
    cublasLtHandle_t handle = cuda_driver::cublaslt_handle(device);
    auto it = d.gemms.find({i, batch});
    if (it == d.gemms.end()) {
      GemmPlan p;
      auto set = [&](cublasLtMatmulDescAttributes_t attr, const auto& value) {
        cuda_driver::check_cublas(lt.cublasLtMatmulDescSetAttribute(p.desc, attr, &value, sizeof(value)),
                                  "cublasLtMatmulDescSetAttribute", what);
      };
      cuda_driver::check_cublas(lt.cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate", what);
      it = d.gemms.emplace(std::make_pair(i, batch), p).first;  // destroyed with the executable, also after an error below
      set(CUBLASLT_MATMUL_DESC_TRANSA, g.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N);
      set(CUBLASLT_MATMUL_DESC_TRANSB, g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N);
      set(CUBLASLT_MATMUL_DESC_EPILOGUE, g.bias >= 0 ? (g.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS)
                                                     : (g.relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT));
      auto layout = [&](cublasLtMatrixLayout_t* l, int64_t rows, int64_t cols) {
        cuda_driver::check_cublas(lt.cublasLtMatrixLayoutCreate(l, CUDA_R_32F, rows, cols, rows), "cublasLtMatrixLayoutCreate", what);
      };
      layout(&it->second.a, g.transpose_b ? kk : n, g.transpose_b ? n : kk);
      layout(&it->second.b, g.transpose_a ? m : kk, g.transpose_a ? kk : m);
      layout(&it->second.c, n, m);
      cublasLtMatmulPreference_t pref = nullptr;
      cuda_driver::check_cublas(lt.cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate", what);
      const uint64_t workspace = cuda_driver::kCublasLtWorkspaceBytes;
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      cublasStatus_t rc = lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                                   sizeof(workspace));
      if (rc == CUBLAS_STATUS_SUCCESS)
        rc = lt.cublasLtMatmulAlgoGetHeuristic(handle, it->second.desc, it->second.a, it->second.b, it->second.c, it->second.c,
                                               pref, 1, &result, &found);
      lt.cublasLtMatmulPreferenceDestroy(pref);
      cuda_driver::check_cublas(rc, "cublasLtMatmulAlgoGetHeuristic", what);
      if (found == 0) throw Error("kiln: " + what + ": cublasLtMatmulAlgoGetHeuristic finds no algorithm");
      it->second.algo = result.algo;
    }
    GemmPlan& p = it->second;
    if (g.bias >= 0) {  // the bias's address may differ from run to run (a parameter's buffer)
      const void* bias = reinterpret_cast<const void*>(addresses[g.bias]);
      cuda_driver::check_cublas(lt.cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)),
                                "cublasLtMatmulDescSetAttribute", what);
    }
    const float alpha = g.alpha, beta = 0.0f;
    auto ptr = [&](int b) { return reinterpret_cast<void*>(addresses[b]); };
    cuda_driver::check_cublas(lt.cublasLtMatmul(handle, p.desc, &alpha, ptr(g.b), p.a, ptr(g.a), p.b, &beta, ptr(g.c), p.c, ptr(g.c),
                                                p.c, &p.algo, reinterpret_cast<void*>(cuda_driver::cublaslt_workspace(device)),
                                                cuda_driver::kCublasLtWorkspaceBytes, stream),
                              "cublasLtMatmul", what);
#else
    (void)d, (void)addresses, (void)stream;
    throw Error("kiln: " + what + ": kiln was built without the CUDA toolkit's cublasLt.h; KILN_CUDA_CUBLASLT=0 runs matmuls as "
                "kiln's generated GEMM kernels");
#endif
  }

  // Steps [begin, end) of the plan on `stream` (a collective step: startCollective, on the host).
  void launchAll(PerDevice& d, int device, const std::vector<CUdeviceptr>& addresses, int64_t batch,
                 CUstream stream, size_t begin, size_t end) {
    const cuda_driver::DriverTable& t = cuda_driver::driver();
    long long n = batch;
    for (size_t i = begin; i < end; ++i) {
      const cuda::KernelInfo& k = program_.kernels[i];
      if (k.launch == cuda::LaunchKind::Collective) {
        startCollective(program_, k, reinterpret_cast<void*>(addresses[k.inputs[0]]), batch);
        continue;
      }
      if (k.launch == cuda::LaunchKind::Library) {
        launchGemm(d, device, i, addresses, batch, stream);
        continue;
      }
      // The kernel's parameters in plan order (inputs, outputs), then `long long batch`.
      std::vector<CUdeviceptr> pointers;
      for (int b : k.inputs) pointers.push_back(addresses[b]);
      for (int b : k.outputs) pointers.push_back(addresses[b]);
      std::vector<void*> params;
      for (CUdeviceptr& p : pointers) params.push_back(&p);
      params.push_back(&n);
      unsigned grid[3], block[3];
      cuda::gridOf(k, batch, grid, block);
      cuda_driver::check(t.cuLaunchKernel(d.functions[i], grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, stream,
                                          params.data(), nullptr),
                         "cuLaunchKernel", kernelWhat(k, device));
    }
  }

  // The graphs of a run's segments on these buffers: the batch size's graphs as they are when
  // its buffers are the same as last time; else each segment's launches captured again and its
  // instantiated graph updated in place (cuGraphExecUpdate; instantiated anew when the update
  // is refused).
  const std::vector<CUgraphExec>& graphsOf(PerDevice& d, int device, const std::vector<CUdeviceptr>& addresses,
                                           int64_t batch, CUstream stream) {
    const cuda_driver::DriverTable& t = cuda_driver::driver();
    auto it = d.graphs.begin();
    while (it != d.graphs.end() && it->batch != batch) ++it;
    if (it != d.graphs.end()) {
      d.graphs.splice(d.graphs.begin(), d.graphs, it);
      if (it->complete && it->addresses == addresses) return it->execs;
    } else {
      if (d.graphs.size() == kMaxGraphs) {
        destroy(d.graphs.back());
        d.graphs.pop_back();
      }
      d.graphs.push_front(Graph{batch, {}, std::vector<CUgraphExec>(pieces_.size(), nullptr)});
      it = d.graphs.begin();
    }
    Graph& g = *it;
    g.complete = false;
    const std::string what = "cuda backend: capturing the graph of " + sourcePath_;
    for (size_t i = 0; i < pieces_.size(); ++i) {
      if (pieces_[i].collective) continue;
      cuda_driver::check(t.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture", what);
      CUgraph graph = nullptr;
      try {
        launchAll(d, device, addresses, batch, stream, pieces_[i].begin, pieces_[i].end);
      } catch (const Error&) {
        if (t.cuStreamEndCapture(stream, &graph) == CUDA_SUCCESS && graph) t.cuGraphDestroy(graph);
        throw;
      }
      cuda_driver::check(t.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture", what);
      CUgraphExecUpdateResultInfo info;
      if (g.execs[i] && t.cuGraphExecUpdate_v2(g.execs[i], graph, &info) == CUDA_SUCCESS) {
        t.cuGraphDestroy(graph);
        continue;
      }
      if (g.execs[i]) t.cuGraphExecDestroy(g.execs[i]);
      g.execs[i] = nullptr;
      CUresult rc = t.cuGraphInstantiateWithFlags(&g.execs[i], graph, 0);
      t.cuGraphDestroy(graph);
      if (rc != CUDA_SUCCESS) g.execs[i] = nullptr;
      cuda_driver::check(rc, "cuGraphInstantiate", what);
    }
    g.addresses = addresses;
    g.complete = true;
    return g.execs;
  }

  cuda::Program program_;
  std::string sourcePath_;
  std::vector<Piece> pieces_;
  std::mutex mutex_;
  std::map<int, PerDevice> devices_;
};

}  // namespace
#endif  // KILN_HAVE_CUDA_DRIVER_API

namespace {

class CudaBackend : public Backend {
 public:
  const char* name() const override { return "cuda"; }
  const char* description() const override { return "generated CUDA C++ kernels; KILN_CUDA_EMULATE=1 runs them on the SIMT emulator"; }
  std::string unavailable_reason() const override {
    if (cuda_driver::emulated()) return {};
    if (std::string reason = cuda_driver::unavailable_reason(); !reason.empty())
      return "kiln: KILN_BACKEND=cuda: no CUDA device: " + reason +
             "; KILN_CUDA_EMULATE=1 runs the generated CUDA kernels on kiln's SIMT emulator";
    return {};
  }
  std::string options_key() const override {
    return std::string(cuda_driver::emulated() ? "emulated" : "gpu") + (libraryGemms() ? "" : "+generated-gemms");
  }
  // Whether matmul regions become library steps: KILN_CUDA_CUBLASLT (default on), and on a GPU
  // only where kiln was built with cublasLt.h.
  static bool libraryGemms() {
#if KILN_HAVE_CUDA_DRIVER_API && KILN_HAVE_CUBLASLT
    const bool built = true;
#else
    const bool built = false;
#endif
    return env::get_flag("KILN_CUDA_CUBLASLT", true) && (built || cuda_driver::emulated());
  }
  bool symbolic_batch() const override { return true; }
  Device::Kind device_kind() const override { return Device::Kind::cuda; }
  std::shared_ptr<Executable> load_cached(const std::string&, mlir::func::FuncOp) const override { return nullptr; }

  std::shared_ptr<Executable> compile(const CompileRequest& request) const override {
    if (std::string reason = unavailable_reason(); !reason.empty()) throw Error(reason);
    mlir::ModuleOp module = *request.module;
    DiagnosticCollector diagnostics(*module.getContext());
    mlir::PassManager fuse(module.getContext());
    fuse.addNestedPass<mlir::func::FuncOp>(passes::createKilnHoistCollectives());  // buckets start early
    fuse.addNestedPass<mlir::func::FuncOp>(passes::createKilnFuse());
    if (mlir::failed(fuse.run(module))) throw Error("kiln: fusing the graph failed:\n" + diagnostics.text);
    write_dump(request.dump_prefix, ".fused.mlir", module);
    cuda::EmitOptions options;
    options.library_gemms = libraryGemms();
    cuda::Program program = cuda::emitProgram(mlir::cast<mlir::func::FuncOp>(module.getBody()->front()), options);
    if (!request.dump_prefix.empty()) std::ofstream(request.dump_prefix + ".cu") << program.source;
    if (cuda_driver::emulated())
      return std::make_shared<EmulatedExecutable>(cuda::EmulatedProgram::load(program, cacheFolder("cuda-emulator")));
#if KILN_HAVE_CUDA_DRIVER_API
#if KILN_HAVE_CUBLASLT
    if (cuda::usesLibraryGemm(program)) cuda_driver::cublaslt();  // a missing library is an error here, not at the first run
#endif
    return std::make_shared<GpuExecutable>(std::move(program));
#else
    throw Error("kiln: KILN_BACKEND=cuda: kiln was built without the CUDA toolkit's cuda.h, so it cannot drive a GPU");
#endif
  }
};

}  // namespace

const Backend& cuda_backend() {
  static const CudaBackend backend;
  return backend;
}

}  // namespace kiln::detail
#endif  // KILN_HAVE_CUDA
