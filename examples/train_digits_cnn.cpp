// Trains a small CNN on scikit-learn's 8x8 digits, reshaped to (N, 1, 8, 8), with kiln's Trainer:
// Convolution2D -> BatchNormalization -> relu -> max_pooling_2d -> Linear -> relu -> Linear.
//   train_digits_cnn [--epochs N] [--batch B] [--data digits.csv.gz] [--out DIR]
#include <kiln/kiln.h>

#include <cstring>

using namespace kiln;
namespace E = kiln::training::extensions;

struct CNN : Chain {
  L::Convolution2D conv1{1, 16, 3, /*stride=*/1, /*pad=*/1};
  L::BatchNormalization bn1{16};
  L::Linear fc1{64}, fc2{10};
  CNN() {
    add_link("conv1", conv1);
    add_link("bn1", bn1);
    add_link("fc1", fc1);
    add_link("fc2", fc2);
  }
  Variable operator()(const Variable& x) const {
    Variable h = F::max_pooling_2d(F::relu(bn1(conv1(x))), 2);  // (N, 16, 4, 4)
    return fc2(F::relu(fc1(h)));
  }
};

int main(int argc, char** argv) {
  int epochs = 15;
  size_t batch_size = 64;
  std::string data_path, out = "result_cnn";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch_size = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) data_path = argv[++i];
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--epochs N] [--batch B] [--data digits.csv.gz] [--out DIR]\n", argv[0]);
      return 2;
    }
  }
  if (epochs <= 0 || batch_size == 0) {
    fmt::print(stderr, "error: --epochs and --batch must be positive\n");
    return 2;
  }
  try {
    auto flat = datasets::load_digits(data_path);
    const Array& x = flat->arrays()[0];
    auto images = std::make_shared<datasets::TupleDataset>(
        std::vector<Array>{x.reshape({x.shape()[0], 1, 8, 8}), flat->arrays()[1]});
    auto [train, test] = datasets::split_dataset_random(images, images->size() * 4 / 5, /*seed=*/0);
    fmt::print("digits (N, 1, 8, 8): {} training and {} test examples, backend {}\n", train->size(), test->size(),
               backend_name());

    L::Classifier<CNN> model;
    optimizers::Adam opt;
    opt.setup(model);
    iterators::SerialIterator train_iter(train, batch_size);
    iterators::SerialIterator test_iter(test, 128, /*repeat=*/false, /*shuffle=*/false);
    training::StandardUpdater updater(train_iter, opt, model);
    training::Trainer trainer(updater, {epochs, "epoch"}, out);
    trainer.extend(E::Evaluator(test_iter, model));
    trainer.extend(E::LogReport());
    trainer.extend(E::PrintReport({"epoch", "main/loss", "validation/main/loss", "main/accuracy",
                                   "validation/main/accuracy", "elapsed_time"}));
    trainer.extend(E::ProgressBar(std::nullopt, /*update_interval=*/10));
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
