// kiln::export_model / export_training_step: traced graphs written as named kiln IR (<prefix>.mlir) and npz (<prefix>.npz).
#include "kiln/export.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include "graph_capture.h"
#include "kiln/config.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/npz.h"
#include "kiln/passes/Passes.h"
#include "kiln/serializers.h"
#include "kiln_ir.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

namespace kiln::detail {

namespace {
thread_local std::vector<CapturedGraph>* t_capture = nullptr;
thread_local std::vector<TracedUpdateCount>* t_counts = nullptr;
}  // namespace

ScopedTracedUpdateCounts::ScopedTracedUpdateCounts(std::vector<TracedUpdateCount>& counts) {
  if (t_counts) throw Error("kiln: export: update counts are already traced on this thread");
  t_counts = &counts;
}
ScopedTracedUpdateCounts::~ScopedTracedUpdateCounts() { t_counts = nullptr; }
std::vector<TracedUpdateCount>* active_traced_update_counts() { return t_counts; }

ScopedGraphCapture::ScopedGraphCapture(std::vector<CapturedGraph>& graphs) {
  if (t_capture) throw Error("kiln: export: a graph capture is already running on this thread");
  t_capture = &graphs;
}
ScopedGraphCapture::~ScopedGraphCapture() { t_capture = nullptr; }
std::vector<CapturedGraph>* active_graph_capture() { return t_capture; }

void export_arity_error(size_t inputs, const char* what) {
  throw Error(fmt::format("kiln: export: {} cannot be called with {} example input(s) (1 to 3 Variables are supported)",
                          what, inputs));
}

namespace {

std::string stripSlash(const std::string& name) { return !name.empty() && name.front() == '/' ? name.substr(1) : name; }

// What a graph argument or result is, for kilnc: kiln.role and kiln.name.
struct Named {
  std::string role, name;
};

// A captured graph with names for its arguments (by node) and the results to keep.
struct FunctionPlan {
  const CapturedGraph* graph = nullptr;
  std::string func_name;
  std::unordered_map<const Node*, Named> args;  // nodes not named here: 0-d constants (hyperparameters)
  std::vector<std::pair<size_t, Named>> results;  // (index in spec.outputs, names), in this order
};

// The order kilnc sees arguments in: parameters, state, inputs, labels (then constants).
int roleRank(const std::string& role) {
  if (role == "param") return 0;
  if (role == "state") return 1;
  if (role == "input") return 2;
  if (role == "label") return 3;
  return 4;
}

mlir::Attribute scalarAttr(mlir::RankedTensorType type, const Array& value) {
  mlir::Type e = type.getElementType();
  if (mlir::isa<mlir::FloatType>(e)) return mlir::DenseElementsAttr::get(type, mlir::FloatAttr::get(e, value.at(0)));
  return mlir::DenseElementsAttr::get(type, mlir::IntegerAttr::get(e, static_cast<int64_t>(value.at(0))));
}

void runPasses(mlir::ModuleOp module, const std::string& what,
               const std::function<void(mlir::PassManager&)>& build) {
  mlir::MLIRContext& ctx = mlir_context();
  DiagnosticCollector diagnostics(ctx);
  mlir::PassManager pm(&ctx);
  build(pm);
  if (mlir::failed(pm.run(module))) throw Error("kiln: export: " + what + " failed:\n" + diagnostics.text);
}

// Emits plan's graph as func.func @<func_name> (frontend pipeline run, names set) into `out`.
void emitFunction(const FunctionPlan& plan, mlir::ModuleOp out) {
  mlir::MLIRContext& ctx = mlir_context();
  const CapturedGraph& captured = *plan.graph;
  GraphSpec spec = captured.spec;
  const int nargs = static_cast<int>(spec.args.size());
  // Arguments in kilnc's order (stable within a role: the trace's order, which follows the model).
  std::vector<int> order(nargs);
  for (int i = 0; i < nargs; ++i) order[i] = i;
  auto named = [&](int i) -> const Named* {
    auto it = plan.args.find(captured.arg_nodes[i]);
    return it == plan.args.end() ? nullptr : &it->second;
  };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return roleRank(named(a) ? named(a)->role : "") < roleRank(named(b) ? named(b)->role : "");
  });
  std::vector<int> newIndex(nargs);
  GraphSpec permuted = spec;
  for (int n = 0; n < nargs; ++n) {
    permuted.args[n] = spec.args[order[n]];
    newIndex[order[n]] = n;
  }
  auto remap = [&](int& v) {
    if (v < nargs) v = newIndex[v];
  };
  for (GraphOp& op : permuted.ops)
    for (int& v : op.operands) remap(v);
  for (int& v : permuted.outputs) remap(v);

  mlir::OwningOpRef<mlir::ModuleOp> module;
  {
    DiagnosticCollector diagnostics(ctx);
    module = emit_module(permuted, /*mark_batch=*/true);
  }
  auto func = mlir::cast<mlir::func::FuncOp>(module->getBody()->front());
  mlir::OpBuilder b(&ctx);
  // Unnamed arguments are 0-d values fixed at trace time (hyperparameters): constants.
  llvm::BitVector erase(nargs);
  b.setInsertionPointToStart(&func.getBody().front());
  for (int n = 0; n < nargs; ++n) {
    int original = order[n];
    if (named(original)) continue;
    const GraphSpec::Arg& arg = spec.args[original];
    auto type = mlir::cast<mlir::RankedTensorType>(func.getArgument(n).getType());
    if (type.getRank() != 0)
      throw Error(fmt::format("kiln: export: an input of the traced graph ({} {}) is neither a parameter, "
                              "a persistent value, optimizer state nor an example input; export cannot name it",
                              dtype_name(arg.dtype), shape_str(arg.shape)));
    auto constant = ir::ConstantOp::create(b, func.getLoc(), type,
                                           mlir::cast<mlir::ElementsAttr>(scalarAttr(type, captured.arg_values[original])));
    func.getArgument(n).replaceAllUsesWith(constant.getResult());
    erase.set(n);
  }
  if (mlir::failed(func.eraseArguments(erase))) throw Error("kiln: export: internal error: erasing constant arguments");

  runPasses(*module, "making the batch size symbolic (-kiln-generalize-batch)", [](mlir::PassManager& pm) {
    pm.addNestedPass<mlir::func::FuncOp>(passes::createKilnGeneralizeBatch());
  });
  runPasses(*module, "the frontend pipeline", [](mlir::PassManager& pm) { passes::buildKilnFrontendPipeline(pm); });

  // Names on the arguments; the marks of -kiln-generalize-batch are dropped.
  for (unsigned n = 0; n < func.getNumArguments(); ++n) {
    const Named* name = nullptr;
    for (int i = 0, kept = 0; i < nargs; ++i) {
      if (erase.test(i)) continue;
      if (kept++ == static_cast<int>(n)) name = named(order[i]);
    }
    func.removeArgAttr(n, passes::kBatchCandidateAttr);
    func.removeArgAttr(n, passes::kStateAttr);
    func.setArgAttr(n, "kiln.role", b.getStringAttr(name->role));
    func.setArgAttr(n, "kiln.name", b.getStringAttr(name->name));
  }
  // The results kept: the plan's, then every run-time check's status.
  auto ret = mlir::cast<mlir::func::ReturnOp>(func.getBody().front().getTerminator());
  std::vector<mlir::Value> results;
  std::vector<Named> resultNames;
  for (const auto& [index, name] : plan.results) {
    results.push_back(ret.getOperand(static_cast<unsigned>(index)));
    resultNames.push_back(name);
  }
  for (unsigned i = static_cast<unsigned>(spec.outputs.size()); i < ret.getNumOperands(); ++i) {
    mlir::Value status = ret.getOperand(i);
    std::string what = "check";
    if (auto check = status.getDefiningOp<ir::CheckRangeOp>())
      what = fmt::format("{}: 0 <= {} < {}", check.getFunction().str(), check.getOperand().str(),
                         static_cast<int64_t>(check.getLimit()));
    results.push_back(status);
    resultNames.push_back({"status", what});
  }
  b.setInsertionPoint(ret);
  mlir::func::ReturnOp::create(b, ret.getLoc(), results);
  ret.erase();
  std::vector<mlir::Type> resultTypes;
  for (mlir::Value v : results) resultTypes.push_back(v.getType());
  func.setType(b.getFunctionType(func.getArgumentTypes(), resultTypes));
  for (unsigned r = 0; r < resultNames.size(); ++r) {
    func.setResultAttr(r, "kiln.role", b.getStringAttr(resultNames[r].role));
    func.setResultAttr(r, "kiln.name", b.getStringAttr(resultNames[r].name));
  }
  // What the dropped results (gradients, reported values) needed goes.
  runPasses(*module, "cleaning up", [](mlir::PassManager& pm) {
    pm.addPass(mlir::createCanonicalizerPass());
    pm.addPass(mlir::createCSEPass());
  });
  // Buffer donations of the JIT's update (result -> argument pairs) name the traced results;
  // kilnc double-buffers the state instead.
  func->removeAttr("kiln.donations");
  func.setName(plan.func_name);
  func->remove();
  out.getBody()->push_back(func);
}

void writeText(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) throw Error("kiln: export: cannot write '" + path + "'");
}

void ensureParentDir(const std::string& prefix) {
  std::filesystem::path parent = std::filesystem::path(prefix).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) throw Error("kiln: export: cannot create the folder '" + parent.string() + "': " + error.message());
}

// Writes <prefix>.mlir holding the planned functions (in order) and <prefix>.npz.
void writeExport(const std::vector<FunctionPlan>& plans, const std::map<std::string, Array>& weights,
                 const std::string& prefix, const std::string& summary) {
  ensureParentDir(prefix);
  std::string text;
  {
    std::lock_guard<std::recursive_mutex> lock(mlir_mutex());
    mlir::MLIRContext& ctx = mlir_context();
    mlir::OpBuilder b(&ctx);
    mlir::OwningOpRef<mlir::ModuleOp> module = mlir::ModuleOp::create(b.getUnknownLoc());
    (*module)->setAttr("kiln.export", b.getStringAttr(summary));
    for (const FunctionPlan& plan : plans) emitFunction(plan, *module);
    llvm::raw_string_ostream os(text);
    os << "// kiln export: " << summary << " (compile with kilnc; weights in " << std::filesystem::path(prefix).filename().string()
       << ".npz)\n";
    (*module)->print(os);
  }
  writeText(prefix + ".mlir", text);
  npz::write(prefix + ".npz", weights);
}

// The graph among `graphs` that computed `node`.
const CapturedGraph& graphComputing(const std::vector<CapturedGraph>& graphs, const Node* node, const char* what) {
  for (auto it = graphs.rbegin(); it != graphs.rend(); ++it)
    for (const NodePtr& out : it->output_nodes)
      if (out.get() == node) return *it;
  throw Error(std::string("kiln: export: no traced graph computed ") + what);
}

std::vector<Variable> leaves(const std::vector<Array>& arrays) {
  std::vector<Variable> out;
  for (const Array& a : arrays) out.emplace_back(a, false);
  return out;
}

// Parameters and persistent values by their node, named as in the npz ("l1/W").
void nameModelArgs(const Link& model, FunctionPlan& plan, const std::string& prefix = "") {
  for (const auto& [name, p] : model.namedparams())
    if (p.is_initialized()) plan.args[p.impl()->node.get()] = {"param", prefix + stripSlash(name)};
  for (const auto& [name, v] : model.namedpersistents())
    if (!v.is_null()) plan.args[v.impl()->node.get()] = {"param", prefix + stripSlash(name)};
}

// Traces `forward` on fresh leaves of `inputs` (train=false, no backprop) and realizes its outputs.
std::pair<std::vector<Variable>, std::vector<Variable>> traceForward(const ExportForward& forward,
                                                                      const std::vector<Array>& inputs,
                                                                      std::vector<CapturedGraph>& graphs) {
  auto no_train = using_config("train", false);
  auto no_backprop = no_backprop_mode();
  std::vector<Variable> xs = leaves(inputs);
  std::vector<Variable> ys;
  {
    ScopedGraphCapture capture(graphs);
    ys = forward(xs);
    if (ys.empty()) throw Error("kiln: export: the model returned no Variable");
    ys.front().array();
  }
  return {xs, ys};
}

void planForward(FunctionPlan& plan, const std::vector<Variable>& xs, const std::vector<Variable>& ys,
                 const std::vector<CapturedGraph>& graphs) {
  plan.graph = &graphComputing(graphs, ys.front().impl()->node.get(), "the model's output");
  for (size_t i = 0; i < xs.size(); ++i) plan.args[xs[i].impl()->node.get()] = {"input", fmt::format("x{}", i)};
  for (size_t o = 0; o < ys.size(); ++o) {
    const Node* node = ys[o].impl()->node.get();
    const auto& outs = plan.graph->output_nodes;
    auto it = std::find_if(outs.begin(), outs.end(), [&](const NodePtr& n) { return n.get() == node; });
    if (it == outs.end()) throw Error(fmt::format("kiln: export: output {} of the model was not computed by its graph", o));
    plan.results.push_back({static_cast<size_t>(it - outs.begin()), {"output", fmt::format("y{}", o)}});
  }
}

void checkInputs(const std::vector<Array>& inputs) {
  if (inputs.empty()) throw Error("kiln: export: at least one example input is needed");
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].shape().empty())
      throw Error(fmt::format("kiln: export: example input {} is a scalar; inputs need a batch dimension", i));
}

}  // namespace

void export_forward(const Link& model, const ExportForward& forward, const std::vector<Array>& example_inputs,
                    const std::string& prefix) {
  checkInputs(example_inputs);
  realize();  // what is pending now is not part of the export
  std::vector<CapturedGraph> graphs;
  auto [xs, ys] = traceForward(forward, example_inputs, graphs);
  FunctionPlan plan;
  plan.func_name = "forward";
  nameModelArgs(model, plan);
  planForward(plan, xs, ys, graphs);
  writeExport({plan}, serializers::to_arrays(model), prefix, "forward");
}

void export_step(const Link& model, optimizers::Optimizer& optimizer, const ExportLoss& loss_of,
                 const ExportForward& predictor, const std::vector<Array>& example_inputs,
                 const Array& example_labels, const std::string& prefix) {
  checkInputs(example_inputs);
  if (!optimizer.is_setup()) throw Error("kiln: export_training_step: the optimizer is not set up (call setup(model))");
  if (optimizer.target().impl() != model.impl())
    throw Error("kiln: export_training_step: the optimizer is set up on another link than the model");
  realize();
  // Parameters are initialized (lazy links) by one forward pass without backprop.
  bool lazy = false;
  for (const auto& [name, p] : model.namedparams()) lazy |= !p.is_initialized();
  if (lazy) {
    auto no_backprop = no_backprop_mode();
    std::vector<Variable> xs = leaves(example_inputs);
    loss_of(xs, Variable(example_labels, false)).array();
  }
  // Zero state for every parameter, so that state is an input of the step.
  for (const auto& [name, p] : model.namedparams()) optimizer.init_state(optimizer.update_rule(p), p);
  std::map<std::string, Array> weights = serializers::to_arrays(model);
  for (auto& [key, value] : serializers::to_arrays(optimizer, "optimizer/")) weights[key] = value;

  // What the traced step changes, to restore afterwards.
  struct Saved {
    Parameter param;
    std::optional<Array> grad;
    optimizers::UpdateRule* rule;
    int64_t t;
    std::map<std::string, Array> state;
  };
  std::vector<Saved> saved;
  FunctionPlan step, forward;
  step.func_name = "step";
  forward.func_name = "forward";
  for (const auto& [name, p] : model.namedparams()) {
    if (!p.is_initialized()) continue;
    optimizers::UpdateRule& rule = optimizer.update_rule(p);
    Saved s{p, p.has_grad() ? std::optional<Array>(p.grad()) : std::nullopt, &rule, rule.t, {}};
    for (auto& [slot, v] : rule.state) {
      s.state[slot] = v.array();
      step.args[v.impl()->node.get()] = {"state", "optimizer/" + stripSlash(name) + "/" + slot};
    }
    saved.push_back(std::move(s));
  }
  nameModelArgs(model, step);
  int64_t saved_t = optimizer.t;

  std::vector<CapturedGraph> graphs;
  std::vector<TracedUpdateCount> counts;  // Adam's t: state of the step, alpha_t computed in it
  std::vector<Variable> xs = leaves(example_inputs);
  Variable t(example_labels, false);
  step.args[t.impl()->node.get()] = {"label", "t"};
  for (size_t i = 0; i < xs.size(); ++i) step.args[xs[i].impl()->node.get()] = {"input", fmt::format("x{}", i)};
  Variable loss;
  try {
    ScopedGraphCapture capture(graphs);
    ScopedTracedUpdateCounts traceCounts(counts);
    Link& target = optimizer.target();
    target.cleargrads();
    loss = loss_of(xs, t);
    loss.backward();
    optimizer.update();
  } catch (...) {
    optimizer.t = saved_t;
    throw;
  }
  step.graph = &graphComputing(graphs, loss.impl()->node.get(), "the loss");
  const auto& outs = step.graph->output_nodes;
  auto outputHolding = [&](const Array& a) -> std::optional<size_t> {
    for (size_t i = 0; i < outs.size(); ++i)
      if (outs[i]->value && outs[i]->value->raw_data() == a.raw_data()) return i;
    return std::nullopt;
  };
  for (size_t i = 0; i < outs.size(); ++i)
    if (outs[i].get() == loss.impl()->node.get()) step.results.push_back({i, {"loss", "loss"}});
  for (const auto& [name, p] : model.namedparams()) {
    if (!p.is_initialized()) continue;
    if (auto i = outputHolding(p.array())) step.results.push_back({*i, {"param", stripSlash(name)}});
  }
  for (const auto& [name, p] : model.namedparams()) {
    if (!p.is_initialized()) continue;
    for (auto& [slot, v] : optimizer.update_rule(p).state)
      if (auto i = outputHolding(v.array()))
        step.results.push_back({*i, {"state", "optimizer/" + stripSlash(name) + "/" + slot}});
  }
  for (const TracedUpdateCount& count : counts) {
    std::string name;
    for (const auto& [pname, p] : model.namedparams())
      if (p.is_initialized() && &optimizer.update_rule(p) == count.rule) name = "optimizer/" + stripSlash(pname) + "/t";
    if (name.empty()) throw Error("kiln: export_training_step: internal error: an update count of no parameter");
    step.args[count.before.impl()->node.get()] = {"state", name};
    auto it = std::find_if(outs.begin(), outs.end(), [&](const NodePtr& n) { return n.get() == count.after.impl()->node.get(); });
    if (it == outs.end()) throw Error("kiln: export_training_step: internal error: the step does not compute " + name);
    step.results.push_back({static_cast<size_t>(it - outs.begin()), {"state", name}});
  }
  // Restore the model and the optimizer.
  optimizer.t = saved_t;
  std::vector<FunctionPlan> plans{step};
  // The step's graph outlives the restore (it holds the captured nodes).
  for (Saved& s : saved) {
    s.rule->t = s.t;
    for (auto& [slot, value] : s.state) {
      Variable fresh(value, false);
      detail::mark_state(fresh.impl());
      s.rule->state[slot] = fresh;
    }
  }
  for (const auto& [name, p] : model.namedparams()) {
    if (!p.is_initialized()) continue;
    const Array& before = weights.at(stripSlash(name));
    Parameter param = p;
    param.set_array(before);
  }
  for (Saved& s : saved) {
    s.param.cleargrad();
    if (s.grad) s.param.set_grad(*s.grad);
  }

  std::vector<CapturedGraph> forwardGraphs;
  if (predictor) {
    auto [fxs, fys] = traceForward(predictor, example_inputs, forwardGraphs);
    nameModelArgs(model, forward);
    planForward(forward, fxs, fys, forwardGraphs);
    plans.push_back(forward);
    writeExport(plans, weights, prefix, "training step");
  } else {
    writeExport(plans, weights, prefix, "training step");
  }
}

}  // namespace kiln::detail
