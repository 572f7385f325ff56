// kiln::distributed's NCCL transport ("nccl", "pure_nccl"; kiln/distributed.h), as ChainerMN's:
// libnccl.so.2 loaded with dlopen (KILN_NCCL_LIBRARY names another), bootstrapped over MPI
// (rank 0's ncclGetUniqueId broadcast, a nonblocking ncclCommInitRankConfig on GPU intra_rank()
// polled against KILN_MN_TIMEOUT, so that a rank that never joins ends the job), collectives
// enqueued on a stream of the communicator's own that first waits for an event recorded on
// kiln's stream of that GPU (so after the kernels that computed their buffers, and beside the
// kernels queued after them: a gradient bucket's reduction runs while the step's graph goes on
// with the backward), and waited for by polling that stream against KILN_MN_TIMEOUT before
// anything reads them.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "communicator_impl.h"
#include "kiln/array.h"
#include "kiln/device.h"
#include "kiln/dl_library.h"
#include "kiln/error.h"
#include "nccl_abi.h"
#if KILN_HAVE_CUDA_DRIVER_API
#include "kiln/cuda_driver.h"
#endif

namespace kiln::distributed::detail {
namespace {

std::string function_name(const std::string& name) {
  return fmt::format("kiln::distributed::create_communicator(\"{}\")", name);
}

#if KILN_HAVE_CUDA_DRIVER_API

struct NcclTable {
#define KILN_NCCL_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_NCCL_ENTRY_POINTS(KILN_NCCL_MEMBER)
#undef KILN_NCCL_MEMBER
};

// libnccl's entry points, or why they cannot be had ("" when they can). Loaded at each
// create_communicator (dlopen of a loaded library is a reference count; never closed: NCCL
// keeps threads of its own).
struct LoadedNccl {
  NcclTable table;
  std::string reason;
};

LoadedNccl load_nccl() {
  LoadedNccl r;
  dl::Opened lib = dl::open_first(dl::candidates(
      "KILN_NCCL_LIBRARY",
      {"libnccl.so.2", "/usr/local/cuda/lib64/libnccl.so.2", "/usr/local/cuda/lib/libnccl.so.2"}));
  if (!lib.handle) {
    r.reason = "libnccl.so.2 cannot be loaded (" + lib.tried +
               "): install NCCL (the CUDA toolkit's, or Debian's libnccl2) or name it with KILN_NCCL_LIBRARY";
    return r;
  }
  if (std::string missing = KILN_DL_RESOLVE_TABLE(lib.handle, r.table, KILN_NCCL_ENTRY_POINTS); !missing.empty())
    r.reason = "the loaded libnccl lacks " + missing + " (kiln calls the API of NCCL 2.14 or later)";
  return r;
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::b8: return ncclUint8;
  }
  throw Error("kiln::distributed: NCCL: unknown dtype");
}

// A rank's NCCL communicator over the ranks of MPI_COMM_WORLD, on GPU intra_rank(). "nccl":
// the collectives on GPU memory (allreduce_grad, bcast_data) in NCCL, those on host memory
// (small objects, the model checks) over MPI. "pure_nccl": every collective in NCCL, host
// buffers staged through GPU memory.
class Nccl final : public CommunicatorImpl {
 public:
  Nccl(const std::string& communicator_name, std::unique_ptr<CommunicatorImpl> mpi, const NcclTable& table)
      : mpi_(std::move(mpi)), t_(table), pure_(communicator_name == "pure_nccl") {
    const std::string fn = function_name(communicator_name);
    rank = mpi_->rank, size = mpi_->size, intra_rank = mpi_->intra_rank, intra_size = mpi_->intra_size;
    inter_rank = mpi_->inter_rank, inter_size = mpi_->inter_size;
    name = communicator_name;
    bucket_bytes = mpi_->bucket_bytes;
    device_ = intra_rank;
    // Every rank learns whether each has its GPU before any enters ncclCommInitRank (which
    // waits for all of them).
    const int gpus = cuda_driver::device_count();
    int64_t missing = device_ < gpus ? 0 : 1;
    mpi_->start_allreduce(&missing, 1, DType::i64, ReduceOp::max);
    mpi_->wait_all(fn + " (checking that every rank has its GPU)");
    if (device_ >= gpus)
      throw Error(fmt::format("{}: rank {} drives GPU intra_rank() = {} of its machine, which has {} GPU(s): start "
                              "at most as many ranks per machine as it has GPUs",
                              fn, rank, device_, gpus));
    if (missing) throw Error(fn + ": another rank has no GPU of its own (see its error)");
    struct {
      int32_t rc;
      ncclUniqueId id;
    } boot{};
    if (rank == 0) boot.rc = t_.ncclGetUniqueId(&boot.id);
    mpi_->start_bcast(&boot, sizeof boot, 0);
    mpi_->wait_all(fn + " (broadcasting rank 0's ncclUniqueId)");
    if (boot.rc != ncclSuccess) check(static_cast<ncclResult_t>(boot.rc), "ncclGetUniqueId (on rank 0)", fn);
    cuda_driver::make_current(device_);
    // Nonblocking: a rank that never joins (dead, stuck, unreachable) would keep a blocking
    // ncclCommInitRank waiting forever; this one is polled until the deadline, then aborts.
    ncclConfig_t config = kiln_nccl_config();
    config.blocking = 0;
    ncclResult_t rc = t_.ncclCommInitRankConfig(&comm_, size, boot.id, rank, &config);
    rc = settle(rc, fmt::format("{} (ncclCommInitRankConfig of rank {} on GPU {})", fn, rank, device_));
    if (rc != ncclSuccess) {
      if (comm_) t_.ncclCommAbort(comm_);
      comm_ = nullptr;
      check(rc, "ncclCommInitRankConfig", fn);
    }
  }
  ~Nccl() override {
    if (comm_) t_.ncclCommDestroy(comm_);
    if (!nccl_stream_) return;
    try {  // the driver may be gone (a test's fake replaced); nothing to report from a destructor
      const cuda_driver::DriverTable& d = cuda_driver::driver();
      d.cuEventDestroy_v2(queued_);
      d.cuStreamDestroy_v2(nccl_stream_);
    } catch (const Error&) {
    }
  }

  size_t start_allreduce(void* buffer, int64_t count, DType dtype, ReduceOp op) override {
    if (!pure_) return add_mpi(mpi_->start_allreduce(buffer, count, dtype, op));
    return start_device_allreduce(stage(buffer, static_cast<size_t>(count) * dtype_size(dtype)), count, dtype, op,
                                  device_);
  }
  size_t start_bcast(void* buffer, size_t bytes, int root) override {
    if (!pure_) return add_mpi(mpi_->start_bcast(buffer, bytes, root));
    return start_device_bcast(stage(buffer, bytes), bytes, root, device_);
  }
  bool device_collectives() const override { return true; }
  size_t start_device_allreduce(void* buffer, int64_t count, DType dtype, ReduceOp op, int device) override {
    CUstream s = stream_after_kiln_stream(device, "allreduce");
    const std::string what =
        fmt::format("kiln::distributed: allreduce of {} {} on @cuda:{}", count, dtype_name(dtype), device);
    check(settle(t_.ncclAllReduce(buffer, buffer, static_cast<size_t>(count), nccl_type(dtype),
                                  op == ReduceOp::sum ? ncclSum : ncclMax, comm_, s),
                 what),
          "ncclAllReduce", what);
    return add_device();
  }
  size_t start_device_bcast(void* buffer, size_t bytes, int root, int device) override {
    CUstream s = stream_after_kiln_stream(device, "bcast");
    const std::string what =
        fmt::format("kiln::distributed: broadcast of {} bytes from rank {} on @cuda:{}", bytes, root, device);
    check(settle(t_.ncclBroadcast(buffer, buffer, bytes, ncclUint8, root, comm_, s), what), "ncclBroadcast", what);
    return add_device();
  }

  size_t wait_any(const std::string& what) override {
    if (mpi_pending_ > 0) {
      const size_t op = mpi_ops_.at(mpi_->wait_any(what));
      if (--mpi_pending_ == 0) {
        mpi_->wait_any(what);  // npos: MPI's list of operations starts again
        mpi_ops_.clear();
      }
      return op;
    }
    if (next_device_ < device_ops_.size()) {
      if (!device_done_) finish_device_work(what);
      return device_ops_[next_device_++];
    }
    started_ = 0;
    device_ops_.clear();
    next_device_ = 0;
    return npos;
  }
  void progress() override { mpi_->progress(); }
  bool background_progress() const override { return mpi_->background_progress(); }
  size_t completed_in_background() const override { return mpi_->completed_in_background(); }
  void barrier(const std::string& what) override {
    wait_all(what);
    if (!pure_) return mpi_->barrier(what);
    int32_t token = 0;
    start_allreduce(&token, 1, DType::i32, ReduceOp::sum);
    wait_all(what);
  }
  [[noreturn]] void abort_job(const std::string& what, double timeout) override {
    if (comm_) t_.ncclCommAbort(comm_);  // stops this rank's NCCL kernels
    comm_ = nullptr;
    mpi_->abort_job(what, timeout);
    std::_Exit(124);  // (not reached: a virtual call is not known not to return)
  }

 private:
  void check(ncclResult_t rc, const char* call, const std::string& what) const {
    if (rc == ncclSuccess) return;
    const char* text = t_.ncclGetErrorString(rc);
    throw Error(fmt::format("{}: {} failed: {} (ncclResult_t {})", what, call, text ? text : "(no message)",
                            static_cast<int>(rc)));
  }
  // The result of a call on the nonblocking communicator: ncclInProgress polls
  // ncclCommGetAsyncError until NCCL has done the call's host part (against the deadline:
  // past it the job is aborted as by poll_until).
  ncclResult_t settle(ncclResult_t rc, const std::string& what) {
    if (rc != ncclInProgress) return rc;
    poll_until(*this, what, [&] {
      if (ncclResult_t q = t_.ncclCommGetAsyncError(comm_, &rc); q != ncclSuccess) rc = q;
      return rc != ncclInProgress;
    });
    return rc;
  }
  // The communicator's stream on this rank's GPU (made on first use), after an event of
  // kiln's stream there: what it runs next starts once the work queued on kiln's stream so far
  // is done, and runs beside what is queued there later. A buffer of another GPU throws.
  CUstream stream_after_kiln_stream(int device, const char* op) {
    if (device != device_)
      throw Error(fmt::format("kiln::distributed: {} on @cuda:{}: the \"{}\" communicator of rank {} runs on "
                              "@cuda:{} (its intra_rank()); move the model there (Link::to_device)",
                              op, device, name, rank, device_));
    const cuda_driver::DriverTable& d = cuda_driver::driver();
    CUstream kiln_stream = cuda_driver::stream(device_);  // its context current
    const std::string what = fmt::format("kiln::distributed: the NCCL stream on @cuda:{}", device_);
    if (!nccl_stream_) {
      cuda_driver::check(d.cuStreamCreate(&nccl_stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate", what);
      if (CUresult rc = d.cuEventCreate(&queued_, CU_EVENT_DISABLE_TIMING); rc != CUDA_SUCCESS) {
        d.cuStreamDestroy_v2(nccl_stream_);
        nccl_stream_ = nullptr;
        cuda_driver::check(rc, "cuEventCreate", what);
      }
    }
    cuda_driver::check(d.cuEventRecord(queued_, kiln_stream), "cuEventRecord", what);
    cuda_driver::check(d.cuStreamWaitEvent(nccl_stream_, queued_, 0), "cuStreamWaitEvent", what);
    return nccl_stream_;
  }
  size_t add_mpi(size_t mpi_index) {
    if (mpi_ops_.size() <= mpi_index) mpi_ops_.resize(mpi_index + 1, npos);
    mpi_ops_[mpi_index] = started_;
    ++mpi_pending_;
    return started_++;
  }
  size_t add_device() {
    device_ops_.push_back(started_);
    device_done_ = false;
    return started_++;
  }
  // A copy of host `buffer` in GPU memory, made on the stream (pure_nccl's host
  // collectives); copied back once the stream has done the collective.
  void* stage(void* buffer, size_t bytes) {
    Array copy = Array::empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))}, DType::b8, Device::cuda(device_));
    CUstream s = cuda_driver::stream(device_);
    cuda_driver::check(cuda_driver::driver().cuMemcpyHtoDAsync_v2(reinterpret_cast<CUdeviceptr>(copy.raw_data()),
                                                                  buffer, bytes, s),
                       "cuMemcpyHtoDAsync", "kiln::distributed: staging a host buffer for NCCL");
    staged_.push_back({buffer, copy, bytes});
    return copy.raw_data();
  }
  // Waits (against the deadline) until the NCCL stream has done every collective started, then
  // copies the staged buffers back to the host (on kiln's stream: the collectives are done).
  void finish_device_work(const std::string& what) {
    const cuda_driver::DriverTable& d = cuda_driver::driver();
    CUstream s = cuda_driver::stream(device_);
    CUresult rc = CUDA_SUCCESS;
    ncclResult_t failed = ncclSuccess;
    poll_until(*this, what, [&] {
      rc = d.cuStreamQuery(nccl_stream_ ? nccl_stream_ : s);
      if (rc != CUDA_ERROR_NOT_READY) return true;
      ncclResult_t async = ncclSuccess;  // a peer NCCL lost (network, a dead rank) fails the kernels
      if (t_.ncclCommGetAsyncError(comm_, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
        failed = async;
      return failed != ncclSuccess;
    });
    if (failed != ncclSuccess) {
      t_.ncclCommAbort(comm_);
      comm_ = nullptr;
      check(failed, "an NCCL collective (ncclCommGetAsyncError)", "kiln::distributed: " + what);
    }
    const std::string context = "kiln::distributed: " + what;
    cuda_driver::check(rc, "cuStreamQuery", context);
    for (const Staged& st : staged_)
      cuda_driver::check(
          d.cuMemcpyDtoHAsync_v2(st.host, reinterpret_cast<CUdeviceptr>(st.copy.raw_data()), st.bytes, s),
          "cuMemcpyDtoHAsync", context);
    if (!staged_.empty()) cuda_driver::check(d.cuStreamSynchronize(s), "cuStreamSynchronize", context);
    staged_.clear();
    device_done_ = true;
  }

  struct Staged {
    void* host;
    Array copy;
    size_t bytes;
  };
  std::unique_ptr<CommunicatorImpl> mpi_;
  NcclTable t_;
  bool pure_;
  int device_ = 0;
  ncclComm_t comm_ = nullptr;
  CUstream nccl_stream_ = nullptr;  // the collectives' stream (stream_after_kiln_stream)
  CUevent queued_ = nullptr;        // recorded on kiln's stream before each collective
  size_t started_ = 0;            // operations started since none was pending
  std::vector<size_t> mpi_ops_;   // MPI's index -> ours
  size_t mpi_pending_ = 0;        // MPI operations not yet returned by wait_any
  std::vector<size_t> device_ops_;  // ours, in the order started
  size_t next_device_ = 0;        // the first of device_ops_ not yet returned
  bool device_done_ = false;      // the stream has done every one of device_ops_
  std::vector<Staged> staged_;
};

#endif  // KILN_HAVE_CUDA_DRIVER_API

}  // namespace

std::unique_ptr<CommunicatorImpl> make_nccl(const std::string& name, bool under_mpirun) {
  const std::string fn = function_name(name);
  std::string gpu = cuda_driver::emulated() ? "KILN_CUDA_EMULATE=1 (the SIMT emulator is no GPU)"
                                            : cuda_driver::unavailable_reason();
  if (!gpu.empty()) throw Error(fmt::format("{}: needs a CUDA GPU: {}; use \"mpi\" on CPUs", fn, gpu));
#if KILN_HAVE_CUDA_DRIVER_API
  LoadedNccl lib = load_nccl();
  if (!lib.reason.empty()) throw Error(fmt::format("{}: {}; or use \"mpi\"", fn, lib.reason));
  if (!under_mpirun) return make_single(name);
  return std::make_unique<Nccl>(name, make_mpi(), lib.table);
#else
  (void)under_mpirun;  // unavailable_reason() said so above: no cuda.h, no GPU
  throw Error(fn + ": kiln was built without the CUDA toolkit's cuda.h");
#endif
}

}  // namespace kiln::distributed::detail
