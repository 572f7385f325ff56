// -kiln-inline-custom: replaces each kiln.custom by its forward region's ops.
#include "kiln/passes/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNINLINECUSTOM
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;
using namespace kiln::ir;

namespace {

struct KilnInlineCustomPass : kiln::passes::impl::KilnInlineCustomBase<KilnInlineCustomPass> {
  void runOnOperation() override {
    // Post-order: a custom op nested in another one's region is inlined (or
    // erased with its parent's backward region) before its parent.
    SmallVector<CustomOp> customs;
    getOperation().walk([&](CustomOp op) { customs.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (CustomOp op : customs) {
      YieldOp yield = op.getForwardYield();
      // A yielded block argument (an identity forward) stands for its input.
      SmallVector<Value> yielded;
      for (Value v : yield.getValues()) {
        auto arg = dyn_cast<BlockArgument>(v);
        yielded.push_back(arg && arg.getOwner() == op.getForwardBody() ? op.getInputs()[arg.getArgNumber()]
                                                                        : v);
      }
      rewriter.inlineBlockBefore(op.getForwardBody(), op, op.getInputs());
      rewriter.replaceOp(op, yielded);
      rewriter.eraseOp(yield);
    }
  }
};

}  // namespace
