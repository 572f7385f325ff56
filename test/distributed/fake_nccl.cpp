// A fake libnccl.so.2 for the NCCL communicators' tests without a GPU (KILN_NCCL_LIBRARY names
// it): the entry points kiln calls (frontend/src/distributed/nccl_abi.h), implemented over MPI on
// host memory (the fake CUDA driver's device buffers, test/fake-gpu/fake_gpu.h, are host memory).
// Like NCCL's, its collectives only start when called (MPI_Iallreduce, MPI_Ibcast): they are
// the fake stream's pending work, done once kiln_fake_nccl_stream_work reports them complete,
// which the test's fake driver asks from cuStreamQuery / cuStreamSynchronize. It checks what
// NCCL would reject (a null stream, a rank or size that is not the job's, ranks given
// different unique ids) and counts its calls (kiln_fake_nccl_counts); with a clock set
// (kiln_fake_nccl_set_clock: the test's fake GPU's kernels run so far), it reads the clock at each
// ncclAllReduce (kiln_fake_nccl_allreduce_clocks). No ncclAvg (kiln sums).
// ncclCommInitRankConfig with config->blocking = 0 returns ncclInProgress and the
// communicator's setup (rank 0's id broadcast, the ids compared, MPI_Comm_idup) advances at
// each ncclCommGetAsyncError, as NCCL's; KILN_FAKE_NCCL_STUCK_INIT=<rank> makes that rank's
// setup never start, so that the others' never completes either.
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../frontend/src/distributed/nccl_abi.h"

// A communicator, set up in steps (stage) by advance().
struct ncclComm {
  MPI_Comm comm = MPI_COMM_NULL;
  enum { stuck, bcast_id, compare_ids, dup, ready } stage = bcast_id;
  ncclResult_t result = ncclInProgress;  // once stage is ready
  MPI_Request request = MPI_REQUEST_NULL;
  ncclUniqueId id{}, root{};
  int differs = 0, any = 0;
};

namespace {

long allreduces = 0, broadcasts = 0, inits = 0;
std::vector<MPI_Request> pending;  // the collectives started and not known to be complete
long (*clock)() = nullptr;
std::vector<long> allreduce_clocks;  // clock() at each ncclAllReduce since the clock was set

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

// Advances `c`'s setup by what has completed; ncclInProgress until it is done.
ncclResult_t advance(ncclComm* c) {
  int done = 1;
  while (c->stage != ncclComm::ready && c->stage != ncclComm::stuck) {
    if (c->request != MPI_REQUEST_NULL) MPI_Test(&c->request, &done, MPI_STATUS_IGNORE);
    if (!done) break;
    if (c->stage == ncclComm::bcast_id) {  // every rank must have rank 0's id (what kiln broadcast)
      c->differs = std::memcmp(&c->root, &c->id, sizeof c->root) != 0 || c->id.internal[0] == 0;
      MPI_Iallreduce(&c->differs, &c->any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &c->request);
      c->stage = ncclComm::compare_ids;
    } else if (c->stage == ncclComm::compare_ids) {
      if (c->any) {
        c->result = ncclInvalidArgument, c->stage = ncclComm::ready;
      } else {
        MPI_Comm_idup(MPI_COMM_WORLD, &c->comm, &c->request);
        c->stage = ncclComm::dup;
      }
    } else {
      c->result = ncclSuccess, c->stage = ncclComm::ready;
      ++inits;
    }
  }
  return c->stage == ncclComm::ready ? c->result : ncclInProgress;
}

// Whether `c` is set up (collectives on it are valid).
bool usable(const ncclComm* c) { return c && c->stage == ncclComm::ready && c->result == ncclSuccess; }

}  // namespace

extern "C" {

// For the fake driver's stream: whether every collective started is complete (progressing
// them; with `wait`, waiting for them).
int kiln_fake_nccl_stream_work(int wait) {
  if (pending.empty()) return 1;
  int done = 1;
  if (wait)
    MPI_Waitall(static_cast<int>(pending.size()), pending.data(), MPI_STATUSES_IGNORE);
  else
    MPI_Testall(static_cast<int>(pending.size()), pending.data(), &done, MPI_STATUSES_IGNORE);
  if (done) pending.clear();
  return done;
}

// For the tests: how many ncclAllReduce, ncclBroadcast and ncclCommInitRank calls were made.
void kiln_fake_nccl_counts(long* allreduce_calls, long* broadcast_calls, long* init_calls) {
  *allreduce_calls = allreduces;
  *broadcast_calls = broadcasts;
  *init_calls = inits;
}

// For the tests: `tick` is read at each ncclAllReduce from now on (null: no more).
void kiln_fake_nccl_set_clock(long (*tick)()) {
  clock = tick;
  allreduce_clocks.clear();
}

// For the tests: the clock read at each ncclAllReduce since it was set, the first `max` of them
// copied to `out`; returns how many there are.
long kiln_fake_nccl_allreduce_clocks(long* out, long max) {
  const long n = static_cast<long>(allreduce_clocks.size());
  for (long i = 0; i < n && i < max; ++i) out[i] = allreduce_clocks[static_cast<size_t>(i)];
  return n;
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

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank,
                                    ncclConfig_t* config) {
  if (!mpi_ready()) return ncclSystemError;
  if (config && (config->magic != 0xcafebeefu || config->size < sizeof(ncclConfig_t))) return ncclInvalidArgument;
  int world_rank = 0, world_size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  if (nranks != world_size || rank != world_rank) return ncclInvalidArgument;
  auto* c = new ncclComm;
  *comm = c;
  c->id = c->root = comm_id;
  const char* stuck = std::getenv("KILN_FAKE_NCCL_STUCK_INIT");
  if (stuck && std::atoi(stuck) == rank)
    c->stage = ncclComm::stuck;
  else
    MPI_Ibcast(&c->root, sizeof c->root, MPI_BYTE, 0, MPI_COMM_WORLD, &c->request);
  if (config && config->blocking == 0) return advance(c);
  ncclResult_t rc;
  while ((rc = advance(c)) == ncclInProgress) {
  }
  return rc;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId comm_id, int rank) {
  return ncclCommInitRankConfig(comm, nranks, comm_id, rank, nullptr);
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  if (mpi_ready() && comm->comm != MPI_COMM_NULL) MPI_Comm_free(&comm->comm);
  delete comm;  // (a setup still in progress is abandoned: the job is being aborted)
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (!comm) return ncclInvalidArgument;
  *async_error = advance(comm);
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
  if (!usable(comm) || !stream || !recvbuff || !mpi_type(datatype, &type, &size) || count > 0x7fffffff || op == ncclAvg)
    return ncclInvalidArgument;
  MPI_Op mpi_op = op == ncclMax ? MPI_MAX : op == ncclMin ? MPI_MIN : op == ncclProd ? MPI_PROD : MPI_SUM;
  pending.push_back(MPI_REQUEST_NULL);
  MPI_Iallreduce(sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff, recvbuff, static_cast<int>(count), type, mpi_op,
                 comm->comm, &pending.back());
  ++allreduces;
  if (clock) allreduce_clocks.push_back(clock());
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, CUstream_st* stream) {
  MPI_Datatype type;
  size_t size = 0;
  if (!usable(comm) || !stream || !recvbuff || !mpi_type(datatype, &type, &size) || count > 0x7fffffff)
    return ncclInvalidArgument;
  int rank = 0;
  MPI_Comm_rank(comm->comm, &rank);
  if (rank == root && sendbuff != recvbuff) std::memcpy(recvbuff, sendbuff, count * size);
  pending.push_back(MPI_REQUEST_NULL);
  MPI_Ibcast(recvbuff, static_cast<int>(count), type, root, comm->comm, &pending.back());
  ++broadcasts;
  return ncclSuccess;
}

}  // extern "C"
