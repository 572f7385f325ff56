// -kiln-sequentialize-small-loops: keeps only large outermost scf.parallel loops parallel,
// and of those only the leading dimensions that give the threads enough chunks.
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

// How many leading dimensions of a multi-dimensional parallel loop stay parallel: the
// fewest whose static trip counts (a dynamic one counted as 1: the batch may be
// small) multiply to kParallelChunks, and never the innermost one unless it steps over
// tiles (a constant step > 1: the output blocks of -kiln-tile-matmuls, where x W^T with
// a batch of one block has all its blocks in that dimension). The rest become
// scf.for loops inside it: OpenMP then splits only the leading dimensions (a collapsed
// loop nest recomputes every index with divisions at each iteration, which only a
// loop over tiles amortizes) and the innermost loop runs contiguous, vectorizable
// iterations.
constexpr int64_t kParallelChunks = 64;
unsigned parallelPrefix(mlir::scf::ParallelOp loop) {
  unsigned n = loop.getNumLoops(), keep = 0;
  int64_t chunks = 1;
  for (auto [lb, ub, st] : llvm::zip(loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
    bool overTiles = mlir::getConstantIntValue(st).value_or(1) > 1;
    if ((keep + 1 >= n && !overTiles) || chunks >= kParallelChunks) break;
    chunks = saturatingMultiply(chunks, tripCount(lb, ub, st).value_or(1));
    ++keep;
  }
  return std::max(keep, 1u);
}

// Rewrites `loop` as an scf.parallel over its first `keep` dimensions around scf.for
// loops over the others (in order, the last innermost), the body unchanged.
void splitParallel(mlir::RewriterBase& rewriter, mlir::scf::ParallelOp loop, unsigned keep) {
  mlir::Location loc = loop.getLoc();
  auto lbs = loop.getLowerBound(), ubs = loop.getUpperBound(), steps = loop.getStep();
  rewriter.setInsertionPoint(loop);
  auto outer = mlir::scf::ParallelOp::create(rewriter, loc, lbs.take_front(keep), ubs.take_front(keep),
                                             steps.take_front(keep));
  llvm::SmallVector<mlir::Value> ivs(outer.getInductionVars());
  mlir::Operation* end = outer.getBody()->getTerminator();
  for (unsigned d = keep; d < loop.getNumLoops(); ++d) {
    rewriter.setInsertionPoint(end);
    auto inner = mlir::scf::ForOp::create(rewriter, loc, lbs[d], ubs[d], steps[d]);
    ivs.push_back(inner.getInductionVar());
    end = inner.getBody()->getTerminator();
  }
  mlir::Operation* reduce = loop.getBody()->getTerminator();
  rewriter.inlineBlockBefore(loop.getBody(), end, ivs);
  rewriter.eraseOp(reduce);
  rewriter.eraseOp(loop);
}

bool isOutermostLoop(mlir::scf::ParallelOp loop) {
  return !loop->getParentOfType<mlir::scf::ParallelOp>() &&
         !loop->getParentOfType<mlir::scf::ForOp>();
}

struct KilnSequentializeSmallLoops
    : impl::KilnSequentializeSmallLoopsBase<KilnSequentializeSmallLoops> {
  using Base::Base;
  void runOnOperation() override {
    llvm::SmallVector<mlir::scf::ParallelOp> loops, wide;
    getOperation().walk([&](mlir::scf::ParallelOp loop) {
      if (!isOutermostLoop(loop) || estimatedWork(loop) < minParallelWork)
        loops.push_back(loop);
      else if (loop.getNumReductions() == 0 && parallelPrefix(loop) < loop.getNumLoops())
        wide.push_back(loop);
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
    for (mlir::scf::ParallelOp loop : wide) splitParallel(rewriter, loop, parallelPrefix(loop));
  }
};

}  // namespace
}  // namespace kiln::cpu
