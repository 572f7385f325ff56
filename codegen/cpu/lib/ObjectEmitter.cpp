// compile_to_object: LLVM dialect -> optimized LLVM IR -> ELF object for the host CPU.
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "kiln/codegen/cpu.h"
#include "kiln/env.h"
#include "kiln/error.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/Transforms/Utils/SplitModule.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Target/LLVMIR/Export.h"

namespace kiln::cpu {
namespace {

void initializeNativeTarget() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

std::unique_ptr<llvm::TargetMachine> hostTargetMachine(int optLevel) {
  initializeNativeTarget();
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();  // host CPU name + features
  if (!builder) throw Error("kiln: cpu backend: " + llvm::toString(builder.takeError()));
  builder->setCodeGenOptLevel(optLevel >= 3   ? llvm::CodeGenOptLevel::Aggressive
                              : optLevel == 2 ? llvm::CodeGenOptLevel::Default
                              : optLevel == 1 ? llvm::CodeGenOptLevel::Less
                                              : llvm::CodeGenOptLevel::None);
  builder->setRelocationModel(llvm::Reloc::PIC_);
  // The host's features, less those above KILN_CPU_CAPABILITY (target_cpu).
  TargetCpu cpu = target_cpu();
  builder->setCPU(cpu.name);
  builder->getFeatures() = llvm::SubtargetFeatures();
  builder->addFeatures(cpu.features);
  auto machine = builder->createTargetMachine();
  if (!machine) throw Error("kiln: cpu backend: " + llvm::toString(machine.takeError()));
  return std::move(*machine);
}

// Defines `void kiln_packed_<entry>(void** args)` calling `_mlir_ciface_<entry>`
// with args[i] as its i-th argument: one signature for every graph.
void addPackedEntry(llvm::Module& module, const std::string& entry) {
  llvm::Function* ciface = module.getFunction("_mlir_ciface_" + entry);
  if (!ciface)
    throw Error("kiln: cpu backend: the module has no function _mlir_ciface_" + entry +
                " (is `" + entry + "` marked llvm.emit_c_interface?)");
  llvm::LLVMContext& ctx = module.getContext();
  llvm::PointerType* ptr = llvm::PointerType::getUnqual(ctx);
  for (llvm::Argument& arg : ciface->args())
    if (arg.getType() != ptr)
      throw Error("kiln: cpu backend: _mlir_ciface_" + entry + " takes a non-memref argument");
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), {ptr}, false);
  auto* packed = llvm::Function::Create(type, llvm::GlobalValue::ExternalLinkage,
                                        "kiln_packed_" + entry, module);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", packed));
  llvm::SmallVector<llvm::Value*> args;
  for (unsigned i = 0; i < ciface->arg_size(); ++i)
    args.push_back(b.CreateLoad(ptr, b.CreateConstGEP1_64(ptr, packed->getArg(0), i)));
  b.CreateCall(ciface, args);
  b.CreateRetVoid();
}

// Gives every function the module defines, but the one entry the JIT looks up
// (kiln_packed_<entry>), internal linkage, and removes the arguments they do not use.
// A memref argument is 3 + 2 x rank scalars, so the graph's function and the runs of
// -kiln-outline-kernels take hundreds to thousands of them (the 35-step LSTM graph: calls
// of 1387 and 9617 arguments), most of them unused descriptor fields. Left external,
// their calls stay that wide: -O3's CalledValuePropagation spent 13 of 17 s and
// instruction selection 16 of 27 s on such calls. Internal, a first instcombine drops
// the unused descriptor fields and dead-argument elimination then the arguments.
void internalizeAndDropDeadArguments(llvm::Module& module, const std::string& entry,
                                     llvm::TargetMachine* machine) {
  std::string keep = "kiln_packed_" + entry;
  for (llvm::Function& f : module)
    if (!f.isDeclaration() && f.getName() != keep) f.setLinkage(llvm::GlobalValue::InternalLinkage);
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager sccs;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(machine);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(sccs);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, sccs, modules);
  llvm::ModulePassManager passes;
  if (llvm::Error err = builder.parsePassPipeline(
          passes, "function(early-cse,instcombine<no-verify-fixpoint>),deadargelim"))
    throw Error("kiln: cpu backend: " + llvm::toString(std::move(err)));
  passes.run(module, modules);
}

// -O`opt_level` and machine code for `module`, appending the object to `object` and,
// when `llvm_ir` is given, the optimized IR to it.
void optimizeAndEmit(llvm::Module& module, int opt_level, std::vector<uint8_t>& object, std::string* llvm_ir) {
  std::unique_ptr<llvm::TargetMachine> machine = hostTargetMachine(opt_level);
  auto optimize = mlir::makeOptimizingTransformer(opt_level, /*sizeLevel=*/0, machine.get());
  if (llvm::Error err = optimize(&module))
    throw Error("kiln: cpu backend: optimizing LLVM IR failed: " + llvm::toString(std::move(err)));
  if (llvm_ir) {
    llvm::raw_string_ostream os(*llvm_ir);
    module.print(os, nullptr);
  }
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager codegen;
  if (machine->addPassesToEmitFile(codegen, os, nullptr, llvm::CodeGenFileType::ObjectFile))
    throw Error("kiln: cpu backend: the host target cannot emit object files");
  codegen.run(module);
  object.insert(object.end(), buffer.begin(), buffer.end());
}

// How many parts the LLVM stage of `module` runs as, each part's functions optimized and
// compiled on a thread of its own: KILN_COMPILE_THREADS (default: the hardware threads),
// at most one part per 1500 instructions and per function (a small graph is one part).
unsigned compileParts(const llvm::Module& module) {
  size_t functions = 0, instructions = 0;
  for (const llvm::Function& f : module)
    if (!f.isDeclaration()) ++functions, instructions += f.getInstructionCount();
  int64_t threads = kiln::env::get_int("KILN_COMPILE_THREADS", std::max(1u, std::thread::hardware_concurrency()),
                                       1, 64, "the hardware threads");
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>({threads, static_cast<int64_t>(functions),
                                              static_cast<int64_t>(instructions / 1500)})));
}

}  // namespace

std::vector<std::vector<uint8_t>> split_objects(const std::vector<uint8_t>& bytes) {
  constexpr size_t kMagic = sizeof(kObjectsMagic) - 1;
  if (bytes.size() < kMagic || std::memcmp(bytes.data(), kObjectsMagic, kMagic) != 0) return {bytes};
  std::vector<std::vector<uint8_t>> objects;
  size_t at = kMagic;
  auto read64 = [&](uint64_t& v) {
    if (bytes.size() - at < sizeof v) return false;
    std::memcpy(&v, bytes.data() + at, sizeof v);
    at += sizeof v;
    return true;
  };
  uint64_t count = 0;
  if (!read64(count) || count == 0 || count > 1024) throw Error("kiln: cpu backend: a corrupt object set (its count)");
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t size = 0;
    if (!read64(size) || size > bytes.size() - at)
      throw Error("kiln: cpu backend: a corrupt object set (object " + std::to_string(i) + " is cut short)");
    objects.emplace_back(bytes.begin() + at, bytes.begin() + at + size);
    at += size;
  }
  if (at != bytes.size()) throw Error("kiln: cpu backend: a corrupt object set (bytes after its last object)");
  return objects;
}

std::string host_target_id(int opt_level) {
  // The target (KILN_CPU_CAPABILITY) and the pipeline options (KILN_NUM_THREADS, KILN_GEMM)
  // follow the environment on every call.
  TargetCpu cpu = target_cpu();
  std::string id = "llvm-" LLVM_VERSION_STRING ";" + llvm::sys::getProcessTriple() + ";" + cpu.name + ";";
  for (const std::string& feature : cpu.features)
    if (feature[0] == '+') id += feature;
  if (!cpu.capability.empty()) id += ";capability=" + cpu.capability;
  PipelineOptions pipeline = default_pipeline_options();
  id += pipeline.parallel ? ";omp" : ";serial";
  id += ";O" + std::to_string(opt_level);
  id += !pipeline.gemm_blas ? ";gemm=codegen" : pipeline.generate_matmuls ? ";gemm=blas+generated" : ";gemm=blas";
  return id;
}

std::vector<uint8_t> compile_to_object(mlir::ModuleOp module, const std::string& entry,
                                       int opt_level, std::string* llvm_ir) {
  mlir::DialectRegistry registry;
  registerCpuDialects(registry);
  module->getContext()->appendDialectRegistry(registry);

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule = mlir::translateModuleToLLVMIR(module, llvmContext, "kiln");
  if (!llvmModule) throw Error("kiln: cpu backend: translating the LLVM dialect to LLVM IR failed");
  std::unique_ptr<llvm::TargetMachine> machine = hostTargetMachine(opt_level);
  llvmModule->setDataLayout(machine->createDataLayout());
  llvmModule->setTargetTriple(machine->getTargetTriple());
  addPackedEntry(*llvmModule, entry);

  if (opt_level > 0) internalizeAndDropDeadArguments(*llvmModule, entry, machine.get());
  unsigned parts = opt_level > 0 ? compileParts(*llvmModule) : 1;
  std::vector<uint8_t> object;
  if (parts == 1) {
    optimizeAndEmit(*llvmModule, opt_level, object, llvm_ir);
    return object;
  }
  // Parts of the module (its functions spread by size; internal symbols made hidden
  // externals so the parts link to each other), each optimized and compiled on its own
  // thread in a context of its own (passed as bitcode), then kept as one object set that
  // Kernel::load_object links into one JITDylib.
  std::vector<llvm::SmallVector<char, 0>> bitcode;
  llvm::SplitModule(
      *llvmModule, parts,
      [&](std::unique_ptr<llvm::Module> part) {
        bitcode.emplace_back();
        llvm::raw_svector_ostream os(bitcode.back());
        llvm::WriteBitcodeToFile(*part, os);
      },
      /*PreserveLocals=*/false, /*RoundRobin=*/true);
  std::vector<std::vector<uint8_t>> objects(bitcode.size());
  std::vector<std::string> irs(bitcode.size()), errors(bitcode.size());
  auto compilePart = [&](size_t i) {
    try {
      llvm::LLVMContext context;
      llvm::StringRef bytes(bitcode[i].data(), bitcode[i].size());
      llvm::Expected<std::unique_ptr<llvm::Module>> part =
          llvm::parseBitcodeFile(llvm::MemoryBufferRef(bytes, "kiln-part"), context);
      if (!part) throw Error("kiln: cpu backend: reading a module part failed: " + llvm::toString(part.takeError()));
      optimizeAndEmit(**part, opt_level, objects[i], llvm_ir ? &irs[i] : nullptr);
    } catch (const std::exception& e) {
      errors[i] = e.what();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < bitcode.size(); ++i) {
    try {
      threads.emplace_back(compilePart, i);
    } catch (const std::system_error&) {  // no thread to be had: this one compiles the part
      compilePart(i);
    }
  }
  compilePart(0);
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors)
    if (!e.empty()) throw Error(e);
  auto append64 = [&](uint64_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    object.insert(object.end(), p, p + sizeof v);
  };
  object.assign(kObjectsMagic, kObjectsMagic + sizeof(kObjectsMagic) - 1);
  append64(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    append64(objects[i].size());
    object.insert(object.end(), objects[i].begin(), objects[i].end());
    if (llvm_ir) *llvm_ir += "; part " + std::to_string(i + 1) + " of " + std::to_string(objects.size()) + "\n" + irs[i];
  }
  return object;
}

}  // namespace kiln::cpu
