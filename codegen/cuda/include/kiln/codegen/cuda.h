// The CUDA backend's code generator: kiln.fusion regions as CUDA C++ kernels,
// compiled by NVRTC for a GPU or by the host compiler for the SIMT emulator.
//
// emitProgram() turns a function after -kiln-fuse into one CUDA C++ translation
// unit: one `extern "C" __global__` kernel per kiln.fusion region (and one per
// op outside a region), named after the region (kiln.kernel names such as
// "3:contraction:matmul+add+relu (mlp.cpp:41)"), plus a host plan: which
// buffers each kernel reads and writes and how it is launched. The plan holds
// no MLIR, so a runtime can launch it without the compiler.
//
// Kernel shapes: an elementwise region is a grid-stride loop (128-bit vector
// loads and stores when every operand is read whole and is 16-byte aligned);
// a reduction region is one block per output row, with warp shuffles and
// shared memory (softmax, log_softmax, cross entropy in one kernel); a
// matmul region is a library GEMM step (cuBLASLt on a GPU, see LibraryGemm for
// the rule) or else a tiled shared-memory GEMM with the region's elementwise
// epilogue applied to the accumulators; a convolution region (conv2d, its data
// gradient, which deconvolution_2d also uses, and its filter gradient) is an
// implicit GEMM on the same tiles, the im2col indices computed while the
// shared-memory tiles load, its epilogue (bias, activation) at the
// accumulators; pooling, gathers and layout ops are generated loops. Every kernel takes its buffers in plan
// order and `long long batch`, the run-time size of the symbolic dimension. A kiln.collective_start
// is a Collective step of the plan (no kernel; its result is its operand's buffer), where the
// runtime starts the bucket's reduction between the kernels before and after it (the op is
// placed right after its bucket by -kiln-hoist-collectives).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/dtype.h"

namespace mlir {
class ModuleOp;
namespace func {
class FuncOp;
}
}  // namespace mlir

namespace kiln {
class KernelCache;  // kiln/kernel_cache.h
}  // namespace kiln

namespace kiln::cuda {

// A size known up to the batch: `factor * batch^batch_power`.
struct Extent {
  int64_t factor = 1;
  int batch_power = 0;
  int64_t at(int64_t batch) const {
    int64_t n = factor;
    for (int i = 0; i < batch_power; ++i) n *= batch;
    return n;
  }
};

// One buffer of the plan: a function argument, a kernel's output or a constant.
struct BufferInfo {
  std::vector<int64_t> shape;  // -1: the batch size
  DType dtype = DType::f32;
  int argument = -1;           // the function argument it is, or -1
};

// How a kernel is launched.
enum class LaunchKind {
  Elements,  // grid-stride over `work` elements: grid = ceil(work / block)
  Rows,      // one block per row, `work` rows
  Tiles,     // 2-d tiles of `tile` x `tile`: grid (ceil(cols / tile), ceil(rows / tile), count)
  Library,   // no kernel: a library GEMM (KernelInfo::gemm), cuBLASLt on a GPU, cblas under the emulator
  Collective,  // no kernel: the runtime hands buffer inputs[0] (`work` elements) to the collective
               // handler registered on its thread (kiln/collective_abi.h) as bucket `bucket`
};

// A library GEMM step of the plan, row-major like every kiln buffer:
//   C (m x n) = epilogue(alpha * op(A) op(B)),  op(A) = A or A^T (transpose_a), op(B) likewise,
//   epilogue: + bias[j] (a vector of n, broadcast over the rows; `bias` -1: none), then relu.
// A matmul region becomes one where (the rule): its matmul is 2-d, f32, reads two values from
// outside the region, and the epilogue cuBLASLt can take (CUBLASLT_EPILOGUE_BIAS / RELU /
// RELU_BIAS) is the chain matmul [-> add of broadcast_to(b), b a region input of shape (n)]
// [-> relu], each link the only use of the one before and not itself a region output. The
// rest of the region's ops, if any, become one generated elementwise kernel ("...+epilogue")
// that reads C. Batched (3-d and more) and f64 matmuls keep the generated GEMM, as does every
// matmul with EmitOptions::library_gemms false. (cuBLASLt's GELU is the tanh approximation,
// not kiln's erf gelu, so gelu stays in the generated part.) The emitter sets alpha 1 (a scale
// after the matmul is the generated rest). Under the emulator relu keeps a NaN (kiln.relu's
// semantics); cuBLASLt's RELU epilogue on a GPU may map it to 0.
struct LibraryGemm {
  int a = -1, b = -1, bias = -1, c = -1;  // buffer indices
  bool transpose_a = false, transpose_b = false;
  Extent m, n, k;
  float alpha = 1;
  bool relu = false;
};

struct KernelInfo {
  std::string name;    // the C identifier of the __global__ function
  std::string label;   // the region's kernel name (kernelOf), for errors and profiles
  std::string shape;   // "elementwise", "elementwise-vectorized", "row-reduction", "gemm", "implicit-gemm",
                       // "library-gemm" (launch Library)
  LaunchKind launch = LaunchKind::Elements;
  unsigned block = 256;  // threads per block (x); Tiles: block x block threads
  Extent work;           // Elements: elements; Rows: rows; Tiles: columns
  Extent rows, count;    // Tiles only: rows and the number of matrices (grid z)
  int tile = 64;
  std::vector<int> inputs, outputs;  // buffer indices, in parameter order (inputs first)
  int first_line = 0, last_line = 0; // lines of `source` holding this kernel (1-based)
  LibraryGemm gemm;                  // launch Library only (inputs a, b[, bias]; outputs c)
  int64_t bucket = -1;               // launch Collective only: kiln.collective_start's bucket
};

struct Program {
  std::string source;               // one CUDA C++ translation unit
  std::vector<BufferInfo> buffers;  // arguments first, in order
  std::vector<KernelInfo> kernels;  // in launch order
  std::vector<int> results;         // buffer of each function result
  int num_arguments = 0;
};

struct EmitOptions {
  // Matmul regions that fit LibraryGemm's rule become library steps; false: every matmul is a
  // generated GEMM kernel (kilnc --target=cuda, whose objects need only libcuda;
  // KILN_CUDA_CUBLASLT=0).
  bool library_gemms = true;
};

// The program of `func` (kiln ops after -kiln-fuse; fusion regions optional).
// Throws kiln::Error naming the op for an op the emitter does not implement.
Program emitProgram(mlir::func::FuncOp func, const EmitOptions& options = {});

// Whether the program has library steps (LaunchKind::Library).
bool usesLibraryGemm(const Program& program);

// Runs library step `step` on host memory (the emulator's cuBLASLt: cblas_sgemm, then the
// epilogue); `buffers` by plan index.
void runLibraryGemmOnHost(const KernelInfo& step, const std::vector<void*>& buffers, int64_t batch);

// The label of the kernel holding source line `line`, or "" (for NVRTC logs).
std::string kernelAtLine(const Program& program, int line);

// Registers -kiln-emit-cuda (prints each function's program, for kiln-opt and lit).
void registerCudaPasses();

// ---- NVRTC (libnvrtc loaded with dlopen; no GPU needed) ----

struct NvrtcOutput {
  std::string arch;            // "sm_90"
  std::vector<char> cubin;     // when a real architecture was asked for
  std::string ptx;             // always
  std::string log;             // NVRTC's log (warnings)
};

// Whether libnvrtc can be loaded here, and its version ("13.0"); "" when not.
bool nvrtcAvailable();
std::string nvrtcVersion();
// Compiles `program.source` for `arch` ("sm_80", "sm_90", or "compute_90" for PTX
// only). A failed compile throws kiln::Error naming the kernel(s) of the lines
// NVRTC reports, the path where the source was written and NVRTC's log.
NvrtcOutput nvrtcCompile(const Program& program, const std::string& arch);
// The NVRTC options of a compile: the arch, C++17, line info, and `--minimal` (no texture,
// surface or device-runtime declarations; about half the compile time) when the source includes
// no header, else -I<toolkit include> and, from NVRTC 12.8, `--pch` (automatic precompiled
// headers, kept in NVRTC's in-process PCH heap for the next compile with the same includes).
std::vector<std::string> nvrtcOptions(const Program& program, const std::string& arch);
// Whether `source` has an #include (of a toolkit header such as cuda_fp16.h).
bool needsToolkitHeaders(const std::string& source);
// The cache key of a compile: source hash, arch, NVRTC version and the options' hash.
std::string nvrtcCacheKey(const Program& program, const std::string& arch);
// The key of a compile in kiln's disk cache (KernelCache::make_key): the whole
// source, the arch, NVRTC's version, the CUDA driver's ("" without a driver) and the options,
// so a new toolkit or driver never reuses an old cubin.
std::string nvrtcDiskKey(const Program& program, const std::string& arch);
// nvrtcCompile through `cache` (kiln's disk cache, kiln/kernel_cache.h): a
// compile of the same key made before (by this or another process) is loaded,
// not recompiled; else it is compiled and stored. *from_cache says which. An
// entry that does not decode is recompiled (the cache checksums entries).
NvrtcOutput nvrtcCompileCached(const Program& program, const std::string& arch, KernelCache& cache,
                               bool* from_cache = nullptr);

// ---- The SIMT emulator (KILN_CUDA_EMULATE=1) ----

// The header that makes generated CUDA C++ host C++ (threadIdx, blockIdx,
// __syncthreads, warp shuffles, atomics, shared memory: each thread a fiber).
const std::string& emulatorHeader();

// Compiles `program` for the emulator (as EmulatedProgram::load does) and returns the path
// of the shared object: each kernel K is `extern "C" void K__emulate(void** params, const
// unsigned grid[3], const unsigned block[3])`, params as cuLaunchKernel's kernelParams.
std::string compileEmulated(const Program& program, const std::string& dir);

// A program compiled for the host and loaded with dlopen; thread-safe to launch.
class EmulatedProgram {
 public:
  // Compiles with the host C++ compiler (KILN_HOST_CXX, else the one kiln was
  // built with) into `dir` (kept by source hash, reused when present).
  // Throws kiln::Error with the compiler's output on failure.
  static EmulatedProgram load(const Program& program, const std::string& dir);
  EmulatedProgram(EmulatedProgram&&) noexcept;
  EmulatedProgram& operator=(EmulatedProgram&&) noexcept;
  ~EmulatedProgram();
  // Runs kernel `k` of the program as launched for `batch` on buffers (device
  // memory = host memory), block by block; a library step runs runLibraryGemmOnHost; a
  // collective step does nothing (the caller hands its buffer to the communicator).
  void launch(size_t k, const std::vector<void*>& buffers, int64_t batch) const;
  const Program& program() const { return program_; }

 private:
  EmulatedProgram() = default;
  Program program_;
  void* handle_ = nullptr;
  std::vector<void*> entries_;
};

// The grid of kernel `k` for `batch` (x, y, z), as both runtimes launch it.
void gridOf(const KernelInfo& k, int64_t batch, unsigned grid[3], unsigned block[3]);

}  // namespace kiln::cuda
