// kiln::functions (F) for recurrent networks: Chainer's lstm, slstm and the n-step RNN family.
// Each is composed of other kiln functions (linear, sigmoid, tanh, slices, concat), so it is
// recorded, differentiated and compiled like any other graph; a time loop is unrolled.
#pragma once
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kiln/functions.h"

namespace kiln::functions {

// Chainer's lstm(c_prev, x) -> (c, h). x (B, 4 * N, ...) holds the four gates interleaved
// per unit as Chainer lays them out: x reshaped to (B, N, 4, ...) gives a (cell input,
// tanh), i, f, o (sigmoids) along axis 2. c = a * i + f * c_prev, h = o * tanh(c).
// c_prev (B', N, ...) may have more rows than x (B <= B'): rows B.. of c_prev pass to c
// unchanged and h has B rows.
std::pair<Variable, Variable> lstm(const Variable& c_prev, const Variable& x,
                                   SourceLocation loc = SourceLocation::current());

// Chainer's slstm(c_prev1, c_prev2, x1, x2) -> (c, h), the S-LSTM unit merging two LSTM
// states: every input has the same batch, x1 and x2 have 4 * N columns in lstm's layout;
// c = a1*i1 + a2*i2 + f1*c_prev1 + f2*c_prev2, h = sigmoid(o1 + o2) * tanh(c).
std::pair<Variable, Variable> slstm(const Variable& c_prev1, const Variable& c_prev2, const Variable& x1,
                                    const Variable& x2, SourceLocation loc = SourceLocation::current());

// The n-step functions take time-major input as Chainer does: xs[t] (B_t, I) is the batch
// at time t, with B_0 >= B_1 >= ... (sequences sorted by decreasing length, then
// transposed; the NStep links sort and transpose for you). hx (and cx) (S * D, B_0, N)
// with S = n_layers and D = 2 for the bi- functions (layer l's forward direction at
// l * D, its backward one at l * D + 1). ws[k] / bs[k] are the weights / biases of layer
// k's direction: 8 for an LSTM, 6 for a GRU, 2 for a plain RNN, W (N, I) for the input
// ones (the first half; I = the input size for layer 0, D * N above it), (N, N) for the
// others, b (N,). Dropout of `dropout_ratio` applies to each layer's input above the first
// (a separate mask per direction), in train mode only (F::dropout). ys[t] (B_t, D * N):
// the last layer's hidden states; hy[k] holds each sequence's state after its last step.
struct NStepLSTMResult {
  Variable hy, cy;
  std::vector<Variable> ys;
};
struct NStepRNNResult {
  Variable hy;
  std::vector<Variable> ys;
};
using Weights = std::vector<std::vector<Variable>>;

// i = sigmoid(W0 x + W4 h + b0 + b4), f (W1, W5), a = tanh(W2 x + W6 h + b2 + b6), o =
// sigmoid(W3 x + W7 h + b3 + b7) (cuDNN's order, which Chainer's code follows; its docstring
// swaps a and o), c = f * c_prev + i * a, h = o * tanh(c).
NStepLSTMResult n_step_lstm(int64_t n_layers, double dropout_ratio, const Variable& hx, const Variable& cx,
                            const Weights& ws, const Weights& bs, const std::vector<Variable>& xs,
                            SourceLocation loc = SourceLocation::current());
NStepLSTMResult n_step_bilstm(int64_t n_layers, double dropout_ratio, const Variable& hx, const Variable& cx,
                              const Weights& ws, const Weights& bs, const std::vector<Variable>& xs,
                              SourceLocation loc = SourceLocation::current());
// r = sigmoid(W0 x + b0 + W3 h + b3), z = sigmoid(W1 x + b1 + W4 h + b4),
// h' = tanh(W2 x + b2 + r * (W5 h + b5)), h = (1 - z) * h' + z * h_prev.
NStepRNNResult n_step_gru(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                          const Weights& bs, const std::vector<Variable>& xs,
                          SourceLocation loc = SourceLocation::current());
NStepRNNResult n_step_bigru(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                            const Weights& bs, const std::vector<Variable>& xs,
                            SourceLocation loc = SourceLocation::current());
// h = activation(W0 x + b0 + W1 h_prev + b1), activation "tanh" or "relu".
NStepRNNResult n_step_rnn(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                          const Weights& bs, const std::vector<Variable>& xs,
                          const std::string& activation = "tanh",
                          SourceLocation loc = SourceLocation::current());
NStepRNNResult n_step_birnn(int64_t n_layers, double dropout_ratio, const Variable& hx, const Weights& ws,
                            const Weights& bs, const std::vector<Variable>& xs,
                            const std::string& activation = "tanh",
                            SourceLocation loc = SourceLocation::current());

// Chainer's transpose_sequence: sequences xs[i] (L_i, ...) sorted by decreasing length
// become the time-major batches ys[t] (B_t, ...) of the rows at time t, and back.
std::vector<Variable> transpose_sequence(const std::vector<Variable>& xs,
                                         SourceLocation loc = SourceLocation::current());

}  // namespace kiln::functions
