// Bad inputs to functions and links throw kiln::Error at the call, with Chainer-style messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>

using namespace kiln;
using ::testing::HasSubstr;

namespace {

// The message of the kiln::Error that f throws ("" and a test failure if none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected kiln::Error";
  return "";
}

Variable f32(Shape s) { return Variable(Array::zeros(std::move(s))); }
Variable i32(Shape s) { return Variable(Array::zeros(std::move(s), DType::i32)); }

TEST(FunctionErrors, SoftmaxCrossEntropyFloatLabels) {
  std::string msg = error_of([] { F::softmax_cross_entropy(f32({2, 3}), f32({2})); });
  EXPECT_THAT(msg, HasSubstr("Invalid operation is performed in: SoftmaxCrossEntropy (Forward)"));
  EXPECT_THAT(msg, HasSubstr("Expect: t.dtype.kind == 'i'"));
  EXPECT_THAT(msg, HasSubstr("Actual: float32"));
}

TEST(FunctionErrors, SoftmaxCrossEntropyShapes) {
  EXPECT_THAT(error_of([] { F::softmax_cross_entropy(f32({2, 3}), i32({3})); }),
              HasSubstr("x.shape[0] == t.shape[0]"));
  EXPECT_THAT(error_of([] { F::softmax_cross_entropy(f32({2, 3}), i32({2, 3})); }),
              HasSubstr("t.ndim == x.ndim - 1"));
  EXPECT_THAT(error_of([] { F::softmax_cross_entropy(f32({2, 3, 4}), i32({2, 5})); }),
              HasSubstr("x.shape[2:] == t.shape[1:]"));
  EXPECT_THAT(error_of([] { F::softmax_cross_entropy(i32({2, 3}), i32({2})); }),
              HasSubstr("x.dtype.kind == 'f'"));
}

TEST(FunctionErrors, SoftmaxCrossEntropyBadReduce) {
  EXPECT_THAT(error_of([] { F::softmax_cross_entropy(f32({2, 3}), i32({2}), true, -1, "sum"); }),
              HasSubstr("only 'mean' and 'no' are valid for 'reduce', but 'sum' is given"));
}

TEST(FunctionErrors, ConvolutionChannelMismatch) {
  std::string msg = error_of([] { F::convolution_2d(f32({1, 3, 5, 5}), f32({4, 2, 3, 3})); });
  EXPECT_THAT(msg, HasSubstr("Convolution2DFunction"));
  EXPECT_THAT(msg, HasSubstr("x.shape[1] == W.shape[1]"));
  EXPECT_THAT(msg, HasSubstr("3 != 2"));
}

TEST(FunctionErrors, ConvolutionNdimBiasAndFilterSize) {
  EXPECT_THAT(error_of([] { F::convolution_2d(f32({3, 5, 5}), f32({4, 3, 3, 3})); }), HasSubstr("x.ndim == 4"));
  EXPECT_THAT(error_of([] { F::convolution_2d(f32({1, 3, 5, 5}), f32({4, 3, 3, 3}), f32({3})); }),
              HasSubstr("b.shape == (W.shape[0],)"));
  EXPECT_THAT(error_of([] { F::convolution_2d(f32({1, 3, 2, 2}), f32({4, 3, 3, 3})); }),
              HasSubstr("the filter fits in the padded input"));
  EXPECT_THAT(error_of([] { F::convolution_2d(f32({1, 3, 5, 5}), f32({4, 3, 3, 3}), Variable(), 0); }),
              HasSubstr("stride >= 1"));
  EXPECT_THAT(error_of([] { F::convolution_2d(f32({1, 3, 5, 5}), Variable(Array::zeros({4, 3, 3, 3}, DType::f64))); }),
              HasSubstr("x.dtype == W.dtype"));
}

TEST(FunctionErrors, DeconvolutionChannelsAndOutsize) {
  EXPECT_THAT(error_of([] { F::deconvolution_2d(f32({1, 3, 4, 4}), f32({2, 3, 3, 3})); }),
              HasSubstr("x.shape[1] == W.shape[0]"));
  EXPECT_THAT(error_of([] { F::deconvolution_2d(f32({1, 2, 4, 4}), f32({2, 3, 3, 3}), f32({2})); }),
              HasSubstr("b.shape == (W.shape[1],)"));
  EXPECT_THAT(error_of([] { F::deconvolution_2d(f32({1, 2, 4, 4}), f32({2, 3, 3, 3}), Variable(), 1, 0, Pair{9, 6}); }),
              HasSubstr("get_conv_outsize(outsize, W.shape[2:], stride, pad) == x.shape[2:]"));
}

TEST(FunctionErrors, ConvolutionGroupsAndDilate) {
  auto conv = [](Shape x, Shape w, Pair dilate, int64_t groups) {
    return error_of([&] { F::convolution_2d(f32(x), f32(w), Variable(), 1, 0, false, dilate, groups); });
  };
  std::string in = conv({1, 3, 5, 5}, {4, 1, 3, 3}, 1, 2);
  EXPECT_THAT(in, HasSubstr("Convolution2DFunction"));
  EXPECT_THAT(in, HasSubstr("Expect: x.shape[1] % groups == 0"));
  EXPECT_THAT(in, HasSubstr("Actual: 3 % 2 != 0"));
  std::string out = conv({1, 4, 5, 5}, {3, 2, 3, 3}, 1, 2);
  EXPECT_THAT(out, HasSubstr("Expect: W.shape[0] % groups == 0"));
  EXPECT_THAT(out, HasSubstr("Actual: 3 % 2 != 0"));
  std::string w = conv({1, 4, 5, 5}, {4, 4, 3, 3}, 1, 2);
  EXPECT_THAT(w, HasSubstr("Expect: x.shape[1] == W.shape[1] * groups"));
  EXPECT_THAT(w, HasSubstr("Actual: 4 != 4 * 2"));
  EXPECT_THAT(conv({1, 4, 5, 5}, {4, 4, 3, 3}, 1, 0), HasSubstr("Expect: groups >= 1"));
  std::string d = conv({1, 4, 5, 5}, {4, 4, 3, 3}, {1, 0}, 1);
  EXPECT_THAT(d, HasSubstr("Expect: dilate >= 1"));
  EXPECT_THAT(d, HasSubstr("Actual: dilate = (1, 0)"));
  // Dilation 3 spreads a 3x3 filter over 7x7: larger than the input.
  EXPECT_THAT(conv({1, 4, 5, 5}, {4, 4, 3, 3}, 3, 1), HasSubstr("the filter fits in the padded input"));
}

TEST(FunctionErrors, DeconvolutionGroupsAndDilate) {
  EXPECT_THAT(error_of([] { F::deconvolution_2d(f32({1, 3, 4, 4}), f32({3, 2, 3, 3}), Variable(), 1, 0, std::nullopt, 1, 2); }),
              HasSubstr("Expect: x.shape[1] % groups == 0"));
  std::string b = error_of([] {
    F::deconvolution_2d(f32({1, 4, 4, 4}), f32({4, 3, 3, 3}), f32({3}), 1, 0, std::nullopt, 1, 2);
  });
  EXPECT_THAT(b, HasSubstr("Deconvolution2DFunction"));
  EXPECT_THAT(b, HasSubstr("Expect: b.shape == (W.shape[1] * groups,)"));
  EXPECT_THAT(error_of([] { F::deconvolution_2d(f32({1, 4, 4, 4}), f32({4, 3, 3, 3}), Variable(), 1, 0, std::nullopt, 0); }),
              HasSubstr("Expect: dilate >= 1"));
}

TEST(FunctionErrors, ConvolutionLinkGroups) {
  EXPECT_THAT(error_of([] { L::Convolution2D(3, 4, 3, 1, 0, false, nullptr, nullptr, 1, 2); }),
              HasSubstr("L::Convolution2D: the number of input channels (3) must be divisible by the number of groups (2)"));
  EXPECT_THAT(error_of([] { L::Convolution2D(4, 3, 3, 1, 0, false, nullptr, nullptr, 1, 2); }),
              HasSubstr("the number of output channels (3) must be divisible by the number of groups (2)"));
  L::Convolution2D lazy(-1, 4, 3, 1, 0, false, nullptr, nullptr, 1, 2);
  EXPECT_THAT(error_of([&] { lazy(f32({1, 3, 5, 5})); }), HasSubstr("the number of input channels (3)"));
  EXPECT_THAT(error_of([] { L::Deconvolution2D(4, 4, 3, 1, 0, false, std::nullopt, nullptr, nullptr, 0); }),
              HasSubstr("L::Deconvolution2D: dilate must be positive, got (0, 0)"));
  EXPECT_THAT(error_of([] { L::Deconvolution2D(4, 4, 3, 1, 0, false, std::nullopt, nullptr, nullptr, 1, 0); }),
              HasSubstr("L::Deconvolution2D: groups must be positive, got 0"));
}

TEST(FunctionErrors, PoolingWindowLargerThanPaddedInput) {
  std::string msg = error_of([] { F::max_pooling_2d(f32({1, 1, 2, 2}), 3, 1, 0, false); });
  EXPECT_THAT(msg, HasSubstr("MaxPooling2D"));
  EXPECT_THAT(msg, HasSubstr("pooling window fits in the padded input"));
  EXPECT_THAT(error_of([] { F::average_pooling_2d(f32({1, 1, 3, 1}), 2); }), HasSubstr("AveragePooling2D"));
  EXPECT_THAT(error_of([] { F::max_pooling_2d(f32({1, 2, 2}), 2); }), HasSubstr("x.ndim == 4"));
  EXPECT_THAT(error_of([] { F::average_pooling_2d(f32({1, 1, 4, 4}), 0); }), HasSubstr("ksize >= 1"));
  EXPECT_THAT(error_of([] { F::max_pooling_2d(i32({1, 1, 4, 4}), 2); }), HasSubstr("x.dtype.kind == 'f'"));
}

TEST(FunctionErrors, BatchNormalizationShapes) {
  std::string msg = error_of([] { F::batch_normalization(f32({4, 3}), f32({2}), f32({2})); });
  EXPECT_THAT(msg, HasSubstr("BatchNormalization"));
  EXPECT_THAT(msg, HasSubstr("x.shape[1:2] == gamma.shape"));
  EXPECT_THAT(error_of([] { F::batch_normalization(f32({4, 3}), f32({3}), f32({2})); }),
              HasSubstr("gamma.shape == beta.shape"));
  EXPECT_THAT(error_of([] { F::fixed_batch_normalization(f32({4, 3}), f32({3}), f32({3}), f32({2}), f32({3})); }),
              HasSubstr("mean.shape == gamma.shape"));
  EXPECT_THAT(error_of([] { F::fixed_batch_normalization(f32({4, 3}), f32({3}), f32({3}), f32({3}), f32({4})); }),
              HasSubstr("var.shape == gamma.shape"));
}

TEST(FunctionErrors, LayerNormalization) {
  EXPECT_THAT(error_of([] { F::layer_normalization(f32({2, 3, 4}), f32({4}), f32({4})); }), HasSubstr("x.ndim == 2"));
  EXPECT_THAT(error_of([] { F::layer_normalization(f32({2, 3}), f32({4}), f32({3})); }),
              HasSubstr("gamma.shape == (x.shape[1],)"));
}

TEST(FunctionErrors, EmbedIDFloatIdsAndBadTable) {
  EXPECT_THAT(error_of([] { F::embed_id(f32({3}), f32({5, 2})); }), HasSubstr("x.dtype.kind == 'i'"));
  EXPECT_THAT(error_of([] { F::embed_id(i32({3}), f32({5})); }), HasSubstr("W.ndim == 2"));
}

TEST(FunctionErrors, LossShapesAndDtypes) {
  EXPECT_THAT(error_of([] { F::mean_squared_error(f32({2, 3}), f32({3, 2})); }), HasSubstr("x0.shape == x1.shape"));
  EXPECT_THAT(error_of([] { F::mean_squared_error(f32({2}), Variable(Array::zeros({2}, DType::f64))); }),
              HasSubstr("x0.dtype == x1.dtype"));
  EXPECT_THAT(error_of([] { F::sigmoid_cross_entropy(f32({2, 3}), i32({2, 2})); }), HasSubstr("x.shape == t.shape"));
  EXPECT_THAT(error_of([] { F::sigmoid_cross_entropy(f32({2, 3}), f32({2, 3})); }), HasSubstr("t.dtype.kind == 'i'"));
  EXPECT_THAT(error_of([] { F::huber_loss(f32({2, 3}), f32({2, 2}), 1.0); }), HasSubstr("x.shape == t.shape"));
  EXPECT_THAT(error_of([] { F::huber_loss(f32({2, 3}), f32({2, 3}), 1.0, "mean"); }),
              HasSubstr("only 'sum_along_second_axis' and 'no' are valid"));
}

TEST(FunctionErrors, Accuracy) {
  EXPECT_THAT(error_of([] { F::accuracy(f32({4, 3}), i32({3})); }), HasSubstr("x.shape[0] == t.shape[0]"));
  EXPECT_THAT(error_of([] { F::accuracy(f32({4, 3}), f32({4})); }), HasSubstr("t.dtype.kind == 'i'"));
}

TEST(FunctionErrors, DropoutRatio) {
  EXPECT_THAT(error_of([] { F::dropout(f32({2}), 1.0); }), HasSubstr("0.0 <= ratio < 1.0"));
  EXPECT_THAT(error_of([] { F::dropout(i32({2})); }), HasSubstr("x.dtype.kind == 'f'"));
}

TEST(FunctionErrors, LinkInputs) {
  L::Convolution2D conv(3, 4, 3);
  EXPECT_THAT(error_of([&] { conv(f32({1, 2, 5, 5})); }), HasSubstr("x.shape[1] == W.shape[1]"));
  L::BatchNormalization bn(3);
  EXPECT_THAT(error_of([&] { bn(f32({2, 4})); }), HasSubstr("x.shape[1] == 3"));
  EXPECT_THAT(error_of([] { L::EmbedID(0, 3); }), HasSubstr("in_size must be positive"));
  EXPECT_THAT(error_of([] { L::Convolution2D(3, 4, 0); }), HasSubstr("ksize and stride must be positive"));
}

// Earlier functions (functions_math / functions_shape) keep the same style.
TEST(FunctionErrors, LinearAndMatmul) {
  EXPECT_THAT(error_of([] { F::linear(f32({2, 3}), f32({4, 2})); }), HasSubstr("x.shape[1] == W.shape[1]"));
  EXPECT_THAT(error_of([] { F::matmul(f32({2, 3}), f32({2, 3})); }), HasSubstr("a.shape[-1] == b.shape[-2]"));
  EXPECT_THAT(error_of([] { F::reshape(f32({2, 3}), {4, 2}); }), HasSubstr("x.size == prod((4, 2))"));
  EXPECT_THAT(error_of([] { F::add(f32({2, 3}), f32({4})); }), HasSubstr("shapes are broadcastable"));
}

}  // namespace
