// kiln::distributed transports: MPI (nonblocking collectives polled against a deadline) and
// a single process (the identity); create_communicator (NCCL's transport: nccl.cpp).
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "communicator_impl.h"
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

size_t bucket_bytes_from_env() {
  return static_cast<size_t>(env::get_int("KILN_MN_BUCKET_MB", 4, 1, 1 << 20, "the default: 4 MiB")) << 20;
}

size_t CommunicatorImpl::start_device_allreduce(void*, int64_t, DType, ReduceOp, int device) {
  throw Error(fmt::format("kiln::distributed: the \"{}\" communicator reduces host memory, not memory of @cuda:{}",
                          name, device));
}
size_t CommunicatorImpl::start_device_bcast(void*, size_t, int, int device) {
  throw Error(fmt::format("kiln::distributed: the \"{}\" communicator broadcasts host memory, not memory of @cuda:{}",
                          name, device));
}

void CommunicatorImpl::abort_job(const std::string& what, double timeout) {
  std::fprintf(stderr,
               "kiln::distributed: rank %d: %s did not complete within %g s (KILN_MN_TIMEOUT): another rank "
               "died, is stuck, or called a different collective; aborting every rank\n",
               rank, what.c_str(), timeout);
  std::fflush(stderr);
  std::_Exit(124);
}

void poll_until(CommunicatorImpl& c, const std::string& what, const std::function<bool()>& done) {
  using clock = std::chrono::steady_clock;
  const double timeout = collective_timeout_seconds();
  const auto start = clock::now();
  const auto deadline = start + std::chrono::duration<double>(timeout);
  for (int64_t polls = 0;; ++polls) {
    if (done()) return;
    // Spin for 50 ms like a blocking MPI call (a reduction of a few MB takes about a
    // millisecond; giving the core away costs a time slice on a loaded machine), then yield
    // it (a rank sharing it, e.g. one still compiling its step, runs), then after 1 s poll
    // every 200 us.
    if ((polls & 255) != 0) continue;
    auto waited = clock::now() - start;
    if (waited < std::chrono::milliseconds(50)) continue;
    if (clock::now() > deadline) c.abort_job(what, timeout);
    if (waited > std::chrono::seconds(1))
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    else
      std::this_thread::yield();
  }
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

namespace {

// A single process: every collective is the identity.
class SingleProcess final : public CommunicatorImpl {
 public:
  explicit SingleProcess(const std::string& communicator_name) {
    name = communicator_name;
    bucket_bytes = bucket_bytes_from_env();
  }
  size_t start_allreduce(void*, int64_t, DType, ReduceOp) override { return pending_++; }
  size_t start_bcast(void*, size_t, int) override { return pending_++; }
  bool device_collectives() const override { return true; }
  size_t start_device_allreduce(void*, int64_t, DType, ReduceOp, int) override { return pending_++; }
  size_t start_device_bcast(void*, size_t, int, int) override { return pending_++; }
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

// MPI_Init once per process (MPI cannot be initialized twice), MPI_Finalize at exit. Asks for
// MPI_THREAD_MULTIPLE (the progress thread calls MPI while the main thread does); returns
// the level MPI provides.
int ensure_mpi_initialized() {
  static std::once_flag once;
  static int provided = MPI_THREAD_SINGLE;
  std::call_once(once, [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) {  // by the program: the level it asked for
      MPI_Query_thread(&provided);
      return;
    }
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
      throw Error("kiln::distributed::create_communicator(\"mpi\"): MPI_Init_thread failed");
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  });
  return provided;
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

// MPI_COMM_WORLD's nonblocking collectives. Open MPI advances a started collective only inside
// MPI calls; so that the buckets started from inside the compiled backward advance while it
// computes, a progress thread tests the outstanding requests (MPI_Testsome, sleeping
// kProgressSleep between tests, idle on a condition variable while none is outstanding).
// It needs MPI_THREAD_MULTIPLE (other libraries of the process, libnccl's bootstrap, call MPI
// too); with a lower level, or KILN_MN_PROGRESS=0, there is none. Every MPI call on the
// requests holds mu_; wait_any returns the completions in the order seen.
class Mpi final : public CommunicatorImpl {
 public:
  static constexpr std::chrono::microseconds kProgressSleep{100};

  Mpi() {
    const int level = ensure_mpi_initialized();
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
    if (size > 1 && level >= MPI_THREAD_MULTIPLE && env::get_flag("KILN_MN_PROGRESS", true))
      progress_thread_ = std::thread([this] { progress_loop(); });
  }
  ~Mpi() override {
    if (progress_thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      wake_.notify_one();
      progress_thread_.join();
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }

  size_t start_allreduce(void* buffer, int64_t count, DType dtype, ReduceOp op) override {
    const int n = checked_count(count, "allreduce");
    return start([&](MPI_Request* r) {
      MPI_Iallreduce(MPI_IN_PLACE, buffer, n, mpi_type(dtype), op == ReduceOp::sum ? MPI_SUM : MPI_MAX, comm_, r);
    });
  }
  size_t start_bcast(void* buffer, size_t bytes, int root) override {
    const int n = checked_count(static_cast<int64_t>(bytes), "bcast");
    return start([&](MPI_Request* r) { MPI_Ibcast(buffer, n, MPI_BYTE, root, comm_, r); });
  }
  size_t wait_any(const std::string& what) override {
    size_t index = npos;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (requests_.empty()) return npos;
      if (completed_.empty() && outstanding_ == 0) {  // every one returned before
        requests_.clear();
        return npos;
      }
    }
    poll_until(*this, what, [&] {
      std::lock_guard<std::mutex> lock(mu_);
      if (completed_.empty()) test_locked();
      if (completed_.empty()) return false;
      index = completed_.front();
      completed_.pop_front();
      return true;
    });
    return index;
  }
  void progress() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (outstanding_ > 0) test_locked();
  }
  bool background_progress() const override { return progress_thread_.joinable(); }
  size_t completed_in_background() const override { return completed_in_background_.load(); }
  void barrier(const std::string& what) override {
    start([&](MPI_Request* r) { MPI_Ibarrier(comm_, r); });
    wait_all(what);
  }

  [[noreturn]] void abort_job(const std::string& what, double timeout) override {
    std::fprintf(stderr,
                 "kiln::distributed: rank %d: %s did not complete within %g s (KILN_MN_TIMEOUT): another rank "
                 "died, is stuck, or called a different collective; aborting every rank\n",
                 rank, what.c_str(), timeout);
    std::fflush(stderr);
    MPI_Abort(comm_, 124);
    std::_Exit(124);
  }

 private:
  template <typename StartFn>
  size_t start(const StartFn& start_request) {
    std::unique_lock<std::mutex> lock(mu_);
    requests_.push_back(MPI_REQUEST_NULL);
    start_request(&requests_.back());
    ++outstanding_;
    const size_t index = requests_.size() - 1;
    lock.unlock();
    wake_.notify_one();
    return index;
  }
  // Tests the outstanding requests (mu_ held); the completed ones join completed_. Returns
  // how many completed.
  size_t test_locked() {
    int n = 0;
    indices_.resize(requests_.size());
    MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &n, indices_.data(), MPI_STATUSES_IGNORE);
    if (n == MPI_UNDEFINED) n = 0;  // none active
    for (int i = 0; i < n; ++i) completed_.push_back(static_cast<size_t>(indices_[i]));
    outstanding_ -= static_cast<size_t>(n);
    return static_cast<size_t>(n);
  }
  void progress_loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || outstanding_ > 0; });
      if (stop_) return;
      completed_in_background_ += test_locked();
      lock.unlock();
      std::this_thread::sleep_for(kProgressSleep);  // leaves the core to the compute
      lock.lock();
    }
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::mutex mu_;  // requests_, completed_, outstanding_, stop_, and the MPI calls on them
  std::vector<MPI_Request> requests_;
  std::vector<int> indices_;
  std::deque<size_t> completed_;  // completed, not yet returned by wait_any
  size_t outstanding_ = 0;        // started, not yet completed
  bool stop_ = false;
  std::condition_variable wake_;
  std::atomic<size_t> completed_in_background_{0};
  std::thread progress_thread_;
};

#endif  // KILN_HAVE_MPI

}  // namespace

std::unique_ptr<CommunicatorImpl> make_single(const std::string& name) {
  return std::make_unique<SingleProcess>(name);
}

std::unique_ptr<CommunicatorImpl> make_mpi() {
#ifdef KILN_HAVE_MPI
  return std::make_unique<Mpi>();
#else
  throw Error("kiln::distributed::create_communicator: kiln was built without MPI (CMake found no MPI C library; "
              "install libopenmpi-dev and reconfigure)");
#endif
}

}  // namespace detail

Communicator create_communicator(const std::string& communicator_name) {
  const bool under_mpirun = detail::launched_by_mpi();
  if (communicator_name == "nccl" || communicator_name == "pure_nccl")
    return Communicator(detail::make_nccl(communicator_name, under_mpirun));
  if (communicator_name != "mpi")
    throw Error(fmt::format("kiln::distributed::create_communicator: communicator_name: expected \"mpi\", "
                            "\"nccl\" or \"pure_nccl\", got \"{}\"", communicator_name));
#ifdef KILN_HAVE_MPI
  if (!under_mpirun) return Communicator(detail::make_single("single"));
#endif
  return Communicator(detail::make_mpi());
}

}  // namespace kiln::distributed
