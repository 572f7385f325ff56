// kiln::distributed: data-parallel training over MPI and NCCL (ChainerMN's API and names).
//
//   auto comm = distributed::create_communicator("mpi");    // under mpirun: one rank each
//   auto train = distributed::scatter_dataset(all_train, comm, /*shuffle=*/true, /*seed=*/0);
//   optimizers::Adam adam;
//   auto& opt = distributed::create_multi_node_optimizer(adam, comm);  // before add_hook
//   opt.setup(model);
//   trainer.extend(distributed::create_multi_node_evaluator(E::Evaluator(test_iter, model), comm));
//   if (comm.rank() == 0) trainer.extend(E::LogReport());  // one log, as in ChainerMN
//
// Link with kiln::distributed (libkiln_distributed). MPI is optional at build time: a kiln
// built without it throws kiln::Error from create_communicator("mpi") saying so. A program
// not started by mpirun (no OMPI_COMM_WORLD_SIZE / PMI_RANK / PMIX_RANK in its environment)
// is one process of size 1: every collective is the identity, nothing calls MPI.
//
// The step (create_multi_node_optimizer). Optimizer::update runs the multi-node pre hook
// first. It records each gradient bucket (bucket_bytes(), default 4 MiB, parameters in
// reverse registration order, i.e. the order backward produces them, one dtype per bucket)
// as one flat concatenation of its gradients on the pending step, drops the parameters' own
// gradients, and realizes: the step's forward, backward and buckets are one compiled graph
// (the loss and reported values come out of it too), which copies each gradient into its
// bucket buffer (a compiled copy). One MPI_Iallreduce per bucket sums it in place, and
// each parameter's gradient becomes a recorded slice of its reduced bucket times 1 / size():
// the optimizer's update, its own compiled graph (cached like any other), reads the buckets and
// fuses the scaling. No copy of a gradient is made outside compiled code.
//
// Overlap. On the cpu backend (KILN_BACKEND unset or "cpu") each bucket is recorded through
// kiln.collective_start: the compiled graph computes the bucket right after its last
// gradient and calls into the runtime there (-kiln-start-collectives), which starts the
// bucket's MPI_Iallreduce while the graph goes on with the backward of the earlier layers;
// each start also lets the reductions started before progress (an MPI call). On the cuda
// backend (a model on a GPU with "nccl" / "pure_nccl", or KILN_BACKEND=cuda under the SIMT
// emulator with "mpi") the bucket's start is a step of the compiled plan: the step's CUDA
// graph is cut into segments there, and between their launches the bucket's ncclAllReduce is
// enqueued on the communicator's stream after an event of kiln's, so it runs beside the rest
// of the backward. The update waits for them all once the graph has returned. On the
// interpreter, with KILN_MN_OVERLAP=0, or for a bucket whose buffer is not the graph's own
// result (-kiln-check-collective-buffers; the CUDA emitter likewise), the reduction starts
// when the graph has returned. Every rank starts the buckets in bucket order (MPI
// matches collectives by order; a bucket computed early waits for the ones before it). Open MPI has no progress thread: a
// reduction advances only inside MPI calls (the later starts, the final wait).
//
// Failure. Every collective is nonblocking and polled against a deadline of KILN_MN_TIMEOUT
// seconds (default 60): a rank that dies or stops answering makes every other rank print
// "kiln::distributed: rank R: <what> did not complete within T s" on stderr and call
// MPI_Abort, which ends the whole job (Open MPI's mpirun also ends it when a rank exits
// without MPI_Finalize). Ranks whose models differ (parameter names, shapes or dtypes)
// throw kiln::Error on every rank from bcast_data / allreduce_grad, naming the first
// parameter that differs from rank 0's; no rank is left waiting.
//
// Memory. Open MPI's MPI_Iallreduce mallocs a temporary as large as each bucket at every
// call; so that it does not fault in fresh pages each step, create_communicator("mpi")
// under mpirun sets glibc's M_MMAP_THRESHOLD to 32 MiB and M_TRIM_THRESHOLD to 256 MiB
// (process-wide: freed memory up to that stays in the heap), unless the user tunes malloc
// (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, MALLOC_MMAP_MAX_, or
// glibc.malloc tunables in GLIBC_TUNABLES).
//
// GPUs ("nccl", "pure_nccl", as ChainerMN's). Every rank drives GPU intra_rank() of its machine
// (model.to_device(Device::cuda(comm.intra_rank())), its batches likewise). MPI starts the
// processes and bootstraps NCCL: rank 0's ncclGetUniqueId is broadcast over MPI and every rank
// calls ncclCommInitRank on its GPU. libnccl.so.2 is loaded with dlopen at run time (the CUDA
// toolkit's, found through ldconfig or /usr/local/cuda/lib64; KILN_NCCL_LIBRARY names another
// path; kiln needs no NCCL headers or link-time dependency). allreduce_grad buckets the
// gradients as above (the step's graph runs on the cuda backend and writes them into bucket
// buffers on the GPU), then one ncclAllReduce (sum) per bucket runs in place on kiln's stream of
// the GPU, after the kernels that computed it; the update's graph scales by 1 / size() as
// above. bcast_data broadcasts the parameter buckets with ncclBroadcast, on the GPU. The
// reductions start once the step's graph has been queued (not from inside it, as on the cpu
// backend). Waiting polls the stream (cuStreamQuery and ncclCommGetAsyncError) against
// KILN_MN_TIMEOUT: past it, or when NCCL reports an error, ncclCommAbort, then as above.
// "nccl" sends the small host values (allreduce_obj, bcast_obj, barrier, the model checks,
// the evaluator's means) over MPI; "pure_nccl" sends every collective through NCCL, host
// values staged through GPU memory. A model on a GPU with "mpi" throws kiln::Error from
// bcast_data / allreduce_grad (it moves host memory only).
//
// Thread-safety: a Communicator is used from one thread (the one that created it; MPI is
// initialized with MPI_THREAD_FUNNELED). Copies share one MPI communicator.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/datasets.h"
#include "kiln/link.h"
#include "kiln/optimizers.h"
#include "kiln/training.h"

namespace kiln::distributed {

namespace detail {
class CommunicatorImpl;
}

// A handle to a communicator (ChainerMN's CommunicatorBase); copies share it.
class Communicator {
 public:
  explicit Communicator(std::shared_ptr<detail::CommunicatorImpl> impl);

  int rank() const;        // 0 .. size() - 1
  int size() const;        // number of processes
  int intra_rank() const;  // rank among the processes of this machine
  int intra_size() const;
  int inter_rank() const;  // index of this machine (0 .. inter_size() - 1)
  int inter_size() const;  // number of machines
  // "mpi", "nccl", "pure_nccl"; "single" for "mpi" in a process not under mpirun.
  const std::string& name() const;

  // Copies rank 0's parameters (the initialized ones) into every rank's `model`. Throws
  // kiln::Error on every rank when the models differ in parameter names, shapes or dtypes.
  void bcast_data(const Link& model);
  // Replaces every parameter's gradient by its mean over the ranks (ChainerMN's
  // multi_node_mean_grad), bucketed (see the file comment). A parameter without a gradient
  // on some ranks counts as zeros there; one without a gradient on every rank keeps none.
  // Gradients must be f32 or f64. Same model check as bcast_data.
  void allreduce_grad(const Link& model);
  void multi_node_mean_grad(const Link& model) { allreduce_grad(model); }

  // Small values (ChainerMN's allreduce_obj sums, bcast_obj copies root's value).
  double allreduce_obj(double value);
  int64_t allreduce_obj(int64_t value);
  std::vector<double> allreduce_obj(const std::vector<double>& values);  // elementwise
  double bcast_obj(double value, int root = 0);
  int64_t bcast_obj(int64_t value, int root = 0);
  std::vector<double> bcast_obj(const std::vector<double>& values, int root = 0);
  std::string bcast_obj(const std::string& value, int root = 0);
  void barrier();

  // Gradient bucket size in bytes (default 4 MiB, or KILN_MN_BUCKET_MB); >= 1.
  size_t bucket_bytes() const;
  void set_bucket_bytes(size_t bytes);

  detail::CommunicatorImpl& impl() const { return *impl_; }

 private:
  std::shared_ptr<detail::CommunicatorImpl> impl_;
};

// "mpi": MPI_COMM_WORLD (a duplicate of it). "nccl" / "pure_nccl": ChainerMN's GPU
// communicators (see the file comment); they need a CUDA GPU (not the SIMT emulator) and
// libnccl.so.2 and throw kiln::Error naming what is missing; a rank whose machine has fewer
// GPUs than ranks throws on every rank. Not under mpirun they are of size 1 (name kept).
// Anything else throws naming the accepted names.
Communicator create_communicator(const std::string& communicator_name = "mpi");

// ChainerMN's scatter_dataset: a SubDataset of `dataset` for this rank. Every rank must
// pass a dataset of the same size (checked). The order is 0..n-1, or with `shuffle` a
// permutation drawn from `seed` (rank 0's; rank 0 draws one when unset). With
// force_equal_length (ChainerMN's default) every rank gets ceil(n / size) examples, rank i
// order[n*i/size, n*i/size + ceil(n/size)): the union is the whole dataset and, when size
// does not divide n, a few examples are on two ranks. Without it rank i gets
// order[n*i/size, n*(i+1)/size): every example exactly once, sizes differ by at most one.
datasets::SubDatasetPtr scatter_dataset(const datasets::DatasetPtr& dataset, const Communicator& comm,
                                        bool shuffle = false, std::optional<uint64_t> seed = std::nullopt,
                                        bool force_equal_length = true);

// ChainerMN's create_multi_node_optimizer: adds the pre hook "multi_node_mean_grad" to
// `optimizer` and returns it. At each update the hook averages the gradients over the ranks
// (Communicator::allreduce_grad); at the first update it also broadcasts rank 0's
// parameters (bcast_data), after averaging. Hooks run in the order added, so the allreduce
// must come first: a pre hook already added throws kiln::Error (add hooks after wrapping).
optimizers::Optimizer& create_multi_node_optimizer(optimizers::Optimizer& optimizer,
                                                   const Communicator& comm);

// An Evaluator whose results are the means over the ranks of each rank's results (each rank
// evaluates its own iterator). Every rank must report the same keys (checked).
class MultiNodeEvaluator : public training::Extension {
 public:
  MultiNodeEvaluator(training::extensions::Evaluator evaluator, Communicator comm);
  std::map<std::string, double> evaluate();
  void operator()(training::Trainer& trainer) override;
  std::string default_name() const override { return evaluator_->default_name(); }
  training::Trigger default_trigger() const override { return evaluator_->default_trigger(); }
  int priority() const override { return evaluator_->priority(); }
  void finalize(training::Trainer& trainer) override { evaluator_->finalize(trainer); }
  training::extensions::Evaluator& evaluator() { return *evaluator_; }

 private:
  std::shared_ptr<training::extensions::Evaluator> evaluator_;
  Communicator comm_;
};
MultiNodeEvaluator create_multi_node_evaluator(training::extensions::Evaluator evaluator,
                                               const Communicator& comm);

}  // namespace kiln::distributed
