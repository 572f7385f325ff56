// kiln::FunctionNode: records a user-defined function (forward and backward) as one kiln.custom op.
#include "kiln/function_node.h"

#include <unordered_map>

#include "graph.h"
#include "ops.h"
#include "trace.h"

namespace kiln {
namespace {

using detail::GraphOp;
using detail::GraphSpec;
using detail::Node;
using detail::NodePtr;

// Marks a custom function as being recorded (realize() refuses to run meanwhile).
class RecordingScope {
 public:
  explicit RecordingScope(const std::string& name) { detail::custom_recording_stack().push_back(name); }
  ~RecordingScope() { detail::custom_recording_stack().pop_back(); }
  RecordingScope(const RecordingScope&) = delete;
  RecordingScope& operator=(const RecordingScope&) = delete;
};

std::vector<Variable> placeholders(const std::vector<const Variable*>& like) {
  std::vector<Variable> out;
  for (size_t i = 0; i < like.size(); ++i)
    out.emplace_back(detail::make_node(detail::kPlaceholderOp, {},
                                       {detail::int_attr("index", static_cast<int64_t>(i))},
                                       like[i]->shape(), like[i]->dtype()));
  return out;
}

// Flattens the ops between `args` (placeholders) and the outputs into a GraphSpec
// whose arguments are the placeholders, in order.
class SubgraphBuilder {
 public:
  SubgraphBuilder(const std::string& fn, const char* part, const std::vector<Variable>& args)
      : fn_(fn), part_(part) {
    for (size_t i = 0; i < args.size(); ++i) {
      ids_[args[i].node().get()] = static_cast<int>(i);
      spec.args.push_back({args[i].shape(), args[i].dtype()});
    }
  }

  void output(const Variable& v) { spec.outputs.push_back(emit(v.node().get())); }

  GraphSpec spec;

 private:
  int emit(const Node* n) {
    auto it = ids_.find(n);
    if (it != ids_.end()) return it->second;
    if (n->op == detail::kPlaceholderOp)
      throw Error(fmt::format("kiln: FunctionNode '{}': {} uses a variable of another custom "
                              "function's forward or backward; it may only use its inputs",
                              fn_, part_));
    if (n->is_leaf() || n->realized())
      throw Error(fmt::format("kiln: FunctionNode '{}': {} may only use its inputs (and constants "
                              "and F:: ops on them); a variable from outside (a parameter, a "
                              "realized value, ...) must be passed as an input",
                              fn_, part_));
    GraphOp op{n->op, n->attrs, {}, n->shape, n->dtype, n->file, n->line, n->forward, n->backward};
    for (const NodePtr& in : n->inputs) op.operands.push_back(emit(in.get()));
    spec.ops.push_back(std::move(op));
    int id = static_cast<int>(spec.args.size() + spec.ops.size() - 1);
    ids_[n] = id;
    return id;
  }

  const std::string& fn_;
  const char* part_;
  std::unordered_map<const Node*, int> ids_;
};

}  // namespace

Variable FunctionNode::operator()(const std::vector<Variable>& inputs, SourceLocation loc) const {
  const std::string fn = name.empty() ? "custom" : name;
  if (!forward) throw Error(fmt::format("kiln: FunctionNode '{}': it has no forward", fn));
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].is_null())
      throw Error(fmt::format("kiln: FunctionNode '{}': input {} is a null variable", fn, i));
  if (!backward) {
    // No backward of its own: the forward's ops are recorded as they are and
    // differentiated op by op.
    Variable y = forward(inputs);
    if (y.is_null()) throw Error(fmt::format("kiln: FunctionNode '{}': forward returned a null variable", fn));
    return y;
  }

  std::vector<const Variable*> in_like;
  for (const Variable& v : inputs) in_like.push_back(&v);

  // Forward, on placeholders of the inputs.
  auto fwd = std::make_shared<GraphSpec>();
  Shape out_shape;
  DType out_dtype;
  {
    RecordingScope recording(fn);
    std::vector<Variable> xs = placeholders(in_like);
    Variable y = forward(xs);
    if (y.is_null()) throw Error(fmt::format("kiln: FunctionNode '{}': forward returned a null variable", fn));
    out_shape = y.shape();
    out_dtype = y.dtype();
    SubgraphBuilder sub(fn, "forward", xs);
    sub.output(y);
    *fwd = std::move(sub.spec);
  }

  // Backward, on placeholders of the inputs, the output and its gradient.
  auto bwd = std::make_shared<GraphSpec>();
  {
    RecordingScope recording(fn);
    std::vector<Variable> xs = placeholders(in_like);
    Variable like_out(detail::make_node(detail::kPlaceholderOp, {}, {}, out_shape, out_dtype));
    std::vector<Variable> rest = placeholders({&like_out, &like_out});
    std::vector<Variable> gxs = backward(xs, rest[0], rest[1]);
    if (gxs.size() != inputs.size())
      throw Error(fmt::format("kiln: FunctionNode '{}': backward returned {} gradients for {} inputs",
                              fn, gxs.size(), inputs.size()));
    std::vector<Variable> args = xs;
    args.push_back(rest[0]);
    args.push_back(rest[1]);
    SubgraphBuilder sub(fn, "backward", args);
    for (size_t i = 0; i < gxs.size(); ++i) {
      Variable g = gxs[i];
      if (g.is_null()) {
        g = detail::constant(0.0, inputs[i].shape(), inputs[i].dtype());
      } else if (g.shape() != inputs[i].shape() || g.dtype() != inputs[i].dtype()) {
        throw Error(fmt::format("kiln: FunctionNode '{}': backward's gradient {} has shape {} and "
                                "dtype {}, but input {} has shape {} and dtype {}",
                                fn, i, shape_str(g.shape()), dtype_name(g.dtype()), i,
                                shape_str(inputs[i].shape()), dtype_name(inputs[i].dtype())));
      }
      sub.output(g);
    }
    *bwd = std::move(sub.spec);
  }

  detail::LocationScope scope(loc);
  Variable out = detail::record("kiln.custom", inputs, {detail::str_attr("name", fn)}, out_shape, out_dtype);
  out.node()->forward = std::move(fwd);
  out.node()->backward = std::move(bwd);
  return out;
}

}  // namespace kiln
