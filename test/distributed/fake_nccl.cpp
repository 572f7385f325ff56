// A fake libnccl.so.2 for the NCCL communicators' tests without a GPU (KILN_NCCL_LIBRARY names
// it): the entry points kiln calls (frontend/src/distributed/nccl_abi.h), implemented over MPI on
// host memory. The fake CUDA driver's device buffers (test/fake-gpu/fake_gpu.h) are host memory
// and its stream runs each call when it is made, so every collective here is done when it
// returns. It checks what NCCL would reject (a null stream, a rank or size that is not the
// job's, ranks given different unique ids) and counts its calls (kiln_fake_nccl_counts).
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "../../frontend/src/distributed/nccl_abi.h"

struct ncclComm {
  MPI_Comm comm;
};

namespace {

long allreduces = 0, broadcasts = 0, inits = 0;

bool mpi_type(ncclDataType_t t, MPI_Datatype* out, size_t* size) {
  switch (t) {
    case ncclInt8: return *out = MPI_INT8_T, *size = 1, true;
    case ncclUint8: return *out = MPI_UINT8_T, *size = 1, true;
    case ncclInt32: return *out = MPI_INT32_T, *size = 4, true;
    case ncclUint32: return *out = MPI_UINT32_T, *size = 4, true;
    case ncclInt64: return *out = MPI_INT64_T, *size = 8, true;
    case ncclUint64: return *out = MPI_UINT64_T, *size = 8, true;
    case ncclFloat32: return *out = MPI_FLOAT, *size = 4, true;
    case ncclFloat64: return *out = MPI_DOUBLE, *size = 8, true;
    default: return false;
  }
}

bool mpi_ready() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

}  // namespace

extern "C" {

// For the tests: how many ncclAllReduce, ncclBroadcast and ncclCommInitRank calls were made.
void kiln_fake_nccl_counts(long* allreduce_calls, long* broadcast_calls, long* init_calls) {
  *allreduce_calls = allreduces;
  *broadcast_calls = broadcasts;
  *init_calls = inits;
}

ncclResult_t ncclGetVersion(int* version) {
  *version = 22809;
  return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* unique_id) {
  static int serial = 0;
  std::memset(unique_id, 0, sizeof *unique_id);
  std::snprintf(unique_id->internal, sizeof unique_id->internal, "kiln-fake-nccl %ld %d", static_cast<long>(getpid()),
                ++serial);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank) {
  if (!mpi_ready()) return ncclSystemError;
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (nranks != world_size || rank != world_rank) return ncclInvalidArgument;
  // Every rank must have rank 0's id (what kiln broadcast).
  ncclUniqueId root = comm_id;
  MPI_Bcast(&root, sizeof root, MPI_BYTE, 0, MPI_COMM_WORLD);
  int differs = std::memcmp(&root, &comm_id, sizeof root) != 0 || comm_id.internal[0] == 0, any = 0;
  MPI_Allreduce(&differs, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any) return ncclInvalidArgument;
  *comm = new ncclComm;
  MPI_Comm_dup(MPI_COMM_WORLD, &(*comm)->comm);
  ++inits;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  if (mpi_ready()) MPI_Comm_free(&comm->comm);
  delete comm;
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm) return ncclInvalidArgument;
  *async_error = ncclSuccess;
  return ncclSuccess;
}

const char* ncclGetErrorString(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclSystemError: return "unhandled system error (fake libnccl: MPI is not initialized)";
    case ncclInvalidArgument: return "invalid argument (fake libnccl)";
    default: return "error (fake libnccl)";
  }
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, CUstream_st* stream) {
  MPI_Datatype type;
  size_t size = 0;
  if (!comm || !stream || !recvbuff || !mpi_type(datatype, &type, &size) || count > 0x7fffffff)
    return ncclInvalidArgument;
  MPI_Op mpi_op = op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : op == ncclProd ? MPI_PROD : MPI_SUM;
  MPI_Allreduce(sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff, recvbuff, static_cast<int>(count), type, mpi_op,
                comm->comm);
  if (op == ncclAvg) {
    int n = 1;
    MPI_Comm_size(comm->comm, &n);
    if (datatype == ncclFloat32)
      for (size_t i = 0; i < count; ++i) static_cast<float*>(recvbuff)[i] /= static_cast<float>(n);
    else if (datatype == ncclFloat64)
      for (size_t i = 0; i < count; ++i) static_cast<double*>(recvbuff)[i] /= n;
    else
      return ncclInvalidArgument;
  }
  ++allreduces;
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, CUstream_st* stream) {
  MPI_Datatype type;
  size_t size = 0;
  if (!comm || !stream || !recvbuff || !mpi_type(datatype, &type, &size) || count > 0x7fffffff)
    return ncclInvalidArgument;
  int rank = 0;
  MPI_Comm_rank(comm->comm, &rank);
  if (rank == root && sendbuff != recvbuff) std::memcpy(recvbuff, sendbuff, count * size);
  MPI_Bcast(recvbuff, static_cast<int>(count), type, root, comm->comm);
  ++broadcasts;
  return ncclSuccess;
}

}  // extern "C"
