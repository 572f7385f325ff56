// Trains an MLP (64-100-100-10) on scikit-learn's 8x8 digits with Adam and kiln's Trainer,
// evaluating on a held-out 20% split every epoch (like Chainer's train_mnist.py).
//   train_digits [--epochs N] [--batch B] [--data digits.csv.gz] [--out DIR] [--resume SNAPSHOT]
// Writes DIR/log (JSON), DIR/loss.png, DIR/accuracy.png and DIR/snapshot_iter_N (default DIR: result).
#include <kiln/kiln.h>

#include <cstring>

using namespace kiln;
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
  size_t batch_size = 32;
  std::string data_path, out = "result", resume;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch_size = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) data_path = argv[++i];
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--resume") && i + 1 < argc) resume = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--epochs N] [--batch B] [--data digits.csv.gz] [--out DIR] [--resume SNAPSHOT]\n",
                 argv[0]);
      return 2;
    }
  }
  if (epochs <= 0 || batch_size == 0) {
    fmt::print(stderr, "error: --epochs and --batch must be positive\n");
    return 2;
  }
  try {
    auto digits = datasets::load_digits(data_path);
    auto [train, test] = datasets::split_dataset_random(digits, digits->size() * 4 / 5, /*seed=*/0);
    fmt::print("digits: {} training and {} test examples, backend {}\n", train->size(), test->size(),
               backend_name());

    L::Classifier<MLP> model;
    optimizers::Adam opt;
    opt.setup(model);
    iterators::SerialIterator train_iter(train, batch_size);
    iterators::SerialIterator test_iter(test, 128, /*repeat=*/false, /*shuffle=*/false);

    training::StandardUpdater updater(train_iter, opt, model);
    training::Trainer trainer(updater, {epochs, "epoch"}, out);
    trainer.extend(E::Evaluator(test_iter, model));
    trainer.extend(E::LogReport());
    trainer.extend(E::snapshot(), {5, "epoch"});
    trainer.extend(E::PlotReport({"main/loss", "validation/main/loss"}, "epoch", {1, "epoch"}, "loss.png"));
    trainer.extend(E::PlotReport({"main/accuracy", "validation/main/accuracy"}, "epoch", {1, "epoch"},
                                 "accuracy.png"));
    trainer.extend(E::PrintReport({"epoch", "main/loss", "validation/main/loss", "main/accuracy",
                                   "validation/main/accuracy", "elapsed_time"}));
    trainer.extend(E::ProgressBar(std::nullopt, /*update_interval=*/10));
    if (!resume.empty()) {
      training::load_snapshot(resume, trainer);
      fmt::print("resumed from {} at iteration {}\n", resume, trainer.updater().iteration());
    }
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
