// -kiln-outline-kernels: a large bufferized function's kernels move, a run at a time,
// into private functions, so that LLVM's time on it stays about linear in its size.
#include <algorithm>

#include "kiln/codegen/cpu.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNOUTLINEKERNELS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

// An op that a run clones instead of taking its result as an argument: no regions, no
// memory effects (constants, index arithmetic, memref.dim, views and casts of buffers).
// Cloned, a loop bound stays a constant and a buffer stays a view of its allocation or
// of an argument of the function, as the optimizer saw it in one function.
bool isRecomputable(mlir::Operation* op) {
  return op->getNumRegions() == 0 && !op->hasTrait<mlir::OpTrait::IsTerminator>() && mlir::isMemoryEffectFree(op);
}

// A kernel: an op with regions (a linalg op, a loop) or a call (BLAS, the runtime).
bool isKernel(mlir::Operation* op) {
  return !isRecomputable(op) && (op->getNumRegions() > 0 || mlir::isa<mlir::func::CallOp>(op));
}

// Clones into `b` the recomputable op defining `v` (after those defining its operands),
// unless `mapping` has it already; a value of any other op or a block argument becomes
// an argument, appended to `inputs`.
void cloneOrCapture(mlir::Value v, mlir::OpBuilder& b, mlir::IRMapping& mapping,
                    llvm::SetVector<mlir::Value>& inputs) {
  if (mapping.contains(v) || inputs.contains(v)) return;
  mlir::Operation* def = v.getDefiningOp();
  if (!def || !isRecomputable(def)) {
    inputs.insert(v);
    return;
  }
  for (mlir::Value operand : def->getOperands()) cloneOrCapture(operand, b, mapping, inputs);
  b.clone(*def, mapping);
}

// Moves the ops of `run` (top-level ops of `parent`'s body, in order, none of them
// recomputable) into a new private function @name placed before `parent`, called after
// the last of them. The function takes the values the run uses from outside, except
// those of recomputable ops, which it recomputes, and returns the run's results used
// after it. The recomputable ops between the run's ops move after the call.
void outline(llvm::ArrayRef<mlir::Operation*> run, mlir::func::FuncOp parent, llvm::StringRef name,
             mlir::SymbolTable& symbols) {
  mlir::Block& block = parent.getBody().front();
  llvm::DenseSet<mlir::Operation*> inside(run.begin(), run.end());
  mlir::OpBuilder b(parent);
  auto kernel = mlir::func::FuncOp::create(b, run.front()->getLoc(), name, b.getFunctionType({}, {}));
  kernel.setPrivate();
  // The run stays a function of its own through LLVM's inliner.
  kernel->setAttr("passthrough", b.getStrArrayAttr({"noinline"}));
  mlir::Block* body = kernel.addEntryBlock();
  b.setInsertionPointToStart(body);
  mlir::IRMapping mapping;
  llvm::SetVector<mlir::Value> inputs;
  llvm::SmallVector<mlir::Value> results;
  for (mlir::Operation* op : run) {
    llvm::SetVector<mlir::Value> used(op->getOperands().begin(), op->getOperands().end());
    mlir::getUsedValuesDefinedAbove(op->getRegions(), used);
    for (mlir::Value v : used)
      if (!inside.contains(v.getDefiningOp())) cloneOrCapture(v, b, mapping, inputs);
    b.clone(*op, mapping);
    for (mlir::Value r : op->getResults())
      if (llvm::any_of(r.getUsers(), [&](mlir::Operation* user) {
            return !inside.contains(block.findAncestorOpInBlock(*user));
          }))
        results.push_back(r);
  }
  // The arguments, in the order first used, replace their placeholders in the clones.
  for (mlir::Value v : inputs) {
    mlir::BlockArgument arg = body->addArgument(v.getType(), v.getLoc());
    v.replaceUsesWithIf(arg, [&](mlir::OpOperand& use) { return kernel->isProperAncestor(use.getOwner()); });
  }
  llvm::SmallVector<mlir::Value> returned;
  for (mlir::Value r : results) returned.push_back(mapping.lookup(r));
  mlir::func::ReturnOp::create(b, run.back()->getLoc(), returned);
  kernel.setFunctionType(b.getFunctionType(body->getArgumentTypes(), mlir::ValueRange(returned).getTypes()));
  symbols.insert(kernel);

  b.setInsertionPointAfter(run.back());
  auto call = mlir::func::CallOp::create(b, run.front()->getLoc(), kernel, inputs.getArrayRef());
  for (auto [r, replacement] : llvm::zip(results, call.getResults())) r.replaceAllUsesWith(replacement);
  // Those of the recomputable ops between the run's first and last op that use its
  // results (or such ops' results) move after the call, in order.
  mlir::Operation* next = call->getNextNode();
  llvm::DenseSet<mlir::Operation*> moved;
  for (mlir::Operation* op = run.front(); op != call.getOperation();) {
    mlir::Operation* following = op->getNextNode();
    if (!inside.contains(op) && llvm::any_of(op->getOperands(), [&](mlir::Value v) {
          mlir::Operation* def = v.getDefiningOp();
          return def == call.getOperation() || moved.contains(def);
        })) {
      op->moveBefore(next);
      moved.insert(op);
    }
    op = following;
  }
  for (mlir::Operation* op : llvm::reverse(run)) op->erase();
}

struct KilnOutlineKernels : impl::KilnOutlineKernelsBase<KilnOutlineKernels> {
  using Base::Base;
  void runOnOperation() override {
    mlir::ModuleOp module = getOperation();
    mlir::SymbolTable symbols(module);
    llvm::SmallVector<mlir::func::FuncOp> funcs;
    for (auto f : module.getOps<mlir::func::FuncOp>())
      // (A stack allocation cannot move into a function called before its uses.)
      if (!f.isExternal() && !f.isPrivate() && f.getBody().hasOneBlock() &&
          f.getBody().front().getOps<mlir::memref::AllocaOp>().empty())
        funcs.push_back(f);
    int64_t perFunction = std::max<int64_t>(kernelsPerFunction, 1);
    for (mlir::func::FuncOp f : funcs) {
      mlir::Block& block = f.getBody().front();
      int64_t kernels = llvm::count_if(block, [](mlir::Operation& op) { return isKernel(&op); });
      if (kernels < 2 * perFunction) continue;
      // Runs of the non-recomputable ops (the terminator excepted) holding
      // kernelsPerFunction kernels each (the last one the rest).
      llvm::SmallVector<llvm::SmallVector<mlir::Operation*>> runs(1);
      int64_t inRun = 0;
      for (mlir::Operation& op : block.without_terminator()) {
        if (isRecomputable(&op)) continue;
        if (isKernel(&op) && inRun == perFunction) runs.emplace_back(), inRun = 0;
        runs.back().push_back(&op);
        if (isKernel(&op)) ++inRun;
      }
      int index = 0;
      for (llvm::ArrayRef<mlir::Operation*> run : runs)
        if (!run.empty()) outline(run, f, (f.getSymName() + "_part_" + llvm::Twine(index++)).str(), symbols);
      // Recomputable ops left without users (their uses were all cloned into the runs).
      for (mlir::Operation& op : llvm::make_early_inc_range(llvm::reverse(block)))
        if (isRecomputable(&op) && op.use_empty()) op.erase();
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
