// The real-GPU path of the runtime and the cuda backend (issue 13 item 4) without a GPU: a fake
// CUDA driver table (memory = host malloc, copies = memcpy, one trivial stream per call, modules =
// the program's kernels on kiln's SIMT emulator, graphs recorded and replayed) is injected with
// cuda_driver::set_driver_for_testing, so the code that drives libcuda.so.1 runs end to end:
// allocator reuse and stats, out-of-memory retry and its message, copies, NVRTC's cubin loaded,
// launch marshalling checked against cuda::gridOf, graph capture and replay, launch errors.
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
void runLaunch(const FakeLaunch& l) { l.function->module->program->launch(l.function->kernel, l.buffers, l.batch); }
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
    detail::cuda_module_hook_for_testing() = [](const cuda::Program& p, const void*) {
      fake->next_program = std::make_unique<cuda::Program>(p);
    };
    clear_memory_cache();
  }
  ~FakeGpu() {
    clear_memory_cache();  // executables hold the fake's modules and graphs
    detail::cuda_module_hook_for_testing() = nullptr;
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
  // Without graphs each kernel is launched directly, with the same result.
  ScopedEnv graphs("KILN_CUDA_GRAPHS", "0");
  const int captures = gpu->captures;
  TrainingRun direct = train_on(Device::cuda(0), 4);
  EXPECT_EQ(gpu->captures, captures);
  EXPECT_EQ(direct.losses, on_gpu.losses);
  EXPECT_EQ(direct.params, on_gpu.params);
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
