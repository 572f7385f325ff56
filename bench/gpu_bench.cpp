// kiln on a CUDA device (bench/gpu_check.sh, issue 13 item 7): a fused elementwise chain in
// GB/s, a GEMM in GFLOP/s, the MLP and CNN SGD steps of kiln_bench in ms/step, all on
// Device::cuda(0). One line per figure, "name: value unit"; the peers (a device-to-device
// copy, cuBLAS through torch.mm, PyTorch eager steps) come from bench/gpu_torch_bench.py.
//   gpu_bench [GROUP,...]   groups: elementwise, gemm, mlp, cnn (default: all)
// Under KILN_CUDA_EMULATE=1 it runs on the SIMT emulator (a smoke run: sizes are cut down).
#include <kiln/kiln.h>

#include <cstdio>
#include <functional>
#include <string>

#include "bench_models.h"

using namespace kiln;
using namespace kiln::bench;

namespace {

Variable labels(int64_t n, const Device& device) { return Variable(cyclic_labels(n).array().to(device), false); }

template <typename Model>
double step_ms(Model& model, const Array& x, int64_t batch, const Device& device, double seconds) {
  model.to_device(device);
  optimizers::SGD opt(0.01);
  opt.setup(model);
  Variable vx(x.to(device), false), t = labels(batch, device);
  Variable loss;
  auto step = [&] {
    model.cleargrads();
    loss = model(vx, t);
    loss.backward();
    opt.update();
  };
  return time_per_call(step, [&] { loss.array().to(Device::cpu()); }, seconds) * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  std::string only = argc > 1 ? "," + std::string(argv[1]) + "," : "";
  auto want = [&](const char* g) { return only.empty() || only.find("," + std::string(g) + ",") != std::string::npos; };
  try {
    Device gpu = Device::cuda(0);
    bool emulated = cuda_driver::emulated();
    double seconds = emulated ? 0.05 : 1.0;
    std::printf("kiln gpu_bench on %s%s\n", gpu.to_string().c_str(), emulated ? " (SIMT emulator: smoke sizes)" : "");
    if (want("elementwise")) {
      int64_t n = emulated ? (1 << 12) : (1 << 26);
      Variable x(Array::randn({n}, 3).to(gpu), false);
      Variable y;
      double t = time_per_call([&] { y = F::relu(x * 2.0 + 1.0); y.array(); },
                               [&] { F::sum(y).array().to(Device::cpu()); }, seconds);
      std::printf("elementwise relu(2x+1) %lld f32: %.1f GB/s\n", static_cast<long long>(n), 8.0 * n / t / 1e9);
    }
    if (want("gemm")) {
      int64_t n = emulated ? 64 : 4096;
      Variable a(Array::randn({n, n}, 1).to(gpu), false), b(Array::randn({n, n}, 2).to(gpu), false);
      Variable c;
      double t = time_per_call([&] { c = F::matmul(a, b); c.array(); },
                               [&] { F::sum(c).array().to(Device::cpu()); }, seconds);
      std::printf("GEMM %lld^3 f32: %.1f GFLOP/s\n", static_cast<long long>(n), 2.0 * n * n * n / t / 1e9);
    }
    if (want("mlp")) {
      int64_t batch = emulated ? 8 : 128;
      MLP mlp;
      L::Classifier<MLP> model(mlp);
      std::printf("MLP 784-1000-1000-10 b%lld SGD step: %.3f ms\n", static_cast<long long>(batch),
                  step_ms(model, Array::randn({batch, 784}, 4), batch, gpu, seconds));
    }
    if (want("cnn")) {
      int64_t batch = emulated ? 2 : 64;
      L::Classifier<CNN> model;
      std::printf("CNN b%lld 3x32x32 SGD step: %.3f ms\n", static_cast<long long>(batch),
                  step_ms(model, Array::randn({batch, 3, 32, 32}, 5), batch, gpu, seconds));
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "gpu_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
