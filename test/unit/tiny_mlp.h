// Shared by the device tests: a 2-layer MLP (3 -> 5 -> relu -> 2), small enough for the
// emulated and the fake GPU.
#pragma once
#include <kiln/kiln.h>

struct MLP : kiln::Chain {
  kiln::links::Linear l1{3, 5}, l2{5, 2};
  MLP() {
    add_link("l1", l1);
    add_link("l2", l2);
  }
  kiln::Variable operator()(const kiln::Variable& x) const { return l2(kiln::functions::relu(l1(x))); }
};
