// Devices in the API (issue 13 item 1): Array::to / Array::device, Variable::to_device,
// Link::to_device (to_cpu / to_gpu), concat_examples(batch, device), graphs run by the
// backend of their inputs' device with outputs there, mixed-device errors naming both
// devices. CUDA devices are kiln's SIMT emulator here (KILN_CUDA_EMULATE=1: device memory
// is host memory, the generated CUDA kernels run on the CPU); shapes stay tiny.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/device.h>
#include <kiln/kiln.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "error_of.h"
#include "scoped_env.h"
#include "tiny_mlp.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

// Whether this build has the cuda backend (the emulator needs it to run graphs).
bool haveCudaBackend() {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  ScopedEnv backend("KILN_BACKEND", "cuda");
  try {
    backend_name();
    return true;
  } catch (const Error&) {
    return false;
  }
}

#define REQUIRE_CUDA_BACKEND() \
  if (!haveCudaBackend()) GTEST_SKIP() << "no cuda backend in this build"

TEST(DeviceArray, DefaultsToTheCpu) {
  EXPECT_EQ(Array::zeros({2}).device(), Device::cpu());
  EXPECT_EQ(Array::from({1.f, 2.f}, {2}).device(), Device::cpu());
  Array a = Array::from({1.f, 2.f}, {2});
  Array same = a.to(Device::cpu());
  EXPECT_EQ(same.raw_data(), a.raw_data());  // already there: shared, not copied
  EXPECT_EQ(Variable(a).device(), Device::cpu());
  EXPECT_EQ(Variable().device(), Device::cpu());
}

TEST(DeviceArray, RoundTripThroughAnEmulatedCudaDevice) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  Array a = Array::from({1.5f, -2.f, 3.25f, 4.f, 0.f, -6.5f}, {2, 3});
  Array d = a.to(Device::cuda(0));
  EXPECT_EQ(d.device(), Device::cuda(0));
  EXPECT_EQ(d.shape(), (Shape{2, 3}));
  EXPECT_EQ(d.dtype(), DType::f32);
  EXPECT_NE(d.raw_data(), a.raw_data());  // a copy in (emulated) device memory
  EXPECT_EQ(d.to(Device::cuda(0)).raw_data(), d.raw_data());
  Array back = d.to(Device::cpu());
  EXPECT_EQ(back.device(), Device::cpu());
  EXPECT_EQ(back.to_vector<float>(), a.to_vector<float>());
  // Reads from host code copy implicitly, as CuPy's tolist(), item() and repr do.
  EXPECT_EQ(d.to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(d.to_vector<int32_t>(), (std::vector<int32_t>{1, -2, 3, 4, 0, -6}));
  EXPECT_EQ(d.at(2), 3.25);
  EXPECT_EQ(d.to_string(), a.to_string());
  EXPECT_EQ(Array::scalar<int64_t>(7).to(Device::cuda(1)).item<int64_t>(), 7);
  d.set(0, 9.0);
  EXPECT_EQ(d.at(0), 9.0);
  EXPECT_EQ(a.at(0), 1.5);  // the host array is untouched
  // Copies and conversions stay on the device.
  Array c = d.copy();
  EXPECT_EQ(c.device(), Device::cuda(0));
  EXPECT_NE(c.raw_data(), d.raw_data());
  Array i = d.astype(DType::i64);
  EXPECT_EQ(i.device(), Device::cuda(0));
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{9, -2, 3, 4, 0, -6}));
  EXPECT_EQ(d.reshape({3, 2}).device(), Device::cuda(0));
  EXPECT_EQ(Array::empty({4}, DType::f64, Device::cuda(0)).device(), Device::cuda(0));
  // Raw host access to device memory is refused.
  std::string m = error_of([&] { d.data<float>(); });
  EXPECT_THAT(m, HasSubstr("Array::data: the array is on @cuda:0"));
  EXPECT_THAT(m, HasSubstr("to(Device::cpu())"));
  // Moving between two devices.
  Array d1 = d.to(Device::cuda(1));
  EXPECT_EQ(d1.device(), Device::cuda(1));
  EXPECT_EQ(d1.to_vector<float>(), d.to_vector<float>());
}

TEST(DeviceArray, CudaWithoutDriverOrEmulatorIsAClearError) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", nullptr);
  if (cuda_driver::unavailable_reason().empty()) GTEST_SKIP() << "this machine has a CUDA GPU";
  Array a = Array::from({1.f, 2.f}, {2});
  for (const std::string& m : {error_of([&] { a.to(Device::cuda(0)); }), error_of([&] { L::Linear(2, 3).to_gpu(); }),
                               error_of([&] { L::Linear(2, 3).to_device(Device::parse("@cuda:0")); }),
                               error_of([&] { Variable(a).to_gpu(0); })}) {
    EXPECT_THAT(m, HasSubstr("kiln: Device::cuda(0): no CUDA device: libcuda.so.1 cannot be loaded"));
    EXPECT_THAT(m, HasSubstr("KILN_CUDA_EMULATE=1"));
  }
}

TEST(DeviceGraph, OutputsLiveOnTheDeviceOfTheInputs) {
  REQUIRE_CUDA_BACKEND();
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  // KILN_BACKEND chooses the backend of host graphs only: a graph of device arrays runs on
  // the cuda backend (the interpreter's executables return host arrays).
  ScopedEnv backend("KILN_BACKEND", "interp");
  clear_memory_cache();
  Variable x(Array::from({1.f, -2.f, 3.f, -4.f, 0.5f, 6.f}, {2, 3}).to(Device::cuda(0)));
  Variable w(Array::from({1.f, 0.f, 0.f, 1.f, 1.f, 1.f}, {3, 2}).to(Device::cuda(0)));
  Variable y = F::relu(F::matmul(x, w)) * 2.0f;  // 2 * [[1 + 3, -2 + 3], [-4 + 6, 0.5 + 6]]
  EXPECT_EQ(y.device(), Device::cuda(0));
  Array v = y.array();
  EXPECT_EQ(v.device(), Device::cuda(0));
  EXPECT_EQ(v.to_vector<float>(), (std::vector<float>{8.f, 2.f, 4.f, 13.f}));
  // A host graph in the same realize runs on KILN_BACKEND's backend, with host outputs.
  Variable h(Array::from({1.f, 2.f}, {2}));
  Variable hy = F::exp(h), dy = F::sum(x);
  EXPECT_EQ(hy.array().device(), Device::cpu());
  EXPECT_EQ(dy.array().device(), Device::cuda(0));
  EXPECT_NEAR(dy.item<float>(), 4.5f, 1e-6);
  EXPECT_NEAR(hy.array().at(1), std::exp(2.0), 1e-5);
}

TEST(DeviceGraph, MixingDevicesInOneOpNamesBoth) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  Variable x(Array::from({1.f, 2.f}, {2}));
  Variable y(Array::from({3.f, 4.f}, {2}).to(Device::cuda(0)));
  std::string m = error_of([&] { x + y; });
  EXPECT_THAT(m, HasSubstr("kiln: add"));
  EXPECT_THAT(m, HasSubstr("operands on different devices: an array on @cpu and an array on @cuda:0"));
  EXPECT_THAT(error_of([&] { F::matmul(F::reshape(y, {1, 2}), F::reshape(x, {2, 1})); }),
              HasSubstr("an array on @cuda:0 and an array on @cpu"));
  // Two GPUs are two devices.
  Variable z(Array::from({5.f, 6.f}, {2}).to(Device::cuda(1)));
  EXPECT_THAT(error_of([&] { y * z; }), HasSubstr("an array on @cuda:0 and an array on @cuda:1"));
  // A constant goes with any device.
  EXPECT_EQ((y * 2.0f + 1.0f).device(), Device::cuda(0));
  // A gradient of another device.
  EXPECT_THAT(error_of([&] { y.set_grad(Array::ones({2})); }),
              HasSubstr("Variable::set_grad: the gradient is on @cpu, the variable on @cuda:0"));
}

TEST(DeviceGraph, RunTimeChecksAndDebugModeOnADevice) {
  REQUIRE_CUDA_BACKEND();
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  clear_memory_cache();
  // A label out of range, checked in the device graph, read back on the host.
  Variable x(Array::from({1.f, 2.f, 3.f, 4.f}, {2, 2}).to(Device::cuda(0)));
  Variable t(Array::from<int32_t>({1, 5}, {2}).to(Device::cuda(0)));
  std::string m;
  {
    Variable loss = F::softmax_cross_entropy(x, t);
    m = error_of([&] { loss.array(); });
  }  // (a failed realize leaves the loss pending: the next realize would compute it again)
  EXPECT_THAT(m, HasSubstr("softmax_cross_entropy"));
  EXPECT_THAT(m, HasSubstr("t[1] = 5"));
  // Debug mode names the op that made a NaN on the device.
  set_debug(true);
  Variable y = F::log(x - 2.0f) * 2.0f;  // log(-1) at x[0, 0]
  m = error_of([&] { y.array(); });
  set_debug(false);
  EXPECT_THAT(m, HasSubstr("NaN is detected on forward computation of kiln.log"));
}

TEST(DeviceLink, AnInputOnAnotherDeviceNamesBothDevicesAndTheParameter) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  L::Classifier<MLP> model;
  Link& moved = model.to_device(Device::cuda(0));
  EXPECT_EQ(&moved, static_cast<Link*>(&model));  // returns the link, like Chainer
  EXPECT_EQ(model.device(), Device::cuda(0));
  EXPECT_EQ(model.predictor.l1.device(), Device::cuda(0));
  Variable x(Array::from({1.f, 2.f, 3.f}, {1, 3}));
  std::string m = error_of([&] { model.predictor(x); });
  EXPECT_THAT(m, HasSubstr("kiln: matmul"));
  EXPECT_THAT(m, HasSubstr("an array on @cpu and the parameter predictor/l1/W on @cuda:0"));
  EXPECT_THAT(m, HasSubstr("Link::to_device"));
}

TEST(DeviceLink, ToDeviceMovesParametersGradientsPersistentsAndChildren) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  struct Net : Chain {
    L::Linear lazy{4};  // in_size inferred at the first call: initialized on the link's device
    L::BatchNormalization bn{4};
    ChainList list;
    L::Linear inner{2, 2};
    Net() {
      add_link("lazy", lazy);
      add_link("bn", bn);
      list.append(inner);
      add_link("list", list);
    }
  } net;
  Array w = net.inner.W.array();
  net.inner.W.set_grad(Array::full({2, 2}, 0.5));
  net.to_gpu();  // to_device(Device::cuda(0))
  EXPECT_FALSE(net.lazy.W.is_initialized());
  EXPECT_EQ(net.lazy.W.device(), Device::cuda(0));
  for (auto& [name, p] : net.namedparams())
    if (p.is_initialized()) EXPECT_EQ(p.array().device(), Device::cuda(0)) << name;
  for (auto& [name, v] : net.namedpersistents()) EXPECT_EQ(v.array().device(), Device::cuda(0)) << name;
  EXPECT_EQ(net.inner.W.array().to_vector<float>(), w.to_vector<float>());
  EXPECT_EQ(net.inner.W.grad().device(), Device::cuda(0));
  EXPECT_EQ(net.inner.W.grad().to_vector<float>(), (std::vector<float>(4, 0.5f)));
  EXPECT_EQ(net.list.device(), Device::cuda(0));
  // The lazy parameter initializes on the device at its first call.
  Variable x(Array::from({1.f, 2.f}, {1, 2}).to(Device::cuda(0)));
  Variable y = net.lazy(x);
  EXPECT_EQ(net.lazy.W.array().device(), Device::cuda(0));
  EXPECT_EQ(y.device(), Device::cuda(0));
  // And back.
  net.to_cpu();
  for (auto& [name, p] : net.namedparams()) EXPECT_EQ(p.array().device(), Device::cpu()) << name;
  for (auto& [name, v] : net.namedpersistents()) EXPECT_EQ(v.array().device(), Device::cpu()) << name;
  EXPECT_EQ(net.inner.W.array().to_vector<float>(), w.to_vector<float>());
}

TEST(DeviceVariable, ToDeviceMovesALeafAndRefusesAPendingValue) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  Variable x(Array::from({1.f, 2.f}, {2}));
  x.set_grad(Array::from({0.25f, 0.5f}, {2}));
  x.to_device(Device::cuda(0));
  EXPECT_EQ(x.device(), Device::cuda(0));
  EXPECT_EQ(x.array().device(), Device::cuda(0));
  EXPECT_EQ(x.grad().device(), Device::cuda(0));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0.25f, 0.5f}));
  x.to_cpu();
  EXPECT_EQ(x.array().device(), Device::cpu());
  EXPECT_EQ(x.array().to_vector<float>(), (std::vector<float>{1.f, 2.f}));
  Variable y = F::exp(x);  // pending
  EXPECT_THAT(error_of([&] { y.to_gpu(); }),
              HasSubstr("Variable::to_device: the variable is computed on @cpu and not realized yet"));
  y.array();  // a realized result moves (and becomes a leaf holding its value)
  y.to_gpu();
  EXPECT_EQ(y.device(), Device::cuda(0));
  EXPECT_NEAR(y.array().at(1), std::exp(2.0), 1e-5);
  EXPECT_THAT(error_of([] { Variable().to_gpu(); }), HasSubstr("Variable::to_device: the variable is empty"));
}

TEST(DeviceDatasets, ConcatExamplesOnADevice) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  std::vector<std::vector<Array>> batch = {{Array::from({1.f, 2.f}, {2}), Array::scalar<int32_t>(0)},
                                           {Array::from({3.f}, {1}), Array::scalar<int32_t>(1)}};
  std::vector<Array> out = concat_examples(batch, Device::cuda(0), -1.0);
  ASSERT_EQ(out.size(), 2u);
  for (const Array& a : out) EXPECT_EQ(a.device(), Device::cuda(0));
  EXPECT_EQ(out[0].to_vector<float>(), (std::vector<float>{1, 2, 3, -1}));
  EXPECT_EQ(out[1].to_vector<int32_t>(), (std::vector<int32_t>{0, 1}));
  // Chainer's int device: N >= 0 is GPU N, -1 the host; examples on a device are read through a copy.
  std::vector<std::vector<Array>> on_device = {{out[1].reshape({2})}, {out[1].reshape({2})}};
  EXPECT_EQ(concat_examples(on_device, 1)[0].device(), Device::cuda(1));
  EXPECT_EQ(concat_examples(on_device, -1)[0].to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 0, 1}));
  EXPECT_EQ(concat_examples(batch, Device::cpu(), std::vector<double>{0, 0})[0].device(), Device::cpu());
}

TEST(DeviceModel, MlpTrainedOnAnEmulatedGpuMatchesTheCpu) {
  REQUIRE_CUDA_BACKEND();
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  TrainingRun cpu = train_on(Device::cpu(), 3);
  TrainingRun gpu = train_on(Device::cuda(0), 3);
  ASSERT_EQ(cpu.losses.size(), gpu.losses.size());
  for (size_t i = 0; i < cpu.losses.size(); ++i) EXPECT_NEAR(cpu.losses[i], gpu.losses[i], 1e-5) << "step " << i;
  EXPECT_LT(gpu.losses.back(), gpu.losses.front());  // it learns
  ASSERT_EQ(cpu.params.size(), gpu.params.size());
  for (size_t k = 0; k < cpu.params.size(); ++k) {
    ASSERT_EQ(cpu.params[k].size(), gpu.params[k].size());
    for (size_t i = 0; i < cpu.params[k].size(); ++i)
      EXPECT_NEAR(cpu.params[k][i], gpu.params[k][i], 1e-5) << "param " << k << "[" << i << "]";
  }
  for (const Device& d : cpu.devices) EXPECT_EQ(d, Device::cpu());
  ASSERT_EQ(gpu.devices.size(), 3u + 4 * 2 + 4);  // losses, (W, b) x 2 with grads, 4 momentum slots
  for (const Device& d : gpu.devices) EXPECT_EQ(d, Device::cuda(0));
}

TEST(DeviceModel, SaveAndLoadNpzKeepTheDevice) {
  ScopedEnv emulate("KILN_CUDA_EMULATE", "1");
  MLP a;
  a.to_device(Device::cuda(0));
  std::string path = (std::filesystem::temp_directory_path() /
                      ("kiln-devices-test-" + std::to_string(::getpid()) + ".npz")).string();
  serializers::save_npz(path, a);
  MLP b;
  b.to_device(Device::cuda(0));
  serializers::load_npz(path, b);
  std::filesystem::remove(path);
  EXPECT_EQ(b.l1.W.array().device(), Device::cuda(0));
  EXPECT_EQ(b.l1.W.array().to_vector<float>(), a.l1.W.array().to_vector<float>());
}

}  // namespace
