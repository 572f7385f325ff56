// compile_to_object: LLVM dialect -> optimized LLVM IR -> ELF object for the host CPU.
#include <mutex>

#include "kiln/codegen/cpu.h"
#include "kiln/error.h"
#include "llvm/ADT/SmallVector.h"
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

}  // namespace

std::string host_target_id(int opt_level) {
  static const std::string host = [] {
    initializeNativeTarget();
    std::string id = "llvm-" LLVM_VERSION_STRING ";" + llvm::sys::getProcessTriple() + ";" +
                     llvm::sys::getHostCPUName().str() + ";";
    for (const auto& feature : llvm::sys::getHostCPUFeatures())
      if (feature.second) id += "+" + feature.first().str();
    return id;
  }();
  // The pipeline options follow the environment (KILN_NUM_THREADS, KILN_GEMM) on every call.
  PipelineOptions pipeline = default_pipeline_options();
  std::string id = host;
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
  auto optimize = mlir::makeOptimizingTransformer(opt_level, /*sizeLevel=*/0, machine.get());
  if (llvm::Error err = optimize(llvmModule.get()))
    throw Error("kiln: cpu backend: optimizing LLVM IR failed: " + llvm::toString(std::move(err)));
  if (llvm_ir) {
    llvm::raw_string_ostream os(*llvm_ir);
    llvmModule->print(os, nullptr);
  }

  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager codegen;
  if (machine->addPassesToEmitFile(codegen, os, nullptr, llvm::CodeGenFileType::ObjectFile))
    throw Error("kiln: cpu backend: the host target cannot emit object files");
  codegen.run(*llvmModule);
  return std::vector<uint8_t>(buffer.begin(), buffer.end());
}

}  // namespace kiln::cpu
