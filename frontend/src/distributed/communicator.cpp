// kiln::distributed transports: MPI (nonblocking collectives polled against a deadline),
// a single process (the identity), and create_communicator's checks for NCCL.
#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "communicator_impl.h"
#include "kiln/device.h"
#include "kiln/distributed.h"
#include "kiln/env.h"
#include "kiln/error.h"

#ifdef KILN_HAVE_MPI
#include <mpi.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace kiln::distributed {
namespace detail {

double collective_timeout_seconds() {
  return static_cast<double>(env::get_int("KILN_MN_TIMEOUT", 60, 1, 1 << 30, "the default: 60 seconds"));
}

namespace {

size_t bucket_bytes_from_env() {
  return static_cast<size_t>(env::get_int("KILN_MN_BUCKET_MB", 4, 1, 1 << 20, "the default: 4 MiB")) << 20;
}

// A single process: every collective is the identity.
class SingleProcess final : public CommunicatorImpl {
 public:
  SingleProcess() { bucket_bytes = bucket_bytes_from_env(); }
  size_t start_allreduce(void*, int64_t, DType, ReduceOp) override { return pending_++; }
  size_t start_bcast(void*, size_t, int) override { return pending_++; }
  size_t wait_any(const std::string&) override {
    if (done_ == pending_) {
      done_ = pending_ = 0;
      return npos;
    }
    return done_++;
  }
  void barrier(const std::string&) override {}

 private:
  size_t pending_ = 0, done_ = 0;
};

#ifdef KILN_HAVE_MPI

// Whether a launcher (mpirun / mpiexec / srun with PMI) started this process.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

// Open MPI's nonblocking allreduce (libnbc) mallocs a temporary as large as the buffer at
// every call and frees it when done. With glibc's defaults those few MiB come from fresh
// pages each time (mmap, or a heap top that free trims back), and faulting them in cost
// more than the reduction itself (10 MB in 3 buckets: 2-3x a bare MPI_Allreduce). Keep them:
// no mmap below 32 MiB (glibc's largest threshold), no trimming below 256 MiB of free heap.
// Not done when the user tunes malloc (MALLOC_*_ variables, GLIBC_TUNABLES).
void keep_collective_temporaries_in_heap() {
#ifdef __GLIBC__
  for (const char* v : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"})
    if (std::getenv(v)) return;
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t && std::strstr(t, "glibc.malloc.")) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

// MPI_Init once per process (MPI cannot be initialized twice), MPI_Finalize at exit.
void ensure_mpi_initialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw Error("kiln::distributed::create_communicator(\"mpi\"): MPI_Init_thread failed");
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  });
}

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::b8: return MPI_UINT8_T;
  }
  throw Error("kiln::distributed: unknown dtype");
}

int checked_count(int64_t count, const char* what) {
  if (count < 0 || count > INT_MAX)
    throw Error(fmt::format("kiln::distributed: {}: {} elements do not fit one MPI call (at most {})", what,
                            count, INT_MAX));
  return static_cast<int>(count);
}

class Mpi final : public CommunicatorImpl {
 public:
  Mpi() {
    ensure_mpi_initialized();
    keep_collective_temporaries_in_heap();
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank);
    MPI_Comm_size(comm_, &size);
    // Ranks of one machine share memory; the machines are numbered by the ranks that are
    // first on theirs (ChainerMN's intra_rank / inter_rank).
    MPI_Comm intra, inter;
    MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &intra);
    MPI_Comm_rank(intra, &intra_rank);
    MPI_Comm_size(intra, &intra_size);
    MPI_Comm_split(comm_, intra_rank, rank, &inter);
    MPI_Comm_rank(inter, &inter_rank);
    MPI_Comm_size(inter, &inter_size);
    MPI_Comm_free(&intra);
    MPI_Comm_free(&inter);
    name = "mpi";
    bucket_bytes = bucket_bytes_from_env();
  }
  ~Mpi() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  size_t start_allreduce(void* buffer, int64_t count, DType dtype, ReduceOp op) override {
    requests_.push_back(MPI_REQUEST_NULL);
    MPI_Iallreduce(MPI_IN_PLACE, buffer, checked_count(count, "allreduce"), mpi_type(dtype),
                   op == ReduceOp::sum ? MPI_SUM : MPI_MAX, comm_, &requests_.back());
    return requests_.size() - 1;
  }
  size_t start_bcast(void* buffer, size_t bytes, int root) override {
    requests_.push_back(MPI_REQUEST_NULL);
    MPI_Ibcast(buffer, checked_count(static_cast<int64_t>(bytes), "bcast"), MPI_BYTE, root, comm_,
               &requests_.back());
    return requests_.size() - 1;
  }
  size_t wait_any(const std::string& what) override {
    if (requests_.empty()) return npos;
    using clock = std::chrono::steady_clock;
    const double timeout = collective_timeout_seconds();
    const auto start = clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout);
    for (int64_t polls = 0;; ++polls) {
      int index = MPI_UNDEFINED, flag = 0;
      MPI_Testany(static_cast<int>(requests_.size()), requests_.data(), &index, &flag, MPI_STATUS_IGNORE);
      if (flag) {
        if (index == MPI_UNDEFINED) {  // every request completed before
          requests_.clear();
          return npos;
        }
        return static_cast<size_t>(index);
      }
      // Spin for 50 ms like a blocking MPI call (a reduction of a few MB takes about a
      // millisecond; giving the core away costs a time slice on a loaded machine), then yield
      // it (a rank sharing it, e.g. one still compiling its step, runs), then after 1 s poll
      // every 200 us.
      if ((polls & 255) != 0) continue;
      auto waited = clock::now() - start;
      if (waited < std::chrono::milliseconds(50)) continue;
      if (clock::now() > deadline) abort_job(what, timeout);
      if (waited > std::chrono::seconds(1))
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      else
        std::this_thread::yield();
    }
  }
  void progress() override {
    if (requests_.empty()) return;
    int flag = 0;  // any MPI call runs Open MPI's progress engine; this one completes nothing
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm_, &flag, MPI_STATUS_IGNORE);
  }
  void barrier(const std::string& what) override {
    requests_.push_back(MPI_REQUEST_NULL);
    MPI_Ibarrier(comm_, &requests_.back());
    wait_all(what);
  }

 private:
  [[noreturn]] void abort_job(const std::string& what, double timeout) {
    std::fprintf(stderr,
                 "kiln::distributed: rank %d: %s did not complete within %g s (KILN_MN_TIMEOUT): another rank "
                 "died, is stuck, or called a different collective; aborting every rank\n",
                 rank, what.c_str(), timeout);
    std::fflush(stderr);
    MPI_Abort(comm_, 124);
    std::_Exit(124);
  }
  MPI_Comm comm_ = MPI_COMM_NULL;
  std::vector<MPI_Request> requests_;
};

#endif  // KILN_HAVE_MPI

// "nccl" / "pure_nccl": what stops them on this machine.
[[noreturn]] void refuse_nccl(const std::string& name) {
  const std::string fn = fmt::format("kiln::distributed::create_communicator(\"{}\")", name);
  std::string gpu = cuda_driver::emulated() ? "KILN_CUDA_EMULATE=1 (the SIMT emulator is no GPU)"
                                            : cuda_driver::unavailable_reason();
  if (!gpu.empty()) throw Error(fmt::format("{}: needs a CUDA GPU: {}; use \"mpi\" on CPUs", fn, gpu));
  void* nccl = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
  if (!nccl) {
    const char* why = dlerror();
    throw Error(fmt::format("{}: libnccl.so.2 cannot be loaded ({}): install NCCL (libnccl2) or use \"mpi\"", fn,
                            why ? why : "not found"));
  }
  dlclose(nccl);
  throw Error(fmt::format(
      "{}: GPU and NCCL found, but kiln has no NCCL communicator yet (issue 16: its allreduce runs over MPI "
      "only); use \"mpi\"",
      fn));
}

}  // namespace
}  // namespace detail

Communicator create_communicator(const std::string& communicator_name) {
  if (communicator_name == "nccl" || communicator_name == "pure_nccl") detail::refuse_nccl(communicator_name);
  if (communicator_name != "mpi")
    throw Error(fmt::format("kiln::distributed::create_communicator: communicator_name: expected \"mpi\", "
                            "\"nccl\" or \"pure_nccl\", got \"{}\"", communicator_name));
#ifdef KILN_HAVE_MPI
  if (!detail::launched_by_mpi()) return Communicator(std::make_shared<detail::SingleProcess>());
  return Communicator(std::make_shared<detail::Mpi>());
#else
  throw Error("kiln::distributed::create_communicator(\"mpi\"): kiln was built without MPI (CMake found no "
              "MPI C library; install libopenmpi-dev and reconfigure)");
#endif
}

}  // namespace kiln::distributed
