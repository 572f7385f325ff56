// -kiln-matmul-to-blas: linalg.matmul / linalg.batch_matmul on f32/f64 memrefs become calls of
// kiln's BLAS-backed runtime functions (runtime/src/blas_kernels.cpp), and so do convolutions
// (linalg.conv_2d_nchw_fchw, the marked filter-gradient generic: runtime/src/conv_kernels.cpp)
// and pooling and its gradients (linalg.pooling_nchw_max / _sum, the generic marked
// kiln.pool2d_grad: runtime/src/pool_kernels.cpp);
// their ABI is kiln/gemm_abi.h.
#include <optional>
#include <string>

#include "kiln/codegen/cpu.h"
#include "kiln/gemm_abi.h"
#include "kiln/passes/LibraryCalls.h"
#include "kiln/passes/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
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

// The linalg.fill of zero (or of `value`) into `c` that `matmul` accumulates onto, if it is
// the last op before the matmul that touches `c`: BLAS then writes C with
// beta = 0 instead. C must be a whole buffer (an allocation or an argument)
// with no views: a write through a view would not be seen here.
linalg::FillOp fillBefore(Operation* matmul, Value c, mlir::detail::constant_float_predicate_matcher value) {
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
        matchPattern(fill.getInputs()[0], value))
      return fill;
    return {};
  }
  return {};
}
linalg::FillOp zeroFillBefore(Operation* matmul, Value c) { return fillBefore(matmul, c, m_AnyZeroFloat()); }

// What a convolution call needs from its op: the i64 strides and dilations.
struct ConvCall {
  bool gradFilter = false;
  SmallVector<int64_t, 2> strides, dilations;
};

// linalg.conv_2d_nchw_fchw (x, w -> y), or the generic -kiln-lower-to-linalg
// marks as a filter gradient (x, gy -> gw), on f32/f64 strided memrefs.
std::optional<ConvCall> matchConvolution(linalg::LinalgOp op) {
  ConvCall call;
  if (auto conv = dyn_cast<linalg::Conv2DNchwFchwOp>(op.getOperation())) {
    call.strides.assign(conv.getStrides().getValues<int64_t>().begin(), conv.getStrides().getValues<int64_t>().end());
    call.dilations.assign(conv.getDilations().getValues<int64_t>().begin(),
                          conv.getDilations().getValues<int64_t>().end());
  } else if (auto mark = op->getAttrOfType<DictionaryAttr>(passes::kConvGradFilterAttr)) {
    auto strides = mark.getAs<DenseI64ArrayAttr>("strides"), dilations = mark.getAs<DenseI64ArrayAttr>("dilations");
    if (!strides || !dilations || strides.size() != 2 || dilations.size() != 2) return std::nullopt;
    call.gradFilter = true;
    call.strides.assign(strides.asArrayRef().begin(), strides.asArrayRef().end());
    call.dilations.assign(dilations.asArrayRef().begin(), dilations.asArrayRef().end());
  } else {
    return std::nullopt;
  }
  if (!op.hasPureBufferSemantics() || op->getNumOperands() != 3 || call.strides.size() != 2 ||
      call.dilations.size() != 2)
    return std::nullopt;
  auto type = dyn_cast<MemRefType>(op->getOperand(2).getType());
  if (!type || (!type.getElementType().isF32() && !type.getElementType().isF64())) return std::nullopt;
  for (Value v : op->getOperands())
    if (!isBlasOperand(v, 4, type.getElementType())) return std::nullopt;
  return call;
}

// What a pooling-gradient call needs from its mark: the kind and the i64 window, strides, pads.
struct PoolCall {
  int32_t kind = gemm_abi::kPoolMax;
  SmallVector<int64_t, 6> window;  // kh, kw, sh, sw, ph, pw
};

// The generic -kiln-lower-to-linalg marks kPool2DGradAttr on f32/f64 strided memrefs:
// (x, gy -> gx) for max pooling, (gy -> gx) for average pooling (which reads no x).
std::optional<PoolCall> matchPoolGrad(linalg::LinalgOp op) {
  auto mark = op->getAttrOfType<DictionaryAttr>(passes::kPool2DGradAttr);
  if (!mark || !op.hasPureBufferSemantics()) return std::nullopt;
  auto kind = mark.getAs<StringAttr>("kind");
  PoolCall call;
  if (!kind || (kind.getValue() != "max" && kind.getValue() != "avg")) return std::nullopt;
  call.kind = kind.getValue() == "max" ? gemm_abi::kPoolMax : gemm_abi::kPoolAverage;
  if (op->getNumOperands() != (call.kind == gemm_abi::kPoolMax ? 3u : 2u)) return std::nullopt;
  for (const char* name : {"ksize", "stride", "pad"}) {
    auto values = mark.getAs<DenseI64ArrayAttr>(name);
    if (!values || values.size() != 2) return std::nullopt;
    call.window.append(values.asArrayRef().begin(), values.asArrayRef().end());
  }
  auto type = dyn_cast<MemRefType>(op->getOperands().back().getType());
  if (!type || (!type.getElementType().isF32() && !type.getElementType().isF64())) return std::nullopt;
  for (Value v : op->getOperands())
    if (!isBlasOperand(v, 4, type.getElementType())) return std::nullopt;
  return call;
}

// What a pooling call needs from linalg.pooling_nchw_max / _sum (x, window -> y; x
// padded by the graph): the kind and the i64 window (the window operand's static
// shape), strides and dilations.
struct PoolForwardCall {
  int32_t kind = gemm_abi::kPoolMax;
  SmallVector<int64_t, 6> taps;  // kh, kw, sh, sw, dh, dw
};

std::optional<PoolForwardCall> matchPoolForward(linalg::LinalgOp op) {
  PoolForwardCall call;
  DenseIntElementsAttr strides, dilations;
  if (auto max = dyn_cast<linalg::PoolingNchwMaxOp>(op.getOperation())) {
    strides = max.getStrides(), dilations = max.getDilations();
  } else if (auto sum = dyn_cast<linalg::PoolingNchwSumOp>(op.getOperation())) {
    call.kind = gemm_abi::kPoolSum;
    strides = sum.getStrides(), dilations = sum.getDilations();
  } else {
    return std::nullopt;
  }
  if (!op.hasPureBufferSemantics() || op->getNumOperands() != 3 || strides.size() != 2 || dilations.size() != 2)
    return std::nullopt;
  auto window = dyn_cast<MemRefType>(op->getOperand(1).getType());
  auto type = dyn_cast<MemRefType>(op->getOperand(2).getType());
  if (!window || window.getRank() != 2 || !window.hasStaticShape() || !type) return std::nullopt;
  if (!type.getElementType().isF32() && !type.getElementType().isF64()) return std::nullopt;
  if (!isBlasOperand(op->getOperand(0), 4, type.getElementType()) || !isBlasOperand(op->getOperand(2), 4, type.getElementType()))
    return std::nullopt;
  call.taps.assign(window.getShape().begin(), window.getShape().end());
  call.taps.append(strides.getValues<int64_t>().begin(), strides.getValues<int64_t>().end());
  call.taps.append(dilations.getValues<int64_t>().begin(), dilations.getValues<int64_t>().end());
  return call;
}

struct KilnMatmulToBlas : impl::KilnMatmulToBlasBase<KilnMatmulToBlas> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<linalg::LinalgOp> ops;
    // Not the tiles of -kiln-tile-matmuls (inside its scf.forall over output blocks:
    // matmuls it generated, whose small remainders become loops).
    module.walk([&](linalg::LinalgOp op) {
      bool matmul = isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op.getOperation()) &&
                    !op->getParentOfType<scf::ForallOp>();
      if (matmul || matchConvolution(op) || matchPoolGrad(op) || matchPoolForward(op)) ops.push_back(op);
    });
    // Decided before any rewrite (the casts this pass adds are views of C).
    llvm::DenseMap<Operation*, linalg::FillOp> zeroFills;
    // (A max pooling's identity is -inf.)
    for (linalg::LinalgOp op : ops)
      if (op.hasPureBufferSemantics() && op->getNumOperands() >= 2) {
        std::optional<PoolForwardCall> pooling = matchPoolForward(op);
        Value c = op->getOperands().back();
        linalg::FillOp fill = pooling && pooling->kind == gemm_abi::kPoolMax ? fillBefore(op, c, m_NegInfFloat())
                                                                             : zeroFillBefore(op, c);
        if (fill) zeroFills[op] = fill;
      }
    IRRewriter rewriter(&getContext());
    SymbolTable symbols(module);
    Operation* lastDecl = nullptr;
    // The private declaration of `name` (llvm.emit_c_interface), made on first use;
    // null when the module has a symbol of that name with another type.
    auto declare = [&](const std::string& name, FunctionType fnType) -> func::FuncOp {
      auto callee = symbols.lookup<func::FuncOp>(name);
      if (callee) return callee.getFunctionType() == fnType ? callee : func::FuncOp();
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
      return callee;
    };
    for (linalg::LinalgOp op : ops) {
      std::optional<PoolCall> pool = matchPoolGrad(op);
      std::optional<PoolForwardCall> pooling = matchPoolForward(op);
      if (!op.hasPureBufferSemantics() || (!pool && op->getNumOperands() != 3)) continue;
      // Operands (A, B, C), (x, w, y), (x, gy, gw) or (x, gy, gx); an average pooling gradient
      // has no x (gy, gx) and passes gx in its place (the call reads only its shape).
      bool noX = pool && op->getNumOperands() == 2;
      Value c = op->getOperands().back(), a = noX ? c : op->getOperand(0), b = op->getOperand(noX ? 0 : 1);
      auto cType = dyn_cast<MemRefType>(c.getType());
      if (!cType) continue;
      Type elem = cType.getElementType();
      if (!elem.isF32() && !elem.isF64()) continue;
      Type i32 = rewriter.getI32Type(), i64 = rewriter.getI64Type();
      std::optional<ConvCall> conv = matchConvolution(op);
      bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
      unsigned rank = conv || pool || pooling ? 4 : batched ? 3 : 2;
      std::optional<Transposes> t;
      if (!conv && !pool && !pooling) {
        if (!isBlasOperand(a, rank, elem) || !isBlasOperand(b, rank, elem) || !isBlasOperand(c, rank, elem))
          continue;
        t = matchMaps(op, batched);
        if (!t) continue;
      }
      MemRefType dynType = dynamicStridedType(rank, elem);
      SmallVector<Type> params;
      std::string name;
      if (pooling) {
        // kiln/gemm_abi.h: memrefs (x, y), i32 kind, i64 kh, kw, sh, sw, dh, dw, i32 accumulate.
        name = std::string(gemm_abi::kPool2DPrefix) + elemSuffix(elem);
        params.assign(gemm_abi::kPool2DNumMemRefParams, dynType);
        params.push_back(i32);
        params.append(gemm_abi::kPool2DNumIndexParams, i64);
        params.push_back(i32);
      } else if (pool) {
        // kiln/gemm_abi.h: memrefs (x, gy, gx), i32 kind, i64 kh, kw, sh, sw, ph, pw, i32 accumulate.
        name = std::string(gemm_abi::kPool2DGradPrefix) + elemSuffix(elem);
        params.assign(gemm_abi::kPoolNumMemRefParams, dynType);
        params.push_back(i32);
        params.append(gemm_abi::kPoolNumIndexParams, i64);
        params.push_back(i32);
      } else if (conv) {
        // kiln/gemm_abi.h: memrefs (x, w, y) or (x, gy, gw), i64 sh, sw, dh, dw, i32 accumulate.
        name = std::string(conv->gradFilter ? gemm_abi::kConvGradFilterPrefix : gemm_abi::kConvPrefix) +
               elemSuffix(elem);
        params.assign(gemm_abi::kConvNumMemRefParams, dynType);
        params.append(gemm_abi::kConvNumIndexParams, i64);
        params.push_back(i32);
      } else {
        // kiln/gemm_abi.h: memrefs A, B, C, then the i32 flags transpose_a, transpose_b, accumulate.
        name = std::string(batched ? gemm_abi::kBatchGemmPrefix : gemm_abi::kGemmPrefix) + elemSuffix(elem);
        params.assign(gemm_abi::kNumMemRefParams, dynType);
        params.append(gemm_abi::kNumFlagParams, i32);
      }
      func::FuncOp callee = declare(name, rewriter.getFunctionType(params, {}));
      if (!callee) continue;  // a user symbol of that name: leave the loops

      Location loc = op.getLoc();
      rewriter.setInsertionPoint(op);
      auto cast = [&](Value v) -> Value {
        if (v.getType() == dynType) return v;
        return memref::CastOp::create(rewriter, loc, dynType, v);
      };
      auto flag = [&](bool on) -> Value { return arith::ConstantIntOp::create(rewriter, loc, on ? 1 : 0, 32); };
      auto index = [&](int64_t v) -> Value { return arith::ConstantIntOp::create(rewriter, loc, v, 64); };
      linalg::FillOp fill = zeroFills.lookup(op);
      // (Pooling passes no window, b: its shape is in the taps.)
      SmallVector<Value> args = pooling ? SmallVector<Value>{cast(a), cast(c)} : SmallVector<Value>{cast(a), cast(b), cast(c)};
      if (pooling) {
        args.push_back(arith::ConstantIntOp::create(rewriter, loc, pooling->kind, 32));
        for (int64_t v : pooling->taps) args.push_back(index(v));
        args.push_back(flag(!fill));
        assert(args.size() == static_cast<size_t>(gemm_abi::kPool2DNumParams) && "kiln/gemm_abi.h arity");
      } else if (pool) {
        args.push_back(arith::ConstantIntOp::create(rewriter, loc, pool->kind, 32));
        for (int64_t v : pool->window) args.push_back(index(v));
        args.push_back(flag(!fill));
        assert(args.size() == static_cast<size_t>(gemm_abi::kPoolNumParams) && "kiln/gemm_abi.h arity");
      } else if (conv) {
        for (int64_t v : llvm::concat<int64_t>(conv->strides, conv->dilations)) args.push_back(index(v));
        args.push_back(flag(!fill));
        assert(args.size() == static_cast<size_t>(gemm_abi::kConvNumParams) && "kiln/gemm_abi.h arity");
      } else {
        args.append({flag(t->a), flag(t->b), flag(!fill)});
        assert(args.size() == static_cast<size_t>(gemm_abi::kNumParams) && "kiln/gemm_abi.h arity");
      }
      func::CallOp::create(rewriter, loc, callee, args);
      rewriter.eraseOp(op);
      if (fill) rewriter.eraseOp(fill);
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
