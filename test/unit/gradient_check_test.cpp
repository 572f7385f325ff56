// gradient_check::check_backward on every differentiable function of kiln::functions,
// each on at least two shapes (broadcasting and strided views where they apply).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

#include <cmath>

using namespace kiln;
using ::testing::HasSubstr;
using Vs = std::vector<Variable>;
using MultiFn = std::function<Vs(const Vs&)>;

namespace {

uint64_t g_seed = 1;

Array randn(Shape s) { return Array::randn(std::move(s), g_seed++, DType::f64); }
// Values in [lo, hi): normals squashed through erf.
Array uniform(Shape s, double lo, double hi) {
  Array a = randn(std::move(s));
  for (int64_t i = 0; i < a.size(); ++i) a.set(i, lo + (hi - lo) * 0.5 * (1 + std::erf(a.at(i) / std::sqrt(2.0))));
  return a;
}
// Values whose magnitude is at least `gap` (away from kinks at 0).
Array away_from_zero(Shape s, double gap = 0.1) {
  Array a = randn(std::move(s));
  for (int64_t i = 0; i < a.size(); ++i) a.set(i, a.at(i) >= 0 ? a.at(i) + gap : a.at(i) - gap);
  return a;
}
// A permutation of well-separated values (no ties for max/argmax-like functions).
Array distinct(Shape s) {
  int64_t n = shape_size(s);
  Array a(s, DType::f64);
  for (int64_t i = 0; i < n; ++i) a.set(i, 0.37 * static_cast<double>((i * 7 + 3) % n) - 0.1 * n);
  return a;
}
Array ints(std::vector<int32_t> v, Shape s) { return Array::from(v, std::move(s)); }

struct Case {
  std::string name;
  MultiFn fn;
  std::vector<Array> inputs;
  gradient_check::Options options{};
};
// gtest prints a parameter in failure messages and test listings: the case's name,
// not its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Case single(std::string name, std::function<Variable(const Vs&)> f, std::vector<Array> in,
            gradient_check::Options o = {}) {
  return Case{std::move(name), [f](const Vs& v) { return Vs{f(v)}; }, std::move(in), o};
}

std::vector<Case> cases() {
  std::vector<Case> c;
  auto add = [&](std::string n, std::function<Variable(const Vs&)> f, std::vector<Array> in,
                 gradient_check::Options o = {}) { c.push_back(single(std::move(n), std::move(f), std::move(in), o)); };

  // ---- arithmetic (with broadcasting) ----
  add("identity_2d", [](const Vs& v) { return F::identity(v[0]); }, {randn({3, 4})});
  add("identity_3d", [](const Vs& v) { return F::identity(v[0]); }, {randn({2, 3, 2})});
  add("add_same", [](const Vs& v) { return F::add(v[0], v[1]); }, {randn({3, 4}), randn({3, 4})});
  add("add_broadcast", [](const Vs& v) { return F::add(v[0], v[1]); }, {randn({2, 3}), randn({3})});
  add("sub_same", [](const Vs& v) { return v[0] - v[1]; }, {randn({3, 4}), randn({3, 4})});
  add("sub_broadcast", [](const Vs& v) { return F::sub(v[0], v[1]); }, {randn({2, 1, 3}), randn({4, 1})});
  add("mul_same", [](const Vs& v) { return v[0] * v[1]; }, {randn({3, 4}), randn({3, 4})});
  add("mul_broadcast", [](const Vs& v) { return F::mul(v[0], v[1]); }, {randn({2, 3, 1}), randn({1, 4})});
  add("mul_scalar", [](const Vs& v) { return 2.5 * v[0] - v[0] * 0.5 + 1.0; }, {randn({5})});
  add("div_same", [](const Vs& v) { return v[0] / v[1]; }, {randn({3, 4}), uniform({3, 4}, 0.5, 2)});
  add("div_broadcast", [](const Vs& v) { return F::div(v[0], v[1]); }, {randn({2, 3}), uniform({2, 1}, 0.5, 2)});
  add("negative_2d", [](const Vs& v) { return F::negative(v[0]); }, {randn({3, 4})});
  add("negative_1d", [](const Vs& v) { return -v[0]; }, {randn({6})});
  add("maximum_same", [](const Vs& v) { return F::maximum(v[0], v[1]); }, {distinct({3, 4}), randn({3, 4})});
  add("maximum_broadcast", [](const Vs& v) { return F::maximum(v[0], v[1]); }, {distinct({2, 3}), Array::from<double>({-0.05, 0.33, 0.71}, {3})});
  add("minimum_same", [](const Vs& v) { return F::minimum(v[0], v[1]); }, {distinct({3, 4}), randn({3, 4})});
  add("minimum_broadcast", [](const Vs& v) { return F::minimum(v[0], v[1]); }, {distinct({2, 3}), Array::from<double>({-0.05, 0.33, 0.71}, {3})});
  add("pow_var", [](const Vs& v) { return F::pow(v[0], v[1]); }, {uniform({3, 4}, 0.5, 2), randn({3, 4})});
  add("pow_var_broadcast", [](const Vs& v) { return F::pow(v[0], v[1]); }, {uniform({2, 3}, 0.5, 2), uniform({3}, -1, 2)});
  add("pow_scalar_3", [](const Vs& v) { return F::pow(v[0], 3.0); }, {randn({3, 4})});
  add("pow_scalar_half", [](const Vs& v) { return F::pow(v[0], 0.5); }, {uniform({2, 3, 2}, 0.5, 2)});
  add("where_same", [](const Vs& v) { return F::where(F::greater(v[2], F::identity(Variable(Array::zeros({3, 4}, DType::f64), false))), v[0], v[1]); },
      {randn({3, 4}), randn({3, 4}), randn({3, 4})});
  add("where_broadcast", [](const Vs& v) { return F::where(Variable(Array::from<bool>({true, false, true}, {3}), false), v[0], v[1]); },
      {randn({2, 3}), randn({2, 1})});
  add("absolute_2d", [](const Vs& v) { return F::absolute(v[0]); }, {away_from_zero({3, 4})});
  add("absolute_3d", [](const Vs& v) { return F::absolute(v[0]); }, {away_from_zero({2, 2, 3})});
  add("square_2d", [](const Vs& v) { return F::square(v[0]); }, {randn({3, 4})});
  add("square_1d", [](const Vs& v) { return F::square(v[0]); }, {randn({7})});
  add("sqrt_2d", [](const Vs& v) { return F::sqrt(v[0]); }, {uniform({3, 4}, 0.5, 3)});
  add("sqrt_3d", [](const Vs& v) { return F::sqrt(v[0]); }, {uniform({2, 3, 2}, 0.5, 3)});
  add("rsqrt_2d", [](const Vs& v) { return F::rsqrt(v[0]); }, {uniform({3, 4}, 0.5, 3)});
  add("rsqrt_1d", [](const Vs& v) { return F::rsqrt(v[0]); }, {uniform({5}, 0.5, 3)});
  add("exp_2d", [](const Vs& v) { return F::exp(v[0]); }, {randn({3, 4})});
  add("exp_3d", [](const Vs& v) { return F::exp(v[0]); }, {randn({2, 3, 2})});
  add("log_2d", [](const Vs& v) { return F::log(v[0]); }, {uniform({3, 4}, 0.5, 3)});
  add("log_1d", [](const Vs& v) { return F::log(v[0]); }, {uniform({6}, 0.5, 3)});
  add("clip_2d", [](const Vs& v) { return F::clip(v[0], -0.45, 0.55); }, {distinct({3, 4})});
  add("clip_3d", [](const Vs& v) { return F::clip(v[0], -1.0, 1.0); }, {distinct({2, 3, 2})});
  add("cast_f32", [](const Vs& v) { return F::cast(F::cast(v[0], DType::f32), DType::f64); }, {randn({3, 4})},
      {1e-3, 1e-3, 1e-2});
  add("cast_same", [](const Vs& v) { return F::cast(v[0], DType::f64) * 2.0; }, {randn({2, 3, 2})});

  // ---- shapes and indexing ----
  add("reshape_2d", [](const Vs& v) { return F::reshape(v[0], {4, 3}); }, {randn({3, 4})});
  add("reshape_infer", [](const Vs& v) { return F::reshape(v[0], {-1, 2}); }, {randn({2, 3, 2})});
  add("transpose_default", [](const Vs& v) { return F::transpose(v[0]); }, {randn({3, 4})});
  add("transpose_axes", [](const Vs& v) { return F::transpose(v[0], {1, 2, 0}); }, {randn({2, 3, 4})});
  add("broadcast_to_2d", [](const Vs& v) { return F::broadcast_to(v[0], {3, 4}); }, {randn({1, 4})});
  add("broadcast_to_3d", [](const Vs& v) { return F::broadcast_to(v[0], {2, 3, 4}); }, {randn({3, 1})});
  add("expand_dims_0", [](const Vs& v) { return F::expand_dims(v[0], 0); }, {randn({3, 4})});
  add("expand_dims_neg", [](const Vs& v) { return F::expand_dims(v[0], -1); }, {randn({2, 3})});
  add("squeeze_all", [](const Vs& v) { return F::squeeze(v[0]); }, {randn({1, 3, 1, 2})});
  add("squeeze_axis", [](const Vs& v) { return F::squeeze(v[0], std::vector<int64_t>{2}); }, {randn({2, 3, 1})});
  add("flatten_2d", [](const Vs& v) { return F::flatten(v[0]); }, {randn({3, 4})});
  add("flatten_of_transpose", [](const Vs& v) { return F::flatten(F::transpose(v[0])); }, {randn({2, 3, 2})});
  add("concat_axis1", [](const Vs& v) { return F::concat({v[0], v[1]}); }, {randn({2, 3}), randn({2, 2})});
  add("concat_axis0_three", [](const Vs& v) { return F::concat({v[0], v[1], v[2]}, 0); },
      {randn({1, 2, 2}), randn({2, 2, 2}), randn({1, 2, 2})});
  c.push_back(Case{"split_axis_sections", [](const Vs& v) { return F::split_axis(v[0], 3, 1); }, {randn({2, 6})}});
  c.push_back(Case{"split_axis_indices", [](const Vs& v) { return F::split_axis(v[0], std::vector<int64_t>{1, 3}, 0); },
                   {randn({4, 2, 2})}});
  add("stack_axis0", [](const Vs& v) { return F::stack({v[0], v[1]}); }, {randn({2, 3}), randn({2, 3})});
  add("stack_axis_last", [](const Vs& v) { return F::stack({v[0], v[1], v[0]}, -1); }, {randn({3}), randn({3})});
  add("get_item_strided", [](const Vs& v) { return F::get_item(v[0], {Slice{1, std::nullopt, 2}, Slice{std::nullopt, std::nullopt, -1}}); },
      {randn({5, 4})});
  add("get_item_int_newaxis", [](const Vs& v) { return F::get_item(v[0], {int64_t{-1}, NewAxis{}, Slice{0, 3, 2}}); },
      {randn({2, 4, 2})});
  add("pad_2d", [](const Vs& v) { return F::pad(v[0], {{1, 0}, {2, 1}}, 0.5); }, {randn({2, 3})});
  add("pad_3d_uniform", [](const Vs& v) { return F::pad(v[0], {{1, 1}}); }, {randn({2, 1, 2})});
  // A non-contiguous input: a strided slice of a transposed array feeds an elementwise op.
  add("strided_view_chain", [](const Vs& v) {
        Variable t = F::transpose(v[0]);
        return F::exp(F::get_item(t, {Slice{std::nullopt, std::nullopt, 2}})) * v[1];
      },
      {randn({3, 5}), randn({3, 3})});

  // ---- reductions ----
  add("sum_all", [](const Vs& v) { return F::sum(v[0]); }, {randn({3, 4})});
  add("sum_axis_keepdims", [](const Vs& v) { return F::sum(v[0], std::vector<int64_t>{0, 2}, true); }, {randn({2, 3, 2})});
  add("mean_all", [](const Vs& v) { return F::mean(v[0]); }, {randn({3, 4})});
  add("mean_axis", [](const Vs& v) { return F::mean(v[0], std::vector<int64_t>{-1}); }, {randn({2, 3, 2})});
  add("max_all", [](const Vs& v) { return F::max(v[0]); }, {distinct({3, 4})});
  add("max_axis_keepdims", [](const Vs& v) { return F::max(v[0], std::vector<int64_t>{1}, true); }, {distinct({2, 3, 2})});
  add("min_all", [](const Vs& v) { return F::min(v[0]); }, {distinct({3, 4})});
  add("min_axis", [](const Vs& v) { return F::min(v[0], std::vector<int64_t>{0}); }, {distinct({2, 3, 2})});
  add("logsumexp_all", [](const Vs& v) { return F::logsumexp(v[0]); }, {randn({3, 4})});
  add("logsumexp_axis", [](const Vs& v) { return F::logsumexp(v[0], std::vector<int64_t>{1}); }, {randn({2, 3, 2})});

  // ---- linear algebra ----
  add("matmul_2d", [](const Vs& v) { return F::matmul(v[0], v[1]); }, {randn({2, 3}), randn({3, 4})});
  add("matmul_trans", [](const Vs& v) { return F::matmul(v[0], v[1], true, true); }, {randn({3, 2}), randn({4, 3})});
  add("matmul_batched_broadcast", [](const Vs& v) { return F::matmul(v[0], v[1]); }, {randn({2, 2, 3}), randn({3, 2})});
  add("matmul_vector", [](const Vs& v) { return F::matmul(v[0], v[1]); }, {randn({3}), randn({3, 2})});
  add("batch_matmul", [](const Vs& v) { return F::batch_matmul(v[0], v[1]); }, {randn({2, 2, 3}), randn({2, 3, 2})});
  add("batch_matmul_transb", [](const Vs& v) { return F::batch_matmul(v[0], v[1], false, true); },
      {randn({3, 1, 2}), randn({3, 2, 2})});
  add("linear_bias", [](const Vs& v) { return F::linear(v[0], v[1], v[2]); }, {randn({2, 3}), randn({4, 3}), randn({4})});
  add("linear_nobias_nd", [](const Vs& v) { return F::linear(v[0], v[1]); }, {randn({2, 2, 3}), randn({2, 6})});
  add("linear_batch_axes2", [](const Vs& v) { return F::linear(v[0], v[1], v[2], 2); },
      {randn({2, 2, 3}), randn({2, 3}), randn({2})});

  // ---- activations ----
  add("relu_2d", [](const Vs& v) { return F::relu(v[0]); }, {away_from_zero({3, 4})});
  add("relu_4d", [](const Vs& v) { return F::relu(v[0]); }, {away_from_zero({1, 2, 2, 2})});
  add("leaky_relu_default", [](const Vs& v) { return F::leaky_relu(v[0]); }, {away_from_zero({3, 4})});
  add("leaky_relu_slope", [](const Vs& v) { return F::leaky_relu(v[0], 0.5); }, {away_from_zero({2, 3, 2})});
  add("elu_default", [](const Vs& v) { return F::elu(v[0]); }, {away_from_zero({3, 4})});
  add("elu_alpha", [](const Vs& v) { return F::elu(v[0], 0.5); }, {away_from_zero({2, 3, 2})});
  add("sigmoid_2d", [](const Vs& v) { return F::sigmoid(v[0]); }, {randn({3, 4})});
  add("sigmoid_1d", [](const Vs& v) { return F::sigmoid(v[0]); }, {randn({5})});
  add("tanh_2d", [](const Vs& v) { return F::tanh(v[0]); }, {randn({3, 4})});
  add("tanh_3d", [](const Vs& v) { return F::tanh(v[0]); }, {randn({2, 3, 2})});
  add("softplus_default", [](const Vs& v) { return F::softplus(v[0]); }, {away_from_zero({3, 4})});
  add("softplus_beta", [](const Vs& v) { return F::softplus(v[0], 2.0); }, {away_from_zero({2, 3, 2})});
  add("gelu_2d", [](const Vs& v) { return F::gelu(v[0]); }, {randn({3, 4})});
  add("gelu_1d", [](const Vs& v) { return F::gelu(v[0]); }, {randn({6})});
  add("swish_2d", [](const Vs& v) { return F::swish(v[0], v[1]); }, {randn({2, 3}), randn({3})});
  add("swish_3d", [](const Vs& v) { return F::swish(v[0], v[1]); }, {randn({2, 3, 2}), randn({3})});
  add("softmax_axis1", [](const Vs& v) { return F::softmax(v[0]); }, {randn({3, 4})});
  add("softmax_axis_last", [](const Vs& v) { return F::softmax(v[0], -1); }, {randn({2, 2, 3})});
  add("log_softmax_axis1", [](const Vs& v) { return F::log_softmax(v[0]); }, {randn({3, 4})});
  add("log_softmax_axis0", [](const Vs& v) { return F::log_softmax(v[0], 0); }, {randn({2, 2, 3})});
  // The mask must be the same in every evaluation: reset the Philox counter first.
  add("dropout_half", [](const Vs& v) { F::set_dropout_seed(3); return F::dropout(v[0]); }, {randn({3, 4})});
  add("dropout_ratio", [](const Vs& v) { F::set_dropout_seed(5); return F::dropout(v[0], 0.2); }, {randn({2, 3, 2})});

  // ---- losses ----
  add("softmax_cross_entropy_mean", [](const Vs& v) { return F::softmax_cross_entropy(v[0], v[1]); },
      {randn({4, 3}), ints({0, 2, -1, 1}, {4})});
  add("softmax_cross_entropy_nd_nonorm", [](const Vs& v) { return F::softmax_cross_entropy(v[0], v[1], false); },
      {randn({2, 3, 2}), ints({0, 2, 1, -1}, {2, 2})});
  add("softmax_cross_entropy_no_reduce", [](const Vs& v) { return F::softmax_cross_entropy(v[0], v[1], true, 1, "no"); },
      {randn({3, 3}), ints({1, 0, 2}, {3})});
  add("mean_squared_error_2d", [](const Vs& v) { return F::mean_squared_error(v[0], v[1]); }, {randn({3, 4}), randn({3, 4})});
  add("mean_squared_error_3d", [](const Vs& v) { return F::mean_squared_error(v[0], v[1]); }, {randn({2, 3, 2}), randn({2, 3, 2})});
  add("sigmoid_cross_entropy_mean", [](const Vs& v) { return F::sigmoid_cross_entropy(v[0], v[1]); },
      {randn({3, 2}), ints({0, 1, -1, 1, 0, 0}, {3, 2})});
  add("sigmoid_cross_entropy_no_reduce", [](const Vs& v) { return F::sigmoid_cross_entropy(v[0], v[1], false, "no"); },
      {randn({2, 2, 2}), ints({1, 0, 1, 1, -1, 0, 0, 1}, {2, 2, 2})});
  add("sigmoid_cross_entropy_nonorm", [](const Vs& v) { return F::sigmoid_cross_entropy(v[0], v[1], false); },
      {randn({4}), ints({1, 0, -1, 1}, {4})});
  add("huber_loss_sum", [](const Vs& v) { return F::huber_loss(v[0], v[1], 1.0); },
      {Array::from<double>({0.1, 2.0, -1.7, 0.4, -0.3, 3.0}, {2, 3}), Array::from<double>({0.3, -0.2, 0.1, 0.0, 0.9, 1.2}, {2, 3})});
  add("huber_loss_no_reduce", [](const Vs& v) { return F::huber_loss(v[0], v[1], 0.5, "no"); },
      {Array::from<double>({0.1, 2.0, -1.7, 0.4, -0.3, 3.0, 0.05, -2.0}, {2, 2, 2}), randn({2, 2, 2})});

  // ---- CNN ----
  add("convolution_2d_bias", [](const Vs& v) { return F::convolution_2d(v[0], v[1], v[2]); },
      {randn({2, 2, 4, 3}), randn({3, 2, 2, 2}), randn({3})});
  add("convolution_2d_stride_pad", [](const Vs& v) { return F::convolution_2d(v[0], v[1], Variable(), {2, 1}, {1, 0}); },
      {randn({1, 2, 5, 4}), randn({2, 2, 3, 2})});
  add("deconvolution_2d_bias", [](const Vs& v) { return F::deconvolution_2d(v[0], v[1], v[2], 2, 1); },
      {randn({1, 2, 3, 2}), randn({2, 3, 3, 3}), randn({3})});
  add("deconvolution_2d_outsize", [](const Vs& v) { return F::deconvolution_2d(v[0], v[1], Variable(), 2, 0, Pair{5, 3}); },
      {randn({2, 1, 2, 2}), randn({1, 2, 2, 2})});
  add("convolution_2d_dilate_groups", [](const Vs& v) {
        return F::convolution_2d(v[0], v[1], v[2], {2, 1}, {1, 1}, false, {2, 1}, 2);
      }, {randn({2, 4, 6, 5}), randn({6, 2, 2, 3}), randn({6})});
  add("convolution_2d_depthwise_dilate_cover_all", [](const Vs& v) {
        return F::convolution_2d(v[0], v[1], Variable(), 2, 0, true, 2, 3);
      }, {randn({1, 3, 6, 6}), randn({3, 1, 2, 2})});
  add("convolution_2d_1x1", [](const Vs& v) { return F::convolution_2d(v[0], v[1], v[2]); },
      {randn({2, 4, 2, 3}), randn({3, 4, 1, 1}), randn({3})});
  add("deconvolution_2d_dilate_groups", [](const Vs& v) {
        return F::deconvolution_2d(v[0], v[1], v[2], 2, 1, std::nullopt, 2, 2);
      }, {randn({1, 4, 3, 2}), randn({4, 1, 2, 2}), randn({2})});
  add("max_pooling_2d_cover_all", [](const Vs& v) { return F::max_pooling_2d(v[0], 2); }, {distinct({1, 2, 5, 5})});
  add("max_pooling_2d_tiling", [](const Vs& v) { return F::max_pooling_2d(v[0], 2, 2, 0, false); }, {distinct({2, 3, 4, 6})});
  add("max_pooling_2d_pad", [](const Vs& v) { return F::max_pooling_2d(v[0], 3, 2, 1, false); }, {distinct({2, 1, 4, 5})});
  add("average_pooling_2d", [](const Vs& v) { return F::average_pooling_2d(v[0], 2); }, {randn({1, 2, 4, 4})});
  add("average_pooling_2d_pad", [](const Vs& v) { return F::average_pooling_2d(v[0], {3, 2}, 1, 1); }, {randn({2, 1, 3, 3})});
  add("batch_normalization_2d", [](const Vs& v) { return F::batch_normalization(v[0], v[1], v[2]); },
      {randn({4, 3}), randn({3}), randn({3})});
  add("batch_normalization_4d", [](const Vs& v) { return F::batch_normalization(v[0], v[1], v[2], 1e-3); },
      {randn({2, 2, 2, 3}), randn({2}), randn({2})});
  add("fixed_batch_normalization_2d", [](const Vs& v) { return F::fixed_batch_normalization(v[0], v[1], v[2], v[3], v[4]); },
      {randn({3, 2}), randn({2}), randn({2}), randn({2}), uniform({2}, 0.5, 2)});
  add("fixed_batch_normalization_4d", [](const Vs& v) { return F::fixed_batch_normalization(v[0], v[1], v[2], v[3], v[4]); },
      {randn({2, 3, 2, 1}), randn({3}), randn({3}), randn({3}), uniform({3}, 0.5, 2)});
  add("layer_normalization", [](const Vs& v) { return F::layer_normalization(v[0], v[1], v[2]); },
      {randn({3, 4}), randn({4}), randn({4})});
  add("layer_normalization_eps", [](const Vs& v) { return F::layer_normalization(v[0], v[1], v[2], 1e-2); },
      {randn({2, 5}), randn({5}), randn({5})});
  add("embed_id", [](const Vs& v) { return F::embed_id(v[0], v[1]); }, {ints({2, 0, 2, 1}, {2, 2}), randn({3, 2})});
  add("embed_id_ignore", [](const Vs& v) { return F::embed_id(v[0], v[1], -1); }, {ints({1, -1, 3, 1, 0}, {5}), randn({4, 3})});
  return c;
}

class GradientCheck : public ::testing::TestWithParam<Case> {};

TEST_P(GradientCheck, MatchesNumericalGradient) {
  const Case& c = GetParam();
  // Output gradients of the shapes fn produces.
  std::vector<Variable> in;
  for (const Array& a : c.inputs) in.emplace_back(is_floating(a.dtype()) ? a.astype(DType::f64) : a);
  std::vector<Array> gys;
  uint64_t seed = 1000;
  for (const Variable& y : c.fn(in))
    if (is_floating(y.dtype())) gys.push_back(Array::randn(y.shape(), seed++, DType::f64));
  EXPECT_NO_THROW(gradient_check::check_backward(c.fn, c.inputs, gys, c.options));
}

INSTANTIATE_TEST_SUITE_P(Functions, GradientCheck, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// ---- double backprop: check_double_backward (chainer.gradient_check) -----------------

std::vector<Case> double_backward_cases() {
  std::vector<Case> c;
  auto add = [&](std::string n, std::function<Variable(const Vs&)> f, std::vector<Array> in) {
    c.push_back(single(std::move(n), std::move(f), std::move(in)));
  };
  add("tanh", [](const Vs& v) { return F::tanh(v[0]); }, {randn({2, 3})});
  // Max pooling: windows that tile x, overlapping windows with padding (and cover_all's
  // extra row and column), a window larger than the stride without padding.
  add("max_pooling_2d_tiling", [](const Vs& v) { return F::max_pooling_2d(v[0], 2, 2, 0, false); },
      {distinct({2, 2, 4, 4})});
  add("max_pooling_2d_pad_cover_all", [](const Vs& v) { return F::max_pooling_2d(v[0], 3, 2, 1); },
      {distinct({1, 2, 5, 6})});
  add("max_pooling_2d_overlap", [](const Vs& v) { return F::max_pooling_2d(v[0], {3, 2}, 1, 0, false); },
      {distinct({1, 1, 4, 4})});
  add("average_pooling_2d_pad", [](const Vs& v) { return F::average_pooling_2d(v[0], 3, 2, 1); },
      {randn({1, 2, 5, 5})});
  return c;
}

class DoubleBackward : public ::testing::TestWithParam<Case> {};

TEST_P(DoubleBackward, MatchesNumericalGradientOfTheGradient) {
  const Case& c = GetParam();
  std::vector<Variable> in;
  for (const Array& a : c.inputs) in.emplace_back(a.astype(DType::f64));
  uint64_t seed = 2000;
  std::vector<Array> gys, ggxs;
  for (const Variable& y : c.fn(in)) gys.push_back(Array::randn(y.shape(), seed++, DType::f64));
  for (const Array& x : c.inputs) ggxs.push_back(Array::randn(x.shape(), seed++, DType::f64));
  EXPECT_NO_THROW(gradient_check::check_double_backward(c.fn, c.inputs, gys, ggxs, c.options));
}

INSTANTIATE_TEST_SUITE_P(Functions, DoubleBackward, ::testing::ValuesIn(double_backward_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(CheckDoubleBackward, DetectsAWrongSecondOrderGradient) {
  // d/dx of x * stop_gradient(x) is stop_gradient(x): autodiff's second derivative is 0,
  // the numerical one 1.
  auto fn = [](const Vs& v) { return Vs{v[0] * Variable(v[0].array(), false)}; };
  try {
    gradient_check::check_double_backward(fn, {Array::from<double>({1.0, 2.0}, {2})}, {}, {});
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("check_double_backward (1 inputs, then 1 grad_outputs"));
    EXPECT_THAT(e.what(), HasSubstr("input 0"));
  }
}

TEST(CheckDoubleBackward, RejectsMismatchedGradGradInputs) {
  auto fn = [](const Vs& v) { return Vs{F::tanh(v[0])}; };
  try {
    gradient_check::check_double_backward(fn, {Array::ones({2})}, {}, {Array::ones({3})});
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("grad_outputs[0] has shape (3,), output 0 has shape (2,)"));
  }
}

// ---- check_backward itself -----------------------------------------------------------

TEST(CheckBackward, DetectsAWrongGradient) {
  // x * stop_gradient(x): autodiff gives x, the numerical gradient is 2x.
  auto fn = [](const Vs& v) { return Vs{v[0] * Variable(v[0].array(), false)}; };
  try {
    gradient_check::check_backward(fn, {Array::from<double>({1.0, 2.0, 3.0}, {3})}, {Array::ones({3}, DType::f64)});
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("input 0"));
    EXPECT_THAT(e.what(), HasSubstr("max error 3"));
  }
}

TEST(CheckBackward, NamesTheFailingInput) {
  auto fn = [](const Vs& v) { return Vs{v[0] + v[1] * Variable(v[1].array(), false)}; };
  try {
    gradient_check::check_backward(fn, {Array::ones({2}), Array::full({2}, 2.0)}, {Array::ones({2})});
    FAIL() << "expected kiln::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("input 1"));
  }
}

TEST(CheckBackward, CastsFloat32InputsToFloat64) {
  auto fn = [](const Vs& v) {
    EXPECT_EQ(v[0].dtype(), DType::f64);
    EXPECT_EQ(v[1].dtype(), DType::i32);
    return Vs{F::softmax_cross_entropy(v[0], v[1])};
  };
  gradient_check::check_backward(fn, {Array::randn({3, 4}, 7), Array::from<int32_t>({0, 3, 1}, {3})}, {});
}

TEST(CheckBackward, RejectsMismatchedGradOutputs) {
  auto fn = [](const Vs& v) { return Vs{v[0] * 2.0}; };
  EXPECT_THROW(gradient_check::check_backward(fn, {Array::ones({3})}, {Array::ones({2})}), Error);
  EXPECT_THROW(gradient_check::check_backward(fn, {Array::ones({3})}, {Array::ones({3}), Array::ones({3})}), Error);
}

TEST(CheckBackward, InputsThatDoNotReachTheOutputHaveZeroGradient) {
  auto fn = [](const Vs& v) { return Vs{F::exp(v[0])}; };
  gradient_check::check_backward(fn, {Array::randn({2}, 1), Array::randn({3}, 2)}, {Array::ones({2})});
}

}  // namespace
