// -kiln-fuse: groups kiln ops into kiln.fusion regions (contraction epilogues,
// reductions with their elementwise neighbours, elementwise chains).
#include "kiln/passes/Passes.h"

#include <memory>

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/Debug.h"
#include "mlir/Analysis/TopologicalSortUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define DEBUG_TYPE "kiln-fuse"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNFUSE
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;
using namespace kiln::ir;
using Role = FusionOp::Role;

namespace {

// An iteration space's size: the product of the static dimensions and the
// number of dynamic ones (all dynamic dimensions are the one batch size).
using Space = std::pair<int64_t, int64_t>;
Space numElements(Value v) { return symbolicSize(cast<RankedTensorType>(v.getType()).getShape()); }

// A fusion group under construction: ops of one block that become one kernel.
struct Group {
  SmallVector<Operation*> ops;
};

// Decides fusion groups in one block and replaces them by kiln.fusion ops.
class BlockFuser {
 public:
  BlockFuser(Block& block, int64_t maxClonedConstantElements)
      : block_(block), maxClonedConstantElements_(maxClonedConstantElements) {}

  LogicalResult run() {
    detachCounts();
    copyConstantLayouts();
    for (Operation& op : block_) {
      Role role = FusionOp::roleOf(&op);
      if (role == Role::Opaque || role == Role::Constant) continue;
      groups_.push_back(std::make_unique<Group>());
      groups_.back()->ops.push_back(&op);
      groupOf_[&op] = groups_.back().get();
    }
    // Phases in decreasing priority: an op joins the first group that takes it.
    for (Operation* op : opsWithRole({Role::Contraction})) grow(groupOf_[op]);
    for (Operation* op : opsWithRole({Role::Reduction})) grow(groupOf_[op]);
    for (Operation* op : opsWithRole({Role::Elementwise, Role::Layout}))
      for (Operation* producer : producersOf(op))
        if (Group* g = groupOf_.lookup(producer)) tryMerge(groupOf_[op], g);
    // By index: trimming appends new groups, which would invalidate iterators.
    for (size_t i = 0; i < groups_.size(); ++i) trimLayoutSinks(*groups_[i]);
    for (auto& g : groups_)
      if (hasArithmetic(*g)) materialize(*g);
    for (Operation* constant : clonedConstants_)
      if (constant->use_empty()) constant->erase();
    if (!sortTopologically(&block_))
      return block_.getParentOp()->emitError("kiln-fuse: fusion groups form a cycle");
    return success();
  }

 private:
  // A dim_size reads its operand's shape only, yet as an operand it orders the count
  // after the op computing it: layer norm's 1/n of the centred values then splits the
  // row-wise chain (mean -> var -> normalize) into several regions (a region cannot take
  // ops on both sides of the count). A count of static dimensions becomes a constant;
  // one with the batch dimension reads a block argument of the operand's shape instead.
  void detachCounts() {
    // Collected first: the rewrites below erase ops after the count.
    SmallVector<DimSizeOp> counts(block_.getOps<DimSizeOp>());
    for (DimSizeOp count : counts) {
      auto type = cast<RankedTensorType>(count.getX().getType());
      int64_t n = 1;
      bool dynamic = false;
      for (int64_t d : count.getDims()) {
        if (type.isDynamicDim(d)) dynamic = true;
        else n *= type.getDimSize(d);
      }
      auto result = cast<RankedTensorType>(count.getType());
      Type element = result.getElementType();
      if (!dynamic && result.hasStaticShape() && (isa<FloatType>(element) || isa<IntegerType>(element))) {
        OpBuilder builder(count);
        Attribute value = isa<FloatType>(element) ? Attribute(builder.getFloatAttr(element, static_cast<double>(n)))
                                                  : Attribute(builder.getIntegerAttr(element, n));
        Value c = ConstantOp::create(builder, count.getLoc(), DenseElementsAttr::get(result, value));
        count.getResult().replaceAllUsesWith(c);
        count.erase();
        foldReciprocals(c);
        continue;
      }
      if (isa<BlockArgument>(count.getX())) continue;
      for (BlockArgument arg : block_.getArguments())
        if (auto t = dyn_cast<RankedTensorType>(arg.getType()); t && t.getShape() == type.getShape()) {
          count.getXMutable().assign(arg);
          break;
        }
    }
    // Values computed only for a count are now dead (no region may yield nothing).
    for (Operation& op : llvm::make_early_inc_range(llvm::reverse(block_)))
      if (isOpTriviallyDead(&op)) op.erase();
  }

  // A broadcast or reshape of a constant (through any chain of them) is an index map over a
  // value every kernel embeds: each op using it gets a copy of its own, which joins that op's
  // group, so that no region yields it as a tensor. (The relu VJP's zeros, one value with the
  // forward's `compare "gt", y, 0` after CSE, had been a batch-sized output of the
  // convolution's region, written there and read back by the backward's select.)
  void copyConstantLayouts() {
    llvm::DenseSet<Operation*> constantLayouts;
    auto isConstantLayout = [&](Operation* op) {
      return FusionOp::roleOf(op) == Role::Layout && op->getNumResults() == 1 && op->getNumOperands() > 0 &&
             llvm::all_of(op->getOperands(), [&](Value v) {
               Operation* def = v.getDefiningOp();
               return def && def->getBlock() == &block_ && (isClonedConstant(def) || constantLayouts.contains(def));
             });
    };
    SmallVector<Operation*> layouts;
    for (Operation& op : block_)
      if (isConstantLayout(&op)) {
        constantLayouts.insert(&op);
        layouts.push_back(&op);
      }
    // Consumers first: the copies of an outer layout op are users of the inner one, which
    // is copied for each of them afterwards.
    for (Operation* layout : llvm::reverse(layouts)) {
      SmallVector<OpOperand*> uses;
      for (OpOperand& use : layout->getResult(0).getUses()) uses.push_back(&use);
      for (size_t i = 1; i < uses.size(); ++i) {
        Operation* user = inBlock(uses[i]->getOwner());
        if (!user) continue;
        OpBuilder b(user);
        uses[i]->set(b.clone(*layout)->getResult(0));
      }
    }
  }

  // 1 / n of a constant count n (a mean's scale) as a constant too, rather than a kernel
  // computing one scalar.
  void foldReciprocals(Value count) {
    auto splatOf = [](Value v) -> std::optional<double> {
      DenseElementsAttr dense;
      if (!matchPattern(v, m_Constant(&dense)) || !dense.isSplat() || !isa<FloatType>(dense.getElementType()))
        return std::nullopt;
      return dense.getSplatValue<APFloat>().convertToDouble();
    };
    for (Operation* user : llvm::make_early_inc_range(count.getUsers())) {
      auto div = dyn_cast<DivOp>(user);
      if (!div || div.getRhs() != count || !splatOf(div.getLhs()) || !splatOf(count)) continue;
      auto type = cast<RankedTensorType>(div.getType());
      if (!type.hasStaticShape() || type.getElementType() != cast<RankedTensorType>(count.getType()).getElementType()) continue;
      OpBuilder builder(div);
      Attribute value = builder.getFloatAttr(type.getElementType(), *splatOf(div.getLhs()) / *splatOf(count));
      Value c = ConstantOp::create(builder, div.getLoc(), DenseElementsAttr::get(type, value));
      div.getResult().replaceAllUsesWith(c);
      div.erase();
    }
  }

  SmallVector<Operation*> opsWithRole(std::initializer_list<Role> roles) {
    SmallVector<Operation*> ops;
    for (Operation& op : block_)
      if (llvm::is_contained(roles, FusionOp::roleOf(&op))) ops.push_back(&op);
    return ops;
  }

  // The op of this block that contains `op` (itself when it is in the block).
  Operation* inBlock(Operation* op) { return block_.findAncestorOpInBlock(*op); }

  SmallVector<Operation*> producersOf(Operation* op) {
    SmallVector<Operation*> producers;
    for (Value v : op->getOperands())
      if (Operation* def = v.getDefiningOp(); def && def->getBlock() == &block_)
        producers.push_back(def);
    return producers;
  }

  SmallVector<Operation*> usersOf(Operation* op) {
    SmallVector<Operation*> users;
    for (Operation* user : op->getUsers())
      if (Operation* u = inBlock(user)) users.push_back(u);
    return users;
  }

  // Absorbs neighbouring groups (producers and consumers) until none fits.
  void grow(Group* group) {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < group->ops.size(); ++i) {
        SmallVector<Operation*> neighbours = producersOf(group->ops[i]);
        llvm::append_range(neighbours, usersOf(group->ops[i]));
        for (Operation* n : neighbours)
          if (Group* other = groupOf_.lookup(n)) changed |= tryMerge(group, other);
      }
    }
  }

  bool tryMerge(Group* into, Group* from) {
    if (into == from || !compatible(*into, *from) || reachesIndirectly(*into, *from) ||
        reachesIndirectly(*from, *into))
      return false;
    LLVM_DEBUG(llvm::dbgs() << "kiln-fuse: merge " << *from->ops.front() << "\n    into "
                            << *into->ops.front() << "\n");
    for (Operation* op : from->ops) groupOf_[op] = into;
    llvm::append_range(into->ops, from->ops);
    from->ops.clear();
    return true;
  }

  // Whether the union of two groups is one kernel of a known shape:
  // - at most one contraction, whose operands come from outside the group;
  // - no contraction together with a reduction;
  // - reductions all of one input type and axes;
  // - every elementwise op iterates over the kernel's space: the contraction's
  //   result, the reductions' input or result, or else one common element count.
  // Broadcast/reshape ops are index maps and fit any kernel.
  static bool compatible(const Group& a, const Group& b) {
    Operation *contraction = nullptr, *reduction = nullptr;
    SmallVector<Operation*> elementwise;
    for (const Group* g : {&a, &b}) {
      for (Operation* op : g->ops) {
        switch (FusionOp::roleOf(op)) {
          case Role::Contraction:
            if (contraction) return false;
            contraction = op;
            break;
          case Role::Reduction:
            if (reduction && !sameReduction(reduction, op)) return false;
            reduction = op;
            break;
          case Role::Elementwise: elementwise.push_back(op); break;
          default: break;
        }
      }
    }
    if (contraction && reduction) return false;
    if (contraction)
      for (Value operand : contraction->getOperands())
        if (Operation* def = operand.getDefiningOp())
          if (llvm::is_contained(a.ops, def) || llvm::is_contained(b.ops, def)) return false;
    SmallVector<Space, 2> spaces;
    if (contraction) spaces = {numElements(contraction->getResult(0))};
    if (reduction)
      spaces = {numElements(reduction->getOperand(0)), numElements(reduction->getResult(0))};
    if (!contraction && !reduction && !elementwise.empty())
      spaces = {numElements(elementwise.front()->getResult(0))};
    return llvm::all_of(elementwise, [&](Operation* op) {
      return llvm::is_contained(spaces, numElements(op->getResult(0)));
    });
  }

  static bool sameReduction(Operation* a, Operation* b) {
    return a->getOperand(0).getType() == b->getOperand(0).getType() &&
           a->getAttr("axes") == b->getAttr("axes");
  }

  // True when a path leads from `from` to `to` through an op of neither: the
  // two groups cannot merge without a cycle between groups.
  bool reachesIndirectly(const Group& from, const Group& to) {
    auto inGroup = [&](const Group& g, Operation* op) { return groupOf_.lookup(op) == &g; };
    SmallVector<Operation*> work;
    for (Operation* op : from.ops)
      for (Operation* user : usersOf(op))
        if (!inGroup(from, user) && !inGroup(to, user)) work.push_back(user);
    llvm::DenseSet<const void*> visited;  // groups, or ops outside groups
    while (!work.empty()) {
      Operation* op = work.pop_back_val();
      Group* group = groupOf_.lookup(op);
      if (!visited.insert(group ? static_cast<const void*>(group) : op).second) continue;
      ArrayRef<Operation*> members = group ? ArrayRef<Operation*>(group->ops) : ArrayRef(op);
      for (Operation* member : members)
        for (Operation* user : usersOf(member)) {
          if (inGroup(to, user)) return true;
          if (!inGroup(from, user)) work.push_back(user);
        }
    }
    return false;
  }

  // Broadcast/reshape ops whose results no op of the group reads stay outside.
  void trimLayoutSinks(Group& group) {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < group.ops.size(); ++i) {
        Operation* op = group.ops[i];
        if (FusionOp::roleOf(op) != Role::Layout || group.ops.size() == 1) continue;
        if (llvm::any_of(usersOf(op), [&](Operation* u) { return groupOf_.lookup(u) == &group; }))
          continue;
        groups_.push_back(std::make_unique<Group>());
        groups_.back()->ops.push_back(op);
        groupOf_[op] = groups_.back().get();
        group.ops.erase(group.ops.begin() + i);
        changed = true;
        break;
      }
    }
  }

  static bool hasArithmetic(const Group& group) {
    return llvm::any_of(group.ops, [](Operation* op) {
      Role role = FusionOp::roleOf(op);
      return role == Role::Elementwise || role == Role::Reduction || role == Role::Contraction;
    });
  }

  bool isClonedConstant(Operation* op) {
    if (!op || FusionOp::roleOf(op) != Role::Constant || op->getNumResults() != 1) return false;
    Attribute value;
    if (!matchPattern(op->getResult(0), m_Constant(&value))) return false;
    auto elements = dyn_cast<ElementsAttr>(value);
    return elements &&
           (elements.isSplat() || elements.getNumElements() <= maxClonedConstantElements_);
  }

  // Replaces the group's ops by one kiln.fusion op placed after the last of
  // them; the block is sorted topologically afterwards.
  void materialize(Group& group) {
    llvm::sort(group.ops, [](Operation* a, Operation* b) { return a->isBeforeInBlock(b); });
    llvm::DenseSet<Operation*> members(group.ops.begin(), group.ops.end());
    llvm::SetVector<Value> inputs;
    SmallVector<Value> results;
    bool contraction = false, reduction = false;
    SmallVector<Location> locs;
    for (Operation* op : group.ops) {
      contraction |= FusionOp::roleOf(op) == Role::Contraction;
      reduction |= FusionOp::roleOf(op) == Role::Reduction;
      locs.push_back(op->getLoc());
      for (Value operand : op->getOperands()) {
        Operation* def = operand.getDefiningOp();
        if (def && members.contains(def)) continue;
        if (isClonedConstant(def)) {
          clonedConstants_.insert(def);
          continue;
        }
        inputs.insert(operand);
      }
      for (Value result : op->getResults())
        if (llvm::any_of(result.getUsers(),
                         [&](Operation* user) { return !members.contains(inBlock(user)); }))
          results.push_back(result);
    }
    StringRef kind = contraction ? FusionOp::kContraction
                     : reduction ? FusionOp::kReduction
                                 : FusionOp::kElementwise;
    OpBuilder b(group.ops.back()->getContext());
    b.setInsertionPointAfter(group.ops.back());
    Location loc = b.getFusedLoc(locs);
    auto fusion = FusionOp::create(b, loc, ValueRange(results).getTypes(),
                                   inputs.getArrayRef(), b.getStringAttr(kind));
    SmallVector<Location> argLocs(inputs.size(), loc);
    Block* body = b.createBlock(&fusion.getRegion(), {}, ValueRange(inputs.getArrayRef()).getTypes(),
                                argLocs);
    IRMapping map;
    map.map(inputs.getArrayRef(), body->getArguments());
    for (Operation* op : group.ops)  // cloned constants first, then the ops in block order
      for (Value operand : op->getOperands())
        if (!map.contains(operand) && isClonedConstant(operand.getDefiningOp()))
          b.clone(*operand.getDefiningOp(), map);
    for (Operation* op : group.ops) b.clone(*op, map);
    SmallVector<Value> yielded;
    for (Value r : results) yielded.push_back(map.lookup(r));
    YieldOp::create(b, loc, yielded);
    for (auto [old, now] : llvm::zip(results, fusion.getResults()))
      old.replaceUsesWithIf(now, [&](OpOperand& use) {
        return !members.contains(inBlock(use.getOwner()));
      });
    for (Operation* op : llvm::reverse(group.ops)) {
      groupOf_.erase(op);
      op->erase();
    }
    group.ops.clear();
  }

  Block& block_;
  int64_t maxClonedConstantElements_;
  std::vector<std::unique_ptr<Group>> groups_;
  llvm::DenseMap<Operation*, Group*> groupOf_;
  llvm::SetVector<Operation*> clonedConstants_;
};

struct KilnFusePass : kiln::passes::impl::KilnFuseBase<KilnFusePass> {
  using KilnFuseBase::KilnFuseBase;

  void runOnOperation() override {
    for (Block& block : getOperation().getBody())
      if (failed(BlockFuser(block, maxClonedConstantElements).run())) return signalPassFailure();
  }
};

}  // namespace
