// Trains an MLP (64-100-100-10) on scikit-learn's 8x8 digits with Adam; evaluates on a held-out split.
//   train_digits [--epochs N] [--batch B] [--data digits.csv.gz]
#include <kiln/kiln.h>

#include <chrono>
#include <cstring>

using namespace kiln;

struct MLP : Chain {
  L::Linear l1{100}, l2{100}, l3{10};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::relu(l2(F::relu(l1(x))))); }
};

// Mean accuracy of `model` over `data`, in train=false mode, batch by batch.
template <typename Model>
double evaluate(Model& model, const datasets::DatasetPtr& data, size_t batch_size) {
  auto no_train = using_config("train", false);
  iterators::SerialIterator it(data, batch_size, /*repeat=*/false, /*shuffle=*/false);
  double correct = 0;
  while (!it.exhausted()) {
    auto batch = concat_examples(it.next());
    Variable acc = F::accuracy(model.predictor(Variable(batch[0])), Variable(batch[1], false));
    correct += acc.item<double>() * static_cast<double>(batch[0].shape()[0]);
  }
  return correct / static_cast<double>(data->size());
}

int main(int argc, char** argv) {
  int epochs = 20;
  size_t batch_size = 64;
  std::string data_path;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch_size = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--data") && i + 1 < argc) data_path = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--epochs N] [--batch B] [--data digits.csv.gz]\n", argv[0]);
      return 2;
    }
  }
  try {
    auto digits = datasets::load_digits(data_path);
    auto [train, test] = datasets::split_dataset_random(digits, digits->size() * 4 / 5, /*seed=*/0);
    fmt::print("digits: {} training and {} test examples, backend {}\n", train->size(), test->size(),
               backend_name());

    L::Classifier<MLP> model;
    optimizers::Adam opt;
    opt.setup(model);
    iterators::SerialIterator it(train, batch_size);
    auto start = std::chrono::steady_clock::now();
    double loss_sum = 0, acc_sum = 0;
    int batches = 0;
    fmt::print("{:>5} {:>10} {:>10} {:>10} {:>8}\n", "epoch", "main/loss", "main/acc", "test/acc", "time");
    while (it.epoch < epochs) {
      auto batch = concat_examples(it.next());
      model.cleargrads();
      Variable loss = model(Variable(batch[0]), Variable(batch[1], false));
      loss.backward();
      opt.update();
      loss_sum += loss.item<double>();
      acc_sum += model.accuracy.item<double>();
      ++batches;
      if (it.is_new_epoch) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        fmt::print("{:>5} {:>10.4f} {:>10.4f} {:>10.4f} {:>7.1f}s\n", it.epoch, loss_sum / batches,
                   acc_sum / batches, evaluate(model, test, 128), secs);
        loss_sum = acc_sum = 0;
        batches = 0;
      }
    }
    fmt::print("{}\n", cache_stats().to_string());
    fmt::print("test accuracy: {:.4f}\n", evaluate(model, test, 128));
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
