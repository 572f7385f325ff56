// -kiln-profile-kernels: kiln_profile_begin/end calls around each kernel (KILN_PROFILE).
#include "kiln/codegen/cpu.h"
#include "kiln/passes/Passes.h"
#include "llvm/Support/Path.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNPROFILEKERNELS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

bool computes(Operation* op) { return isa<linalg::LinalgOp, memref::CopyOp, scf::ForallOp, scf::ForOp, scf::ParallelOp>(op); }

// The kernel `op` belongs to: its kiln.fusion region, else the op with its call site.
std::string kernelName(Operation* op) {
  if (StringRef k = passes::regionOf(op); !k.empty()) return k.str();
  std::string name = op->getName().getStringRef().str();
  Location loc = op->getLoc();
  if (auto fused = dyn_cast<FusedLoc>(loc); fused && !fused.getLocations().empty()) loc = fused.getLocations()[0];
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    name += " (" + llvm::sys::path::filename(file.getFilename().getValue()).str() + ":" +
            std::to_string(file.getLine()) + ")";
  return name;
}

// The element count of a memref, as an index value at the builder's point.
Value numElements(OpBuilder& b, Location loc, Value memref) {
  auto type = cast<MemRefType>(memref.getType());
  Value n = arith::ConstantIndexOp::create(b, loc, 1);
  for (int64_t d = 0; d < type.getRank(); ++d) {
    Value size = type.isDynamicDim(d) ? memref::DimOp::create(b, loc, memref, d).getResult()
                                      : arith::ConstantIndexOp::create(b, loc, type.getDimSize(d)).getResult();
    n = arith::MulIOp::create(b, loc, n, size);
  }
  return n;
}

// The FLOPs of a generated GEMM's output blocks (-kiln-tile-matmuls' forall): 2 * k per
// element of its output, each dynamic size the extent of the forall's next upper bound that
// is not a constant; null for another forall.
Value generatedGemmFlops(OpBuilder& b, Location loc, scf::ForallOp forall) {
  auto depth = forall->getAttrOfType<IntegerAttr>(kMatmulDepthAttr);
  auto shape = forall->getAttrOfType<DenseI64ArrayAttr>(kMatmulOutputAttr);
  if (!depth || !shape) return {};
  SmallVector<std::pair<OpFoldResult, OpFoldResult>> dynamic;  // (lower, upper) of dynamic extents
  for (auto [lower, upper] : llvm::zip(forall.getMixedLowerBound(), forall.getMixedUpperBound()))
    if (!getConstantIntValue(upper)) dynamic.push_back({lower, upper});
  Value work = arith::ConstantIndexOp::create(b, loc, 2 * depth.getInt());
  size_t next = 0;
  for (int64_t size : shape.asArrayRef()) {
    Value extent;
    if (size >= 0) {
      extent = arith::ConstantIndexOp::create(b, loc, size);
    } else {
      if (next == dynamic.size()) return {};  // not the loop it was made as: no count
      auto [lower, upper] = dynamic[next++];
      extent = arith::SubIOp::create(b, loc, getValueOrCreateConstantIndexOp(b, loc, upper),
                                     getValueOrCreateConstantIndexOp(b, loc, lower));
    }
    work = arith::MulIOp::create(b, loc, work, extent);
  }
  return work;
}

struct Run {
  std::string name;
  Operation* first = nullptr;
  Operation* last = nullptr;
  SmallVector<Operation*> ops;
};

struct KilnProfileKernels : impl::KilnProfileKernelsBase<KilnProfileKernels> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    OpBuilder b(module.getContext());
    Type ptr = LLVM::LLVMPointerType::get(module.getContext());
    Type i64 = b.getI64Type();
    SmallVector<func::FuncOp> funcs;
    module.walk([&](func::FuncOp f) {
      if (!f.isExternal()) funcs.push_back(f);
    });
    if (funcs.empty()) return;
    b.setInsertionPointToStart(module.getBody());
    auto declare = [&](StringRef name, TypeRange params) {
      if (auto existing = module.lookupSymbol<func::FuncOp>(name)) return existing;
      auto f = func::FuncOp::create(b, module.getLoc(), name, b.getFunctionType(params, {}));
      f.setPrivate();
      return f;
    };
    func::FuncOp begin = declare("kiln_profile_begin", {ptr});
    func::FuncOp end = declare("kiln_profile_end", {ptr, i64, i64});
    llvm::StringMap<LLVM::GlobalOp> names;
    auto nameGlobal = [&](const std::string& name) {
      auto it = names.find(name);
      if (it != names.end()) return it->second;
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      std::string text = name + '\0';
      auto type = LLVM::LLVMArrayType::get(b.getI8Type(), text.size());
      auto global = LLVM::GlobalOp::create(b, module.getLoc(), type, /*isConstant=*/true, LLVM::Linkage::Internal,
                                           "kiln_profile_name_" + std::to_string(names.size()),
                                           b.getStringAttr(text));
      names[name] = global;
      return global;
    };

    for (func::FuncOp f : funcs) {
      SmallVector<Run> runs;
      for (Block& block : f.getBody()) {
        for (Operation& op : block) {
          if (!computes(&op)) continue;
          std::string name = kernelName(&op);
          if (runs.empty() || runs.back().name != name || runs.back().last->getBlock() != &block)
            runs.push_back({name, &op, &op, {}});
          runs.back().last = &op;
          runs.back().ops.push_back(&op);
        }
      }
      for (Run& run : runs) {
        Location loc = run.first->getLoc();
        LLVM::GlobalOp global = nameGlobal(run.name);
        b.setInsertionPoint(run.first);
        Value name = LLVM::AddressOfOp::create(b, loc, global);
        func::CallOp::create(b, loc, begin, ValueRange{name});
        b.setInsertionPointAfter(run.last);
        Value bytes = arith::ConstantIndexOp::create(b, loc, 0);
        Value flops = arith::ConstantIndexOp::create(b, loc, 0);
        for (Operation* op : run.ops) {
          for (Value operand : op->getOperands()) {
            auto type = dyn_cast<MemRefType>(operand.getType());
            if (!type || !type.getElementType().isIntOrFloat()) continue;
            int64_t width = std::max<int64_t>(type.getElementTypeBitWidth() / 8, 1);
            Value n = arith::MulIOp::create(b, loc, numElements(b, loc, operand),
                                            arith::ConstantIndexOp::create(b, loc, width));
            bytes = arith::AddIOp::create(b, loc, bytes, n);
          }
          if (auto forall = dyn_cast<scf::ForallOp>(op))
            if (Value work = generatedGemmFlops(b, loc, forall)) flops = arith::AddIOp::create(b, loc, flops, work);
          auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
          if (linalgOp && (linalg::isaContractionOpInterface(linalgOp) || linalg::isaConvolutionOpInterface(linalgOp))) {
            Value work = arith::ConstantIndexOp::create(b, loc, 2);
            for (Range r : linalgOp.createLoopRanges(b, loc))
              work = arith::MulIOp::create(b, loc, work, getValueOrCreateConstantIndexOp(b, loc, r.size));
            flops = arith::AddIOp::create(b, loc, flops, work);
          }
        }
        Value name2 = LLVM::AddressOfOp::create(b, loc, global);
        func::CallOp::create(b, loc, end,
                             ValueRange{name2, arith::IndexCastOp::create(b, loc, i64, bytes),
                                        arith::IndexCastOp::create(b, loc, i64, flops)});
      }
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
