// kiln's passes and pipelines.
#pragma once

#include <memory>

#include "kiln/ir/KilnDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace kiln::passes {

#define GEN_PASS_DECL
#include "kiln/passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "kiln/passes/Passes.h.inc"

// The argument marks -kiln-generalize-batch reads (and removes): the candidate
// level of a data argument (i64: 2 data batch, 1 computed earlier) and the
// unit mark of model or optimizer state.
inline constexpr llvm::StringLiteral kBatchCandidateAttr = "kiln.batch_candidate";
inline constexpr llvm::StringLiteral kStateAttr = "kiln.state";

// On an op of a graph: the path of the Link whose parameter it reads
// ("predictor/l1"); -kiln-autodiff gives it to the op's VJP, kernels take the
// first one of their ops into their names.
inline constexpr llvm::StringLiteral kScopeAttr = "kiln.scope";

// On a graph function: {results = R : i64, pairs = array<i64: k0, j0, ...>},
// result k is the next value of argument j (an optimizer update), so a backend
// may write it into j's buffer (the CPU backend: -kiln-donate-buffers).
inline constexpr llvm::StringLiteral kDonationsAttr = "kiln.donations";

// With -kiln-lower-to-linalg's conv-calls: the mark of the linalg.generic that
// computes a convolution's filter gradient gw[f,c,i,j] += sum_{n,y,x}
// xpad[n,c,y*sh+i*dh,x*sw+j*dw] * gy[n,f,y,x] (a dictionary {strides, dilations}
// of i64 arrays), for a backend that calls a library there instead of the loops.
inline constexpr llvm::StringLiteral kConvGradFilterAttr = "kiln.conv2d_grad_filter";

// The kernel (kiln.fusion region) an op lowered by -kiln-lower-to-linalg came
// from: the name its location carries, e.g. "3:contraction:matmul+add+relu
// (mlp.cpp:41)"; empty for an op of no region. Backends fuse only ops of one kernel.
llvm::StringRef kernelOf(mlir::Operation* op);
// kernelOf, or the region an op lowered op by op came from (for KILN_PROFILE's names).
llvm::StringRef regionOf(mlir::Operation* op);

// Moves `start` (a kiln.collective_start, or a call standing for one) and the ops of its
// block that only assemble its bucket (ops `assembles` takes, without memory effects, every
// result used by the chain) right after the last op computing a value they use, in block
// order: the bucket's collective starts as soon as its last gradient is computed, and the ops
// computing the gradients keep their order. (-kiln-hoist-collectives on kiln ops: reshapes and
// concatenations; the cpu backend's -kiln-start-collectives on linalg: ops without regions.)
void hoistCollectiveChain(mlir::Operation* start, llvm::function_ref<bool(mlir::Operation*)> assembles);

// The pipeline the frontend runs before a backend: autodiff, inline kiln.custom,
// canonicalize, CSE, then -kiln-batch-matmuls and CSE unless `batchMatmuls` is false.
void buildKilnFrontendPipeline(mlir::OpPassManager& pm, bool batchMatmuls = true);
// Registers the passes above and the named pipeline `kiln-frontend-pipeline`.
void registerKilnPipelines();

}  // namespace kiln::passes
