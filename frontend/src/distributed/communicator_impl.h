// The transport behind kiln::distributed::Communicator: nonblocking collectives on raw
// buffers (MPI, NCCL, or the identity for a single process), waited for against a deadline.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/dtype.h"

namespace kiln::distributed::detail {

enum class ReduceOp { sum, max };

class CommunicatorImpl {
 public:
  static constexpr size_t npos = static_cast<size_t>(-1);
  virtual ~CommunicatorImpl() = default;

  // Start an operation in place on `buffer` and return its index (0, 1, ... among the
  // operations pending since the last time none was). The buffer must stay alive and
  // untouched until wait_any returns that index.
  virtual size_t start_allreduce(void* buffer, int64_t count, DType dtype, ReduceOp op) = 0;
  virtual size_t start_bcast(void* buffer, size_t bytes, int root) = 0;
  // The same on a buffer in the memory of CUDA GPU `device` (its address, Array::raw_data),
  // ordered on kiln's stream of that device after what is queued there (the NCCL
  // communicators). Transports of host memory throw kiln::Error (device_collectives() false).
  virtual bool device_collectives() const { return false; }
  virtual size_t start_device_allreduce(void* buffer, int64_t count, DType dtype, ReduceOp op, int device);
  virtual size_t start_device_bcast(void* buffer, size_t bytes, int root, int device);
  // Waits until one started operation completes and returns its index; npos when none is
  // pending. Past the deadline (KILN_MN_TIMEOUT seconds from the call) it prints
  // "kiln::distributed: rank R: <what> did not complete within T s ..." and aborts the job.
  virtual size_t wait_any(const std::string& what) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Lets started operations advance without waiting (MPI progresses nonblocking collectives
  // only inside MPI calls when it has no progress thread); never blocks.
  virtual void progress() {}
  // Whether a thread of the transport advances the started operations while the caller does
  // other work (the MPI progress thread), and how many it has seen complete (tests).
  virtual bool background_progress() const { return false; }
  virtual size_t completed_in_background() const { return 0; }
  // Prints "kiln::distributed: rank R: <what> did not complete within T s ..." on stderr and
  // ends every rank (MPI_Abort under MPI; this process alone otherwise).
  [[noreturn]] virtual void abort_job(const std::string& what, double timeout);

  void wait_all(const std::string& what) {
    while (wait_any(what) != npos) {
    }
  }

  int rank = 0, size = 1, intra_rank = 0, intra_size = 1, inter_rank = 0, inter_size = 1;
  std::string name = "single";
  size_t bucket_bytes = 4u << 20;

  // For tests: when set, allreduce_grad appends one event per gradient bucket, in the order
  // they happen: its reduction started from inside the step's compiled graph (right after the
  // bucket was computed), or after the graph returned; and the graph's return itself.
  enum class Event { bucket_started_in_graph, bucket_started_after_graph, graph_returned };
  std::vector<std::pair<Event, size_t>>* events = nullptr;  // (event, bucket; npos for graph_returned)
};

// KILN_MN_TIMEOUT in seconds (default 60; a value that is not a positive number throws).
double collective_timeout_seconds();

// Calls `done` until it returns true, like a blocking MPI call: spinning for 50 ms, then
// yielding the core between polls, after 1 s sleeping 200 us between them; past
// KILN_MN_TIMEOUT seconds it calls c.abort_job(what).
void poll_until(CommunicatorImpl& c, const std::string& what, const std::function<bool()>& done);

// The bucket size of KILN_MN_BUCKET_MB (default 4 MiB).
size_t bucket_bytes_from_env();

// The transports (communicator.cpp, nccl.cpp). make_mpi: MPI_COMM_WORLD under mpirun (throws
// kiln::Error when kiln was built without MPI). make_single: a process of size 1 named `name`.
// make_nccl: "nccl" or "pure_nccl" (see kiln/distributed.h), over make_mpi() for its
// bootstrap under mpirun, else of size 1 once a GPU and libnccl were found.
std::unique_ptr<CommunicatorImpl> make_mpi();
std::unique_ptr<CommunicatorImpl> make_single(const std::string& name);
std::unique_ptr<CommunicatorImpl> make_nccl(const std::string& name, bool under_mpirun);
// Whether a launcher (mpirun / mpiexec / srun with PMI) started this process.
bool launched_by_mpi();

}  // namespace kiln::distributed::detail
