// -kiln-start-collectives: kiln.collective_start becomes a call of the runtime's
// kiln_collective_start_<f32|f64> (kiln/collective_abi.h), placed right after the bucket is
// computed; -kiln-check-collective-buffers keeps only the calls whose buffer is a result's.
#include <string>

#include "kiln/codegen/cpu.h"
#include "kiln/collective_abi.h"
#include "kiln/ir/KilnCollective.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNSTARTCOLLECTIVES
#define GEN_PASS_DEF_KILNCHECKCOLLECTIVEBUFFERS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// The function attribute that records how many arguments are inputs (the out-params that
// bufferization appends come after them).
constexpr const char* kInputsAttr = "kiln.collective_inputs";

// The ops of `start`'s block that only assemble its bucket: the concatenation's
// tensor.empty and inserts, the reshapes (ops without regions or memory effects, every
// result used by `start` or another such op). The kernels computing the gradients (linalg
// ops, which have regions) stay where they are: the backward keeps its order.
SmallVector<Operation*> bucketChain(Operation* start) {
  Block* block = start->getBlock();
  llvm::SetVector<Operation*> chain;
  chain.insert(start);
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t i = 0; i < chain.size(); ++i)
      for (Value v : chain[i]->getOperands()) {
        Operation* def = v.getDefiningOp();
        if (!def || def->getBlock() != block || chain.contains(def) || def->getNumRegions() != 0 ||
            !isMemoryEffectFree(def))
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

// Moves each op of the chain (in block order) right after the last op of its block that
// defines a value it uses: the bucket is computed, and its collective started, as soon as
// its last gradient is, before the kernels of the rest of the backward.
void hoistChain(Operation* start) {
  Block* block = start->getBlock();
  for (Operation* op : bucketChain(start)) {
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

// memref<?xT, strided<[?], offset: ?>>
MemRefType dynamicFlatType(Type elem) {
  auto layout = StridedLayoutAttr::get(elem.getContext(), ShapedType::kDynamic, {ShapedType::kDynamic});
  return MemRefType::get({ShapedType::kDynamic}, elem, layout);
}

class KilnStartCollectives : public impl::KilnStartCollectivesBase<KilnStartCollectives> {
 public:
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    OpBuilder b(&getContext());
    for (auto func : llvm::to_vector(module.getOps<func::FuncOp>())) {
      SmallVector<ir::CollectiveStartOp> starts;
      func.walk([&](ir::CollectiveStartOp op) { starts.push_back(op); });
      if (starts.empty()) continue;
      func->setAttr(kInputsAttr, b.getI64IntegerAttr(func.getNumArguments()));
      for (ir::CollectiveStartOp op : starts) hoistChain(op);
      for (ir::CollectiveStartOp op : starts) {
        auto type = cast<RankedTensorType>(op.getX().getType());
        Type elem = type.getElementType();
        std::string name = std::string(collective_abi::kCollectiveStartPrefix) + (elem.isF32() ? "f32" : "f64");
        MemRefType flat = dynamicFlatType(elem);
        auto fnType = b.getFunctionType({flat, b.getI64Type()}, {});
        auto callee = symbols.lookup<func::FuncOp>(name);
        if (!callee) {
          b.setInsertionPointToStart(module.getBody());
          callee = func::FuncOp::create(b, module.getLoc(), name, fnType);
          callee.setPrivate();
          callee->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), b.getUnitAttr());
          symbols.insert(callee);
        } else if (callee.getFunctionType() != fnType) {
          op.emitOpError("the module already has a symbol '") << name << "' of another type";
          return signalPassFailure();
        }
        b.setInsertionPoint(op);
        Location loc = op.getLoc();
        Value bucket = op.getX();
        if (!bucket.getDefiningOp<tensor::InsertSliceOp>() && !bucket.getDefiningOp<DestinationStyleOpInterface>()) {
          // A reshaped gradient (a bucket of one), an input: its buffer is no fresh one of its
          // own, which bufferization would make the result's out-param. The copy into the
          // out-param that the return needs anyway is made here instead of at the end.
          SmallVector<Value> dynamic;
          if (type.isDynamicDim(0)) dynamic.push_back(tensor::DimOp::create(b, loc, bucket, 0));
          Value empty = tensor::EmptyOp::create(b, loc, type.getShape(), elem, dynamic);
          bucket = linalg::CopyOp::create(b, loc, bucket, empty).getResult(0);
        }
        // read_only: the graph writes nothing into the bucket after this point, so the
        // buffer is the bucket's own (no copy), the one that becomes the result's out-param.
        Value buffer = bufferization::ToBufferOp::create(b, loc, MemRefType::get(type.getShape(), elem), bucket,
                                                         /*read_only=*/true);
        Value cast = memref::CastOp::create(b, loc, flat, buffer);
        Value index = arith::ConstantIntOp::create(b, loc, static_cast<int64_t>(op.getBucket()), 64);
        func::CallOp::create(b, loc, callee, ValueRange{cast, index});
        op.getResult().replaceAllUsesWith(bucket);
        op.erase();
      }
    }
  }
};

// Whether `v` (through memref.cast) is an argument of `func` at or past `firstOutParam`.
bool isOutParam(func::FuncOp func, Value v, int64_t firstOutParam) {
  while (auto c = v.getDefiningOp<memref::CastOp>()) v = c.getSource();
  auto arg = dyn_cast<BlockArgument>(v);
  return arg && arg.getOwner() == &func.front() && static_cast<int64_t>(arg.getArgNumber()) >= firstOutParam;
}

class KilnCheckCollectiveBuffers : public impl::KilnCheckCollectiveBuffersBase<KilnCheckCollectiveBuffers> {
 public:
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    auto inputs = func->getAttrOfType<IntegerAttr>(kInputsAttr);
    if (!inputs) return;
    func.walk([&](func::CallOp call) {
      if (!call.getCallee().starts_with(collective_abi::kCollectiveStartPrefix)) return;
      if (call.getNumOperands() == 0 || !isOutParam(func, call.getOperand(0), inputs.getInt())) call.erase();
    });
    func->removeAttr(kInputsAttr);
  }
};

}  // namespace

}  // namespace kiln::cpu
