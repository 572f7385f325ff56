// -kiln-start-collectives: kiln.collective_start becomes a call of the runtime's
// kiln_collective_start_<f32|f64> (kiln/collective_abi.h), placed right after the bucket is
// computed (kiln::passes::hoistCollectiveChain); -kiln-check-collective-buffers keeps only the
// calls whose buffer is a result's.
#include <string>

#include "kiln/codegen/cpu.h"
#include "kiln/collective_abi.h"
#include "kiln/ir/KilnCollective.h"
#include "kiln/passes/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/SymbolTable.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNSTARTCOLLECTIVES
#define GEN_PASS_DEF_KILNCHECKCOLLECTIVEBUFFERS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// The function attribute that records how many arguments are inputs (the out-params that
// bufferization appends come after them).
constexpr const char* kInputsAttr = "kiln.collective_inputs";

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
      // The bucket's tensor.empty, inserts and reshapes (no regions): the kernels computing the
      // gradients (linalg ops, which have regions) stay where they are.
      auto assembles = [](Operation* op) { return op->getNumRegions() == 0; };
      for (ir::CollectiveStartOp op : starts) passes::hoistCollectiveChain(op, assembles);
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
