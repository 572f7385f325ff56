// kiln.fusion regions as kernels: the fusion pass decides, the lowering obeys.
//
// A region whose elementwise ops all iterate over one space S (an elementwise
// region, or the epilogue of a contraction or reduction region) becomes ONE linalg.generic
// over S: its inputs are the region's inputs, read through the index maps of
// their broadcast_to ops; its body is every elementwise op's scalar expression
// (ScalarOpInterface, declared with the op in KilnOps.td); its outputs are the
// region's results. No intermediate touches memory. A contraction region's
// matmul/conv2d (or a reduction region's reduction) stays a kiln op in front
// of its epilogue kernel, for the contraction patterns (GEMM calls or tiled
// GEMMs) and the reduction patterns.
//
// The kernel's ops carry its name in their location (kernelOf), and the CPU
// backend's -kiln-fuse-elementwise fuses only ops of one kernel. The ops of
// the regions this builder does not take, inlined and lowered op by op, carry
// their region's name for KILN_PROFILE (regionOf) and fuse as upstream does. (Regions left to
// inlining: reductions with elementwise ops over their input space, such as
// softmax, and regions with reshapes of computed values.)
#include "LoweringPatterns.h"
#include "kiln/ir/ScalarExpr.h"
#include "kiln/passes/Passes.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/Support/Path.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace kiln::ir;
namespace scalar = kiln::ir::scalar;

namespace kiln::passes {
namespace {

constexpr llvm::StringLiteral kKernelPrefix = "kernel ";
// The ops of a region lowered op by op carry its name with this prefix, for
// KILN_PROFILE's names only: they fuse by upstream's rule, also with ops of
// other such regions (kept apart, kiln_bench's CNN step measured no faster).
constexpr llvm::StringLiteral kRegionPrefix = "region ";

// " (<file>:<line>)" of the first file location in `loc`, or "".
std::string callSite(Location loc) {
  if (auto file = dyn_cast<FileLineColLoc>(loc))
    return " (" + llvm::sys::path::filename(file.getFilename().getValue()).str() + ":" +
           std::to_string(file.getLine()) + ")";
  if (auto name = dyn_cast<NameLoc>(loc)) return callSite(name.getChildLoc());
  if (auto fused = dyn_cast<FusedLoc>(loc))
    for (Location l : fused.getLocations())
      if (std::string site = callSite(l); !site.empty()) return site;
  return {};
}

// "<index>:<kind>:<op+op...>", with the first call site: e.g.
// "3:contraction:matmul+add+relu (mlp.cpp:41)".
std::string kernelName(FusionOp fusion, int index) {
  std::string ops;
  llvm::SmallVector<StringRef> seen;
  std::string site;
  for (Operation& op : fusion.getBody()->without_terminator()) {
    FusionOp::Role role = FusionOp::roleOf(&op);
    if (role == FusionOp::Role::Constant || role == FusionOp::Role::Layout) continue;
    StringRef name = op.getName().stripDialect();
    if (llvm::is_contained(seen, name)) continue;
    seen.push_back(name);
    ops += (ops.empty() ? "" : "+") + name.str();
    if (site.empty()) site = callSite(op.getLoc());
  }
  std::string scope;
  for (Operation& op : fusion.getBody()->without_terminator())
    if (auto s = op.getAttrOfType<StringAttr>(kScopeAttr)) {
      scope = s.getValue().str() + "/";
      break;
    }
  return std::to_string(index) + ":" + scope + fusion.getKind().str() + ":" + ops + site;
}

Location kernelLoc(Location loc, StringRef kernel, StringRef prefix = kKernelPrefix) {
  return NameLoc::get(StringAttr::get(loc.getContext(), prefix + kernel), loc);
}

// How a value of the region reaches the kernel's body.
struct Source {
  Value outer;     // read from this tensor outside the region ...
  AffineMap map;   // ... through this index map over the kernel's space;
  Value scalar;    // or computed in the body (set while the body is built)
  Attribute splat; // or this constant
};

// The index map of `from` (shape `in`) broadcast to the space `out` (numpy
// rules: trailing dimensions aligned, a size-1 dimension broadcast).
std::optional<AffineMap> broadcastMap(ArrayRef<int64_t> in, ArrayRef<int64_t> out, MLIRContext* ctx) {
  if (in.size() > out.size()) return std::nullopt;
  SmallVector<AffineExpr> exprs;
  size_t offset = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) {
    if (in[d] == out[d + offset]) exprs.push_back(getAffineDimExpr(d + offset, ctx));
    else if (in[d] == 1) exprs.push_back(getAffineConstantExpr(0, ctx));
    else return std::nullopt;
  }
  return AffineMap::get(out.size(), 0, exprs, ctx);
}

// `map` (reading a tensor of shape `to`) as a map reading the tensor of shape
// `from` that a reshape made `to` of, when the reshape only adds or drops
// size-1 dimensions.
std::optional<AffineMap> throughUnitReshape(ArrayRef<int64_t> from, ArrayRef<int64_t> to, AffineMap map) {
  SmallVector<int64_t> toDims;  // the dimensions of `to` larger than 1, in order
  for (size_t d = 0; d < to.size(); ++d)
    if (to[d] != 1) toDims.push_back(d);
  SmallVector<AffineExpr> exprs;
  size_t next = 0;
  for (int64_t size : from) {
    if (size == 1) {
      exprs.push_back(getAffineConstantExpr(0, map.getContext()));
      continue;
    }
    if (next >= toDims.size() || to[toDims[next]] != size) return std::nullopt;
    exprs.push_back(map.getResult(toDims[next++]));
  }
  if (next != toDims.size()) return std::nullopt;
  return AffineMap::get(map.getNumDims(), 0, exprs, map.getContext());
}

class KernelBuilder {
 public:
  explicit KernelBuilder(FusionOp fusion) : fusion_(fusion), body_(fusion.getBody()) {}

  // Plans the kernel; false when the region is not one space of elementwise ops.
  bool plan() {
    for (Operation& op : body_->without_terminator()) {
      switch (FusionOp::roleOf(&op)) {
        case FusionOp::Role::Contraction:
        case FusionOp::Role::Reduction:
          // One matmul/conv2d or reduction, reading region inputs only: it
          // stays an op of its own, and the elementwise ops over its result
          // space are its epilogue.
          if (contraction_) return false;
          contraction_ = &op;
          for (Value operand : op.getOperands())
            if (!isa<BlockArgument>(operand)) return false;
          break;
        case FusionOp::Role::Elementwise:
          // (An op whose expression does not parse is reported by the op-by-op lowering.)
          if (!isa<ScalarOpInterface>(op) || failed(scalar::expressionOf(&op))) return false;
          elementwise_.push_back(&op);
          break;
        case FusionOp::Role::Constant:
        case FusionOp::Role::Layout: break;
        default: return false;  // opaque ops
      }
    }
    if (elementwise_.empty()) return false;
    space_ = cast<RankedTensorType>(contraction_ ? contraction_->getResult(0).getType()
                                                 : elementwise_.front()->getResult(0).getType())
                 .getShape();
    for (Operation* op : elementwise_) {
      if (cast<RankedTensorType>(op->getResult(0).getType()).getShape() != space_) return false;
      for (Value operand : op->getOperands())
        if (!source(operand)) return false;
    }
    for (Value v : fusion_.getYield().getValues()) {
      Operation* def = v.getDefiningOp();
      bool computed = def && llvm::is_contained(elementwise_, def);
      if (!computed && def != contraction_ && !isa<BlockArgument>(v)) return false;
    }
    return true;
  }

  void build(StringRef kernel) {
    MLIRContext* ctx = fusion_.getContext();
    Location loc = kernelLoc(fusion_.getLoc(), kernel);
    OpBuilder b(fusion_);
    IRMapping outer;  // region values -> values outside the region
    for (auto [arg, input] : llvm::zip(body_->getArguments(), fusion_.getInputs())) outer.map(arg, input);
    if (contraction_) {
      Operation* moved = b.clone(*contraction_, outer);
      moved->setLoc(kernelLoc(contraction_->getLoc(), kernel));
      outer.map(contraction_->getResults(), moved->getResults());
    }
    // Inputs: every outer tensor the elementwise ops read, with its index map.
    SmallVector<Value> inputs;
    SmallVector<AffineMap> maps;
    for (auto& [value, src] : sources_) {
      if (!src.outer) continue;
      src.outer = outer.lookupOrDefault(src.outer);
      inputs.push_back(src.outer);
      maps.push_back(src.map);
    }
    // Outputs: the yielded values the kernel computes.
    SmallVector<Value> computed, inits;
    for (Value v : fusion_.getYield().getValues()) {
      Operation* def = v.getDefiningOp();
      if (!def || !llvm::is_contained(elementwise_, def) || llvm::is_contained(computed, v)) continue;
      computed.push_back(v);
      auto type = RankedTensorType::get(space_, cast<RankedTensorType>(v.getType()).getElementType());
      inits.push_back(emptyTensor(b, loc, type));
    }
    SmallVector<AffineMap> indexing(maps);
    indexing.append(inits.size(), AffineMap::getMultiDimIdentityMap(space_.size(), ctx));
    SmallVector<utils::IteratorType> iterators(space_.size(), utils::IteratorType::parallel);
    auto generic = linalg::GenericOp::create(
        b, loc, ValueRange(inits).getTypes(), inputs, inits, indexing, iterators,
        [&](OpBuilder& nb, Location nloc, ValueRange args) {
          size_t i = 0;
          for (auto& [value, src] : sources_)
            if (src.outer) src.scalar = args[i++];
          SmallVector<Value> yielded;
          for (Operation* op : elementwise_) {
            SmallVector<Value> scalars;
            for (Value operand : op->getOperands()) scalars.push_back(scalarOf(nb, nloc, operand));
            FailureOr<Value> r = emitScalarOp(nb, nloc, op, scalars);
            sources_[op->getResult(0)].scalar = succeeded(r) ? *r : Value();
          }
          for (Value v : computed) yielded.push_back(sources_[v].scalar);
          linalg::YieldOp::create(nb, nloc, yielded);
        });
    generic->setAttr("kiln.kernel", b.getStringAttr(kernel));
    SmallVector<Value> replacements;
    for (Value v : fusion_.getYield().getValues()) {
      auto it = llvm::find(computed, v);
      replacements.push_back(it != computed.end() ? generic.getResult(it - computed.begin())
                                                  : outer.lookupOrDefault(v));
    }
    fusion_.replaceAllUsesWith(replacements);
    fusion_.erase();
  }

 private:
  // How `v`, an operand of an elementwise op, is read; null if it cannot be.
  Source* source(Value v) {
    auto it = sources_.find(v);
    if (it != sources_.end()) return &it->second;
    Source src;
    Operation* def = v.getDefiningOp();
    Attribute value;
    if (def && llvm::is_contained(elementwise_, def)) {
      // computed in the body
    } else if (def && def->hasTrait<OpTrait::ConstantLike>() && matchPattern(v, m_Constant(&value)) &&
               isa<SplatElementsAttr>(value)) {
      src.splat = cast<SplatElementsAttr>(value).getSplatValue<Attribute>();
    } else if (auto bcast = dyn_cast_or_null<BroadcastToOp>(def)) {
      if (cast<RankedTensorType>(bcast.getType()).getShape() != space_) return nullptr;
      // Through the layout ops before it: a splat constant, or an outer tensor
      // (at most one reshape that only adds or drops size-1 dimensions).
      Value from = bcast.getX();
      ReshapeOp reshape;
      while (Operation* d = from.getDefiningOp()) {
        if (d == contraction_) break;
        if (d->hasTrait<OpTrait::ConstantLike>()) break;
        if (auto r = dyn_cast<ReshapeOp>(d); r && !reshape) {
          reshape = r;
          from = r.getX();
          continue;
        }
        if (auto b2 = dyn_cast<BroadcastToOp>(d); b2 && !reshape) {
          from = b2.getX();  // a broadcast of a broadcast is one broadcast
          continue;
        }
        return nullptr;  // a value computed in the region, or a longer layout chain
      }
      Operation* fromDef = from.getDefiningOp();
      if (fromDef && fromDef->hasTrait<OpTrait::ConstantLike>()) {
        if (!matchPattern(from, m_Constant(&value)) || !isa<SplatElementsAttr>(value)) return nullptr;
        src.splat = cast<SplatElementsAttr>(value).getSplatValue<Attribute>();
      } else {
        ArrayRef<int64_t> shape = cast<RankedTensorType>((reshape ? reshape.getType() : from.getType())).getShape();
        std::optional<AffineMap> map = broadcastMap(shape, space_, v.getContext());
        if (!map) return nullptr;
        if (reshape && !(map = throughUnitReshape(cast<RankedTensorType>(from.getType()).getShape(), shape, *map)))
          return nullptr;
        src.outer = from;
        src.map = *map;
      }
    } else if (!def || def == contraction_) {  // a region input or the contraction's result
      if (cast<RankedTensorType>(v.getType()).getShape() != space_) return nullptr;
      src.outer = v;
      src.map = AffineMap::getMultiDimIdentityMap(space_.size(), v.getContext());
    } else {
      return nullptr;  // reshapes and other layouts inside the region
    }
    return &sources_.insert({v, src}).first->second;
  }

  Value scalarOf(OpBuilder& b, Location loc, Value v) {
    Source& src = sources_[v];
    if (src.splat) return arith::ConstantOp::create(b, loc, cast<TypedAttr>(src.splat));
    return src.scalar;
  }

  FusionOp fusion_;
  Block* body_;
  Operation* contraction_ = nullptr;
  SmallVector<Operation*> elementwise_;
  ArrayRef<int64_t> space_;
  llvm::MapVector<Value, Source> sources_;
};

}  // namespace

namespace {
StringRef nameOfLoc(Location loc, bool regions) {
  if (auto name = dyn_cast<NameLoc>(loc)) {
    StringRef s = name.getName().getValue();
    if (s.consume_front(kKernelPrefix) || (regions && s.consume_front(kRegionPrefix))) return s;
  }
  if (auto fused = dyn_cast<FusedLoc>(loc))  // ops merged by a later fusion
    for (Location l : fused.getLocations())
      if (StringRef s = nameOfLoc(l, regions); !s.empty()) return s;
  return {};
}
}  // namespace

StringRef kernelOf(Operation* op) { return nameOfLoc(op->getLoc(), false); }
StringRef regionOf(Operation* op) { return nameOfLoc(op->getLoc(), true); }

LogicalResult lowerFusionKernels(func::FuncOp func) {
  SmallVector<FusionOp> fusions;
  func.walk([&](FusionOp f) { fusions.push_back(f); });
  int index = 0;
  for (FusionOp fusion : fusions) {
    std::string kernel = kernelName(fusion, index++);
    KernelBuilder builder(fusion);
    if (builder.plan()) {
      builder.build(kernel);
      continue;
    }
    // Lowered op by op (after inlining): the ops keep the kernel's name.
    fusion.getBody()->walk([&](Operation* op) { op->setLoc(kernelLoc(op->getLoc(), kernel, kRegionPrefix)); });
  }
  // An op of no region (a convolution's gradients, pooling, a gather) is a kernel of its
  // own: named after its Link and call site too, e.g. "predictor/c2/conv2d_grad_filter
  // (cnn.cpp:54)", for KILN_PROFILE; the ops it lowers to carry the name.
  func.walk([&](Operation* op) {
    if (!isa_and_nonnull<ir::KilnDialect>(op->getDialect()) || isa<FusionOp>(op) || op->getParentOfType<FusionOp>()) return;
    if (!nameOfLoc(op->getLoc(), true).empty()) return;
    std::string scope;
    if (auto s = op->getAttrOfType<StringAttr>(kScopeAttr)) scope = s.getValue().str() + "/";
    std::string name = scope + op->getName().stripDialect().str() + callSite(op->getLoc());
    op->setLoc(kernelLoc(op->getLoc(), name, kRegionPrefix));
  });
  return success();
}

}  // namespace kiln::passes
