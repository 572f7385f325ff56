// LibTorch peer: one SGD training step, f32. Prints ms/step.
//   torch_mlp_bench THREADS [mlp|digits|cnn]
//   mlp: MLP 784-1000-1000-10, batch 128; digits: MLP 64-256-256-10, batch 64; cnn: the CIFAR-shaped CNN of kiln_bench (batch 64,
//   3x32x32: conv3x3 32 pad 1 + relu + maxpool 2, conv3x3 64 pad 1 + relu + maxpool 2, linear 10).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  bool cnn = argc > 2 && std::string(argv[2]) == "cnn";
  if (cnn) {
    namespace nn = torch::nn;
    nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Flatten(), nn::Linear(64 * 8 * 8, 10));
    torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.01));
    auto x = torch::randn({64, 3, 32, 32});
    auto t = torch::randint(0, 10, {64}, torch::kLong);
    auto step = [&] {
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(net->forward(x), t);
      loss.backward();
      opt.step();
      return loss.item<float>();
    };
    for (int i = 0; i < 3; ++i) step();
    int n = 10;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) step();
    std::printf("%.4f\n", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / n);
    return 0;
  }
  bool digits = argc > 2 && std::string(argv[2]) == "digits";
  int64_t in = digits ? 64 : 784, hidden = digits ? 256 : 1000, batch = digits ? 64 : 128;
  torch::nn::Sequential mlp(torch::nn::Linear(in, hidden), torch::nn::ReLU(), torch::nn::Linear(hidden, hidden),
                            torch::nn::ReLU(), torch::nn::Linear(hidden, 10));
  torch::optim::SGD opt(mlp->parameters(), torch::optim::SGDOptions(0.01));
  auto x = torch::randn({batch, in});
  auto t = torch::randint(0, 10, {batch}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(mlp->forward(x), t);
    loss.backward();
    opt.step();
    return loss.item<float>();
  };
  for (int i = 0; i < 5; ++i) step();
  int n = digits ? 2000 : 30;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) step();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / n;
  std::printf("%.4f\n", ms);
  return 0;
}
