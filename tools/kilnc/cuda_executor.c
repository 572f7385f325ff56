/* kilnc's CUDA executor: what a `kilnc --target=cuda` object runs at each <name>_forward.
 *
 * Compiled to LLVM bitcode when kilnc is built (tools/kilnc/CMakeLists.txt), embedded in kilnc,
 * and linked by kilnc into every --target=cuda object beside the plan it defines
 * (`kilnc_cuda_plan`: buffers, kernels in launch order, cubins/PTX, weights; CudaTarget.cpp),
 * then internalized: the object exports only the C entry points. It calls libc only (dlopen
 * and pthread_mutex_* are in glibc's libc.so.6 since 2.34): libcuda.so.1 is loaded with dlopen
 * at the first call (KILNC_LIBCUDA=<path> loads another file instead), so a program linked with
 * the object starts on a machine without a driver and gets an error code, not a crash.
 *
 * The first successful call loads the driver, makes GPU 0's primary context current, loads
 * the module (the cubin of the device's architecture, else the PTX, which the driver compiles)
 * and uploads the weights, once. Each call then copies the inputs to device buffers (kept
 * for the largest batch seen), launches the kernels in order on the default stream with the
 * parameters and grids of kiln's cuda backend (kiln::cuda::gridOf), and copies the outputs
 * back. Calls are serialized by one mutex. No CUDA header is needed: the few driver types
 * and values used are those of the driver API's stable ABI. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st* CUcontext;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;
typedef unsigned long long CUdeviceptr;
enum { kCudaSuccess = 0, kAttributeMajor = 75, kAttributeMinor = 76 };

/* The plan kilnc defines (CEntryPoints.cpp builds its initializer; kilnc checks the layout). */
struct kilnc_cuda_plan {
  const char* model;             /* --name, for messages */
  int64_t symbolic_batch;        /* 1: the kernels' `batch` parameter is the call's batch; 0: 0 */
  int64_t num_inputs;
  int64_t num_outputs;
  const int64_t* outputs;        /* the buffer of each output */
  int64_t num_buffers;
  const int64_t* buffers;        /* 4 per buffer: bytes at batch 1, power of the batch, input index, weight index */
  int64_t num_kernels;
  const int64_t* kernels;        /* 11 per kernel (kKernelFields) */
  const char* const* kernel_names;
  const int64_t* params;         /* buffer indices of the kernels' pointer parameters */
  const void* const* weights;    /* the embedded data of each weight buffer */
  int64_t num_images;
  const int64_t* image_info;     /* 3 per image: compute capability (80, 90), 0 cubin / 1 PTX, bytes */
  const void* const* images;
};
extern const struct kilnc_cuda_plan kilnc_cuda_plan;

/* Return codes (the header documents them). */
enum { kBadArgument = 1, kNoDevice = 3, kCudaError = 4 };
/* Kernel fields: launch kind (0 elements, 1 rows, 2 tiles), block, work, rows and count (factor
 * and batch power each), tile, first parameter, number of parameters. */
enum { kKernelFields = 11, kBufferFields = 4, kImageFields = 3, kMaxParams = 256 };

#define KILNC_DRIVER_ENTRY_POINTS(X)                                                                         \
  X(cuInit, (unsigned)) X(cuDeviceGetCount, (int*)) X(cuDeviceGet, (CUdevice*, int))                        \
  X(cuDeviceGetAttribute, (int*, int, CUdevice)) X(cuDevicePrimaryCtxRetain, (CUcontext*, CUdevice))        \
  X(cuCtxSetCurrent, (CUcontext)) X(cuModuleLoadData, (CUmodule*, const void*))                             \
  X(cuModuleGetFunction, (CUfunction*, CUmodule, const char*)) X(cuMemAlloc_v2, (CUdeviceptr*, size_t))     \
  X(cuMemFree_v2, (CUdeviceptr)) X(cuMemcpyHtoD_v2, (CUdeviceptr, const void*, size_t))                     \
  X(cuMemcpyDtoH_v2, (void*, CUdeviceptr, size_t))                                                           \
  X(cuLaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,      \
                     CUstream, void**, void**))                                                              \
  X(cuGetErrorName, (CUresult, const char**)) X(cuGetErrorString, (CUresult, const char**))

static struct {
  pthread_mutex_t mutex;
  void* library;
#define KILNC_DRIVER_MEMBER(name, args) CUresult(*name) args;
  KILNC_DRIVER_ENTRY_POINTS(KILNC_DRIVER_MEMBER)
#undef KILNC_DRIVER_MEMBER
  int ready;                 /* module loaded and weights uploaded */
  CUcontext context;
  CUmodule module;
  CUfunction* functions;     /* per kernel */
  CUdeviceptr* device;       /* per buffer: weights (uploaded once), the others for `capacity` */
  int64_t capacity;          /* the batch the non-weight buffers were allocated for (0: none) */
  char error[2048];
} g = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static int fail(int code, const char* format, ...) {
  int n = snprintf(g.error, sizeof g.error, "%s_forward: ", kilnc_cuda_plan.model);
  va_list args;
  va_start(args, format);
  if (n >= 0 && (size_t)n < sizeof g.error) vsnprintf(g.error + n, sizeof g.error - (size_t)n, format, args);
  va_end(args);
  return code;
}

/* A failed driver call: "<call> failed: CUDA_ERROR_...: <text> (<what>)". */
static int failCall(int code, const char* call, CUresult rc, const char* what) {
  const char* name = "?";
  const char* text = "";
  if (g.cuGetErrorName) g.cuGetErrorName(rc, &name);
  if (g.cuGetErrorString) g.cuGetErrorString(rc, &text);
  return fail(code, "%s failed: %s (%d): %s (%s)", call, name ? name : "?", rc, text ? text : "", what);
}

/* bytes * batch^power, or -1 when it overflows. */
static int64_t sized(int64_t bytes, int64_t power, int64_t batch) {
  for (int64_t i = 0; i < power; ++i) {
    if (batch != 0 && bytes > INT64_MAX / batch) return -1;
    bytes *= batch;
  }
  return bytes;
}

static void releaseScratch(void) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  for (int64_t b = 0; b < p->num_buffers; ++b)
    if (p->buffers[b * kBufferFields + 3] < 0 && g.device[b]) {
      g.cuMemFree_v2(g.device[b]);
      g.device[b] = 0;
    }
  g.capacity = 0;
}

/* The image for compute capability `cc`: the cubin of the same major version with the highest
 * minor not above the device's, else PTX of an architecture not above it; -1 when none. */
static int64_t imageFor(int cc) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  int64_t best = -1, ptx = -1;
  for (int64_t i = 0; i < p->num_images; ++i) {
    int64_t arch = p->image_info[i * kImageFields], kind = p->image_info[i * kImageFields + 1];
    if (kind == 0 && arch / 10 == cc / 10 && arch <= cc &&
        (best < 0 || arch > p->image_info[best * kImageFields]))
      best = i;
    if (kind == 1 && arch <= cc && (ptx < 0 || arch > p->image_info[ptx * kImageFields])) ptx = i;
  }
  return best >= 0 ? best : ptx;
}

static int initialize(void) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  if (!g.library) {
    const char* path = getenv("KILNC_LIBCUDA");
    if (!path || !*path) path = "libcuda.so.1";
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char* why = dlerror();
      return fail(kNoDevice, "no CUDA driver: cannot load %s (%s)", path, why ? why : "dlopen failed");
    }
#define KILNC_DRIVER_RESOLVE(name, args)                                                        \
  *(void**)(&g.name) = dlsym(library, #name);                                                   \
  if (!g.name) {                                                                                \
    dlclose(library);                                                                           \
    return fail(kNoDevice, "the CUDA driver %s has no entry point %s (too old)", path, #name);  \
  }
    KILNC_DRIVER_ENTRY_POINTS(KILNC_DRIVER_RESOLVE)
#undef KILNC_DRIVER_RESOLVE
    g.library = library;
  }
  CUresult rc = g.cuInit(0);
  if (rc != kCudaSuccess) return failCall(kNoDevice, "cuInit", rc, "no usable CUDA driver or GPU");
  int count = 0;
  rc = g.cuDeviceGetCount(&count);
  if (rc != kCudaSuccess) return failCall(kNoDevice, "cuDeviceGetCount", rc, "counting the GPUs");
  if (count <= 0) return fail(kNoDevice, "no CUDA device (the driver reports none)");
  CUdevice device = 0;
  int major = 0, minor = 0;
  if ((rc = g.cuDeviceGet(&device, 0)) != kCudaSuccess) return failCall(kNoDevice, "cuDeviceGet", rc, "GPU 0");
  if ((rc = g.cuDeviceGetAttribute(&major, kAttributeMajor, device)) != kCudaSuccess ||
      (rc = g.cuDeviceGetAttribute(&minor, kAttributeMinor, device)) != kCudaSuccess)
    return failCall(kCudaError, "cuDeviceGetAttribute", rc, "the compute capability of GPU 0");
  int cc = major * 10 + minor;
  int64_t image = imageFor(cc);
  if (image < 0)
    return fail(kCudaError, "GPU 0 is sm_%d, for which the object has no cubin and no PTX it can run "
                "(recompile with kilnc --gpu-arch=sm_%d)", cc, cc);
  if ((rc = g.cuDevicePrimaryCtxRetain(&g.context, device)) != kCudaSuccess)
    return failCall(kCudaError, "cuDevicePrimaryCtxRetain", rc, "GPU 0");
  if ((rc = g.cuCtxSetCurrent(g.context)) != kCudaSuccess) return failCall(kCudaError, "cuCtxSetCurrent", rc, "GPU 0");
  char what[128];
  snprintf(what, sizeof what, "the %s of sm_%lld on GPU 0 (sm_%d)",
           p->image_info[image * kImageFields + 1] ? "PTX" : "cubin", (long long)p->image_info[image * kImageFields], cc);
  if ((rc = g.cuModuleLoadData(&g.module, p->images[image])) != kCudaSuccess)
    return failCall(kCudaError, "cuModuleLoadData", rc, what);
  /* (Kept across a failed initialization, which the next call retries.) */
  if (!g.functions) g.functions = calloc((size_t)p->num_kernels + 1, sizeof(CUfunction));
  if (!g.device) g.device = calloc((size_t)p->num_buffers + 1, sizeof(CUdeviceptr));
  if (!g.functions || !g.device) return fail(kCudaError, "out of host memory");
  for (int64_t k = 0; k < p->num_kernels; ++k)
    if ((rc = g.cuModuleGetFunction(&g.functions[k], g.module, p->kernel_names[k])) != kCudaSuccess)
      return failCall(kCudaError, "cuModuleGetFunction", rc, p->kernel_names[k]);
  for (int64_t b = 0; b < p->num_buffers; ++b) {
    int64_t weight = p->buffers[b * kBufferFields + 3], bytes = p->buffers[b * kBufferFields];
    if (weight < 0 || g.device[b]) continue;
    if ((rc = g.cuMemAlloc_v2(&g.device[b], (size_t)(bytes > 0 ? bytes : 4))) != kCudaSuccess)
      return failCall(kCudaError, "cuMemAlloc", rc, "uploading the weights");
    if (bytes > 0 && (rc = g.cuMemcpyHtoD_v2(g.device[b], p->weights[weight], (size_t)bytes)) != kCudaSuccess)
      return failCall(kCudaError, "cuMemcpyHtoD", rc, "uploading the weights");
  }
  g.ready = 1;
  return 0;
}

/* kiln::cuda::gridOf for the kernel at `k` (the fields of kilnc_cuda_plan.kernels). */
static unsigned clampGrid(int64_t v) { return (unsigned)(v < 1 ? 1 : v > 65535 ? 65535 : v); }
static void gridOf(const int64_t* k, int64_t batch, unsigned grid[3], unsigned block[3]) {
  int64_t work = sized(k[2], k[3], batch), rows = sized(k[4], k[5], batch), count = sized(k[6], k[7], batch);
  grid[0] = grid[1] = grid[2] = 1;
  block[0] = (unsigned)k[1];
  block[1] = block[2] = 1;
  if (k[0] == 0) {
    grid[0] = clampGrid((work + k[1] - 1) / k[1]);
  } else if (k[0] == 1) {
    grid[0] = clampGrid(work);
  } else {
    block[1] = (unsigned)k[1];
    grid[0] = clampGrid((work + k[8] - 1) / k[8]);
    grid[1] = clampGrid((rows + k[8] - 1) / k[8]);
    grid[2] = clampGrid(count);
  }
}

static int run(const void* const* inputs, int64_t batch, void* const* outputs) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  int code = g.ready ? 0 : initialize();
  if (code) return code;
  CUresult rc = g.cuCtxSetCurrent(g.context);
  if (rc != kCudaSuccess) return failCall(kCudaError, "cuCtxSetCurrent", rc, "GPU 0");
  /* Buffers grow with the batch: those of the largest batch seen serve smaller ones. */
  int64_t n = p->symbolic_batch ? batch : 1;
  for (int64_t b = 0; b < p->num_buffers; ++b)
    if (sized(p->buffers[b * kBufferFields], p->buffers[b * kBufferFields + 1], n) < 0)
      return fail(kBadArgument, "batch %lld: the buffers' sizes overflow", (long long)batch);
  if (n > g.capacity) {
    releaseScratch();
    for (int64_t b = 0; b < p->num_buffers; ++b) {
      if (p->buffers[b * kBufferFields + 3] >= 0) continue;
      int64_t bytes = sized(p->buffers[b * kBufferFields], p->buffers[b * kBufferFields + 1], n);
      if ((rc = g.cuMemAlloc_v2(&g.device[b], (size_t)(bytes > 0 ? bytes : 4))) != kCudaSuccess) {
        releaseScratch();
        return failCall(kCudaError, "cuMemAlloc", rc, "the buffers of the batch");
      }
    }
    g.capacity = n;
  }
  for (int64_t b = 0; b < p->num_buffers; ++b) {
    int64_t input = p->buffers[b * kBufferFields + 2];
    int64_t bytes = sized(p->buffers[b * kBufferFields], p->buffers[b * kBufferFields + 1], n);
    if (input >= 0 && bytes > 0 && (rc = g.cuMemcpyHtoD_v2(g.device[b], inputs[input], (size_t)bytes)) != kCudaSuccess)
      return failCall(kCudaError, "cuMemcpyHtoD", rc, "copying the inputs");
  }
  long long kernelBatch = p->symbolic_batch ? batch : 0;
  CUdeviceptr pointers[kMaxParams];
  void* params[kMaxParams + 1];
  for (int64_t k = 0; k < p->num_kernels; ++k) {
    const int64_t* kernel = p->kernels + k * kKernelFields;
    int64_t count = kernel[10];
    if (count > kMaxParams) return fail(kCudaError, "kernel %s has more than %d buffers", p->kernel_names[k], kMaxParams);
    for (int64_t i = 0; i < count; ++i) {
      pointers[i] = g.device[p->params[kernel[9] + i]];
      params[i] = &pointers[i];
    }
    params[count] = &kernelBatch;
    unsigned grid[3], block[3];
    gridOf(kernel, batch, grid, block);
    rc = g.cuLaunchKernel(g.functions[k], grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, NULL, params, NULL);
    if (rc != kCudaSuccess) return failCall(kCudaError, "cuLaunchKernel", rc, p->kernel_names[k]);
  }
  for (int64_t o = 0; o < p->num_outputs; ++o) {
    int64_t b = p->outputs[o];
    int64_t bytes = sized(p->buffers[b * kBufferFields], p->buffers[b * kBufferFields + 1], n);
    if (bytes > 0 && (rc = g.cuMemcpyDtoH_v2(outputs[o], g.device[b], (size_t)bytes)) != kCudaSuccess)
      return failCall(kCudaError, "cuMemcpyDtoH", rc, "copying the outputs (or a kernel before failed)");
  }
  return 0;
}

/* Called by <name>_forward after its argument checks (null pointers, batch). */
int kilnc_cuda_forward(const void* const* inputs, int64_t batch, void* const* outputs) {
  pthread_mutex_lock(&g.mutex);
  g.error[0] = 0;
  int code = run(inputs, batch, outputs);
  pthread_mutex_unlock(&g.mutex);
  return code;
}

/* <name>_last_error: the message of the last failed call ("" after a successful one). */
const char* kilnc_cuda_last_error(void) { return g.error; }
