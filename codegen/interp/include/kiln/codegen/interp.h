// The reference interpreter of the kiln dialect: slow, simple, float64 inside.
#pragma once
#include <vector>

#include "kiln/array.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace kiln::interp {

// Runs `func` (kiln ops only, after -kiln-autodiff) on host arrays and returns
// its results. Throws kiln::Error naming the op for anything unsupported.
std::vector<Array> run(mlir::func::FuncOp func, const std::vector<Array>& args);

}  // namespace kiln::interp
