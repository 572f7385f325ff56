// kiln::functions (F): Chainer's functions, recorded into the trace as kiln ops.
// Names and argument order follow chainer.functions. Every function checks
// shapes and dtypes at the call and throws kiln::Error in Chainer's style.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "kiln/variable.h"

namespace kiln {

// The call site of a function, recorded on its ops (MLIR locations, dumps,
// errors). Filled in by the default argument; users never pass it.
struct SourceLocation {
  const char* file = "";
  int line = 0;
  static constexpr SourceLocation current(const char* f = __builtin_FILE(), int l = __builtin_LINE()) {
    return SourceLocation{f, l};
  }
};

// A 2-d size such as stride or pad: 2 or {2, 1}.
struct Pair {
  int64_t h = 0, w = 0;
  Pair(int64_t v) : h(v), w(v) {}  // NOLINT
  Pair(int64_t h_, int64_t w_) : h(h_), w(w_) {}
};

// One item of an index expression: an integer, a slice (None = nullopt) or a new axis.
struct Slice {
  std::optional<int64_t> start, stop, step;
};
struct NewAxis {};
using Index = std::variant<int64_t, Slice, NewAxis>;

using Axes = std::optional<std::vector<int64_t>>;  // nullopt: all axes

namespace functions {

// ---- arithmetic (numpy broadcasting) ----
Variable identity(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable add(const Variable& a, const Variable& b, SourceLocation loc = SourceLocation::current());
Variable sub(const Variable& a, const Variable& b, SourceLocation loc = SourceLocation::current());
Variable mul(const Variable& a, const Variable& b, SourceLocation loc = SourceLocation::current());
Variable div(const Variable& a, const Variable& b, SourceLocation loc = SourceLocation::current());
Variable negative(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable maximum(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());
Variable minimum(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());
Variable pow(const Variable& a, const Variable& b, SourceLocation loc = SourceLocation::current());
Variable pow(const Variable& a, double b, SourceLocation loc = SourceLocation::current());
Variable where(const Variable& condition, const Variable& x, const Variable& y,
    SourceLocation loc = SourceLocation::current());
Variable absolute(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable square(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable sqrt(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable rsqrt(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable exp(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable log(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable clip(const Variable& x, double x_min, double x_max,
    SourceLocation loc = SourceLocation::current());
Variable cast(const Variable& x, DType dtype, SourceLocation loc = SourceLocation::current());
// Comparisons give bool variables and pass no gradient.
Variable equal(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());
Variable not_equal(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());
Variable less(const Variable& a, const Variable& b, SourceLocation loc = SourceLocation::current());
Variable less_equal(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());
Variable greater(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());
Variable greater_equal(const Variable& a, const Variable& b,
    SourceLocation loc = SourceLocation::current());

// ---- shapes ----
Variable reshape(const Variable& x, const Shape& shape,
    SourceLocation loc = SourceLocation::current());  // one -1 allowed
Variable transpose(const Variable& x, const std::vector<int64_t>& axes = {},
    SourceLocation loc = SourceLocation::current());  // {}: reverse
Variable broadcast_to(const Variable& x, const Shape& shape,
    SourceLocation loc = SourceLocation::current());
Variable expand_dims(const Variable& x, int64_t axis,
    SourceLocation loc = SourceLocation::current());
Variable squeeze(const Variable& x, const Axes& axis = std::nullopt,
    SourceLocation loc = SourceLocation::current());
Variable flatten(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable concat(const std::vector<Variable>& xs, int64_t axis = 1,
    SourceLocation loc = SourceLocation::current());
std::vector<Variable> split_axis(const Variable& x, int64_t sections, int64_t axis,
    SourceLocation loc = SourceLocation::current());
std::vector<Variable> split_axis(const Variable& x, const std::vector<int64_t>& indices, int64_t axis,
    SourceLocation loc = SourceLocation::current());
Variable stack(const std::vector<Variable>& xs, int64_t axis = 0,
    SourceLocation loc = SourceLocation::current());
Variable get_item(const Variable& x, const std::vector<Index>& slices,
    SourceLocation loc = SourceLocation::current());
Variable pad(const Variable& x, const std::vector<std::pair<int64_t, int64_t>>& pad_width,
             double constant_value = 0.0, SourceLocation loc = SourceLocation::current());

// ---- reductions ----
Variable sum(const Variable& x, const Axes& axis = std::nullopt, bool keepdims = false,
    SourceLocation loc = SourceLocation::current());
Variable mean(const Variable& x, const Axes& axis = std::nullopt, bool keepdims = false,
    SourceLocation loc = SourceLocation::current());
Variable max(const Variable& x, const Axes& axis = std::nullopt, bool keepdims = false,
    SourceLocation loc = SourceLocation::current());
Variable min(const Variable& x, const Axes& axis = std::nullopt, bool keepdims = false,
    SourceLocation loc = SourceLocation::current());
Variable argmax(const Variable& x, std::optional<int64_t> axis = std::nullopt,
    SourceLocation loc = SourceLocation::current());
Variable argmin(const Variable& x, std::optional<int64_t> axis = std::nullopt,
    SourceLocation loc = SourceLocation::current());
Variable logsumexp(const Variable& x, const Axes& axis = std::nullopt,
    SourceLocation loc = SourceLocation::current());

// ---- linear algebra ----
Variable matmul(const Variable& a, const Variable& b, bool transa = false, bool transb = false,
    SourceLocation loc = SourceLocation::current());
Variable batch_matmul(const Variable& a, const Variable& b, bool transa = false, bool transb = false,
    SourceLocation loc = SourceLocation::current());
Variable linear(const Variable& x, const Variable& W, const Variable& b = Variable(),
                int64_t n_batch_axes = 1, SourceLocation loc = SourceLocation::current());

// ---- activations ----
Variable relu(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable leaky_relu(const Variable& x, double slope = 0.2,
    SourceLocation loc = SourceLocation::current());
Variable elu(const Variable& x, double alpha = 1.0, SourceLocation loc = SourceLocation::current());
Variable sigmoid(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable tanh(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable softplus(const Variable& x, double beta = 1.0,
    SourceLocation loc = SourceLocation::current());
Variable gelu(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable swish(const Variable& x, const Variable& beta,
    SourceLocation loc = SourceLocation::current());
Variable softmax(const Variable& x, int64_t axis = 1,
    SourceLocation loc = SourceLocation::current());
Variable log_softmax(const Variable& x, int64_t axis = 1,
    SourceLocation loc = SourceLocation::current());
// Counter-based Philox RNG: same seed and call order give the same mask on
// every backend. Identity when config().train is false.
Variable dropout(const Variable& x, double ratio = 0.5,
    SourceLocation loc = SourceLocation::current());
void set_dropout_seed(uint64_t seed);  // the calling thread's dropout stream

// ---- losses and metrics ----
Variable softmax_cross_entropy(const Variable& x, const Variable& t, bool normalize = true,
                               int64_t ignore_label = -1, const std::string& reduce = "mean",
    SourceLocation loc = SourceLocation::current());
Variable mean_squared_error(const Variable& x0, const Variable& x1,
    SourceLocation loc = SourceLocation::current());
Variable sigmoid_cross_entropy(const Variable& x, const Variable& t, bool normalize = true,
                               const std::string& reduce = "mean",
    SourceLocation loc = SourceLocation::current());
Variable huber_loss(const Variable& x, const Variable& t, double delta,
                    const std::string& reduce = "sum_along_second_axis",
    SourceLocation loc = SourceLocation::current());
Variable accuracy(const Variable& y, const Variable& t,
                  std::optional<int64_t> ignore_label = std::nullopt,
    SourceLocation loc = SourceLocation::current());

// ---- CNN ----
// Chainer's convolution_2d: x (N, C, H, W), W (O, C/groups, kh, kw), b (O,). The filter
// taps are `dilate` apart (extent dilate*(k-1)+1); with `groups` g, output channel group i
// sees only input channel group i. cover_all: one more output row/column where the
// last window would be cut off (zero padding beyond the input).
Variable convolution_2d(const Variable& x, const Variable& W, const Variable& b = Variable(),
                        Pair stride = 1, Pair pad = 0, bool cover_all = false, Pair dilate = 1,
                        int64_t groups = 1, SourceLocation loc = SourceLocation::current());
// Chainer's deconvolution_2d: x (N, C, H, W), W (C, O/groups, kh, kw), b (O,); the transpose
// of convolution_2d with the same stride, pad, dilate and groups.
Variable deconvolution_2d(const Variable& x, const Variable& W, const Variable& b = Variable(),
                          Pair stride = 1, Pair pad = 0,
                          std::optional<Pair> outsize = std::nullopt, Pair dilate = 1, int64_t groups = 1,
    SourceLocation loc = SourceLocation::current());
Variable max_pooling_2d(const Variable& x, Pair ksize, std::optional<Pair> stride = std::nullopt,
                        Pair pad = 0, bool cover_all = true,
    SourceLocation loc = SourceLocation::current());
Variable average_pooling_2d(const Variable& x, Pair ksize,
                            std::optional<Pair> stride = std::nullopt, Pair pad = 0,
    SourceLocation loc = SourceLocation::current());
Variable batch_normalization(const Variable& x, const Variable& gamma, const Variable& beta,
                             double eps = 2e-5, SourceLocation loc = SourceLocation::current());
Variable fixed_batch_normalization(const Variable& x, const Variable& gamma, const Variable& beta,
                                   const Variable& mean, const Variable& var, double eps = 2e-5,
    SourceLocation loc = SourceLocation::current());
Variable layer_normalization(const Variable& x, const Variable& gamma, const Variable& beta,
                             double eps = 1e-5, SourceLocation loc = SourceLocation::current());
Variable embed_id(const Variable& x, const Variable& W,
                  std::optional<int64_t> ignore_label = std::nullopt,
    SourceLocation loc = SourceLocation::current());

// ---- more of chainer.functions (functions_extra*.cpp), composed of the ops above ----
// elementwise math
Variable sin(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable cos(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable tan(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable arcsin(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable arccos(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable arctan(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable arctan2(const Variable& x1, const Variable& x2, SourceLocation loc = SourceLocation::current());
Variable sinh(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable cosh(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable log1p(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable expm1(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable log2(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable log10(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable erf(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable erfc(const Variable& x, SourceLocation loc = SourceLocation::current());
// floor, ceil, fix (round toward zero) and sign keep x's dtype and pass a zero gradient.
Variable floor(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable ceil(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable fix(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable sign(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable fmod(const Variable& x, const Variable& divisor, SourceLocation loc = SourceLocation::current());
Variable squared_difference(const Variable& x1, const Variable& x2, SourceLocation loc = SourceLocation::current());
Variable linear_interpolate(const Variable& p, const Variable& x, const Variable& y, SourceLocation loc = SourceLocation::current());
// Cumulative sum / product along `axis` (nullopt: of the flattened x).
Variable cumsum(const Variable& x, std::optional<int64_t> axis = std::nullopt, SourceLocation loc = SourceLocation::current());
Variable cumprod(const Variable& x, std::optional<int64_t> axis = std::nullopt, SourceLocation loc = SourceLocation::current());
Variable prod(const Variable& x, const Axes& axis = std::nullopt, bool keepdims = false, SourceLocation loc = SourceLocation::current());
// Chainer's average: weights (optional) has x's shape (axis nullopt) or (x.shape[axis],).
Variable average(const Variable& x, const Axes& axis = std::nullopt, const Variable& weights = Variable(),
                 bool keepdims = false, SourceLocation loc = SourceLocation::current());
Variable batch_l2_norm_squared(const Variable& x, SourceLocation loc = SourceLocation::current());

// activations
Variable selu(const Variable& x, double alpha = 1.6732632423543772848170429916717,
              double scale = 1.0507009873554804934193349852946, SourceLocation loc = SourceLocation::current());
Variable hard_sigmoid(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable relu6(const Variable& x, SourceLocation loc = SourceLocation::current());
Variable clipped_relu(const Variable& x, double z = 20.0, SourceLocation loc = SourceLocation::current());
Variable crelu(const Variable& x, int64_t axis = 1, SourceLocation loc = SourceLocation::current());
Variable maxout(const Variable& x, int64_t pool_size, int64_t axis = 1, SourceLocation loc = SourceLocation::current());
Variable prelu(const Variable& x, const Variable& W, SourceLocation loc = SourceLocation::current());

// shapes
Variable hstack(const std::vector<Variable>& xs, SourceLocation loc = SourceLocation::current());
Variable vstack(const std::vector<Variable>& xs, SourceLocation loc = SourceLocation::current());
Variable dstack(const std::vector<Variable>& xs, SourceLocation loc = SourceLocation::current());
Variable tile(const Variable& x, const std::vector<int64_t>& reps, SourceLocation loc = SourceLocation::current());
// repeats: one count for every element, or one per element of the axis.
Variable repeat(const Variable& x, const std::vector<int64_t>& repeats,
                std::optional<int64_t> axis = std::nullopt, SourceLocation loc = SourceLocation::current());
Variable flip(const Variable& x, int64_t axis, SourceLocation loc = SourceLocation::current());
Variable fliplr(const Variable& a, SourceLocation loc = SourceLocation::current());
Variable flipud(const Variable& a, SourceLocation loc = SourceLocation::current());
Variable moveaxis(const Variable& x, const std::vector<int64_t>& source,
                  const std::vector<int64_t>& destination, SourceLocation loc = SourceLocation::current());
Variable rollaxis(const Variable& x, int64_t axis, int64_t start = 0, SourceLocation loc = SourceLocation::current());
Variable swapaxes(const Variable& x, int64_t axis1, int64_t axis2, SourceLocation loc = SourceLocation::current());
// axes: the last `axes` axes of a with the first of b, or explicit (a_axes, b_axes).
Variable tensordot(const Variable& a, const Variable& b, int64_t axes = 2, SourceLocation loc = SourceLocation::current());
Variable tensordot(const Variable& a, const Variable& b,
                   const std::pair<std::vector<int64_t>, std::vector<int64_t>>& axes, SourceLocation loc = SourceLocation::current());
// NumPy's einsum subscripts ('ij,jk->ik', 'ii->i', '...i,i->...', implicit output).
Variable einsum(const std::string& subscripts, const std::vector<Variable>& operands, SourceLocation loc = SourceLocation::current());
std::vector<Variable> separate(const Variable& x, int64_t axis = 0, SourceLocation loc = SourceLocation::current());
std::vector<Variable> broadcast(const std::vector<Variable>& xs, SourceLocation loc = SourceLocation::current());
Variable diagonal(const Variable& x, int64_t offset = 0, int64_t axis1 = 0, int64_t axis2 = 1, SourceLocation loc = SourceLocation::current());
Variable space2depth(const Variable& X, int64_t r, SourceLocation loc = SourceLocation::current());
Variable depth2space(const Variable& X, int64_t r, SourceLocation loc = SourceLocation::current());
// x * y (x + y) with y broadcast along x's axes axis .. axis + y.ndim - 1.
Variable scale(const Variable& x, const Variable& y, int64_t axis = 1, SourceLocation loc = SourceLocation::current());
Variable bias(const Variable& x, const Variable& y, int64_t axis = 1, SourceLocation loc = SourceLocation::current());
Variable bilinear(const Variable& e1, const Variable& e2, const Variable& W, const Variable& V1 = Variable(),
                  const Variable& V2 = Variable(), const Variable& b = Variable(), SourceLocation loc = SourceLocation::current());
// x[i, t[i]] for x (N, C) and int t (N,).
Variable select_item(const Variable& x, const Variable& t, SourceLocation loc = SourceLocation::current());
// numpy.pad's modes 'constant' (constant_values), 'edge', 'reflect', 'symmetric', 'wrap'. As in
// Chainer, the gradient is gy cropped to x (the border passes none).
Variable pad(const Variable& x, const std::vector<std::pair<int64_t, int64_t>>& pad_width,
             const std::string& mode, double constant_values = 0.0, SourceLocation loc = SourceLocation::current());

// losses and metrics
Variable squared_error(const Variable& x0, const Variable& x1, SourceLocation loc = SourceLocation::current());
Variable absolute_error(const Variable& x0, const Variable& x1, SourceLocation loc = SourceLocation::current());
Variable mean_absolute_error(const Variable& x0, const Variable& x1, SourceLocation loc = SourceLocation::current());
Variable hinge(const Variable& x, const Variable& t, const std::string& norm = "L1",
               const std::string& reduce = "mean", SourceLocation loc = SourceLocation::current());
Variable contrastive(const Variable& x0, const Variable& x1, const Variable& y, double margin = 1.0,
                     const std::string& reduce = "mean", SourceLocation loc = SourceLocation::current());
Variable triplet(const Variable& anchor, const Variable& positive, const Variable& negative,
                 double margin = 0.2, const std::string& reduce = "mean", SourceLocation loc = SourceLocation::current());
Variable gaussian_kl_divergence(const Variable& mean, const Variable& ln_var, const std::string& reduce = "sum",
                                SourceLocation loc = SourceLocation::current());
Variable bernoulli_nll(const Variable& x, const Variable& y, const std::string& reduce = "sum", SourceLocation loc = SourceLocation::current());
Variable gaussian_nll(const Variable& x, const Variable& mean, const Variable& ln_var,
                      const std::string& reduce = "sum", SourceLocation loc = SourceLocation::current());
Variable binary_accuracy(const Variable& y, const Variable& t, SourceLocation loc = SourceLocation::current());
// Chainer's CTC loss: x is the sequence of T unnormalized log probabilities (B, V), t the int
// labels (B, L); input_length / label_length (int (B,), optional) cut each sample's sequences.
// reduce 'mean' (over the batch) or 'no' (per sample).
Variable connectionist_temporal_classification(const std::vector<Variable>& x, const Variable& t,
                                               int64_t blank_symbol, const Variable& input_length = Variable(),
                                               const Variable& label_length = Variable(),
                                               const std::string& reduce = "mean",
                                               SourceLocation loc = SourceLocation::current());
Variable r2_score(const Variable& pred, const Variable& true_, const Variable& sample_weight = Variable(),
                  const std::string& multioutput = "uniform_average", SourceLocation loc = SourceLocation::current());

// normalization
Variable normalize(const Variable& x, double eps = 1e-5, int64_t axis = 1, SourceLocation loc = SourceLocation::current());
Variable local_response_normalization(const Variable& x, int64_t n = 5, double k = 2, double alpha = 1e-4,
                                      double beta = 0.75, SourceLocation loc = SourceLocation::current());
Variable group_normalization(const Variable& x, int64_t groups, const Variable& gamma, const Variable& beta,
                             double eps = 1e-5, SourceLocation loc = SourceLocation::current());

// CNN
// W (M, C, kh, kw): output channel c * M + m filters input channel c with W[m, c].
Variable depthwise_convolution_2d(const Variable& x, const Variable& W, const Variable& b = Variable(),
                                  Pair stride = 1, Pair pad = 0, SourceLocation loc = SourceLocation::current());
// Each input value is added to every position of its ksize window (Chainer's col2im).
Variable unpooling_2d(const Variable& x, Pair ksize, std::optional<Pair> stride = std::nullopt, Pair pad = 0,
                      std::optional<Pair> outsize = std::nullopt, bool cover_all = true, SourceLocation loc = SourceLocation::current());
// The inverse of max_pooling_2d with return_indices: each value goes back to the window
// position `indexes` names (int, flat within the kh x kw window).
Variable upsampling_2d(const Variable& x, const Variable& indexes, Pair ksize, std::optional<Pair> stride = std::nullopt,
                       Pair pad = 0, std::optional<Pair> outsize = std::nullopt, bool cover_all = true, SourceLocation loc = SourceLocation::current());
// mode 'bilinear' or 'nearest'; align_corners as in Chainer 7.
Variable resize_images(const Variable& x, Pair output_shape, const std::string& mode = "bilinear",
                       bool align_corners = true, SourceLocation loc = SourceLocation::current());

}  // namespace functions

namespace F = functions;

Variable operator+(const Variable& a, const Variable& b);
Variable operator-(const Variable& a, const Variable& b);
Variable operator*(const Variable& a, const Variable& b);
Variable operator/(const Variable& a, const Variable& b);
Variable operator-(const Variable& x);
Variable operator+(const Variable& a, double b);
Variable operator-(const Variable& a, double b);
Variable operator*(const Variable& a, double b);
Variable operator/(const Variable& a, double b);
Variable operator+(double a, const Variable& b);
Variable operator-(double a, const Variable& b);
Variable operator*(double a, const Variable& b);
Variable operator/(double a, const Variable& b);

}  // namespace kiln
