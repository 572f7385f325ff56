// The real-GPU path of the runtime and the cuda backend (issue 13 item 4) without a GPU: a fake
// CUDA driver table (memory = host malloc, copies = memcpy, one trivial stream per call, modules =
// the program's kernels on kiln's SIMT emulator, graphs recorded and replayed) is injected with
// cuda_driver::set_driver_for_testing, so the code that drives libcuda.so.1 runs end to end:
// allocator reuse and stats, out-of-memory retry and its message, copies, NVRTC's cubin loaded,
// launch marshalling checked against cuda::gridOf, graph capture and replay, launch errors. A fake
// cuBLASLt table (cuda_driver::set_cublaslt_for_testing: descriptors recorded, cublasLtMatmul a
// column-major GEMM on host memory, captured into graphs like a kernel) runs the library GEMM steps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <regex>

#include "../unit/error_of.h"
#include "../unit/scoped_env.h"
#include "../unit/tiny_mlp.h"
#include "cuda_testing.h"
#include "kiln/cublaslt.h"
#include "kiln/cuda_driver.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

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
  size_t limit = size_t(1) << 30, used = 0;
  std::map<CUdeviceptr, size_t> blocks;
  int allocs = 0, frees = 0, copies = 0, launches = 0, captures = 0, instantiations = 0, updates = 0,
      graph_launches = 0;
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
  static int streams[2];
  *s = reinterpret_cast<CUstream>(&streams[0]);
  return CUDA_SUCCESS;
}
CUresult fakeSync(CUstream) { return CUDA_SUCCESS; }
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
  if (l.library) return l.library();
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
    t.cuStreamSynchronize = fakeSync, t.cuModuleLoadData = fakeModuleLoad, t.cuModuleUnload = fakeModuleUnload;
    t.cuModuleGetFunction = fakeGetFunction, t.cuLaunchKernel = fakeLaunch, t.cuStreamBeginCapture_v2 = fakeBeginCapture;
    t.cuStreamEndCapture = fakeEndCapture, t.cuGraphInstantiateWithFlags = fakeInstantiate;
    t.cuGraphExecUpdate_v2 = fakeUpdate;
    t.cuGraphLaunch = fakeGraphLaunch, t.cuGraphDestroy = fakeGraphDestroy, t.cuGraphExecDestroy = fakeExecDestroy;
    t.cuGetErrorName = fakeErrorName, t.cuGetErrorString = fakeErrorString;
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

TEST(FakeGpu, TheBackendAndDevicesSeeTheFakeDriver) {
  FakeGpu gpu;
  EXPECT_EQ(cuda_driver::unavailable_reason(), "");
  EXPECT_EQ(cuda_driver::device_count(), 2);
  EXPECT_EQ(cuda_driver::version(), "13.0");
  EXPECT_EQ(cuda_driver::compute_capability(1), 90);
  EXPECT_THAT(error_of([] { Device::cuda(2); }), HasSubstr("expected < 2"));
}

TEST(FakeGpu, TheAllocatorReusesReleasedBlocksAndKeepsStats) {
  FakeGpu gpu;
  EXPECT_EQ(cuda_driver::DeviceAllocator::size_class(1), 512u);
  EXPECT_EQ(cuda_driver::DeviceAllocator::size_class(513), 1024u);
  EXPECT_EQ(cuda_driver::DeviceAllocator::size_class(size_t(1) << 20), size_t(2) << 20);
  EXPECT_EQ(cuda_driver::DeviceAllocator::size_class(size_t(3) << 20), size_t(4) << 20);
  cuda_driver::DeviceAllocator& alloc = cuda_driver::DeviceAllocator::of(0);
  const cuda_driver::AllocatorStats before = alloc.stats();
  const void* first = nullptr;
  {
    Array a = Array::empty({1000}, DType::f32, Device::cuda(0));  // 4000 bytes: the 4096 class
    first = a.raw_data();
    EXPECT_EQ(alloc.stats().allocated, before.allocated + 4096);
  }
  EXPECT_EQ(alloc.stats().cached, before.cached + 4096);
  {
    Array b = Array::empty({1024}, DType::f32, Device::cuda(0));  // the same class: the same block
    EXPECT_EQ(b.raw_data(), first);
    Array c = Array::empty({1000}, DType::f32, Device::cuda(0));  // the class's list is empty: a new block
    EXPECT_NE(c.raw_data(), first);
  }
  cuda_driver::AllocatorStats s = alloc.stats();
  EXPECT_EQ(s.hits, before.hits + 1);
  EXPECT_EQ(s.misses, before.misses + 2);
  EXPECT_EQ(s.allocated, before.allocated);
  EXPECT_GE(s.peak, before.allocated + 8192);
  EXPECT_EQ(gpu->allocs, 2);
  alloc.empty_cache();
  EXPECT_EQ(alloc.stats().cached, 0u);
  EXPECT_EQ(gpu->frees, 2);
  EXPECT_EQ(gpu->used, 0u);
}

TEST(FakeGpu, OutOfMemoryEmptiesTheCacheOnceThenNamesRequestedAndFreeBytes) {
  FakeGpu gpu;
  gpu->limit = size_t(8) << 20;
  { Array a = Array::empty({1 << 20}, DType::f32, Device::cuda(0)); }  // 4 MiB, then cached
  EXPECT_EQ(gpu->used, size_t(4) << 20);
  Array b = Array::empty({1500000}, DType::f32, Device::cuda(0));      // 6 MiB: fits once the cache is freed
  EXPECT_EQ(gpu->frees, 1);
  EXPECT_EQ(gpu->used, size_t(6) << 20);
  std::string m = error_of([] { Array::empty({4000000}, DType::f32, Device::cuda(0)); });
  EXPECT_THAT(m, HasSubstr("kiln: out of memory on @cuda:0: requested 16000000 bytes"));
  EXPECT_THAT(m, HasSubstr("2097152 bytes free of 8388608"));
  EXPECT_THAT(m, HasSubstr("after emptying kiln's cache"));
}

TEST(FakeGpu, CopiesBetweenTheHostAndDevices) {
  FakeGpu gpu;
  Array a = Array::from({1.5f, -2.f, 3.25f, 4.f, 0.f, -6.5f}, {2, 3});
  Array d = a.to(Device::cuda(0));
  EXPECT_EQ(gpu->blocks.count(reinterpret_cast<CUdeviceptr>(d.raw_data())), 1u);  // in (fake) device memory
  EXPECT_EQ(d.to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(d.at(2), 3.25);
  d.set(0, 9.0);
  EXPECT_EQ(d.at(0), 9.0);
  EXPECT_EQ(a.at(0), 1.5);
  Array i = d.astype(DType::i64);  // through the host, back to the device
  EXPECT_EQ(i.device(), Device::cuda(0));
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{9, -2, 3, 4, 0, -6}));
  Array c = d.copy();  // device to device
  EXPECT_NE(c.raw_data(), d.raw_data());
  Array d1 = c.to(Device::cuda(1));
  EXPECT_EQ(d1.device(), Device::cuda(1));
  EXPECT_EQ(d1.to_string(), d.to_string());
  EXPECT_GE(gpu->copies, 10);
}

bool haveNvrtc() {
  ScopedEnv backend("KILN_BACKEND", "cuda");
  return cuda::nvrtcAvailable();
}

TEST(FakeGpu, MlpTrainingStepsEqualTheCpuAndReplayCapturedGraphs) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  TrainingRun cpu = train_on(Device::cpu(), 4);
  FakeGpu gpu;
  TrainingRun on_gpu = train_on(Device::cuda(0), 4);
  ASSERT_EQ(cpu.losses.size(), on_gpu.losses.size());
  for (size_t i = 0; i < cpu.losses.size(); ++i) EXPECT_NEAR(cpu.losses[i], on_gpu.losses[i], 1e-5) << "step " << i;
  EXPECT_LT(on_gpu.losses.back(), on_gpu.losses.front());
  ASSERT_EQ(cpu.params.size(), on_gpu.params.size());
  for (size_t k = 0; k < cpu.params.size(); ++k)
    for (size_t i = 0; i < cpu.params[k].size(); ++i)
      EXPECT_NEAR(cpu.params[k][i], on_gpu.params[k][i], 1e-5) << "param " << k << "[" << i << "]";
  // Every run is a graph launch; after the first steps they replay graphs captured before.
  // Every step is one graph launch, instantiated once; steps whose arguments and results moved
  // are captured again and update it in place.
  EXPECT_EQ(gpu->graph_launches, 4);
  EXPECT_EQ(gpu->instantiations, 1);
  EXPECT_EQ(gpu->updates + gpu->instantiations, gpu->captures);
  EXPECT_GT(gpu->launches, 4);
  // The matmuls are cuBLASLt calls (library steps) captured into the graph: each replay runs them.
  ASSERT_GT(gpu->lt_matmul_calls, 0);
  EXPECT_EQ(gpu->lt_matmul_calls % gpu->captures, 0);
  EXPECT_EQ(gpu->lt_matmuls_run, gpu->graph_launches * (gpu->lt_matmul_calls / gpu->captures));
  EXPECT_EQ(gpu->lt_handles, 1);  // one handle per device
  // Without graphs each kernel is launched directly, with the same result.
  ScopedEnv graphs("KILN_CUDA_GRAPHS", "0");
  const int captures = gpu->captures;
  TrainingRun direct = train_on(Device::cuda(0), 4);
  EXPECT_EQ(gpu->captures, captures);
  EXPECT_EQ(direct.losses, on_gpu.losses);
  EXPECT_EQ(direct.params, on_gpu.params);
}

TEST(FakeGpu, MatmulRegionsRunOnCublasLtWithTheirEpilogues) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  FakeGpu gpu;
  const Device gpu0 = Device::cuda(0);
  // relu(x W^T + b), W (out, in) as Linear's: [[1 + 0 - 1 + 0.5, -1 + 2 + 0 + 0], [0.5 + 3 + 0.5, -0.5 + 0],
  // [2 + 0.5, 0 + 0]].
  Variable W(Array::from({1.f, 0.f, 1.f, -1.f, 1.f, 0.f}, {2, 3}).to(gpu0));
  Variable b(Array::from({0.5f, 0.f}, {2}).to(gpu0));
  auto forward = [&](const Array& x) {  // inference: the pre-activation is no output kept for a backward
    ConfigGuard inference = no_backprop_mode();
    Variable y = F::relu(F::linear(Variable(x.to(gpu0)), W, b));  // (the linear's Variable is gone: no output)
    return y.array().to(Device::cpu());
  };
  const Array x = Array::from({1.f, 2.f, -1.f, 0.5f, 0.f, 3.f, 1.f, 1.f, 1.f}, {3, 3});
  EXPECT_EQ(forward(x).to_vector<float>(), (std::vector<float>{0.5f, 1.f, 4.f, 0.f, 2.5f, 0.f}));
  // One matmul with the RELU_BIAS epilogue; cuBLASLt's column-major C^T = W x^T: its A is W
  // (transposed, 3 x 2, ld 3), its B is x (3 x 3, ld 3), D is 2 x 3.
  ASSERT_EQ(gpu->lt_matmul_calls, 1);
  EXPECT_EQ(gpu->lt_epilogues[0], static_cast<int>(CUBLASLT_EPILOGUE_RELU_BIAS));
  EXPECT_EQ(gpu->lt_shapes[0], (std::vector<uint64_t>{3, 2, 3, 3, 3, 3, 2, 3, 2}));
  EXPECT_EQ(gpu->lt_handles, 1);
  EXPECT_EQ(gpu->lt_descs, 1);
  EXPECT_EQ(gpu->lt_layouts, 3);
  EXPECT_EQ(gpu->lt_heuristics, 1);
  // The same shape again: the descriptors and algorithm are reused (cached per shape).
  EXPECT_EQ(forward(Array::from({0.f, 0.f, 0.f, 1.f, 1.f, 1.f, 0.f, 1.f, 0.f}, {3, 3})).to_vector<float>(),
            (std::vector<float>{0.5f, 0.f, 2.5f, 0.f, 0.5f, 1.f}));
  EXPECT_EQ(gpu->lt_descs, 1);
  EXPECT_EQ(gpu->lt_heuristics, 1);
  EXPECT_EQ(gpu->lt_matmuls_run, 2);
  // Another batch size: descriptors of its own.
  EXPECT_EQ(forward(Array::from({1.f, 1.f, 1.f}, {1, 3})).to_vector<float>(), (std::vector<float>{2.5f, 0.f}));
  EXPECT_EQ(gpu->lt_descs, 2);
  EXPECT_EQ(gpu->lt_handles, 1);
}

TEST(FakeGpu, AMissingCublasLtIsAClearErrorAndGeneratedGemmsNeedNone) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  ScopedEnv library("KILN_CUBLASLT_LIBRARY", "/nonexistent/libcublasLt.so.13");
  FakeGpu gpu;
  cuda_driver::set_cublaslt_for_testing(nullptr);  // the library again: it cannot be loaded
  Variable x(Array::from({1.f, 2.f, 3.f, 4.f}, {2, 2}).to(Device::cuda(0)));
  Variable w(Array::from({0.f, 1.f, 1.f, 0.f}, {2, 2}).to(Device::cuda(0)));
  std::string m = error_of([&] { F::matmul(x, w).array(); });
  EXPECT_THAT(m, HasSubstr("kiln: cuBLASLt: libcublasLt cannot be loaded (/nonexistent/libcublasLt.so.13: "));
  EXPECT_THAT(m, HasSubstr("KILN_CUDA_CUBLASLT=0 runs them as kiln's generated GEMM kernels"));
  ScopedEnv generated("KILN_CUDA_CUBLASLT", "0");
  EXPECT_EQ(F::matmul(x, w).array().to_vector<float>(), (std::vector<float>{2.f, 1.f, 4.f, 3.f}));
  EXPECT_EQ(gpu->lt_matmul_calls, 0);
  EXPECT_GE(gpu->launches, 1);
}

TEST(FakeGpu, ARunOnTheSameBuffersReplaysItsGraphAsIs) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  FakeGpu gpu;
  Variable x(Array::from({1.f, -2.f, 3.f}, {3}).to(Device::cuda(0)));
  const void* first = nullptr;
  for (int i = 0; i < 3; ++i) {
    Variable y = F::exp(x) * 2.0f;
    Array v = y.array();
    if (i == 0) first = v.raw_data();
    EXPECT_EQ(v.raw_data(), first);  // the result's block, released and reused
    EXPECT_NEAR(v.at(2), 2 * std::exp(3.0), 1e-4);
  }
  EXPECT_EQ(gpu->graph_launches, 3);
  EXPECT_EQ(gpu->captures, 1);
  EXPECT_EQ(gpu->updates, 0);
}

TEST(FakeGpu, KilnBackendCudaRunsAGraphOfHostArraysOnGpu0) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  FakeGpu gpu;
  ScopedEnv backend("KILN_BACKEND", "cuda");
  Variable h(Array::from({1.f, 2.f}, {2}));
  Array v = (F::exp(h) + 1.0f).array();
  EXPECT_EQ(v.device(), Device::cpu());
  EXPECT_NEAR(v.at(1), std::exp(2.0) + 1, 1e-5);
  EXPECT_EQ(gpu->graph_launches, 1);
}

TEST(FakeGpu, AFailingLaunchNamesTheKernelItsRegionTheSourceAndTheDriverMessage) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  FakeGpu gpu;
  gpu->fail_launches = true;
  Variable x(Array::from({1.f, -2.f, 3.f}, {3}).to(Device::cuda(0)));
  Variable y = F::exp(x) * 2.0f;
  std::string m = error_of([&] { y.array(); });
  EXPECT_THAT(m, HasSubstr("cuLaunchKernel failed: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: too many resources requested for launch"));
  EXPECT_THAT(m, HasSubstr("cuda backend: kernel "));
  EXPECT_THAT(m, HasSubstr("(region "));
  EXPECT_THAT(m, ::testing::ContainsRegex("source /[^ ]*\\.cu:[0-9]+\\) on @cuda:0"));
  gpu->fail_launches = false;
  EXPECT_EQ(y.array().to_vector<float>().size(), 3u);  // the stream is usable after the failed capture
}

TEST(FakeGpu, AnUnwritableCacheFolderKeepsTheSourceInATemporaryOne) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  ScopedEnv cache("KILN_CACHE_DIR", "/etc/passwd/kiln-cache");  // under a file: never a folder
  FakeGpu gpu;
  gpu->fail_launches = true;
  Variable x(Array::from({1.f, -2.f, 3.f}, {3}).to(Device::cuda(0)));
  Variable y = F::tanh(x) * 3.0f;
  std::string m = error_of([&] { y.array(); });
  std::smatch source;
  ASSERT_TRUE(std::regex_search(m, source, std::regex("source (/[^ ]*\\.cu):[0-9]+\\) on @cuda:0"))) << m;
  EXPECT_EQ(source[1].str().rfind(std::filesystem::temp_directory_path().string(), 0), 0u) << m;
  EXPECT_TRUE(std::filesystem::exists(source[1].str())) << m;
  gpu->fail_launches = false;
  EXPECT_NEAR(y.array().to_vector<float>()[2], 3 * std::tanh(3.0), 1e-5);
}

}  // namespace
