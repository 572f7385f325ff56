// -kiln-sequentialize-small-loops: keeps only large outermost scf.parallel loops parallel.
#include <algorithm>
#include <optional>

#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNSEQUENTIALIZESMALLLOOPS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

// Static trip count of one loop dimension, if its bounds are constants.
std::optional<int64_t> tripCount(mlir::Value lower, mlir::Value upper, mlir::Value step) {
  std::optional<int64_t> lb = mlir::getConstantIntValue(lower);
  std::optional<int64_t> ub = mlir::getConstantIntValue(upper);
  std::optional<int64_t> st = mlir::getConstantIntValue(step);
  if (!lb || !ub || !st || *st <= 0) return std::nullopt;
  return *ub > *lb ? (*ub - *lb + *st - 1) / *st : 0;
}

constexpr int64_t kUnknownWork = int64_t{1} << 40;

int64_t saturatingMultiply(int64_t a, int64_t b) {
  a = std::max<int64_t>(a, 1), b = std::max<int64_t>(b, 1);
  return a >= kUnknownWork / b ? kUnknownWork : a * b;
}

// Iterations of one scf.for or scf.parallel (all its dimensions), or
// kUnknownWork; nullopt for other ops.
std::optional<int64_t> loopIterations(mlir::Operation* op) {
  auto multiply = [](int64_t a, std::optional<int64_t> b) {
    return b ? saturatingMultiply(a, *b) : kUnknownWork;
  };
  if (auto f = mlir::dyn_cast<mlir::scf::ForOp>(op))
    return multiply(1, tripCount(f.getLowerBound(), f.getUpperBound(), f.getStep()));
  if (auto p = mlir::dyn_cast<mlir::scf::ParallelOp>(op)) {
    int64_t n = 1;
    for (auto [lb, ub, st] : llvm::zip(p.getLowerBound(), p.getUpperBound(), p.getStep()))
      n = multiply(n, tripCount(lb, ub, st));
    return n;
  }
  return std::nullopt;
}

// Iterations of `loop` times those of the deepest nest of loops inside it.
int64_t estimatedWork(mlir::scf::ParallelOp loop) {
  int64_t work = *loopIterations(loop);
  int64_t inner = 1;
  loop.getBody()->walk([&](mlir::Operation* nested) {
    if (!loopIterations(nested)) return;
    int64_t nest = 1;
    for (mlir::Operation* op = nested; op && op != loop; op = op->getParentOp())
      if (std::optional<int64_t> n = loopIterations(op)) nest = saturatingMultiply(nest, *n);
    inner = std::max(inner, nest);
  });
  return saturatingMultiply(work, inner);
}

bool isOutermostLoop(mlir::scf::ParallelOp loop) {
  return !loop->getParentOfType<mlir::scf::ParallelOp>() &&
         !loop->getParentOfType<mlir::scf::ForOp>();
}

struct KilnSequentializeSmallLoops
    : impl::KilnSequentializeSmallLoopsBase<KilnSequentializeSmallLoops> {
  using Base::Base;
  void runOnOperation() override {
    llvm::SmallVector<mlir::scf::ParallelOp> loops;
    getOperation().walk([&](mlir::scf::ParallelOp loop) {
      if (!isOutermostLoop(loop) || estimatedWork(loop) < minParallelWork) loops.push_back(loop);
    });
    // Inner loops first (post-order walk), so each rewrite sees its body intact.
    mlir::IRRewriter rewriter(&getContext());
    for (mlir::scf::ParallelOp loop : loops) {
      rewriter.setInsertionPoint(loop);
      if (mlir::failed(mlir::scf::parallelForToNestedFors(rewriter, loop))) {
        loop.emitError("kiln: cannot turn this scf.parallel into scf.for loops");
        return signalPassFailure();
      }
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
