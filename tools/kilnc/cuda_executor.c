/* kilnc's CUDA executor: what a `kilnc --target=cuda` object runs at each <name>_forward and,
 * for a training step, at each <name>_create, _step, _forward, _get_param, _set_param, _destroy.
 *
 * Compiled to LLVM bitcode when kilnc is built (tools/kilnc/CMakeLists.txt), embedded in kilnc,
 * and linked by kilnc into every --target=cuda object beside the plan it defines
 * (`kilnc_cuda_plan`: slots, then per function buffers, kernels in launch order, cubins/PTX;
 * CudaTarget.cpp, CEntryPoints.cpp), then internalized: the object exports only the C entry
 * points. It calls libc only (dlopen and pthread_mutex_* are in glibc's libc.so.6 since 2.34):
 * libcuda.so.1 is loaded with dlopen at the first call (KILNC_LIBCUDA=<path> loads another file
 * instead), so a program linked with the object starts on a machine without a driver and gets
 * an error code, not a crash.
 *
 * The process-wide part, set up once under a mutex by the first call that succeeds: the
 * driver's entry points, GPU 0's primary context, and per function its module (the cubin of the
 * device's architecture, else the PTX, which the driver compiles) and kernels. It is never
 * changed after, so calls on distinct states run at once.
 *
 * A state (struct kilnc_cuda_state) holds a device buffer per slot (a weight of an inference
 * model; a parameter or optimizer state of a training step), uploaded from the embedded arrays
 * when it is created, and per function its other buffers, kept for the largest batch seen. A
 * run copies the inputs to the device, launches the kernels in order on the default stream with
 * the parameters and grids of kiln's cuda backend (kiln::cuda::gridOf), reads the run-time
 * checks' statuses (a failed one: code 2, nothing changed), copies the outputs back and then
 * makes each updated slot's new value current by swapping its buffer with the one the step wrote
 * (no copy). An inference model's one state is created at the first <name>_forward, and those
 * calls are serialized. No CUDA header is needed: the few driver types and values used are those
 * of the driver API's stable ABI. */
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

/* One compiled function (@forward or @step) of the plan. */
struct kilnc_cuda_function {
  const char* entry;             /* the entry point's suffix, for messages ("_forward", "_step") */
  int64_t symbolic_batch;        /* 1: the kernels' `batch` parameter is the call's batch; 0: 0 */
  int64_t num_buffers;
  const int64_t* buffers;        /* 4 per buffer: bytes at batch 1, power of the batch, input index, slot */
  int64_t num_kernels;
  const int64_t* kernels;        /* 11 per kernel (kKernelFields) */
  const char* const* kernel_names;
  const int64_t* params;         /* buffer indices of the kernels' pointer parameters */
  int64_t num_images;
  const int64_t* image_info;     /* 3 per image: compute capability (80, 90), 0 cubin / 1 PTX, bytes */
  const void* const* images;
  int64_t num_outputs;
  const int64_t* outputs;        /* the buffer of each output (copied back; a null pointer: not) */
  int64_t num_statuses;
  const int64_t* statuses;       /* buffers of kiln.check_range statuses: 2 x i64, index -1 when fine */
  int64_t num_updates;
  const int64_t* updates;        /* 2 per update: slot, the buffer holding its new value */
};

/* The plan kilnc defines (CEntryPoints.cpp builds its initializer; kilnc checks the layout). */
struct kilnc_cuda_plan {
  const char* model;             /* --name, for messages */
  int64_t num_slots;
  const int64_t* slot_bytes;
  const void* const* slot_data;  /* the embedded initial value of each slot */
  int64_t num_functions;
  const struct kilnc_cuda_function* functions;
};
extern const struct kilnc_cuda_plan kilnc_cuda_plan;

/* Return codes (the header documents them). */
enum { kBadArgument = 1, kCheckFailed = 2, kNoDevice = 3, kCudaError = 4 };
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

/* The process-wide part: written under `mutex` until `ready`, then only read. */
static struct {
  pthread_mutex_t mutex;     /* the set-up */
  pthread_mutex_t inference_mutex;  /* kilnc_cuda_forward's calls */
  void* library;
#define KILNC_DRIVER_MEMBER(name, args) CUresult(*name) args;
  KILNC_DRIVER_ENTRY_POINTS(KILNC_DRIVER_MEMBER)
#undef KILNC_DRIVER_MEMBER
  int ready;                 /* modules loaded */
  CUcontext context;
  CUmodule* modules;         /* per function */
  CUfunction** functions;    /* per function, per kernel */
  struct kilnc_cuda_state* inference;  /* kilnc_cuda_forward's state (under `inference_mutex`) */
} g = {.mutex = PTHREAD_MUTEX_INITIALIZER, .inference_mutex = PTHREAD_MUTEX_INITIALIZER};

/* The message of each thread's last failed call: a buffer per thread under a pthread key (no
 * TLS variable, so the object also works in a shared library loaded with dlopen), freed when
 * the thread ends; NULL where it cannot be had (out of memory). */
enum { kErrorBytes = 2048 };
static pthread_once_t errorOnce = PTHREAD_ONCE_INIT;
static pthread_key_t errorKey;
static int errorKeyMade;
static void makeErrorKey(void) { errorKeyMade = pthread_key_create(&errorKey, free) == 0; }
static char* errorBuffer(int make) {
  pthread_once(&errorOnce, makeErrorKey);
  if (!errorKeyMade) return NULL;
  char* e = pthread_getspecific(errorKey);
  if (!e && make && (e = calloc(1, kErrorBytes)) && pthread_setspecific(errorKey, e) != 0) {
    free(e);
    e = NULL;
  }
  return e;
}
/* A call starts with no message. */
static void clearError(void) {
  char* e = errorBuffer(0);
  if (e) e[0] = 0;
}

struct kilnc_cuda_state {
  CUdeviceptr* slots;     /* per slot */
  CUdeviceptr** buffers;  /* per function, per buffer: the slot's for a slot, else owned */
  int64_t* capacity;      /* per function: the batch its owned buffers were allocated for (0: none) */
};

static int fail(int code, const char* entry, const char* format, ...) {
  char* error = errorBuffer(1);
  if (!error) return code;
  int n = snprintf(error, kErrorBytes, "%s%s: ", kilnc_cuda_plan.model, entry);
  va_list args;
  va_start(args, format);
  if (n >= 0 && n < kErrorBytes) vsnprintf(error + n, (size_t)(kErrorBytes - n), format, args);
  va_end(args);
  return code;
}

/* A failed driver call: "<call> failed: CUDA_ERROR_...: <text> (<what>)". */
static int failCall(int code, const char* entry, const char* call, CUresult rc, const char* what) {
  const char* name = "?";
  const char* text = "";
  if (g.cuGetErrorName) g.cuGetErrorName(rc, &name);
  if (g.cuGetErrorString) g.cuGetErrorString(rc, &text);
  return fail(code, entry, "%s failed: %s (%d): %s (%s)", call, name ? name : "?", rc, text ? text : "", what);
}

/* bytes * batch^power, or -1 when it overflows. */
static int64_t sized(int64_t bytes, int64_t power, int64_t batch) {
  for (int64_t i = 0; i < power; ++i) {
    if (batch != 0 && bytes > INT64_MAX / batch) return -1;
    bytes *= batch;
  }
  return bytes;
}

/* The image of `f` for compute capability `cc`: the cubin of the same major version with the
 * highest minor not above the device's, else PTX of an architecture not above it; -1 when none. */
static int64_t imageFor(const struct kilnc_cuda_function* f, int cc) {
  int64_t best = -1, ptx = -1;
  for (int64_t i = 0; i < f->num_images; ++i) {
    int64_t arch = f->image_info[i * kImageFields], kind = f->image_info[i * kImageFields + 1];
    if (kind == 0 && arch / 10 == cc / 10 && arch <= cc && (best < 0 || arch > f->image_info[best * kImageFields]))
      best = i;
    if (kind == 1 && arch <= cc && (ptx < 0 || arch > f->image_info[ptx * kImageFields])) ptx = i;
  }
  return best >= 0 ? best : ptx;
}

/* The process-wide part, under g.mutex. */
static int initialize(const char* entry) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  if (!g.library) {
    const char* path = getenv("KILNC_LIBCUDA");
    if (!path || !*path) path = "libcuda.so.1";
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
      const char* why = dlerror();
      return fail(kNoDevice, entry, "no CUDA driver: cannot load %s (%s)", path, why ? why : "dlopen failed");
    }
#define KILNC_DRIVER_RESOLVE(name, args)                                                                \
  *(void**)(&g.name) = dlsym(library, #name);                                                           \
  if (!g.name) {                                                                                        \
    dlclose(library);                                                                                   \
    return fail(kNoDevice, entry, "the CUDA driver %s has no entry point %s (too old)", path, #name);  \
  }
    KILNC_DRIVER_ENTRY_POINTS(KILNC_DRIVER_RESOLVE)
#undef KILNC_DRIVER_RESOLVE
    g.library = library;
  }
  CUresult rc = g.cuInit(0);
  if (rc != kCudaSuccess) return failCall(kNoDevice, entry, "cuInit", rc, "no usable CUDA driver or GPU");
  int count = 0;
  rc = g.cuDeviceGetCount(&count);
  if (rc != kCudaSuccess) return failCall(kNoDevice, entry, "cuDeviceGetCount", rc, "counting the GPUs");
  if (count <= 0) return fail(kNoDevice, entry, "no CUDA device (the driver reports none)");
  CUdevice device = 0;
  int major = 0, minor = 0;
  if ((rc = g.cuDeviceGet(&device, 0)) != kCudaSuccess) return failCall(kNoDevice, entry, "cuDeviceGet", rc, "GPU 0");
  if ((rc = g.cuDeviceGetAttribute(&major, kAttributeMajor, device)) != kCudaSuccess ||
      (rc = g.cuDeviceGetAttribute(&minor, kAttributeMinor, device)) != kCudaSuccess)
    return failCall(kCudaError, entry, "cuDeviceGetAttribute", rc, "the compute capability of GPU 0");
  int cc = major * 10 + minor;
  for (int64_t f = 0; f < p->num_functions; ++f)
    if (imageFor(&p->functions[f], cc) < 0)
      return fail(kCudaError, entry, "GPU 0 is sm_%d, for which the object has no cubin and no PTX it can run "
                  "(recompile with kilnc --gpu-arch=sm_%d)", cc, cc);
  if ((rc = g.cuDevicePrimaryCtxRetain(&g.context, device)) != kCudaSuccess)
    return failCall(kCudaError, entry, "cuDevicePrimaryCtxRetain", rc, "GPU 0");
  if ((rc = g.cuCtxSetCurrent(g.context)) != kCudaSuccess)
    return failCall(kCudaError, entry, "cuCtxSetCurrent", rc, "GPU 0");
  /* (Kept across a failed initialization, which the next call retries.) */
  if (!g.modules) g.modules = calloc((size_t)p->num_functions + 1, sizeof(CUmodule));
  if (!g.functions) g.functions = calloc((size_t)p->num_functions + 1, sizeof(CUfunction*));
  if (!g.modules || !g.functions) return fail(kCudaError, entry, "out of host memory");
  for (int64_t f = 0; f < p->num_functions; ++f) {
    const struct kilnc_cuda_function* fn = &p->functions[f];
    int64_t image = imageFor(fn, cc);
    const int64_t* info = fn->image_info + image * kImageFields;
    if (!g.modules[f]) {
      char what[160];
      snprintf(what, sizeof what, "the %s of sm_%lld on GPU 0 (sm_%d) for %s%s", info[1] ? "PTX" : "cubin",
               (long long)info[0], cc, p->model, fn->entry);
      if ((rc = g.cuModuleLoadData(&g.modules[f], fn->images[image])) != kCudaSuccess) {
        g.modules[f] = NULL;
        return failCall(kCudaError, entry, "cuModuleLoadData", rc, what);
      }
    }
    if (!g.functions[f] && !(g.functions[f] = calloc((size_t)fn->num_kernels + 1, sizeof(CUfunction))))
      return fail(kCudaError, entry, "out of host memory");
    for (int64_t k = 0; k < fn->num_kernels; ++k)
      if ((rc = g.cuModuleGetFunction(&g.functions[f][k], g.modules[f], fn->kernel_names[k])) != kCudaSuccess)
        return failCall(kCudaError, entry, "cuModuleGetFunction", rc, fn->kernel_names[k]);
  }
  g.ready = 1;
  return 0;
}

/* The process-wide part ready and GPU 0's context current on this thread. */
static int prepare(const char* entry) {
  pthread_mutex_lock(&g.mutex);
  int code = g.ready ? 0 : initialize(entry);
  pthread_mutex_unlock(&g.mutex);
  if (code) return code;
  CUresult rc = g.cuCtxSetCurrent(g.context);
  return rc == kCudaSuccess ? 0 : failCall(kCudaError, entry, "cuCtxSetCurrent", rc, "GPU 0");
}

static void releaseOwned(struct kilnc_cuda_state* s, int64_t f) {
  const struct kilnc_cuda_function* fn = &kilnc_cuda_plan.functions[f];
  for (int64_t b = 0; b < fn->num_buffers; ++b) {
    if (fn->buffers[b * kBufferFields + 3] < 0 && s->buffers[f][b]) g.cuMemFree_v2(s->buffers[f][b]);
    s->buffers[f][b] = 0;
  }
  s->capacity[f] = 0;
}

/* Frees the state (any part of it; g's driver is loaded when any device memory is held). */
void kilnc_cuda_destroy(struct kilnc_cuda_state* s) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  if (!s) return;
  if (s->buffers)
    for (int64_t f = 0; f < p->num_functions; ++f)
      if (s->buffers[f]) {
        releaseOwned(s, f);
        free(s->buffers[f]);
      }
  if (s->slots)
    for (int64_t i = 0; i < p->num_slots; ++i)
      if (s->slots[i]) g.cuMemFree_v2(s->slots[i]);
  free(s->slots);
  free(s->buffers);
  free(s->capacity);
  free(s);
}

/* A state: the slots on GPU 0 with their embedded values. NULL (the error, *code) on failure. */
static struct kilnc_cuda_state* create(const char* entry, int* code) {
  const struct kilnc_cuda_plan* p = &kilnc_cuda_plan;
  *code = prepare(entry);
  if (*code) return NULL;
  *code = kCudaError;
  struct kilnc_cuda_state* s = calloc(1, sizeof *s);
  if (!s || !(s->slots = calloc((size_t)p->num_slots + 1, sizeof(CUdeviceptr))) ||
      !(s->buffers = calloc((size_t)p->num_functions + 1, sizeof(CUdeviceptr*))) ||
      !(s->capacity = calloc((size_t)p->num_functions + 1, sizeof(int64_t)))) {
    kilnc_cuda_destroy(s);
    fail(kCudaError, entry, "out of host memory");
    return NULL;
  }
  for (int64_t f = 0; f < p->num_functions; ++f)
    if (!(s->buffers[f] = calloc((size_t)p->functions[f].num_buffers + 1, sizeof(CUdeviceptr)))) {
      kilnc_cuda_destroy(s);
      fail(kCudaError, entry, "out of host memory");
      return NULL;
    }
  for (int64_t i = 0; i < p->num_slots; ++i) {
    int64_t bytes = p->slot_bytes[i];
    CUresult rc = g.cuMemAlloc_v2(&s->slots[i], (size_t)(bytes > 0 ? bytes : 4));
    if (rc != kCudaSuccess) s->slots[i] = 0;
    if (rc == kCudaSuccess && bytes > 0) rc = g.cuMemcpyHtoD_v2(s->slots[i], p->slot_data[i], (size_t)bytes);
    if (rc != kCudaSuccess) {
      kilnc_cuda_destroy(s);
      failCall(kCudaError, entry, "cuMemAlloc/cuMemcpyHtoD", rc, "uploading the parameters and state");
      return NULL;
    }
  }
  *code = 0;
  return s;
}

/* <name>_create: a state, or NULL (<name>_last_error says why). */
struct kilnc_cuda_state* kilnc_cuda_create(void) {
  clearError();
  int code = 0;
  return create("_create", &code);
}

/* kiln::cuda::gridOf for the kernel at `k` (the fields of kilnc_cuda_function.kernels). */
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

static int run(struct kilnc_cuda_state* s, int64_t f, const void* const* inputs, int64_t batch, void* const* outputs) {
  const struct kilnc_cuda_function* fn = &kilnc_cuda_plan.functions[f];
  const char* entry = fn->entry;
  int code = prepare(entry);
  if (code) return code;
  CUresult rc;
  CUdeviceptr* device = s->buffers[f];
  /* Buffers grow with the batch: those of the largest batch seen serve smaller ones. */
  int64_t n = fn->symbolic_batch ? batch : 1;
  for (int64_t b = 0; b < fn->num_buffers; ++b)
    if (sized(fn->buffers[b * kBufferFields], fn->buffers[b * kBufferFields + 1], n) < 0)
      return fail(kBadArgument, entry, "batch %lld: the buffers' sizes overflow", (long long)batch);
  if (n > s->capacity[f]) {
    releaseOwned(s, f);
    for (int64_t b = 0; b < fn->num_buffers; ++b) {
      if (fn->buffers[b * kBufferFields + 3] >= 0) continue;
      int64_t bytes = sized(fn->buffers[b * kBufferFields], fn->buffers[b * kBufferFields + 1], n);
      if ((rc = g.cuMemAlloc_v2(&device[b], (size_t)(bytes > 0 ? bytes : 4))) != kCudaSuccess) {
        device[b] = 0;
        releaseOwned(s, f);
        return failCall(kCudaError, entry, "cuMemAlloc", rc, "the buffers of the batch");
      }
    }
    s->capacity[f] = n;
  }
  for (int64_t b = 0; b < fn->num_buffers; ++b) {
    int64_t input = fn->buffers[b * kBufferFields + 2], slot = fn->buffers[b * kBufferFields + 3];
    int64_t bytes = sized(fn->buffers[b * kBufferFields], fn->buffers[b * kBufferFields + 1], n);
    if (slot >= 0) device[b] = s->slots[slot];
    if (input >= 0 && bytes > 0 && (rc = g.cuMemcpyHtoD_v2(device[b], inputs[input], (size_t)bytes)) != kCudaSuccess)
      return failCall(kCudaError, entry, "cuMemcpyHtoD", rc, "copying the inputs");
  }
  long long kernelBatch = fn->symbolic_batch ? batch : 0;
  CUdeviceptr pointers[kMaxParams];
  void* params[kMaxParams + 1];
  for (int64_t k = 0; k < fn->num_kernels; ++k) {
    const int64_t* kernel = fn->kernels + k * kKernelFields;
    int64_t count = kernel[10];
    if (count > kMaxParams)
      return fail(kCudaError, entry, "kernel %s has more than %d buffers", fn->kernel_names[k], kMaxParams);
    for (int64_t i = 0; i < count; ++i) {
      pointers[i] = device[fn->params[kernel[9] + i]];
      params[i] = &pointers[i];
    }
    params[count] = &kernelBatch;
    unsigned grid[3], block[3];
    gridOf(kernel, batch, grid, block);
    rc = g.cuLaunchKernel(g.functions[f][k], grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, NULL, params,
                          NULL);
    if (rc != kCudaSuccess) return failCall(kCudaError, entry, "cuLaunchKernel", rc, fn->kernel_names[k]);
  }
  for (int64_t i = 0; i < fn->num_statuses; ++i) {
    int64_t status[2];
    if ((rc = g.cuMemcpyDtoH_v2(status, device[fn->statuses[i]], sizeof status)) != kCudaSuccess)
      return failCall(kCudaError, entry, "cuMemcpyDtoH", rc, "reading a run-time check (or a kernel before failed)");
    if (status[0] >= 0)
      return fail(kCheckFailed, entry, "a run-time check failed: element %lld is %lld (nothing was changed)",
                  (long long)status[0], (long long)status[1]);
  }
  for (int64_t o = 0; o < fn->num_outputs; ++o) {
    int64_t b = fn->outputs[o];
    int64_t bytes = sized(fn->buffers[b * kBufferFields], fn->buffers[b * kBufferFields + 1], n);
    if (outputs[o] && bytes > 0 && (rc = g.cuMemcpyDtoH_v2(outputs[o], device[b], (size_t)bytes)) != kCudaSuccess)
      return failCall(kCudaError, entry, "cuMemcpyDtoH", rc, "copying the outputs (or a kernel before failed)");
  }
  /* The new values become current: the buffer written takes the slot's place, and the slot's
   * old buffer (the same size: a slot's shape has no batch) is the next run's to write. */
  for (int64_t u = 0; u < fn->num_updates; ++u) {
    int64_t slot = fn->updates[2 * u], b = fn->updates[2 * u + 1];
    CUdeviceptr old = s->slots[slot];
    s->slots[slot] = device[b];
    device[b] = old;
  }
  return 0;
}

/* <name>_step and a training module's <name>_forward, after their argument checks (null
 * pointers, batch): function `f` of the plan on state `s`. */
int kilnc_cuda_run(struct kilnc_cuda_state* s, int64_t f, const void* const* inputs, int64_t batch,
                   void* const* outputs) {
  clearError();
  return run(s, f, inputs, batch, outputs);
}

/* <name>_get_param (`to_host`) and _set_param: slot `slot` <-> `data`. */
int kilnc_cuda_copy_slot(struct kilnc_cuda_state* s, int64_t slot, void* data, int to_host) {
  const char* entry = to_host ? "_get_param" : "_set_param";
  clearError();
  int code = prepare(entry);
  if (code) return code;
  size_t bytes = (size_t)kilnc_cuda_plan.slot_bytes[slot];
  if (bytes == 0) return 0;
  CUresult rc = to_host ? g.cuMemcpyDtoH_v2(data, s->slots[slot], bytes) : g.cuMemcpyHtoD_v2(s->slots[slot], data, bytes);
  return rc == kCudaSuccess ? 0 : failCall(kCudaError, entry, to_host ? "cuMemcpyDtoH" : "cuMemcpyHtoD", rc, "the parameter");
}

/* An inference model's <name>_forward, after its argument checks: function 0 on the one state,
 * created at the first call (with the weights), calls serialized. */
int kilnc_cuda_forward(const void* const* inputs, int64_t batch, void* const* outputs) {
  clearError();
  pthread_mutex_lock(&g.inference_mutex);
  int code = 0;
  if (!g.inference) g.inference = create(kilnc_cuda_plan.functions[0].entry, &code);
  if (!code) code = run(g.inference, 0, inputs, batch, outputs);
  pthread_mutex_unlock(&g.inference_mutex);
  return code;
}

/* <name>_last_error: the message of this thread's last failed call ("" after a successful one). */
const char* kilnc_cuda_last_error(void) {
  const char* e = errorBuffer(0);
  return e ? e : "";
}
