// Chainer's Links tutorial in kiln: a Linear link, its parameters, forward and backward.
#include <kiln/kiln.h>

using namespace kiln;

int main() {
  try {
    L::Linear f(3, 2);
    Array x_data = Array::from({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
    Variable x(x_data);
    Variable y = f(x);
    fmt::print("f.W =\n{}\n", f.W);
    fmt::print("f.b =\n{}\n", f.b);
    fmt::print("y = f(x) =\n{}\n", y);

    f.cleargrads();
    y.set_grad(Array::ones({2, 2}));
    y.backward();
    fmt::print("f.W.grad =\n{}\n", f.W.grad());
    fmt::print("f.b.grad =\n{}\n", f.b.grad());

    L::Linear g(2);  // in_size inferred at the first call
    Variable z = g(x);
    fmt::print("lazy L::Linear(2): W.shape = {}, g(x) =\n{}\n", shape_str(g.W.shape()), z);
    fmt::print("{}\n", cache_stats().to_string());
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
