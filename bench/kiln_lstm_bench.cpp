// kiln's side of the LSTM language-model benchmark (Chainer's examples/ptb): one truncated-BPTT
// update of RNNForLM (EmbedID 10000 x 650, dropout 0.5, two stateful L::LSTM(650, 650) with
// dropout between, Linear 650 -> 10000), batch 20, 35 steps unrolled, softmax cross entropy
// summed over the steps, backward, loss.unchain_backward(), SGD (lr 1) with GradientClipping(5).
// The first update (no LSTM state yet) and the second (with state) are two graphs that compile;
// later updates hit the cache. Prints each phase on stderr as it ends, then one line:
//   compile_s=<first update, s> compile2_s=<second update, s> step_ms=<mean of the steady updates>
//   kiln_lstm_bench [STEADY_UPDATES (default 3)] [UNITS (650)] [VOCAB (10000)] [BPROPLEN (35)] [BATCH (20)]
#include <kiln/kiln.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

using namespace kiln;

namespace {

// Chainer's RNNForLM draws every parameter from U(-0.1, 0.1).
Parameter::Initializer uniform(double scale, uint64_t seed) {
  return [scale, seed](const Shape& shape, DType dtype) {
    std::mt19937_64 generator(seed + static_cast<uint64_t>(shape_size(shape)));
    std::uniform_real_distribution<double> u(-scale, scale);
    std::vector<float> v(static_cast<size_t>(shape_size(shape)));
    for (float& x : v) x = static_cast<float>(u(generator));
    return Array::from(v, shape).astype(dtype);
  };
}

struct RNNForLM : Chain {
  L::EmbedID embed;
  L::LSTM l1, l2;
  L::Linear l3;
  RNNForLM(int64_t n_vocab, int64_t n_units)
      : embed(n_vocab, n_units, uniform(0.1, 1)),
        l1(n_units, n_units, uniform(0.1, 2), uniform(0.1, 3)),
        l2(n_units, n_units, uniform(0.1, 4), uniform(0.1, 5)),
        l3(n_units, n_vocab, false, uniform(0.1, 6), uniform(0.1, 7)) {
    add_link("embed", embed);
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) {
    Variable h1 = l1(F::dropout(embed(x)));
    Variable h2 = l2(F::dropout(h1));
    return l3(F::dropout(h2));
  }
};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  int steady = argc > 1 ? std::atoi(argv[1]) : 3;
  int64_t units = argc > 2 ? std::atoll(argv[2]) : 650, vocab = argc > 3 ? std::atoll(argv[3]) : 10000;
  int bprop_len = argc > 4 ? std::atoi(argv[4]) : 35;
  int64_t batch = argc > 5 ? std::atoll(argv[5]) : 20;
  RNNForLM model(vocab, units);
  optimizers::SGD optimizer(1.0);
  optimizer.setup(model);
  optimizer.add_hook(optimizer_hooks::GradientClipping(5.0));
  std::mt19937 words(0);
  std::uniform_int_distribution<int32_t> word(0, static_cast<int32_t>(vocab - 1));
  auto ids = [&] {
    std::vector<int32_t> v(static_cast<size_t>(batch));
    for (int32_t& w : v) w = word(words);
    return Array::from(v, {batch});
  };
  Array current = ids();
  auto update = [&] {
    Variable loss;
    for (int i = 0; i < bprop_len; ++i) {
      Array next = ids();
      Variable step = F::softmax_cross_entropy(model(Variable(current, false)), Variable(next, false));
      loss = loss.is_null() ? step : loss + step;
      current = next;
    }
    model.cleargrads();
    loss.backward();
    loss.unchain_backward();
    optimizer.update();
    return loss.array().item<float>();
  };
  // Each phase is printed as it ends (the compiles take minutes).
  auto t0 = std::chrono::steady_clock::now();
  update();
  double first = seconds_since(t0);
  std::fprintf(stderr, "kiln_lstm_bench: first update (compiles the graph without state) %.1f s\n", first);
  t0 = std::chrono::steady_clock::now();
  update();
  double second = seconds_since(t0);
  std::fprintf(stderr, "kiln_lstm_bench: second update (compiles the graph with state) %.1f s\n", second);
  int64_t misses = cache_stats().misses;
  t0 = std::chrono::steady_clock::now();
  float loss = 0;
  for (int i = 0; i < steady; ++i) loss = update();
  double step_ms = seconds_since(t0) * 1e3 / steady;
  if (cache_stats().misses != misses)
    std::fprintf(stderr, "kiln_lstm_bench: the steady updates compiled %lld graphs\n",
                 static_cast<long long>(cache_stats().misses - misses));
  std::printf("compile_s=%.2f compile2_s=%.2f step_ms=%.1f loss=%.3f compiled_graphs=%lld compile_seconds=%.2f\n",
              first, second, step_ms, loss, static_cast<long long>(cache_stats().misses), cache_stats().compile_seconds);
  return 0;
}
