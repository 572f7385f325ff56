// kiln::export_model and kiln::export_training_step: a traced model (its
// forward) or one whole training step written as kiln IR and npz weights, the
// input of the ahead-of-time compiler `kilnc` (tools/kilnc).
//
//   kiln::export_model(model.predictor, {x}, "out/digits");
//     out/digits.mlir  func.func @forward: kiln dialect after the frontend
//                      pipeline (autodiff done), traced with train=false and
//                      no backprop; parameters are function arguments named
//                      by `kiln.name` (Chainer's names, "l1/W"), data inputs
//                      and outputs carry `kiln.role`; the batch dimension is
//                      `?` where -kiln-generalize-batch can make it so.
//     out/digits.npz   the parameters (and persistent values), Chainer layout.
//   kiln::export_training_step(model, opt, {x}, t, "out/digits_train");
//     func.func @step  one step: forward, loss, backward, the optimizer's hooks
//                      and update (hyperparameters as constants); parameters
//                      and optimizer state in, the loss and the new
//                      parameters and state out (`kiln.role` param/state,
//                      state named "optimizer/<param>/<slot>").
//     func.func @forward  the model's `predictor` (train=false), when it has one.
//     .npz             the model's parameters ("predictor/l1/W") and the
//                      optimizer's serialized state under "optimizer/"
//                      (serializers::to_arrays(opt, "optimizer/")).
// Exporting computes one traced call (a step on the example batch) and then
// restores every parameter, optimizer state array and update count: the
// model and optimizer are left as they were. Adam and AdamW: the update count t
// of each parameter is state too ("optimizer/<param>/t", int64, Chainer's
// per-rule t), and alpha_t = alpha sqrt(1 - beta2^t) / (1 - beta1^t) is
// computed in the step in float64 as Adam::alpha_t does on the host. Throws
// kiln::Error (a file that cannot be written, a model that cannot be called
// with the inputs, a graph input that is neither a parameter, state nor an
// example input).
#pragma once
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/error.h"
#include "kiln/link.h"
#include "kiln/optimizers.h"
#include "kiln/variable.h"

namespace kiln {

namespace detail {

using ExportForward = std::function<std::vector<Variable>(const std::vector<Variable>&)>;
using ExportLoss = std::function<Variable(const std::vector<Variable>&, const Variable&)>;

void export_forward(const Link& model, const ExportForward& forward, const std::vector<Array>& example_inputs,
                    const std::string& prefix);
// `predictor` may be empty (no @forward function).
void export_step(const Link& model, optimizers::Optimizer& optimizer, const ExportLoss& loss,
                 const ExportForward& predictor, const std::vector<Array>& example_inputs,
                 const Array& example_labels, const std::string& prefix);

template <class R>
std::vector<Variable> export_results(R&& result) {
  if constexpr (std::is_convertible_v<R, Variable>)
    return {Variable(std::forward<R>(result))};
  else
    return std::vector<Variable>(result.begin(), result.end());
}

[[noreturn]] void export_arity_error(size_t inputs, const char* what);

// model(xs[0], ..., xs[n-1], extra...) for n = 1, 2, 3.
template <class Model, class... Extra>
auto export_call(Model& model, const std::vector<Variable>& xs, const Extra&... extra) {
  if constexpr (std::is_invocable_v<Model&, const Variable&, const Extra&...>)
    if (xs.size() == 1) return export_results(model(xs[0], extra...));
  if constexpr (std::is_invocable_v<Model&, const Variable&, const Variable&, const Extra&...>)
    if (xs.size() == 2) return export_results(model(xs[0], xs[1], extra...));
  if constexpr (std::is_invocable_v<Model&, const Variable&, const Variable&, const Variable&, const Extra&...>)
    if (xs.size() == 3) return export_results(model(xs[0], xs[1], xs[2], extra...));
  export_arity_error(xs.size(), sizeof...(Extra) ? "the model and its labels" : "the model");
}

template <class M, class = void>
struct has_predictor : std::false_type {};
template <class M>
struct has_predictor<M, std::void_t<decltype(std::declval<M&>().predictor)>> : std::true_type {};

}  // namespace detail

// Writes <prefix>.mlir and <prefix>.npz for the forward of `model` (a Link
// callable with one Variable per example input, returning a Variable or a
// vector of them), traced on `example_inputs`.
template <class Model>
void export_model(Model& model, const std::vector<Array>& example_inputs, const std::string& prefix) {
  detail::export_forward(
      model, [&model](const std::vector<Variable>& xs) { return detail::export_call(model, xs); }, example_inputs,
      prefix);
}
template <class Model>
void export_model(Model& model, const Array& example_input, const std::string& prefix) {
  export_model(model, std::vector<Array>{example_input}, prefix);
}

// Writes <prefix>.mlir and <prefix>.npz for one training step of `model` (a
// Link whose call model(x..., t) returns the loss, such as L::Classifier)
// under `optimizer` (set up on `model`), traced on the example batch.
template <class Model>
void export_training_step(Model& model, optimizers::Optimizer& optimizer, const std::vector<Array>& example_inputs,
                          const Array& example_labels, const std::string& prefix) {
  detail::ExportForward predictor;
  if constexpr (detail::has_predictor<Model>::value)
    predictor = [&model](const std::vector<Variable>& xs) { return detail::export_call(model.predictor, xs); };
  detail::export_step(
      model, optimizer,
      [&model](const std::vector<Variable>& xs, const Variable& t) {
        return detail::export_call(model, xs, t).at(0);
      },
      predictor, example_inputs, example_labels, prefix);
}
template <class Model>
void export_training_step(Model& model, optimizers::Optimizer& optimizer, const Array& example_input,
                          const Array& example_labels, const std::string& prefix) {
  export_training_step(model, optimizer, std::vector<Array>{example_input}, example_labels, prefix);
}

}  // namespace kiln
