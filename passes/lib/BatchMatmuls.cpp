// -kiln-batch-matmuls: one GEMM for independent matmuls that share their right-hand operand (the
// time steps of an unrolled recurrence), and one for the add chain of their weight gradients.
#include "kiln/passes/Passes.h"

#include "mlir/Analysis/TopologicalSortUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "kiln-batch-matmuls"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNBATCHMATMULS
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;
using namespace kiln::ir;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

// (d0, ..., dn) -> (1, d0, ..., dn): one matrix of a batch.
RankedTensorType withLeadingOne(RankedTensorType t) {
  SmallVector<int64_t> shape{1};
  shape.append(t.getShape().begin(), t.getShape().end());
  return RankedTensorType::get(shape, t.getElementType());
}

// Whether values depend on the ops of a group (its members). Walks back from the values through
// the ops of `block` that do not precede the group's first op: the block is in topological order,
// so nothing before it depends on the group. Ops found free of the group stay known as such while
// it grows, since a member added later comes after every op an earlier walk visited.
class DependenceWalk {
 public:
  DependenceWalk(Block& block, Operation* first) : block_(block), first_(first) { members_.insert(first); }
  void addMember(Operation* op) { members_.insert(op); }

  bool dependsOnMembers(ValueRange values) {
    SmallVector<Operation*> stack;
    llvm::SmallPtrSet<Operation*, 32> seen;
    bool found = false;
    auto visit = [&](Value v) {
      Operation* def = v.getDefiningOp();
      if (!def) return;  // an argument: of the function, or of a region whose op is walked
      def = block_.findAncestorOpInBlock(*def);
      if (!def) return;
      if (members_.contains(def)) found = true;
      else if (!free_.contains(def) && !def->isBeforeInBlock(first_) && seen.insert(def).second)
        stack.push_back(def);
    };
    for (Value v : values) visit(v);
    while (!stack.empty() && !found) {
      Operation* op = stack.pop_back_val();
      for (Value v : op->getOperands()) visit(v);
      visitUsedValuesDefinedAbove(op->getRegions(), [&](OpOperand* use) { visit(use->get()); });
    }
    if (!found) free_.insert(seen.begin(), seen.end());
    return found;
  }

 private:
  Block& block_;
  Operation* first_;
  llvm::SmallPtrSet<Operation*, 16> members_;
  llvm::DenseSet<Operation*> free_;
};

struct KilnBatchMatmulsPass : kiln::passes::impl::KilnBatchMatmulsBase<KilnBatchMatmulsPass> {
  using KilnBatchMatmulsBase::KilnBatchMatmulsBase;

  void runOnOperation() override {
    for (Block& block : getOperation().getBody()) {
      batchGradientSums(block);
      if (failed(batchSharedOperands(block))) return signalPassFailure();
    }
  }

  // A matmul of 2-d operands small enough to gain from a batch: `rows` is its row count
  // (the contracted dimension of a weight-gradient product).
  bool smallMatmul(MatmulOp m, int64_t rows) const {
    return typeOf(m.getA()).getRank() == 2 && typeOf(m.getB()).getRank() == 2 && !m.getSumBatch() &&
           (ShapedType::isDynamic(rows) || rows <= maxRows);
  }

  static void copyScope(Operation* from, Operation* to) {
    if (Attribute scope = from->getAttr(kiln::passes::kScopeAttr)) to->setAttr(kiln::passes::kScopeAttr, scope);
  }

  // (1, d0, ...) reshapes of `values` concatenated along a new leading dimension, before `at`.
  static Value stack(OpBuilder& b, Location loc, ValueRange values, Operation* scope) {
    SmallVector<Value> parts;
    for (Value v : values) {
      auto r = ReshapeOp::create(b, loc, withLeadingOne(typeOf(v)), v);
      copyScope(scope, r);
      parts.push_back(r);
    }
    auto c = ConcatOp::create(b, loc, parts, 0);
    copyScope(scope, c);
    return c;
  }

  // Groups of `candidates` (in block order) whose `operands` do not depend on each other's
  // results, greedily in block order; each group of min-matmuls or more goes to `rewrite`.
  template <typename Operands, typename Rewrite>
  LogicalResult forEachIndependentGroup(Block& block, SmallVector<MatmulOp> candidates, Operands operands,
                                        Rewrite rewrite) {
    while (static_cast<int64_t>(candidates.size()) >= minMatmuls) {
      // In the block's order, which an earlier group's sort may have changed: the walk stops at
      // the first member, and the group's matmul goes before the last.
      llvm::sort(candidates, [](MatmulOp x, MatmulOp y) { return x->isBeforeInBlock(y); });
      DependenceWalk walk(block, candidates.front());
      SmallVector<MatmulOp> group{candidates.front()}, rest;
      for (MatmulOp m : llvm::drop_begin(candidates)) {
        if (static_cast<int64_t>(group.size()) < maxMatmuls && !walk.dependsOnMembers(operands(m))) {
          walk.addMember(m);
          group.push_back(m);
        } else {
          rest.push_back(m);
        }
      }
      if (static_cast<int64_t>(group.size()) >= minMatmuls && failed(rewrite(group))) return failure();
      candidates = std::move(rest);
    }
    return success();
  }

  // 1. Matmuls a_i op(b) of one b: one matmul of b shared by the stacked a_i, sliced back.
  LogicalResult batchSharedOperands(Block& block) {
    llvm::MapVector<std::tuple<Value, unsigned, Type>, SmallVector<MatmulOp>> groups;
    for (auto m : block.getOps<MatmulOp>())
      if (!m.getTransposeA() && smallMatmul(m, typeOf(m.getA()).getDimSize(0)))
        groups[{m.getB(), m.getTransposeB() ? 1u : 0u, m.getA().getType()}].push_back(m);
    for (auto& [key, candidates] : groups) {
      auto operands = [](MatmulOp m) { return ValueRange{m.getA()}; };
      auto rewrite = [&](ArrayRef<MatmulOp> group) -> LogicalResult {
        LLVM_DEBUG(llvm::dbgs() << "kiln-batch-matmuls: " << group.size() << " matmuls of " << group.front() << "\n");
        // Before the last member, which follows every member's a; the users of the other
        // members' results move after it when the block is sorted.
        MatmulOp front = group.front();
        OpBuilder b(group.back());
        Location loc = front.getLoc();
        SmallVector<Value> as;
        for (MatmulOp m : group) as.push_back(m.getA());
        auto mm = MatmulOp::create(b, loc, stack(b, loc, as, front), front.getB(), false, front.getTransposeB(), false);
        copyScope(front, mm);
        ArrayRef<int64_t> shape = mm.getType().getShape();
        for (int64_t step = 0; step < static_cast<int64_t>(group.size()); ++step) {
          MatmulOp m = group[step];
          auto slice = SliceOp::create(b, loc, mm, ArrayRef<int64_t>{step, 0, 0},
                                       ArrayRef<int64_t>{step + 1, shape[1], shape[2]}, ArrayRef<int64_t>{1, 1, 1});
          auto result = ReshapeOp::create(b, loc, m.getType(), slice);
          copyScope(front, slice);
          copyScope(front, result);
          m.getResult().replaceAllUsesWith(result);
        }
        // Erased after the loop: the slices copy the front member's scope.
        for (MatmulOp m : group) m.erase();
        if (!sortTopologically(&block))
          return getOperation().emitError("kiln-batch-matmuls: batching matmuls made a cycle (internal error)");
        return success();
      };
      if (failed(forEachIndependentGroup(block, candidates, operands, rewrite))) return failure();
    }
    return success();
  }

  // 2. An add chain summing products a_i^T b_i (a weight's gradient, one term per step): one
  // sum_batch matmul of the stacked a_i and b_i. Each product and each inner add of the chain is
  // used once, by the chain, so no operand of a product depends on the chain: no cycle.
  void batchGradientSums(Block& block) {
    auto inner = [](Value v, Type type) {
      auto add = v.getDefiningOp<AddOp>();
      return add && v.getType() == type && v.hasOneUse() ? add : AddOp();
    };
    SmallVector<AddOp> roots;
    for (auto add : block.getOps<AddOp>())
      if (typeOf(add.getResult()).getRank() == 2 && !(add->hasOneUse() && isa<AddOp>(*add->user_begin()) &&
                                                      add.getType() == add->user_begin()->getResult(0).getType()))
        roots.push_back(add);
    for (AddOp root : roots) {
      // The chain's terms in order, and its adds.
      Type type = root.getType();
      SmallVector<Value> terms;
      SmallVector<AddOp> adds;
      SmallVector<Value> pending{root.getRhs(), root.getLhs()};
      adds.push_back(root);
      while (!pending.empty()) {  // depth first, each add before the adds it uses
        Value v = pending.pop_back_val();
        if (AddOp add = inner(v, type)) {
          adds.push_back(add);
          pending.append({add.getRhs(), add.getLhs()});
        } else {
          terms.push_back(v);
        }
      }
      llvm::MapVector<std::pair<Type, Type>, SmallVector<MatmulOp>> products;
      for (Value t : terms) {
        auto m = t.getDefiningOp<MatmulOp>();
        if (m && m->getBlock() == &block && t.hasOneUse() && m.getTransposeA() && !m.getTransposeB() &&
            smallMatmul(m, typeOf(m.getA()).getDimSize(0)))
          products[{m.getA().getType(), m.getB().getType()}].push_back(m);
      }
      SmallVector<MatmulOp> batched;
      for (auto& [key, group] : products) {
        for (size_t from = 0; from < group.size(); from += static_cast<size_t>(maxMatmuls)) {
          auto part = ArrayRef<MatmulOp>(group).slice(from, std::min<size_t>(maxMatmuls, group.size() - from));
          if (static_cast<int64_t>(part.size()) < minMatmuls) continue;
          LLVM_DEBUG(llvm::dbgs() << "kiln-batch-matmuls: a sum of " << part.size() << " products " << part.front() << "\n");
          OpBuilder b(root);
          MatmulOp front = part.front();
          Location loc = front.getLoc();
          SmallVector<Value> as, bs;
          for (MatmulOp m : part) {
            as.push_back(m.getA());
            bs.push_back(m.getB());
          }
          auto sum = MatmulOp::create(b, loc, stack(b, loc, as, front), stack(b, loc, bs, front), true, false, true);
          copyScope(front, sum);
          // The batched products leave the terms; their sum takes the place of the first.
          for (Value& t : terms)
            if (t == front.getResult()) t = sum;
          llvm::erase_if(terms, [&](Value t) { return llvm::is_contained(part, t.getDefiningOp<MatmulOp>()); });
          batched.append(part.begin(), part.end());
        }
      }
      if (batched.empty()) continue;
      OpBuilder b(root);
      Value total = terms.front();
      for (Value t : llvm::drop_begin(terms)) total = AddOp::create(b, root.getLoc(), total, t);
      root.getResult().replaceAllUsesWith(total);
      // Users before their operands: the adds from the root down (each used by the one before), then the products.
      for (AddOp add : adds) add.erase();
      for (MatmulOp m : batched) m.erase();
    }
  }
};

}  // namespace
