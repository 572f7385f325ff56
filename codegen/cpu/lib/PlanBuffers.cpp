// -kiln-plan-buffers: a function's intermediate buffers become views into one arena per call,
// shared between buffers whose lifetimes do not overlap.
#include <algorithm>

#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNPLANBUFFERS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

constexpr int64_t kAlign = 64;

int64_t alignUp(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

struct Buffer {
  memref::AllocOp alloc;
  int64_t start = 0, end = 0;  // positions in the entry block, inclusive
  int64_t size = 0;            // bytes (static arena) or bytes per unit of N (dynamic arena)
  int64_t offset = 0;
};

// The last position (in `entry`) where `v` or a view of it is used; nullopt
// when a use leaves the function's straight-line reach (returned, or an op
// that makes a memref from it without being a view).
std::optional<int64_t> lastUse(Value v, Block& entry, const DenseMap<Operation*, int64_t>& positions) {
  int64_t last = -1;
  SmallVector<Value> work{v};
  while (!work.empty()) {
    Value value = work.pop_back_val();
    for (Operation* user : value.getUsers()) {
      if (isa<func::ReturnOp>(user)) return std::nullopt;
      Operation* top = entry.findAncestorOpInBlock(*user);
      if (!top) return std::nullopt;
      last = std::max(last, positions.lookup(top));
      bool makesMemref = llvm::any_of(user->getResultTypes(), [](Type t) { return isa<BaseMemRefType>(t); });
      if (!makesMemref) continue;
      if (!isa<ViewLikeOpInterface>(user)) return std::nullopt;
      for (Value r : user->getResults()) work.push_back(r);
    }
  }
  return last;
}

// First fit by decreasing size: each buffer at the lowest offset that no
// buffer with an overlapping lifetime occupies. Returns the arena size.
int64_t place(SmallVectorImpl<Buffer*>& buffers) {
  llvm::stable_sort(buffers, [](Buffer* a, Buffer* b) { return a->size > b->size; });
  SmallVector<Buffer*> placed;
  int64_t total = 0;
  for (Buffer* b : buffers) {
    SmallVector<std::pair<int64_t, int64_t>> taken;
    for (Buffer* p : placed)
      if (p->start <= b->end && b->start <= p->end) taken.push_back({p->offset, p->offset + p->size});
    llvm::sort(taken);
    int64_t offset = 0;
    for (auto [lo, hi] : taken) {
      if (offset + b->size <= lo) break;
      offset = std::max(offset, hi);
    }
    b->offset = offset;
    total = std::max(total, offset + b->size);
    placed.push_back(b);
  }
  return total;
}

struct KilnPlanBuffers : impl::KilnPlanBuffersBase<KilnPlanBuffers> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal()) return;
    Block& entry = func.front();
    DenseMap<Operation*, int64_t> positions;
    int64_t index = 0;
    for (Operation& op : entry) positions[&op] = index++;

    // The dynamic size most allocations share: the batch size.
    DenseMap<Value, int> dynamicSizeUses;
    for (Operation& op : entry)
      if (auto alloc = dyn_cast<memref::AllocOp>(op))
        if (alloc.getDynamicSizes().size() == 1) ++dynamicSizeUses[alloc.getDynamicSizes()[0]];
    Value batch;
    int best = 0;
    for (auto& [value, count] : dynamicSizeUses)
      if (count > best) batch = value, best = count;

    std::vector<Buffer> buffers;
    for (Operation& op : entry) {
      auto alloc = dyn_cast<memref::AllocOp>(op);
      if (!alloc) continue;
      MemRefType type = alloc.getType();
      if (!type.getLayout().isIdentity() || type.getMemorySpace() || !type.getElementType().isIntOrFloat())
        continue;
      if (alloc.getDynamicSizes().size() > 1 || (alloc.getDynamicSizes().size() == 1 && alloc.getDynamicSizes()[0] != batch))
        continue;
      std::optional<int64_t> end = lastUse(alloc.getResult(), entry, positions);
      if (!end) continue;
      int64_t elements = 1;
      for (int64_t d : type.getShape())
        if (!ShapedType::isDynamic(d)) elements *= d;
      int64_t elementBytes = (type.getElementType().getIntOrFloatBitWidth() + 7) / 8;
      Buffer b;
      b.alloc = alloc;
      b.start = positions.lookup(alloc);
      b.end = std::max(*end, b.start);
      b.size = alignUp(std::max<int64_t>(elements * elementBytes, 1));
      buffers.push_back(b);
    }
    SmallVector<Buffer*> fixed, scaled;
    for (Buffer& b : buffers) (b.alloc.getDynamicSizes().empty() ? fixed : scaled).push_back(&b);
    if (buffers.size() < 2) return;

    OpBuilder builder(&getContext());
    auto i8 = builder.getI8Type();
    auto arenaAt = [&](Location loc, int64_t bytes, Value perUnit) -> Value {
      IntegerAttr alignment = builder.getI64IntegerAttr(kAlign);
      if (!perUnit)
        return memref::AllocOp::create(builder, loc, MemRefType::get({bytes}, i8), ValueRange{}, alignment);
      Value total = arith::MulIOp::create(builder, loc, perUnit, arith::ConstantIndexOp::create(builder, loc, bytes));
      return memref::AllocOp::create(builder, loc, MemRefType::get({ShapedType::kDynamic}, i8), ValueRange{total},
                                     alignment);
    };
    auto replace = [&](SmallVectorImpl<Buffer*>& group, Value arena, Value perUnit) {
      for (Buffer* b : group) {
        builder.setInsertionPoint(b->alloc);
        Location loc = b->alloc.getLoc();
        Value offset = arith::ConstantIndexOp::create(builder, loc, b->offset);
        if (perUnit) offset = arith::MulIOp::create(builder, loc, offset, perUnit);
        auto view = memref::ViewOp::create(builder, loc, b->alloc.getType(), arena, offset,
                                           b->alloc.getDynamicSizes());
        view->setAttr("kiln.planned", builder.getUnitAttr());
        b->alloc.replaceAllUsesWith(view.getResult());
        b->alloc.erase();
      }
    };
    if (fixed.size() >= 1) {
      int64_t bytes = place(fixed);
      builder.setInsertionPointToStart(&entry);
      Value arena = arenaAt(func.getLoc(), bytes, Value());
      replace(fixed, arena, Value());
    }
    if (!scaled.empty()) {
      int64_t bytes = place(scaled);
      // After the batch size is known (it dominates every allocation sized by it).
      if (Operation* def = batch.getDefiningOp())
        builder.setInsertionPointAfter(def);
      else
        builder.setInsertionPointToStart(&entry);
      Value arena = arenaAt(func.getLoc(), bytes, batch);
      replace(scaled, arena, batch);
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
