// kilnc's --threads: the thread count argument of the compiled functions and an OpenMP runtime over pthreads.
#include "Threads.h"

#include <fmt/format.h>

#include <set>

#include "kiln/error.h"
#include "llvm/IR/CFG.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InstIterator.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Module.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"

namespace kilnc {

void add_thread_count_argument(mlir::func::FuncOp func) {
  mlir::Type i32 = mlir::IntegerType::get(func.getContext(), 32);
  if (mlir::failed(func.insertArgument(func.getNumArguments(), i32, {}, func.getLoc())))
    throw kiln::Error("kilnc: internal error: cannot add the thread count argument to @" + func.getName().str());
}

void use_thread_count_argument(mlir::ModuleOp module, llvm::StringRef symbol) {
  auto func = module.lookupSymbol<mlir::LLVM::LLVMFuncOp>(symbol);
  if (!func || func.isExternal()) throw kiln::Error("kilnc: internal error: no compiled function " + symbol.str());
  mlir::Value count;
  for (mlir::BlockArgument arg : func.getArguments())
    if (arg.getType().isInteger(32)) {
      if (count) throw kiln::Error("kilnc: internal error: " + symbol.str() + " has two i32 arguments");
      count = arg;
    }
  if (!count) throw kiln::Error("kilnc: internal error: " + symbol.str() + " has no thread count argument");
  func.walk([&](mlir::omp::ParallelOp parallel) { parallel.getNumThreadsMutable().assign(count); });
}

// ---- the OpenMP runtime calls over pthreads ----
//
// What the translation of omp.parallel + omp.wsloop (static schedule) emits, and what replaces it:
//   __kmpc_push_num_threads(ident, gtid, n); __kmpc_fork_call(ident, 1, microtask, args)
//       -> kilnc.parallel(n, microtask, args): threads 1..n-1 by pthread_create, thread 0 on
//          the caller, then pthread_join; a thread that cannot be started runs on the caller
//          after its own part (a static schedule makes the results independent of who runs a part).
//   __kmpc_global_thread_num(ident) -> in a microtask, its gtid argument; elsewhere thread 0 of 1.
//       A gtid encodes (thread index, team size) as tid | n << 16: the runtime keeps no state.
//   __kmpc_for_static_init_{4,4u,8,8u}(ident, gtid, 34, last, lower, upper, stride, 1, 0)
//       -> this thread's contiguous block of the iterations (libomp's balanced split).
//   __kmpc_for_static_fini -> nothing; __kmpc_barrier at the end of a microtask -> nothing
//       (the join is the barrier); a barrier with work after it is refused.

namespace {

using namespace llvm;

constexpr int64_t kMaxThreads = 4096;  // a gtid holds the team size in 16 bits
constexpr int kStaticSchedule = 34;    // kmp_sch_static

[[noreturn]] void unsupported(const std::string& what) {
  throw kiln::Error("kilnc: --threads=pthread: " + what + " (use --threads=openmp)");
}

class PthreadRuntime {
 public:
  explicit PthreadRuntime(Module& m) : m_(m), ctx_(m.getContext()), b_(ctx_) {
    i32_ = Type::getInt32Ty(ctx_);
    i64_ = Type::getInt64Ty(ctx_);
    ptr_ = PointerType::getUnqual(ctx_);
  }

  void run() {
    std::vector<CallInst*> forks, pushes, threadNums, barriers, finis;
    std::map<std::string, std::vector<CallInst*>> staticInits;
    for (Function& f : m_)
      for (Instruction& i : instructions(f)) {
        auto* call = dyn_cast<CallInst>(&i);
        Function* callee = call ? call->getCalledFunction() : nullptr;
        if (!callee || !callee->isDeclaration()) continue;
        StringRef name = callee->getName();
        if (!name.starts_with("__kmpc_") && !name.starts_with("omp_")) continue;
        if (name == "__kmpc_fork_call") forks.push_back(call);
        else if (name == "__kmpc_push_num_threads") pushes.push_back(call);
        else if (name == "__kmpc_global_thread_num") threadNums.push_back(call);
        else if (name == "__kmpc_barrier") barriers.push_back(call);
        else if (name == "__kmpc_for_static_fini") finis.push_back(call);
        else if (name == "__kmpc_for_static_init_4" || name == "__kmpc_for_static_init_4u" ||
                 name == "__kmpc_for_static_init_8" || name == "__kmpc_for_static_init_8u")
          staticInits[name.str()].push_back(call);
        else
          unsupported("the OpenMP runtime function " + name.str() + " is not implemented");
      }
    if (forks.empty() && staticInits.empty()) {
      eraseDeclarations();
      return;
    }
    Function* parallel = buildParallel();
    std::set<Function*> microtasks;
    for (CallInst* fork : forks) {
      auto* argc = dyn_cast<ConstantInt>(fork->getArgOperand(1));
      auto* microtask = dyn_cast<Function>(fork->getArgOperand(2)->stripPointerCasts());
      if (!argc || argc->getZExtValue() != 1 || fork->arg_size() != 4 || !microtask)
        unsupported("a parallel region that does not pass one argument structure");
      microtasks.insert(microtask);
      b_.SetInsertPoint(fork);
      b_.CreateCall(parallel, {threadCountOf(fork, pushes), microtask, fork->getArgOperand(3)});
      fork->eraseFromParent();
    }
    for (CallInst* push : pushes) push->eraseFromParent();
    for (CallInst* call : threadNums) {
      Function* f = call->getFunction();
      Value* gtid = nullptr;
      b_.SetInsertPoint(call);
      if (microtasks.count(f))
        gtid = b_.CreateLoad(i32_, f->getArg(0));
      else
        gtid = ConstantInt::get(i32_, 1 << 16);  // thread 0 of a team of 1
      call->replaceAllUsesWith(gtid);
      call->eraseFromParent();
    }
    for (CallInst* barrier : barriers) {
      if (!endsRegion(barrier))
        unsupported("a barrier inside a parallel region (" + barrier->getFunction()->getName().str() + ")");
      barrier->eraseFromParent();
    }
    for (CallInst* fini : finis) fini->eraseFromParent();
    for (auto& [name, calls] : staticInits) {
      Function* init = buildStaticInit(name);
      for (CallInst* call : calls) {
        auto* schedule = dyn_cast<ConstantInt>(call->getArgOperand(2));
        auto* increment = dyn_cast<ConstantInt>(call->getArgOperand(7));
        auto* chunk = dyn_cast<ConstantInt>(call->getArgOperand(8));
        if (!schedule || schedule->getSExtValue() != kStaticSchedule || !increment || !increment->isOne() ||
            !chunk || !chunk->isZero())
          unsupported("a worksharing loop that is not statically scheduled with step 1");
        call->setCalledFunction(init);
      }
    }
    eraseDeclarations();
  }

 private:
  // The n of the __kmpc_push_num_threads before `fork` (in its block or the ones leading to it).
  Value* threadCountOf(CallInst* fork, const std::vector<CallInst*>& pushes) {
    BasicBlock* block = fork->getParent();
    BasicBlock::iterator it = fork->getIterator();
    for (int depth = 0; block && depth < 8; ++depth) {
      while (it != block->begin()) {
        --it;
        for (CallInst* push : pushes)
          if (&*it == push) return push->getArgOperand(2);
      }
      block = block->getSinglePredecessor();
      if (block) it = block->end();
    }
    unsupported("a parallel region without a thread count");
  }

  // Whether nothing but control flow follows `barrier` up to the microtask's return.
  static bool endsRegion(CallInst* barrier) {
    std::vector<BasicBlock*> work;
    std::set<BasicBlock*> seen;
    auto scan = [&](BasicBlock::iterator from, BasicBlock* block) {
      for (auto it = from; it != block->end(); ++it) {
        if (it->mayHaveSideEffects() || it->mayReadFromMemory()) return false;
        if (it->isTerminator())
          for (BasicBlock* next : successors(block))
            if (seen.insert(next).second) work.push_back(next);
      }
      return true;
    };
    if (!scan(std::next(barrier->getIterator()), barrier->getParent())) return false;
    while (!work.empty()) {
      BasicBlock* block = work.back();
      work.pop_back();
      if (!scan(block->begin(), block)) return false;
    }
    return true;
  }

  void eraseDeclarations() {
    std::vector<Function*> dead;
    for (Function& f : m_)
      if (f.isDeclaration() && f.use_empty() &&
          (f.getName().starts_with("__kmpc_") || f.getName().starts_with("omp_")))
        dead.push_back(&f);
    for (Function* f : dead) f->eraseFromParent();
  }

  Function* internal(const std::string& name, Type* ret, ArrayRef<Type*> params) {
    auto* f = Function::Create(FunctionType::get(ret, params, false), GlobalValue::InternalLinkage, name, m_);
    f->addFnAttr(Attribute::NoUnwind);
    b_.SetInsertPoint(BasicBlock::Create(ctx_, "entry", f));
    return f;
  }
  Constant* c32(int64_t v) { return ConstantInt::get(i32_, v); }
  Constant* c64(int64_t v) { return ConstantInt::get(i64_, v); }

  // One thread's record: {pthread_t, started (i32), gtid (i32), microtask, args}.
  StructType* recordType() {
    return StructType::get(ctx_, {i64_, i32_, i32_, ptr_, ptr_});
  }
  Value* field(Value* record, unsigned i) { return b_.CreateStructGEP(recordType(), record, i); }

  void callMicrotask(Value* record) {
    Value* gtid = field(record, 2);
    Value* fn = b_.CreateLoad(ptr_, field(record, 3));
    Value* args = b_.CreateLoad(ptr_, field(record, 4));
    FunctionType* type = FunctionType::get(Type::getVoidTy(ctx_), {ptr_, ptr_, ptr_}, false);
    b_.CreateCall(type, fn, {gtid, gtid, args});
  }

  // void* kilnc.worker(void* record)
  Function* buildWorker() {
    Function* f = internal("kilnc.worker", ptr_, {ptr_});
    callMicrotask(f->getArg(0));
    b_.CreateRet(ConstantPointerNull::get(ptr_));
    return f;
  }

  // void kilnc.parallel(i32 n, ptr microtask, ptr args)
  Function* buildParallel() {
    Function* worker = buildWorker();
    FunctionCallee create = m_.getOrInsertFunction("pthread_create", i32_, ptr_, ptr_, ptr_, ptr_);
    FunctionCallee join = m_.getOrInsertFunction("pthread_join", i32_, i64_, ptr_);
    FunctionCallee mallocFn = m_.getOrInsertFunction("malloc", ptr_, i64_);
    FunctionCallee freeFn = m_.getOrInsertFunction("free", Type::getVoidTy(ctx_), ptr_);
    Function* f = internal("kilnc.parallel", Type::getVoidTy(ctx_), {i32_, ptr_, ptr_});
    BasicBlock* entry = &f->getEntryBlock();
    auto block = [&](const char* name) { return BasicBlock::Create(ctx_, name, f); };
    BasicBlock *team = block("team"), *alone = block("alone"), *spawn = block("spawn"), *spawnBody = block("spawn.body"),
               *master = block("master"), *joinHead = block("join"), *joinBody = block("join.body"),
               *inlineRun = block("inline"), *joinNext = block("join.next"), *done = block("done");
    // n = clamp(n, 1, kMaxThreads); one record per thread, the caller's first.
    Value* n = f->getArg(0);
    n = b_.CreateSelect(b_.CreateICmpSLT(n, c32(1)), c32(1), n);
    n = b_.CreateSelect(b_.CreateICmpSGT(n, c32(kMaxThreads)), c32(kMaxThreads), n);
    Value* n64 = b_.CreateZExt(n, i64_);
    uint64_t recordBytes = m_.getDataLayout().getTypeAllocSize(recordType());
    Value* records = b_.CreateCall(mallocFn, {b_.CreateMul(n64, c64(recordBytes))});
    // Out of memory, or one thread: the whole loop on the caller (thread 0 of 1).
    b_.CreateCondBr(b_.CreateOr(b_.CreateICmpEQ(records, ConstantPointerNull::get(ptr_)), b_.CreateICmpEQ(n, c32(1))),
                    alone, team);
    b_.SetInsertPoint(alone);
    AllocaInst* single;
    {
      IRBuilder<> at(entry, entry->begin());
      single = at.CreateAlloca(recordType());
    }
    b_.CreateStore(c32(1 << 16), field(single, 2));
    b_.CreateStore(f->getArg(1), field(single, 3));
    b_.CreateStore(f->getArg(2), field(single, 4));
    callMicrotask(single);
    b_.CreateCall(freeFn, {records});  // free(NULL) is fine
    b_.CreateRetVoid();

    b_.SetInsertPoint(team);
    Value* teamBits = b_.CreateShl(n, c32(16));
    b_.CreateBr(spawn);
    // for i in [0, n): fill record i; start threads 1..n-1.
    b_.SetInsertPoint(spawn);
    PHINode* i = b_.CreatePHI(i32_, 2);
    i->addIncoming(c32(0), team);
    b_.CreateCondBr(b_.CreateICmpSLT(i, n), spawnBody, master);
    b_.SetInsertPoint(spawnBody);
    Value* record = b_.CreateGEP(recordType(), records, b_.CreateZExt(i, i64_));
    b_.CreateStore(b_.CreateOr(i, teamBits), field(record, 2));
    b_.CreateStore(f->getArg(1), field(record, 3));
    b_.CreateStore(f->getArg(2), field(record, 4));
    Value* started = b_.getFalse();
    {
      BasicBlock* start = block("start");
      BasicBlock* after = block("started");
      BasicBlock* from = b_.GetInsertBlock();
      b_.CreateCondBr(b_.CreateICmpEQ(i, c32(0)), after, start);
      b_.SetInsertPoint(start);
      Value* rc = b_.CreateCall(create, {field(record, 0), ConstantPointerNull::get(ptr_), worker, record});
      Value* ok = b_.CreateICmpEQ(rc, c32(0));
      b_.CreateBr(after);
      b_.SetInsertPoint(after);
      PHINode* phi = b_.CreatePHI(b_.getInt1Ty(), 2);
      phi->addIncoming(b_.getFalse(), from);
      phi->addIncoming(ok, start);
      started = phi;
    }
    b_.CreateStore(b_.CreateZExt(started, i32_), field(record, 1));
    Value* nextI = b_.CreateAdd(i, c32(1));
    i->addIncoming(nextI, b_.GetInsertBlock());
    b_.CreateBr(spawn);
    // Thread 0's part on the caller.
    b_.SetInsertPoint(master);
    callMicrotask(records);
    b_.CreateBr(joinHead);
    // for j in [1, n): join a started thread, or run its part here.
    b_.SetInsertPoint(joinHead);
    PHINode* j = b_.CreatePHI(i32_, 2);
    j->addIncoming(c32(1), master);
    b_.CreateCondBr(b_.CreateICmpSLT(j, n), joinBody, done);
    b_.SetInsertPoint(joinBody);
    Value* other = b_.CreateGEP(recordType(), records, b_.CreateZExt(j, i64_));
    BasicBlock* joinIt = block("join.thread");
    b_.CreateCondBr(b_.CreateICmpNE(b_.CreateLoad(i32_, field(other, 1)), c32(0)), joinIt, inlineRun);
    b_.SetInsertPoint(joinIt);
    b_.CreateCall(join, {b_.CreateLoad(i64_, field(other, 0)), ConstantPointerNull::get(ptr_)});
    b_.CreateBr(joinNext);
    b_.SetInsertPoint(inlineRun);
    callMicrotask(other);
    b_.CreateBr(joinNext);
    b_.SetInsertPoint(joinNext);
    j->addIncoming(b_.CreateAdd(j, c32(1)), joinNext);
    b_.CreateBr(joinHead);
    b_.SetInsertPoint(done);
    b_.CreateCall(freeFn, {records});
    b_.CreateRetVoid();
    return f;
  }

  // void init(ptr ident, i32 gtid, i32 schedule, ptr last, ptr lower, ptr upper, ptr stride, iN incr, iN chunk):
  // [lower, upper] (inclusive) becomes this thread's block; *last = whether it holds the last iteration.
  Function* buildStaticInit(const std::string& name) {
    Type* t = name.find("_8") != std::string::npos ? i64_ : i32_;
    Function* f = internal("kilnc.static_init" + name.substr(std::string("__kmpc_for_static_init").size()),
                           Type::getVoidTy(ctx_), {ptr_, i32_, i32_, ptr_, ptr_, ptr_, ptr_, t, t});
    Value* gtid = f->getArg(1);
    Value* tid = b_.CreateZExt(b_.CreateAnd(gtid, c32(0xffff)), t);
    Value* n = b_.CreateZExt(b_.CreateLShr(gtid, c32(16)), t);
    Value* lower = b_.CreateLoad(t, f->getArg(4));
    Value* upper = b_.CreateLoad(t, f->getArg(5));
    Value* trip = b_.CreateAdd(b_.CreateSub(upper, lower), ConstantInt::get(t, 1));
    Value* chunk = b_.CreateUDiv(trip, n);
    Value* extra = b_.CreateURem(trip, n);
    Value* before = b_.CreateAdd(b_.CreateMul(tid, chunk), b_.CreateSelect(b_.CreateICmpULT(tid, extra), tid, extra));
    Value* count = b_.CreateAdd(chunk, b_.CreateZExt(b_.CreateICmpULT(tid, extra), t));
    Value* myLower = b_.CreateAdd(lower, before);
    Value* myUpper = b_.CreateSub(b_.CreateAdd(myLower, count), ConstantInt::get(t, 1));
    b_.CreateStore(myLower, f->getArg(4));
    b_.CreateStore(myUpper, f->getArg(5));
    b_.CreateStore(trip, f->getArg(6));
    Value* last = b_.CreateAnd(b_.CreateICmpNE(count, ConstantInt::get(t, 0)),
                               b_.CreateICmpEQ(b_.CreateAdd(before, count), trip));
    b_.CreateStore(b_.CreateZExt(last, i32_), f->getArg(3));
    b_.CreateRetVoid();
    return f;
  }

  Module& m_;
  LLVMContext& ctx_;
  IRBuilder<> b_;
  Type *i32_, *i64_;
  PointerType* ptr_;
};

}  // namespace

void implement_openmp_with_pthreads(llvm::Module& module) { PthreadRuntime(module).run(); }

}  // namespace kilnc
