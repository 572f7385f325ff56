// kiln::distributed benchmarks (not in ctest), run by bench/mn_bench.sh:
//   mn_bench steps [--threads T] [--steps S]  training steps/s of the MLP 784-1000-1000-10 at a
//       global batch of 128, split over the ranks (1 process x 2 threads vs 2 processes x 1 thread)
//   mn_bench allreduce [--iters N]  Communicator::allreduce_grad on a 10 MB gradient set (four
//       Linear layers, f32) against a bare MPI_Allreduce (MPI_SUM, in place) of the same bytes
// Prints one JSON line per measurement on rank 0.
#include <fmt/format.h>
#include <kiln/distributed.h>
#include <kiln/kiln.h>
#include <kiln/env.h>
#include <mpi.h>

#include <chrono>
#include <cstring>

using namespace kiln;
namespace D = kiln::distributed;
using Clock = std::chrono::steady_clock;

namespace {

struct MLP : Chain {
  L::Linear l1{784, 1000}, l2{1000, 1000}, l3{1000, 10};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::relu(l2(F::relu(l1(x))))); }
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int steps(D::Communicator& comm, int n_steps) {
  const int64_t global = 128, local = global / comm.size();
  L::Classifier<MLP> model;
  optimizers::MomentumSGD sgd(0.01);
  D::create_multi_node_optimizer(sgd, comm).setup(model);
  Array x = Array::randn({local, 784}, 1 + comm.rank());
  std::vector<int32_t> t(static_cast<size_t>(local));
  for (int64_t i = 0; i < local; ++i) t[size_t(i)] = int32_t((i + comm.rank()) % 10);
  Array ta = Array::from(t, {local});
  auto step = [&] {
    model.cleargrads();
    Variable loss = model(Variable(x, false), Variable(ta, false));
    loss.backward();
    sgd.update();
  };
  for (int i = 0; i < 3; ++i) step();  // compile and warm up
  comm.barrier();
  auto start = Clock::now();
  for (int i = 0; i < n_steps; ++i) step();
  comm.barrier();
  double s = seconds_since(start);
  if (comm.rank() == 0)
    fmt::print("{{\"bench\": \"mn_steps\", \"processes\": {}, \"threads\": {}, \"global_batch\": {}, "
               "\"steps_per_s\": {:.2f}, \"ms_per_step\": {:.2f}}}\n",
               comm.size(), env::num_threads(), global, n_steps / s, 1e3 * s / n_steps);
  return 0;
}

int allreduce(D::Communicator& comm, int iters) {
  Chain model;
  L::Linear a(1000, 1000), b(1000, 1000), c(1000, 500);  // 2.5M floats + biases: 10.0 MB
  model.add_link("a", a);
  model.add_link("b", b);
  model.add_link("c", c);
  auto params = model.params();
  size_t bytes = 0;
  for (auto& p : params) bytes += size_t(p.size()) * 4;
  auto set_grads = [&] {
    for (auto& p : params) p.set_grad(Array::full(p.shape(), 1.0 + comm.rank()));
  };
  set_grads();
  comm.allreduce_grad(model);  // warm up
  double kiln_s = 0;
  for (int i = 0; i < iters; ++i) {
    set_grads();  // not timed: new gradients each round
    comm.barrier();
    auto start = Clock::now();
    comm.allreduce_grad(model);
    kiln_s += seconds_since(start);
  }
  float want = (comm.size() + 1) / 2.0f;
  if (params[0].grad().to_vector<float>()[0] != want) {
    fmt::print(stderr, "mn_bench: wrong mean {} (want {})\n", params[0].grad().to_vector<float>()[0], want);
    return 1;
  }
  std::vector<float> buffer(bytes / 4, 1.0f);
  MPI_Allreduce(MPI_IN_PLACE, buffer.data(), int(buffer.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  double bare_s = 0;
  for (int i = 0; i < iters; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto start = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, buffer.data(), int(buffer.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    bare_s += seconds_since(start);
  }
  if (comm.rank() == 0)
    fmt::print("{{\"bench\": \"mn_allreduce\", \"processes\": {}, \"bytes\": {}, \"bucket_bytes\": {}, "
               "\"kiln_ms\": {:.3f}, \"bare_mpi_ms\": {:.3f}, \"kiln_GBps\": {:.3f}, \"bare_mpi_GBps\": {:.3f}, "
               "\"kiln_over_bare\": {:.3f}}}\n",
               comm.size(), bytes, comm.bucket_bytes(), 1e3 * kiln_s / iters, 1e3 * bare_s / iters,
               bytes / (kiln_s / iters) / 1e9, bytes / (bare_s / iters) / 1e9, kiln_s / bare_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "steps") && std::strcmp(argv[1], "allreduce"))) {
    fmt::print(stderr, "usage: {} steps [--steps S] | allreduce [--iters N]\n", argv[0]);
    return 2;
  }
  int n = std::strcmp(argv[1], "steps") ? 20 : 30;
  for (int i = 2; i + 1 < argc; i += 2)
    if (!std::strcmp(argv[i], "--steps") || !std::strcmp(argv[i], "--iters")) n = std::atoi(argv[i + 1]);
  try {
    D::Communicator comm = D::create_communicator("mpi");
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(nullptr, nullptr);  // a single process: bare MPI still measured
    return std::strcmp(argv[1], "steps") ? allreduce(comm, n) : steps(comm, n);
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}
