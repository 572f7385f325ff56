// A fake GPU for tests (test/fake-gpu, the NCCL tests of test/distributed): a CUDA driver table
// (memory = host malloc, copies = memcpy, one trivial stream, modules = the program's kernels on
// kiln's SIMT emulator, graphs recorded and replayed) injected with
// cuda_driver::set_driver_for_testing, and a cuBLASLt table (cuda_driver::set_cublaslt_for_testing:
// descriptors recorded, cublasLtMatmul a column-major GEMM on host memory, captured into graphs
// like a kernel). FakeGpu installs both for a scope. One translation unit per test binary.
#pragma once
#include <kiln/kiln.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../unit/scoped_env.h"
#include "cuda_testing.h"
#include "kiln/codegen/cuda.h"
#include "kiln/cublaslt.h"
#include "kiln/cuda_driver.h"

namespace {

using namespace kiln;

// ---- the fake driver ----

struct FakeModule {
  std::unique_ptr<cuda::EmulatedProgram> program;
};
struct FakeFunction {
  FakeModule* module;
  size_t kernel;
};
struct FakeLaunch {
  FakeFunction* function;
  std::vector<void*> buffers;  // by plan index
  long long batch;
  std::function<void()> library;  // a cublasLtMatmul instead of a kernel
};
struct FakeGraph {
  std::vector<FakeLaunch> launches;
};

struct FakeState {
  std::mutex mutex;
  // Work that other fakes queue on the stream (the fake libnccl's collectives): called by
  // cuStreamQuery (wait false) and cuStreamSynchronize (wait true); true once all is done.
  // Unset, the stream is always idle: copies and launches run when they are called.
  std::function<bool(bool wait)> stream_work;
  size_t limit = size_t(1) << 30, used = 0;
  std::map<CUdeviceptr, size_t> blocks;
  int allocs = 0, frees = 0, copies = 0, launches = 0, captures = 0, instantiations = 0, updates = 0,
      graph_launches = 0;
  long kernels_run = 0;  // kernels and cuBLASLt matmuls executed (graph replays included): a clock
  int streams_created = 0, event_records = 0, stream_waits = 0;
  CUstream last_waiting = nullptr;  // the stream of the last cuStreamWaitEvent
  bool fail_launches = false;
  std::unique_ptr<cuda::Program> next_program;  // from the backend's module hook
  FakeGraph* capturing = nullptr;
  // cuBLASLt: calls, and the matmuls run (graph replays included).
  int lt_handles = 0, lt_descs = 0, lt_layouts = 0, lt_heuristics = 0, lt_matmul_calls = 0, lt_matmuls_run = 0,
      lt_destroyed = 0;
  std::vector<int> lt_epilogues;  // of each cublasLtMatmul call
  std::vector<std::vector<uint64_t>> lt_shapes;  // (rows, cols, ld) of A, B, D of each call
  std::vector<std::unique_ptr<FakeModule>> modules;
  std::vector<std::unique_ptr<FakeFunction>> functions;
};
FakeState* fake = nullptr;

std::string fakeDir() {
  return (std::filesystem::temp_directory_path() / ("kiln-fake-gpu-" + std::to_string(::getuid()))).string();
}

CUresult fakeInit(unsigned) { return CUDA_SUCCESS; }
CUresult fakeVersion(int* v) { return *v = 13000, CUDA_SUCCESS; }
CUresult fakeCount(int* n) { return *n = 2, CUDA_SUCCESS; }
CUresult fakeDeviceGet(CUdevice* d, int i) { return *d = i, CUDA_SUCCESS; }
CUresult fakeAttribute(int* v, CUdevice_attribute a, CUdevice) {
  *v = a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9 : 0;  // an sm_90 GPU
  return CUDA_SUCCESS;
}
CUresult fakeRetain(CUcontext* c, CUdevice d) {
  *c = reinterpret_cast<CUcontext>(static_cast<uintptr_t>(d + 1));
  return CUDA_SUCCESS;
}
CUresult fakeSetCurrent(CUcontext) { return CUDA_SUCCESS; }
CUresult fakeAlloc(CUdeviceptr* p, size_t n) {
  std::lock_guard<std::mutex> lock(fake->mutex);
  if (fake->used + n > fake->limit) return CUDA_ERROR_OUT_OF_MEMORY;
  void* q = std::aligned_alloc(256, (n + 255) / 256 * 256);
  *p = reinterpret_cast<CUdeviceptr>(q);
  fake->blocks[*p] = n;
  fake->used += n;
  ++fake->allocs;
  return CUDA_SUCCESS;
}
CUresult fakeFree(CUdeviceptr p) {
  std::lock_guard<std::mutex> lock(fake->mutex);
  auto it = fake->blocks.find(p);
  if (it == fake->blocks.end()) return CUDA_ERROR_INVALID_VALUE;
  fake->used -= it->second;
  fake->blocks.erase(it);
  ++fake->frees;
  std::free(reinterpret_cast<void*>(p));
  return CUDA_SUCCESS;
}
CUresult fakeMemInfo(size_t* free, size_t* total) {
  *free = fake->limit - fake->used;
  *total = fake->limit;
  return CUDA_SUCCESS;
}
CUresult fakeHtoD(CUdeviceptr d, const void* s, size_t n, CUstream) {
  ++fake->copies;
  return std::memcpy(reinterpret_cast<void*>(d), s, n), CUDA_SUCCESS;
}
CUresult fakeDtoH(void* d, CUdeviceptr s, size_t n, CUstream) {
  ++fake->copies;
  return std::memcpy(d, reinterpret_cast<void*>(s), n), CUDA_SUCCESS;
}
CUresult fakeDtoD(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream) {
  ++fake->copies;
  return std::memcpy(reinterpret_cast<void*>(d), reinterpret_cast<void*>(s), n), CUDA_SUCCESS;
}
CUresult fakeMemset(CUdeviceptr d, unsigned char v, size_t n, CUstream) {
  return std::memset(reinterpret_cast<void*>(d), v, n), CUDA_SUCCESS;
}
CUresult fakeStreamCreate(CUstream* s, unsigned) {
  static int streams[8];  // distinct handles of the one trivial stream
  *s = reinterpret_cast<CUstream>(&streams[std::min(fake->streams_created++, 7)]);
  return CUDA_SUCCESS;
}
CUresult fakeSync(CUstream) {
  if (fake->stream_work) fake->stream_work(true);
  return CUDA_SUCCESS;
}
// One trivial stream: every stream is it, and its work is done in order, so events need nothing
// (counted).
CUresult fakeStreamDestroy(CUstream) { return CUDA_SUCCESS; }
CUresult fakeEventCreate(CUevent* e, unsigned) {
  static int event;
  *e = reinterpret_cast<CUevent>(&event);
  return CUDA_SUCCESS;
}
CUresult fakeEventRecord(CUevent, CUstream) { return ++fake->event_records, CUDA_SUCCESS; }
CUresult fakeStreamWaitEvent(CUstream s, CUevent, unsigned) {
  ++fake->stream_waits;
  fake->last_waiting = s;
  return CUDA_SUCCESS;
}
CUresult fakeEventDestroy(CUevent) { return CUDA_SUCCESS; }
CUresult fakeQuery(CUstream) {
  return !fake->stream_work || fake->stream_work(false) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}
CUresult fakeModuleLoad(CUmodule* m, const void* image) {
  // NVRTC's cubin (an ELF file) for the program the backend's hook announced.
  if (!fake->next_program || std::memcmp(image, "\x7f" "ELF", 4) != 0) return CUDA_ERROR_INVALID_IMAGE;
  auto module = std::make_unique<FakeModule>();
  module->program = std::make_unique<cuda::EmulatedProgram>(cuda::EmulatedProgram::load(*fake->next_program, fakeDir()));
  fake->next_program.reset();
  *m = reinterpret_cast<CUmodule>(module.get());
  fake->modules.push_back(std::move(module));
  return CUDA_SUCCESS;
}
CUresult fakeModuleUnload(CUmodule) { return CUDA_SUCCESS; }
CUresult fakeGetFunction(CUfunction* f, CUmodule m, const char* name) {
  auto* module = reinterpret_cast<FakeModule*>(m);
  const auto& kernels = module->program->program().kernels;
  for (size_t k = 0; k < kernels.size(); ++k)
    if (kernels[k].name == name) {
      fake->functions.push_back(std::make_unique<FakeFunction>(FakeFunction{module, k}));
      *f = reinterpret_cast<CUfunction>(fake->functions.back().get());
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_NOT_FOUND;
}
void runLaunch(const FakeLaunch& l) {
  if (l.library) return l.library();  // counts itself
  ++fake->kernels_run;
  l.function->module->program->launch(l.function->kernel, l.buffers, l.batch);
}
CUresult fakeLaunch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                    unsigned shared, CUstream, void** params, void** extra) {
  if (fake->fail_launches) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
  auto* function = reinterpret_cast<FakeFunction*>(f);
  const cuda::Program& p = function->module->program->program();
  const cuda::KernelInfo& k = p.kernels[function->kernel];
  // The parameters as the generated kernel declares them: buffers (inputs, outputs), then batch.
  FakeLaunch l{function, std::vector<void*>(p.buffers.size(), nullptr), 0};
  size_t i = 0;
  for (const std::vector<int>* list : {&k.inputs, &k.outputs})
    for (int b : *list) l.buffers[b] = reinterpret_cast<void*>(*static_cast<CUdeviceptr*>(params[i++]));
  l.batch = *static_cast<long long*>(params[i]);
  unsigned grid[3], block[3];
  cuda::gridOf(k, l.batch, grid, block);
  if (extra || shared || grid[0] != gx || grid[1] != gy || grid[2] != gz || block[0] != bx || block[1] != by ||
      block[2] != bz)
    return CUDA_ERROR_INVALID_VALUE;
  ++fake->launches;
  if (fake->capturing) fake->capturing->launches.push_back(l);
  else runLaunch(l);
  return CUDA_SUCCESS;
}
CUresult fakeBeginCapture(CUstream, CUstreamCaptureMode) {
  fake->capturing = new FakeGraph;
  ++fake->captures;
  return CUDA_SUCCESS;
}
CUresult fakeEndCapture(CUstream, CUgraph* g) {
  *g = reinterpret_cast<CUgraph>(fake->capturing);
  fake->capturing = nullptr;
  return CUDA_SUCCESS;
}
CUresult fakeInstantiate(CUgraphExec* e, CUgraph g, unsigned long long) {
  ++fake->instantiations;
  *e = reinterpret_cast<CUgraphExec>(new FakeGraph(*reinterpret_cast<FakeGraph*>(g)));
  return CUDA_SUCCESS;
}
CUresult fakeUpdate(CUgraphExec e, CUgraph g, CUgraphExecUpdateResultInfo*) {
  auto* exec = reinterpret_cast<FakeGraph*>(e);
  auto* graph = reinterpret_cast<FakeGraph*>(g);
  if (exec->launches.size() != graph->launches.size()) return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
  for (size_t i = 0; i < exec->launches.size(); ++i)  // only kernel parameters may change
    if (exec->launches[i].function != graph->launches[i].function) return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
  ++fake->updates;
  *exec = *graph;
  return CUDA_SUCCESS;
}
CUresult fakeGraphLaunch(CUgraphExec e, CUstream) {
  ++fake->graph_launches;
  for (const FakeLaunch& l : reinterpret_cast<FakeGraph*>(e)->launches) runLaunch(l);
  return CUDA_SUCCESS;
}
CUresult fakeGraphDestroy(CUgraph g) { return delete reinterpret_cast<FakeGraph*>(g), CUDA_SUCCESS; }
CUresult fakeExecDestroy(CUgraphExec e) { return delete reinterpret_cast<FakeGraph*>(e), CUDA_SUCCESS; }
CUresult fakeErrorName(CUresult rc, const char** s) {
  *s = rc == CUDA_ERROR_OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY"
       : rc == CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES ? "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES" : "CUDA_ERROR_UNKNOWN";
  return CUDA_SUCCESS;
}
CUresult fakeErrorString(CUresult rc, const char** s) {
  *s = rc == CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES ? "too many resources requested for launch" : "unknown error";
  return CUDA_SUCCESS;
}

// ---- the fake cuBLASLt ----

struct FakeDesc {
  int32_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  uint32_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const float* bias = nullptr;
};
struct FakeLayout {
  uint64_t rows, cols;
  int64_t ld;
};

cublasStatus_t fakeLtCreate(cublasLtHandle_t* h) {
  *h = reinterpret_cast<cublasLtHandle_t>(static_cast<uintptr_t>(++fake->lt_handles));
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakeLtDestroy(cublasLtHandle_t) { return CUBLAS_STATUS_SUCCESS; }
size_t fakeLtVersion() { return 130000; }
cublasStatus_t fakeDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  if (compute != CUBLAS_COMPUTE_32F || scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  ++fake->lt_descs;
  *d = reinterpret_cast<cublasLtMatmulDesc_t>(new FakeDesc);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakeDescDestroy(cublasLtMatmulDesc_t d) {
  ++fake->lt_destroyed;
  return delete reinterpret_cast<FakeDesc*>(d), CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakeDescSet(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void* buf, size_t size) {
  auto* desc = reinterpret_cast<FakeDesc*>(d);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return size == 4 ? std::memcpy(&desc->transa, buf, 4), CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_TRANSB: return size == 4 ? std::memcpy(&desc->transb, buf, 4), CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return size == 4 ? std::memcpy(&desc->epilogue, buf, 4), CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
      return size == sizeof(void*) ? std::memcpy(&desc->bias, buf, size), CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}
cublasStatus_t fakeLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (type != CUDA_R_32F || ld < static_cast<int64_t>(rows)) return CUBLAS_STATUS_INVALID_VALUE;
  ++fake->lt_layouts;
  *l = reinterpret_cast<cublasLtMatrixLayout_t>(new FakeLayout{rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakeLayoutDestroy(cublasLtMatrixLayout_t l) {
  ++fake->lt_destroyed;
  return delete reinterpret_cast<FakeLayout*>(l), CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakePrefCreate(cublasLtMatmulPreference_t* p) {
  *p = reinterpret_cast<cublasLtMatmulPreference_t>(new uint64_t(0));
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakePrefDestroy(cublasLtMatmulPreference_t p) { return delete reinterpret_cast<uint64_t*>(p), CUBLAS_STATUS_SUCCESS; }
cublasStatus_t fakePrefSet(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const void* buf, size_t size) {
  if (attr != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES || size != 8) return CUBLAS_STATUS_NOT_SUPPORTED;
  return std::memcpy(reinterpret_cast<uint64_t*>(p), buf, 8), CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t fakeHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                             cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int requested,
                             cublasLtMatmulHeuristicResult_t* results, int* found) {
  ++fake->lt_heuristics;
  if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
  results[0] = cublasLtMatmulHeuristicResult_t{};
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}
// D = alpha op(A) op(B) + beta C, column-major, then the epilogue (bias per row of D, relu).
cublasStatus_t fakeMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void* alpha, const void* A, cublasLtMatrixLayout_t la,
                          const void* B, cublasLtMatrixLayout_t lb, const void* beta, const void* C, cublasLtMatrixLayout_t lc,
                          void* D, cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t*, void* workspace, size_t workspace_bytes,
                          cudaStream_t) {
  const FakeDesc desc = *reinterpret_cast<FakeDesc*>(d);
  const FakeLayout a = *reinterpret_cast<FakeLayout*>(la), b = *reinterpret_cast<FakeLayout*>(lb),
                   out = *reinterpret_cast<FakeLayout*>(ld);
  const bool ta = desc.transa == CUBLAS_OP_T, tb = desc.transb == CUBLAS_OP_T;
  const uint64_t m = out.rows, n = out.cols, k = ta ? a.rows : a.cols;
  if ((ta ? a.cols : a.rows) != m || (tb ? b.cols : b.rows) != k || (tb ? b.rows : b.cols) != n || lc != ld || C != D)
    return CUBLAS_STATUS_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(fake->mutex);  // the workspace is a block of the fake's memory
    auto it = fake->blocks.find(reinterpret_cast<CUdeviceptr>(workspace));
    if (it == fake->blocks.end() || it->second < workspace_bytes) return CUBLAS_STATUS_INVALID_VALUE;
  }
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  const auto* pa = static_cast<const float*>(A);
  const auto* pb = static_cast<const float*>(B);
  auto* pd = static_cast<float*>(D);
  const bool bias = desc.epilogue == CUBLASLT_EPILOGUE_BIAS || desc.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
  const bool relu = desc.epilogue == CUBLASLT_EPILOGUE_RELU || desc.epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
  if (bias && !desc.bias) return CUBLAS_STATUS_INVALID_VALUE;
  ++fake->lt_matmul_calls;
  fake->lt_epilogues.push_back(static_cast<int>(desc.epilogue));
  fake->lt_shapes.push_back({a.rows, a.cols, static_cast<uint64_t>(a.ld), b.rows, b.cols, static_cast<uint64_t>(b.ld), out.rows,
                             out.cols, static_cast<uint64_t>(out.ld)});
  auto run = [=] {
    ++fake->lt_matmuls_run;
    ++fake->kernels_run;
    for (uint64_t j = 0; j < n; ++j)
      for (uint64_t i = 0; i < m; ++i) {
        float acc = 0;
        for (uint64_t p = 0; p < k; ++p)
          acc += (ta ? pa[i * a.ld + p] : pa[p * a.ld + i]) * (tb ? pb[p * b.ld + j] : pb[j * b.ld + p]);
        float v = al * acc + (be != 0 ? be * pd[j * out.ld + i] : 0.0f);
        if (bias) v += desc.bias[i];
        if (relu && v <= 0) v = 0;
        pd[j * out.ld + i] = v;
      }
  };
  if (fake->capturing) fake->capturing->launches.push_back(FakeLaunch{nullptr, {}, 0, run});
  else run();
  return CUBLAS_STATUS_SUCCESS;
}
const char* fakeStatusString(cublasStatus_t rc) { return rc == CUBLAS_STATUS_INVALID_VALUE ? "CUBLAS_STATUS_INVALID_VALUE" : "CUBLAS_STATUS_?"; }

cuda_driver::CublasLtTable fakeCublasLt() {
  cuda_driver::CublasLtTable t;
  t.cublasLtGetVersion = fakeLtVersion, t.cublasLtCreate = fakeLtCreate, t.cublasLtDestroy = fakeLtDestroy;
  t.cublasLtMatmulDescCreate = fakeDescCreate, t.cublasLtMatmulDescDestroy = fakeDescDestroy;
  t.cublasLtMatmulDescSetAttribute = fakeDescSet, t.cublasLtMatrixLayoutCreate = fakeLayoutCreate;
  t.cublasLtMatrixLayoutDestroy = fakeLayoutDestroy, t.cublasLtMatmulPreferenceCreate = fakePrefCreate;
  t.cublasLtMatmulPreferenceDestroy = fakePrefDestroy, t.cublasLtMatmulPreferenceSetAttribute = fakePrefSet;
  t.cublasLtMatmulAlgoGetHeuristic = fakeHeuristic, t.cublasLtMatmul = fakeMatmul, t.cublasLtGetStatusString = fakeStatusString;
  return t;
}

// Installs the fake for a test's scope (not emulated: kiln takes the real-GPU path).
class FakeGpu {
 public:
  FakeGpu() : emulate_("KILN_CUDA_EMULATE", nullptr) {
    fake = new FakeState;
    cuda_driver::DriverTable t;
    t.cuInit = fakeInit, t.cuDriverGetVersion = fakeVersion, t.cuDeviceGetCount = fakeCount;
    t.cuDeviceGet = fakeDeviceGet, t.cuDeviceGetAttribute = fakeAttribute, t.cuDevicePrimaryCtxRetain = fakeRetain;
    t.cuCtxSetCurrent = fakeSetCurrent, t.cuMemAlloc_v2 = fakeAlloc, t.cuMemFree_v2 = fakeFree;
    t.cuMemGetInfo_v2 = fakeMemInfo, t.cuMemcpyHtoDAsync_v2 = fakeHtoD, t.cuMemcpyDtoHAsync_v2 = fakeDtoH;
    t.cuMemcpyDtoDAsync_v2 = fakeDtoD, t.cuMemsetD8Async = fakeMemset, t.cuStreamCreate = fakeStreamCreate;
    t.cuStreamSynchronize = fakeSync, t.cuStreamQuery = fakeQuery, t.cuModuleLoadData = fakeModuleLoad;
    t.cuModuleUnload = fakeModuleUnload;
    t.cuModuleGetFunction = fakeGetFunction, t.cuLaunchKernel = fakeLaunch, t.cuStreamBeginCapture_v2 = fakeBeginCapture;
    t.cuStreamEndCapture = fakeEndCapture, t.cuGraphInstantiateWithFlags = fakeInstantiate;
    t.cuGraphExecUpdate_v2 = fakeUpdate;
    t.cuGraphLaunch = fakeGraphLaunch, t.cuGraphDestroy = fakeGraphDestroy, t.cuGraphExecDestroy = fakeExecDestroy;
    t.cuGetErrorName = fakeErrorName, t.cuGetErrorString = fakeErrorString;
    t.cuStreamDestroy_v2 = fakeStreamDestroy, t.cuEventCreate = fakeEventCreate, t.cuEventRecord = fakeEventRecord;
    t.cuStreamWaitEvent = fakeStreamWaitEvent, t.cuEventDestroy_v2 = fakeEventDestroy;
    cuda_driver::set_driver_for_testing(&t);
    const cuda_driver::CublasLtTable lt = fakeCublasLt();
    cuda_driver::set_cublaslt_for_testing(&lt);
    detail::cuda_module_hook_for_testing() = [](const cuda::Program& p, const void*) {
      fake->next_program = std::make_unique<cuda::Program>(p);
    };
    clear_memory_cache();
  }
  ~FakeGpu() {
    clear_memory_cache();  // executables hold the fake's modules and graphs
    detail::cuda_module_hook_for_testing() = nullptr;
    cuda_driver::set_cublaslt_for_testing(nullptr);
    cuda_driver::set_driver_for_testing(nullptr);
    delete fake;
    fake = nullptr;
  }
  FakeState& operator*() { return *fake; }
  FakeState* operator->() { return fake; }

 private:
  ScopedEnv emulate_;
};

// Whether NVRTC can compile the cuda backend's kernels here.
bool haveNvrtc() {
  ScopedEnv backend("KILN_BACKEND", "cuda");
  return cuda::nvrtcAvailable();
}

}  // namespace
