// kiln::links (L) for recurrent networks: Chainer's LSTM, StatelessLSTM, GRU (StatefulGRU),
// StatelessGRU and the NStep links (NStepLSTM, NStepBiLSTM, NStepGRU, NStepBiGRU,
// NStepRNNTanh, NStepRNNReLU, NStepBiRNNTanh, NStepBiRNNReLU).
//
// The state of a stateful link (h, c) is shared by every copy of the link, like its
// parameters (links are handles): a model copied into L::Classifier and the original
// see the same state, and reset_state() on one resets both.
#pragma once
#include <memory>
#include <vector>

#include "kiln/functions_rnn.h"
#include "kiln/link.h"
#include "kiln/links.h"

namespace kiln::links {

// Chainer's LSTMBase: children `upward` = Linear(in_size, 4 * out_size) and `lateral` =
// Linear(out_size, 4 * out_size, nobias), so npz keys are upward/W, upward/b, lateral/W.
// Rows follow F::lstm's interleaved gate layout (row 4 * j + k is gate k of unit j: a, i,
// f, o). W: LeCunNormal unless lateral_init / upward_init; the bias is bias_init (0) for
// a, i, o and forget_bias_init (1) for f. in_size -1 (Chainer's None) infers it at the
// first call from x.size / x.shape[0].
class LSTMBase : public Chain {
 public:
  L::Linear upward, lateral;
  int64_t state_size = 0;

 protected:
  LSTMBase(int64_t in_size, int64_t out_size, Parameter::Initializer lateral_init,
           Parameter::Initializer upward_init, double bias_init, double forget_bias_init);
  // Initializes upward.W for an input x if in_size was left to the first call.
  void initialize_for(const std::string& fn, const Variable& x) const;
};

// StatelessLSTM(in_size, out_size): (c, h, x) -> (c_new, h_new); c or h null means zeros /
// no lateral term (Chainer's None).
class StatelessLSTM : public LSTMBase {
 public:
  explicit StatelessLSTM(int64_t out_size);  // in_size inferred at the first call
  StatelessLSTM(int64_t in_size, int64_t out_size, Parameter::Initializer lateral_init = nullptr,
                Parameter::Initializer upward_init = nullptr, double bias_init = 0.0,
                double forget_bias_init = 1.0);
  std::pair<Variable, Variable> operator()(const Variable& c, const Variable& h, const Variable& x) const;
  std::pair<Variable, Variable> forward(const Variable& c, const Variable& h, const Variable& x) const {
    return (*this)(c, h, x);
  }
};

// Stateful LSTM(in_size, out_size): y = lstm(x) updates c() and h(). The batch of x may
// shrink from call to call (sequences sorted by decreasing length): only the first
// x.shape[0] rows of the state are updated. A larger batch than the state's throws.
class LSTM : public LSTMBase {
 public:
  explicit LSTM(int64_t out_size);  // in_size inferred at the first call
  LSTM(int64_t in_size, int64_t out_size, Parameter::Initializer lateral_init = nullptr,
       Parameter::Initializer upward_init = nullptr, double bias_init = 0.0, double forget_bias_init = 1.0);
  Variable operator()(const Variable& x);
  Variable forward(const Variable& x) { return (*this)(x); }
  void reset_state();                                 // c and h become null (Chainer's None)
  void set_state(const Variable& c, const Variable& h);
  Variable c() const { return state_->c; }            // null before the first call
  Variable h() const { return state_->h; }

 private:
  struct State {
    Variable c, h;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Chainer's GRUBase: six Linear children W_r, U_r, W_z, U_z, W, U (W_*: in_size ->
// out_size with `init`, U_*: out_size -> out_size with `inner_init`; biases `bias_init`).
class GRUBase : public Chain {
 public:
  L::Linear W_r, U_r, W_z, U_z, W, U;
  int64_t out_size = 0;

 protected:
  GRUBase(int64_t in_size, int64_t out_size, Parameter::Initializer init, Parameter::Initializer inner_init,
          double bias_init);
};

// h_new = z * h_bar + (1 - z) * h with r = sigmoid(W_r x + U_r h), z = sigmoid(W_z x +
// U_z h), h_bar = tanh(W x + U (r * h)).
class StatelessGRU : public GRUBase {
 public:
  StatelessGRU(int64_t in_size, int64_t out_size, Parameter::Initializer init = nullptr,
               Parameter::Initializer inner_init = nullptr, double bias_init = 0.0);
  Variable operator()(const Variable& h, const Variable& x) const;
  Variable forward(const Variable& h, const Variable& x) const { return (*this)(h, x); }
};

// Stateful GRU: the first call (no state) gives h = z * h_bar with z = sigmoid(W_z x) and
// h_bar = tanh(W x); later calls StatelessGRU's update from h().
class StatefulGRU : public GRUBase {
 public:
  StatefulGRU(int64_t in_size, int64_t out_size, Parameter::Initializer init = nullptr,
              Parameter::Initializer inner_init = nullptr, double bias_init = 0.0);
  Variable operator()(const Variable& x);
  Variable forward(const Variable& x) { return (*this)(x); }
  void reset_state();
  void set_state(const Variable& h);
  Variable h() const { return state_->h; }

 private:
  struct State {
    Variable h;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Chainer's L.GRU is StatefulGRU.
using GRU = StatefulGRU;

// Chainer's NStepRNNBase: a ChainList of n_layers * directions links "0", "1", ..., each
// holding w0.. and b0.. (npz keys "0/w0", "0/b0", ...); ws[k][j] / bs[k][j] are the same
// parameters. W: LeCunNormal unless initialW, b: zeros unless initial_bias. The call
// takes the sequences xs[i] (L_i, in_size) in any order (sorted by decreasing length
// inside, as Chainer's links do, and back) and initial states (n_layers * directions,
// len(xs), out_size), null for zeros; ys[i] (L_i, directions * out_size).
class NStepRNNBase : public ChainList {
 public:
  std::vector<std::vector<Variable>> ws, bs;
  int64_t n_layers = 0, in_size = 0, out_size = 0, direction = 1;
  double dropout = 0.0;

 protected:
  NStepRNNBase(const char* name, int64_t n_weights, bool bidirectional, int64_t n_layers, int64_t in_size,
               int64_t out_size, double dropout, Parameter::Initializer initialW,
               Parameter::Initializer initial_bias);
  // Sorts xs, runs `rnn` on the transposed batch with the permuted states and undoes both.
  using Run = std::function<F::NStepLSTMResult(const Variable& hx, const Variable& cx,
                                               const std::vector<Variable>& xs)>;
  F::NStepLSTMResult call(const Variable& hx, const Variable& cx, bool use_cell, const std::vector<Variable>& xs,
                          const Run& rnn) const;
  const char* name_;
};

// (hx, cx, xs) -> (hy, cy, ys).
class NStepLSTM : public NStepRNNBase {
 public:
  NStepLSTM(int64_t n_layers, int64_t in_size, int64_t out_size, double dropout,
            Parameter::Initializer initialW = nullptr, Parameter::Initializer initial_bias = nullptr);
  F::NStepLSTMResult operator()(const Variable& hx, const Variable& cx, const std::vector<Variable>& xs) const;
  F::NStepLSTMResult forward(const Variable& hx, const Variable& cx, const std::vector<Variable>& xs) const {
    return (*this)(hx, cx, xs);
  }
};
class NStepBiLSTM : public NStepRNNBase {
 public:
  NStepBiLSTM(int64_t n_layers, int64_t in_size, int64_t out_size, double dropout,
              Parameter::Initializer initialW = nullptr, Parameter::Initializer initial_bias = nullptr);
  F::NStepLSTMResult operator()(const Variable& hx, const Variable& cx, const std::vector<Variable>& xs) const;
  F::NStepLSTMResult forward(const Variable& hx, const Variable& cx, const std::vector<Variable>& xs) const {
    return (*this)(hx, cx, xs);
  }
};

// (hx, xs) -> (hy, ys) for the GRU and plain RNN links.
class NStepRNNLink : public NStepRNNBase {
 public:
  F::NStepRNNResult operator()(const Variable& hx, const std::vector<Variable>& xs) const;
  F::NStepRNNResult forward(const Variable& hx, const std::vector<Variable>& xs) const { return (*this)(hx, xs); }

 protected:
  enum class Kind { GRU, Tanh, ReLU };
  NStepRNNLink(const char* name, Kind kind, bool bidirectional, int64_t n_layers, int64_t in_size,
               int64_t out_size, double dropout, Parameter::Initializer initialW,
               Parameter::Initializer initial_bias);
  Kind kind_;
};

#define KILN_NSTEP_RNN_LINK(Name)                                                                   \
  class Name : public NStepRNNLink {                                                                 \
   public:                                                                                           \
    Name(int64_t n_layers, int64_t in_size, int64_t out_size, double dropout,                        \
         Parameter::Initializer initialW = nullptr, Parameter::Initializer initial_bias = nullptr); \
  };
KILN_NSTEP_RNN_LINK(NStepGRU)
KILN_NSTEP_RNN_LINK(NStepBiGRU)
KILN_NSTEP_RNN_LINK(NStepRNNTanh)
KILN_NSTEP_RNN_LINK(NStepRNNReLU)
KILN_NSTEP_RNN_LINK(NStepBiRNNTanh)
KILN_NSTEP_RNN_LINK(NStepBiRNNReLU)
#undef KILN_NSTEP_RNN_LINK

}  // namespace kiln::links
