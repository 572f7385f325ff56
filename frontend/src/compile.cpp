// Emits a GraphSpec as a kiln func.func, runs the frontend pipeline, and builds an Executable.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

#include "graph.h"
#include "kiln/build_identity.h"
#include "kiln/cache.h"
#include "kiln/codegen/cpu.h"
#include "kiln/codegen/interp.h"
#include "kiln/env.h"
#include "kiln/kernel_cache.h"
#include "kiln/passes/Passes.h"
#include "llvm/Support/raw_os_ostream.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

namespace kiln::detail {
namespace {

mlir::MLIRContext& context() {
  static mlir::MLIRContext* ctx = [] {
    auto* c = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    c->loadDialect<kiln::ir::KilnDialect, mlir::func::FuncDialect>();
    return c;
  }();
  return *ctx;
}

mlir::Type elementType(mlir::Builder& b, DType t) {
  switch (t) {
    case DType::f32: return b.getF32Type();
    case DType::f64: return b.getF64Type();
    case DType::i32: return b.getI32Type();
    case DType::i64: return b.getI64Type();
    case DType::b8: return b.getI1Type();
  }
  return {};
}

mlir::RankedTensorType tensorType(mlir::Builder& b, const Shape& s, DType t) {
  return mlir::RankedTensorType::get(s, elementType(b, t));
}

mlir::Attribute toAttribute(mlir::Builder& b, const Attr& a, mlir::RankedTensorType resultType) {
  switch (a.kind) {
    case Attr::Kind::Int: return b.getI64IntegerAttr(a.i);
    case Attr::Kind::Ints: return b.getDenseI64ArrayAttr(a.ints);
    case Attr::Kind::Float: return b.getF64FloatAttr(a.f);
    case Attr::Kind::Str: return b.getStringAttr(a.s);
    case Attr::Kind::Unit: return b.getUnitAttr();
    case Attr::Kind::Splat: {
      mlir::Type e = resultType.getElementType();
      mlir::Attribute v = mlir::isa<mlir::FloatType>(e) ? mlir::Attribute(b.getFloatAttr(e, a.f))
                                                        : mlir::Attribute(b.getIntegerAttr(e, (int64_t)a.f));
      return mlir::DenseElementsAttr::get(resultType, v);
    }
  }
  return {};
}

// Collects diagnostics while emitting so failures become kiln::Error with the IR's words.
struct DiagnosticCollector {
  std::string text;
  mlir::ScopedDiagnosticHandler handler;
  explicit DiagnosticCollector(mlir::MLIRContext& ctx)
      : handler(&ctx, [this](mlir::Diagnostic& d) {
          llvm::raw_string_ostream os(text);
          os << d.getLocation() << ": " << d << "\n";
          return mlir::success();
        }) {}
};

// Emits g's ops at b's insertion point; `values` holds the values of g's
// arguments (function or block arguments) and gets one value per op appended.
// A "kiln.custom" op gets its forward and backward regions emitted recursively.
void emitOps(mlir::OpBuilder& b, const GraphSpec& g, std::vector<mlir::Value>& values) {
  mlir::MLIRContext& ctx = *b.getContext();
  mlir::Location loc = b.getUnknownLoc();
  for (const GraphOp& op : g.ops) {
    auto type = tensorType(b, op.shape, op.dtype);
    mlir::Location opLoc = op.line > 0 ? mlir::Location(mlir::FileLineColLoc::get(&ctx, op.file, op.line, 0)) : loc;
    if (op.op == "kiln.constant" && !type.hasStaticShape()) {
      // A splat of a symbolic (batch) shape: a 0-d constant broadcast to it.
      auto scalarType = tensorType(b, {}, op.dtype);
      mlir::OperationState constant(opLoc, op.op);
      for (const Attr& a : op.attrs) constant.addAttribute(a.name, toAttribute(b, a, scalarType));
      constant.types.push_back(scalarType);
      mlir::Value scalar = b.create(constant)->getResult(0);
      values.push_back(kiln::ir::BroadcastToOp::create(b, opLoc, type, scalar).getResult());
      continue;
    }
    mlir::OperationState state(opLoc, op.op);
    for (int v : op.operands) state.operands.push_back(values[v]);
    for (const Attr& a : op.attrs) state.addAttribute(a.name, toAttribute(b, a, type));
    state.types.push_back(type);
    std::vector<const GraphSpec*> regions;
    for (const auto& r : {op.forward, op.backward})
      if (r) regions.push_back(r.get());
    for (size_t i = 0; i < regions.size(); ++i) state.addRegion();
    mlir::Operation* created = b.create(state);
    for (size_t i = 0; i < regions.size(); ++i) {
      const GraphSpec& sub = *regions[i];
      mlir::OpBuilder::InsertionGuard guard(b);
      std::vector<mlir::Type> argTypes;
      std::vector<mlir::Location> argLocs;
      for (const GraphSpec::Arg& a : sub.args) {
        argTypes.push_back(tensorType(b, a.shape, a.dtype));
        argLocs.push_back(opLoc);
      }
      mlir::Block* block = b.createBlock(&created->getRegion(i), {}, argTypes, argLocs);
      std::vector<mlir::Value> subValues(block->args_begin(), block->args_end());
      emitOps(b, sub, subValues);
      std::vector<mlir::Value> yielded;
      for (int o : sub.outputs) yielded.push_back(subValues[o]);
      kiln::ir::YieldOp::create(b, opLoc, yielded);
    }
    values.push_back(created->getResult(0));
  }
}

mlir::OwningOpRef<mlir::ModuleOp> emitModule(const GraphSpec& g) {
  mlir::MLIRContext& ctx = context();
  mlir::OpBuilder b(&ctx);
  mlir::Location loc = b.getUnknownLoc();
  auto module = mlir::ModuleOp::create(loc);
  std::vector<mlir::Type> argTypes, resultTypes;
  for (const GraphSpec::Arg& a : g.args) argTypes.push_back(tensorType(b, a.shape, a.dtype));
  auto valueType = [&](int id) -> mlir::Type {
    int nargs = static_cast<int>(g.args.size());
    if (id < nargs) return argTypes[id];
    const GraphOp& op = g.ops[id - nargs];
    return tensorType(b, op.shape, op.dtype);
  };
  for (int o : g.outputs) resultTypes.push_back(valueType(o));
  b.setInsertionPointToEnd(module.getBody());
  auto func = mlir::func::FuncOp::create(b, loc, "graph", b.getFunctionType(argTypes, resultTypes));
  mlir::Block* entry = func.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  std::vector<mlir::Value> values(entry->args_begin(), entry->args_end());
  emitOps(b, g, values);
  std::vector<mlir::Value> results;
  for (int o : g.outputs) results.push_back(values[o]);
  mlir::func::ReturnOp::create(b, loc, results);
  return module;
}

class InterpExecutable : public Executable {
 public:
  explicit InterpExecutable(mlir::OwningOpRef<mlir::ModuleOp> m) : module_(std::move(m)) {}
  std::vector<Array> run(const std::vector<Array>& args) override {
    auto func = mlir::cast<mlir::func::FuncOp>(module_->getBody()->front());
    return interp::run(func, args);
  }

 private:
  mlir::OwningOpRef<mlir::ModuleOp> module_;
};

// A graph compiled by the CPU backend: outputs are allocated here and written
// by the kernel in place (out-params); inputs are read in place.
// A gather whose ids are a graph argument: checked before the kernel runs, since
// compiled code cannot throw (the interpreter checks every gather itself).
struct GatherIdCheck {
  size_t arg;
  int64_t rows;  // kBatchDim: the run-time batch size
  std::string where;  // "file:line: " of the user's call, or ""
};

// Where the run-time batch size of a graph with symbolic dimensions is read:
// the first argument with one, as -kiln-lower-to-linalg does.
struct BatchSource {
  size_t arg = 0, dim = 0;
  bool present = false;
};

BatchSource batchSource(const GraphSpec& graph) {
  for (size_t a = 0; a < graph.args.size(); ++a)
    for (size_t d = 0; d < graph.args[a].shape.size(); ++d)
      if (graph.args[a].shape[d] == kBatchDim) return {a, d, true};
  return {};
}

std::vector<GraphSpec::Arg> outputTypes(const GraphSpec& graph) {
  std::vector<GraphSpec::Arg> outputs;
  int nargs = static_cast<int>(graph.args.size());
  for (int o : graph.outputs)
    outputs.push_back(o < nargs ? graph.args[o]
                                : GraphSpec::Arg{graph.ops[o - nargs].shape, graph.ops[o - nargs].dtype});
  return outputs;
}

std::vector<GatherIdCheck> gatherIdChecks(const GraphSpec& graph) {
  std::vector<GatherIdCheck> checks;
  int nargs = static_cast<int>(graph.args.size());
  auto shapeOf = [&](int v) { return v < nargs ? graph.args[v].shape : graph.ops[v - nargs].shape; };
  for (const GraphOp& op : graph.ops) {
    if (op.op != "kiln.gather" || op.operands[1] >= nargs) continue;
    std::string where = op.line > 0 ? fmt::format("{}:{}: ", op.file, op.line) : "";
    checks.push_back({static_cast<size_t>(op.operands[1]), shapeOf(op.operands[0]).at(0), where});
  }
  return checks;
}

class CpuExecutable : public Executable {
 public:
  CpuExecutable(std::unique_ptr<cpu::Kernel> kernel, const GraphSpec& graph)
      : kernel_(std::move(kernel)), outputs_(outputTypes(graph)), checks_(gatherIdChecks(graph)),
        batch_(batchSource(graph)) {}
  std::vector<Array> run(const std::vector<Array>& args) override {
    int64_t batch = batch_.present ? args.at(batch_.arg).shape().at(batch_.dim) : 0;
    for (const GatherIdCheck& c : checks_) {
      const Array& ids = args.at(c.arg);
      int64_t rows = c.rows == kBatchDim ? batch : c.rows;
      for (int64_t i = 0; i < ids.size(); ++i) {
        auto id = static_cast<int64_t>(ids.at(i));
        if (id < 0 || id >= rows)
          throw Error(fmt::format("{}kiln: embed/gather: id {} out of range [0, {})", c.where, id, rows));
      }
    }
    std::vector<Array> results;
    results.reserve(outputs_.size());
    // Out-params are written entirely by the kernel: no zero-fill needed.
    for (const GraphSpec::Arg& o : outputs_) {
      Shape shape = o.shape;
      for (int64_t& d : shape)
        if (d == kBatchDim) d = batch;
      results.push_back(Array::empty(shape, o.dtype));
    }
    kernel_->call(args, results);
    return results;
  }

 private:
  std::unique_ptr<cpu::Kernel> kernel_;
  std::vector<GraphSpec::Arg> outputs_;
  std::vector<GatherIdCheck> checks_;
  BatchSource batch_;
};

// The disk cache of compiled objects, keyed by the graph's structure, kiln's
// version and the target (LLVM version, CPU, features, threading, -O level, GEMM choice).
// Follows KILN_CACHE_DIR and KILN_CACHE_MAX_MB when they change (tests, tools).
KernelCache& diskCache() {
  static std::unique_ptr<KernelCache> cache;
  static std::string settings;
  std::string now = KernelCache::default_dir() + "|" + std::to_string(KernelCache::default_max_bytes());
  if (!cache || now != settings) {
    cache = std::make_unique<KernelCache>();
    settings = now;
  }
  return *cache;
}

std::string diskKey(const GraphSpec& graph) {
  // Not cached: the pipeline options in it (KILN_GEMM, ...) follow the environment.
  return KernelCache::make_key(
      {"kiln-cpu-object", KILN_VERSION_STRING, kiln::compiler_identity(), cpu::host_target_id(), graph.key()});
}

// 16 hex digits of a stable 64-bit hash (FNV-1a) of the graph's structural key.
std::string graphHash(const GraphSpec& graph) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : graph.key()) h = (h ^ c) * 1099511628211ull;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

// KILN_DUMP=dir: each compiled graph leaves <dir>/<graph hash>.* files. A folder
// that cannot be created or written is reported once, and nothing is dumped.
std::string dumpPrefix(const std::string& hash) {
  std::string dir = env::get_string("KILN_DUMP");
  if (dir.empty()) return {};
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error || ::access(dir.c_str(), W_OK | X_OK) != 0) {
    std::string reason = error ? error.message() : std::strerror(errno);
    env::warn_once("KILN_DUMP=" + dir, fmt::format("kiln: KILN_DUMP={}: cannot create or write this folder ({}); "
                                                   "nothing is dumped",
                                                   dir, reason));
    return {};
  }
  return (std::filesystem::path(dir) / hash).string();
}

void writeDump(const std::string& prefix, const char* suffix, mlir::ModuleOp module) {
  if (prefix.empty()) return;
  std::ofstream out(prefix + suffix);
  llvm::raw_os_ostream os(out);
  module->print(os);
}

std::string backendFromEnvironment() {
  // The compiled CPU backend is the default; 'interp' is the reference interpreter.
  std::string name = env::get_string("KILN_BACKEND");
  return !name.empty() ? name : "cpu";
}

std::shared_ptr<Executable> compileForCpu(const GraphSpec& graph, mlir::ModuleOp module,
                                          const std::string& hash, const std::string& dump,
                                          std::chrono::steady_clock::time_point start) {
  cpu::CompileOptions options;
  options.dump_prefix = dump;
  options.failure_prefix = !dump.empty() ? dump
                                         : (std::filesystem::temp_directory_path() / ("kiln-" + hash)).string();
  cpu::CompileReport report;
  std::vector<uint8_t> object = cpu::compile_module(module, options, &report);
  auto loadStart = std::chrono::steady_clock::now();
  diskCache().put(diskKey(graph), object);
  std::unique_ptr<cpu::Kernel> kernel = cpu::Kernel::load_object(object);
  auto end = std::chrono::steady_clock::now();
  if (!dump.empty()) {
    auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    std::ofstream(dump + ".summary.txt")
        << fmt::format("graph {}: {} args, {} kiln ops, {} linalg ops, {} outputs, object {} bytes; "
                       "compile {:.1f} ms (kiln->linalg {:.1f}, ->LLVM dialect {:.1f}, LLVM {:.1f}, load {:.1f})\n",
                       hash, graph.args.size(), graph.ops.size(), report.linalg_ops,
                       graph.outputs.size(), object.size(), ms(start, end), report.linalg_ms,
                       report.llvm_dialect_ms, report.object_ms, ms(loadStart, end));
  }
  return std::make_shared<CpuExecutable>(std::move(kernel), graph);
}

}  // namespace

std::shared_ptr<Executable> compile_graph(const GraphSpec& graph, bool* from_disk) {
  auto start = std::chrono::steady_clock::now();
  std::string backend = backend_name();
  if (from_disk) *from_disk = false;
  if (backend == "cpu") {
    // A disk hit links the cached object: no MLIR at all.
    if (std::optional<std::vector<uint8_t>> object = diskCache().get(diskKey(graph))) {
      if (from_disk) *from_disk = true;
      if (!env::get_string("KILN_DUMP").empty())
        env::warn_once("KILN_DUMP and the disk cache",
                       "kiln: KILN_DUMP: graphs loaded from the disk cache (" + diskCache().dir() +
                           ") are not compiled, so nothing is dumped for them; to dump every graph, "
                           "turn the disk cache off with KILN_CACHE_MAX_MB=0 or clear that folder");
      return std::make_shared<CpuExecutable>(cpu::Kernel::load_object(*object), graph);
    }
  }
  mlir::MLIRContext& ctx = context();
  DiagnosticCollector diagnostics(ctx);
  mlir::OwningOpRef<mlir::ModuleOp> module = emitModule(graph);
  if (mlir::failed(mlir::verify(*module))) {
    std::string ir;
    llvm::raw_string_ostream os(ir);
    module->print(os);
    throw Error("kiln: internal error: the traced graph does not verify:\n" + diagnostics.text + ir);
  }
  std::string hash = graphHash(graph);
  std::string dump = dumpPrefix(hash);
  writeDump(dump, ".kiln.mlir", *module);
  mlir::PassManager pm(&ctx);
  passes::buildKilnFrontendPipeline(pm);
  if (mlir::failed(pm.run(*module)))
    throw Error("kiln: compiling the graph failed:\n" + diagnostics.text);
  writeDump(dump, ".frontend.mlir", *module);
  if (backend == "cpu") {
    // Fusion regions group each kernel's ops; the lowering turns a region into fused loops.
    mlir::PassManager fuse(&ctx);
    fuse.addNestedPass<mlir::func::FuncOp>(passes::createKilnFuse());
    if (mlir::failed(fuse.run(*module)))
      throw Error("kiln: fusing the graph failed:\n" + diagnostics.text);
    writeDump(dump, ".fused.mlir", *module);
    return compileForCpu(graph, *module, hash, dump, start);
  }
  return std::make_shared<InterpExecutable>(std::move(module));
}

}  // namespace kiln::detail

namespace kiln {

std::string backend_name() {
  std::string name = detail::backendFromEnvironment();
  if (name == "interp") return name;
  if (name == "cpu") {
    if (!cpu::linalg_lowering_available())
      throw Error("kiln: KILN_BACKEND=cpu: the compiled CPU backend needs the -kiln-lower-to-linalg "
                  "pass, which this build does not have yet; use KILN_BACKEND=interp");
    return name;
  }
  throw Error("kiln: KILN_BACKEND=" + name +
              ": unknown backend; this build has 'cpu' (compiled, LLVM) and 'interp' (the "
              "reference interpreter); 'cuda' is not implemented yet");
}

}  // namespace kiln
