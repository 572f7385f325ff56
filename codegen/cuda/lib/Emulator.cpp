// The SIMT emulator (KILN_CUDA_EMULATE=1): generated CUDA C++ compiled for the host
// against a header that emulates the CUDA execution model, loaded with dlopen.
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cblas.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "kiln/codegen/cuda.h"
#include "kiln/error.h"
#include "kiln/files.h"

namespace kiln::cuda {

const std::string& emulatorHeader() {
  static const std::string header = R"EMU(// kiln's SIMT emulator: CUDA's execution model on the host.
// A launch runs block after block; the threads of a block are fibers (ucontext)
// scheduled round-robin: __syncthreads and warp operations (shuffles, votes) wait
// for every live thread of the block / warp, so warps run in lock-step where CUDA
// code relies on it. Shared memory is per OS thread (blocks run one at a time),
// device memory is host memory, atomics are plain read-modify-writes.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>
#include <sys/mman.h>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static thread_local

struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };

namespace kiln_emu {

struct Barrier {
  int count = 0;
  unsigned long long generation = 0;
};

struct Fiber {
  ucontext_t context;
  dim3 index;
  int linear = 0;
  bool done = false;
};

struct Block {
  dim3 grid, block, index;
  int threads = 0, live = 0;
  std::vector<Fiber> fibers;
  std::vector<int> warpLive;
  Barrier barrier;
  Barrier warpBarrier[32];
  unsigned long long slots[1024];
};

inline thread_local Block* block = nullptr;
inline thread_local Fiber* fiber = nullptr;
inline thread_local ucontext_t scheduler;
inline thread_local const std::function<void()>* body = nullptr;

inline void yield() { swapcontext(&fiber->context, &scheduler); }

// Waits until `expected` threads arrived (threads that finished count as arrived).
inline void arrive(Barrier& b, const int& expected) {
  unsigned long long g = b.generation;
  if (++b.count >= expected) {
    b.count = 0;
    ++b.generation;
    return;
  }
  while (b.generation == g) yield();
}

inline void syncWarp() { arrive(block->warpBarrier[fiber->linear >> 5], block->warpLive[fiber->linear >> 5]); }

inline void trampoline() {
  (*body)();
  fiber->done = true;
  --block->live;
  int w = fiber->linear >> 5;
  --block->warpLive[w];
  // A barrier the others wait at may now be complete.
  if (block->barrier.count > 0 && block->barrier.count >= block->live) { block->barrier.count = 0; ++block->barrier.generation; }
  Barrier& wb = block->warpBarrier[w];
  if (wb.count > 0 && wb.count >= block->warpLive[w]) { wb.count = 0; ++wb.generation; }
}

inline void run(const unsigned* grid, const unsigned* blockDims, const std::function<void()>& kernel) {
  // Fiber stacks: mapped pages (not heap blocks), reused by every launch of this OS thread.
  constexpr size_t kStack = 64 * 1024;
  static thread_local std::vector<char*> stacks;
  Block b;
  b.grid.x = grid[0]; b.grid.y = grid[1]; b.grid.z = grid[2];
  b.block.x = blockDims[0]; b.block.y = blockDims[1]; b.block.z = blockDims[2];
  b.threads = static_cast<int>(b.block.x * b.block.y * b.block.z);
  if (b.threads > 1024) std::abort();
  while (stacks.size() < static_cast<size_t>(b.threads)) {
    void* p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    stacks.push_back(static_cast<char*>(p));
  }
  body = &kernel;
  block = &b;
  for (unsigned bz = 0; bz < b.grid.z; ++bz)
    for (unsigned by = 0; by < b.grid.y; ++by)
      for (unsigned bx = 0; bx < b.grid.x; ++bx) {
        b.index.x = bx; b.index.y = by; b.index.z = bz;
        b.fibers.assign(b.threads, Fiber());
        b.live = b.threads;
        b.warpLive.assign((b.threads + 31) / 32, 0);
        b.barrier = Barrier();
        for (Barrier& w : b.warpBarrier) w = Barrier();
        for (int t = 0; t < b.threads; ++t) {
          Fiber& f = b.fibers[t];
          f.linear = t;
          f.index.x = t % b.block.x;
          f.index.y = (t / b.block.x) % b.block.y;
          f.index.z = t / (b.block.x * b.block.y);
          ++b.warpLive[t / 32];
          getcontext(&f.context);
          f.context.uc_stack.ss_sp = stacks[t];
          f.context.uc_stack.ss_size = kStack;
          f.context.uc_link = &scheduler;
          makecontext(&f.context, trampoline, 0);
        }
        while (b.live > 0)
          for (Fiber& f : b.fibers) {
            if (f.done) continue;
            fiber = &f;
            swapcontext(&scheduler, &f.context);
          }
      }
  block = nullptr;
  fiber = nullptr;
}

}  // namespace kiln_emu

#define threadIdx (kiln_emu::fiber->index)
#define blockIdx (kiln_emu::block->index)
#define blockDim (kiln_emu::block->block)
#define gridDim (kiln_emu::block->grid)
#define warpSize 32

inline void __syncthreads() { kiln_emu::arrive(kiln_emu::block->barrier, kiln_emu::block->live); }
inline void __syncwarp(unsigned = 0xffffffffu) { kiln_emu::syncWarp(); }

template <typename T> T kiln_emu_shuffle(T v, int source) {
  using namespace kiln_emu;
  static_assert(sizeof(T) <= 8, "a shuffled value is at most 8 bytes");
  std::memcpy(&block->slots[fiber->linear], &v, sizeof(T));
  syncWarp();
  T r = v;
  int base = fiber->linear & ~31;
  if (source >= 0 && base + source < block->threads) std::memcpy(&r, &block->slots[base + source], sizeof(T));
  syncWarp();
  return r;
}
template <typename T> T __shfl_sync(unsigned, T v, int lane, int width = 32) {
  int me = kiln_emu::fiber->linear & 31;
  return kiln_emu_shuffle(v, (me / width) * width + (lane % width));
}
template <typename T> T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  int me = kiln_emu::fiber->linear & 31;
  int src = static_cast<int>((me % width) + delta) < width ? me + static_cast<int>(delta) : me;
  return kiln_emu_shuffle(v, src);
}
template <typename T> T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  int me = kiln_emu::fiber->linear & 31;
  int src = (me % width) >= static_cast<int>(delta) ? me - static_cast<int>(delta) : me;
  return kiln_emu_shuffle(v, src);
}
template <typename T> T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  int me = kiln_emu::fiber->linear & 31;
  int src = me ^ mask;
  return kiln_emu_shuffle(v, (src / width == me / width) ? src : me);
}
inline unsigned __ballot_sync(unsigned, int predicate) {
  using namespace kiln_emu;
  unsigned long long p = predicate != 0;
  block->slots[fiber->linear] = p;
  syncWarp();
  unsigned bits = 0;
  int base = fiber->linear & ~31;
  for (int l = 0; l < 32 && base + l < block->threads; ++l)
    if (!block->fibers[base + l].done && block->slots[base + l]) bits |= 1u << l;
  syncWarp();
  return bits;
}
inline int __any_sync(unsigned m, int p) { return __ballot_sync(m, p) != 0; }
inline int __all_sync(unsigned m, int p) {
  int base = kiln_emu::fiber->linear & ~31;
  unsigned all = 0;
  for (int l = 0; l < 32 && base + l < kiln_emu::block->threads; ++l)
    if (!kiln_emu::block->fibers[base + l].done) all |= 1u << l;
  return __ballot_sync(m, p) == all;
}
template <typename T> T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <typename T> T atomicMax(T* p, T v) { T old = *p; if (v > old) *p = v; return old; }
template <typename T> T atomicMin(T* p, T v) { T old = *p; if (v < old) *p = v; return old; }
template <typename T> T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <typename T> T __ldg(const T* p) { return *p; }
inline void __threadfence() {}  // blocks run one at a time: memory is always in order
inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float v) { int i; std::memcpy(&i, &v, 4); return i; }

// cuda_fp16.h / cuda_bf16.h: __half (1-5-10) and __nv_bfloat16 (1-8-7) as their bits. A
// conversion to them rounds to nearest even as cvt.rn does (overflow to infinity, subnormals,
// a NaN to the canonical 0x7fff); arithmetic rounds the float result once, which equals the
// native half/bfloat16 operation (float has more than twice their precision plus two bits).
namespace kiln_emu {
// The bits of the narrow format (`mant` fraction bits, exponent bias `bias`) nearest to `d`.
inline unsigned short roundToNarrow(double d, int mant, int bias) {
  uint64_t x;
  std::memcpy(&x, &d, 8);
  const unsigned short sign = static_cast<unsigned short>((x >> 63) << 15);
  const uint64_t u = x & 0x7fffffffffffffffull;
  const unsigned short inf = static_cast<unsigned short>(sign | ((2 * bias + 1) << mant));
  if (u >= 0x7ff0000000000000ull) return u == 0x7ff0000000000000ull ? inf : 0x7fff;
  const int e = static_cast<int>(u >> 52) - 1023;
  if (e > bias) return inf;
  const int minNormal = 1 - bias;
  if (e < minNormal - mant - 1 || (u >> 52) == 0) return sign;  // below half the smallest subnormal
  const uint64_t m = (u & ((1ull << 52) - 1)) | (1ull << 52);
  const int shift = (e >= minNormal ? e - mant : minNormal - mant) - e + 52;  // in units of the result's ulp
  uint64_t q = m >> shift;
  const uint64_t rest = m & ((1ull << shift) - 1), halfway = 1ull << (shift - 1);
  if (rest > halfway || (rest == halfway && (q & 1))) ++q;
  // A normal value: exponent field and fraction (a carry out of the fraction bumps the exponent,
  // up to infinity); a subnormal: the ulps themselves (a carry makes the smallest normal).
  uint64_t bits = e >= minNormal ? (static_cast<uint64_t>(e + bias) << mant) + (q - (1ull << mant)) : q;
  return static_cast<unsigned short>(sign | bits);
}
inline float narrowToFloat(unsigned short h, int mant, int bias) {
  const int exponent = (h >> mant) & ((1 << (15 - mant)) - 1), fraction = h & ((1 << mant) - 1);
  if (mant == 7) return __int_as_float(static_cast<int>(static_cast<unsigned>(h) << 16));  // bfloat16: float's top half
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  if (exponent == (1 << (15 - mant)) - 1) return fraction ? __int_as_float(0x7fffffff) : sign * INFINITY;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(fraction), 1 - bias - mant);
  return sign * std::ldexp(static_cast<float>(fraction + (1 << mant)), exponent - bias - mant);
}
template <int Mant, int Bias, typename Self> struct Narrow {
  unsigned short __x;
  Narrow() = default;
  Narrow(float f) : __x(roundToNarrow(f, Mant, Bias)) {}
  Narrow(double d) : __x(roundToNarrow(d, Mant, Bias)) {}
  template <typename I, typename std::enable_if<std::is_integral<I>::value, int>::type = 0>
  Narrow(I i) : __x(roundToNarrow(static_cast<double>(i), Mant, Bias)) {}
  operator float() const { return narrowToFloat(__x, Mant, Bias); }
  static Self bits(unsigned short b) { Self r; r.__x = b; return r; }
  friend Self operator+(Self a, Self b) { return Self(float(a) + float(b)); }
  friend Self operator-(Self a, Self b) { return Self(float(a) - float(b)); }
  friend Self operator*(Self a, Self b) { return Self(float(a) * float(b)); }
  friend Self operator/(Self a, Self b) { return Self(float(a) / float(b)); }
  friend Self operator-(Self a) { return bits(a.__x ^ 0x8000); }
  Self& operator+=(Self b) { return static_cast<Self&>(*this) = *static_cast<Self*>(this) + b; }
  Self& operator-=(Self b) { return static_cast<Self&>(*this) = *static_cast<Self*>(this) - b; }
  Self& operator*=(Self b) { return static_cast<Self&>(*this) = *static_cast<Self*>(this) * b; }
  Self& operator/=(Self b) { return static_cast<Self&>(*this) = *static_cast<Self*>(this) / b; }
  friend bool operator==(Self a, Self b) { return float(a) == float(b); }
  friend bool operator!=(Self a, Self b) { return float(a) != float(b); }
  friend bool operator<(Self a, Self b) { return float(a) < float(b); }
  friend bool operator<=(Self a, Self b) { return float(a) <= float(b); }
  friend bool operator>(Self a, Self b) { return float(a) > float(b); }
  friend bool operator>=(Self a, Self b) { return float(a) >= float(b); }
};
}  // namespace kiln_emu
struct __half : kiln_emu::Narrow<10, 15, __half> { using Narrow::Narrow; __half() = default; };
struct __nv_bfloat16 : kiln_emu::Narrow<7, 127, __nv_bfloat16> { using Narrow::Narrow; __nv_bfloat16() = default; };
typedef __half half;
typedef __nv_bfloat16 nv_bfloat16;
inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline __half __double2half(double d) { return __half(d); }
inline float __half2float(__half h) { return float(h); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short b) { return __half::bits(b); }
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double d) { return __nv_bfloat16(d); }
inline float __bfloat162float(__nv_bfloat16 h) { return float(h); }  // a NaN keeps its payload, as in cuda_bf16.h
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short b) { return __nv_bfloat16::bits(b); }
template <typename T> T __hadd(T a, T b) { return a + b; }
template <typename T> T __hsub(T a, T b) { return a - b; }
template <typename T> T __hmul(T a, T b) { return a * b; }
template <typename T> T __hdiv(T a, T b) { return a / b; }
template <typename T> T __hneg(T a) { return -a; }
)EMU";
  return header;
}

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Runs `command` through the shell; returns its exit status and output.
int runCommand(const std::string& command, std::string& output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::mutex& compileMutex() {
  static std::mutex m;
  return m;
}

}  // namespace

using EmulateEntry = void (*)(void**, const unsigned*, const unsigned*);

namespace {
std::string hex16(uint64_t h) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}
}  // namespace

std::string compileEmulated(const Program& program, const std::string& dir) {
  const char* cxx = std::getenv("KILN_HOST_CXX");
  std::string compiler = cxx && *cxx ? cxx : KILN_HOST_CXX;
  const std::string flags = " -std=c++17 -O1 -fPIC -w";
  // The emulator header, precompiled once per compiler and flags (GCC picks <header>.gch up
  // beside the header; another compiler, or a stale .gch, just reads the header).
  std::string headerText = "#define KILN_CUDA_EMULATE 1\n" + emulatorHeader();
  std::string headerName = "kiln-emu-header-" + hex16(fnv1a(headerText + compiler + flags)) + ".h";
  std::string source = "#include \"" + headerName + "\"\n" + program.source;
  std::string hash = hex16(fnv1a(headerText + compiler + flags + program.source));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error("kiln: the CUDA emulator cannot create the folder " + dir + ": " + ec.message());
  std::filesystem::path base = std::filesystem::path(dir) / ("kiln-emu-" + hash);
  std::string so = base.string() + ".so", cpp = base.string() + ".cpp";
  {
    std::lock_guard<std::mutex> lock(compileMutex());
    // Each file appears whole (written beside it, then renamed): other processes compiling
    // the same kernels at the same time read one of them, never a part.
    std::string header = (std::filesystem::path(dir) / headerName).string();
    if (!std::filesystem::exists(header)) files::replace_file_contents(header, "kiln: the CUDA emulator", headerText);
    // The toolkit headers a kernel may include: their declarations are in the emulator header.
    for (const char* toolkit : {"cuda_fp16.h", "cuda_bf16.h"}) {
      std::string path = (std::filesystem::path(dir) / toolkit).string();
      if (!std::filesystem::exists(path))
        files::replace_file_contents(path, "kiln: the CUDA emulator",
                                     "// kiln's SIMT emulator: __half, __nv_bfloat16 and their conversions are in its header.\n#pragma once\n");
    }
    if (!std::filesystem::exists(header + ".gch")) {
      try {  // not fatal: the header is read instead
        files::replace_file(header + ".gch", "kiln: the CUDA emulator", [&](const std::string& tmp) {
          std::string output;
          std::string command = compiler + flags + " -x c++-header -o '" + tmp + "' '" + header + "'";
          return runCommand(command, output) == 0 ? std::string() : "the compiler failed:\n" + output;
        });
      } catch (const Error&) {
      }
    }
    if (!std::filesystem::exists(so)) {
      files::replace_file_contents(cpp, "kiln: the CUDA emulator", source);
      files::replace_file(so, "kiln: the CUDA emulator", [&](const std::string& tmp) {
        std::string output;
        std::string command = compiler + flags + " -shared -I'" + dir + "' -o '" + tmp + "' '" + cpp + "'";
        if (runCommand(command, output) == 0) return std::string();
        return "the generated kernels failed to compile (source: " + cpp + ")\ncommand: " + command + "\n" + output;
      });
    }
  }
  return so;
}

EmulatedProgram EmulatedProgram::load(const Program& program, const std::string& dir) {
  const std::string so = compileEmulated(program, dir);
  EmulatedProgram p;
  p.program_ = program;
  p.handle_ = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p.handle_) {
    const char* e = ::dlerror();
    throw Error("kiln: the CUDA emulator cannot load " + so + ": " + (e ? e : "?"));
  }
  for (const KernelInfo& k : program.kernels) {
    if (k.launch == LaunchKind::Library || k.launch == LaunchKind::Collective) {  // no kernel
      p.entries_.push_back(nullptr);
      continue;
    }
    void* entry = ::dlsym(p.handle_, (k.name + "__emulate").c_str());
    if (!entry) throw Error("kiln: the CUDA emulator finds no entry for kernel " + k.label + " in " + so);
    p.entries_.push_back(entry);
  }
  return p;
}

EmulatedProgram::EmulatedProgram(EmulatedProgram&& o) noexcept
    : program_(std::move(o.program_)), handle_(o.handle_), entries_(std::move(o.entries_)) {
  o.handle_ = nullptr;
}

EmulatedProgram& EmulatedProgram::operator=(EmulatedProgram&& o) noexcept {
  if (this != &o) {
    if (handle_) ::dlclose(handle_);
    program_ = std::move(o.program_);
    handle_ = o.handle_;
    entries_ = std::move(o.entries_);
    o.handle_ = nullptr;
  }
  return *this;
}

EmulatedProgram::~EmulatedProgram() {
  if (handle_) ::dlclose(handle_);
}

void EmulatedProgram::launch(size_t k, const std::vector<void*>& buffers, int64_t batch) const {
  if (k >= entries_.size())
    throw Error("kiln: EmulatedProgram::launch: argument k: expected < " + std::to_string(entries_.size()) +
                ", got " + std::to_string(k));
  const KernelInfo& info = program_.kernels[k];
  if (info.launch == LaunchKind::Library) return runLibraryGemmOnHost(info, buffers, batch);
  if (info.launch == LaunchKind::Collective) return;  // the caller's (the communicator's) step
  std::vector<void*> pointers;
  for (int b : info.inputs) pointers.push_back(buffers.at(b));
  for (int b : info.outputs) pointers.push_back(buffers.at(b));
  long long n = batch;
  std::vector<void*> args;
  for (void*& p : pointers) args.push_back(&p);
  args.push_back(&n);
  unsigned grid[3], block[3];
  gridOf(info, batch, grid, block);
  reinterpret_cast<EmulateEntry>(entries_[k])(args.data(), grid, block);
}

void runLibraryGemmOnHost(const KernelInfo& step, const std::vector<void*>& buffers, int64_t batch) {
  const LibraryGemm& g = step.gemm;
  if (step.launch != LaunchKind::Library)
    throw Error("kiln: runLibraryGemmOnHost: argument step: expected a library step, got kernel " + step.label);
  const int64_t m = g.m.at(batch), n = g.n.at(batch), k = g.k.at(batch);
  const auto* a = static_cast<const float*>(buffers.at(g.a));
  const auto* b = static_cast<const float*>(buffers.at(g.b));
  auto* c = static_cast<float*>(buffers.at(g.c));
  if (m == 0 || n == 0) return;
  if (k == 0) std::fill(c, c + m * n, 0.0f);  // an empty sum (cblas wants k >= 1 for its lda checks)
  else
    cblas_sgemm(CblasRowMajor, g.transpose_a ? CblasTrans : CblasNoTrans, g.transpose_b ? CblasTrans : CblasNoTrans, m, n, k,
                g.alpha, a, g.transpose_a ? m : k, b, g.transpose_b ? k : n, 0.0f, c, n);
  const float* bias = g.bias >= 0 ? static_cast<const float*>(buffers.at(g.bias)) : nullptr;
  if (!bias && !g.relu) return;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float& v = c[i * n + j];
      if (bias) v += bias[j];
      if (g.relu && v <= 0.0f) v = 0.0f;  // kiln.relu: NaN stays NaN
    }
}

}  // namespace kiln::cuda
