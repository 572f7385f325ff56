// Emits a GraphSpec as a kiln func.func, runs the frontend pipeline, and builds an Executable.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
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
#include "kiln/config.h"
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

// The op whose second result reports an id or label out of range (see RangeCheck).
constexpr const char* kCheckRangeOp = "kiln.check_range";

// kiln's MLIRContext is single-threaded (no locks in its uniquers): everything
// that touches it (emitting, passes, the interpreter) holds this mutex.
std::recursive_mutex& mlirMutex() {
  static std::recursive_mutex m;
  return m;
}

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
// A "kiln.check_range" op has a second result, its status, appended to
// `statuses` (when given: the function's own ops; a region's checks go unread).
void emitOps(mlir::OpBuilder& b, const GraphSpec& g, std::vector<mlir::Value>& values,
             std::vector<mlir::Value>* statuses = nullptr) {
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
    bool check = op.op == kCheckRangeOp;
    if (check) state.types.push_back(mlir::RankedTensorType::get({2}, b.getI64Type()));
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
    if (check && statuses) statuses->push_back(created->getResult(1));
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
  // Then the statuses of the run-time checks (see RangeCheck), in op order.
  for (const GraphOp& op : g.ops)
    if (op.op == kCheckRangeOp) resultTypes.push_back(mlir::RankedTensorType::get({2}, b.getI64Type()));
  b.setInsertionPointToEnd(module.getBody());
  auto func = mlir::func::FuncOp::create(b, loc, "graph", b.getFunctionType(argTypes, resultTypes));
  mlir::Block* entry = func.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  std::vector<mlir::Value> values(entry->args_begin(), entry->args_end()), statuses;
  emitOps(b, g, values, &statuses);
  std::vector<mlir::Value> results;
  for (int o : g.outputs) results.push_back(values[o]);
  results.insert(results.end(), statuses.begin(), statuses.end());
  mlir::func::ReturnOp::create(b, loc, results);
  return module;
}

class InterpExecutable : public Executable {
 public:
  explicit InterpExecutable(mlir::OwningOpRef<mlir::ModuleOp> m) : module_(std::move(m)) {}
  ~InterpExecutable() override {
    std::lock_guard<std::recursive_mutex> lock(mlirMutex());
    module_ = nullptr;
  }
  std::vector<Array> run(const std::vector<Array>& args) override {
    std::lock_guard<std::recursive_mutex> lock(mlirMutex());
    auto func = mlir::cast<mlir::func::FuncOp>(module_->getBody()->front());
    return interp::run(func, args);
  }

 private:
  mlir::OwningOpRef<mlir::ModuleOp> module_;
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

// The function's results: the graph's outputs, then one status (tensor<2xi64>) per run-time check.
std::vector<GraphSpec::Arg> outputTypes(const GraphSpec& graph) {
  std::vector<GraphSpec::Arg> outputs;
  int nargs = static_cast<int>(graph.args.size());
  for (int o : graph.outputs)
    outputs.push_back(o < nargs ? graph.args[o]
                                : GraphSpec::Arg{graph.ops[o - nargs].shape, graph.ops[o - nargs].dtype});
  for (const GraphOp& op : graph.ops)
    if (op.op == kCheckRangeOp) outputs.push_back(GraphSpec::Arg{{2}, DType::i64});
  return outputs;
}

// A graph compiled by the CPU backend: outputs are allocated here and written
// by the kernel in place (out-params); inputs are read in place.
class CpuExecutable : public Executable {
 public:
  CpuExecutable(std::unique_ptr<cpu::Kernel> kernel, const GraphSpec& graph)
      : kernel_(std::move(kernel)), outputs_(outputTypes(graph)), batch_(batchSource(graph)) {}
  std::vector<Array> run(const std::vector<Array>& args) override {
    int64_t batch = batch_.present ? args.at(batch_.arg).shape().at(batch_.dim) : 0;
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

// The executable of `backend` ("cpu" or "interp"); its run() returns the
// graph's outputs, then the statuses of its run-time checks.
static std::shared_ptr<Executable> compileBackend(const GraphSpec& graph, bool* from_disk,
                                                  const std::string& backend) {
  // One compile at a time: the MLIRContext, the JIT's set-up and the disk cache handle are shared.
  std::lock_guard<std::recursive_mutex> lock(mlirMutex());
  auto start = std::chrono::steady_clock::now();
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

namespace {

// A kiln.check_range of the graph, and what its error names.
struct RangeCheck {
  std::string function, operand;
  int64_t limit = 0;
  std::optional<int64_t> ignore;
  Shape shape;        // of the checked value (kBatchDim: the run-time batch size)
  std::string where;  // "file:line: " of the user's call, or ""
};

std::vector<RangeCheck> rangeChecks(const GraphSpec& graph) {
  std::vector<RangeCheck> checks;
  for (const GraphOp& op : graph.ops) {
    if (op.op != kCheckRangeOp) continue;
    RangeCheck c;
    for (const Attr& a : op.attrs) {
      if (a.name == "function") c.function = a.s;
      if (a.name == "operand") c.operand = a.s;
      if (a.name == "limit") c.limit = a.i;
      if (a.name == "ignore") c.ignore = a.i;
    }
    c.shape = op.shape;
    c.where = op.line > 0 ? fmt::format("{}:{}: ", op.file, op.line) : "";
    checks.push_back(std::move(c));
  }
  return checks;
}

// Chainer's message: "Each label `t` need to satisfy `0 <= t < x.shape[1] or t == -1`",
// with the offending element: "..., but t[3] = 12".
[[noreturn]] void raiseRangeError(const RangeCheck& c, int64_t flat, int64_t value, int64_t batch) {
  std::string index;
  if (!c.shape.empty()) {
    std::vector<int64_t> idx(c.shape.size());
    for (size_t d = c.shape.size(); d-- > 0;) {
      int64_t size = c.shape[d] == kBatchDim ? batch : c.shape[d];
      idx[d] = size > 0 ? flat % size : 0;
      flat = size > 0 ? flat / size : 0;
    }
    for (size_t d = 0; d < idx.size(); ++d) index += (d ? ", " : "[") + std::to_string(idx[d]);
    index += "]";
  }
  std::string valid = fmt::format("0 <= {} < {}", c.operand, c.limit);
  if (c.ignore) valid += fmt::format(" or {} == {}", c.operand, *c.ignore);
  throw Error(fmt::format("{}kiln: {}: each value of `{}` needs to satisfy `{}`, but {}{} = {}", c.where, c.function,
                          c.operand, valid, c.operand, index, value));
}

// The graph with every symbolic (batch) dimension replaced by `batch`.
void concretize(GraphSpec& g, int64_t batch) {
  auto fix = [batch](std::vector<int64_t>& v) {
    for (int64_t& d : v)
      if (d == kBatchDim) d = batch;
  };
  for (GraphSpec::Arg& a : g.args) fix(a.shape);
  for (GraphOp& op : g.ops) {
    fix(op.shape);
    for (Attr& a : op.attrs) fix(a.ints);
    for (std::shared_ptr<const GraphSpec>* region : {&op.forward, &op.backward})
      if (*region) {
        auto copy = std::make_shared<GraphSpec>(**region);
        concretize(*copy, batch);
        *region = std::move(copy);
      }
  }
}

int64_t firstNonFinite(const Array& a) {
  if (!is_floating(a.dtype())) return -1;
  for (int64_t i = 0; i < a.size(); ++i)
    if (!std::isfinite(a.at(i))) return i;
  return -1;
}

std::string nonFiniteName(double v) { return std::isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf"; }

// Debug mode found a non-finite value in output `output`: runs the graph again
// on the interpreter with every floating op value as an output, and names the
// first op (in the order the user's code recorded them) whose value is not finite.
[[noreturn]] void raiseNonFinite(const GraphSpec& graph, const std::vector<Array>& args, int64_t batch,
                                 size_t output, double value) {
  GraphSpec all = graph;
  if (batch > 0) concretize(all, batch);
  int nargs = static_cast<int>(all.args.size());
  all.outputs.clear();
  for (size_t i = 0; i < all.ops.size(); ++i)
    if (is_floating(all.ops[i].dtype)) all.outputs.push_back(nargs + static_cast<int>(i));
  const GraphOp* culprit = nullptr;
  std::string found;
  std::string failure;
  try {
    std::vector<Array> values = compileBackend(all, nullptr, "interp")->run(args);
    for (size_t k = 0; k < all.outputs.size() && k < values.size() && !culprit; ++k)
      if (int64_t i = firstNonFinite(values[k]); i >= 0) {
        culprit = &all.ops[all.outputs[k] - nargs];
        found = nonFiniteName(values[k].at(i));
      }
  } catch (const Error& e) {
    failure = e.what();
  }
  if (!culprit) {
    // Not reproduced by the interpreter: name the op behind the output.
    int id = graph.outputs.at(output);
    if (id < nargs)
      throw Error(fmt::format("kiln: debug mode: {} in output {} of the graph, an input of it{}", nonFiniteName(value),
                              output, failure.empty() ? "" : " (" + failure + ")"));
    culprit = &graph.ops[id - nargs];
    found = nonFiniteName(value);
  }
  std::string where = culprit->line > 0 ? fmt::format("{}:{}: ", culprit->file, culprit->line) : "";
  throw Error(fmt::format("{}kiln: debug mode: {} is detected on forward computation of {}", where, found,
                          culprit->op));
}

// Every backend's executable behind the same checks: a failed kiln.check_range
// becomes a kiln::Error after the call, and in debug mode (kiln::set_debug,
// KILN_DEBUG=1) a NaN or inf in an output names the op that produced it.
class CheckedExecutable : public Executable {
 public:
  CheckedExecutable(std::shared_ptr<Executable> inner, const GraphSpec& graph)
      : inner_(std::move(inner)), graph_(graph), checks_(rangeChecks(graph)), batch_(batchSource(graph)) {}

  std::vector<Array> run(const std::vector<Array>& args) override {
    std::vector<Array> results = inner_->run(args);
    size_t outputs = graph_.outputs.size();
    if (results.size() != outputs + checks_.size())
      throw Error(fmt::format("kiln: internal error: the compiled graph returned {} results for {} outputs and {} "
                              "checks", results.size(), outputs, checks_.size()));
    int64_t batch = batch_.present ? args.at(batch_.arg).shape().at(batch_.dim) : 0;
    for (size_t c = 0; c < checks_.size(); ++c) {
      const Array& status = results[outputs + c];
      if (status.at(0) >= 0)
        raiseRangeError(checks_[c], static_cast<int64_t>(status.at(0)), static_cast<int64_t>(status.at(1)), batch);
    }
    results.resize(outputs);
    if (is_debug())
      for (size_t o = 0; o < outputs; ++o)
        if (int64_t i = firstNonFinite(results[o]); i >= 0) raiseNonFinite(graph_, args, batch, o, results[o].at(i));
    return results;
  }

 private:
  std::shared_ptr<Executable> inner_;
  GraphSpec graph_;
  std::vector<RangeCheck> checks_;
  BatchSource batch_;
};

// set_debug's value: -1 until set, then 0 or 1.
std::atomic<int>& debugSetting() {
  static std::atomic<int> setting{-1};
  return setting;
}

}  // namespace

std::shared_ptr<Executable> compile_graph(const GraphSpec& graph, bool* from_disk) {
  return std::make_shared<CheckedExecutable>(compileBackend(graph, from_disk, backend_name()), graph);
}

}  // namespace kiln::detail

namespace kiln {

void set_debug(bool debug) { detail::debugSetting().store(debug ? 1 : 0); }

bool is_debug() {
  int setting = detail::debugSetting().load();
  if (setting >= 0) return setting != 0;
  static const bool from_environment = [] {
    const char* env = std::getenv("KILN_DEBUG");
    return env && *env && std::string(env) != "0";
  }();
  return from_environment;
}

}  // namespace kiln

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
