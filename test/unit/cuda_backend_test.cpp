// kiln::Device, the CUDA driver shim and the cuda backend (KILN_BACKEND=cuda) under the
// SIMT emulator (KILN_CUDA_EMULATE=1): a training step through the generated CUDA kernels
// matches the cpu backend; without a driver, CUDA devices and the backend are clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/device.h>
#include <kiln/kiln.h>

#include <cstdlib>

#include "error_of.h"
#include "scoped_env.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

bool haveCudaBackend() {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  ScopedEnv backend("KILN_BACKEND", "cuda");
  try {
    backend_name();
    return true;
  } catch (const Error&) {
    return false;  // a build without the CUDA toolkit
  }
}

TEST(Device, CpuAndParse) {
  EXPECT_TRUE(Device::cpu().is_cpu());
  EXPECT_EQ(Device::cpu().to_string(), "@cpu");
  EXPECT_EQ(Device::cpu().index(), -1);
  EXPECT_EQ(Device::parse("@cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  Device d = Device::parse("@cuda:1");
  EXPECT_TRUE(d.is_cuda());
  EXPECT_EQ(d.index(), 1);
  EXPECT_EQ(d.to_string(), "@cuda:1");
  EXPECT_EQ(Device::parse("@cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:0"), Device::cuda(0));
  EXPECT_NE(Device::cuda(0), Device::cpu());
  EXPECT_NE(Device::cuda(0), Device::cuda(1));
}

TEST(Device, BadSpecifiersAreErrors) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  for (const char* bad : {"@gpu", "@cuda:", "@cuda:x", "cuda:-1", "", "@cuda:0 "}) {
    std::string m = error_of([&] { Device::parse(bad); });
    EXPECT_THAT(m, HasSubstr("Device::parse: argument spec: expected \"@cpu\" or \"@cuda:N\", got \"" +
                             std::string(bad) + "\""));
  }
  EXPECT_EQ(error_of([] { Device::cuda(-2); }), "kiln: Device::cuda: argument index: expected >= 0, got -2");
}

TEST(Device, CudaWithoutDriverSaysSo) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", nullptr);
  if (cuda_driver::unavailable_reason().empty()) GTEST_SKIP() << "this machine has a CUDA GPU";
  EXPECT_EQ(cuda_driver::device_count(), 0);
  std::string m = error_of([] { Device::cuda(0); });
  EXPECT_THAT(m, HasSubstr("Device::cuda(0): no CUDA device: "));
  EXPECT_THAT(m, HasSubstr("libcuda.so.1"));
  EXPECT_THAT(m, HasSubstr("KILN_CUDA_EMULATE=1"));
  EXPECT_THAT(error_of([] { Device::parse("@cuda:0"); }), HasSubstr("no CUDA device"));
}

TEST(CudaBackend, WithoutDriverOrEmulatorIsAClearError) {
  if (!haveCudaBackend()) GTEST_SKIP() << "no cuda backend in this build";
  ScopedEnv emulate("KILN_CUDA_EMULATE", nullptr);
  if (cuda_driver::unavailable_reason().empty()) GTEST_SKIP() << "this machine has a CUDA GPU";
  ScopedEnv backend("KILN_BACKEND", "cuda");
  clear_memory_cache();
  Variable x(Array::from({1.f, 2.f}, {2}));
  std::string m = error_of([&] { F::exp(x).array(); });
  EXPECT_THAT(m, HasSubstr("kiln: KILN_BACKEND=cuda: no CUDA device: libcuda.so.1 cannot be loaded"));
  EXPECT_THAT(m, HasSubstr("KILN_CUDA_EMULATE=1"));
}

TEST(CudaBackend, EmulatedFunctionsMatchHandComputedValues) {
  if (!haveCudaBackend()) GTEST_SKIP() << "no cuda backend in this build";
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  ScopedEnv backend("KILN_BACKEND", "cuda");
  clear_memory_cache();
  Variable x(Array::from({1.f, -2.f, 3.f, -4.f, 0.5f, 6.f}, {2, 3}));
  Variable w(Array::from({1.f, 0.f, 0.f, 1.f, 1.f, 1.f}, {3, 2}));
  Variable y = F::relu(F::matmul(x, w));  // [[1 + 3, -2 + 3], [-4 + 6, 0.5 + 6]]
  Variable s = F::softmax(x, 1);
  EXPECT_EQ(y.array().to_vector<float>(), (std::vector<float>{4.f, 1.f, 2.f, 6.5f}));
  std::vector<float> p = s.array().to_vector<float>();
  // softmax([1, -2, 3]) = exp(x - 3) / sum
  double z = std::exp(-2.0) + std::exp(-5.0) + 1.0;
  EXPECT_NEAR(p[0], std::exp(-2.0) / z, 1e-6);
  EXPECT_NEAR(p[1], std::exp(-5.0) / z, 1e-6);
  EXPECT_NEAR(p[2], 1.0 / z, 1e-6);
  EXPECT_EQ(backend_name(), "cuda");
}

// A small MLP trained for a few Adam steps; the losses and the parameters.
struct Trained {
  std::vector<float> losses, w1, b2;
};

Trained train(const char* backendName) {
  ScopedEnv backend("KILN_BACKEND", backendName);
  clear_memory_cache();
  L::Linear l1(4, 16), l2(16, 3);
  l1.W.set_array(Array::randn({16, 4}, 1));
  l2.W.set_array(Array::randn({3, 16}, 2));
  struct Net : Chain {
    L::Linear &a, &b;
    Net(L::Linear& x, L::Linear& y) : a(x), b(y) { add_link("l1", a); add_link("l2", b); }
  } net(l1, l2);
  optimizers::Adam opt;
  opt.setup(net);
  Array x = Array::randn({8, 4}, 3);
  Array t = Array::from<int32_t>({0, 1, 2, 0, 1, 2, 0, 1}, {8});
  Trained out;
  for (int step = 0; step < 4; ++step) {
    net.cleargrads();
    Variable loss = F::softmax_cross_entropy(l2(F::relu(l1(Variable(x)))), Variable(t));
    loss.backward();
    opt.update();
    out.losses.push_back(loss.array().item<float>());
  }
  out.w1 = l1.W.array().to_vector<float>();
  out.b2 = l2.b.array().to_vector<float>();
  return out;
}

TEST(CudaBackend, EmulatedTrainingStepMatchesCpu) {
  if (!haveCudaBackend()) GTEST_SKIP() << "no cuda backend in this build";
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  Trained cpu = train("cpu");
  Trained gpu = train("cuda");
  ASSERT_EQ(cpu.losses.size(), gpu.losses.size());
  for (size_t i = 0; i < cpu.losses.size(); ++i) EXPECT_NEAR(cpu.losses[i], gpu.losses[i], 1e-5) << "step " << i;
  EXPECT_LT(gpu.losses.back(), gpu.losses.front());  // it learns
  ASSERT_EQ(cpu.w1.size(), gpu.w1.size());
  for (size_t i = 0; i < cpu.w1.size(); ++i) EXPECT_NEAR(cpu.w1[i], gpu.w1[i], 1e-5) << "W1[" << i << "]";
  for (size_t i = 0; i < cpu.b2.size(); ++i) EXPECT_NEAR(cpu.b2[i], gpu.b2[i], 1e-5) << "b2[" << i << "]";
}

}  // namespace
