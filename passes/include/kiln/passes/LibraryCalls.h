// Marks that -kiln-lower-to-linalg's conv-calls option puts on linalg.generics
// whose loops a backend replaces by a library call (the CPU backend with
// KILN_GEMM=blas: -kiln-matmul-to-blas), beside kConvGradFilterAttr (Passes.h).
#pragma once

#include "kiln/passes/Passes.h"

namespace kiln::passes {

// The linalg.generic computing a pool2d_grad: ins(x, gy) outs(gx), loops over
// gx's dimensions, x read at the same point, gy at (n, c, 0, 0) (the body reads
// the windows it needs with tensor.extract). A dictionary {kind = "max" | "avg",
// ksize, stride, pad} (i64 arrays of two); the semantics are kiln.pool2d_grad's.
inline constexpr llvm::StringLiteral kPool2DGradAttr = "kiln.pool2d_grad";

// Whether `op` carries a mark of a library call that stands in for its loops.
inline bool isMarkedLibraryCall(mlir::Operation* op) {
  return op->hasAttr(kConvGradFilterAttr) || op->hasAttr(kPool2DGradAttr);
}

}  // namespace kiln::passes
