// Shared by the device tests: a 2-layer MLP (3 -> 5 -> relu -> 2), small enough for the
// emulated and the fake GPU, and a few training steps of it.
#pragma once
#include <kiln/kiln.h>

#include <vector>

struct MLP : kiln::Chain {
  kiln::links::Linear l1{3, 5}, l2{5, 2};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  kiln::Variable operator()(const kiln::Variable& x) const { return l2(kiln::functions::relu(l1(x))); }
};

// The MLP trained `steps` MomentumSGD steps on `device` (the batch moved there by
// concat_examples): the losses and the parameters, read back on the host.
struct TrainingRun {
  std::vector<float> losses;
  std::vector<std::vector<float>> params;
  std::vector<kiln::Device> devices;  // of the parameters, their gradients and the optimizer state
};

inline TrainingRun train_on(const kiln::Device& device, int steps) {
  kiln::clear_memory_cache();
  kiln::set_random_seed(3);
  kiln::links::Classifier<MLP> model;
  model.to_device(device);
  kiln::optimizers::MomentumSGD opt(0.1, 0.9);
  opt.setup(model);
  std::vector<std::vector<kiln::Array>> examples;
  for (int i = 0; i < 6; ++i)
    examples.push_back({kiln::Array::randn({3}, 10 + i), kiln::Array::scalar<int32_t>(i % 2)});
  std::vector<kiln::Array> batch = kiln::concat_examples(examples, device);
  TrainingRun run;
  for (int step = 0; step < steps; ++step) {
    model.cleargrads();
    kiln::Variable loss = model(kiln::Variable(batch[0]), kiln::Variable(batch[1]));
    loss.backward();
    opt.update();
    run.devices.push_back(loss.array().device());
    run.losses.push_back(loss.item<float>());
  }
  for (auto& [name, p] : model.namedparams()) {
    run.params.push_back(p.array().to(kiln::Device::cpu()).to_vector<float>());
    run.devices.push_back(p.array().device());
    run.devices.push_back(p.grad().device());
  }
  for (auto& [name, rule] : opt.named_update_rules())
    for (auto& [key, state] : rule->state) run.devices.push_back(state.array().device());
  return run;
}
