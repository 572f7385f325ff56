// -kiln-donate-buffers: makes a result's out-param safe to alias the argument it is the next value of.
#include "kiln/codegen/cpu.h"
#include "kiln/passes/Passes.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNDONATEBUFFERS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// `root` and every view of it (view-like ops, transitively).
llvm::SetVector<Value> aliasesOf(Value root) {
  llvm::SetVector<Value> set;
  set.insert(root);
  for (size_t i = 0; i < set.size(); ++i)
    for (Operation* user : set[i].getUsers())
      if (auto view = dyn_cast<ViewLikeOpInterface>(user); view && view.getViewSource() == set[i])
        for (Value r : user->getResults()) set.insert(r);
  return set;
}

enum Access : unsigned { kNone = 0, kRead = 1, kWrite = 2 };

// How `op` accesses the buffer behind `v` (one of its operands): linalg ops
// read their inputs and write their inits; ops with memory-effect interfaces say;
// view-like ops access nothing; anything else reads and writes.
unsigned accessOf(Operation* op, OpOperand& use) {
  if (isa<ViewLikeOpInterface>(op) && cast<ViewLikeOpInterface>(op).getViewSource() == use.get()) return kNone;
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
    if (linalgOp.isDpsInput(&use)) return kRead;
    return kWrite | (linalgOp.payloadUsesValueFromOperand(&use) ? kRead : kNone);
  }
  if (isa<memref::DimOp, memref::ExtractStridedMetadataOp>(op)) return kNone;
  if (auto effects = dyn_cast<MemoryEffectOpInterface>(op)) {
    SmallVector<MemoryEffects::EffectInstance> list;
    effects.getEffectsOnValue(use.get(), list);
    unsigned access = kNone;
    for (auto& e : list) {
      if (isa<MemoryEffects::Read>(e.getEffect())) access |= kRead;
      if (isa<MemoryEffects::Write>(e.getEffect())) access |= kWrite;
    }
    return access;
  }
  return kRead | kWrite;
}

// Whether the out-param `out` may share its buffer with the argument `in`:
// no read of `in` at or after the first write of `out` (in the entry block's
// order), except the elementwise read of the op that writes `out` at the same index.
bool mayAlias(func::FuncOp func, Value in, Value out) {
  Block& entry = func.front();
  llvm::SetVector<Value> ins = aliasesOf(in), outs = aliasesOf(out);
  Operation* firstWrite = nullptr;  // an op of the entry block
  Operation* writer = nullptr;      // the op inside it that writes
  auto before = [](Operation* a, Operation* b) { return a->isBeforeInBlock(b); };
  for (Value v : outs)
    for (OpOperand& use : v.getUses()) {
      if (!(accessOf(use.getOwner(), use) & kWrite)) continue;
      Operation* top = entry.findAncestorOpInBlock(*use.getOwner());
      if (!top) return false;
      if (!firstWrite || before(top, firstWrite)) {
        firstWrite = top;
        writer = use.getOwner();
      } else if (top == firstWrite && use.getOwner() != writer) {
        return false;  // two writers inside one op of the block: order unknown here
      }
    }
  if (!firstWrite) return true;  // never written: nothing to protect
  // The writer may read `in` at the index it writes `out`: an all-parallel
  // linalg op reading `in` itself through the map it writes `out` with.
  auto sameIndexRead = [&](OpOperand& use) {
    auto linalgOp = dyn_cast<linalg::LinalgOp>(use.getOwner());
    if (!linalgOp || use.getOwner() != writer || use.get() != in || !linalgOp.isDpsInput(&use)) return false;
    if (linalgOp.getNumReductionLoops() != 0 || linalgOp.getNumDpsInits() != 1) return false;
    OpOperand* init = linalgOp.getDpsInitOperand(0);
    return init->get() == out && linalgOp.getMatchingIndexingMap(&use) == linalgOp.getMatchingIndexingMap(init);
  };
  for (Value v : ins)
    for (OpOperand& use : v.getUses()) {
      if (!(accessOf(use.getOwner(), use) & kRead)) continue;
      Operation* top = entry.findAncestorOpInBlock(*use.getOwner());
      if (!top) return false;
      if (before(top, firstWrite)) continue;
      if (top == firstWrite && sameIndexRead(use)) continue;
      return false;
    }
  return true;
}

// Reads of `in` go to a copy taken at the entry, so writing the out-param
// that shares its buffer cannot change what the function reads.
void snapshot(func::FuncOp func, BlockArgument in) {
  auto type = cast<MemRefType>(in.getType());
  OpBuilder b = OpBuilder::atBlockBegin(&func.front());
  Location loc = in.getLoc();
  SmallVector<Value> sizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d)) sizes.push_back(memref::DimOp::create(b, loc, in, d));
  auto copyType = MemRefType::get(type.getShape(), type.getElementType());
  Value copy = memref::AllocOp::create(b, loc, copyType, sizes);
  auto copyOp = memref::CopyOp::create(b, loc, in, copy);
  Value view = copyType == type ? copy : memref::CastOp::create(b, loc, type, copy).getResult();
  in.replaceUsesWithIf(view, [&](OpOperand& use) {
    return use.getOwner() != copyOp && !isa<memref::DimOp>(use.getOwner());
  });
  func.walk([&](func::ReturnOp ret) {
    OpBuilder rb(ret);
    memref::DeallocOp::create(rb, loc, copy);
  });
}

struct KilnDonateBuffers : impl::KilnDonateBuffersBase<KilnDonateBuffers> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    auto donations = func->getAttrOfType<DictionaryAttr>(passes::kDonationsAttr);
    if (!donations || func.isExternal()) return;
    auto results = donations.getAs<IntegerAttr>("results");
    auto pairs = donations.getAs<DenseI64ArrayAttr>("pairs");
    if (!results || !pairs || pairs.size() % 2 != 0) {
      func.emitError("kiln-donate-buffers: malformed ") << passes::kDonationsAttr;
      return signalPassFailure();
    }
    int64_t nargs = func.getNumArguments(), nresults = results.getInt();
    int64_t inputs = nargs - nresults;  // the out-params of results-to-out-params come last
    if (inputs < 0 || func.getNumResults() != 0) {
      func.emitError("kiln-donate-buffers: expected ") << nresults << " out-params after bufferization";
      return signalPassFailure();
    }
    SmallVector<BlockArgument> unsafe;
    for (size_t p = 0; p + 1 < pairs.size(); p += 2) {
      int64_t k = pairs[p], j = pairs[p + 1];
      if (k < 0 || k >= nresults || j < 0 || j >= inputs) {
        func.emitError("kiln-donate-buffers: donation ") << k << " <- " << j << " out of range";
        return signalPassFailure();
      }
      BlockArgument in = func.getArgument(j), out = func.getArgument(inputs + k);
      if (in.getType() != out.getType() || !isa<MemRefType>(in.getType())) {
        func.emitError("kiln-donate-buffers: result ") << k << " and argument " << j << " differ in type";
        return signalPassFailure();
      }
      if (!mayAlias(func, in, out) && !llvm::is_contained(unsafe, in)) unsafe.push_back(in);
    }
    for (BlockArgument in : unsafe) snapshot(func, in);
    func->setAttr(passes::kDonationsAttr, donations);  // kept: the executable reads the pairs
  }
};

}  // namespace
}  // namespace kiln::cpu
