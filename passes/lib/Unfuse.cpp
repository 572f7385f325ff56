// -kiln-unfuse: inlines kiln.fusion regions back into their block.
#include "kiln/passes/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNUNFUSE
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;
using namespace kiln::ir;

namespace {

struct KilnUnfusePass : kiln::passes::impl::KilnUnfuseBase<KilnUnfusePass> {
  void runOnOperation() override {
    SmallVector<FusionOp> fusions;
    getOperation().walk([&](FusionOp fusion) { fusions.push_back(fusion); });
    IRRewriter rewriter(&getContext());
    for (FusionOp fusion : fusions) {
      YieldOp yield = fusion.getYield();
      SmallVector<Value> yielded(yield.getValues());
      rewriter.inlineBlockBefore(fusion.getBody(), fusion, fusion.getInputs());
      rewriter.replaceOp(fusion, yielded);
      rewriter.eraseOp(yield);
    }
  }
};

}  // namespace
