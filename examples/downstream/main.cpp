// Uses an installed kiln: one Linear link, forward and backward.
#include <kiln/kiln.h>

using namespace kiln;

int main() {
  L::Linear f(3, 2);
  Variable x(Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3}));
  Variable y = f(x);
  y.set_grad(Array::ones({2, 2}));
  y.backward();
  fmt::print("W.grad = {}\n", f.W.grad());
  return f.W.grad().to_vector<float>() == std::vector<float>{5, 7, 9, 5, 7, 9} ? 0 : 1;
}
