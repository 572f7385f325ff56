// Trains an MLP (784-1000-1000-10) on MNIST with kiln's Trainer, like Chainer's train_mnist.py.
//   train_mnist --data DIR [--epochs N] [--batch B] [--unit U] [--out DIR] [--resume SNAPSHOT]
// DIR holds the four MNIST idx files (gzipped or not):
//   train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz
#include <kiln/kiln.h>

#include <cstring>
#include <filesystem>

using namespace kiln;
namespace E = kiln::training::extensions;

struct MLP : Chain {
  L::Linear l1, l2, l3;
  explicit MLP(int64_t n_units = 1000) : l1(n_units), l2(n_units), l3(10) {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::relu(l2(F::relu(l1(x))))); }
};

static const char* kFiles[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                               "t10k-labels-idx1-ubyte"};

static void print_how_to_get(const std::string& dir) {
  fmt::print(stderr,
             "train_mnist: the MNIST files are not in '{}'.\n"
             "Download them (for example from https://storage.googleapis.com/cvdf-datasets/mnist/ or\n"
             "http://yann.lecun.com/exdb/mnist/) into that folder:\n"
             "  mkdir -p {} && cd {}\n",
             dir, dir, dir);
  for (const char* f : kFiles)
    fmt::print(stderr, "  curl -O https://storage.googleapis.com/cvdf-datasets/mnist/{}.gz\n", f);
  fmt::print(stderr, "then run: train_mnist --data {}\n", dir);
}

static bool has_mnist(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* f : kFiles) {
    std::string base = dir + "/" + f;
    if (!fs::exists(base + ".gz") && !fs::exists(base)) return false;
  }
  return true;
}

int main(int argc, char** argv) {
  int epochs = 20;
  size_t batch_size = 100;
  int64_t units = 1000;
  std::string data_dir, out = "result_mnist", resume;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch_size = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--unit") && i + 1 < argc) units = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) data_dir = argv[++i];
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
    else {
      fmt::print(stderr, "usage: {} --data DIR [--epochs N] [--batch B] [--unit U] [--out DIR] [--resume SNAPSHOT]\n",
                 argv[0]);
      return 2;
    }
  }
  if (data_dir.empty()) {
    fmt::print(stderr, "usage: {} --data DIR [--epochs N] [--batch B] [--unit U] [--out DIR]\n", argv[0]);
    print_how_to_get("DIR");
    return 1;
  }
  if (epochs <= 0 || batch_size == 0 || units <= 0) {
    fmt::print(stderr, "error: --epochs, --batch and --unit must be positive\n");
    return 2;
  }
  if (!has_mnist(data_dir)) {
    print_how_to_get(data_dir);
    return 1;
  }
  try {
    auto train = datasets::load_mnist(data_dir, /*train=*/true);
    auto test = datasets::load_mnist(data_dir, /*train=*/false);
    fmt::print("MNIST: {} training and {} test examples, {} units, backend {}\n", train->size(), test->size(), units,
               backend_name());

    L::Classifier<MLP> model{MLP(units)};
    optimizers::Adam opt;
    opt.setup(model);
    iterators::SerialIterator train_iter(train, batch_size);
    iterators::SerialIterator test_iter(test, batch_size, /*repeat=*/false, /*shuffle=*/false);
    training::StandardUpdater updater(train_iter, opt, model);
    training::Trainer trainer(updater, {epochs, "epoch"}, out);
    trainer.extend(E::Evaluator(test_iter, model));
    trainer.extend(E::snapshot(), {1, "epoch"});
    trainer.extend(E::LogReport());
    trainer.extend(E::PlotReport({"main/loss", "validation/main/loss"}, "epoch", {1, "epoch"}, "loss.png"));
    trainer.extend(E::PlotReport({"main/accuracy", "validation/main/accuracy"}, "epoch", {1, "epoch"},
                                 "accuracy.png"));
    trainer.extend(E::PrintReport({"epoch", "main/loss", "validation/main/loss", "main/accuracy",
                                   "validation/main/accuracy", "elapsed_time"}));
    trainer.extend(E::ProgressBar());
    if (!resume.empty()) training::load_snapshot(resume, trainer);
    trainer.run();

    fmt::print("{}\n", cache_stats().to_string());
    // The exact fraction of correct test predictions (one batch: no mean of batch means).
    iterators::SerialIterator whole_test(test, test->size(), /*repeat=*/false, /*shuffle=*/false);
    auto result = E::Evaluator(whole_test, model).evaluate();
    fmt::print("test accuracy: {:.4f}\n", result.at("validation/main/accuracy"));
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
