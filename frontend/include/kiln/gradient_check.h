// kiln::gradient_check: compares autodiff gradients with numerical ones, like chainer.gradient_check.
#pragma once
#include <functional>
#include <vector>

#include "kiln/array.h"
#include "kiln/variable.h"

namespace kiln::gradient_check {

struct Options {
  double atol = 1e-5, rtol = 1e-4;
  double eps = 1e-3;  // step of the central differences
};

// Checks the gradients of `fn` at `inputs`. Floating inputs are cast to float64 (so `fn`
// runs in float64); integer inputs are passed unchanged and get no gradient. The
// analytic gradient of sum_j <fn(x)_j, grad_outputs[j]> (computed by backward()) is
// compared with central differences, elementwise: |analytic - numerical| <= atol +
// rtol * |numerical|. grad_outputs has one array per floating output (it may be empty:
// ones). Throws kiln::Error naming the input index and the largest error on a mismatch.
void check_backward(std::function<std::vector<Variable>(const std::vector<Variable>&)> fn,
                    const std::vector<Array>& inputs, const std::vector<Array>& grad_outputs,
                    Options options = {});

// chainer.gradient_check.check_double_backward: checks the gradients of the first-order
// gradient of `fn`. The function checked is (x..., gy...) -> kiln::grad(fn(x), x, gy,
// enable_double_backprop=true), its output gradients `grad_grad_inputs` (one array per
// floating input of `fn`, shaped like it; empty: ones), its gradients compared with
// central differences as check_backward does: second derivatives with respect to the
// inputs, and the transpose of the first derivative with respect to grad_outputs
// (one array per floating output; empty: ones). An input the gradient does not depend
// on gets zeros.
void check_double_backward(std::function<std::vector<Variable>(const std::vector<Variable>&)> fn,
                           const std::vector<Array>& inputs, const std::vector<Array>& grad_outputs,
                           const std::vector<Array>& grad_grad_inputs, Options options = {});

}  // namespace kiln::gradient_check
