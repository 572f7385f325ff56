// L::Linear.
#include "kiln/links.h"

namespace kiln::links {

Linear::Linear(int64_t out) : out_size(out) { init(nullptr, nullptr); }

Linear::Linear(int64_t in, int64_t out, bool nb, Parameter::Initializer initialW,
               Parameter::Initializer initial_bias)
    : in_size(in), out_size(out), nobias(nb) {
  init(std::move(initialW), std::move(initial_bias));
  if (in_size > 0) W.initialize({out_size, in_size});
}

void Linear::init(Parameter::Initializer initialW, Parameter::Initializer initial_bias) {
  if (out_size <= 0) throw Error(fmt::format("kiln: L::Linear: out_size must be positive, got {}", out_size));
  if (in_size == 0 || in_size < -1) throw Error(fmt::format("kiln: L::Linear: in_size must be positive, got {}", in_size));
  add_weight_and_bias(W, b, nobias, out_size, std::move(initialW), std::move(initial_bias));
}

Variable Linear::operator()(const Variable& x) const {
  if (!W.is_initialized()) {
    if (x.ndim() < 1 || x.shape()[0] == 0)
      throw Error("kiln: L::Linear: cannot infer in_size from an input of shape " + shape_str(x.shape()));
    const_cast<Parameter&>(W).initialize({out_size, x.size() / x.shape()[0]}, x.dtype());
  }
  return F::linear(x, W, nobias ? Variable() : Variable(b));
}

}  // namespace kiln::links
