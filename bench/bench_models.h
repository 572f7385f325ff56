// The models kiln's benchmarks train: kiln_bench on the CPU, gpu_bench on a GPU (and the
// same shapes as torch_mlp_bench / torch_step_bench.py / gpu_torch_bench.py), and the
// timing loop both use.
#pragma once

#include <kiln/kiln.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace kiln::bench {

// Mean seconds per call over at least `min_seconds` after one warm-up call; `sync` waits
// for the device (a copy of a result to the host) after the warm-up, every 16 calls and
// after the loop (nothing to wait for on the CPU).
inline double time_per_call(const std::function<void()>& f, const std::function<void()>& sync,
                            double min_seconds) {
  using Clock = std::chrono::steady_clock;
  f();
  sync();
  int64_t n = 0;
  auto start = Clock::now();
  do {
    f();
    ++n;
    if (n % 16 == 0) sync();
  } while (std::chrono::duration<double>(Clock::now() - start).count() < min_seconds);
  sync();
  return std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(n);
}
inline double time_per_call(const std::function<void()>& f, double min_seconds = 0.5) {
  return time_per_call(f, [] {}, min_seconds);
}

struct MLP : Chain {
  L::Linear l1, l2, l3;
  MLP(int64_t in = 784, int64_t hidden = 1000) : l1(in, hidden), l2(hidden, hidden), l3(hidden, 10) {
    add_link("l1", l1);
    add_link("l2", l2);
    add_link("l3", l3);
  }
  Variable operator()(const Variable& x) const { return l3(F::relu(l2(F::relu(l1(x))))); }
};

// The CIFAR-shaped CNN of issue 12 (and of torch_mlp_bench cnn).
struct CNN : Chain {
  L::Convolution2D c1{3, 32, 3, 1, 1}, c2{32, 64, 3, 1, 1};
  L::Linear fc{64 * 8 * 8, 10};
  CNN() { add_link("c1", c1); add_link("c2", c2); add_link("fc", fc); }
  Variable operator()(const Variable& x) const {
    Variable h = F::max_pooling_2d(F::relu(c1(x)), 2, 2);
    h = F::max_pooling_2d(F::relu(c2(h)), 2, 2);
    return fc(h);
  }
};

// Labels 0..9, cycling, for a batch of n.
inline Variable cyclic_labels(int64_t n) {
  std::vector<int32_t> labels(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(i % 10);
  return Variable(Array::from(labels, {n}), false);
}

}  // namespace kiln::bench
