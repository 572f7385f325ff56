// kiln::gradient_check::check_backward and check_double_backward.
#include "kiln/gradient_check.h"

#include <cmath>

#include "kiln/functions.h"

namespace kiln::gradient_check {

namespace {

using Fn = std::function<std::vector<Variable>(const std::vector<Variable>&)>;

std::vector<Variable> make_inputs(const std::vector<Array>& xs) {
  std::vector<Variable> vars;
  vars.reserve(xs.size());
  for (const Array& a : xs) vars.emplace_back(a.copy(), is_floating(a.dtype()));
  return vars;
}

// The floating outputs of one call of fn, with their output gradients (checked).
std::vector<Variable> float_outputs(const std::vector<Variable>& ys) {
  std::vector<Variable> out;
  for (const Variable& y : ys)
    if (!y.is_null() && is_floating(y.dtype())) out.push_back(y);
  if (out.empty()) throw Error("kiln: gradient_check.check_backward: fn returned no floating output");
  return out;
}

std::vector<Array> make_grad_outputs(const std::vector<Variable>& ys, const std::vector<Array>& gys) {
  if (!gys.empty() && gys.size() != ys.size())
    throw Error(fmt::format("kiln: gradient_check.check_backward: {} grad_outputs for {} floating outputs",
                            gys.size(), ys.size()));
  std::vector<Array> out;
  for (size_t j = 0; j < ys.size(); ++j) {
    if (gys.empty()) {
      out.push_back(Array::ones(ys[j].shape(), ys[j].dtype()));
      continue;
    }
    if (gys[j].shape() != ys[j].shape())
      throw Error(fmt::format("kiln: gradient_check.check_backward: grad_outputs[{}] has shape {}, output {} has shape {}",
                              j, shape_str(gys[j].shape()), j, shape_str(ys[j].shape())));
    out.push_back(gys[j].astype(ys[j].dtype()));
  }
  return out;
}

// sum_j <fn(xs)_j, gys_j>, evaluated on the host.
double evaluate(const Fn& fn, const std::vector<Array>& xs, const std::vector<Array>& gys) {
  std::vector<Variable> ys = float_outputs(fn(make_inputs(xs)));
  double s = 0;
  for (size_t j = 0; j < ys.size(); ++j) {
    Array y = ys[j].array();
    for (int64_t k = 0; k < y.size(); ++k) s += y.at(k) * gys[j].at(k);
  }
  return s;
}

}  // namespace

void check_backward(Fn fn, const std::vector<Array>& inputs, const std::vector<Array>& grad_outputs,
                    Options options) {
  std::vector<Array> xs;
  for (const Array& a : inputs) xs.push_back(is_floating(a.dtype()) ? a.astype(DType::f64) : a.copy());

  // Analytic: backward of L = sum_j sum(y_j * gy_j).
  std::vector<Variable> vars = make_inputs(xs);
  std::vector<Variable> ys = float_outputs(fn(vars));
  std::vector<Array> gys = make_grad_outputs(ys, grad_outputs);
  Variable loss;
  for (size_t j = 0; j < ys.size(); ++j) {
    Variable term = F::sum(ys[j] * Variable(gys[j], false));
    if (term.dtype() != DType::f64) term = F::cast(term, DType::f64);
    loss = loss.is_null() ? term : loss + term;
  }
  loss.backward();
  std::vector<Array> analytic;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!is_floating(xs[i].dtype())) { analytic.emplace_back(); continue; }
    analytic.push_back(vars[i].has_grad() ? vars[i].grad().astype(DType::f64)
                                          : Array::zeros(xs[i].shape(), DType::f64));
  }

  // Numerical: central differences, one element at a time.
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!is_floating(xs[i].dtype())) continue;
    double worst = 0, worst_excess = -1;
    int64_t worst_k = -1;
    double worst_a = 0, worst_n = 0;
    for (int64_t k = 0; k < xs[i].size(); ++k) {
      std::vector<Array> plus = xs, minus = xs;
      plus[i] = xs[i].copy();
      minus[i] = xs[i].copy();
      double v = xs[i].at(k);
      plus[i].set(k, v + options.eps);
      minus[i].set(k, v - options.eps);
      double numerical = (evaluate(fn, plus, gys) - evaluate(fn, minus, gys)) / (2 * options.eps);
      double a = analytic[i].at(k);
      double err = std::abs(a - numerical);
      double excess = err - (options.atol + options.rtol * std::abs(numerical));
      if (!(std::isfinite(a) && std::isfinite(numerical))) excess = std::numeric_limits<double>::infinity();
      worst = std::max(worst, err);
      if (excess > worst_excess) {
        worst_excess = excess;
        worst_k = k;
        worst_a = a;
        worst_n = numerical;
      }
    }
    if (worst_excess > 0)
      throw Error(fmt::format(
          "kiln: gradient_check.check_backward: the gradient of input {} (shape {}) does not match: max error "
          "{:.6g} (atol {}, rtol {}); at element {}: analytic {:.10g}, numerical {:.10g}",
          i, shape_str(xs[i].shape()), worst, options.atol, options.rtol, worst_k, worst_a, worst_n));
  }
}

void check_double_backward(Fn fn, const std::vector<Array>& inputs, const std::vector<Array>& grad_outputs,
                           const std::vector<Array>& grad_grad_inputs, Options options) {
  std::vector<Array> all;
  std::vector<size_t> floating;
  for (size_t i = 0; i < inputs.size(); ++i) {
    all.push_back(is_floating(inputs[i].dtype()) ? inputs[i].astype(DType::f64) : inputs[i].copy());
    if (is_floating(inputs[i].dtype())) floating.push_back(i);
  }
  if (floating.empty()) throw Error("kiln: gradient_check.check_double_backward: no floating input");
  // The output gradients become inputs of the first-order gradient function.
  std::vector<Variable> probe = float_outputs(fn(make_inputs(all)));
  for (Array& gy : make_grad_outputs(probe, grad_outputs)) all.push_back(gy);
  size_t n = inputs.size();
  Fn first_order = [fn, n, floating](const std::vector<Variable>& v) {
    std::vector<Variable> xs(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<Variable> gys(v.begin() + static_cast<std::ptrdiff_t>(n), v.end());
    std::vector<Variable> wrt;
    for (size_t i : floating) wrt.push_back(xs[i]);
    std::vector<Variable> gxs = grad(float_outputs(fn(xs)), wrt, gys, /*enable_double_backprop=*/true);
    for (size_t j = 0; j < gxs.size(); ++j)  // no path from the outputs: a zero gradient
      if (gxs[j].is_null()) gxs[j] = Variable(Array::zeros(wrt[j].shape(), wrt[j].dtype()), false);
    return gxs;
  };
  try {
    check_backward(first_order, all, grad_grad_inputs, options);
  } catch (const Error& e) {
    throw Error(fmt::format("kiln: gradient_check.check_double_backward ({} inputs, then {} grad_outputs, "
                            "numbered together): {}",
                            n, all.size() - n, e.what()));
  }
}

}  // namespace kiln::gradient_check
