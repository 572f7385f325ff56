// -kiln-outline-kernels: when a large bufferized function's kernels repeat, each moves into
// a private function taking its buffers as arguments, structurally equal ones merged into
// one (an unrolled time loop's steps share their kernels); then its kernels or calls, a run
// at a time, move into private functions, so that LLVM optimizes and compiles each distinct
// kernel once and its time on the rest stays about linear in the function's size.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "kiln/codegen/cpu.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/OperationSupport.h"
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

// A kernel that becomes loops: an op with regions, or a memref.copy of a strided view
// (-kiln-lower-strided-copies makes it a linalg.copy; the others become memcpy).
bool isLoopKernel(mlir::Operation* op) {
  if (auto copy = mlir::dyn_cast<mlir::memref::CopyOp>(op))
    return llvm::any_of(copy->getOperands(), [](mlir::Value v) {
      auto type = mlir::dyn_cast<mlir::MemRefType>(v.getType());
      return type && !type.getLayout().isIdentity();
    });
  return isKernel(op) && op->getNumRegions() > 0;
}

// Clones into `b` the recomputable op defining `v` (after those defining its operands),
// unless `mapping` has it already; a value of any other op or a block argument becomes
// an argument, appended to `inputs`, and so does a buffer (a memref) when
// `captureBuffers`: then which views of the arena a kernel reads and writes are its
// arguments, not part of its body.
void cloneOrCapture(mlir::Value v, mlir::OpBuilder& b, mlir::IRMapping& mapping,
                    llvm::SetVector<mlir::Value>& inputs, bool captureBuffers) {
  if (mapping.contains(v) || inputs.contains(v)) return;
  mlir::Operation* def = v.getDefiningOp();
  if (!def || !isRecomputable(def) || (captureBuffers && mlir::isa<mlir::MemRefType>(v.getType()))) {
    inputs.insert(v);
    return;
  }
  for (mlir::Value operand : def->getOperands()) cloneOrCapture(operand, b, mapping, inputs, captureBuffers);
  b.clone(*def, mapping);
}

// The type a kernel's buffer argument takes: a strided view's with its offset dynamic,
// when every use of `v` in `kernel` is an operand of a linalg op, a memref.copy or a
// memref.dim (which take any layout; other ops' result types follow their operands'), so
// that views at
// different offsets (the gates of an LSTM, a time step's slice) pass to one function.
mlir::Type argumentType(mlir::Value v, mlir::func::FuncOp kernel) {
  auto type = mlir::dyn_cast<mlir::MemRefType>(v.getType());
  auto layout = type ? mlir::dyn_cast<mlir::StridedLayoutAttr>(type.getLayout()) : nullptr;
  if (!layout || mlir::ShapedType::isDynamic(layout.getOffset())) return v.getType();
  for (mlir::OpOperand& use : v.getUses()) {
    mlir::Operation* user = use.getOwner();
    if (!kernel->isProperAncestor(user)) continue;
    bool anyLayout = mlir::isa<mlir::linalg::LinalgOp, mlir::memref::CopyOp>(user) && user->getParentOp() == kernel.getOperation();
    if (!anyLayout && !mlir::isa<mlir::memref::DimOp>(user)) return v.getType();
  }
  auto dynamic = mlir::StridedLayoutAttr::get(type.getContext(), mlir::ShapedType::kDynamic, layout.getStrides());
  return mlir::MemRefType::get(type.getShape(), type.getElementType(), dynamic, type.getMemorySpace());
}

// Moves the ops of `run` (top-level ops of `parent`'s body, in order, none of them
// recomputable) into a new private function @name placed before `parent`, called after
// the last of them, and returns it. The function takes the values the run uses from
// outside, except those of recomputable ops, which it recomputes (buffers too unless
// `captureBuffers`: then a buffer is an argument, a strided view's offset dynamic where
// argumentType allows), and returns the run's results used after it. The recomputable
// ops between the run's ops move after the call, which is returned.
mlir::func::CallOp outline(llvm::ArrayRef<mlir::Operation*> run, mlir::func::FuncOp parent, llvm::StringRef name,
                           mlir::SymbolTable& symbols, bool captureBuffers) {
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
      if (!inside.contains(v.getDefiningOp())) cloneOrCapture(v, b, mapping, inputs, captureBuffers);
    b.clone(*op, mapping);
    for (mlir::Value r : op->getResults())
      if (llvm::any_of(r.getUsers(), [&](mlir::Operation* user) {
            return !inside.contains(block.findAncestorOpInBlock(*user));
          }))
        results.push_back(r);
  }
  // The arguments, in the order first used, replace their placeholders in the clones.
  llvm::SmallVector<mlir::Value> operands;
  mlir::OpBuilder site(parent.getContext());
  site.setInsertionPointAfter(run.back());
  for (mlir::Value v : inputs) {
    mlir::Type type = captureBuffers ? argumentType(v, kernel) : v.getType();
    mlir::BlockArgument arg = body->addArgument(type, v.getLoc());
    v.replaceUsesWithIf(arg, [&](mlir::OpOperand& use) { return kernel->isProperAncestor(use.getOwner()); });
    operands.push_back(type == v.getType() ? v : mlir::memref::CastOp::create(site, v.getLoc(), type, v).getResult());
  }
  llvm::SmallVector<mlir::Value> returned;
  for (mlir::Value r : results) returned.push_back(mapping.lookup(r));
  mlir::func::ReturnOp::create(b, run.back()->getLoc(), returned);
  kernel.setFunctionType(b.getFunctionType(body->getArgumentTypes(), mlir::ValueRange(returned).getTypes()));
  symbols.insert(kernel);

  auto call = mlir::func::CallOp::create(site, run.front()->getLoc(), kernel, operands);
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
  return call;
}

// A hash of `f`'s type and body that ignores which values its ops use (and locations), so
// that structurally equal functions hash alike.
llvm::hash_code structuralHash(mlir::func::FuncOp f) {
  llvm::hash_code hash = mlir::hash_value(f.getFunctionType());
  f.getBody().walk([&](mlir::Operation* op) {
    hash = llvm::hash_combine(hash, mlir::OperationEquivalence::computeHash(
                                        op, mlir::OperationEquivalence::ignoreHashValue,
                                        mlir::OperationEquivalence::ignoreHashValue,
                                        mlir::OperationEquivalence::IgnoreLocations));
  });
  return hash;
}

// Whether `a` and `b` compute the same: equal types, and bodies equal op for op (names,
// attributes, types) with the same uses of the arguments and of each other's results.
bool structurallyEqual(mlir::func::FuncOp a, mlir::func::FuncOp b) {
  return a.getFunctionType() == b.getFunctionType() &&
         mlir::OperationEquivalence::isRegionEquivalentTo(&a.getBody(), &b.getBody(),
                                                          mlir::OperationEquivalence::IgnoreLocations);
}

// A hash of a kernel and the ops inside it that ignores which values they use, their
// locations, kiln.kernel names and the static offsets of strided views (as argumentType
// does): kernels that outlineEachKernel would merge hash alike.
llvm::hash_code kernelHash(mlir::Operation* kernel) {
  llvm::hash_code hash = llvm::hash_value(0);
  auto hashType = [&](mlir::Type type) {
    auto memref = mlir::dyn_cast<mlir::MemRefType>(type);
    auto layout = memref ? mlir::dyn_cast<mlir::StridedLayoutAttr>(memref.getLayout()) : nullptr;
    hash = layout ? llvm::hash_combine(hash, memref.getShape(), memref.getElementType(), layout.getStrides())
                  : llvm::hash_combine(hash, type);
  };
  kernel->walk([&](mlir::Operation* op) {
    hash = llvm::hash_combine(hash, op->getName(), op->getNumRegions());
    for (mlir::NamedAttribute attr : op->getAttrs())
      if (attr.getName() != "kiln.kernel") hash = llvm::hash_combine(hash, attr.getName(), attr.getValue());
    for (mlir::Type type : op->getOperandTypes()) hashType(type);
    for (mlir::Type type : op->getResultTypes()) hashType(type);
  });
  return hash;
}

// Whether at least half of `block`'s kernels that become loops repeat an earlier one (by
// kernelHash): only then does a function per kernel save LLVM more than it costs (calls,
// argument descriptors; a graph of distinct kernels compiles as fast without).
bool kernelsRepeat(mlir::Block& block) {
  std::unordered_set<size_t> distinct;
  int64_t kernels = 0;
  for (mlir::Operation& op : block)
    if (isLoopKernel(&op)) ++kernels, distinct.insert(static_cast<size_t>(kernelHash(&op)));
  return 2 * static_cast<int64_t>(distinct.size()) <= kernels;
}

// Moves each kernel that becomes loops (isLoopKernel) of `f`'s body into a private
// function @<f>_kernel_<i> taking its buffers as arguments; a kernel structurally equal to
// one outlined before calls that one's function instead (the steps of an unrolled time
// loop: the same bodies on other views of the arena). The kernels' `kiln.kernel` names go
// (their locations, which KILN_PROFILE's names come from, stay at the call sites' profile
// calls, made before). Returns the number of distinct kernels.
int64_t outlineEachKernel(mlir::func::FuncOp f, mlir::SymbolTable& symbols) {
  llvm::SmallVector<mlir::Operation*> kernels;
  for (mlir::Operation& op : f.getBody().front().without_terminator())
    if (isLoopKernel(&op)) kernels.push_back(&op);
  std::unordered_map<size_t, llvm::SmallVector<mlir::func::FuncOp, 1>> distinct;
  int64_t count = 0;
  for (mlir::Operation* op : kernels) {
    mlir::func::CallOp call = outline(op, f, (f.getSymName() + "_kernel_" + llvm::Twine(count)).str(), symbols, true);
    auto kernel = symbols.lookup<mlir::func::FuncOp>(call.getCallee());
    kernel.walk([](mlir::Operation* inner) { inner->removeAttr("kiln.kernel"); });
    llvm::SmallVector<mlir::func::FuncOp, 1>& same = distinct[structuralHash(kernel)];
    auto equal = llvm::find_if(same, [&](mlir::func::FuncOp other) { return structurallyEqual(other, kernel); });
    if (equal != same.end()) {
      call.setCallee(equal->getSymName());
      symbols.erase(kernel);
    } else {
      same.push_back(kernel);
      ++count;
    }
  }
  return count;
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
      int64_t kernels = llvm::count_if(block, [](mlir::Operation& op) { return isKernel(&op) || isLoopKernel(&op); });
      if (kernels < 2 * perFunction) continue;
      if (mergeKernels && kernelsRepeat(block)) outlineEachKernel(f, symbols);
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
        if (!run.empty()) outline(run, f, (f.getSymName() + "_part_" + llvm::Twine(index++)).str(), symbols, false);
      // Recomputable ops left without users (their uses were all cloned into the runs).
      for (mlir::Operation& op : llvm::make_early_inc_range(llvm::reverse(block)))
        if (isRecomputable(&op) && op.use_empty()) op.erase();
    }
  }
};

}  // namespace
}  // namespace kiln::cpu
