// train_digits on several processes (ChainerMN's train_mnist.py): each rank trains on its
// share of scikit-learn's digits (scatter_dataset) with the gradients averaged over the
// ranks every step, evaluates its share of the test split (the results averaged over the
// ranks), and rank 0 alone prints, logs and plots.
//   mpirun -np 2 build/bin/train_digits_mn [--epochs N] [--batch B] [--data digits.csv.gz]
//          [--out DIR] [--min-accuracy A] [--communicator mpi|nccl|pure_nccl]
// --batch is the batch of each rank (ChainerMN's convention): the global batch is B x ranks.
// With --communicator nccl or pure_nccl each rank trains on GPU intra_rank() of its machine
// (one rank per GPU: mpirun -np <GPUs per machine>), its batches moved there by the converter.
// Without mpirun it runs as one process. Exits 1 when the test accuracy is below A.
#include <kiln/distributed.h>
#include <kiln/kiln.h>

#include <cstring>

using namespace kiln;
namespace D = kiln::distributed;
namespace E = kiln::training::extensions;

struct MLP : Chain {
  L::Linear l1{100}, l2{100}, l3{10};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::relu(l2(F::relu(l1(x))))); }
};

int main(int argc, char** argv) {
  int epochs = 20;
  size_t batch_size = 16;
  double min_accuracy = 0;
  std::string data_path, out = "result_mn", communicator = "mpi";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch_size = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) data_path = argv[++i];
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--min-accuracy") && i + 1 < argc) min_accuracy = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--communicator") && i + 1 < argc) communicator = argv[++i];
    else {
      fmt::print(stderr,
                 "usage: {} [--epochs N] [--batch B] [--data digits.csv.gz] [--out DIR] [--min-accuracy A] "
                 "[--communicator mpi|nccl|pure_nccl]\n",
                 argv[0]);
      return 2;
    }
  }
  if (epochs <= 0 || batch_size == 0) {
    fmt::print(stderr, "error: --epochs and --batch must be positive\n");
    return 2;
  }
  try {
    D::Communicator comm = D::create_communicator(communicator);
    // "nccl" / "pure_nccl": this rank's GPU, for the model and (through the converter) its batches.
    const Device device = communicator == "mpi" ? Device::cpu() : Device::cuda(comm.intra_rank());
    training::Converter to_device = nullptr;  // concat_examples on the host
    if (!device.is_cpu())
      to_device = [device](const std::vector<std::vector<Array>>& batch) {
        return concat_examples(batch, device);
      };
    auto digits = datasets::load_digits(data_path);
    auto [train_all, test_all] = datasets::split_dataset_random(digits, digits->size() * 4 / 5, /*seed=*/0);
    auto train = D::scatter_dataset(train_all, comm, /*shuffle=*/true, /*seed=*/0);
    auto test = D::scatter_dataset(test_all, comm);
    if (comm.rank() == 0)
      fmt::print("digits: {} ranks ({} machine(s)), {} training and {} test examples per rank, {} on {}\n",
                 comm.size(), comm.inter_size(), train->size(), test->size(), comm.name(),
                 device.is_cpu() ? "backend " + backend_name() : device.to_string() + " of each machine");

    L::Classifier<MLP> model;
    model.to_device(device);
    optimizers::Adam adam;
    optimizers::Optimizer& opt = D::create_multi_node_optimizer(adam, comm);
    opt.setup(model);
    iterators::SerialIterator train_iter(train, batch_size);
    iterators::SerialIterator test_iter(test, 128, /*repeat=*/false, /*shuffle=*/false);

    training::StandardUpdater updater(train_iter, opt, model, to_device);
    training::Trainer trainer(updater, {epochs, "epoch"}, out);
    trainer.extend(D::create_multi_node_evaluator(E::Evaluator(test_iter, model, to_device), comm));
    if (comm.rank() == 0) {  // one log, one table, one set of plots
      trainer.extend(E::LogReport());
      trainer.extend(E::PlotReport({"main/loss", "validation/main/loss"}, "epoch", {1, "epoch"}, "loss.png"));
      trainer.extend(E::PrintReport({"epoch", "main/loss", "validation/main/loss", "main/accuracy",
                                     "validation/main/accuracy", "elapsed_time"}));
    }
    trainer.run();

    // The exact fraction of correct predictions over the whole test split, each rank
    // counting its own share (one batch each).
    iterators::SerialIterator whole(test, test->size(), /*repeat=*/false, /*shuffle=*/false);
    auto local = E::Evaluator(whole, model, to_device).evaluate();
    double accuracy = comm.allreduce_obj(local.at("validation/main/accuracy")) / comm.size();
    if (comm.rank() == 0) {
      fmt::print("{}\n", cache_stats().to_string());
      fmt::print("test accuracy: {:.4f}\n", accuracy);
    }
    if (accuracy < min_accuracy) {
      if (comm.rank() == 0) fmt::print(stderr, "error: test accuracy {:.4f} < --min-accuracy {}\n", accuracy, min_accuracy);
      return 1;
    }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
