// Parameters and optimizer state updated in place (issue 12 item 4): on the CPU
// backend a training step writes each parameter's (and momentum slot's) next
// value into its own buffer, so data pointers stay put across steps, unless the
// user holds another handle to that buffer, which then keeps its values.
#include <gtest/gtest.h>
#include <kiln/kiln.h>
#include <kiln/optimizers.h>

#include <cstdlib>
#include <vector>

using namespace kiln;

namespace {

struct Net : Chain {
  L::Linear l1{5, 7}, l2{7, 3};
  Net() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) { return l2(F::relu(l1(x))); }
};

bool compiledBackend() {
  const char* b = std::getenv("KILN_BACKEND");
  return !b || std::string(b).empty() || std::string(b) == "cpu";
}

void step(Net& net, optimizers::Optimizer& opt, int i) {
  Variable x(Array::randn({4, 5}, 100 + i), false);
  Variable t(Array::from<int32_t>({0, 1, 2, 1}, {4}), false);
  net.cleargrads();
  Variable loss = F::softmax_cross_entropy(net(x), t);
  loss.backward();
  opt.update();
}

std::vector<std::vector<float>> values(Net& net) {
  std::vector<std::vector<float>> out;
  for (auto& [name, p] : net.namedparams()) out.push_back(p.array().to_vector<float>());
  return out;
}

}  // namespace

TEST(Donation, ParametersAndMomentumKeepTheirBuffersAcrossSteps) {
  if (!compiledBackend()) GTEST_SKIP() << "in-place updates are the CPU backend's";
  set_random_seed(1);
  Net net;
  optimizers::MomentumSGD opt(0.1, 0.9);
  opt.setup(net);
  step(net, opt, 0);  // creates the momentum slots
  const void* w = net.l1.W.array().raw_data();
  const void* b = net.l2.b.array().raw_data();
  const void* v = opt.update_rule(net.l1.W).state.at("v").array().raw_data();
  for (int i = 1; i < 4; ++i) {
    step(net, opt, i);
    EXPECT_EQ(net.l1.W.array().raw_data(), w) << "step " << i;
    EXPECT_EQ(net.l2.b.array().raw_data(), b) << "step " << i;
    EXPECT_EQ(opt.update_rule(net.l1.W).state.at("v").array().raw_data(), v) << "step " << i;
  }
}

// The same steps with every buffer also held by the user: no donation, the
// held arrays keep their values, and the trained values are the same.
TEST(Donation, InPlaceStepsMatchCopyingStepsAndHeldArraysKeepTheirValues) {
  set_random_seed(2);
  Net a;
  set_random_seed(2);
  Net b;
  optimizers::SGD oa(0.5), ob(0.5);
  oa.setup(a);
  ob.setup(b);
  for (int i = 0; i < 3; ++i) {
    std::vector<Array> held;
    std::vector<std::vector<float>> before;
    for (auto& [name, p] : b.namedparams()) {
      held.push_back(p.array());
      before.push_back(p.array().to_vector<float>());
    }
    step(a, oa, i);
    step(b, ob, i);
    for (size_t k = 0; k < held.size(); ++k) EXPECT_EQ(held[k].to_vector<float>(), before[k]) << "step " << i;
    EXPECT_NE(values(b), before);
  }
  auto va = values(a), vb = values(b);
  ASSERT_EQ(va.size(), vb.size());
  for (size_t k = 0; k < va.size(); ++k)
    for (size_t e = 0; e < va[k].size(); ++e) EXPECT_FLOAT_EQ(va[k][e], vb[k][e]) << "param " << k;
}
