// kiln::links (L): Chainer's links.
#pragma once
#include <optional>
#include <string>

#include "kiln/functions.h"
#include "kiln/link.h"

namespace kiln {

namespace links {

// y = x W^T + b. W: (out_size, in_size), LeCunNormal; b: zeros. Lazy form
// Linear(out_size) infers in_size from the first input.
class Linear : public Link {
 public:
  explicit Linear(int64_t out_size);
  // in_size -1 means lazy (Chainer's None).
  Linear(int64_t in_size, int64_t out_size, bool nobias = false,
         Parameter::Initializer initialW = nullptr, Parameter::Initializer initial_bias = nullptr);
  Variable operator()(const Variable& x) const;
  Variable forward(const Variable& x) const { return (*this)(x); }

  Parameter W, b;
  int64_t in_size = -1, out_size = 0;
  bool nobias = false;

 private:
  void init(Parameter::Initializer initialW, Parameter::Initializer initial_bias);
};

// Wraps a predictor; loss = lossfun(predictor(x), t) and accuracy are kept in
// `loss` and `accuracy` (and reported) like chainer.links.Classifier.
template <typename Predictor>
class Classifier : public Chain {
 public:
  using LossFun = std::function<Variable(const Variable&, const Variable&)>;
  explicit Classifier(Predictor p = Predictor(), LossFun lossfun = nullptr)
      : predictor(std::move(p)), lossfun_(std::move(lossfun)) {
    add_link("predictor", predictor);
  }
  Variable operator()(const Variable& x, const Variable& t) {
    y = predictor(x);
    loss = lossfun_ ? lossfun_(y, t) : F::softmax_cross_entropy(y, t);
    if (compute_accuracy) accuracy = F::accuracy(y, t);
    report_values();
    return loss;
  }
  Predictor predictor;
  Variable y, loss, accuracy;
  bool compute_accuracy = true;

 private:
  void report_values();
  LossFun lossfun_;
};

}  // namespace links

namespace L = links;

// Reports named observations to the current Reporter (a no-op outside one).
void report(const std::string& name, const Variable& value);

template <typename Predictor>
void links::Classifier<Predictor>::report_values() {
  report("loss", loss);
  if (compute_accuracy) report("accuracy", accuracy);
}

}  // namespace kiln
