/* A fake NVIDIA driver (libcuda.so.1) for examples/aot_cuda, where no GPU is: the entry points
 * the CUDA executor of a `kilnc --target=cuda` object calls, with host memory as device memory
 * and each launch run by kiln's SIMT emulator on the kernels' emulator build
 * (`kilnc --target=cuda --emit=emulated`: K__emulate(params, grid, block) per kernel K), found
 * by the kernel's name. Environment:
 *   KILNC_FAKE_CUDA_KERNELS  the emulator builds of the kernels, separated by ':' (one per function
 *                            of a training step; required to load a module), searched in order
 *   KILNC_FAKE_CUDA_DEVICES  the number of GPUs (default 1; 0: cuInit fails like a driver without one)
 *   KILNC_FAKE_CUDA_CC       the GPU's compute capability as major * 10 + minor (default 90)
 * Each cuModuleLoadData says on stderr whether it got a cubin (an ELF image) or PTX text. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void (*Entry)(void**, const unsigned*, const unsigned*);
enum { kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kNoDevice = 100, kInvalidImage = 200, kNotFound = 500 };

static int envInt(const char* name, int fallback) {
  const char* v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}

static int context;  /* the one context's address */
enum { kMaxBuilds = 8 };
static void* kernels[kMaxBuilds + 1];  /* the builds, NULL-terminated: every module is all of them */

CUresult cuInit(unsigned flags) { return flags != 0 ? kInvalidValue : envInt("KILNC_FAKE_CUDA_DEVICES", 1) > 0 ? kSuccess : kNoDevice; }
CUresult cuDeviceGetCount(int* count) {
  *count = envInt("KILNC_FAKE_CUDA_DEVICES", 1);
  return kSuccess;
}
CUresult cuDeviceGet(int* device, int ordinal) {
  if (ordinal < 0 || ordinal >= envInt("KILNC_FAKE_CUDA_DEVICES", 1)) return kInvalidValue;
  *device = ordinal;
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int* value, int attribute, int device) {
  (void)device;
  int cc = envInt("KILNC_FAKE_CUDA_CC", 90);
  if (attribute == 75) *value = cc / 10;
  else if (attribute == 76) *value = cc % 10;
  else return kInvalidValue;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRetain(void** ctx, int device) {
  (void)device;
  *ctx = &context;
  return kSuccess;
}
CUresult cuCtxSetCurrent(void* ctx) { return ctx == &context ? kSuccess : kInvalidValue; }
CUresult cuModuleLoadData(void** module, const void* image) {
  const char* path = getenv("KILNC_FAKE_CUDA_KERNELS");
  int cubin = memcmp(image, "\177ELF", 4) == 0;
  if (!cubin && !strstr((const char*)image, ".version")) return kInvalidImage;
  fprintf(stderr, "fake libcuda.so.1: cuModuleLoadData: %s\n", cubin ? "a cubin (ELF)" : "PTX");
  for (int n = 0, loaded = kernels[0] != NULL; !loaded && path && *path && n < kMaxBuilds; ++n) {
    char file[4096];
    size_t length = strcspn(path, ":");
    snprintf(file, sizeof file, "%.*s", (int)length, path);
    if (!(kernels[n] = dlopen(file, RTLD_NOW | RTLD_LOCAL))) {
      fprintf(stderr, "fake libcuda.so.1: cannot load %s of KILNC_FAKE_CUDA_KERNELS: %s\n", file, dlerror());
      while (n > 0) dlclose(kernels[--n]);
      return kInvalidImage;
    }
    path += length + (path[length] == ':');
    if (!*path) break;
  }
  if (!kernels[0]) {
    fprintf(stderr, "fake libcuda.so.1: KILNC_FAKE_CUDA_KERNELS is unset\n");
    return kInvalidImage;
  }
  *module = kernels;
  return kSuccess;
}
CUresult cuModuleGetFunction(void** function, void* module, const char* name) {
  char symbol[512];
  snprintf(symbol, sizeof symbol, "%s__emulate", name);
  *function = NULL;
  for (void** build = module; *build && !*function; ++build) *function = dlsym(*build, symbol);
  return *function ? kSuccess : kNotFound;
}
CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
  void* p = bytes ? aligned_alloc(256, (bytes + 255) / 256 * 256) : NULL;
  *pointer = (CUdeviceptr)(uintptr_t)p;
  return p ? kSuccess : bytes ? kOutOfMemory : kInvalidValue;
}
CUresult cuMemFree_v2(CUdeviceptr pointer) {
  free((void*)(uintptr_t)pointer);
  return kSuccess;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr to, const void* from, size_t bytes) {
  memcpy((void*)(uintptr_t)to, from, bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void* to, CUdeviceptr from, size_t bytes) {
  memcpy(to, (const void*)(uintptr_t)from, bytes);
  return kSuccess;
}
CUresult cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
  if (!function || shared != 0 || stream || extra || bx * by * bz > 1024 || bx * by * bz == 0) return kInvalidValue;
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  ((Entry)function)(params, grid, block);
  return kSuccess;
}
CUresult cuGetErrorName(CUresult rc, const char** name) {
  switch (rc) {
    case kSuccess: *name = "CUDA_SUCCESS"; break;
    case kInvalidValue: *name = "CUDA_ERROR_INVALID_VALUE"; break;
    case kOutOfMemory: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case kNoDevice: *name = "CUDA_ERROR_NO_DEVICE"; break;
    case kInvalidImage: *name = "CUDA_ERROR_INVALID_IMAGE"; break;
    case kNotFound: *name = "CUDA_ERROR_NOT_FOUND"; break;
    default: *name = NULL; return kInvalidValue;
  }
  return kSuccess;
}
CUresult cuGetErrorString(CUresult rc, const char** text) {
  *text = rc == kNoDevice ? "no CUDA-capable device is detected (fake driver)" : "(fake driver)";
  return kSuccess;
}
