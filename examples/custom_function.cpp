// Defining your own function (Chainer's FunctionNode): a forward made of F:: ops
// and its own backward, recorded as one op whose gradient is the user's.
#include <kiln/kiln.h>

using namespace kiln;
using Vs = std::vector<Variable>;

// A constant of x's shape and dtype, made from x by F:: ops (custom functions
// may only use their inputs and constants computed in them).
Variable full_like(const Variable& x, double value) { return x * 0.0 + value; }

int main() {
  try {
    // Straight-through estimator: the forward binarizes x to +-1 (a step, whose
    // true gradient is zero almost everywhere); the backward passes the gradient
    // straight through where |x| <= 1 and zeroes it elsewhere.
    FunctionNode binarize{
        "binarize",
        [](const Vs& in) {
          const Variable& x = in[0];
          return F::where(F::greater_equal(x, full_like(x, 0.0)), full_like(x, 1.0), full_like(x, -1.0));
        },
        [](const Vs& in, const Variable& /*y*/, const Variable& gy) {
          const Variable& x = in[0];
          return Vs{F::where(F::less_equal(F::absolute(x), full_like(x, 1.0)), gy, full_like(gy, 0.0))};
        }};

    // Gradient clipping: the identity forward, a backward that clips the
    // gradient to [-1, 1].
    FunctionNode clip_grad{
        "clip_grad", [](const Vs& in) { return F::identity(in[0]); },
        [](const Vs&, const Variable&, const Variable& gy) { return Vs{F::clip(gy, -1.0, 1.0)}; }};

    Variable x(Array::from({-2.f, -0.5f, 0.f, 0.3f, 1.5f}, {5}));
    Variable w(Array::from({1.f, 2.f, 3.f, 4.f, 5.f}, {5}), /*requires_grad=*/false);

    Variable y = binarize({x});
    Variable loss = F::sum(y * w);
    loss.backward();
    fmt::print("binarize(x) = {}\n", y.array().to_string());
    fmt::print("binarize: x.grad = {}\n", x.grad().to_string());

    x.cleargrad();
    Variable z = clip_grad({x});
    Variable loss2 = F::sum(F::square(z));  // d/dz = 2z = [-4, -1, 0, 0.6, 3]
    loss2.backward();
    fmt::print("clip_grad(x) = {}\n", z.array().to_string());
    fmt::print("clip_grad: x.grad = {}\n", x.grad().to_string());
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
