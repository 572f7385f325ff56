// LibTorch peer: one SGD training step of an MLP 784-1000-1000-10, batch 128, f32. Prints ms/step.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  torch::nn::Sequential mlp(torch::nn::Linear(784, 1000), torch::nn::ReLU(), torch::nn::Linear(1000, 1000),
                            torch::nn::ReLU(), torch::nn::Linear(1000, 10));
  torch::optim::SGD opt(mlp->parameters(), torch::optim::SGDOptions(0.01));
  auto x = torch::randn({128, 784});
  auto t = torch::randint(0, 10, {128}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(mlp->forward(x), t);
    loss.backward();
    opt.step();
    return loss.item<float>();
  };
  for (int i = 0; i < 5; ++i) step();
  int n = 30;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) step();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / n;
  std::printf("%.4f\n", ms);
  return 0;
}
