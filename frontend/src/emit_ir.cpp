// Emits a GraphSpec as kiln IR (a func.func of kiln ops), in kiln's one MLIRContext.
#include "kiln_ir.h"

#include "kiln/ir/KilnDialect.h"
#include "kiln/link.h"
#include "kiln/passes/Passes.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace kiln::detail {

std::recursive_mutex& mlir_mutex() {
  static std::recursive_mutex m;
  return m;
}

mlir::MLIRContext& mlir_context() {
  static mlir::MLIRContext* ctx = [] {
    auto* c = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    c->loadDialect<kiln::ir::KilnDialect, mlir::func::FuncDialect>();
    return c;
  }();
  return *ctx;
}

DiagnosticCollector::DiagnosticCollector(mlir::MLIRContext& ctx)
    : handler(&ctx, [this](mlir::Diagnostic& d) {
        llvm::raw_string_ostream os(text);
        os << d.getLocation() << ": " << d << "\n";
        return mlir::success();
      }) {}

namespace {

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

// Emits g's ops at b's insertion point; `values` holds the values of g's
// arguments (function or block arguments) and gets one value per op appended.
// A "kiln.custom" op gets its forward and backward regions emitted recursively.
// Whether the trace's op `name` is kiln.check_range (found by its class, not its name).
bool isCheckRange(mlir::MLIRContext& ctx, const std::string& name) {
  std::optional<mlir::RegisteredOperationName> info = mlir::RegisteredOperationName::lookup(name, &ctx);
  return info && info->getTypeID() == mlir::TypeID::get<ir::CheckRangeOp>();
}

// A kiln.check_range op has a second result, its status, appended to
// `statuses` (when given: the function's own ops; a region's checks go unread).
void emitOps(mlir::OpBuilder& b, const GraphSpec& g, std::vector<mlir::Value>& values,
             std::vector<mlir::Value>* statuses = nullptr) {
  mlir::MLIRContext& ctx = *b.getContext();
  mlir::Location loc = b.getUnknownLoc();
  for (const GraphOp& op : g.ops) {
    auto type = tensorType(b, op.shape, op.dtype);
    mlir::Location opLoc = op.line > 0 ? mlir::Location(mlir::FileLineColLoc::get(&ctx, op.file, op.line, 0)) : loc;
    mlir::OperationState state(opLoc, op.op);
    for (int v : op.operands) state.operands.push_back(values[v]);
    for (const Attr& a : op.attrs) state.addAttribute(a.name, toAttribute(b, a, type));
    if (std::shared_ptr<LinkImpl> link = op.link.lock())
      if (std::string path = link_path(*link); !path.empty())
        state.addAttribute(passes::kScopeAttr, b.getStringAttr(path));
    state.types.push_back(type);
    bool check = isCheckRange(ctx, op.op);
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

}  // namespace

mlir::OwningOpRef<mlir::ModuleOp> emit_module(const GraphSpec& g, bool mark_batch) {
  mlir::MLIRContext& ctx = mlir_context();
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
    if (isCheckRange(ctx, op.op)) resultTypes.push_back(mlir::RankedTensorType::get({2}, b.getI64Type()));
  b.setInsertionPointToEnd(module.getBody());
  auto func = mlir::func::FuncOp::create(b, loc, "graph", b.getFunctionType(argTypes, resultTypes));
  if (!g.donations.empty()) {
    // {results = R, pairs = [k0, j0, ...]}: result k may be written into argument j's buffer
    // (-kiln-donate-buffers; R locates result k's out-param after bufferization).
    std::vector<int64_t> pairs;
    for (auto [output, arg] : g.donations) pairs.insert(pairs.end(), {output, arg});
    func->setAttr(passes::kDonationsAttr,
                  b.getDictionaryAttr({b.getNamedAttr("results", b.getI64IntegerAttr(static_cast<int64_t>(resultTypes.size()))),
                                       b.getNamedAttr("pairs", b.getDenseI64ArrayAttr(pairs))}));
  }
  if (mark_batch)
    for (size_t a = 0; a < g.args.size(); ++a) {
      unsigned index = static_cast<unsigned>(a);
      if (g.args[a].batch_candidate > 0)
        func.setArgAttr(index, passes::kBatchCandidateAttr, b.getI64IntegerAttr(g.args[a].batch_candidate));
      if (g.args[a].state) func.setArgAttr(index, passes::kStateAttr, b.getUnitAttr());
    }
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

}  // namespace kiln::detail
