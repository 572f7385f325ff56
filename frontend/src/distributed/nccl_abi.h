// The part of NCCL's C API that kiln calls (the declarations of nccl.h, NCCL 2.x, whose ABI is
// stable): kiln loads libnccl.so.2 with dlopen at run time and needs no NCCL headers to build.
// Declared only, never called by name: kiln calls the entry points dlsym resolves
// (KILN_NCCL_ENTRY_POINTS); test/distributed/fake_nccl.cpp defines them.
#pragma once
#include <cstddef>

struct CUstream_st;

extern "C" {

typedef struct ncclComm* ncclComm_t;
#define KILN_NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[KILN_NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7
} ncclResult_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;
typedef enum {
  ncclInt8 = 0,
  ncclUint8 = 1,
  ncclInt32 = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6,
  ncclFloat32 = 7,
  ncclFloat64 = 8
} ncclDataType_t;

ncclResult_t ncclGetVersion(int* version);
ncclResult_t ncclGetUniqueId(ncclUniqueId* unique_id);
// ncclConfig_t's first fields, as NCCL 2.14 declared them (ncclConfig_v21400; later versions
// append fields and read only the `size` bytes given, taking the defaults of the rest).
// kiln_nccl_config() is NCCL_CONFIG_INITIALIZER for that layout.
typedef struct {
  size_t size;
  unsigned int magic;    // 0xcafebeef
  unsigned int version;  // NCCL_VERSION(2, 14, 0)
  int blocking;          // 0: ncclCommInitRankConfig returns ncclInProgress, ncclCommGetAsyncError polls
} ncclConfig_t;
#define KILN_NCCL_CONFIG_UNDEF_INT (-2147483647 - 1)  // NCCL_CONFIG_UNDEF_INT: INT_MIN

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank);
ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank,
                                    ncclConfig_t* config);
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm);
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error);
const char* ncclGetErrorString(ncclResult_t result);
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, CUstream_st* stream);
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, CUstream_st* stream);

}  // extern "C"

// NCCL_CONFIG_INITIALIZER for kiln's ncclConfig_t.
inline ncclConfig_t kiln_nccl_config() {
  return {sizeof(ncclConfig_t), 0xcafebeefu, 21400u, KILN_NCCL_CONFIG_UNDEF_INT};
}

#define KILN_NCCL_ENTRY_POINTS(X)                                                                    \
  X(ncclGetVersion) X(ncclGetUniqueId) X(ncclCommInitRankConfig) X(ncclCommDestroy) X(ncclCommAbort)  \
  X(ncclCommGetAsyncError) X(ncclGetErrorString) X(ncclAllReduce) X(ncclBroadcast)
