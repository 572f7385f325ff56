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
