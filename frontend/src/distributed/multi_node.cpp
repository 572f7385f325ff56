// kiln::distributed on top of a transport: model broadcast, the bucketed gradient mean,
// small-object collectives, scatter_dataset, the multi-node optimizer hook and evaluator.
#include <fmt/format.h>

#include <cstring>
#include <exception>
#include <random>
#include <sstream>

#include "../ops.h"
#include "communicator_impl.h"
#include "kiln/cache.h"
#include "kiln/collective_abi.h"
#if KILN_HAVE_CUDA_DRIVER_API
#include "kiln/cuda_driver.h"
#endif
#include "kiln/device.h"
#include "kiln/distributed.h"
#include "kiln/env.h"
#include "kiln/error.h"
#include "kiln/functions.h"

namespace kiln::distributed {

using detail::CommunicatorImpl;
using detail::ReduceOp;

namespace {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string bcast_string(CommunicatorImpl& c, const std::string& value, int root, const std::string& what) {
  int64_t n = static_cast<int64_t>(value.size());
  c.start_bcast(&n, sizeof n, root);
  c.wait_all(what);
  std::string out = c.rank == root ? value : std::string(static_cast<size_t>(n), '\0');
  if (n > 0) {
    c.start_bcast(out.data(), out.size(), root);
    c.wait_all(what);
  }
  return out;
}

// Throws kiln::Error on every rank unless every rank's `lines` (one item per line) equal
// rank 0's; the message names the first item that differs. `items` names what a line is.
void check_same_on_every_rank(CommunicatorImpl& c, const std::string& lines, const std::string& fn,
                              const std::string& items) {
  if (c.size == 1) return;
  int64_t h = static_cast<int64_t>(fnv1a(lines) >> 2);
  int64_t extremes[2] = {h, -h};  // max and -min of the hashes
  c.start_allreduce(extremes, 2, DType::i64, ReduceOp::max);
  c.wait_all(fn + " (checking that every rank has the same " + items + ")");
  if (extremes[0] == -extremes[1]) return;
  std::string root = bcast_string(c, lines, 0, fn + " (comparing " + items + " with rank 0)");
  if (c.rank == 0)
    throw Error(fmt::format("{}: the {} differ across ranks: another rank's differ from rank 0's (see that "
                            "rank's error for which)", fn, items));
  auto mine = split_lines(lines), theirs = split_lines(root);
  for (size_t i = 0; i < std::max(mine.size(), theirs.size()); ++i) {
    std::string m = i < mine.size() ? mine[i] : "(none)", r = i < theirs.size() ? theirs[i] : "(none)";
    if (m != r)
      throw Error(fmt::format("{}: the {} differ across ranks: entry {} is '{}' on rank {} but '{}' on rank 0",
                              fn, items, i, m, c.rank, r));
  }
  throw Error(fmt::format("{}: the {} differ across ranks (rank {} and rank 0)", fn, items, c.rank));
}

std::string shape_string(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + (s.size() == 1 ? ",)" : ")");
}

// One line per parameter: "name (shape) dtype", or "name uninitialized".
std::string model_signature(const std::vector<std::pair<std::string, Parameter>>& params) {
  std::string sig;
  for (const auto& [name, p] : params) {
    if (p.is_initialized())
      sig += fmt::format("{} {} {}\n", name, shape_string(p.shape()), dtype_name(p.dtype()));
    else
      sig += name + " uninitialized\n";
  }
  return sig;
}

// Parameters packed into contiguous buffers of at most `cap` bytes (a larger parameter
// gets one of its own), one dtype per buffer, in the order given.
struct Bucket {
  DType dtype;
  std::vector<size_t> members;  // indices into the parameter list
  size_t bytes = 0;
};

// The CUDA GPU whose memory holds the parameters (their gradients and buckets likewise), or
// -1 for host memory (the cpu, or the SIMT emulator's devices under KILN_CUDA_EMULATE=1).
// Throws kiln::Error when they are on several devices, or on a GPU and the transport `c`
// moves host memory only.
int gpu_of(const CommunicatorImpl& c, const std::vector<Parameter>& params, const std::string& fn) {
  if (params.empty()) return -1;
  const Device& d = params[0].device();
  for (const Parameter& p : params)
    if (p.device() != d)
      throw Error(fmt::format("{}: the model's parameters are on {} and {}: expected all on one device", fn,
                              d.to_string(), p.device().to_string()));
  if (d.is_cpu() || cuda_driver::emulated()) return -1;
  if (!c.device_collectives())
    throw Error(fmt::format("{}: the model's parameters are on {}, but the \"{}\" communicator moves host memory "
                            "only: use create_communicator(\"nccl\") (or \"pure_nccl\") for models on GPUs",
                            fn, d.to_string(), c.name));
  return d.index();
}

std::vector<Bucket> plan_buckets(const std::vector<Parameter>& params, size_t cap) {
  std::vector<Bucket> buckets;
  std::vector<size_t> open;  // index of the open bucket per dtype, or npos
  auto open_for = [&](DType d) -> size_t& {
    size_t k = static_cast<size_t>(d);
    if (open.size() <= k) open.resize(k + 1, CommunicatorImpl::npos);
    return open[k];
  };
  for (size_t i = 0; i < params.size(); ++i) {
    DType d = params[i].dtype();
    size_t bytes = static_cast<size_t>(params[i].size()) * dtype_size(d);
    size_t& b = open_for(d);
    if (b == CommunicatorImpl::npos || buckets[b].bytes + bytes > cap) {
      buckets.push_back({d, {}, 0});
      b = buckets.size() - 1;
    }
    buckets[b].members.push_back(i);
    buckets[b].bytes += bytes;
  }
  return buckets;
}

// bcast_data of parameters in the memory of GPU `gpu`: each bucket is a buffer there, rank
// 0's parameters are copied into it, it is broadcast, and the other ranks copy it out into new
// arrays; every copy and broadcast in order on kiln's stream of that GPU.
void bcast_on_gpu(CommunicatorImpl& c, std::vector<Parameter>& params, const std::vector<Bucket>& buckets, int gpu,
                  const std::string& fn) {
#if KILN_HAVE_CUDA_DRIVER_API
  const cuda_driver::DriverTable& d = cuda_driver::driver();
  const Device device = Device::cuda(gpu);
  auto copy = [&](void* to, const void* from, size_t bytes) {
    cuda_driver::check(d.cuMemcpyDtoDAsync_v2(reinterpret_cast<CUdeviceptr>(to), reinterpret_cast<CUdeviceptr>(from),
                                              bytes, cuda_driver::stream(gpu)),
                       "cuMemcpyDtoDAsync", fn);
  };
  std::vector<Array> buffers(buckets.size());
  for (size_t b = 0; b < buckets.size(); ++b) {
    buffers[b] = Array::empty({static_cast<int64_t>(buckets[b].bytes)}, DType::b8, device);
    auto* base = static_cast<unsigned char*>(buffers[b].raw_data());
    if (c.rank == 0) {
      size_t offset = 0;
      for (size_t i : buckets[b].members) {
        Array a = params[i].array();
        copy(base + offset, a.raw_data(), a.nbytes());
        offset += a.nbytes();
      }
    }
    c.start_device_bcast(base, buckets[b].bytes, 0, gpu);
  }
  for (size_t b; (b = c.wait_any(fn)) != CommunicatorImpl::npos;) {
    if (c.rank == 0) continue;
    size_t offset = 0;
    for (size_t i : buckets[b].members) {
      Array a = Array::empty(params[i].shape(), params[i].dtype(), device);
      copy(a.raw_data(), static_cast<const unsigned char*>(buffers[b].raw_data()) + offset, a.nbytes());
      offset += a.nbytes();
      params[i].set_array(a);
    }
  }
#else
  (void)c, (void)params, (void)buckets, (void)gpu;  // gpu_of found no GPU: kiln drives none without cuda.h
  throw Error(fn + ": kiln was built without the CUDA toolkit's cuda.h");
#endif
}

// Starts the buckets' reductions, in bucket order, as the compiled graph's
// kiln.collective_start calls hand over their buffers (kiln/collective_abi.h). MPI matches
// collectives by their order, and the ranks' graphs may order their kernels differently (a
// rank without some gradient has zeros there), so a bucket that comes early waits for the
// ones before it; finish() starts what the graph did not, after it returned. A call that does
// not match its bucket (index, size, dtype) is ignored.
class BucketStarter final : public collective_abi::Handler {
 public:
  // `gpu`: the GPU whose memory holds the buckets, or -1 (gpu_of).
  BucketStarter(CommunicatorImpl& c, const std::vector<Bucket>& buckets, int gpu)
      : c_(c), buckets_(buckets), gpu_(gpu), handed_(buckets.size(), nullptr) {}
  void start(int64_t index, void* data, int64_t count, DType dtype) noexcept override {
    if (index < 0 || static_cast<size_t>(index) >= buckets_.size()) return;
    const Bucket& bucket = buckets_[static_cast<size_t>(index)];
    if (handed_[index] || !data || dtype != bucket.dtype || count > INT32_MAX ||
        static_cast<size_t>(count) * dtype_size(dtype) != bucket.bytes)
      return;
    handed_[index] = data;
    if (failure_) return;  // an earlier start failed: finish() reports it
    // Compiled code calls this: an exception must not unwind through it, so a failed start
    // is kept and rethrown by finish(), after the graph returned.
    try {
      c_.progress();  // the buckets started before advance
      for (; next_ < buckets_.size() && handed_[next_]; ++next_) start_next(handed_[next_], true);
    } catch (...) {
      failure_ = std::current_exception();
    }
  }
  // After the graph: starts the buckets not started yet, in order, on `sums` (the graph's
  // results). Throws what a start inside the graph threw (after waiting for the started
  // ones), or if the graph handed over a buffer that is not its result.
  void finish(std::vector<Array>& sums, const std::string& fn) {
    if (failure_) {
      c_.wait_all(fn + " (gradient buckets)");
      std::rethrow_exception(failure_);
    }
    for (size_t b = 0; b < handed_.size(); ++b)
      if (handed_[b] && handed_[b] != sums[b].raw_data()) {  // cannot happen: the out-params are the results
        c_.wait_all(fn + " (gradient buckets)");
        throw Error(fmt::format("{}: bucket {}: the compiled graph handed over a buffer that is not its result",
                                fn, b));
      }
    for (; next_ < buckets_.size(); ++next_) start_next(sums[next_].raw_data(), false);
  }

 private:
  void start_next(void* data, bool in_graph) {
    const Bucket& bucket = buckets_[next_];
    const auto count = static_cast<int64_t>(bucket.bytes / dtype_size(bucket.dtype));
    if (gpu_ >= 0)
      c_.start_device_allreduce(data, count, bucket.dtype, ReduceOp::sum, gpu_);
    else
      c_.start_allreduce(data, count, bucket.dtype, ReduceOp::sum);
    using Event = CommunicatorImpl::Event;
    if (c_.events)
      c_.events->push_back({in_graph ? Event::bucket_started_in_graph : Event::bucket_started_after_graph, next_});
  }
  CommunicatorImpl& c_;
  const std::vector<Bucket>& buckets_;
  const int gpu_;
  std::vector<void*> handed_;
  size_t next_ = 0;  // the first bucket not started
  std::exception_ptr failure_;  // what a start inside the graph threw
};

}  // namespace

// ---- Communicator -------------------------------------------------------------------

Communicator::Communicator(std::shared_ptr<detail::CommunicatorImpl> impl) : impl_(std::move(impl)) {}
int Communicator::rank() const { return impl_->rank; }
int Communicator::size() const { return impl_->size; }
int Communicator::intra_rank() const { return impl_->intra_rank; }
int Communicator::intra_size() const { return impl_->intra_size; }
int Communicator::inter_rank() const { return impl_->inter_rank; }
int Communicator::inter_size() const { return impl_->inter_size; }
const std::string& Communicator::name() const { return impl_->name; }
size_t Communicator::bucket_bytes() const { return impl_->bucket_bytes; }
void Communicator::set_bucket_bytes(size_t bytes) {
  if (bytes == 0) throw Error("kiln::distributed::Communicator::set_bucket_bytes: bytes: expected >= 1, got 0");
  impl_->bucket_bytes = bytes;
}
void Communicator::barrier() { impl_->barrier("barrier"); }

void Communicator::bcast_data(const Link& model) {
  const std::string fn = "kiln::distributed::Communicator::bcast_data";
  CommunicatorImpl& c = *impl_;
  auto named = model.namedparams();
  check_same_on_every_rank(c, model_signature(named), fn, "model parameters (name, shape, dtype)");
  if (c.size == 1) return;
  std::vector<Parameter> params;
  for (auto& [name, p] : named)
    if (p.is_initialized()) params.push_back(p);
  auto buckets = plan_buckets(params, c.bucket_bytes);
  if (int gpu = gpu_of(c, params, fn); gpu >= 0) return bcast_on_gpu(c, params, buckets, gpu, fn);
  std::vector<std::vector<unsigned char>> buffers(buckets.size());
  for (size_t b = 0; b < buckets.size(); ++b) {
    buffers[b].resize(buckets[b].bytes);
    if (c.rank == 0) {
      size_t offset = 0;
      for (size_t i : buckets[b].members) {
        Array a = params[i].array();
        std::memcpy(buffers[b].data() + offset, a.raw_data(), a.nbytes());
        offset += a.nbytes();
      }
    }
    c.start_bcast(buffers[b].data(), buffers[b].size(), 0);
  }
  for (size_t b; (b = c.wait_any(fn)) != CommunicatorImpl::npos;) {
    if (c.rank == 0) continue;
    size_t offset = 0;
    for (size_t i : buckets[b].members) {
      Array a = Array::empty(params[i].shape(), params[i].dtype());
      std::memcpy(a.raw_data(), buffers[b].data() + offset, a.nbytes());
      offset += a.nbytes();
      params[i].set_array(a);
    }
  }
}

void Communicator::allreduce_grad(const Link& model) {
  const std::string fn = "kiln::distributed::Communicator::allreduce_grad";
  CommunicatorImpl& c = *impl_;
  if (c.size == 1) return;  // the mean over one rank: the gradients stay pending, computed with the update
  auto named = model.namedparams();
  check_same_on_every_rank(c, model_signature(named), fn, "model parameters (name, shape, dtype)");
  // Reverse registration order: the order in which backward produces the gradients.
  std::vector<Parameter> params;
  for (auto it = named.rbegin(); it != named.rend(); ++it) {
    if (!it->second.is_initialized()) continue;
    DType d = it->second.dtype();
    if (d != DType::f32 && d != DType::f64)
      throw Error(fmt::format("{}: parameter '{}': expected a gradient of dtype f32 or f64, got {}", fn, it->first,
                              dtype_name(d)));
    params.push_back(it->second);
  }
  const int gpu = gpu_of(c, params, fn);
  // How many ranks have a gradient for each parameter (summed with the buckets).
  std::vector<double> has_grad(params.size());
  for (size_t i = 0; i < params.size(); ++i) has_grad[i] = params[i].has_grad() ? 1.0 : 0.0;
  c.start_allreduce(has_grad.data(), static_cast<int64_t>(has_grad.size()), DType::f64, ReduceOp::sum);
  // Each bucket is one flat Variable: the concatenation of its gradients (zeros where this
  // rank has none), recorded on the pending backward and realized with it, so the step's
  // compiled graph writes the gradients into the bucket buffers (no packing copy). The
  // parameters drop their own gradients first: those are then no outputs of the graph.
  auto buckets = plan_buckets(params, c.bucket_bytes);
  std::vector<Variable> flat(buckets.size());
  for (size_t b = 0; b < buckets.size(); ++b) {
    std::vector<Variable> parts;
    for (size_t i : buckets[b].members) {
      const Parameter& p = params[i];
      Variable g = p.has_grad() ? p.grad_var()
                                : Variable(Array::zeros(p.shape(), p.dtype()).to(p.device()), false);
      parts.push_back(F::reshape(g, {p.size()}));
    }
    flat[b] = parts.size() == 1 ? parts[0] : F::concat(parts, 0);
  }
  for (Parameter& p : params) p.cleargrad();
  // Where the step's graph runs on the cpu backend or on the cuda backend (unless
  // KILN_MN_OVERLAP=0), each bucket goes through kiln.collective_start: the compiled graph
  // starts its reduction (the handler below, on this thread) right after computing it, while
  // the rest of the backward runs (on a GPU: NCCL's allreduce enqueued between the graph's
  // segments, after the kernels that computed the bucket). A bucket the graph did not start
  // (the interpreter; host parameters on the cuda backend of a real GPU; a bucket that is no
  // buffer of the graph's own: see -kiln-check-collective-buffers and the CUDA emitter's
  // collective steps) is started once the graph has returned. Every rank compiles the same
  // graph, so every rank starts the same reductions in the same order.
  const bool on_cpu = params.empty() || params[0].device().is_cpu();
  const std::string runs_on = on_cpu ? backend_name() : "cuda";  // gpu_of: all on one device
  bool in_graph = env::get_flag("KILN_MN_OVERLAP", true) &&
                  (runs_on == "cpu" || (runs_on == "cuda" && (gpu >= 0 || cuda_driver::emulated())));
  if (in_graph)
    for (size_t b = 0; b < buckets.size(); ++b)
      flat[b] = kiln::detail::record_like("kiln.collective_start", {flat[b]},
                                          {kiln::detail::int_attr("bucket", static_cast<int64_t>(b))});
  BucketStarter starter(c, buckets, gpu);
  std::vector<Array> sums(buckets.size());
  {
    collective_abi::ScopedHandler scope(starter);
    // The first array() realizes the step's forward, backward and every bucket (one compiled
    // graph); each bucket's reduction runs in place on the graph's output buffer.
    try {
      for (size_t b = 0; b < buckets.size(); ++b) sums[b] = flat[b].array();
    } catch (...) {
      c.wait_all(fn + " (gradient buckets)");  // no reduction may outlive its buffer
      throw;
    }
  }
  if (c.events) c.events->push_back({CommunicatorImpl::Event::graph_returned, CommunicatorImpl::npos});
  starter.finish(sums, fn);
  c.wait_all(fn + " (gradient buckets)");
  // Each gradient becomes its slice of the reduced bucket times 1 / size, recorded, not
  // computed: the optimizer's compiled update reads the bucket and fuses the scaling (no
  // unpacking or scaling copy). A parameter no rank has a gradient for gets none.
  const double inv = 1.0 / c.size;
  for (size_t b = 0; b < buckets.size(); ++b) {
    const auto& members = buckets[b].members;
    std::vector<Variable> slices{flat[b]};
    if (members.size() > 1) {
      std::vector<int64_t> cuts;
      int64_t offset = 0;
      for (size_t k = 0; k + 1 < members.size(); ++k) cuts.push_back(offset += params[members[k]].size());
      slices = F::split_axis(flat[b], cuts, 0);
    }
    for (size_t k = 0; k < members.size(); ++k) {
      Parameter& p = params[members[k]];
      if (has_grad[members[k]] > 0) p.set_grad_var(F::reshape(slices[k], p.shape()) * inv);
    }
  }
}

double Communicator::allreduce_obj(double value) {
  impl_->start_allreduce(&value, 1, DType::f64, ReduceOp::sum);
  impl_->wait_all("kiln::distributed::Communicator::allreduce_obj");
  return value;
}
int64_t Communicator::allreduce_obj(int64_t value) {
  impl_->start_allreduce(&value, 1, DType::i64, ReduceOp::sum);
  impl_->wait_all("kiln::distributed::Communicator::allreduce_obj");
  return value;
}
std::vector<double> Communicator::allreduce_obj(const std::vector<double>& values) {
  const std::string fn = "kiln::distributed::Communicator::allreduce_obj";
  check_same_on_every_rank(*impl_, fmt::format("{} values\n", values.size()), fn, "vector lengths");
  std::vector<double> out = values;
  if (!out.empty()) {
    impl_->start_allreduce(out.data(), static_cast<int64_t>(out.size()), DType::f64, ReduceOp::sum);
    impl_->wait_all(fn);
  }
  return out;
}

namespace {
void check_root(const CommunicatorImpl& c, int root, const char* fn) {
  if (root < 0 || root >= c.size)
    throw Error(fmt::format("kiln::distributed::Communicator::{}: root: expected 0 <= root < {}, got {}", fn, c.size,
                            root));
}
}  // namespace

double Communicator::bcast_obj(double value, int root) {
  check_root(*impl_, root, "bcast_obj");
  impl_->start_bcast(&value, sizeof value, root);
  impl_->wait_all("kiln::distributed::Communicator::bcast_obj");
  return value;
}
int64_t Communicator::bcast_obj(int64_t value, int root) {
  check_root(*impl_, root, "bcast_obj");
  impl_->start_bcast(&value, sizeof value, root);
  impl_->wait_all("kiln::distributed::Communicator::bcast_obj");
  return value;
}
std::vector<double> Communicator::bcast_obj(const std::vector<double>& values, int root) {
  check_root(*impl_, root, "bcast_obj");
  const std::string what = "kiln::distributed::Communicator::bcast_obj";
  int64_t n = static_cast<int64_t>(values.size());
  impl_->start_bcast(&n, sizeof n, root);
  impl_->wait_all(what);
  std::vector<double> out = impl_->rank == root ? values : std::vector<double>(static_cast<size_t>(n));
  if (n > 0) {
    impl_->start_bcast(out.data(), out.size() * sizeof(double), root);
    impl_->wait_all(what);
  }
  return out;
}
std::string Communicator::bcast_obj(const std::string& value, int root) {
  check_root(*impl_, root, "bcast_obj");
  return bcast_string(*impl_, value, root, "kiln::distributed::Communicator::bcast_obj");
}

// ---- datasets, optimizer, evaluator ---------------------------------------------------

datasets::SubDatasetPtr scatter_dataset(const datasets::DatasetPtr& dataset, const Communicator& comm, bool shuffle,
                                        std::optional<uint64_t> seed, bool force_equal_length) {
  const std::string fn = "kiln::distributed::scatter_dataset";
  if (!dataset) throw Error(fn + ": dataset: expected a dataset, got null");
  CommunicatorImpl& c = comm.impl();
  const size_t n = dataset->size();
  check_same_on_every_rank(c, fmt::format("{} examples\n", n), fn, "dataset sizes");
  std::vector<size_t> order;
  if (shuffle) {
    int64_t s = static_cast<int64_t>(seed ? *seed : std::random_device{}());
    Communicator root_seed = comm;
    s = root_seed.bcast_obj(s, 0);
    order = datasets::random_permutation(n, static_cast<uint64_t>(s));
  }
  const size_t size = static_cast<size_t>(c.size), rank = static_cast<size_t>(c.rank);
  const size_t begin = n * rank / size;
  const size_t end = force_equal_length ? begin + (n + size - 1) / size : n * (rank + 1) / size;
  return std::make_shared<datasets::SubDataset>(dataset, begin, end, std::move(order));
}

optimizers::Optimizer& create_multi_node_optimizer(optimizers::Optimizer& optimizer, const Communicator& comm) {
  auto hooks = optimizer.hook_names();
  if (!hooks.empty()) {
    std::string names;
    for (const auto& h : hooks) names += (names.empty() ? "'" : ", '") + h + "'";
    throw Error(fmt::format("kiln::distributed::create_multi_node_optimizer: optimizer: expected no hooks yet, got "
                            "{}: they would run before the gradient allreduce; add them after wrapping", names));
  }
  auto first = std::make_shared<bool>(true);
  optimizer.add_hook_fn(
      [comm, first](optimizers::Optimizer& opt) {
        Communicator c = comm;
        c.allreduce_grad(opt.target());
        if (*first) {
          c.bcast_data(opt.target());
          *first = false;
        }
      },
      "multi_node_mean_grad", "pre");
  return optimizer;
}

MultiNodeEvaluator::MultiNodeEvaluator(training::extensions::Evaluator evaluator, Communicator comm)
    : evaluator_(std::make_shared<training::extensions::Evaluator>(std::move(evaluator))), comm_(std::move(comm)) {}

std::map<std::string, double> MultiNodeEvaluator::evaluate() {
  const std::string fn = "kiln::distributed::MultiNodeEvaluator::evaluate";
  std::map<std::string, double> local = evaluator_->evaluate();
  CommunicatorImpl& c = comm_.impl();
  if (c.size == 1) return local;
  std::string keys;
  std::vector<double> values;
  for (const auto& [k, v] : local) {
    keys += k + "\n";
    values.push_back(v);
  }
  check_same_on_every_rank(c, keys, fn, "reported keys");
  if (!values.empty()) {
    c.start_allreduce(values.data(), static_cast<int64_t>(values.size()), DType::f64, ReduceOp::sum);
    c.wait_all(fn);
  }
  size_t i = 0;
  for (auto& [k, v] : local) v = values[i++] / c.size;
  return local;
}

void MultiNodeEvaluator::operator()(training::Trainer&) {
  for (const auto& [key, value] : evaluate()) report(key, value);
}

MultiNodeEvaluator create_multi_node_evaluator(training::extensions::Evaluator evaluator, const Communicator& comm) {
  return MultiNodeEvaluator(std::move(evaluator), comm);
}

}  // namespace kiln::distributed
