// The cpu backend compiles the batch size as a symbolic dimension: other batch
// sizes reuse the compiled graph, and give the interpreter's results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cstdlib>
#include <filesystem>
#include <functional>

#include "expect_arrays.h"

using namespace kiln;
using ::testing::HasSubstr;

namespace {

// One model step at a given batch size; returns the values to compare.
using Step = std::function<std::vector<Array>(int64_t batch)>;

std::vector<Array> run_on(const char* backend, const Step& step, int64_t batch) {
  setenv("KILN_BACKEND", backend, 1);
  std::vector<Array> results = step(batch);
  unsetenv("KILN_BACKEND");
  return results;
}

// Runs `step` on the cpu backend at each batch size in turn, with one memory
// cache for all of them, and each against the interpreter. Returns how many
// graphs the cpu backend compiled (or loaded from disk).
int64_t compiles_over(const std::vector<int64_t>& batches, const Step& step, double tolerance = 1e-5) {
  clear_memory_cache();
  int64_t compiles = 0;
  for (int64_t batch : batches) {
    SCOPED_TRACE("batch size " + std::to_string(batch));
    CacheStats before = cache_stats();
    std::vector<Array> actual = run_on("cpu", step, batch);
    CacheStats after = cache_stats();
    compiles += (after.misses - before.misses) + (after.disk_hits - before.disk_hits);
    std::vector<Array> expected = run_on("interp", step, batch);
    expect_arrays_near(actual, expected, tolerance);
  }
  return compiles;
}

Array labels(int64_t batch, int64_t classes, uint64_t seed) {
  std::vector<int32_t> t;
  for (int64_t i = 0; i < batch; ++i) t.push_back(static_cast<int32_t>((i * 7 + seed) % classes));
  return Array::from(t, {batch});
}

class SymbolicBatch : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("KILN_SYMBOLIC_BATCH"); }
};

}  // namespace

TEST_F(SymbolicBatch, MlpForwardBackwardCompilesOnce) {
  Parameter W1(Array::randn({16, 12}, 1)), b1(Array::randn({16}, 2));
  Parameter W2(Array::randn({5, 16}, 3)), b2(Array::randn({5}, 4));
  Step step = [&](int64_t n) {
    for (Parameter* p : {&W1, &b1, &W2, &b2}) p->cleargrad();
    Variable x(Array::randn({n, 12}, 10 + n));
    Variable y = F::linear(F::relu(F::linear(x, W1, b1)), W2, b2);
    Variable loss = F::softmax_cross_entropy(y, Variable(labels(n, 5, 1)));
    Variable acc = F::accuracy(y, Variable(labels(n, 5, 2)));
    loss.backward();
    return std::vector<Array>{y.array(), loss.array(), acc.array(), W1.grad(), b1.grad(), W2.grad(), b2.grad()};
  };
  // The last two are a partial batch and an evaluation-sized batch.
  EXPECT_EQ(compiles_over({32, 32, 7, 100}, step, 1e-4), 1);
}

TEST_F(SymbolicBatch, MeansAndLossesUseTheRunTimeBatchSize) {
  Step step = [](int64_t n) {
    Variable x(Array::randn({n, 6}, 20 + n)), z(Array::randn({n, 6}, 40 + n));
    Variable t(labels(n, 6, 3));
    // All recorded before the first array(): one graph.
    std::vector<Variable> ys{F::mean(x),
                             F::mean(x, std::vector<int64_t>{0}),
                             F::mean_squared_error(x, z),
                             F::softmax_cross_entropy(x, t, /*normalize=*/false),
                             F::sigmoid_cross_entropy(x, Variable(Array::full({n, 6}, 1, DType::i32))),
                             F::softmax(x),
                             F::sum(F::log_softmax(x), std::vector<int64_t>{1})};
    std::vector<Array> arrays;
    for (Variable& y : ys) arrays.push_back(y.array());
    return arrays;
  };
  EXPECT_EQ(compiles_over({9, 4, 13}, step), 1);
}

TEST_F(SymbolicBatch, ConvolutionPoolingBatchNormalization) {
  L::Convolution2D conv(2, 3, 3, 1, 1);
  L::BatchNormalization bn(3);
  L::Linear fc(3 * 3 * 3, 4);
  Step step = [&](int64_t n) {
    conv.cleargrads();
    bn.cleargrads();
    fc.cleargrads();
    Variable x(Array::randn({n, 2, 6, 6}, 50 + n));
    Variable h = F::max_pooling_2d(F::relu(bn(conv(x))), 2);
    Variable y = fc(F::reshape(h, {n, 27}));
    Variable loss = F::softmax_cross_entropy(y, Variable(labels(n, 4, 5)));
    loss.backward();
    return std::vector<Array>{y.array(), loss.array(), conv.W.grad(), bn.gamma.grad(), fc.W.grad()};
  };
  // Batch 3 equals the channel count and the pooled size: still one graph.
  EXPECT_EQ(compiles_over({8, 3, 5, 8}, step, 1e-4), 1);
}

TEST_F(SymbolicBatch, EmbeddingAndDropout) {
  L::EmbedID embed(11, 4);
  Step step = [&](int64_t n) {
    embed.cleargrads();
    F::set_dropout_seed(7);
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < n * 3; ++i) ids.push_back(static_cast<int32_t>((i * 5) % 11));
    Variable e = embed(Variable(Array::from(ids, {n, 3})));
    Variable y = F::dropout(e, 0.25);
    Variable loss = F::sum(y * y);
    loss.backward();
    return std::vector<Array>{y.array(), embed.W.grad()};
  };
  EXPECT_EQ(compiles_over({6, 5, 9}, step), 1);
  // Dropout's Philox key (2 values) is state: it never becomes the batch size,
  // even when it is the only other input.
  Step only_dropout = [](int64_t n) {
    F::set_dropout_seed(3);
    Variable y = F::dropout(Variable(Array::randn({n}, 130 + n)), 0.5);
    return std::vector<Array>{y.array()};
  };
  EXPECT_EQ(compiles_over({7, 4, 11}, only_dropout), 1);
}

TEST_F(SymbolicBatch, TrainingWithAPartialLastBatch) {
  // Batches of 16, 16 and the remaining 5, then 16 again: one compiled step.
  auto train = [](const char* backend) {
    setenv("KILN_BACKEND", backend, 1);
    clear_memory_cache();
    Sequential model;
    auto init = [](uint64_t seed) {
      return [seed](const Shape& shape, DType dtype) { return Array::randn(shape, seed, dtype); };
    };
    model.add(L::Linear(8, 10, false, init(1), init(2)));
    model.add([](const Variable& v) { return F::relu(v); });
    model.add(L::Linear(10, 3, false, init(3), init(4)));
    optimizers::Adam opt;
    opt.setup(model);
    CacheStats before = cache_stats();
    for (int64_t n : {16, 16, 5, 16}) {
      model.cleargrads();
      Variable loss = F::softmax_cross_entropy(model(Variable(Array::randn({n, 8}, 60 + n))),
                                               Variable(labels(n, 3, 6)));
      loss.backward();
      opt.update();
    }
    CacheStats after = cache_stats();
    unsetenv("KILN_BACKEND");
    std::vector<Array> params;
    for (Parameter& p : model.params()) params.push_back(p.array());
    return std::make_pair(after.misses - before.misses, params);
  };
  auto [cpu_compiles, cpu_params] = train("cpu");
  auto [interp_compiles, interp_params] = train("interp");
  EXPECT_EQ(cpu_compiles, 1);
  EXPECT_EQ(interp_compiles, 2);  // the interpreter keeps concrete shapes
  expect_arrays_near(cpu_params, interp_params, 1e-4);
}

TEST_F(SymbolicBatch, BatchEqualToAHiddenSizeIsOneGraph) {
  // Batch 6 equals W's 6 rows: only the dimensions that come from the data
  // are the batch, so every batch size shares one graph.
  Parameter W(Array::randn({6, 5}, 70));
  Step step = [&](int64_t n) {
    W.cleargrad();
    Variable x(Array::randn({n, 5}, 71 + n));
    Variable loss = F::mean(F::tanh(F::linear(x, W)));
    loss.backward();
    return std::vector<Array>{loss.array(), W.grad()};
  };
  EXPECT_EQ(compiles_over({6, 4, 3, 6}, step), 1);
}

TEST_F(SymbolicBatch, BatchEqualToEverySizeOfAClassifier) {
  // Batch 10, 10 hidden units, 10 classes: the batch dimensions still come from the data.
  L::Linear l1(4, 10), l2(10, 10);
  Step step = [&](int64_t n) {
    l1.cleargrads();
    l2.cleargrads();
    Variable y = l2(F::relu(l1(Variable(Array::randn({n, 4}, 90 + n)))));
    Variable t(labels(n, 10, 4));
    Variable loss = F::softmax_cross_entropy(y, t);
    Variable acc = F::accuracy(y, t);
    loss.backward();
    return std::vector<Array>{loss.array(), acc.array(), l1.W.grad(), l2.b.grad()};
  };
  EXPECT_EQ(compiles_over({10, 7, 10, 3}, step, 1e-4), 1);
}

TEST_F(SymbolicBatch, DiskCacheServesOtherBatchSizes) {
  // A graph compiled at batch 8 is loaded from disk for batch 5 (a new process
  // is a cleared memory cache), with no compile.
  std::string dir = std::string(KILN_BINARY_DIR) + "/test-symbolic-disk-cache";
  std::filesystem::remove_all(dir);
  setenv("KILN_CACHE_DIR", dir.c_str(), 1);
  setenv("KILN_CACHE_MAX_MB", "64", 1);
  Parameter W(Array::randn({3, 4}, 100));
  auto run = [&](int64_t n) {
    clear_memory_cache();
    CacheStats before = cache_stats();
    Variable y = F::sum(F::tanh(F::linear(Variable(Array::randn({n, 4}, 101)), W)), std::vector<int64_t>{1});
    Array result = y.array();
    CacheStats after = cache_stats();
    EXPECT_EQ(result.shape(), Shape{n});
    return std::make_pair(after.misses - before.misses, after.disk_hits - before.disk_hits);
  };
  EXPECT_EQ(run(8), std::make_pair(int64_t{1}, int64_t{0}));
  EXPECT_EQ(run(5), std::make_pair(int64_t{0}, int64_t{1}));
  setenv("KILN_CACHE_MAX_MB", "0", 1);
  unsetenv("KILN_CACHE_DIR");
  std::filesystem::remove_all(dir);
}

TEST_F(SymbolicBatch, ShapeFunctionsLayersAndCustomFunctions) {
  L::Deconvolution2D deconv(2, 3, 2, 2, 0);
  L::LayerNormalization norm(12);
  FunctionNode square{"Square",
                      [](const std::vector<Variable>& in) { return in[0] * in[0]; },
                      [](const std::vector<Variable>& in, const Variable&, const Variable& gy) {
                        return std::vector<Variable>{gy * in[0] * 2.0};
                      }};
  Step step = [&](int64_t n) {
    deconv.cleargrads();
    norm.cleargrads();
    Variable x(Array::randn({n, 2, 3, 3}, 110 + n));
    Variable h = deconv(x);                                              // (n, 3, 6, 6)
    Variable p = F::average_pooling_2d(h, 3);                            // (n, 3, 2, 2)
    Variable flat = F::reshape(F::transpose(p, {0, 2, 3, 1}), {n, 12});  // (n, 12)
    std::vector<Variable> parts = F::split_axis(flat, 3, 1);             // 3 x (n, 4)
    Variable joined = F::concat({parts[2], parts[0], parts[1]}, 1);
    Variable cols = F::get_item(joined, {Slice{}, Slice{1, 9, 2}});      // (n, 4)
    Variable y = square({F::tanh(norm(joined))});
    Variable loss = F::mean(y) + F::sum(cols * cols) + F::mean(F::stack({cols, cols}, 1));
    loss.backward();
    return std::vector<Array>{loss.array(), y.array(), deconv.W.grad(), norm.gamma.grad()};
  };
  EXPECT_EQ(compiles_over({6, 4, 9}, step, 1e-4), 1);
}

TEST_F(SymbolicBatch, ReductionsOverTheBatchAndTheirGradients) {
  Parameter w(Array::randn({5}, 140));
  Step step = [&](int64_t n) {
    w.cleargrad();
    Variable x(Array::randn({n, 5}, 141 + n));
    Variable h = F::leaky_relu(x * F::broadcast_to(w, {n, 5}));
    using Axis = std::vector<int64_t>;
    Variable loss = F::sum(F::max(h, Axis{0})) + F::sum(F::min(h, Axis{0}, true)) +
                    F::sum(F::logsumexp(h, Axis{0})) + F::mean(F::clip(F::softplus(h), 0.1, 2.0)) +
                    F::sum(F::where(F::greater(F::cast(F::argmax(h, 1), DType::f32), Variable(Array::full({n}, 2.0))),
                                    F::sum(h, Axis{1}), F::sum(h, Axis{1}) * 0.5f));
    loss.backward();
    return std::vector<Array>{loss.array(), w.grad(), F::argmax(h, 0).array()};
  };
  EXPECT_EQ(compiles_over({6, 3, 10}, step, 1e-4), 2);  // the step, and argmax(h, 0) after it
}

TEST_F(SymbolicBatch, PartOfTheBatchIsConcretePerSize) {
  // Slicing part of the batch dimension cannot be symbolic: compiled per batch size, still correct.
  Step step = [](int64_t n) {
    Variable x(Array::randn({n, 3}, 120 + n));
    Variable head = F::get_item(x, {Slice{0, 2, std::nullopt}});
    return std::vector<Array>{F::sum(head * head).array()};
  };
  EXPECT_EQ(compiles_over({5, 7}, step), 2);
  // KILN_EXPLAIN_CACHE_MISSES names the op, at the user's line.
  setenv("KILN_EXPLAIN_CACHE_MISSES", "1", 1);
  testing::internal::CaptureStderr();
  compiles_over({6}, step);
  std::string err = testing::internal::GetCapturedStderr();
  unsetenv("KILN_EXPLAIN_CACHE_MISSES");
  EXPECT_THAT(err, HasSubstr("symbolic_batch_test.cpp:"));
  EXPECT_THAT(err, HasSubstr(": kiln: the batch size stays concrete: 'kiln.slice' cannot take a symbolic batch "
                             "size with operands (B, 3)"));
}

TEST_F(SymbolicBatch, CanBeTurnedOff) {
  setenv("KILN_SYMBOLIC_BATCH", "0", 1);
  Step step = [](int64_t n) { return std::vector<Array>{F::mean(Variable(Array::randn({n, 3}, 80))).array()}; };
  EXPECT_EQ(compiles_over({5, 6, 5}, step), 2);
}

TEST_F(SymbolicBatch, GatherIdsAreCheckedAgainstTheRunTimeTable) {
  // A table of 4 rows with a batch of 4: the rows are the symbolic size too.
  Step step = [](int64_t n) {
    Variable table(Array::randn({n, 3}, 90));
    std::vector<int32_t> ids(static_cast<size_t>(n), static_cast<int32_t>(n - 1));
    return std::vector<Array>{F::embed_id(Variable(Array::from(ids, {n})), table).array()};
  };
  EXPECT_LE(compiles_over({4, 7}, step), 2);
  setenv("KILN_BACKEND", "cpu", 1);
  Variable table(Array::randn({5, 3}, 91));
  Variable bad = F::embed_id(Variable(Array::from<int32_t>({0, 1, 2, 3, 5}, {5})), table);
  EXPECT_THROW(bad.array(), Error);
  unsetenv("KILN_BACKEND");
}
