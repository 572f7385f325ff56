// kilnc: compiles an exported kiln model (.mlir + .npz, kiln/export.h) into a dependency-free object and a C header.
//
//   kilnc digits.mlir --weights digits.npz --name digits -o digits.o --header digits.h
//         [--emit=mlir|llvm|asm|obj] [--mcpu=native|x86-64-v3|...] [--threads=none|pthread|openmp]
//         [--target=cpu|cuda] [--gpu-arch=sm_80,sm_90]
//
// The object holds the weights as read-only data, the compiled functions
// (generated GEMMs, no BLAS, no kiln runtime) and the C entry points of
// CEntryPoints.cpp; it calls only libc (malloc, free, memcpy, ...) and libm, plus
// libpthread with --threads=pthread (Threads.cpp) or libomp with --threads=openmp.
// --target=cuda (CudaTarget.cpp): the same C ABI for @forward and a training step, with kiln's
// CUDA kernels as NVRTC cubins (+ PTX) run by the CUDA executor (cuda_executor.c), which loads
// libcuda.so.1 with dlopen; the object calls only libc.
#include <unistd.h>

#include <cctype>
#include <set>

#include <filesystem>

#include "CEntryPoints.h"
#include "CudaTarget.h"
#include "Threads.h"
#include "kiln/codegen/cpu.h"
#include "kiln/error.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/npz.h"
#include "kiln/passes/Passes.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/MC/MCSubtargetInfo.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Export.h"

namespace cl = llvm::cl;

namespace {

cl::OptionCategory kilncCategory("kilnc options");
cl::opt<std::string> inputPath(cl::Positional, cl::desc("<model.mlir>"), cl::Required, cl::cat(kilncCategory));
cl::opt<std::string> outputPath("o", cl::desc("Output file (default: <name>.o for --emit=obj, else stdout)"),
                                cl::value_desc("file"), cl::cat(kilncCategory));
cl::opt<std::string> weightsPath("weights", cl::desc("The model's weights (.npz written by kiln::export_*)"),
                                 cl::value_desc("file.npz"), cl::cat(kilncCategory));
cl::opt<std::string> modelName("name", cl::desc("C prefix of the entry points (a C identifier)"), cl::Required,
                               cl::value_desc("identifier"), cl::cat(kilncCategory));
cl::opt<std::string> headerPath("header", cl::desc("Write the C header declaring the entry points"),
                                cl::value_desc("file.h"), cl::cat(kilncCategory));
enum class Emit { mlir, llvm, assembly, object, cuda, emulated };
cl::opt<Emit> emitKind("emit", cl::desc("What to write"), cl::init(Emit::object),
                       cl::values(clEnumValN(Emit::mlir, "mlir", "MLIR after kilnc's pipeline (LLVM dialect)"),
                                  clEnumValN(Emit::llvm, "llvm", "LLVM IR with the entry points and weights"),
                                  clEnumValN(Emit::assembly, "asm", "assembly"),
                                  clEnumValN(Emit::object, "obj", "an ELF object (default)"),
                                  clEnumValN(Emit::cuda, "cuda", "--target=cuda: the kernels' CUDA C++ source"),
                                  clEnumValN(Emit::emulated, "emulated",
                                             "--target=cuda: the kernels compiled for kiln's SIMT emulator, a "
                                             "shared object of K__emulate(params, grid, block) per kernel K (for "
                                             "tests with a fake CUDA driver); for a training step -o FILE holds "
                                             "@step's and FILE with _forward before its extension @forward's")),
                       cl::cat(kilncCategory));
cl::opt<std::string> mcpu("mcpu", cl::desc("Target CPU: native (default) or an LLVM CPU name (x86-64-v3, ...)"),
                          cl::init("native"), cl::cat(kilncCategory));
// --threads: read by main() before LLVM's parser, since libLLVM has an option of that name.
std::string threads = "none";
cl::extrahelp threadsHelp(
    "\n  --threads=<none|pthread|openmp>  Threading of the compiled code: none (default, single-threaded); "
    "pthread (the object also defines <name>_*_threads(int nthreads, ...) and needs libpthread); openmp (the same "
    "entry points over libomp, link with -l:libomp.so.5)\n");
cl::opt<std::string> target("target",
                            cl::desc("cpu (default), or cuda: @forward and @step as CUDA kernels (cubins + PTX) run "
                                     "through libcuda.so.1, loaded at run time"),
                            cl::init("cpu"), cl::cat(kilncCategory));
cl::list<std::string> gpuArchs("gpu-arch",
                               cl::desc("--target=cuda: the GPU architectures to embed cubins for (default "
                                        "sm_80,sm_90; the newest also as PTX for newer GPUs)"),
                               cl::CommaSeparated, cl::value_desc("sm_XY,..."), cl::cat(kilncCategory));
cl::opt<int64_t> minParallelWork("min-parallel-work",
                                 cl::desc("With --threads: loops of fewer iterations stay on one thread (default 32768)"),
                                 cl::init(kiln::cpu::PipelineOptions{}.min_parallel_work), cl::cat(kilncCategory));
cl::opt<unsigned> optLevel("O", cl::desc("Optimization level (default 3)"), cl::init(3), cl::Prefix,
                           cl::cat(kilncCategory));

// A kilnc error without a location: "kilnc: error: ...", exit 1.
struct ToolError {
  std::string message;
};
[[noreturn]] void fail(const std::string& message) { throw ToolError{message}; }

bool isCIdentifier(const std::string& s) {
  static const std::set<std::string> keywords = {
      "auto",   "break",  "case",     "char",   "const",    "continue", "default",  "do",     "double",
      "else",   "enum",   "extern",   "float",  "for",      "goto",     "if",       "inline", "int",
      "long",   "register", "restrict", "return", "short",  "signed",   "sizeof",   "static", "struct",
      "switch", "typedef", "union",   "unsigned", "void",   "volatile", "while",    "_Bool",  "bool"};
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return !keywords.count(s);
}

std::string shapeText(llvm::ArrayRef<int64_t> shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + (shape[i] < 0 ? std::string("?") : std::to_string(shape[i]));
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::optional<kiln::DType> dtypeOf(mlir::Type t) {
  if (t.isF32()) return kiln::DType::f32;
  if (t.isF64()) return kiln::DType::f64;
  if (t.isInteger(32)) return kiln::DType::i32;
  if (t.isInteger(64)) return kiln::DType::i64;
  if (t.isInteger(1)) return kiln::DType::b8;
  return std::nullopt;
}

// An error at `loc` through MLIR's diagnostics (file:line:col: error: ...).
[[noreturn]] void failAt(mlir::Location loc, const std::string& message) {
  mlir::emitError(loc) << message;
  throw ToolError{};
}

kilnc::TensorSpec tensorSpec(mlir::Type type, mlir::DictionaryAttr attrs, mlir::Location loc, const std::string& what,
                             const std::string& role_default) {
  auto tensor = mlir::dyn_cast<mlir::RankedTensorType>(type);
  if (!tensor) failAt(loc, what + " is not a ranked tensor");
  kilnc::TensorSpec t;
  std::optional<kiln::DType> dtype = dtypeOf(tensor.getElementType());
  if (!dtype) failAt(loc, what + " has an element type kilnc cannot pass through the C ABI");
  t.dtype = *dtype;
  for (int64_t d : tensor.getShape()) t.shape.push_back(mlir::ShapedType::isDynamic(d) ? -1 : d);
  auto role = attrs ? attrs.getAs<mlir::StringAttr>("kiln.role") : nullptr;
  auto name = attrs ? attrs.getAs<mlir::StringAttr>("kiln.name") : nullptr;
  if (!name && role_default.empty())
    failAt(loc, what + " has no kiln.name (kilnc compiles the .mlir written by kiln::export_model or "
                       "kiln::export_training_step)");
  t.role = role ? role.str() : role_default;
  t.name = name ? name.str() : what;
  static const std::set<std::string> roles = {"param", "state", "input", "label", "output", "loss", "status"};
  if (!roles.count(t.role)) failAt(loc, what + " has the unknown kiln.role '" + t.role + "'");
  return t;
}

kilnc::FunctionSpec functionSpec(mlir::func::FuncOp func) {
  kilnc::FunctionSpec f;
  f.name = func.getName().str();
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    f.args.push_back(tensorSpec(func.getArgumentTypes()[i], func.getArgAttrDict(i), func.getLoc(),
                                "argument " + std::to_string(i) + " of @" + f.name, ""));
  for (unsigned i = 0; i < func.getNumResults(); ++i)
    f.results.push_back(tensorSpec(func.getResultTypes()[i], func.getResultAttrDict(i), func.getLoc(),
                                   "result " + std::to_string(i) + " of @" + f.name, "output"));
  for (const kilnc::TensorSpec& t : f.args)
    if ((t.role == "param" || t.role == "state") && llvm::is_contained(t.shape, -1))
      failAt(func.getLoc(), "the " + t.role + " '" + t.name + "' of @" + f.name + " has a dynamic shape " +
                                shapeText(t.shape));
  if (!f.has_batch())
    for (const kilnc::TensorSpec& t : f.args)
      if ((t.role == "input" || t.role == "label") && !t.shape.empty()) {
        f.static_batch = t.shape[0];
        break;
      }
  return f;
}

// Every param/state argument has its array in the npz (same dtype and shape); nothing else
// is there but the optimizer's update counters.
void checkWeights(const kilnc::ModelSpec& model, const std::string& path) {
  std::set<std::string> used;
  for (const kilnc::FunctionSpec& f : model.functions)
    for (const kilnc::TensorSpec& t : f.args) {
      if (t.role != "param" && t.role != "state") continue;
      used.insert(t.name);
      auto it = model.weights.find(t.name);
      std::string expected = std::string(kiln::dtype_name(t.dtype)) + " " + shapeText(t.shape);
      if (it == model.weights.end())
        fail("weights: " + path + " has no array '" + t.name + "' (" + expected + ", the " + t.role + " of @" +
             f.name + " in " + inputPath + ")");
      const kiln::Array& a = it->second;
      std::vector<int64_t> shape(a.shape().begin(), a.shape().end());
      if (shape != t.shape || a.dtype() != t.dtype)
        fail("weights: '" + t.name + "' is " + kiln::dtype_name(a.dtype()) + " " + shapeText(shape) + " in " + path +
             " but " + expected + " in " + inputPath);
    }
  for (const auto& [key, a] : model.weights) {
    if (used.count(key)) continue;
    bool counter = key.rfind("optimizer/", 0) == 0 && a.shape().empty() && !kiln::is_floating(a.dtype()) &&
                   (key == "optimizer/t" || key == "optimizer/epoch" || llvm::StringRef(key).ends_with("/t"));
    if (!counter)
      fail("weights: " + path + " has '" + key + "' (" + kiln::dtype_name(a.dtype()) + " " +
           shapeText(std::vector<int64_t>(a.shape().begin(), a.shape().end())) + "), which " + inputPath +
           " does not use");
  }
}

std::unique_ptr<llvm::TargetMachine> targetMachine() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::InitializeNativeTargetAsmParser();
  std::string triple = llvm::sys::getProcessTriple();
  std::string error;
  const llvm::Target* t = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!t) fail("no LLVM target for " + triple + ": " + error);
  std::string cpu = mcpu, features;
  if (cpu == "native") {
    cpu = llvm::sys::getHostCPUName().str();
    for (const auto& feature : llvm::sys::getHostCPUFeatures())
      features += (features.empty() ? "" : ",") + std::string(feature.second ? "+" : "-") + feature.first().str();
  }
  llvm::TargetOptions options;
  auto level = optLevel >= 3 ? llvm::CodeGenOptLevel::Aggressive
               : optLevel == 2 ? llvm::CodeGenOptLevel::Default
               : optLevel == 1 ? llvm::CodeGenOptLevel::Less
                               : llvm::CodeGenOptLevel::None;
  std::unique_ptr<llvm::TargetMachine> machine(
      t->createTargetMachine(llvm::Triple(triple), cpu, features, options, llvm::Reloc::PIC_, std::nullopt, level));
  if (!machine) fail("cannot create a target machine for " + triple + " --mcpu=" + mcpu);
  if (!machine->getMCSubtargetInfo()->isCPUStringValid(cpu))
    fail("--mcpu=" + mcpu + ": not a CPU that LLVM knows for " + triple +
         " (use native, x86-64, x86-64-v2, x86-64-v3, x86-64-v4 or a name such as skylake-avx512)");
  return machine;
}

void writeOutput(const std::string& path, const std::function<void(llvm::raw_pwrite_stream&)>& write) {
  std::error_code error;
  llvm::ToolOutputFile out(path, error, llvm::sys::fs::OF_None);
  if (error) fail("cannot write '" + path + "': " + error.message());
  write(out.os());
  out.os().flush();
  if (out.os().has_error()) fail("cannot write '" + path + "'");
  out.keep();
}

void writeHeader(const kilnc::ModelSpec& model) {
  if (!headerPath.empty())
    writeOutput(headerPath, [&](llvm::raw_pwrite_stream& os) { os << kilnc::header_text(model); });
}

// The LLVM module (compiled functions or the CUDA executor, internalized) with the entry
// points, optimized and written as --emit says.
void emitModule(llvm::Module& llvmModule, const kilnc::ModelSpec& model, llvm::TargetMachine& machine,
                kilnc::Threads threading) {
  for (llvm::Function& f : llvmModule)
    if (!f.isDeclaration()) f.setLinkage(llvm::GlobalValue::InternalLinkage);
  for (llvm::GlobalVariable& g : llvmModule.globals())
    if (!g.isDeclaration()) g.setLinkage(llvm::GlobalValue::InternalLinkage);
  kilnc::add_entry_points(llvmModule, model);
  if (threading == kilnc::Threads::pthread) kilnc::implement_openmp_with_pthreads(llvmModule);
  llvmModule.setDataLayout(machine.createDataLayout());
  llvmModule.setTargetTriple(machine.getTargetTriple());
  std::string broken;
  llvm::raw_string_ostream brokenOs(broken);
  if (llvm::verifyModule(llvmModule, &brokenOs)) fail("internal error: the entry points do not verify:\n" + broken);
  auto optimize = mlir::makeOptimizingTransformer(optLevel, /*sizeLevel=*/0, &machine);
  if (llvm::Error err = optimize(&llvmModule)) fail("optimizing LLVM IR failed: " + llvm::toString(std::move(err)));
  std::string output = outputPath;
  if (output.empty()) output = emitKind == Emit::object ? modelName + ".o" : "-";
  writeOutput(output, [&](llvm::raw_pwrite_stream& os) {
    if (emitKind == Emit::llvm) {
      llvmModule.print(os, nullptr);
      return;
    }
    llvm::legacy::PassManager codegen;
    auto type = emitKind == Emit::assembly ? llvm::CodeGenFileType::AssemblyFile : llvm::CodeGenFileType::ObjectFile;
    if (machine.addPassesToEmitFile(codegen, os, nullptr, type)) fail("the target cannot emit this file type");
    codegen.run(llvmModule);
  });
}

// --target=cuda: the CUDA kernels (NVRTC) of @forward and @step and the executor that runs them.
int runCuda(mlir::ModuleOp module, kilnc::ModelSpec& model) {
  std::vector<kilnc::CudaProgram> programs = kilnc::cuda_programs(module, model);
  std::string output = outputPath;
  if (output.empty()) output = emitKind == Emit::object ? modelName + ".o" : "-";
  if (emitKind == Emit::cuda) {
    writeOutput(output, [&](llvm::raw_pwrite_stream& os) {
      for (const kilnc::CudaProgram& p : programs) {
        if (programs.size() > 1) os << "// ---- the CUDA program of @" << p.spec->name << " ----\n";
        os << p.program.source;
      }
    });
    return 0;
  }
  if (emitKind == Emit::emulated) {
    // One shared object per function: -o FILE for the last (@step of a training step), and
    // FILE with "_forward" before its extension for @forward beside it.
    if (output == "-") fail("--emit=emulated writes a shared object: give -o FILE");
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("kilnc-emulated-" + std::to_string(::getpid()));
    for (size_t i = 0; i < programs.size(); ++i) {
      std::filesystem::path to = output;
      if (i + 1 < programs.size())
        to = to.parent_path() / (to.stem().string() + "_" + programs[i].spec->name + to.extension().string());
      std::string so = kiln::cuda::compileEmulated(programs[i].program, (dir / std::to_string(i)).string());
      std::error_code ec;
      std::filesystem::copy_file(so, to, std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) {
        std::filesystem::remove_all(dir);
        fail("cannot write '" + to.string() + "': " + ec.message());
      }
    }
    std::filesystem::remove_all(dir);
    return 0;
  }
  std::vector<std::string> archs(gpuArchs.begin(), gpuArchs.end());
  if (archs.empty()) archs = {"sm_80", "sm_90"};
  kilnc::CudaPlan plan = kilnc::cuda_plan(programs, archs);
  model.cuda = &plan;
  std::unique_ptr<llvm::TargetMachine> machine = targetMachine();
  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule = kilnc::cuda_executor(llvmContext);
  emitModule(*llvmModule, model, *machine, kilnc::Threads::none);
  writeHeader(model);
  return 0;
}

int run() {
  if (target != "cpu" && target != "cuda") fail("--target=" + target + ": unknown target (cpu or cuda)");
  const bool cuda = target == "cuda";
  if (!cuda && (emitKind == Emit::cuda || emitKind == Emit::emulated))
    fail(std::string("--emit=") + (emitKind == Emit::cuda ? "cuda" : "emulated") + ": only with --target=cuda");
  if (cuda && emitKind == Emit::mlir)
    fail("--emit=mlir: not with --target=cuda (--emit=cuda writes its kernels)");
  if (!cuda && gpuArchs.getNumOccurrences()) fail("--gpu-arch: only with --target=cuda");
  kilnc::Threads threading = kilnc::Threads::none;
  if (threads == "pthread")
    threading = kilnc::Threads::pthread;
  else if (threads == "openmp")
    threading = kilnc::Threads::openmp;
  else if (threads != "none")
    fail("--threads=" + threads + ": unknown (none, pthread or openmp)");
  if (cuda && threading != kilnc::Threads::none) fail("--threads=" + threads + ": not with --target=cuda");
  if (!isCIdentifier(modelName))
    fail("--name=" + modelName + ": not a C identifier (letters, digits and '_', not starting with a digit, "
         "not a C keyword)");

  mlir::DialectRegistry registry;
  registry.insert<kiln::ir::KilnDialect, mlir::func::FuncDialect>();
  kiln::cpu::registerCpuDialects(registry);
  kiln::passes::registerKilnPasses();
  mlir::MLIRContext ctx(registry, mlir::MLIRContext::Threading::DISABLED);
  ctx.loadAllAvailableDialects();
  llvm::SourceMgr sources;
  std::string error;
  auto file = mlir::openInputFile(inputPath, &error);
  if (!file) fail("cannot open '" + inputPath + "': " + error);
  sources.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler diagnostics(sources, &ctx);
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceFile<mlir::ModuleOp>(sources, &ctx);
  if (!module) return 1;

  kilnc::ModelSpec model;
  model.name = modelName;
  model.threaded = threading != kilnc::Threads::none;
  for (auto func : module->getOps<mlir::func::FuncOp>()) {
    if (func.isExternal()) failAt(func.getLoc(), "@" + func.getName().str() + " has no body");
    if (func.getName() != "forward" && func.getName() != "step")
      failAt(func.getLoc(), "unexpected function @" + func.getName().str() +
                                " (an export holds @forward and, for a training step, @step)");
    model.functions.push_back(functionSpec(func));
  }
  if (model.functions.empty()) failAt(module->getLoc(), "no @forward or @step function to compile");
  for (const kilnc::FunctionSpec& f : model.functions) {
    if (f.name == "forward") model.forward = &f;
    if (f.name == "step") model.step = &f;
  }
  bool needsWeights = false;
  for (const kilnc::FunctionSpec& f : model.functions)
    for (const kilnc::TensorSpec& t : f.args) needsWeights |= t.role == "param" || t.role == "state";
  if (!weightsPath.empty()) {
    try {
      model.weights = kiln::npz::read(weightsPath);
    } catch (const kiln::Error& e) {
      fail(e.what());
    }
    checkWeights(model, weightsPath);
  } else if (needsWeights) {
    fail("--weights: " + inputPath + " has parameters; give the .npz written with it");
  }
  if (cuda) return runCuda(*module, model);

  // Compiled functions get private names; the C entry points are the only exported symbols.
  for (kilnc::FunctionSpec& f : model.functions) {
    auto func = module->lookupSymbol<mlir::func::FuncOp>(f.name);
    // The names are read; LLVM's translation would warn about them.
    for (unsigned i = 0; i < func.getNumArguments(); ++i)
      for (const char* attr : {"kiln.name", "kiln.role"}) func.removeArgAttr(i, attr);
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      for (const char* attr : {"kiln.name", "kiln.role"}) func.removeResultAttr(i, mlir::StringAttr::get(&ctx, attr));
    // The C entry points double-buffer parameters and state: no result aliases an argument.
    func->removeAttr("kiln.donations");
    std::string symbol = "kilnc_graph_" + f.name;
    func.setName(symbol);
    f.ciface = "_mlir_ciface_" + symbol;
    if (model.threaded) kilnc::add_thread_count_argument(func);
  }
  kiln::cpu::PipelineOptions pipeline;
  // Threads: large loops become omp.parallel regions (as in the JIT), on the functions' thread count.
  pipeline.parallel = model.threaded;
  if (minParallelWork < 1) fail("--min-parallel-work=" + std::to_string(minParallelWork) + ": must be at least 1");
  pipeline.min_parallel_work = minParallelWork;
  pipeline.gemm_blas = false;  // generated GEMMs: no BLAS, no kiln runtime
  pipeline.profile = false;
  // The thread count argument reaches the parallel regions of the entry function only.
  pipeline.outline_kernels = !model.threaded;
  // The target (--mcpu): its vector registers choose the generated GEMM's register tiles
  // (AVX-512, AVX2, SSE), and it emits the object.
  std::unique_ptr<llvm::TargetMachine> machine = targetMachine();
  {
    const llvm::MCSubtargetInfo* subtarget = machine->getMCSubtargetInfo();
    std::string features;
    for (const char* feature : {"+avx512f", "+avx"})
      if (subtarget->checkFeatures(feature)) features += std::string(feature) + ",";
    kiln::cpu::VectorShape shape = kiln::cpu::vector_shape_of(features);
    pipeline.vector_bits = shape.bits;
    pipeline.vector_registers = shape.registers;
  }
  mlir::PassManager pm(&ctx);
  // The C entry points build every `?` dimension from their one batch argument (and
  // return an error code for a bad one), so the graph needs no assertion of its own.
  if (mlir::failed(mlir::parsePassPipeline("func.func(kiln-fuse,kiln-lower-to-linalg{batch-checks=false})", pm)))
    fail("internal error: cannot build the pipeline -kiln-fuse, -kiln-lower-to-linalg");
  kiln::cpu::buildLowerToLLVMPipeline(pm, pipeline);
  if (mlir::failed(pm.run(*module))) return 1;
  if (model.threaded)
    for (const kilnc::FunctionSpec& f : model.functions) kilnc::use_thread_count_argument(*module, "kilnc_graph_" + f.name);

  if (emitKind == Emit::mlir) {
    std::string output = outputPath.empty() ? std::string("-") : std::string(outputPath);
    writeOutput(output, [&](llvm::raw_pwrite_stream& os) { (*module)->print(os); });
  } else {
    llvm::LLVMContext llvmContext;
    std::unique_ptr<llvm::Module> llvmModule = mlir::translateModuleToLLVMIR(*module, llvmContext, modelName);
    if (!llvmModule) fail("translating to LLVM IR failed");
    emitModule(*llvmModule, model, *machine, threading);
  }
  writeHeader(model);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(kilncCategory);
  cl::SetVersionPrinter([](llvm::raw_ostream& os) {
    os << "kilnc (kiln " << KILN_VERSION_STRING << ") with LLVM " << LLVM_VERSION_STRING << "\n"
       << "  default target: " << llvm::sys::getProcessTriple() << ", host CPU: " << llvm::sys::getHostCPUName()
       << "\n";
  });
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    llvm::StringRef a(argv[i]);
    if (i > 0 && (a.consume_front("--threads=") || a.consume_front("-threads="))) {
      threads = a.str();
    } else if (i > 0 && (a == "--threads" || a == "-threads") && i + 1 < argc) {
      threads = argv[++i];
    } else {
      args.push_back(argv[i]);
    }
  }
  cl::ParseCommandLineOptions(static_cast<int>(args.size()), args.data(),
                              "kilnc: compiles a model exported by kiln::export_model or export_training_step "
                              "(.mlir + .npz) into an object file and a C header\n");
  try {
    return run();
  } catch (const ToolError& e) {
    if (!e.message.empty()) llvm::WithColor::error(llvm::errs(), "kilnc") << e.message << "\n";
    return 1;
  } catch (const kiln::Error& e) {
    llvm::WithColor::error(llvm::errs(), "kilnc") << e.what() << "\n";
    return 1;
  }
}
