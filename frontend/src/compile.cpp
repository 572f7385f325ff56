// Prepares a traced graph for a backend (kiln IR, symbolic batch size, cache
// key) and compiles it: the frontend pipeline, dumps, then the backend.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "backend.h"
#include "graph.h"
#include "kiln/env.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/passes/Passes.h"
#include "kiln_ir.h"
#include "llvm/Support/raw_os_ostream.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"

namespace kiln::detail {

// The module of a PreparedGraph; destroyed under kiln's MLIR lock.
struct PreparedModule {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  size_t args = 0, ops = 0, outputs = 0;  // of the traced graph
  ~PreparedModule() {
    std::lock_guard<std::recursive_mutex> lock(mlir_mutex());
    module = nullptr;
  }
  mlir::func::FuncOp graph() { return mlir::cast<mlir::func::FuncOp>(module->getBody()->front()); }
};

namespace {

std::string printed(mlir::Operation* op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os);
  return text;
}

// 16 hex digits of a stable 64-bit hash (FNV-1a) of a cache key.
std::string keyHash(const std::string& key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

// KILN_DUMP=dir: each compiled graph leaves <dir>/<key hash>.* files. A folder
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

// The function's kiln.check_range ops (those of regions go unread), in order.
std::vector<RangeCheck> rangeChecks(mlir::func::FuncOp graph) {
  std::vector<RangeCheck> checks;
  for (auto op : graph.getBody().front().getOps<ir::CheckRangeOp>()) {
    RangeCheck c;
    c.function = op.getFunction().str();
    c.operand = op.getOperand().str();
    c.limit = op.getLimit();
    c.ignore = op.getIgnore();
    auto shape = op.getX().getType().getShape();
    c.shape.assign(shape.begin(), shape.end());
    if (auto loc = mlir::dyn_cast<mlir::FileLineColLoc>(op.getLoc()))
      c.where = fmt::format("{}:{}: ", loc.getFilename().str(), loc.getLine());
    checks.push_back(std::move(c));
  }
  return checks;
}

}  // namespace

void write_dump(const std::string& prefix, const char* suffix, mlir::ModuleOp module) {
  if (prefix.empty()) return;
  std::ofstream out(prefix + suffix);
  llvm::raw_os_ostream os(out);
  module->print(os);
}

PreparedGraph prepare_graph(const GraphSpec& graph, const Backend& backend) {
  std::lock_guard<std::recursive_mutex> lock(mlir_mutex());
  mlir::MLIRContext& ctx = mlir_context();
  bool symbolic = backend.symbolic_batch() && env::get_flag("KILN_SYMBOLIC_BATCH", true);
  auto prepared = std::make_shared<PreparedModule>();
  prepared->args = graph.args.size();
  prepared->ops = graph.ops.size();
  prepared->outputs = graph.outputs.size();
  {
    DiagnosticCollector diagnostics(ctx);
    prepared->module = emit_module(graph, symbolic);
    if (mlir::failed(mlir::verify(*prepared->module)))
      throw Error("kiln: internal error: the traced graph does not verify:\n" + diagnostics.text +
                  printed(*prepared->module));
  }
  PreparedGraph result;
  result.backend = &backend;
  result.checks = rangeChecks(prepared->graph());
  if (symbolic) {
    // Errors fail the pass; a remark says why the batch size stays concrete,
    // at the user's line ("file:line: ") of the op.
    std::string errors;
    mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic& d) {
      std::string where;
      if (auto loc = mlir::dyn_cast<mlir::FileLineColLoc>(d.getLocation()))
        where = fmt::format("{}:{}: ", loc.getFilename().str(), loc.getLine());
      if (d.getSeverity() == mlir::DiagnosticSeverity::Remark) result.concrete_reason = where + "kiln: " + d.str();
      else errors += where + d.str() + "\n";
      return mlir::success();
    });
    mlir::PassManager pm(&ctx);
    pm.addNestedPass<mlir::func::FuncOp>(passes::createKilnGeneralizeBatch());
    if (mlir::failed(pm.run(*prepared->module)))
      throw Error("kiln: making the batch size symbolic failed:\n" + errors + printed(*prepared->module));
  }
  mlir::func::FuncOp func = prepared->graph();
  for (auto [a, type] : llvm::enumerate(func.getArgumentTypes())) {
    auto tensor = mlir::cast<mlir::RankedTensorType>(type);
    result.arg_shapes.emplace_back(tensor.getShape().begin(), tensor.getShape().end());
    for (size_t d = 0; d < result.arg_shapes.back().size(); ++d)
      if (result.arg_shapes.back()[d] == kBatchDim && result.batch == 0) result.batch = graph.args[a].shape[d];
  }
  result.key = backend_key(backend) + "\n" + printed(*prepared->module);
  result.module = std::move(prepared);
  return result;
}

std::shared_ptr<Executable> compile_prepared(PreparedGraph& graph, bool* from_disk) {
  // One compile at a time: the MLIRContext, the JIT's set-up and the disk cache handle are shared.
  std::lock_guard<std::recursive_mutex> lock(mlir_mutex());
  auto start = std::chrono::steady_clock::now();
  const Backend& backend = *graph.backend;
  PreparedModule& prepared = *graph.module;
  if (from_disk) *from_disk = false;
  if (std::shared_ptr<Executable> cached = backend.load_cached(graph.key, prepared.graph())) {
    if (from_disk) *from_disk = true;
    return cached;
  }
  mlir::MLIRContext& ctx = mlir_context();
  DiagnosticCollector diagnostics(ctx);
  CompileRequest request{prepared.module, graph.key};
  request.hash = keyHash(graph.key);
  request.dump_prefix = dumpPrefix(request.hash);
  request.args = prepared.args;
  request.ops = prepared.ops;
  request.outputs = prepared.outputs;
  request.start = start;
  write_dump(request.dump_prefix, ".kiln.mlir", *prepared.module);
  mlir::PassManager pm(&ctx);
  // KILN_BATCH_MATMULS=0 turns -kiln-batch-matmuls off (a part of every backend's key: backend_key).
  passes::buildKilnFrontendPipeline(pm, env::get_flag("KILN_BATCH_MATMULS", true));
  if (mlir::failed(pm.run(*prepared.module))) throw Error("kiln: compiling the graph failed:\n" + diagnostics.text);
  write_dump(request.dump_prefix, ".frontend.mlir", *prepared.module);
  return backend.compile(request);
}

}  // namespace kiln::detail
