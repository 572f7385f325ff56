// kilnc's C ABI: embedded weights, the C entry points around the compiled functions (LLVM IR), and their header.
#include "CEntryPoints.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "kiln/error.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/Module.h"

namespace kilnc {

int64_t TensorSpec::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d < 0 ? 1 : d;
  return n;
}
int64_t TensorSpec::bytes() const { return elements() * static_cast<int64_t>(kiln::dtype_size(dtype)); }

bool FunctionSpec::has_batch() const {
  for (const TensorSpec& t : args)
    for (int64_t d : t.shape)
      if (d < 0) return true;
  return false;
}

const char* c_type(kiln::DType dtype) {
  switch (dtype) {
    case kiln::DType::f32: return "float";
    case kiln::DType::f64: return "double";
    case kiln::DType::i32: return "int32_t";
    case kiln::DType::i64: return "int64_t";
    case kiln::DType::b8: return "uint8_t";
  }
  return "void";
}

namespace {

using namespace llvm;

int64_t align64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// Return codes of the entry points (the header documents them).
constexpr int kBadArgument = 1;
constexpr int kCheckFailed = 2;

class EntryBuilder {
 public:
  EntryBuilder(Module& module, const ModelSpec& model)
      : m_(module), ctx_(module.getContext()), model_(model), b_(ctx_) {
    i8_ = Type::getInt8Ty(ctx_);
    i32_ = Type::getInt32Ty(ctx_);
    i64_ = Type::getInt64Ty(ctx_);
    ptr_ = PointerType::getUnqual(ctx_);
  }

  void build() {
    if (model_.step) buildSlots();
    if (model_.cuda) buildCudaPlan();
    if (model_.step) {
      buildCreate();
      buildDestroy();
      buildStep();
      buildParamQueries();
    }
    if (model_.forward) {
      buildForward();
      buildShapeQueries();
    }
    if (model_.cuda) {
      define(model_.name + "_last_error", ptr_, {});
      b_.CreateRet(b_.CreateCall(executor("kilnc_cuda_last_error", ptr_, {})));
    }
  }

 private:
  // ---- helpers ----
  // An entry point taking `params`. With threads it is <name>_threads(int nthreads, params...),
  // which returns kBadArgument for nthreads <= 0, and finishThreaded adds <name>(params...)
  // calling it with one thread. `first` is the index of params[0]; threads_ the count.
  Function* defineThreaded(const std::string& name, ArrayRef<Type*> params, unsigned* first) {
    if (!model_.threaded) {
      *first = 0;
      threads_ = nullptr;
      return define(name, i32_, params);
    }
    std::vector<Type*> all{i32_};
    all.insert(all.end(), params.begin(), params.end());
    Function* fn = define(name + "_threads", i32_, all);
    *first = 1;
    threads_ = fn->getArg(0);
    returnIf(b_.CreateICmpSLE(threads_, c32(0)), c32(kBadArgument));
    return fn;
  }
  void finishThreaded(Function* threaded, const std::string& name) {
    if (!model_.threaded) return;
    std::vector<Type*> params;
    for (unsigned i = 1; i < threaded->arg_size(); ++i) params.push_back(threaded->getArg(i)->getType());
    Function* fn = define(name, i32_, params);
    std::vector<Value*> args{c32(1)};
    for (Argument& a : fn->args()) args.push_back(&a);
    b_.CreateRet(b_.CreateCall(threaded, args));
  }

  Function* define(const std::string& name, Type* ret, ArrayRef<Type*> params) {
    if (m_.getFunction(name))
      throw kiln::Error("kilnc: the symbol " + name + " is defined twice (does --name clash with a compiled function?)");
    auto* f = Function::Create(FunctionType::get(ret, params, false), GlobalValue::ExternalLinkage, name, m_);
    f->addFnAttr(Attribute::NoUnwind);
    entry_ = BasicBlock::Create(ctx_, "entry", f);
    b_.SetInsertPoint(entry_);
    return f;
  }
  FunctionCallee libc(const char* name, Type* ret, ArrayRef<Type*> params) {
    return m_.getOrInsertFunction(name, FunctionType::get(ret, params, false));
  }
  Constant* c64(int64_t v) { return ConstantInt::get(i64_, v); }
  Constant* c32(int64_t v) { return ConstantInt::get(i32_, v); }
  AllocaInst* alloca(Type* type) {
    IRBuilder<> at(entry_, entry_->begin());
    return at.CreateAlloca(type);
  }
  // Returns `code` from the function when `bad` holds; continues otherwise.
  void returnIf(Value* bad, Value* code) {
    Function* f = b_.GetInsertBlock()->getParent();
    auto* fail = BasicBlock::Create(ctx_, "fail", f);
    auto* ok = BasicBlock::Create(ctx_, "ok", f);
    b_.CreateCondBr(bad, fail, ok);
    b_.SetInsertPoint(fail);
    b_.CreateRet(code);
    b_.SetInsertPoint(ok);
  }
  Value* isNull(Value* p) { return b_.CreateICmpEQ(p, ConstantPointerNull::get(ptr_)); }

  GlobalVariable* weight(const std::string& name) {
    auto it = weights_.find(name);
    if (it != weights_.end()) return it->second;
    const kiln::Array& a = model_.weights.at(name);
    StringRef data(static_cast<const char*>(a.raw_data()), a.nbytes());
    Constant* init = ConstantDataArray::getRaw(data, a.nbytes(), i8_);
    auto* g = new GlobalVariable(m_, init->getType(), /*isConstant=*/true, GlobalValue::PrivateLinkage, init,
                                 model_.name + ".weight." + name);
    g->setAlignment(Align(64));
    g->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    weights_[name] = g;
    return g;
  }
  GlobalVariable* constantTable(ArrayRef<int64_t> values, const std::string& name) {
    auto* type = ArrayType::get(i64_, values.size());
    std::vector<Constant*> items;
    for (int64_t v : values) items.push_back(c64(v));
    auto* g = new GlobalVariable(m_, type, true, GlobalValue::PrivateLinkage, ConstantArray::get(type, items), name);
    g->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
    return g;
  }
  Value* tableAt(GlobalVariable* table, Value* index) {
    return b_.CreateLoad(i64_, b_.CreateGEP(i64_, table, index));
  }

  // A memref descriptor {allocated, aligned, offset, sizes[rank], strides[rank]} of `data` (row-major).
  Value* descriptor(Value* data, const TensorSpec& t, Value* batch) {
    unsigned rank = static_cast<unsigned>(t.shape.size());
    AllocaInst* d = alloca(ArrayType::get(i64_, 3 + 2 * rank));
    auto word = [&](unsigned w) { return b_.CreateConstGEP1_64(i64_, d, w); };
    b_.CreateStore(data, word(0));
    b_.CreateStore(data, word(1));
    b_.CreateStore(c64(0), word(2));
    Value* stride = c64(1);
    for (unsigned i = rank; i-- > 0;) {
      Value* size = t.shape[i] < 0 ? batch : static_cast<Value*>(c64(t.shape[i]));
      b_.CreateStore(size, word(3 + i));
      b_.CreateStore(stride, word(3 + rank + i));
      stride = b_.CreateMul(stride, size);
    }
    return d;
  }

  // Bad batch: <= 0, or not the traced one for a function whose batch stayed concrete.
  void checkBatch(const FunctionSpec& f, Value* batch) {
    if (f.static_batch > 0)
      returnIf(b_.CreateICmpNE(batch, c64(f.static_batch)), c32(kBadArgument));
    else
      returnIf(b_.CreateICmpSLE(batch, c64(0)), c32(kBadArgument));
  }

  // Calls f's C interface with `args` and `results` (data pointers; null for a status,
  // which gets a local buffer), then returns kCheckFailed if a run-time check failed.
  void callFunction(const FunctionSpec& f, const std::vector<Value*>& args, const std::vector<Value*>& results,
                    Value* batch) {
    Function* callee = m_.getFunction(f.ciface);
    if (!callee) throw kiln::Error("kilnc: internal error: the compiled module has no " + f.ciface);
    size_t expected = args.size() + results.size() + (model_.threaded ? 1 : 0);
    if (callee->arg_size() != expected)
      throw kiln::Error(fmt::format("kilnc: internal error: {} takes {} arguments, {} expected", f.ciface,
                                    callee->arg_size(), expected));
    std::vector<Value*> operands, statuses;
    for (size_t i = 0; i < args.size(); ++i) operands.push_back(descriptor(args[i], f.args[i], batch));
    if (model_.threaded) operands.push_back(threads_);  // the thread count follows the arguments
    for (size_t i = 0; i < results.size(); ++i) {
      Value* data = results[i];
      if (f.results[i].role == "status") {
        data = alloca(ArrayType::get(i64_, 2));
        statuses.push_back(data);
      }
      operands.push_back(descriptor(data, f.results[i], batch));
    }
    b_.CreateCall(callee, operands);
    // kiln.check_range's status: (flat index of the first bad element, its value); index -1: none.
    for (Value* status : statuses)
      returnIf(b_.CreateICmpSGE(b_.CreateLoad(i64_, status), c64(0)), c32(kCheckFailed));
  }

  // ---- --target=cuda entry points ----
  FunctionCallee executor(const char* name, Type* ret, ArrayRef<Type*> params) {
    return m_.getOrInsertFunction(name, FunctionType::get(ret, params, false));
  }
  Value* pointerArray(const std::vector<Value*>& list) {
    AllocaInst* array = alloca(ArrayType::get(ptr_, std::max<size_t>(list.size(), 1)));
    for (size_t i = 0; i < list.size(); ++i) b_.CreateStore(list[i], b_.CreateConstGEP1_64(ptr_, array, i));
    return array;
  }
  // Returns the executor's code for function f: kilnc_cuda_forward(inputs[], batch, outputs[])
  // for an inference model (state null), else kilnc_cuda_run(state, function, ...).
  void cudaRun(Value* state, const FunctionSpec& f, const std::vector<Value*>& in, Value* batch,
               const std::vector<Value*>& out) {
    if (!state) {
      b_.CreateRet(b_.CreateCall(executor("kilnc_cuda_forward", i32_, {ptr_, i64_, ptr_}),
                                 {pointerArray(in), batch, pointerArray(out)}));
      return;
    }
    int64_t index = -1;
    for (size_t i = 0; i < model_.cuda->functions.size(); ++i)
      if (model_.cuda->functions[i].spec == &f) index = static_cast<int64_t>(i);
    if (index < 0) throw kiln::Error("kilnc: internal error: the CUDA plan lacks @" + f.name);
    b_.CreateRet(b_.CreateCall(executor("kilnc_cuda_run", i32_, {ptr_, i64_, ptr_, i64_, ptr_}),
                               {state, c64(index), pointerArray(in), batch, pointerArray(out)}));
  }
  // The slots of the executor's state: the training state's (parameters, optimizer state), or
  // an inference model's weights in order of first use.
  std::vector<std::string> cudaSlots() const {
    std::vector<std::string> names;
    for (const Slot& slot : slots_) names.push_back(slot.tensor->name);
    if (!model_.step)
      for (const CudaPlan::Function& f : model_.cuda->functions)
        for (const CudaPlan::Buffer& b : f.buffers)
          if (!b.slot.empty() && std::find(names.begin(), names.end(), b.slot) == names.end()) names.push_back(b.slot);
    return names;
  }

  // ---- inference ----
  // Function parameters: one pointer per input, batch, one pointer per output (plus a
  // leading state for a training module). Embedded weights, or the state's parameters.
  void buildForward() {
    const FunctionSpec& f = *model_.forward;
    bool stateful = model_.step != nullptr;
    std::vector<Type*> params;
    if (stateful) params.push_back(ptr_);
    size_t inputs = 0, outputs = 0;
    for (const TensorSpec& t : f.args)
      if (t.role == "input") ++inputs;
    for (const TensorSpec& t : f.results)
      if (t.role == "output") ++outputs;
    for (size_t i = 0; i < inputs; ++i) params.push_back(ptr_);
    params.push_back(i64_);
    for (size_t i = 0; i < outputs; ++i) params.push_back(ptr_);
    unsigned at = 0;
    Function* fn = defineThreaded(model_.name + "_forward", params, &at);
    Value* state = stateful ? fn->getArg(at++) : nullptr;
    std::vector<Value*> in, out;
    for (size_t i = 0; i < inputs; ++i) in.push_back(fn->getArg(at++));
    Value* batch = fn->getArg(at++);
    for (size_t i = 0; i < outputs; ++i) out.push_back(fn->getArg(at++));
    Value* bad = stateful ? isNull(state) : b_.getFalse();
    for (Value* p : in) bad = b_.CreateOr(bad, isNull(p));
    for (Value* p : out) bad = b_.CreateOr(bad, isNull(p));
    returnIf(bad, c32(kBadArgument));
    checkBatch(f, batch);
    if (model_.cuda) {
      cudaRun(stateful ? state : nullptr, f, in, batch, out);
      return;
    }
    std::vector<Value*> args, results;
    size_t nextIn = 0, nextOut = 0;
    for (const TensorSpec& t : f.args) {
      if (t.role == "input")
        args.push_back(in[nextIn++]);
      else if (stateful)
        args.push_back(slotPointer(state, slotOf(t.name), /*next=*/false));
      else
        args.push_back(weight(t.name));
    }
    for (const TensorSpec& t : f.results) results.push_back(t.role == "output" ? out[nextOut++] : nullptr);
    callFunction(f, args, results, batch);
    b_.CreateRet(c32(0));
    finishThreaded(fn, model_.name + "_forward");
  }

  // <name>_num_inputs/_num_outputs, <name>_input_shape/_output_shape(i, dims, rank) of @forward.
  void buildShapeQueries() {
    const FunctionSpec& f = *model_.forward;
    std::vector<const TensorSpec*> inputs, outputs;
    for (const TensorSpec& t : f.args)
      if (t.role == "input") inputs.push_back(&t);
    for (const TensorSpec& t : f.results)
      if (t.role == "output") outputs.push_back(&t);
    for (auto [kind, list] : {std::pair{"input", &inputs}, std::pair{"output", &outputs}}) {
      define(model_.name + "_num_" + kind + "s", i64_, {});
      b_.CreateRet(c64(static_cast<int64_t>(list->size())));
      buildShapeQuery(model_.name + "_" + kind + "_shape", *list);
    }
  }

  // int query(int64_t i, int64_t* dims, int64_t* rank): rank and dims of tensor i (-1: batch).
  void buildShapeQuery(const std::string& name, const std::vector<const TensorSpec*>& tensors) {
    std::vector<int64_t> ranks, offsets, dims;
    for (const TensorSpec* t : tensors) {
      ranks.push_back(static_cast<int64_t>(t->shape.size()));
      offsets.push_back(static_cast<int64_t>(dims.size()));
      for (int64_t d : t->shape) dims.push_back(d);
    }
    dims.push_back(0);  // never empty
    GlobalVariable* rankTable = constantTable(ranks.empty() ? std::vector<int64_t>{0} : ranks, name + ".ranks");
    GlobalVariable* offsetTable = constantTable(offsets.empty() ? std::vector<int64_t>{0} : offsets, name + ".offsets");
    GlobalVariable* dimTable = constantTable(dims, name + ".dims");
    Function* fn = define(name, i32_, {i64_, ptr_, ptr_});
    Value* i = fn->getArg(0);
    returnIf(b_.CreateOr(b_.CreateICmpSLT(i, c64(0)), b_.CreateICmpSGE(i, c64(static_cast<int64_t>(tensors.size())))),
             c32(kBadArgument));
    Value* rank = tableAt(rankTable, i);
    Function* f = b_.GetInsertBlock()->getParent();
    auto* storeRank = BasicBlock::Create(ctx_, "rank", f);
    auto* afterRank = BasicBlock::Create(ctx_, "dims", f);
    b_.CreateCondBr(isNull(fn->getArg(2)), afterRank, storeRank);
    b_.SetInsertPoint(storeRank);
    b_.CreateStore(rank, fn->getArg(2));
    b_.CreateBr(afterRank);
    b_.SetInsertPoint(afterRank);
    auto* copy = BasicBlock::Create(ctx_, "copy", f);
    auto* done = BasicBlock::Create(ctx_, "done", f);
    b_.CreateCondBr(isNull(fn->getArg(1)), done, copy);
    b_.SetInsertPoint(copy);
    Value* from = b_.CreateGEP(i64_, dimTable, tableAt(offsetTable, i));
    b_.CreateMemCpy(fn->getArg(1), Align(8), from, Align(8), b_.CreateMul(rank, c64(8)));
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    b_.CreateRet(c32(0));
  }

  // ---- --target=cuda ----
  // The initializer of kilnc_cuda_plan, which the linked executor declares (its layout,
  // struct kilnc_cuda_plan of cuda_executor.c, is checked here field by field).
  void buildCudaPlan() {
    const CudaPlan& p = *model_.cuda;
    GlobalVariable* plan = m_.getGlobalVariable("kilnc_cuda_plan");
    auto* type = plan ? dyn_cast<StructType>(plan->getValueType()) : nullptr;
    if (!type || type->elements().vec() != std::vector<Type*>{ptr_, i64_, ptr_, ptr_, i64_, ptr_})
      throw kiln::Error("kilnc: internal error: the CUDA executor's kilnc_cuda_plan is not the plan kilnc builds");
    // struct kilnc_cuda_function, field by field.
    const std::vector<Type*> layout = {ptr_, i64_, i64_, ptr_, i64_, ptr_, ptr_, ptr_, i64_,
                                       ptr_, ptr_, i64_, ptr_, i64_, ptr_, i64_, ptr_};
    StructType* functionType = StructType::getTypeByName(ctx_, "struct.kilnc_cuda_function");
    if (functionType && functionType->elements().vec() != layout)
      throw kiln::Error("kilnc: internal error: the CUDA executor's kilnc_cuda_function is not the one kilnc builds");
    if (!functionType) functionType = StructType::get(ctx_, layout);
    auto string = [&](const std::string& text, const std::string& name) {
      Constant* init = ConstantDataArray::getString(ctx_, text);
      auto* g = new GlobalVariable(m_, init->getType(), true, GlobalValue::PrivateLinkage, init, name);
      g->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
      return g;
    };
    auto pointerTable = [&](std::vector<Constant*> items, const std::string& name) {
      if (items.empty()) items.push_back(ConstantPointerNull::get(ptr_));
      auto* t = ArrayType::get(ptr_, items.size());
      return new GlobalVariable(m_, t, true, GlobalValue::PrivateLinkage, ConstantArray::get(t, items), name);
    };
    auto table = [&](std::vector<int64_t> values, const std::string& name) {
      if (values.empty()) values.push_back(0);
      return constantTable(values, model_.name + ".cuda." + name);
    };
    auto count = [&](size_t n) { return c64(static_cast<int64_t>(n)); };
    const std::vector<std::string> slots = cudaSlots();
    auto slotIndex = [&](const std::string& name) {
      return static_cast<int64_t>(std::find(slots.begin(), slots.end(), name) - slots.begin());
    };
    std::vector<int64_t> slotBytes;
    std::vector<Constant*> slotData;
    for (const std::string& name : slots) {
      slotBytes.push_back(static_cast<int64_t>(model_.weights.at(name).nbytes()));
      slotData.push_back(weight(name));
    }
    std::vector<Constant*> functions;
    for (const CudaPlan::Function& f : p.functions) {
      const std::string prefix = model_.name + ".cuda." + f.spec->name + ".";
      std::vector<int64_t> buffers, kernels, params, images, updates;
      std::vector<Constant*> names, data;
      for (const CudaPlan::Buffer& b : f.buffers)
        buffers.insert(buffers.end(), {b.bytes, b.power, b.input, b.slot.empty() ? -1 : slotIndex(b.slot)});
      for (const CudaPlan::Kernel& k : f.kernels) {
        kernels.insert(kernels.end(), std::begin(k.launch), std::end(k.launch));
        kernels.insert(kernels.end(), {static_cast<int64_t>(params.size()), static_cast<int64_t>(k.params.size())});
        params.insert(params.end(), k.params.begin(), k.params.end());
        names.push_back(string(k.name, prefix + "kernel"));
      }
      for (const CudaPlan::Image& image : f.images) {
        images.insert(images.end(), {image.arch, image.ptx ? 1 : 0, static_cast<int64_t>(image.data.size())});
        Constant* init = ConstantDataArray::getRaw(image.data, image.data.size(), i8_);
        auto* g = new GlobalVariable(m_, init->getType(), true, GlobalValue::PrivateLinkage, init,
                                     prefix + (image.ptx ? "ptx.compute_" : "cubin.sm_") + std::to_string(image.arch));
        g->setAlignment(Align(64));
        data.push_back(g);
      }
      for (const CudaPlan::Update& u : f.updates) updates.insert(updates.end(), {slotIndex(u.slot), u.buffer});
      functions.push_back(ConstantStruct::get(
          functionType,
          {string("_" + f.spec->name, prefix + "entry"), c64(f.symbolic_batch ? 1 : 0), count(f.buffers.size()),
           table(buffers, f.spec->name + ".buffers"), count(f.kernels.size()), table(kernels, f.spec->name + ".kernels"),
           pointerTable(names, prefix + "kernel_names"), table(params, f.spec->name + ".params"),
           count(f.images.size()), table(images, f.spec->name + ".image_info"), pointerTable(data, prefix + "images"),
           count(f.outputs.size()), table(f.outputs, f.spec->name + ".outputs"), count(f.statuses.size()),
           table(f.statuses, f.spec->name + ".statuses"), count(f.updates.size()),
           table(updates, f.spec->name + ".updates")}));
    }
    auto* functionsType = ArrayType::get(functionType, functions.size());
    auto* functionTable = new GlobalVariable(m_, functionsType, true, GlobalValue::PrivateLinkage,
                                             ConstantArray::get(functionsType, functions), model_.name + ".cuda.functions");
    std::vector<Constant*> fields = {string(model_.name, model_.name + ".cuda.model"), count(slots.size()),
                                     table(slotBytes, "slot_bytes"), pointerTable(slotData, model_.name + ".cuda.slot_data"),
                                     count(functions.size()), functionTable};
    plan->setInitializer(ConstantStruct::get(type, fields));
    plan->setConstant(true);
    plan->setLinkage(GlobalValue::InternalLinkage);
  }

  // ---- training ----
  // The state: pointers to the current and the next buffer of each slot (parameters,
  // then optimizer state), then the one allocation holding them all.
  struct Slot {
    const TensorSpec* tensor;
    int64_t offset;  // of its current buffer in the allocation; the next one follows
  };

  void buildSlots() {
    std::set<std::string> seen;
    auto add = [&](const FunctionSpec* f) {
      if (!f) return;
      for (const TensorSpec& t : f->args)
        if ((t.role == "param" || t.role == "state") && seen.insert(t.name).second) {
          slots_.push_back({&t, stateBytes_});
          stateBytes_ += 2 * align64(t.bytes());
        }
    };
    add(model_.step);
    add(model_.forward);
    for (size_t s = 0; s < slots_.size(); ++s)
      if (slots_[s].tensor->role == "param") params_.push_back(static_cast<int64_t>(s));
  }
  int64_t slotOf(const std::string& name) const {
    for (size_t s = 0; s < slots_.size(); ++s)
      if (slots_[s].tensor->name == name) return static_cast<int64_t>(s);
    throw kiln::Error("kilnc: internal error: no state slot for " + name);
  }
  Value* slotAddress(Value* state, Value* slot, bool next) {
    Value* index = next ? b_.CreateAdd(slot, c64(static_cast<int64_t>(slots_.size()))) : slot;
    return b_.CreateGEP(ptr_, state, index);
  }
  Value* slotPointer(Value* state, int64_t slot, bool next) {
    return b_.CreateLoad(ptr_, slotAddress(state, c64(slot), next));
  }

  void buildCreate() {
    Function* fn = define(model_.name + "_create", ptr_, {});
    (void)fn;
    if (model_.cuda) {  // the state on the GPU (cuda_executor.c)
      b_.CreateRet(b_.CreateCall(executor("kilnc_cuda_create", ptr_, {})));
      return;
    }
    FunctionCallee mallocFn = libc("malloc", ptr_, {i64_});
    FunctionCallee alignedAlloc = libc("aligned_alloc", ptr_, {i64_, i64_});
    FunctionCallee freeFn = libc("free", Type::getVoidTy(ctx_), {ptr_});
    int64_t n = static_cast<int64_t>(slots_.size());
    Value* state = b_.CreateCall(mallocFn, {c64(8 * (2 * n + 1))});
    returnIf(isNull(state), ConstantPointerNull::get(ptr_));
    Value* data = b_.CreateCall(alignedAlloc, {c64(64), c64(std::max<int64_t>(stateBytes_, 64))});
    Function* f = b_.GetInsertBlock()->getParent();
    auto* fail = BasicBlock::Create(ctx_, "fail", f);
    auto* ok = BasicBlock::Create(ctx_, "ok", f);
    b_.CreateCondBr(isNull(data), fail, ok);
    b_.SetInsertPoint(fail);
    b_.CreateCall(freeFn, {state});
    b_.CreateRet(ConstantPointerNull::get(ptr_));
    b_.SetInsertPoint(ok);
    for (int64_t s = 0; s < n; ++s) {
      const Slot& slot = slots_[s];
      Value* current = b_.CreateConstGEP1_64(i8_, data, slot.offset);
      Value* next = b_.CreateConstGEP1_64(i8_, data, slot.offset + align64(slot.tensor->bytes()));
      b_.CreateMemCpy(current, Align(64), weight(slot.tensor->name), Align(64), c64(slot.tensor->bytes()));
      b_.CreateStore(current, slotAddress(state, c64(s), false));
      b_.CreateStore(next, slotAddress(state, c64(s), true));
    }
    b_.CreateStore(data, b_.CreateConstGEP1_64(ptr_, state, 2 * n));
    b_.CreateRet(state);
  }

  void buildDestroy() {
    Function* fn = define(model_.name + "_destroy", Type::getVoidTy(ctx_), {ptr_});
    FunctionCallee freeFn = libc("free", Type::getVoidTy(ctx_), {ptr_});
    Value* state = fn->getArg(0);
    Function* f = fn;
    auto* body = BasicBlock::Create(ctx_, "free", f);
    auto* done = BasicBlock::Create(ctx_, "done", f);
    b_.CreateCondBr(isNull(state), done, body);
    b_.SetInsertPoint(body);
    int64_t n = static_cast<int64_t>(slots_.size());
    if (model_.cuda) {
      b_.CreateCall(executor("kilnc_cuda_destroy", Type::getVoidTy(ctx_), {ptr_}), {state});
    } else {
      b_.CreateCall(freeFn, {b_.CreateLoad(ptr_, b_.CreateConstGEP1_64(ptr_, state, 2 * n))});
      b_.CreateCall(freeFn, {state});
    }
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    b_.CreateRetVoid();
  }

  // int step(state, inputs..., labels..., int64_t batch, loss...): the step's results are
  // written to the next buffers, which become current only when every check passed.
  void buildStep() {
    const FunctionSpec& f = *model_.step;
    std::vector<Type*> params{ptr_};
    size_t data = 0, losses = 0;
    for (const TensorSpec& t : f.args)
      if (t.role == "input" || t.role == "label") ++data;
    for (const TensorSpec& t : f.results)
      if (t.role == "loss" || t.role == "output") ++losses;
    for (size_t i = 0; i < data; ++i) params.push_back(ptr_);
    params.push_back(i64_);
    for (size_t i = 0; i < losses; ++i) params.push_back(ptr_);
    unsigned at = 0;
    Function* fn = defineThreaded(model_.name + "_step", params, &at);
    Value* state = fn->getArg(at++);
    std::vector<Value*> in, out;
    for (size_t i = 0; i < data; ++i) in.push_back(fn->getArg(at++));
    Value* batch = fn->getArg(at++);
    for (size_t i = 0; i < losses; ++i) out.push_back(fn->getArg(at++));
    Value* bad = isNull(state);
    for (Value* p : in) bad = b_.CreateOr(bad, isNull(p));
    returnIf(bad, c32(kBadArgument));
    checkBatch(f, batch);
    if (model_.cuda) {  // the executor copies a loss out only where its pointer is not null
      cudaRun(state, f, in, batch, out);
      return;
    }
    std::vector<Value*> args, results;
    size_t nextIn = 0, nextOut = 0;
    for (const TensorSpec& t : f.args)
      args.push_back(t.role == "input" || t.role == "label" ? in[nextIn++]
                                                            : slotPointer(state, slotOf(t.name), false));
    std::vector<int64_t> written;
    struct Copy {
      Value *to, *from;
      int64_t bytes;
    };
    std::vector<Copy> copies;
    for (const TensorSpec& t : f.results) {
      if (t.role == "loss" || t.role == "output") {
        // A 0-d loss goes to a local buffer, copied out (when the pointer is not null) only
        // once every check passed: a failed step changes nothing.
        Value* user = out[nextOut++];
        if (t.shape.empty()) {
          Value* scratch = alloca(ArrayType::get(i8_, static_cast<uint64_t>(std::max<int64_t>(t.bytes(), 8))));
          copies.push_back({user, scratch, t.bytes()});
          results.push_back(scratch);
        } else {
          results.push_back(user);
        }
      } else if (t.role == "param" || t.role == "state") {
        int64_t slot = slotOf(t.name);
        written.push_back(slot);
        results.push_back(slotPointer(state, slot, true));
      } else {
        results.push_back(nullptr);
      }
    }
    callFunction(f, args, results, batch);
    for (const Copy& c : copies) {
      Function* fnNow = b_.GetInsertBlock()->getParent();
      auto* copy = BasicBlock::Create(ctx_, "copy", fnNow);
      auto* done = BasicBlock::Create(ctx_, "copied", fnNow);
      b_.CreateCondBr(isNull(c.to), done, copy);
      b_.SetInsertPoint(copy);
      b_.CreateMemCpy(c.to, Align(1), c.from, Align(1), c64(c.bytes));
      b_.CreateBr(done);
      b_.SetInsertPoint(done);
    }
    for (int64_t slot : written) {
      Value* current = slotPointer(state, slot, false);
      Value* next = slotPointer(state, slot, true);
      b_.CreateStore(next, slotAddress(state, c64(slot), false));
      b_.CreateStore(current, slotAddress(state, c64(slot), true));
    }
    b_.CreateRet(c32(0));
    finishThreaded(fn, model_.name + "_step");
  }

  void buildParamQueries() {
    int64_t n = static_cast<int64_t>(params_.size());
    define(model_.name + "_num_params", i64_, {});
    b_.CreateRet(c64(n));

    // const char* param_name(int64_t i): Chainer's name, or NULL.
    std::vector<Constant*> names;
    for (int64_t s : params_) {
      Constant* text = ConstantDataArray::getString(ctx_, slots_[s].tensor->name);
      auto* g = new GlobalVariable(m_, text->getType(), true, GlobalValue::PrivateLinkage, text,
                                   model_.name + ".param_name");
      g->setUnnamedAddr(GlobalValue::UnnamedAddr::Global);
      names.push_back(g);
    }
    if (names.empty()) names.push_back(ConstantPointerNull::get(ptr_));
    auto* nameType = ArrayType::get(ptr_, names.size());
    auto* nameTable = new GlobalVariable(m_, nameType, true, GlobalValue::PrivateLinkage,
                                         ConstantArray::get(nameType, names), model_.name + ".param_names");
    Function* fn = define(model_.name + "_param_name", ptr_, {i64_});
    Value* i = fn->getArg(0);
    auto outOfRange = [&](Value* index) {
      return b_.CreateOr(b_.CreateICmpSLT(index, c64(0)), b_.CreateICmpSGE(index, c64(n)));
    };
    returnIf(outOfRange(i), ConstantPointerNull::get(ptr_));
    b_.CreateRet(b_.CreateLoad(ptr_, b_.CreateGEP(ptr_, nameTable, i)));

    std::vector<const TensorSpec*> tensors;
    std::vector<int64_t> slotTable, bytesTable;
    for (int64_t s : params_) {
      tensors.push_back(slots_[s].tensor);
      slotTable.push_back(s);
      bytesTable.push_back(slots_[s].tensor->bytes());
    }
    buildShapeQuery(model_.name + "_param_shape", tensors);
    if (slotTable.empty()) slotTable.push_back(0), bytesTable.push_back(0);
    GlobalVariable* slots = constantTable(slotTable, model_.name + ".param_slots");
    GlobalVariable* bytes = constantTable(bytesTable, model_.name + ".param_bytes");
    for (bool get : {true, false}) {
      Function* access = define(model_.name + (get ? "_get_param" : "_set_param"), i32_, {ptr_, i64_, ptr_});
      Value* state = access->getArg(0);
      Value* index = access->getArg(1);
      Value* user = access->getArg(2);
      returnIf(b_.CreateOr(b_.CreateOr(isNull(state), isNull(user)), outOfRange(index)), c32(kBadArgument));
      if (model_.cuda) {  // the executor's slots are slots_, in order
        b_.CreateRet(b_.CreateCall(executor("kilnc_cuda_copy_slot", i32_, {ptr_, i64_, ptr_, i32_}),
                                   {state, tableAt(slots, index), user, c32(get ? 1 : 0)}));
        continue;
      }
      Value* buffer = b_.CreateLoad(ptr_, slotAddress(state, tableAt(slots, index), false));
      Value* size = tableAt(bytes, index);
      if (get)
        b_.CreateMemCpy(user, Align(1), buffer, Align(64), size);
      else
        b_.CreateMemCpy(buffer, Align(64), user, Align(1), size);
      b_.CreateRet(c32(0));
    }
  }

  Module& m_;
  LLVMContext& ctx_;
  const ModelSpec& model_;
  IRBuilder<> b_;
  BasicBlock* entry_ = nullptr;
  Value* threads_ = nullptr;  // the thread count of the entry point being built (threaded models)
  Type *i8_, *i32_, *i64_;
  PointerType* ptr_;
  std::map<std::string, GlobalVariable*> weights_;
  std::vector<Slot> slots_;
  std::vector<int64_t> params_;  // slot indices of the parameters
  int64_t stateBytes_ = 0;
};

std::string shapeText(const TensorSpec& t) {
  std::string s = "(";
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i) s += ", ";
    s += t.shape[i] < 0 ? "batch" : std::to_string(t.shape[i]);
  }
  return s + (t.shape.size() == 1 ? ",)" : ")");
}

std::string describe(const TensorSpec& t) {
  return fmt::format("{} {}: {} {}", t.role, t.name, kiln::dtype_name(t.dtype), shapeText(t));
}

// The one C type of a set of tensors ("void" when they differ).
std::string commonType(const std::vector<const TensorSpec*>& tensors) {
  std::string type;
  for (const TensorSpec* t : tensors) {
    std::string c = c_type(t->dtype);
    if (type.empty()) type = c;
    else if (type != c) return "void";
  }
  return type.empty() ? "float" : type;
}

}  // namespace

void add_entry_points(llvm::Module& module, const ModelSpec& model) { EntryBuilder(module, model).build(); }

std::string header_text(const ModelSpec& model) {
  const std::string& n = model.name;
  std::string guard = "KILNC_";
  for (char c : n) guard += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  guard += "_H";
  std::string h = fmt::format(
      "/* {0}.h: the C interface of `{0}`, compiled ahead of time by kilnc.\n"
      " * Link with the object kilnc wrote (and -lm); nothing else is needed at run time.\n"
      " * Arrays are row-major; `batch` is the size of their first dimension where a shape\n"
      " * says \"batch\" (reported as -1 by the shape functions).\n"
      " * Return codes: 0 success; 1 a bad argument (batch <= 0 or, for a model compiled with a\n"
      " * fixed batch, not that batch; a null pointer; an index out of range); 2 a run-time\n"
      " * check failed (a label or id out of range), and nothing was changed.{2}{3} */\n"
      "#ifndef {1}\n#define {1}\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n",
      n, guard,
      model.threaded
          ? "\n * Threads: each <f>_threads(nthreads, ...) runs f's parallel loops (the batch, the GEMMs'\n"
            " * blocks) on nthreads threads, started by the call and joined before it returns, with the\n"
            " * same results as one thread; nthreads <= 0 returns 1, more than 4096 run as 4096, and\n"
            " * a thread that cannot be started has its part run by the caller. The entry points\n"
            " * without _threads use one thread."
          : "",
      model.cuda
          ? fmt::format(
                "\n * CUDA (kilnc --target=cuda): the entry points run on GPU 0 through the NVIDIA driver,\n"
                " * libcuda.so.1, loaded with dlopen at the first call (KILNC_LIBCUDA=<path> loads another\n"
                " * file); the object embeds cubins for {1} and PTX for newer GPUs. The first\n"
                " * successful call loads them.{2}\n"
                " * More codes: 3 no CUDA driver or no GPU; 4 a CUDA call failed (no image for this GPU,\n"
                " * out of memory, a launch). {0}_last_error() then says why (the driver's message).",
                n, [&] {
                  std::string archs;
                  if (!model.cuda->functions.empty())
                    for (const CudaPlan::Image& image : model.cuda->functions[0].images)
                      if (!image.ptx) archs += (archs.empty() ? "sm_" : ", sm_") + std::to_string(image.arch);
                  return archs.empty() ? std::string("no architecture") : archs;
                }(),
                model.step
                    ? "\n * A state's parameters and optimizer state live on the GPU (uploaded by " + n +
                          "_create,\n * NULL on failure); each step copies the inputs and labels to the GPU, runs the "
                          "step's\n * kernels, which update them there, and copies the loss back; get/set_param copy "
                          "one\n * parameter from or to the GPU."
                    : std::string("\n * The first call uploads the weights; each call copies the inputs to the GPU, "
                                  "runs the\n * kernels and copies the outputs back. Calls are serialized."))
          : std::string());
  auto signature = [&](const FunctionSpec& f, bool stateful, const char* inputRoles, const char* outputRoles,
                       const std::string& fname) {
    std::string s = "int " + fname + "(";
    std::vector<std::string> params;
    if (stateful) params.push_back(n + "_state* state");
    std::string comment;
    for (const TensorSpec& t : f.args)
      if (std::string(inputRoles).find(t.role) != std::string::npos) {
        params.push_back(fmt::format("const {}* {}", c_type(t.dtype), t.name));
        comment += " *   " + describe(t) + "\n";
      }
    params.push_back("int64_t batch");
    for (const TensorSpec& t : f.results)
      if (std::string(outputRoles).find(t.role) != std::string::npos) {
        params.push_back(fmt::format("{}* {}", c_type(t.dtype), t.name));
        comment += " *   " + describe(t) + "\n";
      }
    std::string list;
    for (size_t i = 0; i < params.size(); ++i) list += (i ? ", " : "") + params[i];
    std::string text = "/* " + fname + ":\n" + comment + " */\n" + s + list + ");\n";
    if (model.threaded)
      text += "int " + fname + "_threads(int nthreads, " + list + ");\n";
    return text;
  };
  if (model.step) {
    std::vector<const TensorSpec*> params;
    for (const TensorSpec& t : model.step->args)
      if (t.role == "param") params.push_back(&t);
    std::string p = commonType(params);
    h += fmt::format(
        "/* A training state: parameters and optimizer state, from the embedded weights.\n"
        " * Distinct states may be used by distinct threads at once; one state by one thread. */\n"
        "typedef struct {0}_state {0}_state;\n"
        "{0}_state* {0}_create(void);  /* NULL when out of memory{1} */\n"
        "void {0}_destroy({0}_state* state);\n",
        n, model.cuda ? ", without a GPU or when a CUDA call fails (" + n + "_last_error() says why)" : "");
    h += signature(*model.step, true, "input label", "loss output", n + "_step");
    if (model.forward) h += signature(*model.forward, true, "input", "output", n + "_forward");
    h += fmt::format(
        "/* The parameters (Chainer's names, \"predictor/l1/W\"); i in [0, num_params). */\n"
        "int64_t {0}_num_params(void);\n"
        "const char* {0}_param_name(int64_t i);  /* NULL when out of range */\n"
        "int {0}_param_shape(int64_t i, int64_t* dims, int64_t* rank);\n"
        "int {0}_get_param({0}_state* state, int64_t i, {1}* out);\n"
        "int {0}_set_param({0}_state* state, int64_t i, const {1}* in);\n",
        n, p);
  } else if (model.forward) {
    h += signature(*model.forward, false, "input", "output", n + "_forward");
  }
  if (model.forward)
    h += fmt::format(
        "/* The inputs and outputs of {0}_forward: count, then rank and dims of one (-1: batch). */\n"
        "int64_t {0}_num_inputs(void);\n"
        "int64_t {0}_num_outputs(void);\n"
        "int {0}_input_shape(int64_t i, int64_t* dims, int64_t* rank);\n"
        "int {0}_output_shape(int64_t i, int64_t* dims, int64_t* rank);\n",
        n);
  if (model.cuda)
    h += fmt::format(
        "/* Why this thread's last failed call failed (\"\" after a successful one); valid until its\n"
        " * next call. */\n"
        "const char* {0}_last_error(void);\n",
        n);
  h += fmt::format("\n#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {} */\n", guard);
  return h;
}

}  // namespace kilnc
