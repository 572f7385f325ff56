// -kiln-generalize-batch: makes the batch size of a traced function `?`, by each op's batch-dimension rule.
#include <algorithm>

#include "kiln/passes/Passes.h"
#include "llvm/ADT/DenseMap.h"
#include "mlir/IR/PatternMatch.h"

namespace kiln::passes {
#define GEN_PASS_DEF_KILNGENERALIZEBATCH
#include "kiln/passes/Passes.h.inc"
}  // namespace kiln::passes

using namespace mlir;
using namespace kiln::ir;

namespace {

constexpr BatchDim kNo = BatchDim::No, kYes = BatchDim::Yes, kUnknown = BatchDim::Unknown;

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

struct ArgumentMarks {
  SmallVector<int64_t> candidate;  // per argument: 0, 1 or 2
  SmallVector<bool> state;
};

// Reads the frontend's marks and removes them.
ArgumentMarks takeMarks(func::FuncOp func) {
  ArgumentMarks marks;
  for (unsigned a = 0; a < func.getNumArguments(); ++a) {
    auto level = func.getArgAttrOfType<IntegerAttr>(a, kiln::passes::kBatchCandidateAttr);
    marks.candidate.push_back(level ? level.getInt() : 0);
    marks.state.push_back(func.getArgAttr(a, kiln::passes::kStateAttr) != nullptr);
    func.removeArgAttr(a, kiln::passes::kBatchCandidateAttr);
    func.removeArgAttr(a, kiln::passes::kStateAttr);
  }
  return marks;
}

// The leading dimension most arguments of the highest candidate level share
// (the first seen among equals), or 0 when there is none of size 2 or more:
// size 1 is also what broadcasting stretches.
int64_t batchSizeOf(func::FuncOp func, const ArgumentMarks& marks) {
  int64_t level = *std::max_element(marks.candidate.begin(), marks.candidate.end());
  if (level == 0) return 0;
  SmallVector<std::pair<int64_t, int>> counts;
  for (auto [a, arg] : llvm::enumerate(func.getArguments())) {
    if (marks.candidate[a] != level || shapeOf(arg).empty()) continue;
    int64_t lead = shapeOf(arg)[0];
    auto it = llvm::find_if(counts, [&](auto& c) { return c.first == lead; });
    if (it == counts.end()) counts.push_back({lead, 1});
    else ++it->second;
  }
  if (counts.empty()) return 0;
  auto best = std::max_element(counts.begin(), counts.end(), [](auto& x, auto& y) { return x.second < y.second; });
  return best->first >= 2 ? best->first : 0;
}

struct KilnGeneralizeBatchPass : kiln::passes::impl::KilnGeneralizeBatchBase<KilnGeneralizeBatchPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal() || func.getNumArguments() == 0) return;
    ArgumentMarks marks = takeMarks(func);
    int64_t batch = batchSizeOf(func, marks);
    if (batch == 0) return;
    Block& body = func.getBody().front();
    llvm::DenseMap<Value, BatchDims> dims;
    bool any = false;
    for (auto [a, arg] : llvm::enumerate(body.getArguments())) {
      ArrayRef<int64_t> shape = shapeOf(arg);
      dims[arg] = BatchDims(shape.size(), kNo);
      // Data and computed values passed in: the leading dimension. Never state.
      if (!marks.state[a] && !shape.empty() && shape[0] == batch) dims[arg][0] = kYes, any = true;
    }
    if (!any) return;
    SmallVector<Operation*> ops;
    for (Operation& op : body.without_terminator()) ops.push_back(&op);
    for (Operation* op : ops)
      if (!op->hasTrait<OpTrait::Elementwise>() && !isa<BatchDimOpInterface>(op)) {
        keepConcrete(op, "has no batch-dimension rule (BatchDimOpInterface)");
        return;
      }
    propagate(ops, batch, dims);
    for (Operation* op : ops) {
      std::string reason;
      if (failed(verifyBatchDims(op, operandDims(op, dims), resultDims(op, dims), batch, &reason))) {
        keepConcrete(op, reason);
        return;
      }
    }
    generalize(func, ops, batch, dims);
  }

  static SmallVector<BatchDims> operandDims(Operation* op, const llvm::DenseMap<Value, BatchDims>& dims) {
    SmallVector<BatchDims> r;
    for (Value v : op->getOperands()) r.push_back(dims.lookup(v));
    return r;
  }
  static SmallVector<BatchDims> resultDims(Operation* op, const llvm::DenseMap<Value, BatchDims>& dims) {
    SmallVector<BatchDims> r;
    for (Value v : op->getResults()) r.push_back(dims.lookup(v));
    return r;
  }

  void keepConcrete(Operation* op, const std::string& reason) {
    op->emitRemark() << "the batch size stays concrete: '" << op->getName() << "' " << reason;
  }

  // Forward: each op's rule, keeping what users settled already; backward:
  // elementwise ops settle their operands' unknown dimensions. Until nothing
  // changes; then what is still unknown is the batch where it has its size.
  static void propagate(ArrayRef<Operation*> ops, int64_t batch, llvm::DenseMap<Value, BatchDims>& dims) {
    for (int round = 0, changed = 1; changed && round < 8; ++round) {
      changed = 0;
      for (Operation* op : ops) {
        SmallVector<BatchDims> fresh;
        if (failed(inferBatchDims(op, operandDims(op, dims), batch, fresh, nullptr))) {
          // Not settled yet (verifyBatchDims reports it if it stays so).
          fresh.clear();
          for (Value r : op->getResults()) fresh.push_back(BatchDims(shapeOf(r).size(), kUnknown));
        }
        for (auto [r, f] : llvm::zip(op->getResults(), fresh)) {
          BatchDims& old = dims[r];
          if (old.size() == f.size())
            for (size_t d = 0; d < f.size(); ++d)
              if (f[d] == kUnknown) f[d] = old[d];
          if (f != old) changed = 1, old = f;
        }
      }
      for (Operation* op : llvm::reverse(ops)) {
        if (!op->hasTrait<OpTrait::Elementwise>()) continue;
        const BatchDims result = dims[op->getResult(0)];
        for (Value v : op->getOperands()) {
          BatchDims& operand = dims[v];
          if (operand.size() != result.size()) continue;
          for (size_t d = 0; d < operand.size(); ++d)
            if (operand[d] == kUnknown && result[d] != kUnknown) operand[d] = result[d], changed = 1;
        }
      }
    }
    for (Operation* op : ops)
      for (Value r : op->getResults()) {
        BatchDims& d = dims[r];
        ArrayRef<int64_t> shape = shapeOf(r);
        for (size_t i = 0; i < d.size(); ++i)
          if (d[i] == kUnknown) d[i] = shape[i] == batch ? kYes : kNo;
      }
  }

  void generalize(func::FuncOp func, ArrayRef<Operation*> ops, int64_t batch,
                  const llvm::DenseMap<Value, BatchDims>& dims) {
    // Every op's dimensions first: generalizing an op may replace it.
    SmallVector<std::pair<SmallVector<BatchDims>, SmallVector<BatchDims>>> steps;
    for (Operation* op : ops) steps.push_back({operandDims(op, dims), resultDims(op, dims)});
    Block& body = func.getBody().front();
    for (BlockArgument a : body.getArguments()) a.setType(withBatchDims(a.getType(), dims.lookup(a)));
    IRRewriter rewriter(&getContext());
    for (auto [op, step] : llvm::zip(ops, steps))
      if (failed(generalizeBatchDims(rewriter, op, step.first, step.second, batch))) return signalPassFailure();
    func.setType(FunctionType::get(&getContext(), body.getArgumentTypes(),
                                   body.getTerminator()->getOperandTypes()));
  }
};

}  // namespace
