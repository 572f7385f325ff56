// kiln's benchmarks next to peers measured in the same run: OpenBLAS sgemm, a triad loop, LibTorch's MLP step.
//   kiln_bench [OUT.json]   (bench/run.sh sets threads and passes LibTorch's ms/step in KILN_BENCH_TORCH_MS)
#include <cblas.h>
#include <kiln/env.h>
#include <kiln/kiln.h>
#include <unistd.h>

#include "bench_models.h"

#include <chrono>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

using namespace kiln;
using namespace kiln::bench;
using Clock = std::chrono::steady_clock;

namespace {

// The least mean seconds per call of 15 batches of about 20 ms each (sized by a first
// time_per_call): what other load on a shared machine distorts least (the GEMM comparisons).
// KILN_BENCH_CPU_TIME=1 times the batches in the calling thread's CPU time instead (one thread:
// what time slices taken by other processes do not count in).
double best_time_per_call(const std::function<void()>& f) {
  static const bool cpuTime = env::get_flag("KILN_BENCH_CPU_TIME", false);
  auto now = [] {
    if (!cpuTime) return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  };
  double best = time_per_call(f, 0.02);
  int64_t n = std::max<int64_t>(1, static_cast<int64_t>(0.02 / best));
  for (int batch = 0; batch < 15; ++batch) {
    double t0 = now();
    for (int64_t i = 0; i < n; ++i) f();
    best = std::min(best, (now() - t0) / static_cast<double>(n));
  }
  return best;
}

struct Row {
  std::string name, unit;
  double kiln, peer;
  std::string peer_name;
  bool higher_is_better;
};

// One SGD training step of a classifier on (x, t): cleargrads, loss, backward, update.
template <typename Model>
std::function<void()> training_step(Model& model, optimizers::Optimizer& opt, const Variable& x,
                                    const Variable& t) {
  return [&model, &opt, x, t] {
    model.cleargrads();
    Variable loss = model(x, t);
    loss.backward();
    opt.update();
  };
}

// A step-time row against LibTorch's ms/step, which bench/run.sh passes in `peer_variable`.
Row step_row(const std::string& name, double seconds, const char* peer_variable) {
  std::string torch_ms = env::get_string(peer_variable);
  double peer = !torch_ms.empty() ? std::atof(torch_ms.c_str()) : 0.0;
  return {name, "ms", seconds * 1e3, peer, peer > 0 ? "LibTorch" : "(no LibTorch)", false};
}

int threads() {
  int n = env::num_threads();  // 0: unset, all hardware threads
  return n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// STREAM triad a = b + s*c over n floats, split over threads.
void triad(float* a, const float* b, const float* c, float s, size_t n, int nthreads) {
  std::vector<std::thread> pool;
  size_t chunk = (n + nthreads - 1) / nthreads;
  for (int t = 0; t < nthreads; ++t)
    pool.emplace_back([=] {
      size_t lo = t * chunk, hi = std::min(n, lo + chunk);
      for (size_t i = lo; i < hi; ++i) a[i] = b[i] + s * c[i];
    });
  for (auto& th : pool) th.join();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = argc > 1 ? argv[1] : "bench-results.json";
  int nthreads = threads();
  openblas_set_num_threads(nthreads);
  std::vector<Row> rows;
  fmt::print("kiln benchmarks: backend {}, {} threads\n", backend_name(), nthreads);
  // KILN_BENCH_ONLY=cnn,mlp,... runs only those groups (gemm, codegen, elementwise, overhead,
  // mlp, digits, cnn); unset runs all.
  std::string only = env::get_string("KILN_BENCH_ONLY");
  auto want = [&](const std::string& group) {
    if (only.empty()) return true;
    std::string list = "," + only + ",";
    return list.find("," + group + ",") != std::string::npos;
  };

  // GEMM next to OpenBLAS sgemm.
  if (want("gemm"))
  for (int64_t n : {256, 1024, 2048}) {
    Array a = Array::randn({n, n}, 1), b = Array::randn({n, n}, 2), c({n, n}, DType::f32);
    Variable va(a, false), vb(b, false);
    double flops = 2.0 * n * n * n;
    double tk = time_per_call([&] {
      Variable y = F::matmul(va, vb);
      y.array();
    });
    double tp = time_per_call([&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data<float>(), n, b.data<float>(), n,
                  0.f, c.data<float>(), n);
    });
    rows.push_back({fmt::format("GEMM {}^3", n), "GFLOP/s", flops / tk / 1e9, flops / tp / 1e9, "OpenBLAS", true});
  }

  // The generated GEMM (KILN_GEMM=codegen: tiled, vectorized loops, -kiln-tile-matmuls) next to OpenBLAS
  // on the same operands and transposes: squares, and the GEMMs of the MLP step (784-1000-1000-10, batch
  // 128): forward x W^T, backward gy W and the weight gradients gy^T x. Each the best of 15 batches.
  if (want("codegen")) {
    struct Shape {
      int64_t m, n, k;
      bool ta, tb;
      const char* what;
    };
    const Shape shapes[] = {
        {256, 256, 256, false, false, "256^3"},           {512, 512, 512, false, false, "512^3"},
        {1024, 1024, 1024, false, false, "1024^3"},       {2048, 2048, 2048, false, false, "2048^3"},
        {128, 1000, 784, false, true, "MLP l1 x W^T"},    {128, 1000, 1000, false, true, "MLP l2 x W^T"},
        {128, 10, 1000, false, true, "MLP l3 x W^T"},     {128, 1000, 10, false, false, "MLP l3 gy W"},
        {128, 1000, 1000, false, false, "MLP l2 gy W"},   {10, 1000, 128, true, false, "MLP l3 gy^T x"},
        {1000, 1000, 128, true, false, "MLP l2 gy^T x"}, {1000, 784, 128, true, false, "MLP l1 gy^T x"},
    };
    for (const Shape& s : shapes) {
      Array a = s.ta ? Array::randn({s.k, s.m}, 1) : Array::randn({s.m, s.k}, 1);
      Array b = s.tb ? Array::randn({s.n, s.k}, 2) : Array::randn({s.k, s.n}, 2);
      Array c({s.m, s.n}, DType::f32);
      Variable va(a, false), vb(b, false);
      setenv("KILN_GEMM", "codegen", 1);
      clear_memory_cache();
      double tk = best_time_per_call([&] {
        Variable y = F::matmul(va, vb, s.ta, s.tb);
        y.array();
      });
      unsetenv("KILN_GEMM");
      clear_memory_cache();
      double tp = best_time_per_call([&] {
        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, s.m, s.n,
                    s.k, 1.f, a.data<float>(), s.ta ? s.m : s.k, b.data<float>(), s.tb ? s.k : s.n, 0.f,
                    c.data<float>(), s.n);
      });
      double flops = 2.0 * s.m * s.n * s.k;
      rows.push_back({fmt::format("GEMM {} ({}x{}x{}) KILN_GEMM=codegen", s.what, s.m, s.n, s.k), "GFLOP/s",
                      flops / tk / 1e9, flops / tp / 1e9, "OpenBLAS", true});
    }
  }

  // The MLP step's weight gradients with their SGD update, W - lr * gy^T x, as the step runs them
  // (the generated GEMM, one kernel with the update as its epilogue), next to OpenBLAS doing the
  // same in place (alpha -lr, beta 1 on W). Best of 15 batches.
  if (want("wgrad")) {
    struct Shape {
      int64_t m, n, k;
      const char* what;
    };
    for (const Shape& s : {Shape{1000, 1000, 128, "l2"}, Shape{1000, 784, 128, "l1"}, Shape{10, 1000, 128, "l3"}}) {
      Array gy = Array::randn({s.k, s.m}, 1), x = Array::randn({s.k, s.n}, 2), w = Array::randn({s.m, s.n}, 3);
      Variable vgy(gy, false), vx(x, false), vw(w, false);
      setenv("KILN_GEMM", "codegen", 1);
      clear_memory_cache();
      double tk = best_time_per_call([&] {
        Variable y = vw - F::matmul(vgy, vx, true, false) * 0.01;
        y.array();
      });
      unsetenv("KILN_GEMM");
      clear_memory_cache();
      double tp = best_time_per_call([&] {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.m, s.n, s.k, -0.01f, gy.data<float>(), s.m,
                    x.data<float>(), s.n, 1.f, w.data<float>(), s.n);
      });
      double flops = 2.0 * s.m * s.n * s.k;
      rows.push_back({fmt::format("MLP {} W - lr gy^T x ({}x{}x{}) KILN_GEMM=codegen", s.what, s.m, s.n, s.k),
                      "GFLOP/s", flops / tk / 1e9, flops / tp / 1e9, "OpenBLAS", true});
    }
  }

  // A fused elementwise chain next to a STREAM triad loop.
  if (want("elementwise")) {
    int64_t n = 1 << 24;
    Array x = Array::randn({n}, 3);
    Variable vx(x, false);
    // Assign first: temporaries alive at .array() would be realized as outputs too.
    double tk = time_per_call([&] {
      Variable y = F::relu(vx * 2.0 + 1.0);
      y.array();
    });
    std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
    double tp = time_per_call([&] { triad(a.data(), b.data(), c.data(), 3.f, n, nthreads); });
    rows.push_back({"elementwise chain (16M f32)", "GB/s", 8.0 * n / tk / 1e9, 12.0 * n / tp / 1e9, "triad loop", true});
  }

  // Per-step framework overhead on a cache hit, 10-op graph on one element.
  if (want("overhead")) {
    Variable x(Array::from({0.5f}, {1}), false);
    double t = time_per_call([&] {
      Variable y = x;
      for (int i = 0; i < 5; ++i) y = F::tanh(y * 1.5);
      y.array();
    });
    rows.push_back({"overhead per step (10 ops, hit)", "us", t * 1e6, 20.0, "target", false});
  }

  // MLP 784-1000-1000-10, batch 128, SGD: cold compile, warm disk load, step time vs LibTorch.
  if (want("mlp")) {
    char dir[] = "/tmp/kiln-bench-cacheXXXXXX";
    setenv("KILN_CACHE_DIR", mkdtemp(dir), 1);
    clear_memory_cache();
    MLP mlp;
    L::Classifier<MLP> model(mlp);
    optimizers::SGD opt(0.01);
    opt.setup(model);
    Variable x(Array::randn({128, 784}, 4), false);
    auto step = training_step(model, opt, x, cyclic_labels(128));
    double before = cache_stats().compile_seconds;
    auto t0 = Clock::now();
    step();
    double cold = std::chrono::duration<double>(Clock::now() - t0).count();
    double compile = cache_stats().compile_seconds - before;
    double steady = time_per_call(step, 2.0);
    clear_memory_cache();  // the next step finds its graph in the disk cache
    double loaded_before = cache_stats().load_seconds;
    step();
    double warm = cache_stats().load_seconds - loaded_before;
    rows.push_back({"MLP step cold compile", "s", compile, 1.0, "target", false});
    if (cache_stats().disk_hits == 0) warm = -1;  // not loaded from disk (cache off): n/a
    rows.push_back({"MLP step warm disk-cache load", "ms", warm < 0 ? -1.0 : warm * 1e3, 20.0, "target", false});
    (void)cold;
    rows.push_back(step_row("MLP 784-1000-1000-10 b128 SGD step", steady, "KILN_BENCH_TORCH_MS"));
  }

  // The digits-sized MLP 64-256-256-10, b64, SGD step, always on 1 thread (per-step overhead
  // matters here); LibTorch's figure in KILN_BENCH_TORCH_DIGITS_MS (bench/run.sh).
  if (want("digits")) {
    std::string saved = env::get_string("KILN_NUM_THREADS");
    setenv("KILN_NUM_THREADS", "1", 1);
    openblas_set_num_threads(1);
    MLP mlp(64, 256);
    L::Classifier<MLP> model(mlp);
    optimizers::SGD opt(0.01);
    opt.setup(model);
    Variable x(Array::randn({64, 64}, 6), false);
    auto step = training_step(model, opt, x, cyclic_labels(64));
    step();
    double steady = time_per_call(step, 2.0);
    if (saved.empty()) unsetenv("KILN_NUM_THREADS"); else setenv("KILN_NUM_THREADS", saved.c_str(), 1);
    openblas_set_num_threads(nthreads);
    rows.push_back(step_row("MLP 64-256-256-10 b64 SGD step", steady, "KILN_BENCH_TORCH_DIGITS_MS"));
  }

  // CNN b64 3x32x32 (conv3x3 32 + relu + maxpool2, conv3x3 64 + relu + maxpool2, linear 10), SGD step.
  if (want("cnn")) {
    L::Classifier<CNN> model;
    optimizers::SGD opt(0.01);
    opt.setup(model);
    Variable x(Array::randn({64, 3, 32, 32}, 5), false);
    auto step = training_step(model, opt, x, cyclic_labels(64));
    double before = cache_stats().compile_seconds;
    step();
    rows.push_back({"CNN step cold compile", "s", cache_stats().compile_seconds - before, 1.5, "target", false});
    double steady = time_per_call(step, 2.0);
    rows.push_back(step_row("CNN b64 3x32x32 SGD step", steady, "KILN_BENCH_TORCH_CNN_MS"));
  }

  fmt::print("{:<54} {:>12} {:>12} {:>10}  {}\n", "benchmark", "kiln", "peer", "kiln/peer", "unit, peer");
  std::string json = "{\n  \"backend\": \"" + backend_name() + "\", \"threads\": " + std::to_string(nthreads) + ",\n  \"results\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    // A value not measured (no LibTorch, no disk cache) is negative or 0: n/a in the
    // table, null in the JSON, and so is the ratio.
    bool has_kiln = r.kiln >= 0, has_peer = r.peer > 0, has_ratio = has_kiln && has_peer;
    auto text = [](bool has, double v) { return has ? fmt::format("{:.3f}", v) : std::string("n/a"); };
    auto json_number = [](bool has, double v) { return has ? fmt::format("{}", v) : std::string("null"); };
    fmt::print("{:<54} {:>12} {:>12} {:>10}  {}, {}{}\n", r.name, text(has_kiln, r.kiln), text(has_peer, r.peer),
               text(has_ratio, r.kiln / r.peer), r.unit, r.peer_name,
               r.higher_is_better ? " (higher is better)" : " (lower is better)");
    json += fmt::format("    {{\"name\": \"{}\", \"unit\": \"{}\", \"kiln\": {}, \"peer\": {}, \"peer_name\": \"{}\", \"ratio\": {}}}{}\n",
                        r.name, r.unit, json_number(has_kiln, r.kiln), json_number(has_peer, r.peer), r.peer_name,
                        json_number(has_ratio, r.kiln / r.peer), i + 1 < rows.size() ? "," : "");
  }
  json += "  ]\n}\n";
  std::ofstream(out) << json;
  fmt::print("wrote {}\n", out);
  return 0;
}
