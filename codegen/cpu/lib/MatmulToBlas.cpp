// -kiln-matmul-to-blas: linalg.matmul / linalg.batch_matmul on f32/f64 memrefs become calls of
// kiln's BLAS-backed runtime functions (runtime/src/blas_kernels.cpp), whose ABI is kiln/gemm_abi.h.
#include <optional>
#include <string>

#include "kiln/codegen/cpu.h"
#include "kiln/gemm_abi.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNMATMULTOBLAS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

struct Transposes {
  bool a = false, b = false;
};

// Loop dims of the op: [batch,] m, n, k. Accepts the maps C = op(A) * op(B)
// with A and B each plain or transposed, nothing else (no broadcasts).
std::optional<Transposes> matchMaps(linalg::LinalgOp op, bool batched) {
  MLIRContext* ctx = op->getContext();
  unsigned first = batched ? 1 : 0, numDims = first + 3;
  if (op.getNumLoops() != numDims) return std::nullopt;
  auto mapOf = [&](unsigned r, unsigned c) {
    SmallVector<AffineExpr> e;
    if (batched) e.push_back(getAffineDimExpr(0, ctx));
    e.push_back(getAffineDimExpr(first + r, ctx));
    e.push_back(getAffineDimExpr(first + c, ctx));
    return AffineMap::get(numDims, 0, e, ctx);
  };
  const unsigned m = 0, n = 1, k = 2;
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps.size() != 3 || maps[2] != mapOf(m, n)) return std::nullopt;
  Transposes t;
  if (maps[0] == mapOf(k, m))
    t.a = true;
  else if (maps[0] != mapOf(m, k))
    return std::nullopt;
  if (maps[1] == mapOf(n, k))
    t.b = true;
  else if (maps[1] != mapOf(k, n))
    return std::nullopt;
  return t;
}

// f32/f64 strided memref of the given rank.
bool isBlasOperand(Value v, unsigned rank, Type elem) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type || type.getRank() != rank || type.getElementType() != elem) return false;
  return type.isStrided();
}

// memref<?x?xT, strided<[?, ?], offset: ?>> (or the rank-3 form).
MemRefType dynamicStridedType(unsigned rank, Type elem) {
  SmallVector<int64_t> shape(rank, ShapedType::kDynamic), strides(rank, ShapedType::kDynamic);
  auto layout = StridedLayoutAttr::get(elem.getContext(), ShapedType::kDynamic, strides);
  return MemRefType::get(shape, elem, layout);
}

std::string elemSuffix(Type elem) { return elem.isF32() ? "f32" : "f64"; }

// The linalg.fill of zero into `c` that `matmul` accumulates onto, if it is
// the last op before the matmul that touches `c`: BLAS then writes C with
// beta = 0 instead. C must be a whole buffer (an allocation or an argument)
// with no views: a write through a view would not be seen here.
linalg::FillOp zeroFillBefore(Operation* matmul, Value c) {
  // (A view kiln-plan-buffers made is a whole buffer: what shares its memory is dead meanwhile.)
  auto planned = c.getDefiningOp<memref::ViewOp>();
  if (!c.getDefiningOp<memref::AllocOp>() && !isa<BlockArgument>(c) && !(planned && planned->hasAttr("kiln.planned")))
    return {};
  for (Operation* user : c.getUsers())
    if (llvm::any_of(user->getResultTypes(), [](Type t) { return isa<BaseMemRefType>(t); })) return {};
  for (Operation* op = matmul->getPrevNode(); op; op = op->getPrevNode()) {
    bool uses = false;
    op->walk([&](Operation* inner) { uses |= llvm::is_contained(inner->getOperands(), c); });
    if (!uses) continue;
    auto fill = dyn_cast<linalg::FillOp>(op);
    if (fill && fill.getOutputs().size() == 1 && fill.getOutputs()[0] == c &&
        matchPattern(fill.getInputs()[0], m_AnyZeroFloat()))
      return fill;
    return {};
  }
  return {};
}

struct KilnMatmulToBlas : impl::KilnMatmulToBlasBase<KilnMatmulToBlas> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::LinalgOp> matmuls;
    module.walk([&](linalg::LinalgOp op) {
      if (isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op.getOperation())) matmuls.push_back(op);
    });
    // Decided before any rewrite (the casts this pass adds are views of C).
    llvm::DenseMap<Operation*, linalg::FillOp> zeroFills;
    for (linalg::LinalgOp op : matmuls)
      if (op.hasPureBufferSemantics() && op->getNumOperands() == 3)
        if (linalg::FillOp fill = zeroFillBefore(op, op->getOperand(2))) zeroFills[op] = fill;
    IRRewriter rewriter(&getContext());
    SymbolTable symbols(module);
    Operation* lastDecl = nullptr;
    for (linalg::LinalgOp op : matmuls) {
      bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
      unsigned rank = batched ? 3 : 2;
      if (!op.hasPureBufferSemantics() || op->getNumOperands() != 3) continue;
      Value a = op->getOperand(0), b = op->getOperand(1), c = op->getOperand(2);
      auto cType = dyn_cast<MemRefType>(c.getType());
      if (!cType) continue;
      Type elem = cType.getElementType();
      if (!elem.isF32() && !elem.isF64()) continue;
      if (!isBlasOperand(a, rank, elem) || !isBlasOperand(b, rank, elem) || !isBlasOperand(c, rank, elem))
        continue;
      std::optional<Transposes> t = matchMaps(op, batched);
      if (!t) continue;

      MemRefType dynType = dynamicStridedType(rank, elem);
      std::string name =
          std::string(batched ? gemm_abi::kBatchGemmPrefix : gemm_abi::kGemmPrefix) + elemSuffix(elem);
      // kiln/gemm_abi.h: memrefs A, B, C, then the i32 flags transpose_a, transpose_b, accumulate.
      Type i32 = rewriter.getI32Type();
      SmallVector<Type> params(gemm_abi::kNumMemRefParams, dynType);
      params.append(gemm_abi::kNumFlagParams, i32);
      auto fnType = rewriter.getFunctionType(params, {});
      auto callee = symbols.lookup<func::FuncOp>(name);
      if (!callee) {
        // Declarations go first in the module, in the order they are needed.
        if (lastDecl)
          rewriter.setInsertionPointAfter(lastDecl);
        else
          rewriter.setInsertionPointToStart(module.getBody());
        callee = func::FuncOp::create(rewriter, module.getLoc(), name, fnType);
        callee.setPrivate();
        callee->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), rewriter.getUnitAttr());
        symbols.insert(callee);
        lastDecl = callee;
      } else if (callee.getFunctionType() != fnType) {
        continue;  // a user symbol of that name: leave the loops
      }

      Location loc = op.getLoc();
      rewriter.setInsertionPoint(op);
      auto cast = [&](Value v) -> Value {
        if (v.getType() == dynType) return v;
        return memref::CastOp::create(rewriter, loc, dynType, v);
      };
      auto flag = [&](bool on) -> Value { return arith::ConstantIntOp::create(rewriter, loc, on ? 1 : 0, 32); };
      linalg::FillOp fill = zeroFills.lookup(op);
      SmallVector<Value> args{cast(a), cast(b), cast(c), flag(t->a), flag(t->b), flag(!fill)};
      assert(args.size() == static_cast<size_t>(gemm_abi::kNumParams) && "kiln/gemm_abi.h arity");
      func::CallOp::create(rewriter, loc, callee, args);
      rewriter.eraseOp(op);
      if (fill) rewriter.eraseOp(fill);
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
