// -kiln-autodiff: replaces kiln.grad requests by backward graphs built from VJPOpInterface.
#include "kiln/passes/Passes.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNAUTODIFF
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;
using namespace kiln::ir;

namespace {

// Builds the backward sweep for one (y, seed) pair and answers its kiln.grad ops.
class BackwardSweep {
 public:
  BackwardSweep(Value y, Value seed, ArrayRef<GradOp> requests)
      : y_(y), seed_(seed), requests_(requests) {}

  LogicalResult run() {
    Operation* anchor = requests_.front();
    OpBuilder b(anchor);
    markDependsOnInputs(anchor);
    if (!dependsOnInput_.contains(y_)) return answer(b);
    cotangent_[y_] = seed_;
    // The ops y depends on, visited from y backwards in block order.
    llvm::SetVector<Operation*> cone;
    collectCone(y_, cone);
    SmallVector<Operation*> ordered(cone.begin(), cone.end());
    llvm::sort(ordered, [](Operation* a, Operation* c) { return c->isBeforeInBlock(a); });
    for (Operation* op : ordered) {
      bool any = false, anyFloat = false;
      for (Value r : op->getResults())
        if (cotangent_.lookup(r)) {
          any = true;
          anyFloat |= isa<FloatType>(cast<ShapedType>(r.getType()).getElementType());
        }
      if (!any) continue;
      auto vjp = dyn_cast<VJPOpInterface>(op);
      if (!vjp) {
        // A gradient barrier stops it, and integer or boolean values carry none;
        // any other op on the path must know its VJP, or the gradient would be
        // silently wrong.
        if (isa<StopGradientOp>(op) || !anyFloat) continue;
        return op->emitError("cannot differentiate through '")
               << op->getName() << "': it has no vector-Jacobian product (VJPOpInterface), and a "
               << "gradient reaches it; keep it off the differentiated path (stop_gradient, "
               << "no_backprop_mode) or give it a VJP";
      }
      SmallVector<Value> resultGrads;
      for (Value r : op->getResults()) {
        Value g = cotangent_.lookup(r);
        resultGrads.push_back(g ? g : zerosLike(b, op->getLoc(), r));
      }
      SmallVector<Value> operandGrads;
      Block* block = b.getInsertionBlock();
      Operation* last = b.getInsertionPoint() == block->begin() ? nullptr : &*std::prev(b.getInsertionPoint());
      if (failed(vjp.buildVJP(b, resultGrads, operandGrads))) return failure();
      // The VJP's ops are named after the forward op's Link too.
      if (Attribute scope = op->getAttr(kiln::passes::kScopeAttr); scope && b.getInsertionBlock() == block)
        for (auto it = last ? std::next(last->getIterator()) : block->begin(); it != b.getInsertionPoint(); ++it)
          if (!it->hasAttr(kiln::passes::kScopeAttr)) it->setAttr(kiln::passes::kScopeAttr, scope);
      if (operandGrads.size() != op->getNumOperands())
        return op->emitError("VJP returned ") << operandGrads.size() << " gradients for "
                                              << op->getNumOperands() << " operands";
      for (auto [operand, g] : llvm::zip(op->getOperands(), operandGrads)) {
        if (!g || !dependsOnInput_.contains(operand)) continue;
        if (g.getType() != operand.getType())
          return op->emitError("VJP gradient type ") << g.getType() << " differs from operand type "
                                                     << operand.getType();
        accumulate(b, operand, g);
      }
    }
    return answer(b);
  }

 private:
  static Value zerosLike(OpBuilder& b, Location loc, Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    Attribute zero = isa<FloatType>(t.getElementType())
                         ? Attribute(b.getFloatAttr(t.getElementType(), 0.0))
                         : Attribute(b.getIntegerAttr(t.getElementType(), 0));
    return createSplat(b, loc, t, zero);  // a symbolic (batch) shape too
  }

  // slot + g; where g is a fresh scatter_add without a base (an embedding's per-step gradient), the
  // sum is that scatter_add onto the slot instead, so the steps' gradients accumulate into one buffer.
  void accumulate(OpBuilder& b, Value v, Value g) {
    Value& slot = cotangent_[v];
    if (!slot) {
      slot = g;
      return;
    }
    auto scatter = g.getDefiningOp<ScatterAddOp>();
    if (scatter && !scatter.getBase() && g.use_empty() && slot.getType() == g.getType()) {
      scatter.getBaseMutable().assign(slot);
      slot = g;
      return;
    }
    slot = AddOp::create(b, g.getLoc(), g.getType(), slot, g).getResult();
  }

  // Values that depend on any requested x, in program order up to `anchor`.
  void markDependsOnInputs(Operation* anchor) {
    for (GradOp g : requests_) dependsOnInput_.insert(g.getX());
    Block* block = anchor->getBlock();
    for (Operation& op : *block) {
      if (&op == anchor) break;
      if (llvm::any_of(op.getOperands(), [&](Value v) { return dependsOnInput_.contains(v); }))
        dependsOnInput_.insert(op.result_begin(), op.result_end());
    }
  }

  void collectCone(Value root, llvm::SetVector<Operation*>& cone) {
    SmallVector<Value> work{root};
    while (!work.empty()) {
      Value v = work.pop_back_val();
      if (!dependsOnInput_.contains(v)) continue;
      Operation* def = v.getDefiningOp();
      if (!def || !cone.insert(def)) continue;
      for (Value operand : def->getOperands()) work.push_back(operand);
    }
  }

  LogicalResult answer(OpBuilder& b) {
    for (GradOp g : requests_) {
      b.setInsertionPoint(g);
      Value c = cotangent_.lookup(g.getX());
      if (!c) c = zerosLike(b, g.getLoc(), g.getX());
      g.replaceAllUsesWith(c);
      g.erase();
    }
    return success();
  }

  Value y_, seed_;
  ArrayRef<GradOp> requests_;
  llvm::DenseSet<Value> dependsOnInput_;
  llvm::DenseMap<Value, Value> cotangent_;
};

struct KilnAutodiffPass : kiln::passes::impl::KilnAutodiffBase<KilnAutodiffPass> {
  void runOnOperation() override {
    // Requests are answered in program order so a gradient of a gradient sees
    // the inner backward graph already built.
    while (true) {
      GradOp first;
      getOperation().walk([&](GradOp g) {
        if (!first) first = g;
      });
      if (!first) break;
      SmallVector<GradOp> group;
      getOperation().walk([&](GradOp g) {
        if (g.getY() == first.getY() && g.getSeed() == first.getSeed()) group.push_back(g);
      });
      if (failed(BackwardSweep(first.getY(), first.getSeed(), group).run()))
        return signalPassFailure();
    }
    // Gradient barriers have served: each is its operand from here on.
    getOperation().walk([](StopGradientOp op) {
      op.replaceAllUsesWith(op.getX());
      op.erase();
    });
  }
};

}  // namespace
