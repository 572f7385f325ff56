// NVRTC through dlopen: compiles generated CUDA C++ to cubin/PTX without a GPU.
#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <regex>
#include <set>

#include "kiln/codegen/cuda.h"
#include "kiln/device.h"
#include "kiln/error.h"
#include "kiln/kernel_cache.h"

namespace kiln::cuda {
namespace {

// The subset of nvrtc.h kiln calls (C ABI, stable across CUDA 11-13).
typedef int nvrtcResult;
typedef struct _nvrtcProgram* nvrtcProgram;

struct NvrtcApi {
  void* handle = nullptr;
  std::string error;
  nvrtcResult (*version)(int*, int*) = nullptr;
  nvrtcResult (*create)(nvrtcProgram*, const char*, const char*, int, const char* const*, const char* const*) = nullptr;
  nvrtcResult (*compile)(nvrtcProgram, int, const char* const*) = nullptr;
  nvrtcResult (*logSize)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*log)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*ptxSize)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*ptx)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*cubinSize)(nvrtcProgram, size_t*) = nullptr;
  nvrtcResult (*cubin)(nvrtcProgram, char*) = nullptr;
  nvrtcResult (*destroy)(nvrtcProgram*) = nullptr;
  const char* (*errorString)(nvrtcResult) = nullptr;
};

const NvrtcApi& api() {
  static NvrtcApi a = [] {
    NvrtcApi n;
    std::vector<std::string> candidates;
    if (const char* p = std::getenv("KILN_NVRTC_LIBRARY"); p && *p) candidates.push_back(p);
    if (std::string(KILN_NVRTC_LIBRARY) != "") candidates.push_back(KILN_NVRTC_LIBRARY);
    for (const char* c : {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so"})
      candidates.push_back(c);
    for (const std::string& c : candidates) {
      n.handle = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (n.handle) break;
      const char* e = ::dlerror();
      n.error += "\n  " + c + ": " + (e ? e : "not found");
    }
    if (!n.handle) return n;
    auto sym = [&](auto& fn, const char* name) { fn = reinterpret_cast<std::decay_t<decltype(fn)>>(::dlsym(n.handle, name)); };
    sym(n.version, "nvrtcVersion");
    sym(n.create, "nvrtcCreateProgram");
    sym(n.compile, "nvrtcCompileProgram");
    sym(n.logSize, "nvrtcGetProgramLogSize");
    sym(n.log, "nvrtcGetProgramLog");
    sym(n.ptxSize, "nvrtcGetPTXSize");
    sym(n.ptx, "nvrtcGetPTX");
    sym(n.cubinSize, "nvrtcGetCUBINSize");
    sym(n.cubin, "nvrtcGetCUBIN");
    sym(n.destroy, "nvrtcDestroyProgram");
    sym(n.errorString, "nvrtcGetErrorString");
    if (!n.version || !n.create || !n.compile || !n.log || !n.ptx || !n.cubin || !n.destroy) {
      n.error = "\n  the library lacks NVRTC's functions";
      ::dlclose(n.handle);
      n.handle = nullptr;
    }
    return n;
  }();
  return a;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t h) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

}  // namespace

bool nvrtcAvailable() { return api().handle != nullptr; }

std::string nvrtcVersion() {
  if (!nvrtcAvailable()) return "";
  int major = 0, minor = 0;
  api().version(&major, &minor);
  return std::to_string(major) + "." + std::to_string(minor);
}

bool needsToolkitHeaders(const std::string& source) {
  static const std::regex includeRe(R"(^[ \t]*#[ \t]*include[ \t]*[<"])", std::regex::multiline);
  return std::regex_search(source, includeRe);
}

std::vector<std::string> nvrtcOptions(const Program& program, const std::string& arch) {
  std::vector<std::string> options = {"--gpu-architecture=" + arch, "--std=c++17",
                                      "--device-as-default-execution-space", "-lineinfo",
                                      "--diag-suppress=177"};  // 177: an index local left unused
  if (!needsToolkitHeaders(program.source)) {
    options.push_back("--minimal");
    return options;
  }
  std::string include = KILN_CUDA_INCLUDE_DIR;  // CUDAToolkit's; a list when CMake found several
  if (include.empty()) include = "/usr/local/cuda/include";
  for (size_t at = 0; at <= include.size();) {
    size_t end = std::min(include.find(';', at), include.size());
    if (end > at) options.push_back("-I" + include.substr(at, end - at));
    at = end + 1;
  }
  int major = 0, minor = 0;
  if (nvrtcAvailable()) api().version(&major, &minor);
  if (major > 12 || (major == 12 && minor >= 8)) options.push_back("--pch");
  return options;
}

namespace {
std::string joined(const std::vector<std::string>& options) {
  std::string s;
  for (const std::string& o : options) s += (s.empty() ? "" : " ") + o;
  return s;
}
}  // namespace

std::string nvrtcCacheKey(const Program& program, const std::string& arch) {
  return "cuda-nvrtc/" + hex(fnv1a(program.source)) + "/" + arch + "/nvrtc-" + nvrtcVersion() + "/" +
         hex(fnv1a(joined(nvrtcOptions(program, arch))));
}

std::string nvrtcDiskKey(const Program& program, const std::string& arch) {
  return KernelCache::make_key({"cuda-nvrtc", program.source, arch, "nvrtc " + nvrtcVersion(),
                                "driver " + cuda_driver::version(), "options " + joined(nvrtcOptions(program, arch))});
}

namespace {

// A compile's disk-cache payload: the arch, the cubin, the PTX and the log, each
// as a 64-bit little-endian length and its bytes.
void appendField(std::vector<uint8_t>& out, const char* data, size_t size) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(size) >> (8 * i)));
  out.insert(out.end(), data, data + size);
}

bool readField(const std::vector<uint8_t>& in, size_t& at, std::string& field) {
  if (in.size() - at < 8) return false;
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= static_cast<uint64_t>(in[at + i]) << (8 * i);
  at += 8;
  if (in.size() - at < size) return false;
  field.assign(reinterpret_cast<const char*>(in.data() + at), static_cast<size_t>(size));
  at += static_cast<size_t>(size);
  return true;
}

std::vector<uint8_t> encodeOutput(const NvrtcOutput& out) {
  std::vector<uint8_t> bytes;
  appendField(bytes, out.arch.data(), out.arch.size());
  appendField(bytes, out.cubin.data(), out.cubin.size());
  appendField(bytes, out.ptx.data(), out.ptx.size());
  appendField(bytes, out.log.data(), out.log.size());
  return bytes;
}

std::optional<NvrtcOutput> decodeOutput(const std::vector<uint8_t>& bytes, const std::string& arch) {
  NvrtcOutput out;
  std::string cubin;
  size_t at = 0;
  if (!readField(bytes, at, out.arch) || !readField(bytes, at, cubin) || !readField(bytes, at, out.ptx) ||
      !readField(bytes, at, out.log) || at != bytes.size() || out.arch != arch)
    return std::nullopt;
  out.cubin.assign(cubin.begin(), cubin.end());
  return out;
}

}  // namespace

NvrtcOutput nvrtcCompileCached(const Program& program, const std::string& arch, KernelCache& cache,
                               bool* from_cache) {
  std::string key = nvrtcDiskKey(program, arch);
  if (std::optional<std::vector<uint8_t>> bytes = cache.get(key))
    if (std::optional<NvrtcOutput> out = decodeOutput(*bytes, arch)) {
      if (from_cache) *from_cache = true;
      return std::move(*out);
    }
  NvrtcOutput out = nvrtcCompile(program, arch);
  cache.put(key, encodeOutput(out));
  if (from_cache) *from_cache = false;
  return out;
}

NvrtcOutput nvrtcCompile(const Program& program, const std::string& arch) {
  const NvrtcApi& n = api();
  if (!n.handle)
    throw Error("kiln: nvrtcCompile: NVRTC (libnvrtc) cannot be loaded; tried:" + n.error +
                "\n(install the CUDA toolkit, or set KILN_NVRTC_LIBRARY to libnvrtc.so)");
  if (arch.rfind("sm_", 0) != 0 && arch.rfind("compute_", 0) != 0)
    throw Error("kiln: nvrtcCompile: argument arch: expected \"sm_NN\" (cubin) or \"compute_NN\" (PTX), got \"" + arch + "\"");
  nvrtcProgram prog = nullptr;
  if (nvrtcResult r = n.create(&prog, program.source.c_str(), "kiln_kernels.cu", 0, nullptr, nullptr); r != 0)
    throw Error(std::string("kiln: nvrtcCompile: nvrtcCreateProgram failed: ") + (n.errorString ? n.errorString(r) : "?"));
  std::vector<std::string> flags = nvrtcOptions(program, arch);
  std::vector<const char*> options;
  for (const std::string& f : flags) options.push_back(f.c_str());
  nvrtcResult rc = n.compile(prog, static_cast<int>(options.size()), options.data());
  NvrtcOutput out;
  out.arch = arch;
  size_t size = 0;
  n.logSize(prog, &size);
  out.log.resize(size);
  if (size) n.log(prog, out.log.data());
  while (!out.log.empty() && (out.log.back() == '\0' || out.log.back() == '\n')) out.log.pop_back();
  if (rc != 0) {
    n.destroy(&prog);
    // The source where the reader can open it, and the kernels of the failing lines.
    std::filesystem::path dir = std::filesystem::temp_directory_path() / "kiln-cuda";
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::filesystem::path file = dir / ("kernels-" + hex(fnv1a(program.source)) + ".cu");
    std::ofstream(file) << program.source;
    std::set<std::string> kernels;
    std::regex lineRe(R"(kiln_kernels\.cu\((\d+)\))");
    for (std::sregex_iterator it(out.log.begin(), out.log.end(), lineRe), end; it != end; ++it)
      if (std::string k = kernelAtLine(program, std::stoi((*it)[1])); !k.empty()) kernels.insert(k);
    std::string which;
    for (const std::string& k : kernels) which += (which.empty() ? "" : ", ") + k;
    throw Error("kiln: NVRTC failed to compile the CUDA kernel" + std::string(kernels.size() == 1 ? " " : "s ") +
                (which.empty() ? "(no kernel line in the log)" : which) + " for " + arch + "\nsource: " + file.string() +
                " (line numbers as kiln_kernels.cu)\nNVRTC log:\n" + out.log);
  }
  n.ptxSize(prog, &size);
  out.ptx.resize(size);
  n.ptx(prog, out.ptx.data());
  if (arch.rfind("sm_", 0) == 0) {
    n.cubinSize(prog, &size);
    out.cubin.resize(size);
    n.cubin(prog, out.cubin.data());
  }
  n.destroy(&prog);
  return out;
}

}  // namespace kiln::cuda
