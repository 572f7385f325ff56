// Emits a GraphSpec as a kiln func.func, runs the frontend pipeline, and builds an Executable.
#include <cstdlib>
#include <mutex>

#include "graph.h"
#include "kiln/cache.h"
#include "kiln/codegen/interp.h"
#include "kiln/passes/Passes.h"
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
  auto func = b.create<mlir::func::FuncOp>(loc, "graph", b.getFunctionType(argTypes, resultTypes));
  mlir::Block* entry = func.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  std::vector<mlir::Value> values(entry->args_begin(), entry->args_end());
  for (const GraphOp& op : g.ops) {
    auto type = tensorType(b, op.shape, op.dtype);
    mlir::Location opLoc = op.line > 0 ? mlir::Location(mlir::FileLineColLoc::get(&ctx, op.file, op.line, 0)) : loc;
    mlir::OperationState state(opLoc, op.op);
    for (int v : op.operands) state.operands.push_back(values[v]);
    for (const Attr& a : op.attrs) state.addAttribute(a.name, toAttribute(b, a, type));
    state.types.push_back(type);
    values.push_back(b.create(state)->getResult(0));
  }
  std::vector<mlir::Value> results;
  for (int o : g.outputs) results.push_back(values[o]);
  b.create<mlir::func::ReturnOp>(loc, results);
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

}  // namespace

std::shared_ptr<Executable> compile_graph(const GraphSpec& graph) {
  std::string backend = backend_name();
  mlir::MLIRContext& ctx = context();
  DiagnosticCollector diagnostics(ctx);
  mlir::OwningOpRef<mlir::ModuleOp> module = emitModule(graph);
  if (mlir::failed(mlir::verify(*module))) {
    std::string ir;
    llvm::raw_string_ostream os(ir);
    module->print(os);
    throw Error("kiln: internal error: the traced graph does not verify:\n" + diagnostics.text + ir);
  }
  mlir::PassManager pm(&ctx);
  passes::buildKilnFrontendPipeline(pm);
  if (mlir::failed(pm.run(*module)))
    throw Error("kiln: compiling the graph failed:\n" + diagnostics.text);
  return std::make_shared<InterpExecutable>(std::move(module));
}

}  // namespace kiln::detail

namespace kiln {

std::string backend_name() {
  const char* env = std::getenv("KILN_BACKEND");
  std::string name = env && *env ? env : "interp";
  if (name != "interp")
    throw Error("kiln: KILN_BACKEND=" + name +
                ": only the reference interpreter ('interp') is available in this build; the "
                "compiled 'cpu' and 'cuda' backends are not implemented yet");
  return name;
}

}  // namespace kiln
