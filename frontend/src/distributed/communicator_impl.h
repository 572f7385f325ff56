// The transport behind kiln::distributed::Communicator: nonblocking collectives on raw
// buffers (MPI, or the identity for a single process), waited for against a deadline.
#pragma once
#include <cstddef>
#include <cstdint>
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
  // Waits until one started operation completes and returns its index; npos when none is
  // pending. Past the deadline (KILN_MN_TIMEOUT seconds from the call) it prints
  // "kiln::distributed: rank R: <what> did not complete within T s ..." and aborts the job.
  virtual size_t wait_any(const std::string& what) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Lets started operations advance without waiting (MPI progresses nonblocking collectives
  // only inside MPI calls when it has no progress thread); never blocks.
  virtual void progress() {}

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

}  // namespace kiln::distributed::detail
