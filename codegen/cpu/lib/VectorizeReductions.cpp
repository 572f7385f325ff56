// -kiln-vectorize-reductions: a linalg.generic on buffers that reduces floats along its
// innermost, contiguous dimension (row sums and maxima, softmax's sums, a convolution's
// bias gradient over N, H, W of NCHW, whole-tensor sums) becomes loops with vector
// accumulators. LLVM vectorizes no floating-point sum by itself (that reassociates it), so
// the upstream loops add one element at a time into one scalar, 4 cycles a step.
//
// The loops: the generic's parallel dimensions outermost (an scf.parallel, threads where
// it is large), then its outer reduction dimensions (scf.for carrying the accumulators),
// then the innermost reduction dimensions that are contiguous in every input (H and W of
// NCHW: one run of H*W elements) as one flat loop of 4 vectors a step, one vector a step
// for the rest and a scalar tail. At the end of an output element's reduction its vectors
// combine into one, a horizontal reduction gives a scalar, and the output's initial value
// is combined in once. Reductions along a non-innermost dimension only (a column sum)
// stay as they are: their innermost loop is parallel, which LLVM vectorizes.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNVECTORIZEREDUCTIONS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// Vectors each flat-loop step accumulates per output (independent adds in flight).
constexpr int64_t kUnroll = 4;

// One output's combiner: `op(value, out)` yielded, with its horizontal kind and identity.
struct Combiner {
  Operation* op;
  Value value;  // the body's value combined into the output
  vector::CombiningKind kind;
  double identity;
};

std::optional<Combiner> combinerOf(Value yielded, BlockArgument out) {
  Operation* op = yielded.getDefiningOp();
  if (!op || op->getNumOperands() != 2 || !out.hasOneUse()) return std::nullopt;
  Value value;
  if (op->getOperand(0) == out) value = op->getOperand(1);
  else if (op->getOperand(1) == out) value = op->getOperand(0);
  else return std::nullopt;
  double inf = std::numeric_limits<double>::infinity();
  auto make = [&](vector::CombiningKind kind, double identity) { return Combiner{op, value, kind, identity}; };
  if (isa<arith::AddFOp>(op)) return make(vector::CombiningKind::ADD, -0.0);
  if (isa<arith::MulFOp>(op)) return make(vector::CombiningKind::MUL, 1.0);
  if (isa<arith::MaximumFOp>(op)) return make(vector::CombiningKind::MAXIMUMF, -inf);
  if (isa<arith::MinimumFOp>(op)) return make(vector::CombiningKind::MINIMUMF, inf);
  if (isa<arith::MaxNumFOp>(op)) return make(vector::CombiningKind::MAXNUMF, -inf);
  if (isa<arith::MinNumFOp>(op)) return make(vector::CombiningKind::MINNUMF, inf);
  return std::nullopt;
}

bool byteSized(Type t) { return t.isIntOrFloat() && t.getIntOrFloatBitWidth() % 8 == 0; }

// What the rewrite needs of one generic, or nullopt when it does not apply.
struct Plan {
  linalg::GenericOp op;
  int64_t flatBegin;  // dimensions flatBegin.. are the flat run (all reductions)
  SmallVector<Combiner> combiners;
  int64_t lanes;
};

// The innermost reduction dimensions every input reads as its own last, contiguous
// dimensions in order (or not at all): the first of them.
std::optional<int64_t> flatRun(linalg::GenericOp op) {
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  int64_t rank = op.getNumLoops();
  auto isDim = [](AffineExpr e, int64_t d) {
    auto dim = dyn_cast<AffineDimExpr>(e);
    return dim && dim.getPosition() == static_cast<unsigned>(d);
  };
  int64_t begin = rank;
  // Grow the run one dimension outwards while every input agrees.
  for (int64_t d = rank - 1; d >= 0 && iterators[d] == utils::IteratorType::reduction; --d) {
    bool ok = true;
    for (OpOperand* in : op.getDpsInputOperands()) {
      AffineMap map = op.getMatchingIndexingMap(in);
      bool uses = map.isFunctionOfDim(d);
      int64_t results = map.getNumResults(), run = rank - d;
      if (begin == rank) {
        // The innermost dimension: read as the last one, or not at all.
        ok &= !uses || (results >= 1 && isDim(map.getResult(results - 1), d));
        continue;
      }
      bool usesInner = map.isFunctionOfDim(rank - 1);
      if (!usesInner) {
        ok &= !uses;
        continue;
      }
      ok &= results >= run && isDim(map.getResult(results - run), d);
    }
    if (!ok) break;
    begin = d;
  }
  if (begin == rank) return std::nullopt;
  return begin;
}

std::optional<Plan> planFor(linalg::GenericOp op, int64_t vectorBits) {
  if (!op.hasPureBufferSemantics() || op.getNumReductionLoops() == 0) return std::nullopt;
  if (op.getIteratorTypesArray().back() != utils::IteratorType::reduction) return std::nullopt;
  for (AffineMap map : op.getIndexingMapsArray())
    for (AffineExpr e : map.getResults())
      if (!isa<AffineDimExpr>(e) && !(isa<AffineConstantExpr>(e) && cast<AffineConstantExpr>(e).getValue() == 0))
        return std::nullopt;
  for (OpOperand& operand : op->getOpOperands()) {
    auto type = dyn_cast<MemRefType>(operand.get().getType());
    if (!type || !type.getLayout().isIdentity() || !byteSized(type.getElementType())) return std::nullopt;
  }
  std::optional<int64_t> begin = flatRun(op);
  if (!begin) return std::nullopt;
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  // Outputs: indexed by parallel dimensions only, each reduced by one combiner.
  Block* body = op.getBody();
  auto yield = cast<linalg::YieldOp>(body->getTerminator());
  Plan plan{op, *begin, {}, 0};
  for (OpOperand& init : op.getDpsInitsMutable()) {
    for (AffineExpr e : op.getMatchingIndexingMap(&init).getResults())
      if (auto dim = dyn_cast<AffineDimExpr>(e); dim && iterators[dim.getPosition()] != utils::IteratorType::parallel)
        return std::nullopt;
    BlockArgument out = op.getMatchingBlockArgument(&init);
    std::optional<Combiner> c = combinerOf(yield.getOperand(init.getOperandNumber() - op.getNumDpsInputs()), out);
    if (!c || c->value.getType() != out.getType()) return std::nullopt;
    plan.combiners.push_back(*c);
  }
  // The body: elementwise arith/math ops on scalars, no indices, no regions.
  for (Operation& inner : body->without_terminator()) {
    bool isCombiner = llvm::any_of(plan.combiners, [&](const Combiner& c) { return c.op == &inner; });
    if (isCombiner) {
      // Its result is only yielded.
      for (Operation* user : inner.getUsers())
        if (user != yield) return std::nullopt;
      continue;
    }
    if (isa<arith::ConstantOp>(inner)) continue;
    if (!isa<arith::ArithDialect, math::MathDialect>(inner.getDialect()) || inner.getNumRegions() != 0 ||
        !OpTrait::hasElementwiseMappableTraits(&inner))
      return std::nullopt;
    for (Type t : llvm::concat<Type>(inner.getOperandTypes(), inner.getResultTypes()))
      if (!t.isIntOrFloat()) return std::nullopt;
    for (Value operand : inner.getOperands())
      if (auto arg = dyn_cast<BlockArgument>(operand); arg && arg.getOwner() == body &&
                                                      arg.getArgNumber() >= op.getNumDpsInputs())
        return std::nullopt;  // an output read other than by its combiner
  }
  int64_t widest = 8;
  for (const Combiner& c : plan.combiners) widest = std::max<int64_t>(widest, c.value.getType().getIntOrFloatBitWidth());
  plan.lanes = std::max<int64_t>(vectorBits / widest, 1);
  if (plan.lanes < 2) return std::nullopt;
  return plan;
}

class ReductionEmitter {
 public:
  ReductionEmitter(const Plan& plan, RewriterBase& rewriter)
      : plan_(plan), op_(plan.op), b_(rewriter), loc_(plan.op->getLoc()) {}

  void emit() {
    b_.setInsertionPoint(op_);
    int64_t rank = op_.getNumLoops();
    SmallVector<Range, 4> ranges = cast<linalg::LinalgOp>(op_.getOperation()).createLoopRanges(b_, loc_);
    SmallVector<Value> sizes;
    for (const Range& r : ranges) sizes.push_back(getValueOrCreateConstantIndexOp(b_, loc_, r.size));
    zero_ = arith::ConstantIndexOp::create(b_, loc_, 0);
    one_ = arith::ConstantIndexOp::create(b_, loc_, 1);
    // The flat run's length, and each input that reads it collapsed to a last dimension of that length.
    flatLength_ = one_;
    for (int64_t d = plan_.flatBegin; d < rank; ++d) flatLength_ = b_.createOrFold<arith::MulIOp>(loc_, flatLength_, sizes[d]);
    int64_t run = rank - plan_.flatBegin;
    for (OpOperand* in : op_.getDpsInputOperands()) {
      Value memref = in->get();
      AffineMap map = op_.getMatchingIndexingMap(in);
      if (run > 1 && map.isFunctionOfDim(rank - 1)) {
        int64_t results = map.getNumResults();
        SmallVector<ReassociationIndices> groups;
        for (int64_t r = 0; r < results - run; ++r) groups.push_back({r});
        ReassociationIndices last;
        for (int64_t r = results - run; r < results; ++r) last.push_back(r);
        groups.push_back(last);
        memref = memref::CollapseShapeOp::create(b_, loc_, memref, groups);
      }
      inputs_.push_back(memref);
    }
    SmallVector<Value> parallelLbs, parallelUbs, parallelSteps;
    SmallVector<utils::IteratorType> iterators = op_.getIteratorTypesArray();
    for (int64_t d = 0; d < plan_.flatBegin; ++d)
      if (iterators[d] == utils::IteratorType::parallel) {
        parallelLbs.push_back(zero_);
        parallelUbs.push_back(sizes[d]);
        parallelSteps.push_back(one_);
      }
    ivs_.assign(rank, Value());
    auto reduceAll = [&](OpBuilder& b, Location loc, ValueRange parallelIvs) {
      for (int64_t d = 0, p = 0; d < plan_.flatBegin; ++d)
        if (iterators[d] == utils::IteratorType::parallel) ivs_[d] = parallelIvs[p++];
      OpBuilder::InsertionGuard guard(b_);
      b_.setInsertionPoint(b.getInsertionBlock(), b.getInsertionPoint());
      emitOutputElement(sizes);
    };
    if (parallelLbs.empty()) {
      reduceAll(b_, loc_, {});
    } else {
      scf::ParallelOp::create(b_, loc_, parallelLbs, parallelUbs, parallelSteps,
                              [&](OpBuilder& b, Location loc, ValueRange ivs) { reduceAll(b, loc, ivs); });
    }
    b_.eraseOp(op_);
  }

 private:
  // Accumulators: kUnroll vectors per output, then one scalar per output (the tail).
  int64_t numOutputs() const { return static_cast<int64_t>(plan_.combiners.size()); }
  Type elemOf(int64_t j) const { return plan_.combiners[j].value.getType(); }
  VectorType vecOf(Type t) const { return VectorType::get({plan_.lanes}, t); }

  Value identity(int64_t j, Type type) {
    auto elem = cast<FloatType>(elemOf(j));
    Value scalar = arith::ConstantOp::create(b_, loc_, FloatAttr::get(elem, plan_.combiners[j].identity));
    return isa<VectorType>(type) ? vector::BroadcastOp::create(b_, loc_, type, scalar).getResult() : scalar;
  }

  Value combine(int64_t j, Value acc, Value x) {
    Operation* c = plan_.combiners[j].op;
    OperationState state(loc_, c->getName().getIdentifier(), ValueRange{acc, x}, TypeRange{acc.getType()},
                         c->getAttrs());
    return b_.create(state)->getResult(0);
  }

  // The reduction of one output element (the parallel ivs set): the outer reduction
  // loops around the flat loops, then the horizontal reduction and the output update.
  void emitOutputElement(ArrayRef<Value> sizes) {
    SmallVector<Value> accs;
    for (int64_t j = 0; j < numOutputs(); ++j)
      for (int64_t u = 0; u < kUnroll; ++u) accs.push_back(identity(j, vecOf(elemOf(j))));
    for (int64_t j = 0; j < numOutputs(); ++j) accs.push_back(identity(j, elemOf(j)));
    SmallVector<int64_t> outerReductions;
    SmallVector<utils::IteratorType> iterators = op_.getIteratorTypesArray();
    for (int64_t d = 0; d < plan_.flatBegin; ++d)
      if (iterators[d] == utils::IteratorType::reduction) outerReductions.push_back(d);
    accs = emitReductionLoops(outerReductions, sizes, accs);
    for (int64_t j = 0; j < numOutputs(); ++j) {
      Value v = accs[j * kUnroll];
      for (int64_t u = 1; u < kUnroll; ++u) v = combine(j, v, accs[j * kUnroll + u]);
      Value s = vector::ReductionOp::create(b_, loc_, plan_.combiners[j].kind, v,
                                            arith::FastMathFlags::reassoc);
      s = combine(j, s, accs[numOutputs() * kUnroll + j]);
      OpOperand* init = op_.getDpsInitOperand(j);
      SmallVector<Value> indices = indicesFor(op_.getMatchingIndexingMap(init), false);
      Value old = memref::LoadOp::create(b_, loc_, init->get(), indices);
      memref::StoreOp::create(b_, loc_, combine(j, s, old), init->get(), indices);
    }
  }

  SmallVector<Value> emitReductionLoops(ArrayRef<int64_t> dims, ArrayRef<Value> sizes, ValueRange accs) {
    if (dims.empty()) return emitFlatLoops(accs);
    return forLoop(zero_, sizes[dims.front()], one_, accs, [&](Value iv, SmallVector<Value>& next) {
      ivs_[dims.front()] = iv;
      next = emitReductionLoops(dims.drop_front(), sizes, next);
    });
  }

  // The indices of a map's results: the outer ivs, then (for an input reading the flat
  // run) `flat` as its collapsed last dimension.
  SmallVector<Value> indicesFor(AffineMap map, bool readsRun, Value flat = {}) {
    SmallVector<Value> indices;
    int64_t keep = map.getNumResults() - (readsRun ? op_.getNumLoops() - plan_.flatBegin : 0);
    for (int64_t r = 0; r < keep; ++r) {
      if (auto dim = dyn_cast<AffineDimExpr>(map.getResult(r))) indices.push_back(ivs_[dim.getPosition()]);
      else indices.push_back(zero_);
    }
    if (readsRun) indices.push_back(flat);
    return indices;
  }

  // The body at flat position `flat`: `lanes` wide (vector loads) or one element.
  SmallVector<Value> emitBody(Value flat, bool vector) {
    Block* body = op_.getBody();
    IRMapping mapping;
    int64_t rank = op_.getNumLoops();
    for (auto [i, in] : llvm::enumerate(op_.getDpsInputOperands())) {
      AffineMap map = op_.getMatchingIndexingMap(in);
      bool readsRun = map.isFunctionOfDim(rank - 1);
      Type elem = cast<MemRefType>(inputs_[i].getType()).getElementType();
      Value v;
      if (!readsRun) v = vector ? invariants_[i].second : invariants_[i].first;
      else if (vector) v = vector::LoadOp::create(b_, loc_, vecOf(elem), inputs_[i], indicesFor(map, true, flat));
      else v = memref::LoadOp::create(b_, loc_, inputs_[i], indicesFor(map, true, flat));
      mapping.map(body->getArgument(i), v);
    }
    auto widen = [&](Value v) -> Value {
      if (!vector || isa<VectorType>(v.getType())) return v;
      return vector::BroadcastOp::create(b_, loc_, vecOf(v.getType()), v);
    };
    for (Operation& inner : body->without_terminator()) {
      if (llvm::any_of(plan_.combiners, [&](const Combiner& c) { return c.op == &inner; })) continue;
      if (isa<arith::ConstantOp>(inner)) {
        mapping.map(inner.getResult(0), widen(b_.clone(inner)->getResult(0)));
        continue;
      }
      SmallVector<Value> operands;
      for (Value operand : inner.getOperands()) operands.push_back(widen(mapping.lookupOrDefault(operand)));
      SmallVector<Type> types;
      for (Type t : inner.getResultTypes()) types.push_back(vector ? Type(vecOf(t)) : t);
      OperationState state(loc_, inner.getName().getIdentifier(), operands, types, inner.getAttrs());
      mapping.map(inner.getResults(), b_.create(state)->getResults());
    }
    SmallVector<Value> values;
    for (const Combiner& c : plan_.combiners) values.push_back(widen(mapping.lookupOrDefault(c.value)));
    return values;
  }

  // One flat run: kUnroll vectors a step, one vector a step, then scalars.
  SmallVector<Value> emitFlatLoops(ValueRange accs) {
    int64_t lanes = plan_.lanes;
    Value block = arith::ConstantIndexOp::create(b_, loc_, lanes * kUnroll);
    Value lanesValue = arith::ConstantIndexOp::create(b_, loc_, lanes);
    auto roundDown = [&](Value n, Value m) {
      return b_.createOrFold<arith::MulIOp>(loc_, b_.createOrFold<arith::DivUIOp>(loc_, n, m), m);
    };
    Value blocksEnd = roundDown(flatLength_, block);
    Value vectorsEnd = roundDown(flatLength_, lanesValue);
    int64_t outputs = numOutputs();
    // Inputs the run does not read (a row's maximum in softmax): loaded and splat once.
    int64_t rank = op_.getNumLoops();
    invariants_.assign(inputs_.size(), {});
    for (auto [i, in] : llvm::enumerate(op_.getDpsInputOperands())) {
      AffineMap map = op_.getMatchingIndexingMap(in);
      if (map.isFunctionOfDim(rank - 1)) continue;
      Value scalar = memref::LoadOp::create(b_, loc_, inputs_[i], indicesFor(map, false));
      invariants_[i] = {scalar, vector::BroadcastOp::create(b_, loc_, vecOf(scalar.getType()), scalar)};
    }
    // Accumulator k of output j: the vector j * kUnroll + k, its scalar outputs * kUnroll + j.
    auto accumulate = [&](SmallVector<Value>& accs, Value at, bool vector, int64_t k) {
      SmallVector<Value> values = emitBody(at, vector);
      for (int64_t j = 0; j < outputs; ++j) {
        int64_t slot = vector ? j * kUnroll + k : outputs * kUnroll + j;
        accs[slot] = combine(j, accs[slot], values[j]);
      }
    };
    SmallVector<Value> next = forLoop(zero_, blocksEnd, block, accs, [&](Value i, SmallVector<Value>& accs) {
      for (int64_t u = 0; u < kUnroll; ++u)
        accumulate(accs, arith::AddIOp::create(b_, loc_, i, arith::ConstantIndexOp::create(b_, loc_, u * lanes)),
                   true, u);
    });
    next = forLoop(blocksEnd, vectorsEnd, lanesValue, next,
                   [&](Value i, SmallVector<Value>& accs) { accumulate(accs, i, true, 0); });
    return forLoop(vectorsEnd, flatLength_, one_, next,
                   [&](Value i, SmallVector<Value>& accs) { accumulate(accs, i, false, 0); });
  }

  // An scf.for from `lb` to `ub` carrying `accs`, which `step` updates at each `i`.
  SmallVector<Value> forLoop(Value lb, Value ub, Value stride, ValueRange accs,
                             llvm::function_ref<void(Value, SmallVector<Value>&)> step) {
    auto loop = scf::ForOp::create(b_, loc_, lb, ub, stride, accs,
                                   [&](OpBuilder& b, Location, Value i, ValueRange args) {
                                     OpBuilder::InsertionGuard guard(b_);
                                     b_.setInsertionPoint(b.getInsertionBlock(), b.getInsertionPoint());
                                     SmallVector<Value> next(args);
                                     step(i, next);
                                     scf::YieldOp::create(b_, loc_, next);
                                   });
    return SmallVector<Value>(loop.getResults());
  }

  const Plan& plan_;
  linalg::GenericOp op_;
  RewriterBase& b_;
  Location loc_;
  Value zero_, one_, flatLength_;
  SmallVector<Value> inputs_;  // the inputs, those reading the flat run collapsed
  SmallVector<Value> ivs_;     // per loop dimension, while its loop is being emitted
  // Per input the run does not read: its element for this run, and that element splat.
  SmallVector<std::pair<Value, Value>> invariants_;
};

struct KilnVectorizeReductions : impl::KilnVectorizeReductionsBase<KilnVectorizeReductions> {
  using Base::Base;
  void runOnOperation() override {
    int64_t bits = vectorBits > 0 ? vectorBits : host_vector_shape().bits;
    SmallVector<Plan> plans;
    getOperation().walk([&](linalg::GenericOp op) {
      if (std::optional<Plan> plan = planFor(op, bits)) plans.push_back(*plan);
    });
    IRRewriter rewriter(&getContext());
    for (const Plan& plan : plans) ReductionEmitter(plan, rewriter).emit();
  }
};

}  // namespace
}  // namespace kiln::cpu
