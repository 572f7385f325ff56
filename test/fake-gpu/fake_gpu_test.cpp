// The real-GPU path of the runtime and the cuda backend (issue 13 item 4) without a GPU: the fake
// CUDA driver table of fake_gpu.h (memory = host malloc, copies = memcpy, one trivial stream per call,
// modules = the program's kernels on kiln's SIMT emulator, graphs recorded and replayed) is injected
// with cuda_driver::set_driver_for_testing, so the code that drives libcuda.so.1 runs end to end:
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
#include <optional>
#include <regex>

#include "../unit/error_of.h"
#include "kiln/collective_abi.h"
#include "ops.h"
#include "trace.h"
#include "../unit/scoped_env.h"
#include "../unit/tiny_mlp.h"
#include "fake_gpu.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

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

// kiln.collective_start on a GPU: the step is one CUDA graph per segment between its collective
// steps (captured once, replayed as is on the same buffers), and each run hands each bucket's
// device buffer to the handler registered on its thread once, between the segments: after the
// kernel that computed it, before the later ones (the fake's clock). Without a handler the
// steps do nothing.
TEST(FakeGpu, CollectiveStepsRunBetweenTheGraphSegmentsOfEachRun) {
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  FakeGpu gpu;
  struct Recorder : collective_abi::Handler {
    struct Call {
      int64_t index;
      void* data;
      int64_t count;
      DType dtype;
      long clock;
    };
    std::vector<Call> calls;
    void start(int64_t index, void* data, int64_t count, DType dtype) noexcept override {
      calls.push_back({index, data, count, dtype, fake->kernels_run});
    }
  } recorder;
  Variable x(Array::from({1.f, -2.f, 3.f}, {3}).to(Device::cuda(0)));
  auto bucket = [](const Variable& v, int64_t b) {
    return detail::record_like("kiln.collective_start", {v}, {detail::int_attr("bucket", b)});
  };
  for (int run = 0; run < 4; ++run) {
    const bool handled = run < 3;
    std::optional<collective_abi::ScopedHandler> scope;
    if (handled) scope.emplace(recorder);
    const long before = gpu->kernels_run;
    Variable b0 = bucket(F::exp(x), 0), b1 = bucket(F::tanh(x) * 2.0f, 1);
    Array a0 = b0.array(), a1 = b1.array();
    EXPECT_NEAR(a0.at(2), std::exp(3.0), 1e-4);
    EXPECT_NEAR(a1.at(1), 2 * std::tanh(-2.0), 1e-5);
    if (!handled) {
      EXPECT_EQ(recorder.calls.size(), 6u) << "no handler, no call";
      continue;
    }
    ASSERT_EQ(recorder.calls.size(), 2u * (run + 1));
    const auto* c = &recorder.calls[2 * run];
    for (int b = 0; b < 2; ++b) {
      EXPECT_EQ(c[b].index, b);
      EXPECT_EQ(c[b].count, 3);
      EXPECT_EQ(c[b].dtype, DType::f32);
    }
    EXPECT_EQ(c[0].data, a0.raw_data());
    EXPECT_EQ(c[1].data, a1.raw_data());
    EXPECT_EQ(c[0].clock, before + 1) << "bucket 0 right after exp's kernel";
    EXPECT_EQ(c[1].clock, before + 2) << "bucket 1 after tanh's kernel";
  }
  EXPECT_EQ(gpu->captures, 2) << "two segments, captured once";
  EXPECT_EQ(gpu->graph_launches, 8);
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
