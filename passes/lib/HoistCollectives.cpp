// -kiln-hoist-collectives: each kiln.collective_start, with the ops that only assemble its
// bucket, moves right after its last gradient is computed (hoistCollectiveChain, which the
// cpu backend's -kiln-start-collectives also uses on linalg).
#include "kiln/ir/KilnCollective.h"
#include "kiln/passes/Passes.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNHOISTCOLLECTIVES
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;

namespace {

// The ops of `start`'s block that only assemble its bucket: ops that `assembles` takes, without
// memory effects, every result used by `start` or another such op.
SmallVector<Operation*> bucketChain(Operation* start, llvm::function_ref<bool(Operation*)> assembles) {
  Block* block = start->getBlock();
  llvm::SetVector<Operation*> chain;
  chain.insert(start);
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t i = 0; i < chain.size(); ++i)
      for (Value v : chain[i]->getOperands()) {
        Operation* def = v.getDefiningOp();
        if (!def || def->getBlock() != block || chain.contains(def) || !assembles(def) || !isMemoryEffectFree(def))
          continue;
        if (!llvm::all_of(def->getUsers(), [&](Operation* u) { return chain.contains(u); })) continue;
        chain.insert(def);
        grew = true;
      }
  }
  SmallVector<Operation*> ops(chain.begin(), chain.end());
  llvm::sort(ops, [](Operation* a, Operation* b) { return a->isBeforeInBlock(b); });
  return ops;
}

struct KilnHoistCollectivesPass : kiln::passes::impl::KilnHoistCollectivesBase<KilnHoistCollectivesPass> {
  void runOnOperation() override {
    SmallVector<kiln::ir::CollectiveStartOp> starts;
    getOperation().walk([&](kiln::ir::CollectiveStartOp op) { starts.push_back(op); });
    // Only the bucket's reshapes and concatenation: the gradients' ops keep their order.
    auto assembles = [](Operation* op) { return isa<kiln::ir::ReshapeOp, kiln::ir::ConcatOp>(op); };
    for (kiln::ir::CollectiveStartOp op : starts) kiln::passes::hoistCollectiveChain(op, assembles);
  }
};

}  // namespace

namespace kiln::passes {

void hoistCollectiveChain(Operation* start, llvm::function_ref<bool(Operation*)> assembles) {
  Block* block = start->getBlock();
  for (Operation* op : bucketChain(start, assembles)) {
    Operation* last = nullptr;
    auto consider = [&](Value v) {
      Operation* def = v.getDefiningOp();
      if (!def) return;
      def = block->findAncestorOpInBlock(*def);
      if (def && def != op && (!last || last->isBeforeInBlock(def))) last = def;
    };
    for (Value v : op->getOperands()) consider(v);
    llvm::SetVector<Value> captured;
    getUsedValuesDefinedAbove(op->getRegions(), captured);
    for (Value v : captured) consider(v);
    if (last)
      op->moveAfter(last);
    else
      op->moveBefore(&block->front());
  }
}

}  // namespace kiln::passes
