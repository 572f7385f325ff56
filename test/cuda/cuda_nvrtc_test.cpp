// NVRTC compiles every kernel the emitter generates (no GPU needed): a whole MLP training
// step and CNN training step, for sm_80 and sm_90 cubins and PTX; a failing compile names
// the kernel, the source file and NVRTC's log. Skipped where libnvrtc is not installed.
#include "cuda_test_util.h"
#include "kiln/error.h"
#include "kiln/kernel_cache.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace kiln::cuda::testing {
namespace {

#define SKIP_WITHOUT_NVRTC() \
  if (!nvrtcAvailable()) GTEST_SKIP() << "libnvrtc is not installed (no CUDA toolkit)"

// One elementwise kernel.
constexpr const char* kExpText = R"(
func.func @f(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = kiln.exp %x : tensor<8xf32>
  return %0 : tensor<8xf32>
})";

void expectCubin(const NvrtcOutput& out, const std::string& arch) {
  ASSERT_GE(out.cubin.size(), 4u) << arch;
  EXPECT_EQ(std::string(out.cubin.data(), 4), "\x7f" "ELF") << arch;  // a cubin is an ELF file
  EXPECT_NE(out.ptx.find(".target " + arch), std::string::npos) << arch;
}

// Every kernel of the program appears in the PTX as an entry point.
void expectEntries(const Program& p, const NvrtcOutput& out) {
  for (const KernelInfo& k : p.kernels)
    if (k.launch != LaunchKind::Library) EXPECT_NE(out.ptx.find(".entry " + k.name), std::string::npos) << k.label;
}

// Every kernel of p in the cubins NVRTC makes for sm_80 and sm_90.
void expectCompilesForSm80AndSm90(const Program& p) {
  for (const char* arch : {"sm_80", "sm_90"}) {
    NvrtcOutput out = nvrtcCompile(p, arch);
    expectCubin(out, arch);
    expectEntries(p, out);
  }
}

TEST(CudaNvrtc, VersionIsReported) {
  SKIP_WITHOUT_NVRTC();
  std::string v = nvrtcVersion();
  EXPECT_NE(v.find('.'), std::string::npos) << v;
}

TEST(CudaNvrtc, MlpAdamStepCompilesForSm80AndSm90) {
  SKIP_WITHOUT_NVRTC();
  auto module = fused(readFile(std::string(KILN_SOURCE_DIR) + "/test/cuda/inputs/mlp_adam_step.kiln"));
  // Generated GEMMs, and library steps with the generated rest of their epilogues.
  for (bool library : {false, true}) {
    EmitOptions options;
    options.library_gemms = library;
    Program p = emitProgram(firstFunc(*module), options);
    EXPECT_EQ(hasKernelShape(p, "gemm"), !library);
    EXPECT_EQ(hasKernelShape(p, "library-gemm"), library);
    EXPECT_TRUE(hasKernelShape(p, "row-reduction"));
    // (the kernels of the library variant are a subset of kinds already compiled: sm_90 only)
    for (const char* arch : library ? std::vector<const char*>{"sm_90"} : std::vector<const char*>{"sm_80", "sm_90"}) {
      NvrtcOutput out = nvrtcCompile(p, arch);
      expectCubin(out, arch);
      expectEntries(p, out);
    }
  }
}

TEST(CudaNvrtc, CnnStepCompilesForSm80Sm90AndPtx) {
  SKIP_WITHOUT_NVRTC();
  auto module = fused(readFile(std::string(KILN_SOURCE_DIR) + "/test/cuda/inputs/cnn_step.kiln"));
  Program p = emitProgram(firstFunc(*module));
  expectCompilesForSm80AndSm90(p);
  NvrtcOutput ptx = nvrtcCompile(p, "compute_90");  // PTX only, for newer GPUs
  EXPECT_TRUE(ptx.cubin.empty());
  EXPECT_NE(ptx.ptx.find(".target sm_90"), std::string::npos);
}

TEST(CudaNvrtc, ScatterAddAndSplitReductionCompileForSm80AndSm90) {
  // The atomics of f32, f64 and unsigned 64-bit scatter-add, the fill and base-copy kernels, and a
  // reduction region split into a row-reduction and an elementwise kernel.
  SKIP_WITHOUT_NVRTC();
  for (const std::string& text : {std::string(kScatterAddText), std::string(kScatterAddBaseText), kSplitReduction.regions}) {
    auto module = fused(text);
    Program p = emitProgram(firstFunc(*module));
    expectCompilesForSm80AndSm90(p);
  }
}

TEST(CudaNvrtc, RowWiseKernelsCompileForSm80AndSm90) {
  // Row-wise regions as one kernel each (softmax and log_softmax; layer norm's forward and
  // backward with four block reductions; softmax_cross_entropy's forward and backward with
  // the label check and the batch mean in the grid epilogue), a warp per row (7) and a block
  // per row (1000; 4097: the softmax row in shared memory).
  SKIP_WITHOUT_NVRTC();
  for (int64_t d : {7, 1000, 4097})
    for (const std::string& text :
         {softmaxRows(d), layerNormGrad(d), softmaxCrossEntropy(d, false), softmaxCrossEntropy(d, true)}) {
      auto module = fused(text);
      Program p = emitProgram(firstFunc(*module));
      expectCompilesForSm80AndSm90(p);
    }
}

TEST(CudaNvrtc, ConvolutionImplicitGemmsCompileForSm80AndSm90) {
  // The implicit-GEMM convolutions: the f64 forward with its prologue and epilogue in the
  // region, the f32 data and filter gradients.
  SKIP_WITHOUT_NVRTC();
  for (const std::string& text : {kConvTiles.regions, std::string(kConvGradTilesText)}) {
    auto module = fused(text);
    Program p = emitProgram(firstFunc(*module));
    EXPECT_TRUE(hasKernelShape(p, "implicit-gemm"));
    expectCompilesForSm80AndSm90(p);
  }
}

TEST(CudaNvrtc, CacheKeyHasSourceArchAndVersion) {
  SKIP_WITHOUT_NVRTC();
  auto module = fused(kExpText);
  Program p = emitProgram(firstFunc(*module));
  std::string k80 = nvrtcCacheKey(p, "sm_80"), k90 = nvrtcCacheKey(p, "sm_90");
  EXPECT_NE(k80, k90);
  EXPECT_NE(k90.find("sm_90"), std::string::npos);
  EXPECT_NE(k90.find("nvrtc-" + nvrtcVersion()), std::string::npos);
  Program q = p;
  q.source += "// changed\n";
  EXPECT_NE(nvrtcCacheKey(q, "sm_90"), k90);
}

TEST(CudaNvrtc, CubinsAreKeptInTheDiskCache) {
  SKIP_WITHOUT_NVRTC();
  auto module = fused(R"(
func.func @f(%x: tensor<8xf32>) -> tensor<8xf32> {
  %0 = kiln.tanh %x : tensor<8xf32>
  return %0 : tensor<8xf32>
})");
  Program p = emitProgram(firstFunc(*module));
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("kiln-cubin-cache-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    KernelCache cache(dir.string(), 64 << 20);
    bool hit = true;
    NvrtcOutput first = nvrtcCompileCached(p, "sm_90", cache, &hit);
    EXPECT_FALSE(hit);
    expectCubin(first, "sm_90");
    // Another cache on the same folder (another process): loaded, the same bytes.
    KernelCache again(dir.string(), 64 << 20);
    NvrtcOutput second = nvrtcCompileCached(p, "sm_90", again, &hit);
    EXPECT_TRUE(hit);
    EXPECT_EQ(second.cubin, first.cubin);
    EXPECT_EQ(second.ptx, first.ptx);
    EXPECT_EQ(second.arch, "sm_90");
    EXPECT_EQ(again.stats().disk_hits, 1);
    // Another arch or source is another entry.
    nvrtcCompileCached(p, "sm_80", again, &hit);
    EXPECT_FALSE(hit);
    Program q = p;
    q.source += "// changed\n";
    EXPECT_NE(nvrtcDiskKey(q, "sm_90"), nvrtcDiskKey(p, "sm_90"));
    EXPECT_NE(nvrtcDiskKey(p, "sm_80"), nvrtcDiskKey(p, "sm_90"));
    // A corrupt entry is recompiled, never trusted.
    std::string entry = again.entry_path(nvrtcDiskKey(p, "sm_90"));
    std::filesystem::resize_file(entry, std::filesystem::file_size(entry) - 3);
    NvrtcOutput third = nvrtcCompileCached(p, "sm_90", again, &hit);
    EXPECT_FALSE(hit);
    EXPECT_EQ(third.cubin, first.cubin);
  }
  std::filesystem::remove_all(dir);
}

TEST(CudaNvrtc, FailedCompileNamesKernelSourceAndLog) {
  SKIP_WITHOUT_NVRTC();
  auto module = fused(kExpText);
  Program p = emitProgram(firstFunc(*module));
  ASSERT_EQ(p.kernels.size(), 1u);
  // Break the kernel's body: an undeclared identifier on one of its lines.
  size_t at = p.source.find("const long long n = ");
  ASSERT_NE(at, std::string::npos);
  p.source.insert(at, "kiln_undeclared_identifier = 1; ");
  try {
    nvrtcCompile(p, "sm_90");
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(p.kernels[0].label), std::string::npos) << m;
    EXPECT_NE(m.find("source: "), std::string::npos) << m;
    EXPECT_NE(m.find(".cu"), std::string::npos) << m;
    EXPECT_NE(m.find("kiln_undeclared_identifier"), std::string::npos) << m;  // NVRTC's log
    size_t path = m.find("source: ") + 8;
    std::string file = m.substr(path, m.find(' ', path) - path);
    EXPECT_NE(readFile(file).find("kiln_undeclared_identifier"), std::string::npos) << file;
  }
}

bool hasOption(const std::vector<std::string>& options, const std::string& o) {
  return std::find(options.begin(), options.end(), o) != options.end();
}

// A generated program includes no header: --minimal (half the compile time). A kernel that
// includes cuda_fp16.h gets the toolkit's include directory and, from NVRTC 12.8, --pch; both
// compile for sm_80 and sm_90 with exactly those options, and the options are in the cache keys.
TEST(CudaNvrtc, MinimalWithoutHeadersPchWithToolkitHeaders) {
  SKIP_WITHOUT_NVRTC();
  auto module = fused(kExpText);
  Program generated = emitProgram(firstFunc(*module));
  EXPECT_FALSE(needsToolkitHeaders(generated.source));
  Program half;
  half.source = R"(#include <cuda_fp16.h>
extern "C" __global__ void kiln_halve(const float* x, __half* y) {
  y[threadIdx.x] = __float2half(__half2float(__float2half(x[threadIdx.x])) * 0.5f);
}
)";
  EXPECT_TRUE(needsToolkitHeaders(half.source));
  int major = std::stoi(nvrtcVersion()), minor = std::stoi(nvrtcVersion().substr(nvrtcVersion().find('.') + 1));
  for (const char* arch : {"sm_80", "sm_90"}) {
    std::vector<std::string> g = nvrtcOptions(generated, arch), h = nvrtcOptions(half, arch);
    EXPECT_TRUE(hasOption(g, "--gpu-architecture=" + std::string(arch)));
    EXPECT_TRUE(hasOption(g, "--minimal"));
    EXPECT_FALSE(hasOption(g, "--pch"));
    EXPECT_FALSE(hasOption(h, "--minimal"));
    EXPECT_EQ(hasOption(h, "--pch"), major > 12 || (major == 12 && minor >= 8));
    EXPECT_TRUE(std::any_of(h.begin(), h.end(), [](const std::string& o) { return o.rfind("-I", 0) == 0; }));
    NvrtcOutput a = nvrtcCompile(generated, arch);
    expectCubin(a, arch);
    expectEntries(generated, a);
    NvrtcOutput b = nvrtcCompile(half, arch);
    expectCubin(b, arch);
    EXPECT_NE(b.ptx.find(".entry kiln_halve"), std::string::npos);
  }
  // The same source with other options (a header line added) is another cache entry.
  Program withHeader = generated;
  withHeader.source = "#include <cuda_fp16.h>\n" + generated.source;
  EXPECT_NE(nvrtcDiskKey(withHeader, "sm_90"), nvrtcDiskKey(generated, "sm_90"));
}

TEST(CudaNvrtc, BadArchIsAnError) {
  SKIP_WITHOUT_NVRTC();
  Program p;
  try {
    nvrtcCompile(p, "volta");
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("nvrtcCompile"), std::string::npos) << m;
    EXPECT_NE(m.find("arch"), std::string::npos) << m;
    EXPECT_NE(m.find("\"volta\""), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace kiln::cuda::testing
