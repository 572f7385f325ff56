// kiln::distributed under mpirun (ctest mpi/np2/..., mpi/np3/...) and as a single process
// (ctest distributed/...): N ranks with 1/N of the batch each end with the parameters of one
// process with the whole batch (SGD, Adam), scatter_dataset's coverage, the evaluator's mean
// over ranks, one log from a rank-0-only LogReport, mismatched models, a stuck rank; with
// KILN_TEST_FAKE_GPU the "nccl" / "pure_nccl" communicators on a fake GPU with a fake libnccl.
#include <gtest/gtest.h>
#include <kiln/distributed.h>
#include <kiln/kiln.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "../../frontend/src/distributed/communicator_impl.h"
#include "../unit/scoped_env.h"
#if KILN_TEST_FAKE_GPU
#include <dlfcn.h>

#include "../fake-gpu/fake_gpu.h"
#endif

using namespace kiln;
namespace D = kiln::distributed;
namespace E = kiln::training::extensions;
namespace fs = std::filesystem;

namespace {

struct MLP : Chain {
  L::Linear l1{8, 16}, l2{16, 4};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) const { return l2(F::tanh(l1(x))); }
};

// Three layers: with 1088-byte buckets, {l3/b, l3/W, l2/b}, {l2/W, l1/b} and {l1/W} (the
// gradients in the order backward produces them, last layer first).
struct MLP3 : Chain {
  L::Linear l1{8, 16}, l2{16, 16}, l3{16, 4};
  MLP3() {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::tanh(l2(F::tanh(l1(x))))); }
};

constexpr int64_t kBatch = 12, kIn = 8, kClasses = 4;

// Row-major (kBatch, kIn) inputs and labels of step `step`, rows [begin, end).
std::pair<Array, Array> batch_rows(int step, int64_t begin, int64_t end) {
  std::vector<float> x;
  std::vector<int32_t> t;
  for (int64_t r = begin; r < end; ++r) {
    for (int64_t c = 0; c < kIn; ++c) x.push_back(std::sin(0.37f * (r + 1) * (c + 1) + 0.11f * step));
    t.push_back(static_cast<int32_t>((r * 7 + step) % kClasses));
  }
  return {Array::from(x, {end - begin, kIn}), Array::from(t, {end - begin})};
}

// `device`: where the batches go (the model's device).
template <class Net>
void train(optimizers::Optimizer& opt, L::Classifier<Net>& model, int steps, int64_t begin, int64_t end,
           const Device& device = Device::cpu()) {
  for (int s = 0; s < steps; ++s) {
    auto [x, t] = batch_rows(s, begin, end);
    model.cleargrads();
    Variable loss = model(Variable(x.to(device), false), Variable(t.to(device), false));
    loss.backward();
    opt.update();
  }
}

// Trains a data-parallel model (this rank's rows of each batch) and a local one (the whole
// batch, no communicator) from the same initial parameters; they must agree within 1e-5.
// `reference_backend`: KILN_BACKEND for the reference (one process) only, when given.
// `device`: where the data-parallel model trains (the reference trains on the cpu).
template <class Opt, class Net = MLP>
void expect_data_parallel_matches_whole_batch(D::Communicator comm = D::create_communicator("mpi"),
                                              const char* reference_backend = nullptr,
                                              const Device& device = Device::cpu()) {
  const int64_t per_rank = kBatch / comm.size();
  ASSERT_EQ(per_rank * comm.size(), kBatch) << "run with 1, 2, 3, 4, 6 or 12 ranks";
  set_random_seed(0);
  L::Classifier<Net> model;
  set_random_seed(0);
  L::Classifier<Net> reference;
  model.to_device(device);
  Opt dist_opt, ref_opt;
  D::create_multi_node_optimizer(dist_opt, comm).setup(model);
  ref_opt.setup(reference);
  train(dist_opt, model, 5, comm.rank() * per_rank, (comm.rank() + 1) * per_rank, device);
  std::string backend = backend_name();
  if (reference_backend) setenv("KILN_BACKEND", reference_backend, 1);
  train(ref_opt, reference, 5, 0, kBatch);
  setenv("KILN_BACKEND", backend.c_str(), 1);
  auto got = model.namedparams(), want = reference.namedparams();
  ASSERT_EQ(got.size(), want.size());
  double moved = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].second.device(), device) << got[i].first;
    auto g = got[i].second.array().template to_vector<float>(), w = want[i].second.array().template to_vector<float>();
    ASSERT_EQ(g.size(), w.size());
    for (size_t k = 0; k < g.size(); ++k)
      ASSERT_NEAR(g[k], w[k], 1e-5) << got[i].first << "[" << k << "] on rank " << comm.rank();
  }
  // The parameters did move (5 steps), so the comparison is not of initial values.
  set_random_seed(0);
  L::Classifier<Net> initial;
  auto x0 = batch_rows(0, 0, 1);
  initial(Variable(x0.first, false), Variable(x0.second, false));
  auto a = initial.namedparams()[0].second.array().template to_vector<float>();
  auto b = model.namedparams()[0].second.array().template to_vector<float>();
  for (size_t k = 0; k < a.size(); ++k) moved = std::max(moved, double(std::fabs(a[k] - b[k])));
  EXPECT_GT(moved, 1e-4);
}

TEST(Distributed, SgdMatchesOneProcessWithTheWholeBatch) {
  expect_data_parallel_matches_whole_batch<optimizers::SGD>();
}

TEST(Distributed, AdamMatchesOneProcessWithTheWholeBatch) {
  expect_data_parallel_matches_whole_batch<optimizers::Adam>();
}

// On the cpu backend (and the cuda backend's SIMT emulator) the step's compiled graph starts
// each bucket's reduction itself, right after computing the bucket (kiln.collective_start):
// the communicator's events show every bucket started from inside the graph, in bucket
// order, so the first bucket (the last layer's gradients) before the bucket of l1/W, one of
// the backward's last gradients; and all before the graph returned. The parameters are still
// those of one process with the whole batch (computed by the interpreter).
TEST(Distributed, BucketsStartInsideTheCompiledBackward) {
  ASSERT_TRUE(backend_name() == "cpu" || (backend_name() == "cuda" && cuda_driver::emulated()))
      << "the buckets start inside compiled graphs: run with KILN_BACKEND=cpu, or cuda with KILN_CUDA_EMULATE=1";
  D::Communicator comm = D::create_communicator("mpi");
  ASSERT_GT(comm.size(), 1) << "run under mpirun";
  using Event = D::detail::CommunicatorImpl::Event;
  std::vector<std::pair<Event, size_t>> events;
  comm.impl().events = &events;
  comm.set_bucket_bytes(1088);
  // The reference on the interpreter: one compiled step per rank, not two (ASan builds).
  expect_data_parallel_matches_whole_batch<optimizers::MomentumSGD, MLP3>(comm, "interp");
  comm.impl().events = nullptr;
  const size_t steps = 5, buckets = 3;
  ASSERT_EQ(events.size(), steps * (buckets + 1));
  for (size_t s = 0; s < steps; ++s) {
    const auto* step = &events[s * (buckets + 1)];
    for (size_t b = 0; b < buckets; ++b)  // in bucket order, as MPI matches them
      EXPECT_EQ(step[b], std::make_pair(Event::bucket_started_in_graph, b)) << "step " << s << ", bucket " << b;
    EXPECT_EQ(step[buckets].first, Event::graph_returned) << "step " << s;
  }
}

TEST(Distributed, RanksAndObjects) {
  D::Communicator comm = D::create_communicator("mpi");
  const int n = comm.size();
  EXPECT_EQ(comm.name(), n > 1 ? "mpi" : "single");
  EXPECT_EQ(comm.intra_size(), n);  // one machine
  EXPECT_EQ(comm.intra_rank(), comm.rank());
  EXPECT_EQ(comm.inter_rank(), 0);
  EXPECT_EQ(comm.inter_size(), 1);
  EXPECT_DOUBLE_EQ(comm.allreduce_obj(double(comm.rank() + 1)), n * (n + 1) / 2.0);
  EXPECT_EQ(comm.allreduce_obj(int64_t(1) << (comm.rank() * 4)), n == 1 ? 1 : n == 2 ? 17 : 273);
  auto v = comm.allreduce_obj(std::vector<double>{1.0, double(comm.rank())});
  EXPECT_EQ(v, (std::vector<double>{double(n), n * (n - 1) / 2.0}));
  EXPECT_EQ(comm.bcast_obj(std::string(comm.rank() == n - 1 ? "from the last" : "x"), n - 1), "from the last");
  EXPECT_DOUBLE_EQ(comm.bcast_obj(comm.rank() == 0 ? 2.5 : -1.0), 2.5);
  EXPECT_EQ(comm.bcast_obj(std::vector<double>(comm.rank() == 0 ? 3 : 1, 7.0)), std::vector<double>(3, 7.0));
  EXPECT_THROW(comm.bcast_obj(1.0, n), Error);
  comm.barrier();
}

// ctest mpi/netns/TwoRanksOverTcp: one rank in each of two network namespaces (machines).
TEST(Distributed, RanksOnSeveralMachines) {
  const char* machines = std::getenv("KILN_TEST_MACHINES");
  if (!machines) GTEST_SKIP() << "run by netns_two_ranks.sh (KILN_TEST_MACHINES set)";
  D::Communicator comm = D::create_communicator("mpi");
  EXPECT_EQ(comm.inter_size(), std::atoi(machines));
  EXPECT_EQ(comm.intra_size(), comm.size() / comm.inter_size());
  EXPECT_EQ(comm.intra_rank(), 0);
  EXPECT_EQ(comm.inter_rank(), comm.rank());
  EXPECT_DOUBLE_EQ(comm.allreduce_obj(double(comm.rank() + 1)), comm.size() * (comm.size() + 1) / 2.0);
}

TEST(Distributed, BcastDataCopiesRankZerosParameters) {
  D::Communicator comm = D::create_communicator("mpi");
  set_random_seed(100 + comm.rank());  // different on every rank
  L::Linear l(3, 2);
  set_random_seed(100);
  L::Linear root(3, 2);
  comm.set_bucket_bytes(16);  // W (24 bytes) and b (8) in two buckets
  comm.bcast_data(l);
  EXPECT_EQ(l.W.array().to_vector<float>(), root.W.array().to_vector<float>());
  EXPECT_EQ(l.b.array().to_vector<float>(), root.b.array().to_vector<float>());
}

TEST(Distributed, AllreduceGradAveragesOverBucketsAndFillsMissingGradients) {
  D::Communicator comm = D::create_communicator("mpi");
  const int n = comm.size();
  L::Linear l(2, 2);
  comm.set_bucket_bytes(8);
  // W's gradient is rank + 1 everywhere; b has one only on rank 0 (zeros elsewhere).
  l.W.set_grad(Array::full({2, 2}, comm.rank() + 1.0));
  if (comm.rank() == 0) l.b.set_grad(Array::full({2}, 6.0));
  L::Linear frozen(2, 2);  // no gradient on any rank: keeps none
  comm.allreduce_grad(l);
  comm.allreduce_grad(frozen);
  EXPECT_EQ(l.W.grad().to_vector<float>(), std::vector<float>(4, (n + 1) / 2.0f));
  ASSERT_TRUE(l.b.has_grad());
  EXPECT_EQ(l.b.grad().to_vector<float>(), std::vector<float>(2, 6.0f / n));
  EXPECT_FALSE(frozen.W.has_grad());
}

// Gradients of different lengths, one missing on some ranks, in one bucket: each comes back
// from its own slice of the reduced bucket (distinct values catch a wrong offset or order).
TEST(Distributed, AllreduceGradSlicesOneBucketBack) {
  D::Communicator comm = D::create_communicator("mpi");
  const int n = comm.size(), r = comm.rank();
  comm.set_bucket_bytes(1 << 20);
  Chain model;
  L::Linear a(3, 2), b(2, 4);
  model.add_link("a", a);
  model.add_link("b", b);
  auto ramp = [&](const Shape& shape, double base) {
    std::vector<double> v(size_t(shape_size(shape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = base + double(i) + 10.0 * r;
    return Array::from(v, shape).astype(DType::f32);
  };
  Array given = ramp({2, 3}, 100);  // the caller's array: the reduction must not write it
  const std::vector<float> given_before = given.to_vector<float>();
  a.W.set_grad(given);
  a.b.set_grad(ramp({2}, 200));
  b.W.set_grad(ramp({4, 2}, 300));
  if (r == 0) b.b.set_grad(ramp({4}, 400));  // zeros in the bucket on the other ranks
  comm.allreduce_grad(model);
  EXPECT_EQ(given.to_vector<float>(), given_before);
  const double rank_mean = 10.0 * (n - 1) / 2.0;  // the mean of 10 * r over the ranks
  auto expect_mean = [&](const Parameter& p, double base, double offset) {
    auto got = p.grad().to_vector<float>();
    ASSERT_EQ(got.size(), size_t(p.size()));
    for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], float(base + double(i) + offset)) << i;
  };
  expect_mean(a.W, 100, rank_mean);
  expect_mean(a.b, 200, rank_mean);
  expect_mean(b.W, 300, rank_mean);
  auto bb = b.b.grad().to_vector<float>();  // rank 0's (400 + i) over n ranks
  for (size_t i = 0; i < bb.size(); ++i) EXPECT_FLOAT_EQ(bb[i], float((400.0 + double(i)) / n)) << i;
  // A bucket of one parameter is that gradient itself, reshaped: still not the caller's array.
  comm.set_bucket_bytes(1);
  Array alone = ramp({2, 3}, 500);
  const std::vector<float> alone_before = alone.to_vector<float>();
  a.W.set_grad(alone);
  comm.allreduce_grad(a);
  EXPECT_EQ(alone.to_vector<float>(), alone_before);
  expect_mean(a.W, 500, rank_mean);
}

std::vector<double> scatter_counts(const D::Communicator& comm, size_t n, bool shuffle, bool equal,
                                   size_t* my_size) {
  std::vector<float> xs(n);
  for (size_t i = 0; i < n; ++i) xs[i] = float(i);
  auto data = std::make_shared<datasets::TupleDataset>(std::vector<Array>{Array::from(xs, {int64_t(n)})});
  auto mine = D::scatter_dataset(data, comm, shuffle, 7, equal);
  *my_size = mine->size();
  std::vector<double> counts(n);
  for (size_t i = 0; i < mine->size(); ++i) counts[size_t(mine->get_example(i)[0].item<float>())] += 1;
  D::Communicator c = comm;
  return c.allreduce_obj(counts);
}

TEST(Distributed, ScatterDatasetCoversEveryExample) {
  D::Communicator comm = D::create_communicator("mpi");
  const size_t n = 10, size = size_t(comm.size());
  for (bool shuffle : {false, true}) {
    size_t mine = 0;
    // Exact partition: every example exactly once; sizes differ by at most one.
    auto counts = scatter_counts(comm, n, shuffle, /*force_equal_length=*/false, &mine);
    EXPECT_EQ(counts, std::vector<double>(n, 1.0)) << "shuffle " << shuffle;
    EXPECT_TRUE(mine == n / size || mine == n / size + 1);
    // ChainerMN's equal lengths: ceil(n / size) each; every example at least once, and
    // exactly once when size divides n.
    counts = scatter_counts(comm, n, shuffle, true, &mine);
    EXPECT_EQ(mine, (n + size - 1) / size);
    double total = 0;
    for (double c : counts) {
      EXPECT_GE(c, 1.0);
      if (n % size == 0) EXPECT_EQ(c, 1.0);
      total += c;
    }
    EXPECT_EQ(total, double(size * mine));
  }
  // The same seed gives every rank the same permutation: rank 0 holds its first entries.
  std::vector<float> xs(n);
  for (size_t i = 0; i < n; ++i) xs[i] = float(i);
  auto data = std::make_shared<datasets::TupleDataset>(std::vector<Array>{Array::from(xs, {int64_t(n)})});
  auto mine = D::scatter_dataset(data, comm, true, 7, true);
  auto order = datasets::random_permutation(n, 7);
  size_t begin = n * size_t(comm.rank()) / size;
  for (size_t i = 0; i < mine->size(); ++i) EXPECT_EQ(mine->get_example(i)[0].item<float>(), float(order[begin + i]));
}

// A "model" that reports the mean of its input as "value" and returns it.
Variable report_mean(const std::vector<Variable>& in) {
  Variable v = F::mean(in[0]);
  report("value", v);
  return v;
}

TEST(Distributed, EvaluatorMeansOverRanks) {
  D::Communicator comm = D::create_communicator("mpi");
  const int n = comm.size();
  // Rank r evaluates two batches of values r+1 and 3(r+1): its mean is 2(r+1); the mean
  // over ranks is n + 1.
  float r1 = float(comm.rank() + 1);
  auto data = std::make_shared<datasets::TupleDataset>(
      std::vector<Array>{Array::from(std::vector<float>{r1, r1, 3 * r1, 3 * r1}, {4, 1})});
  iterators::SerialIterator it(data, 2, false, false);
  auto evaluator = D::create_multi_node_evaluator(E::Evaluator(it, training::LossFunc(report_mean)), comm);
  auto result = evaluator.evaluate();
  ASSERT_EQ(result.count("validation/main/value"), 1u);
  EXPECT_NEAR(result.at("validation/main/value"), n + 1.0, 1e-6);
  EXPECT_EQ(evaluator.default_name(), "validation");
}

// The folder for this test's output, shared by the ranks (KILN_TEST_OUT, else /tmp).
fs::path shared_out(const std::string& name) {
  const char* base = std::getenv("KILN_TEST_OUT");
  return fs::path(base ? base : fs::temp_directory_path().string()) / name;
}

TEST(Distributed, TrainerWithRankZeroLogReportWritesOneLog) {
  D::Communicator comm = D::create_communicator("mpi");
  fs::path out = shared_out(fmt::format("kiln_mn_log_np{}", comm.size()));
  if (comm.rank() == 0) {
    fs::remove_all(out);
    fs::create_directories(out);
  }
  comm.barrier();
  std::vector<float> xs;
  std::vector<int32_t> ts;
  for (int i = 0; i < 24; ++i) {
    for (int c = 0; c < kIn; ++c) xs.push_back(std::cos(0.3f * (i + 1) * (c + 1)));
    ts.push_back(i % kClasses);
  }
  auto all = std::make_shared<datasets::TupleDataset>(
      std::vector<Array>{Array::from(xs, {24, kIn}), Array::from(ts, {24})});
  auto train = D::scatter_dataset(all, comm, true, 0);
  auto test = D::scatter_dataset(all, comm, false);
  L::Classifier<MLP> model;
  optimizers::Adam adam;
  D::create_multi_node_optimizer(adam, comm).setup(model);
  iterators::SerialIterator train_iter(train, 4), test_iter(test, 8, false, false);
  training::StandardUpdater updater(train_iter, adam, model);
  training::Trainer trainer(updater, {2, "epoch"}, out.string());
  trainer.extend(D::create_multi_node_evaluator(E::Evaluator(test_iter, model), comm));
  if (comm.rank() == 0) trainer.extend(E::LogReport());
  trainer.run();
  comm.barrier();
  size_t files = 0;
  for (auto& e : fs::directory_iterator(out)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // only rank 0's log
  std::ifstream in(out / "log");
  auto log = nlohmann::json::parse(in);
  ASSERT_EQ(log.size(), 2u);  // one entry per epoch
  EXPECT_EQ(log[1]["epoch"], 2);
  EXPECT_TRUE(log[1].contains("validation/main/accuracy"));
  // Every rank reported the same (averaged) validation loss.
  double v = log[1]["validation/main/loss"].get<double>();
  EXPECT_TRUE(std::isfinite(v));
  comm.barrier();
  if (comm.rank() == 0) fs::remove_all(out);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Distributed, MismatchedModelsThrowOnEveryRank) {
  D::Communicator comm = D::create_communicator("mpi");
  if (comm.size() == 1) GTEST_SKIP() << "needs 2 ranks or more";
  const bool last = comm.rank() == comm.size() - 1;
  L::Linear shapes(3, last ? 5 : 4);  // the last rank's W is (5, 3)
  std::string e = error_of([&] { comm.bcast_data(shapes); });
  EXPECT_NE(e.find("kiln::distributed::Communicator::bcast_data: the model parameters (name, shape, dtype) "
                   "differ across ranks"), std::string::npos) << e;
  if (last) EXPECT_NE(e.find("'/W (5, 3) float32' on rank"), std::string::npos) << e;
  if (last) EXPECT_NE(e.find("but '/W (4, 3) float32' on rank 0"), std::string::npos) << e;
  // Names: the last rank's chain calls its link "other".
  Chain names;
  L::Linear lin(2, 2);
  names.add_link(last ? "other" : "fc", lin);
  lin.W.set_grad(Array::ones({2, 2}));
  e = error_of([&] { comm.allreduce_grad(names); });
  EXPECT_NE(e.find("allreduce_grad: the model parameters"), std::string::npos) << e;
  if (last) EXPECT_NE(e.find("'/other/W (2, 2) float32'"), std::string::npos) << e;
  // The ranks are still in step: a collective after the errors works.
  EXPECT_DOUBLE_EQ(comm.allreduce_obj(1.0), comm.size());
}

// The MPI progress thread: a started reduction (4 MiB, several rounds of Open MPI's libnbc)
// completes while this thread makes no MPI call, seen through the thread's count; then
// wait_any returns it with the sums.
TEST(Distributed, StartedReductionCompletesWithoutLaterMpiCalls) {
  D::Communicator comm = D::create_communicator("mpi");
  ASSERT_GT(comm.size(), 1) << "run under mpirun";
  D::detail::CommunicatorImpl& c = comm.impl();
  if (!c.background_progress()) GTEST_SKIP() << "no MPI progress thread (KILN_MN_PROGRESS=0 or no MPI_THREAD_MULTIPLE)";
  std::vector<float> data(1 << 20, static_cast<float>(comm.rank() + 1));
  const size_t before = c.completed_in_background();
  EXPECT_EQ(c.start_allreduce(data.data(), static_cast<int64_t>(data.size()), DType::f32, D::detail::ReduceOp::sum),
            0u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (c.completed_in_background() == before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(c.completed_in_background(), before + 1);
  EXPECT_EQ(c.wait_any("the test's allreduce"), 0u);
  EXPECT_EQ(c.wait_any("the test's allreduce"), D::detail::CommunicatorImpl::npos);
  const float sum = static_cast<float>(comm.size() * (comm.size() + 1) / 2);
  EXPECT_EQ(std::count(data.begin(), data.end(), sum), static_cast<long>(data.size()));
}

// ctest mpi/np2/StuckRankAbortsEveryRank: KILN_MN_TIMEOUT=2 and KILN_TEST_STUCK_RANK=1.
TEST(DistributedFailure, StuckRankAbortsEveryRank) {
  const char* stuck = std::getenv("KILN_TEST_STUCK_RANK");
  if (!stuck) GTEST_SKIP() << "run by ctest with KILN_TEST_STUCK_RANK set";
  D::Communicator comm = D::create_communicator("mpi");
  if (comm.rank() == std::atoi(stuck)) std::this_thread::sleep_for(std::chrono::seconds(40));
  comm.allreduce_obj(1.0);  // the other ranks wait here until KILN_MN_TIMEOUT
  ADD_FAILURE() << "rank " << comm.rank() << " was not aborted";
}

// ctest mpi/np2/DeadRankEndsTheJob: KILN_TEST_DEAD_RANK=1 exits without MPI_Finalize.
TEST(DistributedFailure, DeadRankEndsTheJob) {
  const char* dead = std::getenv("KILN_TEST_DEAD_RANK");
  if (!dead) GTEST_SKIP() << "run by ctest with KILN_TEST_DEAD_RANK set";
  D::Communicator comm = D::create_communicator("mpi");
  if (comm.rank() == std::atoi(dead)) std::_Exit(3);
  for (int i = 0; i < 100; ++i) comm.allreduce_obj(1.0);
}

// Without mpirun: one process, and the errors of bad names and of NCCL here.
TEST(DistributedSingle, WithoutMpirunIsOneProcess) {
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) GTEST_SKIP() << "started by mpirun";
  D::Communicator comm = D::create_communicator();
  EXPECT_EQ(comm.size(), 1);
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.name(), "single");
  EXPECT_DOUBLE_EQ(comm.allreduce_obj(2.5), 2.5);
  L::Linear l(2, 2);
  l.W.set_grad(Array::full({2, 2}, 3.0));
  comm.allreduce_grad(l);
  EXPECT_EQ(l.W.grad().to_vector<float>(), std::vector<float>(4, 3.0f));
}

TEST(DistributedSingle, BadCommunicatorNamesAndNcclWithoutGpu) {
  std::string e = error_of([] { D::create_communicator("gloo"); });
  EXPECT_NE(e.find("create_communicator: communicator_name: expected \"mpi\", \"nccl\" or \"pure_nccl\", got "
                   "\"gloo\""), std::string::npos) << e;
  for (const char* name : {"nccl", "pure_nccl"}) {
    e = error_of([&] { D::create_communicator(name); });
    EXPECT_NE(e.find(fmt::format("create_communicator(\"{}\")", name)), std::string::npos) << e;
    if (cuda_driver::device_count() == 0) EXPECT_NE(e.find("needs a CUDA GPU"), std::string::npos) << e;
    ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
    e = error_of([&] { D::create_communicator(name); });
    EXPECT_NE(e.find("needs a CUDA GPU: KILN_CUDA_EMULATE=1 (the SIMT emulator is no GPU)"), std::string::npos) << e;
  }
}

TEST(DistributedSingle, HooksBeforeWrappingAreRefused) {
  optimizers::SGD sgd;
  sgd.add_hook(optimizer_hooks::GradientClipping(1.0));
  D::Communicator comm = D::create_communicator();
  std::string e = error_of([&] { D::create_multi_node_optimizer(sgd, comm); });
  EXPECT_NE(e.find("create_multi_node_optimizer: optimizer: expected no hooks yet, got 'GradientClipping'"),
            std::string::npos) << e;
  EXPECT_THROW(comm.set_bucket_bytes(0), Error);
}

#if KILN_TEST_FAKE_GPU
// ---- "nccl" and "pure_nccl" on the fake GPU (test/fake-gpu/fake_gpu.h: 2 devices whose memory
// is host memory) with the fake libnccl (fake_nccl.cpp over MPI, named by KILN_NCCL_LIBRARY) ----

// A function of the fake libnccl kiln loaded (the same path, already open), or null before.
template <typename Fn>
Fn* fake_nccl_function(const char* name) {
  const char* path = std::getenv("KILN_NCCL_LIBRARY");
  void* lib = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : nullptr;
  if (!lib) return nullptr;
  auto* fn = reinterpret_cast<Fn*>(dlsym(lib, name));
  dlclose(lib);  // kiln's handle keeps it loaded
  return fn;
}

struct NcclCounts {
  long allreduces = 0, broadcasts = 0, inits = 0;
};
// The fake libnccl's call counts.
NcclCounts nccl_counts() {
  NcclCounts c;
  if (auto* counts = fake_nccl_function<void(long*, long*, long*)>("kiln_fake_nccl_counts"))
    counts(&c.allreduces, &c.broadcasts, &c.inits);
  return c;
}

// The fake GPU whose stream's pending work is the fake libnccl's collectives: cuStreamQuery
// reports CUDA_ERROR_NOT_READY until they are complete.
struct NcclGpu : FakeGpu {
  NcclGpu() {
    (**this).stream_work = [](bool wait) {
      auto* work = fake_nccl_function<int(int)>("kiln_fake_nccl_stream_work");
      return !work || work(wait ? 1 : 0) != 0;
    };
  }
};

// Each rank trains on its GPU (intra_rank()) through the cuda backend, the gradients of each
// bucket summed by ncclAllReduce on kiln's stream and rank 0's parameters broadcast by
// ncclBroadcast; the parameters end as those of one process with the whole batch (on the cpu).
void expect_nccl_matches_whole_batch(const char* name, bool adam) {
  NcclGpu gpu;
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  const long inits = nccl_counts().inits;
  D::Communicator comm = D::create_communicator(name);
  ASSERT_GT(comm.size(), 1) << "run under mpirun";
  EXPECT_EQ(comm.name(), name);
  EXPECT_EQ(nccl_counts().inits, inits + 1);  // ncclCommInitRank with rank 0's id
  const NcclCounts before = nccl_counts();
  // MLP's gradients: {l2/b, l2/W, l1/b} and {l1/W}; its parameters: {l1/W}, {l1/b, l2/W, l2/b}.
  comm.set_bucket_bytes(512);
  const Device device = Device::cuda(comm.intra_rank());
  if (adam)
    expect_data_parallel_matches_whole_batch<optimizers::Adam>(comm, nullptr, device);
  else
    expect_data_parallel_matches_whole_batch<optimizers::SGD>(comm, nullptr, device);
  const NcclCounts after = nccl_counts();
  const bool pure = std::string(name) == "pure_nccl";
  // 5 steps of 2 buckets each in NCCL; "nccl" sends the model checks (one allreduce at each
  // allreduce_grad and bcast_data) and which ranks have a gradient (one) over MPI, "pure_nccl"
  // sends them through NCCL too.
  EXPECT_EQ(after.allreduces - before.allreduces, 5 * (pure ? 4 : 2) + (pure ? 1 : 0));
  EXPECT_EQ(after.broadcasts - before.broadcasts, 2);  // bcast_data's 2 buckets at the first update
  // Small objects: over MPI for "nccl", through NCCL (staged in GPU memory) for "pure_nccl".
  EXPECT_DOUBLE_EQ(comm.allreduce_obj(1.5), 1.5 * comm.size());
  EXPECT_EQ(comm.bcast_obj(std::string(comm.rank() == 0 ? "from rank 0" : "other")), "from rank 0");
  comm.barrier();
  // allreduce_obj and the barrier; the string's size and bytes.
  EXPECT_EQ(nccl_counts().allreduces - after.allreduces, pure ? 2 : 0);
  EXPECT_EQ(nccl_counts().broadcasts - after.broadcasts, pure ? 2 : 0);
}

TEST(DistributedNccl, SgdOnGpusMatchesOneProcessWithTheWholeBatch) { expect_nccl_matches_whole_batch("nccl", false); }
TEST(DistributedNccl, AdamOnGpusMatchesOneProcessWithTheWholeBatch) { expect_nccl_matches_whole_batch("nccl", true); }
TEST(DistributedNccl, PureNcclMatchesOneProcessWithTheWholeBatch) {
  expect_nccl_matches_whole_batch("pure_nccl", false);
}

// On a GPU the step's graph starts each bucket's NCCL allreduce itself, between the CUDA graphs
// of its segments: the communicator's events show every bucket started from inside the graph,
// in bucket order, and the fake GPU's clock (kernels run so far, read by the fake libnccl at
// each ncclAllReduce) shows each bucket enqueued while backward kernels were still to run:
// bucket 0 ({l3/b, l3/W, l2/b}) before the kernels of l2/W's and l1/b's gradients, bucket 1
// before l1/W's, the last one; each on the communicator's own stream, after an event of
// kiln's. The parameters are still those of one process with the whole batch. With
// KILN_MN_OVERLAP=0 every bucket starts after the graph.
TEST(DistributedNccl, BucketsStartInsideTheCompiledBackwardOnGpus) {
  NcclGpu gpu;
  if (!haveNvrtc()) GTEST_SKIP() << "no NVRTC here";
  D::Communicator comm = D::create_communicator("nccl");
  ASSERT_GT(comm.size(), 1) << "run under mpirun";
  auto* set_clock = fake_nccl_function<void(long (*)())>("kiln_fake_nccl_set_clock");
  auto* clocks = fake_nccl_function<long(long*, long)>("kiln_fake_nccl_allreduce_clocks");
  ASSERT_TRUE(set_clock && clocks) << "the fake libnccl's clock";
  using Event = D::detail::CommunicatorImpl::Event;
  std::vector<std::pair<Event, size_t>> events;
  struct Recording {  // the clock and the events, also when an assertion ends the test early
    D::Communicator& comm;
    void (*set_clock)(long (*)());
    ~Recording() {
      set_clock(nullptr);
      comm.impl().events = nullptr;
    }
  } recording{comm, set_clock};
  set_clock([] { return fake ? fake->kernels_run : -1L; });
  comm.impl().events = &events;
  comm.set_bucket_bytes(1088);
  expect_data_parallel_matches_whole_batch<optimizers::MomentumSGD, MLP3>(comm, nullptr,
                                                                          Device::cuda(comm.intra_rank()));
  const size_t steps = 5, buckets = 3;
  ASSERT_EQ(events.size(), steps * (buckets + 1));
  std::vector<long> at(steps * buckets + 1);
  ASSERT_EQ(clocks(at.data(), static_cast<long>(at.size())), static_cast<long>(steps * buckets))
      << "\"nccl\" reduces only the buckets through NCCL";
  for (size_t s = 0; s < steps; ++s) {
    const auto* step = &events[s * (buckets + 1)];
    for (size_t b = 0; b < buckets; ++b)
      EXPECT_EQ(step[b], std::make_pair(Event::bucket_started_in_graph, b)) << "step " << s << ", bucket " << b;
    EXPECT_EQ(step[buckets].first, Event::graph_returned) << "step " << s;
    const long* t = &at[s * buckets];
    EXPECT_LT(t[0] + 1, t[1]) << "step " << s << ": kernels of l2/W's and l1/b's gradients after bucket 0 started";
    EXPECT_LT(t[1], t[2]) << "step " << s << ": l1/W's gradient after bucket 1 started";
  }
  // Every NCCL collective (the buckets, bcast_data's) waited on its stream for kiln's.
  EXPECT_GE(gpu->stream_waits, static_cast<int>(steps * buckets) + 1);
  EXPECT_EQ(gpu->event_records, gpu->stream_waits);
  EXPECT_NE(gpu->last_waiting, cuda_driver::stream(comm.intra_rank())) << "NCCL's stream is not kiln's";
  // Off: one step of a second model, every bucket started after the graph returned.
  ScopedEnv off("KILN_MN_OVERLAP", "0");
  events.clear();
  set_random_seed(0);
  L::Classifier<MLP3> model;
  model.to_device(Device::cuda(comm.intra_rank()));
  optimizers::MomentumSGD opt;
  D::create_multi_node_optimizer(opt, comm).setup(model);
  const int64_t per_rank = kBatch / comm.size();
  train(opt, model, 1, comm.rank() * per_rank, (comm.rank() + 1) * per_rank, Device::cuda(comm.intra_rank()));
  ASSERT_EQ(events.size(), buckets + 1);
  EXPECT_EQ(events[0].first, Event::graph_returned);
  for (size_t b = 0; b < buckets; ++b)
    EXPECT_EQ(events[b + 1], std::make_pair(Event::bucket_started_after_graph, b)) << "bucket " << b;
}

// A model on a GPU with the "mpi" communicator (host memory only), and a rank whose machine
// has no GPU left for it (-np 3 on the fake's 2): clear errors on every rank.
TEST(DistributedNccl, HostCommunicatorsAndRanksWithoutAGpuAreRefused) {
  NcclGpu gpu;
  D::Communicator mpi = D::create_communicator("mpi");
  ASSERT_GT(mpi.size(), 1) << "run under mpirun";
  L::Linear lin(2, 2);
  lin.to_device(Device::cuda(0));
  lin.W.set_grad(Array::ones({2, 2}).to(Device::cuda(0)));
  std::string e = error_of([&] { mpi.allreduce_grad(lin); });
  EXPECT_NE(e.find("allreduce_grad: the model's parameters are on @cuda:0, but the \"mpi\" communicator moves host "
                   "memory only: use create_communicator(\"nccl\")"), std::string::npos) << e;
  e = error_of([&] { mpi.bcast_data(lin); });
  EXPECT_NE(e.find("bcast_data: the model's parameters are on @cuda:0"), std::string::npos) << e;
  if (mpi.intra_size() <= cuda_driver::device_count()) return;
  e = error_of([] { D::create_communicator("nccl"); });
  if (mpi.intra_rank() >= cuda_driver::device_count())
    EXPECT_NE(e.find(fmt::format("create_communicator(\"nccl\"): rank {} drives GPU intra_rank() = {} of its "
                                 "machine, which has 2 GPU(s)", mpi.rank(), mpi.intra_rank())), std::string::npos) << e;
  else
    EXPECT_NE(e.find("create_communicator(\"nccl\"): another rank has no GPU of its own"), std::string::npos) << e;
  EXPECT_DOUBLE_EQ(mpi.allreduce_obj(1.0), mpi.size());  // still in step
}

// ctest mpi/np2/nccl/StuckRankAbortsEveryRank (KILN_MN_TIMEOUT=2, KILN_TEST_STUCK_RANK=1):
// rank 0's NCCL collective stays queued on its stream; past the deadline it aborts the job.
TEST(DistributedNccl, StuckRankAbortsEveryRank) {
  const char* stuck = std::getenv("KILN_TEST_STUCK_RANK");
  if (!stuck) GTEST_SKIP() << "run by ctest with KILN_TEST_STUCK_RANK set";
  NcclGpu gpu;
  D::Communicator comm = D::create_communicator("pure_nccl");
  if (comm.rank() == std::atoi(stuck)) std::this_thread::sleep_for(std::chrono::seconds(40));
  comm.allreduce_obj(1.0);  // through NCCL: the other ranks wait here until KILN_MN_TIMEOUT
  ADD_FAILURE() << "rank " << comm.rank() << " was not aborted";
}

// ctest mpi/np2/nccl/StuckInitAbortsEveryRank (KILN_MN_TIMEOUT=2, KILN_FAKE_NCCL_STUCK_INIT=1):
// rank 1's NCCL setup never starts, so rank 0's nonblocking ncclCommInitRankConfig never
// completes either; each polls it until the deadline, then the job is aborted with the message.
TEST(DistributedNccl, StuckInitAbortsEveryRank) {
  if (!std::getenv("KILN_FAKE_NCCL_STUCK_INIT")) GTEST_SKIP() << "run by ctest with KILN_FAKE_NCCL_STUCK_INIT set";
  NcclGpu gpu;
  const auto start = std::chrono::steady_clock::now();
  D::Communicator comm = D::create_communicator("nccl");
  ADD_FAILURE() << "rank " << comm.rank() << " was not aborted after "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s";
}

// Without mpirun: a GPU and a libnccl make a communicator of size 1; a library that cannot be
// loaded or lacks NCCL's entry points is a clear error naming it.
TEST(DistributedNcclSingle, LibncclIsFoundOrNamedInTheError) {
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) GTEST_SKIP() << "started by mpirun";
  NcclGpu gpu;
  ASSERT_NE(std::getenv("KILN_NCCL_LIBRARY"), nullptr) << "ctest names the fake libnccl";
  for (const char* name : {"nccl", "pure_nccl"}) {
    D::Communicator comm = D::create_communicator(name);
    EXPECT_EQ(comm.size(), 1);
    EXPECT_EQ(comm.name(), name);
    L::Linear l(2, 2);
    l.to_device(Device::cuda(0));
    l.W.set_grad(Array::full({2, 2}, 3.0).to(Device::cuda(0)));
    comm.allreduce_grad(l);
    EXPECT_EQ(l.W.grad().to_vector<float>(), std::vector<float>(4, 3.0f));
  }
  {
    ScopedEnv missing("KILN_NCCL_LIBRARY", "/nonexistent/libnccl.so.2");
    std::string e = error_of([] { D::create_communicator("nccl"); });
    EXPECT_NE(e.find("create_communicator(\"nccl\"): libnccl.so.2 cannot be loaded (/nonexistent/libnccl.so.2: "),
              std::string::npos) << e;
    EXPECT_NE(e.find("KILN_NCCL_LIBRARY"), std::string::npos) << e;
  }
  ScopedEnv other("KILN_NCCL_LIBRARY", "libm.so.6");
  std::string e = error_of([] { D::create_communicator("pure_nccl"); });
  EXPECT_NE(e.find("create_communicator(\"pure_nccl\"): the loaded libnccl lacks ncclGetVersion, ncclGetUniqueId"),
            std::string::npos) << e;
}
#endif  // KILN_TEST_FAKE_GPU

}  // namespace
