// LibTorch's side of the LSTM language-model benchmark (Chainer's examples/ptb, as kiln_lstm_bench):
// Embedding 10000 x 650, dropout 0.5, torch::nn::LSTM(650, 650, 2 layers, dropout 0.5 between),
// dropout 0.5, Linear 650 -> 10000; batch 20, 35 steps (one LSTM call over the sequence), cross
// entropy summed over the steps (mean over the batch), backward, clip_grad_norm_(5), SGD lr 1,
// the state detached for the next window. Prints ms per update (mean of the steady updates).
//   torch_lstm_bench THREADS [STEADY_UPDATES (3)] [UNITS (650)] [VOCAB (10000)] [BPROPLEN (35)] [BATCH (20)]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int steady = argc > 2 ? std::atoi(argv[2]) : 3;
  int64_t units = argc > 3 ? std::atoll(argv[3]) : 650, vocab = argc > 4 ? std::atoll(argv[4]) : 10000;
  int64_t bprop_len = argc > 5 ? std::atoll(argv[5]) : 35, batch = argc > 6 ? std::atoll(argv[6]) : 20;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  namespace nn = torch::nn;
  nn::Embedding embed(vocab, units);
  nn::LSTM lstm(nn::LSTMOptions(units, units).num_layers(2).dropout(0.5));
  nn::Linear out(units, vocab);
  nn::Dropout dropout(0.5);
  std::vector<torch::Tensor> params;
  for (auto* m : std::vector<nn::Module*>{embed.get(), lstm.get(), out.get()})
    for (auto& p : m->parameters()) {
      torch::NoGradGuard guard;
      p.uniform_(-0.1, 0.1);
      params.push_back(p);
    }
  torch::optim::SGD opt(params, torch::optim::SGDOptions(1.0));
  auto h = torch::zeros({2, batch, units}), c = torch::zeros({2, batch, units});
  auto update = [&] {
    auto words = torch::randint(0, vocab, {bprop_len + 1, batch}, torch::kLong);
    auto x = words.slice(0, 0, bprop_len), t = words.slice(0, 1, bprop_len + 1);
    opt.zero_grad();
    auto [y, state] = lstm->forward(dropout(embed(x)), std::make_tuple(h, c));
    auto logits = out(dropout(y)).reshape({bprop_len * batch, vocab});
    auto loss = torch::nn::functional::cross_entropy(logits, t.reshape({bprop_len * batch})) *
                static_cast<double>(bprop_len);
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, 5.0);
    opt.step();
    h = std::get<0>(state).detach();
    c = std::get<1>(state).detach();
    return loss.item<float>();
  };
  for (int i = 0; i < 2; ++i) update();
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steady; ++i) update();
  std::printf("%.1f\n", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / steady);
  return 0;
}
