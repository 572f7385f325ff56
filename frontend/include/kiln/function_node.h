// kiln::FunctionNode: a user-defined function with its own backward, like chainer.FunctionNode.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "kiln/functions.h"
#include "kiln/variable.h"

namespace kiln {

// A function written by the user: a forward made of F:: ops and, optionally, its
// own backward (also F:: ops), e.g. a straight-through estimator or a
// gradient-clipping identity. A call records ONE op (kiln.custom) in the trace;
// autodiff uses the user's backward as its vector-Jacobian product, and the
// forward's ops are inlined before the backend runs.
//
//   FunctionNode ste{"ste",
//       [](const std::vector<Variable>& in) { return F::sign(in[0]); },
//       [](const std::vector<Variable>& in, const Variable& y, const Variable& gy) {
//         return std::vector<Variable>{gy};  // identity gradient
//       }};
//   Variable y = ste({x});
//
// Rules:
// - forward and backward are recorded at each call on placeholder variables of
//   the inputs' shapes and dtypes (and, for the backward, the output's and its
//   gradient's). They may only use these and constants (F:: ops on them):
//   parameters and any other outside variable must be passed as inputs (a
//   captured variable throws kiln::Error). Constants come from F:: ops on the
//   inputs: `x + 1.0`, `x * 0.0 + c`, F::clip(x, lo, hi). They only record: reading a value
//   (array(), item(), printing) inside them throws.
// - backward returns one gradient per input, of the input's shape and dtype,
//   or a null Variable() for none (zeros). Integer inputs get no gradient.
// - Without a backward, a call is just forward(inputs): its ops are recorded
//   as they are and differentiated op by op (no kiln.custom op).
struct FunctionNode {
  std::string name;
  std::function<Variable(const std::vector<Variable>& inputs)> forward;
  // Optional: returns one gradient per input (a null Variable() for none).
  std::function<std::vector<Variable>(const std::vector<Variable>& inputs, const Variable& output,
                                      const Variable& grad_output)>
      backward;

  // Records one kiln.custom op (see above); throws kiln::Error naming the function.
  Variable operator()(const std::vector<Variable>& inputs,
                      SourceLocation loc = SourceLocation::current()) const;
};

}  // namespace kiln
