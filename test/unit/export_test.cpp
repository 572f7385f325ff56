// kiln::export_model / export_training_step (kiln/export.h): the files kilnc reads, the model
// and optimizer left as they were, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/export.h>
#include <kiln/kiln.h>
#include <kiln/npz.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "error_of.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

struct Net : Chain {
  L::Linear l1{3, 4}, l2{4, 2};
  Net() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  Variable operator()(const Variable& x) { return l2(F::relu(l1(x))); }
};

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string tempPrefix(const std::string& name) {
  auto dir = std::filesystem::path(::testing::TempDir()) / ("kiln-export-test-" + std::to_string(::getpid()));
  return (dir / name).string();
}

Array batch(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n * 3));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * static_cast<float>(i % 7) - 0.2f;
  return Array::from(v, {n, 3});
}

TEST(Export, ForwardWritesNamedIRAndChainerWeights) {
  Net net;
  std::string prefix = tempPrefix("forward/net");  // the folder is created
  export_model(net, {batch(5)}, prefix);
  std::string ir = readText(prefix + ".mlir");
  EXPECT_THAT(ir, HasSubstr("func.func @forward("));
  EXPECT_THAT(ir, HasSubstr("tensor<4x3xf32> {kiln.name = \"l1/W\", kiln.role = \"param\"}"));
  EXPECT_THAT(ir, HasSubstr("tensor<?x3xf32> {kiln.name = \"x0\", kiln.role = \"input\"}"));
  EXPECT_THAT(ir, HasSubstr("-> (tensor<?x2xf32> {kiln.name = \"y0\", kiln.role = \"output\"})"));
  EXPECT_THAT(ir, HasSubstr("kiln.matmul"));
  std::map<std::string, Array> weights = npz::read(prefix + ".npz");
  ASSERT_EQ(weights.size(), 4u);
  EXPECT_EQ(weights.at("l1/W").shape(), (Shape{4, 3}));
  EXPECT_EQ(weights.at("l1/W").to_vector<float>(), net.l1.W.array().to_vector<float>());
  EXPECT_EQ(weights.at("l2/b").shape(), (Shape{2}));
}

// Adam's t is state of the step (int64, in and out), alpha_t is computed in it, and the counts
// are left as they were.
TEST(Export, AdamStepCarriesUpdateCounts) {
  L::Classifier<Net> model;
  optimizers::AdamW opt(0.01, 0.9, 0.999, 1e-8, 1.0, 1e-4);
  opt.setup(model);
  Array x = batch(4);
  Array t = Array::from<int32_t>({0, 1, 1, 0}, {4});
  opt.update([&](const Variable& a, const Variable& b) { return model(a, b); }, Variable(x, false), Variable(t, false));
  std::string prefix = tempPrefix("adam/net_train");
  export_training_step(model, opt, {x}, t, prefix);
  EXPECT_EQ(opt.t, 1);
  EXPECT_EQ(opt.update_rule(model.predictor.l1.W).t, 1);
  std::string ir = readText(prefix + ".mlir");
  EXPECT_THAT(ir, HasSubstr("tensor<i64> {kiln.name = \"optimizer/predictor/l1/W/t\", kiln.role = \"state\"}"));
  EXPECT_THAT(ir, HasSubstr("{kiln.name = \"optimizer/predictor/l2/b/m\", kiln.role = \"state\"}"));
  EXPECT_THAT(ir, HasSubstr("{kiln.name = \"optimizer/predictor/l2/b/v\", kiln.role = \"state\"}"));
  EXPECT_THAT(ir, HasSubstr("kiln.pow"));  // beta^t of the traced t
  std::map<std::string, Array> weights = npz::read(prefix + ".npz");
  EXPECT_EQ(weights.at("optimizer/predictor/l1/W/t").dtype(), DType::i64);
  EXPECT_EQ(weights.at("optimizer/predictor/l1/W/t").item<int64_t>(), 1);
}

TEST(Export, TrainingStepLeavesModelAndOptimizerAsTheyWere) {
  L::Classifier<Net> model;
  optimizers::MomentumSGD opt(0.1, 0.9);
  opt.setup(model);
  Array x = batch(6);
  Array t = Array::from<int32_t>({0, 1, 1, 0, 1, 0}, {6});
  model.cleargrads();
  Variable loss = model(Variable(x, false), Variable(t, false));
  loss.backward();
  opt.update();  // momentum state is not zero now
  std::vector<std::vector<float>> before;
  for (const auto& [name, p] : model.namedparams()) before.push_back(p.array().to_vector<float>());
  std::vector<float> velocity = opt.update_rule(model.predictor.l1.W).state.at("v").array().to_vector<float>();
  int64_t t_before = opt.t;

  std::string prefix = tempPrefix("step/net_train");
  export_training_step(model, opt, {x}, t, prefix);

  size_t i = 0;
  for (const auto& [name, p] : model.namedparams()) EXPECT_EQ(p.array().to_vector<float>(), before[i++]) << name;
  EXPECT_EQ(opt.update_rule(model.predictor.l1.W).state.at("v").array().to_vector<float>(), velocity);
  EXPECT_EQ(opt.t, t_before);
  EXPECT_EQ(opt.update_rule(model.predictor.l1.W).t, 1);

  std::string ir = readText(prefix + ".mlir");
  EXPECT_THAT(ir, HasSubstr("func.func @step("));
  EXPECT_THAT(ir, HasSubstr("func.func @forward("));
  EXPECT_THAT(ir, HasSubstr("{kiln.name = \"predictor/l1/W\", kiln.role = \"param\"}"));
  EXPECT_THAT(ir, HasSubstr("{kiln.name = \"optimizer/predictor/l1/W/v\", kiln.role = \"state\"}"));
  EXPECT_THAT(ir, HasSubstr("tensor<?xi32> {kiln.name = \"t\", kiln.role = \"label\"}"));
  EXPECT_THAT(ir, HasSubstr("tensor<f32> {kiln.name = \"loss\", kiln.role = \"loss\"}"));
  EXPECT_THAT(ir, HasSubstr("kiln.role = \"status\""));  // the label check of softmax_cross_entropy
  EXPECT_THAT(ir, ::testing::Not(HasSubstr("kiln.grad")));  // autodiff ran
  std::map<std::string, Array> weights = npz::read(prefix + ".npz");
  EXPECT_EQ(weights.at("predictor/l1/W").to_vector<float>(), before[0]);
  EXPECT_EQ(weights.at("optimizer/predictor/l1/W/v").to_vector<float>(), velocity);
  EXPECT_EQ(weights.at("optimizer/t").item<int64_t>(), t_before);

  // The JIT keeps training as if nothing had happened: the same step as a copy's.
  model.cleargrads();
  Variable again = model(Variable(x, false), Variable(t, false));
  again.backward();
  opt.update();
  EXPECT_EQ(opt.t, t_before + 1);
}

TEST(Export, Errors) {
  Net net;
  EXPECT_THAT(error_of([&] { export_model(net, {batch(2), batch(2)}, tempPrefix("e1")); }),
              HasSubstr("cannot be called with 2 example input(s)"));
  EXPECT_THAT(error_of([&] { export_model(net, std::vector<Array>{}, tempPrefix("e2")); }),
              HasSubstr("at least one example input"));
  EXPECT_THAT(error_of([&] { export_model(net, {Array::scalar<float>(1.f)}, tempPrefix("e3")); }),
              HasSubstr("example input 0 is a scalar"));
  L::Classifier<Net> model;
  Array t = Array::from<int32_t>({0, 1}, {2});
  optimizers::SGD unset;
  EXPECT_THAT(error_of([&] { export_training_step(model, unset, {batch(2)}, t, tempPrefix("e5")); }),
              HasSubstr("the optimizer is not set up"));
  L::Classifier<Net> other;
  optimizers::SGD elsewhere;
  elsewhere.setup(other);
  EXPECT_THAT(error_of([&] { export_training_step(model, elsewhere, {batch(2)}, t, tempPrefix("e6")); }),
              HasSubstr("set up on another link"));
  std::filesystem::create_directories(tempPrefix("e7.mlir"));  // a folder where the file goes
  EXPECT_THAT(error_of([&] { export_model(net, {batch(2)}, tempPrefix("e7")); }), HasSubstr("cannot write"));
}

}  // namespace
