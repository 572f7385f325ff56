// CUDA C++ from kiln functions after -kiln-fuse: one kernel per fusion region.
//
// Every value is rendered by `valueAt(v, index)`: the C expression of v's
// element at a multi-index (strings of C expressions). Layout ops remap the
// index, elementwise ops render their scalar semantics (scalar::renderC, the
// one definition the interpreter and the CPU lowering also use), contractions
// and windows become loops; what is computed once at an index is kept in a
// local (memoized per scope), so a region's shared subexpressions are
// computed once. Kernel shapes (grid-stride, row reduction, tiled GEMM) decide
// the indices and seed the values they compute cooperatively (a block's
// reduction result, a GEMM accumulator).
#include "kiln/codegen/cuda.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "kiln/error.h"
#include "kiln/ir/KilnCollective.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ScalarExpr.h"
#include "kiln/passes/Passes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace kiln::ir;
namespace scalar = kiln::ir::scalar;

namespace kiln::cuda {
namespace {

using Index = std::vector<std::string>;

[[noreturn]] void notImplemented(Operation* op, const std::string& what) {
  std::string loc;
  llvm::raw_string_ostream os(loc);
  op->getLoc().print(os);
  throw Error("kiln-emit-cuda: " + op->getName().getStringRef().str() + (what.empty() ? "" : " " + what) +
              " is not implemented in the CUDA emitter (at " + loc + ")");
}

RankedTensorType tensorOf(Value v) { return cast<RankedTensorType>(v.getType()); }
ArrayRef<int64_t> shapeOf(Value v) { return tensorOf(v).getShape(); }

scalar::Type scalarType(Type t, Operation* op) {
  if (t.isF32()) return scalar::Type::F32;
  if (t.isF64()) return scalar::Type::F64;
  if (t.isInteger(1)) return scalar::Type::Bool;
  if (t.isInteger(32)) return scalar::Type::I32;
  if (t.isInteger(64)) return scalar::Type::I64;
  notImplemented(op, "on element type other than f32, f64, i1, i32, i64");
}
std::string cType(Value v) {
  return scalar::cTypeName(scalarType(tensorOf(v).getElementType(), v.getParentBlock()->getParentOp())).str();
}
DType dtypeOf(Value v, Operation* op) {
  switch (scalarType(tensorOf(v).getElementType(), op)) {
    case scalar::Type::F32: return DType::f32;
    case scalar::Type::F64: return DType::f64;
    case scalar::Type::I32: return DType::i32;
    case scalar::Type::I64: return DType::i64;
    case scalar::Type::Bool: return DType::b8;
  }
  return DType::f32;
}

bool isElementwise(Operation* op) {
  return isa<ScalarOpInterface>(op) && FusionOp::roleOf(op) == FusionOp::Role::Elementwise;
}

std::string cTypeOf(DType t) {
  switch (t) {
    case DType::f32: return "float";
    case DType::f64: return "double";
    case DType::i32: return "int32_t";
    case DType::i64: return "int64_t";
    case DType::b8: return "bool";
  }
  return "float";
}

std::string dim(int64_t d) { return ShapedType::isDynamic(d) ? "batch" : std::to_string(d); }

Extent extentOf(ArrayRef<int64_t> shape) {
  Extent e;
  for (int64_t d : shape) {
    if (ShapedType::isDynamic(d)) ++e.batch_power;
    else e.factor *= d;
  }
  return e;
}
std::string extentExpr(ArrayRef<int64_t> shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : " * ") + dim(d);
  return s.empty() ? "1" : "(" + s + ")";
}

std::string linearize(const Index& idx, ArrayRef<int64_t> shape) {
  if (idx.empty()) return "0";
  std::string s = idx[0];
  for (size_t d = 1; d < idx.size(); ++d) s = "(" + s + ") * " + dim(shape[d]) + " + " + idx[d];
  return s;
}

std::string literal(double v, scalar::Type t) {
  char buf[64];
  switch (t) {
    case scalar::Type::Bool: return v != 0 ? "true" : "false";
    case scalar::Type::I32: return std::to_string(static_cast<int32_t>(v));
    case scalar::Type::I64: return std::to_string(static_cast<int64_t>(v)) + "LL";
    case scalar::Type::F32:
    case scalar::Type::F64: {
      std::string ty = t == scalar::Type::F32 ? "float" : "double";
      if (std::isnan(v)) return "static_cast<" + ty + ">(NAN)";
      if (std::isinf(v)) return "static_cast<" + ty + ">(" + (v < 0 ? "-INFINITY" : "INFINITY") + ")";
      std::snprintf(buf, sizeof buf, "%.17g", v);
      std::string s = buf;
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      return t == scalar::Type::F32 ? s + "f" : s;
    }
  }
  return "0";
}

double elementAsDouble(Attribute a) {
  if (auto f = dyn_cast<FloatAttr>(a)) return f.getValueAsDouble();
  if (auto i = dyn_cast<IntegerAttr>(a))
    return i.getType().isInteger(1) ? static_cast<double>(i.getValue().getBoolValue())
                                    : static_cast<double>(i.getValue().getSExtValue());
  return 0;
}

// A C identifier from a kernel label: "3:contraction:matmul+add (mlp.cpp:41)" ->
// "kiln_3_contraction_matmul_add".
std::string identifier(const std::string& label) {
  std::string id = "kiln_";
  std::string core = label.substr(0, label.find(" ("));
  for (char c : core) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return id;
}

// Whether the id `x` (a C expression) is outside [0, limit) and not the ignored one.
std::string badId(CheckRangeOp c, const std::string& x) {
  // (I64Attr getters are unsigned: the values as signed 64-bit literals.)
  auto signedLiteral = [](uint64_t v) { return "(" + std::to_string(static_cast<int64_t>(v)) + "LL)"; };
  std::string cond = "(" + x + " < 0 || " + x + " >= " + signedLiteral(c.getLimit()) + ")";
  if (c.getIgnore()) cond += " && " + x + " != " + signedLiteral(*c.getIgnore());
  return cond;
}

// One kernel's code under construction.
class KernelEmitter {
 public:
  KernelEmitter(std::string& globals, int& constants, const llvm::SetVector<Operation*>& ops)
      : globals_(globals), constants_(constants), ops_(ops) {
    scopes_.emplace_back();
  }

  // Parameters: the values read from outside the kernel, in first-use order.
  const std::vector<Value>& inputs() const { return inputs_; }
  std::string& code() { return code_; }

  int& indent() { return indent_; }
  void line(const std::string& s) { code_ += std::string(indent_ * 2, ' ') + s + "\n"; }
  void open(const std::string& s) { line(s + " {"); ++indent_; scopes_.emplace_back(); }
  void close(const std::string& tail = "") { scopes_.pop_back(); --indent_; line("}" + tail); }
  std::string fresh(const char* prefix) { return prefix + std::to_string(next_++); }

  // The name of a parameter holding `v` (an input of the kernel).
  std::string inputName(Value v) {
    auto it = inputIndex_.find(v);
    if (it != inputIndex_.end()) return "in" + std::to_string(it->second);
    inputIndex_[v] = inputs_.size();
    inputs_.push_back(v);
    return "in" + std::to_string(inputs_.size() - 1);
  }

  // Seeds the value of `v` at `idx` in the current scope (a cooperative result).
  void seed(Value v, const Index& idx, const std::string& expr) { scopes_.back()[key(v, idx)] = expr; }

  // The C expression of `v`'s element at `idx` (statements emitted as needed).
  std::string valueAt(Value v, const Index& idx) {
    std::string k = key(v, idx);
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (auto f = it->find(k); f != it->end()) return f->second;
    std::string expr = compute(v, idx);
    scopes_.back()[k] = expr;
    return expr;
  }

  bool isInside(Value v) {
    Operation* def = v.getDefiningOp();
    return def && ops_.contains(def);
  }

  // `v` (a kernel input) is the kiln.iota `iota` outside: computed from the index, not loaded.
  void computeFromIndex(Value v, IotaOp iota) { indexValues_[v] = iota; }
  bool isComputedFromIndex(Value v) const { return indexValues_.count(v) != 0; }

 private:
  static std::string key(Value v, const Index& idx) {
    std::string k = std::to_string(reinterpret_cast<uintptr_t>(v.getAsOpaquePointer()));
    for (const std::string& i : idx) k += "|" + i;
    return k;
  }

  // Declares a local `T name = expr;` and returns its name.
  std::string local(Value v, const std::string& expr) {
    std::string name = fresh("v");
    line("const " + cType(v) + " " + name + " = " + expr + ";");
    return name;
  }

  std::string load(Value v, const Index& idx) {
    return inputName(v) + "[" + linearize(idx, shapeOf(v)) + "]";
  }

  // Delinearizes the C expression `linear` into an index of `shape` (locals).
  Index delinearize(const std::string& linear, ArrayRef<int64_t> shape) {
    Index idx(shape.size());
    if (shape.empty()) return idx;
    std::string l = fresh("l");
    line("const long long " + l + " = " + linear + ";");
    std::string stride = "1";
    for (size_t d = shape.size(); d-- > 0;) {
      std::string q = stride == "1" ? l : "(" + l + " / (" + stride + "))";
      idx[d] = d == 0 ? q : "(" + q + " % " + dim(shape[d]) + ")";
      stride = stride == "1" ? dim(shape[d]) : stride + " * " + dim(shape[d]);
    }
    return idx;
  }

  std::string compute(Value v, const Index& idx) {
    if (auto it = indexValues_.find(v); it != indexValues_.end()) return iotaAt(it->second, v, idx);
    if (!isInside(v)) return local(v, load(v, idx));
    Operation* op = v.getDefiningOp();
    ArrayRef<int64_t> out = shapeOf(v);
    if (auto c = dyn_cast<ConstantOp>(op)) return constant(c, idx);
    if (isElementwise(op)) {
      FailureOr<const scalar::Expr*> e = scalar::expressionOf(op);
      if (failed(e)) notImplemented(op, "without valid scalar semantics");
      std::vector<std::string> args;
      for (Value operand : op->getOperands()) args.push_back(valueAt(operand, idx));
      scalar::Type t = scalarType(tensorOf(op->getOperands().back()).getElementType(), op);
      scalar::Type r = scalarType(tensorOf(v).getElementType(), op);
      return local(v, scalar::renderC(**e, args, t, r));
    }
    if (auto b = dyn_cast<BroadcastToOp>(op)) {
      ArrayRef<int64_t> in = shapeOf(b.getX());
      Index from;
      size_t offset = out.size() - in.size();
      for (size_t d = 0; d < in.size(); ++d) from.push_back(in[d] == 1 && out[d + offset] != 1 ? "0" : idx[d + offset]);
      return valueAt(b.getX(), from);
    }
    if (auto r = dyn_cast<ReshapeOp>(op)) return valueAt(r.getX(), reshapeIndex(idx, out, shapeOf(r.getX())));
    if (auto s = dyn_cast<StopGradientOp>(op)) return valueAt(s.getX(), idx);
    if (auto t = dyn_cast<TransposeOp>(op)) {
      Index from(idx.size());
      for (auto [i, p] : llvm::enumerate(t.getPermutation())) from[p] = idx[i];
      return valueAt(t.getX(), from);
    }
    if (auto s = dyn_cast<SliceOp>(op)) {
      Index from;
      for (size_t d = 0; d < idx.size(); ++d)
        from.push_back("(" + std::to_string(s.getStart()[d]) + " + " + idx[d] + " * " + std::to_string(s.getStep()[d]) + ")");
      return valueAt(s.getX(), from);
    }
    if (auto r = dyn_cast<ReverseOp>(op)) {
      Index from = idx;
      for (int64_t d : r.getDimensions()) from[d] = "(" + dim(out[d]) + " - 1 - " + idx[d] + ")";
      return valueAt(r.getX(), from);
    }
    if (auto p = dyn_cast<PadOp>(op)) return pad(p, idx);
    if (auto c = dyn_cast<ConcatOp>(op)) return concat(c, idx);
    if (auto i = dyn_cast<IotaOp>(op)) return iotaAt(i, v, idx);
    if (auto d = dyn_cast<DimSizeOp>(op)) {
      std::string p = "1.0";
      for (int64_t a : d.getDims()) p += " * static_cast<double>(" + dim(shapeOf(d.getX())[a]) + ")";
      return local(v, "static_cast<" + cType(v) + ">(" + p + ")");
    }
    if (auto c = dyn_cast<CheckRangeOp>(op)) return checkRange(c, v, idx);
    if (auto r = dyn_cast<RngUniformOp>(op)) {
      // Element i (C order) of the stream (seed, offset + i), as on every backend (kiln/philox.h).
      std::string key = inputName(r.getKey());
      return local(v, "static_cast<" + cType(v) + ">(kiln_philox_uniform(static_cast<unsigned long long>(" + key +
                          "[0]), static_cast<unsigned long long>(" + key + "[1]) + static_cast<unsigned long long>(" +
                          linearize(idx, out) + ")))");
    }
    if (isa<ReduceSumOp, ReduceMaxOp>(op)) return reduceLoop(op, idx);
    if (auto a = dyn_cast<ArgmaxOp>(op)) return argmax(a, idx);
    if (auto m = dyn_cast<MatmulOp>(op)) return matmulLoop(m, idx);
    if (auto g = dyn_cast<GatherOp>(op)) return gather(g, idx);
    if (auto s = dyn_cast<ScatterAddOp>(op)) return scatterAdd(s, idx);
    if (auto c = dyn_cast<Conv2DOp>(op)) return conv2d(c, idx);
    if (auto c = dyn_cast<Conv2DGradInputOp>(op)) return conv2dGradInput(c, idx);
    if (auto c = dyn_cast<Conv2DGradFilterOp>(op)) return conv2dGradFilter(c, idx);
    if (auto p = dyn_cast<Pool2DOp>(op)) return pool2d(p, idx);
    if (auto p = dyn_cast<Pool2DGradOp>(op)) return pool2dGrad(p, idx);
    notImplemented(op, "");
  }

  std::string iotaAt(IotaOp i, Value v, const Index& idx) {
    return local(v, "static_cast<" + cType(v) + ">(" + idx[i.getDimension()] + ")");
  }

  std::string constant(ConstantOp c, const Index& idx) {
    auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!dense) notImplemented(c, "with a non-dense value");
    scalar::Type t = scalarType(dense.getElementType(), c);
    if (dense.isSplat()) return literal(elementAsDouble(dense.getSplatValue<Attribute>()), t);
    std::string name = "kiln_constant_" + std::to_string(constants_++);
    std::string values;
    for (Attribute a : dense.getValues<Attribute>()) values += (values.empty() ? "" : ", ") + literal(elementAsDouble(a), t);
    globals_ += "__device__ const " + scalar::cTypeName(t).str() + " " + name + "[] = {" + values + "};\n";
    return local(c.getResult(), name + "[" + linearize(idx, shapeOf(c.getResult())) + "]");
  }

  // The index of a reshape's operand: direct when only size-1 dimensions are
  // added or dropped, else through the linear index.
  Index reshapeIndex(const Index& idx, ArrayRef<int64_t> out, ArrayRef<int64_t> in) {
    std::vector<size_t> outDims;
    for (size_t d = 0; d < out.size(); ++d)
      if (out[d] != 1) outDims.push_back(d);
    Index from;
    size_t next = 0;
    bool direct = true;
    for (int64_t size : in) {
      if (size == 1) { from.push_back("0"); continue; }
      if (next >= outDims.size() || out[outDims[next]] != size) { direct = false; break; }
      from.push_back(idx[outDims[next++]]);
    }
    if (direct && next == outDims.size()) return from;
    return delinearize(linearize(idx, out), in);
  }

  std::string pad(PadOp p, const Index& idx) {
    Value v = p.getResult();
    ArrayRef<int64_t> in = shapeOf(p.getX());
    std::string name = fresh("v");
    scalar::Type t = scalarType(tensorOf(v).getElementType(), p);
    line(cType(v) + " " + name + " = " + literal(p.getValue().convertToDouble(), t) + ";");
    std::string cond = "true";
    Index from;
    for (size_t d = 0; d < idx.size(); ++d) {
      std::string step = std::to_string(p.getInterior()[d] + 1);
      std::string q = "(" + idx[d] + " - " + std::to_string(p.getLow()[d]) + ")";
      cond += " && " + q + " >= 0 && " + q + " % " + step + " == 0 && " + q + " / " + step + " < " + dim(in[d]);
      from.push_back(q + " / " + step);
    }
    open("if (" + cond + ")");
    line(name + " = " + valueAt(p.getX(), from) + ";");
    close();
    return name;
  }

  std::string concat(ConcatOp c, const Index& idx) {
    Value v = c.getResult();
    int64_t axis = c.getAxis();
    std::string name = fresh("v");
    line(cType(v) + " " + name + ";");
    std::string offset = "0";
    auto inputs = c.getInputs();
    for (size_t k = 0; k < inputs.size(); ++k) {
      std::string end = offset + " + " + dim(shapeOf(inputs[k])[axis]);
      Index from = idx;
      from[axis] = "(" + idx[axis] + " - (" + offset + "))";
      open(std::string(k == 0 ? "if" : "else if") + " (" + idx[axis] + " < " + end + ")");
      line(name + " = " + valueAt(inputs[k], from) + ";");
      close();
      offset = end;
    }
    return name;
  }

  std::string checkRange(CheckRangeOp c, Value v, const Index& idx) {
    if (v == c.getResult()) return valueAt(c.getX(), idx);
    // status = [first flat index outside [0, limit) and not `ignore`, its value] or [-1, 0].
    std::string first = fresh("first"), bad = fresh("bad"), t = fresh("t");
    line("long long " + first + " = -1, " + bad + " = 0;");
    open("for (long long " + t + " = 0; " + t + " < " + extentExpr(shapeOf(c.getX())) + " && " + first + " < 0; ++" + t + ")");
    std::string x = valueAt(c.getX(), delinearize(t, shapeOf(c.getX())));
    open("if (" + badId(c, x) + ")");
    line(first + " = " + t + "; " + bad + " = static_cast<long long>(" + x + ");");
    close();
    close();
    return local(v, "(" + idx[0] + " == 0 ? " + first + " : " + bad + ")");
  }

  // A reduction at one result index as a loop (outside the row-reduction shape).
  std::string reduceLoop(Operation* op, const Index& idx) {
    Value x = op->getOperand(0), r = op->getResult(0);
    ArrayRef<int64_t> in = shapeOf(x);
    auto axes = isa<ReduceSumOp>(op) ? cast<ReduceSumOp>(op).getAxes() : cast<ReduceMaxOp>(op).getAxes();
    bool keep = isa<ReduceSumOp>(op) ? cast<ReduceSumOp>(op).getKeepdims() : cast<ReduceMaxOp>(op).getKeepdims();
    bool isMax = isa<ReduceMaxOp>(op);
    std::string acc = fresh("acc");
    scalar::Type t = scalarType(tensorOf(r).getElementType(), op);
    line(cType(r) + " " + acc + " = " + (isMax ? literal(-INFINITY, t) : literal(0, t)) + ";");
    if (isMax && !scalar::isFloat(t))
      line(acc + " = " + (t == scalar::Type::I32 ? "(-2147483647 - 1)" : "(-9223372036854775807LL - 1)") + ";");
    Index from(in.size());
    size_t next = 0;
    int loops = 0;
    for (size_t d = 0; d < in.size(); ++d) {
      if (llvm::is_contained(axes, static_cast<int64_t>(d))) {
        std::string j = fresh("j");
        open("for (long long " + j + " = 0; " + j + " < " + dim(in[d]) + "; ++" + j + ")");
        ++loops;
        from[d] = j;
        if (keep) ++next;
      } else {
        from[d] = idx[next++];
      }
    }
    std::string e = valueAt(x, from);
    line(isMax ? acc + " = (" + e + " != " + e + " || " + e + " > " + acc + ") && " + acc + " == " + acc + " ? " + e + " : " + acc + ";"
               : acc + " += " + e + ";");
    while (loops--) close();
    return acc;
  }

  std::string argmax(ArgmaxOp a, const Index& idx) {
    Value x = a.getX();
    int64_t axis = a.getAxis();
    ArrayRef<int64_t> in = shapeOf(x);
    Index from;
    size_t next = 0;
    std::string j = fresh("j"), best = fresh("best"), bv = fresh("bv");
    for (size_t d = 0; d < in.size(); ++d) from.push_back(static_cast<int64_t>(d) == axis ? j : idx[next++]);
    Index first = from;
    first[axis] = "0";
    line("long long " + best + " = 0;");
    line(cType(x) + " " + bv + " = " + valueAt(x, first) + ";");
    open("for (long long " + j + " = 1; " + j + " < " + dim(in[axis]) + " && " + bv + " == " + bv + "; ++" + j + ")");
    std::string e = valueAt(x, from);
    open("if (" + e + " != " + e + " || " + e + " > " + bv + ")");
    line(best + " = " + j + "; " + bv + " = " + e + ";");
    close();
    close();
    return local(a.getResult(), "static_cast<int32_t>(" + best + ")");
  }

  // The operand indices of a matmul for result index `idx` and contraction index `k`.
  static std::pair<Index, Index> matmulOperands(MatmulOp m, const Index& idx, const std::string& k) {
    size_t n = idx.size();
    Index a(idx.begin(), idx.end() - 2), b(idx.begin(), idx.end() - 2);
    if (shapeOf(m.getB()).size() == 2) b.clear();  // a 2-d b shared by the batch of a
    if (m.getTransposeA()) { a.push_back(k); a.push_back(idx[n - 2]); }
    else { a.push_back(idx[n - 2]); a.push_back(k); }
    if (m.getTransposeB()) { b.push_back(idx[n - 1]); b.push_back(k); }
    else { b.push_back(k); b.push_back(idx[n - 1]); }
    return {a, b};
  }

 public:
  // K, or with sum_batch the rows of every (K, M) matrix of a batch: a is (..., K, M) and b
  // (..., K, N), so a and b read as (rows, M) and (rows, N) matrices.
  static std::string contractionSize(MatmulOp m) {
    ArrayRef<int64_t> a = shapeOf(m.getA());
    if (m.getSumBatch()) return extentExpr(a.drop_back());
    return dim(m.getTransposeA() ? a[a.size() - 2] : a.back());
  }

 private:
  std::string matmulLoop(MatmulOp m, const Index& idx) {
    Value r = m.getResult();
    std::string acc = fresh("acc"), k = fresh("k");
    line(cType(r) + " " + acc + " = 0;");
    open("for (long long " + k + " = 0; " + k + " < " + contractionSize(m) + "; ++" + k + ")");
    if (m.getSumBatch()) {
      Index ia = delinearize(k, shapeOf(m.getA()).drop_back()), ib = ia;
      ia.push_back(idx[0]);
      ib.push_back(idx[1]);
      line(acc + " += " + valueAt(m.getA(), ia) + " * " + valueAt(m.getB(), ib) + ";");
    } else {
      auto [ia, ib] = matmulOperands(m, idx, k);
      line(acc + " += " + valueAt(m.getA(), ia) + " * " + valueAt(m.getB(), ib) + ";");
    }
    close();
    return acc;
  }

  std::string gather(GatherOp g, const Index& idx) {
    Index ids(idx.begin(), idx.end() - 1);
    return valueAt(g.getTable(), {clampedId(g.getIds(), ids, shapeOf(g.getTable())[0]), idx.back()});
  }

 public:
  // The id of `ids` at `at` as a local, clamped to [0, rows) like every backend (out-of-range
  // ids are reported by kiln.check_range, not here).
  std::string clampedId(Value ids, const Index& at, int64_t rows) {
    std::string id = fresh("id");
    line("long long " + id + " = static_cast<long long>(" + valueAt(ids, at) + ");");
    line(id + " = " + id + " < 0 ? 0 : " + id + " > " + dim(rows) + " - 1 ? " + dim(rows) + " - 1 : " + id + ";");
    return id;
  }

 private:

  std::string scatterAdd(ScatterAddOp s, const Index& idx) {
    Value r = s.getResult();
    ArrayRef<int64_t> ids = shapeOf(s.getIds());
    int64_t rows = shapeOf(r)[0];
    std::string acc = fresh("acc"), t = fresh("t");
    line(cType(r) + " " + acc + " = " + (s.getBase() ? valueAt(s.getBase(), idx) : std::string("0")) + ";");
    open("for (long long " + t + " = 0; " + t + " < " + extentExpr(ids) + "; ++" + t + ")");
    Index at = delinearize(t, ids);
    std::string id = clampedId(s.getIds(), at, rows);
    at.push_back(idx[1]);
    open("if (" + id + " == " + idx[0] + ")");
    line(acc + " += " + valueAt(s.getUpdates(), at) + ";");
    close();
    close();
    return acc;
  }

  struct ConvGeometry {
    std::string s0, s1, p0, p1, d0, d1;
  };
  template <typename Op> static ConvGeometry geometry(Op c) {
    auto str = [](int64_t v) { return std::to_string(v); };
    return {str(c.getStride()[0]), str(c.getStride()[1]), str(c.getPad()[0]), str(c.getPad()[1]),
            str(c.getDilate()[0]), str(c.getDilate()[1])};
  }

  // y[n, o, oh, ow] = sum over c < C/g, kh, kw of x[n, g(o) C/g + c, oh s - p + kh d, ...] w[o, c, kh, kw]
  std::string conv2d(Conv2DOp c, const Index& idx) {
    ArrayRef<int64_t> x = shapeOf(c.getX()), w = shapeOf(c.getW());
    ConvGeometry g = geometry(c);
    std::string og = std::to_string(w[0] / c.getGroups());
    std::string acc = fresh("acc"), ci = fresh("c"), kh = fresh("kh"), kw = fresh("kw"), h = fresh("h"), ww = fresh("w");
    line(cType(c.getResult()) + " " + acc + " = 0;");
    open("for (long long " + ci + " = 0; " + ci + " < " + dim(w[1]) + "; ++" + ci + ")");
    open("for (long long " + kh + " = 0; " + kh + " < " + dim(w[2]) + "; ++" + kh + ")");
    line("const long long " + h + " = " + idx[2] + " * " + g.s0 + " - " + g.p0 + " + " + kh + " * " + g.d0 + ";");
    open("if (" + h + " < 0 || " + h + " >= " + dim(x[2]) + ")");
    line("continue;");
    close();
    open("for (long long " + kw + " = 0; " + kw + " < " + dim(w[3]) + "; ++" + kw + ")");
    line("const long long " + ww + " = " + idx[3] + " * " + g.s1 + " - " + g.p1 + " + " + kw + " * " + g.d1 + ";");
    open("if (" + ww + " < 0 || " + ww + " >= " + dim(x[3]) + ")");
    line("continue;");
    close();
    std::string channel = "((" + idx[1] + ") / " + og + " * " + dim(w[1]) + " + " + ci + ")";
    line(acc + " += " + valueAt(c.getX(), {idx[0], channel, h, ww}) + " * " + valueAt(c.getW(), {idx[1], ci, kh, kw}) + ";");
    close();
    close();
    close();
    return acc;
  }

  // dx[n, c, h, w] = sum over o of c's group, kh, kw with h = oh s - p + kh d of gy[n, o, oh, ow] w[o, c % (C/g), kh, kw]
  std::string conv2dGradInput(Conv2DGradInputOp c, const Index& idx) {
    ArrayRef<int64_t> gy = shapeOf(c.getGy()), w = shapeOf(c.getW());
    ConvGeometry g = geometry(c);
    int64_t og = w[0] / c.getGroups();
    std::string acc = fresh("acc"), o = fresh("o"), kh = fresh("kh"), kw = fresh("kw"), th = fresh("th"), tw = fresh("tw");
    line(cType(c.getResult()) + " " + acc + " = 0;");
    std::string group = "(" + idx[1] + " / " + dim(w[1]) + ")";
    open("for (long long " + o + " = " + group + " * " + std::to_string(og) + "; " + o + " < (" + group + " + 1) * " +
         std::to_string(og) + "; ++" + o + ")");
    open("for (long long " + kh + " = 0; " + kh + " < " + dim(w[2]) + "; ++" + kh + ")");
    line("const long long " + th + " = " + idx[2] + " + " + g.p0 + " - " + kh + " * " + g.d0 + ";");
    open("if (" + th + " < 0 || " + th + " % " + g.s0 + " != 0 || " + th + " / " + g.s0 + " >= " + dim(gy[2]) + ")");
    line("continue;");
    close();
    open("for (long long " + kw + " = 0; " + kw + " < " + dim(w[3]) + "; ++" + kw + ")");
    line("const long long " + tw + " = " + idx[3] + " + " + g.p1 + " - " + kw + " * " + g.d1 + ";");
    open("if (" + tw + " < 0 || " + tw + " % " + g.s1 + " != 0 || " + tw + " / " + g.s1 + " >= " + dim(gy[3]) + ")");
    line("continue;");
    close();
    line(acc + " += " + valueAt(c.getGy(), {idx[0], o, "(" + th + " / " + g.s0 + ")", "(" + tw + " / " + g.s1 + ")"}) + " * " +
         valueAt(c.getW(), {o, "((" + idx[1] + ") % " + dim(w[1]) + ")", kh, kw}) + ";");
    close();
    close();
    close();
    return acc;
  }

  // dw[o, c, kh, kw] = sum over n, oh, ow of x[n, g(o) C/g + c, oh s - p + kh d, ...] gy[n, o, oh, ow]
  std::string conv2dGradFilter(Conv2DGradFilterOp c, const Index& idx) {
    ArrayRef<int64_t> x = shapeOf(c.getX()), gy = shapeOf(c.getGy()), w = shapeOf(c.getResult());
    ConvGeometry g = geometry(c);
    std::string og = std::to_string(w[0] / c.getGroups());
    std::string acc = fresh("acc"), n = fresh("n"), oh = fresh("oh"), ow = fresh("ow"), h = fresh("h"), ww = fresh("w");
    line(cType(c.getResult()) + " " + acc + " = 0;");
    open("for (long long " + n + " = 0; " + n + " < " + dim(x[0]) + "; ++" + n + ")");
    open("for (long long " + oh + " = 0; " + oh + " < " + dim(gy[2]) + "; ++" + oh + ")");
    line("const long long " + h + " = " + oh + " * " + g.s0 + " - " + g.p0 + " + " + idx[2] + " * " + g.d0 + ";");
    open("if (" + h + " < 0 || " + h + " >= " + dim(x[2]) + ")");
    line("continue;");
    close();
    open("for (long long " + ow + " = 0; " + ow + " < " + dim(gy[3]) + "; ++" + ow + ")");
    line("const long long " + ww + " = " + ow + " * " + g.s1 + " - " + g.p1 + " + " + idx[3] + " * " + g.d1 + ";");
    open("if (" + ww + " < 0 || " + ww + " >= " + dim(x[3]) + ")");
    line("continue;");
    close();
    std::string channel = "((" + idx[0] + ") / " + og + " * " + dim(w[1]) + " + " + idx[1] + ")";
    line(acc + " += " + valueAt(c.getX(), {n, channel, h, ww}) + " * " + valueAt(c.getGy(), {n, idx[0], oh, ow}) + ";");
    close();
    close();
    close();
    return acc;
  }

  // The first maximum of the window of y index (n, c, oh, ow): its h, w and value (max);
  // or the window's sum (avg). Padding taps are skipped.
  struct Window {
    std::string value, h, w;
  };
  Window window(Value x, ArrayRef<int64_t> k, ArrayRef<int64_t> s, ArrayRef<int64_t> p, bool isMax,
                const std::string& n, const std::string& c, const std::string& oh, const std::string& ow) {
    ArrayRef<int64_t> in = shapeOf(x);
    Window win{fresh("win"), fresh("wh"), fresh("ww")};
    std::string kh = fresh("kh"), kw = fresh("kw"), h = fresh("h"), w = fresh("w");
    scalar::Type t = scalarType(tensorOf(x).getElementType(), x.getParentBlock()->getParentOp());
    line(cType(x) + " " + win.value + " = " + (isMax ? literal(-INFINITY, t) : literal(0, t)) + ";");
    line("long long " + win.h + " = -1, " + win.w + " = -1;");
    open("for (long long " + kh + " = 0; " + kh + " < " + std::to_string(k[0]) + "; ++" + kh + ")");
    line("const long long " + h + " = " + oh + " * " + std::to_string(s[0]) + " - " + std::to_string(p[0]) + " + " + kh + ";");
    open("if (" + h + " < 0 || " + h + " >= " + dim(in[2]) + ")");
    line("continue;");
    close();
    open("for (long long " + kw + " = 0; " + kw + " < " + std::to_string(k[1]) + "; ++" + kw + ")");
    line("const long long " + w + " = " + ow + " * " + std::to_string(s[1]) + " - " + std::to_string(p[1]) + " + " + kw + ";");
    open("if (" + w + " < 0 || " + w + " >= " + dim(in[3]) + ")");
    line("continue;");
    close();
    std::string e = valueAt(x, {n, c, h, w});
    if (isMax) {
      open("if (" + win.h + " < 0 || " + e + " > " + win.value + ")");
      line(win.value + " = " + e + "; " + win.h + " = " + h + "; " + win.w + " = " + w + ";");
      close();
    } else {
      line(win.value + " += " + e + ";");
    }
    close();
    close();
    return win;
  }

  std::string pool2d(Pool2DOp p, const Index& idx) {
    bool isMax = p.getKind() == "max";
    Window win = window(p.getX(), p.getKsize(), p.getStride(), p.getPad(), isMax, idx[0], idx[1], idx[2], idx[3]);
    if (isMax) return win.value;
    return local(p.getResult(), win.value + " / " + std::to_string(p.getKsize()[0] * p.getKsize()[1]));
  }

  // dx[n, c, h, w] = sum over the windows holding (h, w) of gy (max: where (h, w) is the
  // window's first maximum; avg: gy / (kh kw)).
  std::string pool2dGrad(Pool2DGradOp p, const Index& idx) {
    bool isMax = p.getKind() == "max";
    auto k = p.getKsize(), s = p.getStride(), pd = p.getPad();
    ArrayRef<int64_t> gy = shapeOf(p.getGy());
    std::string acc = fresh("acc"), oh = fresh("oh"), ow = fresh("ow");
    line(cType(p.getResult()) + " " + acc + " = 0;");
    auto range = [&](const std::string& i, int d, const std::string& var) {
      std::string t = "(" + i + " + " + std::to_string(pd[d]) + " - " + std::to_string(k[d] - 1) + ")";
      std::string lo = "(" + t + " <= 0 ? 0 : (" + t + " + " + std::to_string(s[d] - 1) + ") / " + std::to_string(s[d]) + ")";
      std::string hi = "(" + i + " + " + std::to_string(pd[d]) + ") / " + std::to_string(s[d]);
      open("for (long long " + var + " = " + lo + "; " + var + " <= " + hi + " && " + var + " < " + dim(gy[d + 2]) + "; ++" + var + ")");
    };
    range(idx[2], 0, oh);
    range(idx[3], 1, ow);
    std::string g = valueAt(p.getGy(), {idx[0], idx[1], oh, ow});
    if (isMax) {
      Window win = window(p.getX(), k, s, pd, true, idx[0], idx[1], oh, ow);
      open("if (" + win.h + " == " + idx[2] + " && " + win.w + " == " + idx[3] + ")");
      line(acc + " += " + g + ";");
      close();
    } else {
      line(acc + " += " + g + " / " + literal(static_cast<double>(k[0] * k[1]), scalarType(tensorOf(p.getGy()).getElementType(), p)) + ";");
    }
    close();
    close();
    return acc;
  }

  std::string& globals_;
  int& constants_;
  const llvm::SetVector<Operation*>& ops_;
  std::string code_;
  int indent_ = 1;
  int next_ = 0;
  std::vector<std::map<std::string, std::string>> scopes_;
  std::vector<Value> inputs_;
  llvm::DenseMap<Value, size_t> inputIndex_;
  llvm::DenseMap<Value, IotaOp> indexValues_;
};

// The ops of `ops` that `roots` are computed from (their defining ops included).
llvm::SetVector<Operation*> producers(ArrayRef<Value> roots, const llvm::SetVector<Operation*>& ops) {
  llvm::SetVector<Operation*> seen;
  std::vector<Value> work(roots.begin(), roots.end());
  while (!work.empty()) {
    Value v = work.back();
    work.pop_back();
    Operation* def = v.getDefiningOp();
    if (!def || !ops.contains(def) || !seen.insert(def)) continue;
    for (Value operand : def->getOperands()) work.push_back(operand);
  }
  return seen;
}

bool isLayoutOrConstant(Operation* op) {
  auto role = FusionOp::roleOf(op);
  return role == FusionOp::Role::Constant || role == FusionOp::Role::Layout;
}

// What a kernel computes itself in place of reading other steps' buffers (emitProgram):
// inputs that are a kiln.iota (computed from the index), inputs that are the ids of a
// kiln.check_range whose status a row kernel computes over its rows, and the ops of a batch
// reduction merged after the rows (the grid epilogue of rowReduction).
struct Absorbed {
  std::vector<std::pair<Value, IotaOp>> iotas;
  std::vector<std::pair<Value, CheckRangeOp>> checks;
  llvm::SetVector<Operation*> grid;
};

// The kernel of one group of ops (a fusion region's body, or one op) and its outputs.
class KernelBuilder {
 public:
  KernelBuilder(std::string& globals, int& constants, llvm::SetVector<Operation*> ops, std::vector<Value> outputs,
                std::string label, std::string kind, const Absorbed& absorbed = {})
      : ops_(std::move(ops)), outputs_(std::move(outputs)), globals_(globals), e_(globals, constants, ops_),
        checks_(absorbed.checks), grid_(absorbed.grid) {
    info_.label = std::move(label);
    info_.name = identifier(info_.label);
    kind_ = std::move(kind);
    for (auto& [v, iota] : absorbed.iotas) e_.computeFromIndex(v, iota);
  }

  // The checks whose status the kernel computes (rowReduction); their status buffers are
  // its last outputs, after outputs().
  const std::vector<std::pair<Value, CheckRangeOp>>& absorbedChecks() const { return absorbedChecks_; }

  // Builds the kernel's source (signature and body) and its launch; the caller maps
  // inputs() and outputs to buffers.
  std::string build() {
    if (kind_ == FusionOp::kContraction && gemm()) {
    } else if ((kind_ == FusionOp::kContraction || kind_ == "op") && implicitGemm()) {
    } else if (kind_ == FusionOp::kReduction && rowReduction()) {
    } else if (scatter()) {
    } else {
      elements();
    }
    std::string sig = "extern \"C\" __global__ void " + info_.name + "(";
    for (auto [i, v] : llvm::enumerate(e_.inputs())) sig += "const " + cType(v) + "* __restrict__ in" + std::to_string(i) + ", ";
    for (auto [i, v] : llvm::enumerate(outputs_)) sig += cType(v) + "* __restrict__ out" + std::to_string(i) + ", ";
    for (size_t c = 0; c < absorbedChecks_.size(); ++c)
      sig += "int64_t* __restrict__ out" + std::to_string(outputs_.size() + c) + ", ";
    sig += "long long batch)";
    std::string head = "// kernel " + info_.label + " (" + info_.shape + ")\n";
    return head + sig + " {\n" + e_.code() + "}\n";
  }

  const std::vector<Value>& inputs() const { return e_.inputs(); }
  const std::vector<Value>& outputs() const { return outputs_; }
  KernelInfo& info() { return info_; }

  // Whether the kernel accumulates into its output (scatter-add), which fill() must
  // zero first, or set to the scatter_add's base: the fill kernel's info (its output is
  // the kernel's; with a base, the caller adds the base's buffer as its input) and source.
  bool accumulates() const { return info_.shape == "scatter-add"; }
  Value fillBase() const { return fillBase_; }
  std::pair<KernelInfo, std::string> fill() const {
    KernelInfo f;
    size_t site = info_.label.find(" (");
    f.label = info_.label.substr(0, site) + (fillBase_ ? "+base" : "+zero") +
              (site == std::string::npos ? "" : info_.label.substr(site));
    f.name = info_.name + (fillBase_ ? "_base" : "_zero");
    f.shape = fillBase_ ? "copy" : "fill";
    f.launch = LaunchKind::Elements;
    ArrayRef<int64_t> shape = shapeOf(outputs_[0]);
    f.work = extentOf(shape);
    f.outputs = info_.outputs;
    std::string t = cType(outputs_[0]);
    std::string source = "// kernel " + f.label + " (" + f.shape + ")\n";
    source += "extern \"C\" __global__ void " + f.name + "(" + (fillBase_ ? "const " + t + "* __restrict__ in0, " : "") +
              t + "* __restrict__ out0, long long batch) {\n";
    source += "  const long long n = " + extentExpr(shape) + ";\n";
    source += "  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;"
              " i += static_cast<long long>(blockDim.x) * gridDim.x)\n";
    source += "    out0[i] = " + (fillBase_ ? std::string("in0[i]") : t + "(0)") + ";\n}\n";
    return {f, source};
  }

 private:
  // The outputs grouped by shape (stores of one shape share their index).
  std::vector<std::pair<ArrayRef<int64_t>, std::vector<size_t>>> outputsByShape() {
    std::vector<std::pair<ArrayRef<int64_t>, std::vector<size_t>>> groups;
    for (size_t i = 0; i < outputs_.size(); ++i) {
      ArrayRef<int64_t> s = shapeOf(outputs_[i]);
      auto it = llvm::find_if(groups, [&](auto& g) { return g.first == s; });
      if (it == groups.end()) groups.push_back({s, {i}});
      else it->second.push_back(i);
    }
    return groups;
  }

  std::string out(size_t i) { return "out" + std::to_string(i); }

  // Whether every output and every value read is whole (the space's shape, identity
  // index) and 4 bytes wide: then 128-bit loads and stores.
  bool vectorizable(ArrayRef<int64_t> space, size_t numGroups) {
    if (numGroups != 1 || space.empty()) return false;
    bool arithmetic = false;
    for (Operation* op : ops_) {
      if (op->hasTrait<OpTrait::ConstantLike>()) {
        Attribute value;
        if (!matchPattern(op->getResult(0), m_Constant(&value)) || !isa<SplatElementsAttr>(value)) return false;
        continue;
      }
      if (!isElementwise(op)) return false;
      arithmetic = true;
      if (shapeOf(op->getResult(0)) != space) return false;
      for (Value v : op->getOperands()) {
        if (auto c = v.getDefiningOp(); c && ops_.contains(c)) continue;
        if (shapeOf(v) != space || e_.isComputedFromIndex(v)) return false;
      }
    }
    for (Value v : outputs_)
      if (!v.getDefiningOp() || !ops_.contains(v.getDefiningOp())) return false;
    auto width4 = [](Value v) {
      Type t = tensorOf(v).getElementType();
      return t.isF32() || t.isInteger(32);
    };
    for (Operation* op : ops_)
      for (Value v : op->getOperands())
        if (!(v.getDefiningOp() && ops_.contains(v.getDefiningOp())) && !width4(v)) return false;
    return arithmetic && llvm::all_of(outputs_, width4);
  }

  // Grid-stride over the largest output; each output shape decomposes the index itself.
  void elements() {
    auto groups = outputsByShape();
    Extent work;
    std::string n = "0";
    for (auto& [shape, members] : groups) {
      Extent ext = extentOf(shape);
      if (ext.batch_power > work.batch_power || (ext.batch_power == work.batch_power && ext.factor > work.factor)) work = ext;
      std::string size = extentExpr(shape);
      n = n == "0" ? size : "(" + n + " > " + size + " ? " + n + " : " + size + ")";
    }
    info_.launch = LaunchKind::Elements;
    info_.work = work;
    info_.shape = "elementwise";
    e_.line("const long long n = " + n + ";");
    e_.line("const long long stride = static_cast<long long>(blockDim.x) * gridDim.x;");
    e_.line("long long start = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;");
    if (vectorizable(groups.front().first, groups.size())) {
      info_.shape = "elementwise-vectorized";
      emitVectorLoop();
    }
    e_.open("for (long long i = start; i < n; i += stride)");
    for (auto& [shape, members] : groups) {
      bool guard = groups.size() > 1;
      if (guard) e_.open("if (i < " + extentExpr(shape) + ")");
      else e_.open("");
      Index idx = indexOf("i", shape, "i");
      for (size_t m : members) e_.line(out(m) + "[i] = " + e_.valueAt(outputs_[m], idx) + ";");
      e_.close();
    }
    e_.close();
  }

  // The vector loop: lanes x, y, z, w of 16-byte loads; `start` then points at the tail.
  void emitVectorLoop() {
    ArrayRef<int64_t> space = shapeOf(outputs_.front());
    // Lanes first into a side buffer: they name the inputs.
    std::string saved = std::move(e_.code());
    e_.code().clear();
    int depth = e_.indent();
    e_.indent() = depth + 2;  // inside `if (aligned)` and the vector loop
    const char* lanes[] = {"x", "y", "z", "w"};
    std::vector<std::string> results(outputs_.size());
    for (int l = 0; l < 4; ++l) {
      e_.open("");
      Index idx(space.size(), "0");
      idx.back() = std::string("lane_") + lanes[l];  // a distinct index per lane; loads are seeded
      for (Value v : collectInputs()) e_.seed(v, idx, std::string("a") + std::to_string(inputPosition(v)) + "." + lanes[l]);
      for (size_t o = 0; o < outputs_.size(); ++o) e_.line("r" + std::to_string(o) + "." + lanes[l] + " = " + e_.valueAt(outputs_[o], idx) + ";");
      e_.close();
    }
    std::string lanesCode = std::move(e_.code());
    e_.code() = std::move(saved);
    e_.indent() = depth;
    std::string cond;
    for (size_t i = 0; i < e_.inputs().size(); ++i) cond += "reinterpret_cast<unsigned long long>(in" + std::to_string(i) + ") | ";
    for (size_t o = 0; o < outputs_.size(); ++o) cond += "reinterpret_cast<unsigned long long>(" + out(o) + ") | ";
    e_.open("if (((" + cond + "0ULL) & 15ULL) == 0)");
    e_.line("const long long n4 = n / 4;");
    e_.open("for (long long q = start; q < n4; q += stride)");
    auto vec = [](Value v) { return tensorOf(v).getElementType().isF32() ? std::string("float4") : std::string("int4"); };
    for (size_t i = 0; i < e_.inputs().size(); ++i)
      e_.line("const " + vec(e_.inputs()[i]) + " a" + std::to_string(i) + " = reinterpret_cast<const " + vec(e_.inputs()[i]) +
              "*>(in" + std::to_string(i) + ")[q];");
    for (size_t o = 0; o < outputs_.size(); ++o) e_.line(vec(outputs_[o]) + " r" + std::to_string(o) + ";");
    e_.code() += lanesCode;
    for (size_t o = 0; o < outputs_.size(); ++o)
      e_.line("reinterpret_cast<" + vec(outputs_[o]) + "*>(" + out(o) + ")[q] = r" + std::to_string(o) + ";");
    e_.close();
    e_.line("start = n4 * 4 + start;  // the tail, element by element");
    e_.close();
  }

  // The values the kernel reads from outside, registered as inputs in order.
  std::vector<Value> collectInputs() {
    std::vector<Value> in;
    for (Operation* op : ops_)
      for (Value v : op->getOperands())
        if (!(v.getDefiningOp() && ops_.contains(v.getDefiningOp())) && !llvm::is_contained(in, v)) {
          in.push_back(v);
          e_.inputName(v);
        }
    return in;
  }
  size_t inputPosition(Value v) { return llvm::find(e_.inputs(), v) - e_.inputs().begin(); }

  // The index of `shape` at linear position `linear`, as locals <prefix>0, <prefix>1, ...
  Index indexOf(const std::string& linear, ArrayRef<int64_t> shape, const std::string& prefix) {
    Index idx(shape.size());
    if (shape.empty()) return idx;
    std::string stride = "1";
    for (size_t d = shape.size(); d-- > 0;) {
      std::string q = stride == "1" ? linear : "(" + linear + " / (" + stride + "))";
      idx[d] = d == 0 ? q : "(" + q + " % " + dim(shape[d]) + ")";
      stride = stride == "1" ? dim(shape[d]) : stride + " * " + dim(shape[d]);
    }
    // Named locals: readable, and shared by every use.
    Index named;
    for (size_t d = 0; d < idx.size(); ++d) {
      std::string name = prefix + std::to_string(d);
      e_.line("const long long " + name + " = " + idx[d] + ";");
      named.push_back(name);
    }
    return named;
  }

  // One block per row of the reductions' result; all reductions of the region share
  // their input shape and axes. Every output is over the input or the result space, or is
  // one value of the grid epilogue (below).
  //
  // Where the row length is static, each thread keeps its elements of the inputs read over
  // the whole row across the successive row passes (max, sum of exp, ..., the outputs): one
  // read of global memory per element. In registers where that is at most 8 elements per
  // thread, else in shared memory where the rows of those inputs take at most 32 KiB.
  //
  // The grid epilogue, when ops of a batch reduction are merged after the rows (grid_) or
  // the region reads the ids of a kiln.check_range over its rows (checks_): thread 0 of each
  // block accumulates its rows' values and its first bad id in registers, the block writes
  // them to module-global partials, and the last block to finish (a counter bumped after
  // __threadfence) combines the partials in block order, computes the merged ops' results
  // and the status, and resets the counter. At most 1024 blocks take part (blocks beyond
  // return at once), so the partials are static; the order of the sums depends on the
  // row count only (deterministic). Launches of one program must not overlap (one stream).
  bool rowReduction() {
    // The reductions the outputs need (a part of a region computes some of its outputs).
    llvm::SetVector<Operation*> needed = producers(outputs_, ops_);
    SmallVector<Operation*> reductions, gridReductions;
    for (Operation* op : ops_)
      if (isa<ReduceSumOp, ReduceMaxOp>(op) && needed.contains(op))
        (grid_.contains(op) ? gridReductions : reductions).push_back(op);
    if (reductions.empty()) return false;
    auto axesOf = [](Operation* op) {
      return isa<ReduceSumOp>(op) ? cast<ReduceSumOp>(op).getAxes() : cast<ReduceMaxOp>(op).getAxes();
    };
    ArrayRef<int64_t> in = shapeOf(reductions[0]->getOperand(0));
    ArrayRef<int64_t> axes = axesOf(reductions[0]);
    for (Operation* r : reductions)
      if (shapeOf(r->getOperand(0)) != in || axesOf(r) != axes) return false;
    SmallVector<int64_t> keep, flat, inner, outer;
    for (size_t d = 0; d < in.size(); ++d) {
      bool reduced = llvm::is_contained(axes, static_cast<int64_t>(d));
      keep.push_back(reduced ? 1 : in[d]);
      if (reduced) inner.push_back(in[d]);
      else { flat.push_back(in[d]); outer.push_back(in[d]); }
    }
    auto scalarShape = [](ArrayRef<int64_t> s) { return llvm::all_of(s, [](int64_t d) { return d == 1; }); };
    // Grid reductions reduce a value over the rows (the result space) to one value.
    for (Operation* r : gridReductions)
      if (shapeOf(r->getOperand(0)) != ArrayRef<int64_t>(flat) || axesOf(r).size() != flat.size() ||
          !scalarShape(shapeOf(r->getResult(0))))
        return false;
    std::vector<bool> gridOutput(outputs_.size(), false);
    for (size_t o = 0; o < outputs_.size(); ++o) {
      Value v = outputs_[o];
      ArrayRef<int64_t> s = shapeOf(v);
      llvm::SetVector<Operation*> from = producers({v}, ops_);
      gridOutput[o] = v.getDefiningOp() && grid_.contains(v.getDefiningOp());
      bool afterGrid = llvm::any_of(gridReductions, [&](Operation* r) { return from.contains(r); });
      if (gridOutput[o] ? !scalarShape(s) : afterGrid) return false;
      if (!gridOutput[o] && s != in && s != ArrayRef<int64_t>(keep) && s != ArrayRef<int64_t>(flat)) return false;
    }
    // The checks over the rows: their ids are one per row.
    absorbedChecks_.clear();
    for (auto& [ids, check] : checks_)
      if (shapeOf(ids) == ArrayRef<int64_t>(flat)) absorbedChecks_.push_back({ids, check});
    const bool grid = !gridReductions.empty() || !absorbedChecks_.empty() ||
                      llvm::is_contained(gridOutput, true);
    info_.launch = LaunchKind::Rows;
    info_.work = extentOf(outer);
    info_.shape = "row-reduction";
    // One warp per row when the row fits in one (no idle warps in the block reductions).
    std::pair<int64_t, int64_t> row = kiln::ir::symbolicSize(inner);
    info_.block = row.second == 0 && row.first <= 32 ? 32 : 128;
    bool anyInner = false, anyRow = false;
    for (size_t o = 0; o < outputs_.size(); ++o) {
      anyInner |= shapeOf(outputs_[o]) == in;
      anyRow |= !gridOutput[o] && shapeOf(outputs_[o]) != in;
    }
    // The row cache: the inputs over the row space that the needed ops read, in registers
    // (at most 8 elements per thread) or else in shared memory (at most 32 KiB a block).
    const int64_t perThread = (row.first + info_.block - 1) / info_.block;
    std::vector<Value> cached;
    if (row.second == 0 && reductions.size() + (anyInner ? 1 : 0) >= 2)
      for (Operation* op : needed)
        for (Value v : op->getOperands())
          if (!e_.isInside(v) && !e_.isComputedFromIndex(v) && shapeOf(v) == in && !llvm::is_contained(cached, v))
            cached.push_back(v);
    int64_t rowBytes = 0;
    for (Value v : cached) rowBytes += row.first * ((tensorOf(v).getElementType().getIntOrFloatBitWidth() + 7) / 8);
    const bool inRegisters = perThread <= 8;
    if (!inRegisters && rowBytes > 32768) cached.clear();
    std::set<std::string> scratch;
    for (Operation* r : reductions) scratch.insert(cType(r->getResult(0)));
    for (const std::string& t : scratch) e_.line("__shared__ " + t + " scratch_" + t + "[32];");
    // (Each thread reads back only the elements it stored: no barrier between.)
    if (!inRegisters)
      for (size_t c = 0; c < cached.size(); ++c)
        e_.line("__shared__ " + cType(cached[c]) + " rs" + std::to_string(c) + "[" + std::to_string(row.first) + "];  // the row");
    e_.line("const long long rows = " + extentExpr(outer) + ", inner = " + extentExpr(inner) + ";");
    std::string rowStride = "gridDim.x";
    std::vector<std::string> gridAcc, firstBad;
    if (grid) {
      rowStride = "kiln_blocks";
      e_.line("const unsigned kiln_blocks = gridDim.x < 1024u ? gridDim.x : 1024u;  // the blocks of the grid epilogue");
      e_.line("if (blockIdx.x >= kiln_blocks) return;");
      for (Operation* r : gridReductions) {
        gridAcc.push_back(e_.fresh("grid"));
        e_.line(cType(r->getResult(0)) + " " + gridAcc.back() + " = " + identityOf(r) + ";");
      }
      for (size_t c = 0; c < absorbedChecks_.size(); ++c) {
        firstBad.push_back(e_.fresh("first"));
        e_.line("long long " + firstBad.back() + " = -1;");
      }
    }
    e_.open("for (long long row = blockIdx.x; row < rows; row += " + rowStride + ")");
    Index rowIdx = indexOf("row", outer, "r_");
    // The index of the input space from the row's index and the inner index `j`.
    auto full = [&](const Index& innerIdx) {
      Index idx;
      size_t o = 0, i = 0;
      for (size_t d = 0; d < in.size(); ++d)
        idx.push_back(llvm::is_contained(axes, static_cast<int64_t>(d)) ? innerIdx[i++] : rowIdx[o++]);
      return idx;
    };
    Index keepIdx, flatIdx = rowIdx;
    for (size_t d = 0, o = 0; d < in.size(); ++d)
      keepIdx.push_back(llvm::is_contained(axes, static_cast<int64_t>(d)) ? "0" : rowIdx[o++]);
    auto resultIdx = [&](ArrayRef<int64_t> s) { return s == ArrayRef<int64_t>(flat) ? flatIdx : keepIdx; };
    // A pass over the row: `body` at each of this thread's elements (the input-space index).
    auto cacheAt = [&](size_t c) { return (inRegisters ? "rc" : "rs") + std::to_string(c) + (inRegisters ? "[e]" : "[j]"); };
    auto rowPass = [&](const std::function<void(const Index&)>& body, bool seedCache) {
      if (!cached.empty() && inRegisters) {
        e_.line("#pragma unroll");
        e_.open("for (int e = 0; e < " + std::to_string(perThread) + "; ++e)");
        e_.line("const long long j = threadIdx.x + e * " + std::to_string(info_.block) + ";");
        e_.open("if (j < inner)");
      } else {
        e_.open("for (long long j = threadIdx.x; j < inner; j += blockDim.x)");
      }
      Index idx = full(indexOf("j", inner, "j_"));
      if (seedCache)
        for (size_t c = 0; c < cached.size(); ++c) e_.seed(cached[c], idx, cacheAt(c));
      body(idx);
      e_.close();
      if (!cached.empty() && inRegisters) e_.close();
    };
    if (!cached.empty()) {
      if (inRegisters)
        for (size_t c = 0; c < cached.size(); ++c)
          e_.line(cType(cached[c]) + " rc" + std::to_string(c) + "[" + std::to_string(perThread) + "];  // this thread's row elements");
      rowPass([&](const Index& idx) {
        for (size_t c = 0; c < cached.size(); ++c)
          e_.line(cacheAt(c) + " = " + e_.inputName(cached[c]) + "[" + linearize(idx, in) + "];");
      }, false);
    }
    for (Operation* r : reductions) {
      bool isMax = isa<ReduceMaxOp>(r);
      std::string t = cType(r->getResult(0));
      std::string acc = e_.fresh("red");
      e_.line(t + " " + acc + " = " + identityOf(r) + ";");
      rowPass([&](const Index& idx) {
        std::string v = e_.valueAt(r->getOperand(0), idx);
        e_.line(isMax ? acc + " = kiln_max_nan(" + acc + ", " + v + ");" : acc + " += " + v + ";");
      }, true);
      e_.line(acc + " = " + (isMax ? "kiln_block_max" : "kiln_block_sum") + "(" + acc + ", scratch_" + t + ");");
      e_.seed(r->getResult(0), resultIdx(shapeOf(r->getResult(0))), acc);
    }
    // Outputs over the input space, then those over the result space and the grid's
    // per-row values (thread 0).
    if (anyInner)
      rowPass([&](const Index& idx) {
        for (size_t o = 0; o < outputs_.size(); ++o)
          if (shapeOf(outputs_[o]) == in) e_.line(out(o) + "[" + linearize(idx, in) + "] = " + e_.valueAt(outputs_[o], idx) + ";");
      }, true);
    if (anyRow || grid) {
      e_.open("if (threadIdx.x == 0)");
      for (size_t o = 0; o < outputs_.size(); ++o)
        if (!gridOutput[o] && shapeOf(outputs_[o]) != in)
          e_.line(out(o) + "[row] = " + e_.valueAt(outputs_[o], resultIdx(shapeOf(outputs_[o]))) + ";");
      for (auto [k, r] : llvm::enumerate(gridReductions)) {
        std::string v = e_.valueAt(r->getOperand(0), flatIdx);
        e_.line(isa<ReduceMaxOp>(r) ? gridAcc[k] + " = kiln_max_nan(" + gridAcc[k] + ", " + v + ");" : gridAcc[k] + " += " + v + ";");
      }
      for (auto [c, check] : llvm::enumerate(absorbedChecks_)) {
        std::string x = e_.valueAt(check.first, flatIdx);
        e_.open("if (" + firstBad[c] + " < 0 && " + badId(check.second, x) + ")");
        e_.line(firstBad[c] + " = row;");
        e_.close();
      }
      e_.close();
    }
    e_.close();
    if (grid) gridEpilogue(gridReductions, gridAcc, firstBad, gridOutput);
    return true;
  }

  // The identity of a reduction: 0, or the least value of its type.
  static std::string identityOf(Operation* r) {
    scalar::Type st = scalarType(tensorOf(r->getResult(0)).getElementType(), r);
    if (!isa<ReduceMaxOp>(r)) return literal(0, st);
    return scalar::isFloat(st) ? literal(-INFINITY, st)
           : st == scalar::Type::I32 ? std::string("(-2147483647 - 1)") : std::string("(-9223372036854775807LL - 1)");
  }

  // The last block's part of the grid epilogue (rowReduction): partials in, results out.
  void gridEpilogue(ArrayRef<Operation*> reductions, const std::vector<std::string>& acc,
                    const std::vector<std::string>& firstBad, const std::vector<bool>& gridOutput) {
    const std::string state = info_.name + "_grid";
    globals_ += "// the grid epilogue of " + info_.name + ": blocks done, per-block partials\n";
    globals_ += "KILN_GRID_STATE unsigned int " + state + "_done = 0;\n";
    for (auto [k, r] : llvm::enumerate(reductions))
      globals_ += "KILN_GRID_STATE " + cType(r->getResult(0)) + " " + state + "_" + std::to_string(k) + "[1024];\n";
    for (size_t c = 0; c < firstBad.size(); ++c)
      globals_ += "KILN_GRID_STATE long long " + state + "_first" + std::to_string(c) + "[1024];\n";
    e_.open("if (threadIdx.x == 0)");
    for (size_t k = 0; k < acc.size(); ++k) e_.line(state + "_" + std::to_string(k) + "[blockIdx.x] = " + acc[k] + ";");
    for (size_t c = 0; c < firstBad.size(); ++c) e_.line(state + "_first" + std::to_string(c) + "[blockIdx.x] = " + firstBad[c] + ";");
    e_.line("__threadfence();  // the partials before the count");
    e_.open("if (atomicAdd(&" + state + "_done, 1u) == kiln_blocks - 1)");
    e_.line("__threadfence();");
    for (auto [k, r] : llvm::enumerate(reductions)) {
      std::string t = cType(r->getResult(0)), total = e_.fresh("total");
      std::string partial = "static_cast<volatile " + t + "*>(" + state + "_" + std::to_string(k) + ")[b]";
      e_.line(t + " " + total + " = " + identityOf(r) + ";");
      e_.open("for (unsigned b = 0; b < kiln_blocks; ++b)");
      e_.line(isa<ReduceMaxOp>(r) ? total + " = kiln_max_nan(" + total + ", " + t + "(" + partial + "));" : total + " += " + partial + ";");
      e_.close();
      e_.seed(r->getResult(0), Index(shapeOf(r->getResult(0)).size(), "0"), total);
    }
    for (size_t o = 0; o < outputs_.size(); ++o)
      if (gridOutput[o]) e_.line(out(o) + "[0] = " + e_.valueAt(outputs_[o], Index(shapeOf(outputs_[o]).size(), "0")) + ";");
    for (auto [c, check] : llvm::enumerate(absorbedChecks_)) {
      // status = [the first row with a bad id, that id] or [-1, 0], as kiln.check_range.
      std::string first = e_.fresh("first");
      e_.line("long long " + first + " = -1;");
      e_.open("for (unsigned b = 0; b < kiln_blocks; ++b)");
      e_.line("const long long f = static_cast<volatile long long*>(" + state + "_first" + std::to_string(c) + ")[b];");
      e_.line("if (f >= 0 && (" + first + " < 0 || f < " + first + ")) " + first + " = f;");
      e_.close();
      std::string status = out(outputs_.size() + c);
      e_.line(status + "[0] = " + first + ";");
      e_.line(status + "[1] = " + first + " < 0 ? 0LL : static_cast<long long>(" + e_.inputName(check.first) + "[" + first + "]);");
    }
    e_.line(state + "_done = 0;  // for the next launch");
    e_.close();
    e_.close();
  }

  // scatter_add with atomics: one thread per update element adds it at its id's row of the
  // result, which a kernel launched first zeroes or sets to the base (fill()). Only where the
  // region's one output is the scatter_add (nothing inside reads the sum) and a base comes
  // from outside the region (an embedding's gradient accumulated over time steps); ops
  // computing the ids or the updates are computed at the update's index. (A base computed
  // inside: the per-element loop of scatterAdd().)
  bool scatter() {
    if (outputs_.size() != 1) return false;
    auto s = outputs_[0].getDefiningOp<ScatterAddOp>();
    if (!s || !ops_.contains(s)) return false;
    if (Value base = s.getBase()) {
      if (Operation* def = base.getDefiningOp(); def && ops_.contains(def)) return false;
      fillBase_ = base;
    }
    Type t = tensorOf(s.getResult()).getElementType();
    if (!t.isF32() && !t.isF64() && !t.isInteger(32) && !t.isInteger(64)) return false;
    ArrayRef<int64_t> updates = shapeOf(s.getUpdates()), result = shapeOf(s.getResult());
    info_.launch = LaunchKind::Elements;
    info_.work = extentOf(updates);
    info_.shape = "scatter-add";
    e_.line("const long long n = " + extentExpr(updates) + ";");
    e_.line("const long long stride = static_cast<long long>(blockDim.x) * gridDim.x;");
    e_.open("for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)");
    Index u = indexOf("i", updates, "i");
    std::string id = e_.clampedId(s.getIds(), Index(u.begin(), u.end() - 1), result[0]);
    std::string v = e_.valueAt(s.getUpdates(), u);
    std::string target = "&" + out(0) + "[" + id + " * " + dim(result[1]) + " + " + u.back() + "]";
    // (CUDA has no signed 64-bit atomicAdd; two's complement addition is the unsigned one.)
    if (t.isInteger(64)) e_.line("atomicAdd(reinterpret_cast<unsigned long long*>(" + target + "), static_cast<unsigned long long>(" + v + "));");
    else e_.line("atomicAdd(" + target + ", " + v + ");");
    e_.close();
    return true;
  }

  // The tiled GEMM of gemm() and the implicit-GEMM convolutions: `count` matrices
  // C[bz] (M x N) = A[bz] (M x K) B[bz] (K x N), 64x64 tiles of C per block of 16x16 threads,
  // each thread a 4x4 register micro-tile; K in steps of 16 through shared memory (As[k][m],
  // Bs[k][n], a column of padding against bank conflicts), __syncthreads between the tile loads
  // and their use; tiles strided over the grid. Each block sums its tile's whole K in a fixed
  // order (no split-K): results are deterministic.
  struct TiledGemm {
    std::string T, M, N, K, count;  // element type, C expressions of the sizes
    Extent rows, cols, matrices;    // M, N and count as launch extents
    // The load order: consecutive threads walk k (else m) of A, k (else n) of B, the
    // direction in which the operand's consecutive addresses lie (coalesced loads).
    bool aAlongK = true, bAlongK = false;
    // Emit the statements setting `dst` to A[bz](gm, gk) / B[bz](gkb, gn), 0 outside the
    // matrix (bounds and padding checks; an implicit GEMM's im2col indices computed here).
    std::function<void(const std::string& dst)> loadA, loadB;
    // The result index of C[bz](gm, gn) (locals it declares), and the output buffers' linear index.
    std::function<Index()> resultIndex;
    std::function<std::string(const Index&)> linear;
    Value result;  // seeded with the accumulator at resultIndex()
  };

  void tiledGemm(const TiledGemm& g) {
    const std::string& T = g.T;
    info_.launch = LaunchKind::Tiles;
    info_.block = 16;
    info_.tile = 64;
    info_.work = g.cols;
    info_.rows = g.rows;
    info_.count = g.matrices;
    e_.line("__shared__ " + T + " As[16][64 + 1];  // As[k][m]");
    e_.line("__shared__ " + T + " Bs[16][64 + 1];  // Bs[k][n]");
    e_.line("const long long M = " + g.M + ", N = " + g.N + ", K = " + g.K + ", count = " + g.count + ";");
    e_.line("const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;");
    e_.open("for (long long bz = blockIdx.z; bz < count; bz += gridDim.z)");
    e_.open("for (long long m0 = static_cast<long long>(blockIdx.y) * 64; m0 < M; m0 += static_cast<long long>(gridDim.y) * 64)");
    e_.open("for (long long n0 = static_cast<long long>(blockIdx.x) * 64; n0 < N; n0 += static_cast<long long>(gridDim.x) * 64)");
    e_.line(T + " acc[4][4] = {};");
    e_.open("for (long long k0 = 0; k0 < K; k0 += 16)");
    // Coalesced loads: consecutive threads read consecutive addresses of the operand.
    e_.open("for (int e = tid; e < 16 * 64; e += 256)");
    e_.open("");
    e_.line(g.aAlongK ? "const int mm = e / 16, kk = e % 16;" : "const int kk = e / 64, mm = e % 64;");
    e_.line("const long long gm = m0 + mm, gk = k0 + kk;");
    g.loadA("As[kk][mm]");
    e_.close();
    e_.open("");
    e_.line(g.bAlongK ? "const int nn = e / 16, kb = e % 16;" : "const int kb = e / 64, nn = e % 64;");
    e_.line("const long long gn = n0 + nn, gkb = k0 + kb;");
    g.loadB("Bs[kb][nn]");
    e_.close();
    e_.close();
    e_.line("__syncthreads();");
    e_.open("for (int kk = 0; kk < 16; ++kk)");
    e_.line(T + " ra[4], rb[4];");
    e_.line("for (int r = 0; r < 4; ++r) { ra[r] = As[kk][ty * 4 + r]; rb[r] = Bs[kk][tx * 4 + r]; }");
    e_.line("for (int r = 0; r < 4; ++r) for (int c = 0; c < 4; ++c) acc[r][c] += ra[r] * rb[c];");
    e_.close();
    e_.line("__syncthreads();");
    e_.close();
    // Epilogue: the region's ops at each accumulator of the micro-tile, then the stores.
    e_.open("for (int r = 0; r < 4; ++r)");
    e_.open("for (int c = 0; c < 4; ++c)");
    e_.line("const long long gm = m0 + ty * 4 + r, gn = n0 + tx * 4 + c;");
    e_.open("if (gm < M && gn < N)");
    Index idx = g.resultIndex();
    e_.seed(g.result, idx, "acc[r][c]");
    std::string at = g.linear(idx);
    for (size_t o = 0; o < outputs_.size(); ++o) e_.line(out(o) + "[" + at + "] = " + e_.valueAt(outputs_[o], idx) + ";");
    e_.close();
    e_.close();
    e_.close();
    e_.close();
    e_.close();
    e_.close();
  }

  // A tiled GEMM (tiledGemm) of a matmul whose operands are read from outside the region;
  // the epilogue at each accumulator.
  bool gemm() {
    MatmulOp m;
    for (Operation* op : ops_)
      if (auto mm = dyn_cast<MatmulOp>(op)) m = mm;
    if (!m || e_.isInside(m.getA()) || e_.isInside(m.getB())) return false;
    ArrayRef<int64_t> space = shapeOf(m.getResult());
    for (Value v : outputs_)
      if (shapeOf(v) != space) return false;
    size_t rank = space.size();
    // A 2-d b shared by the batch of a: one GEMM over the rows of every matrix of a.
    bool sharedB = shapeOf(m.getB()).size() == 2 && rank > 2;
    ArrayRef<int64_t> lead = sharedB ? ArrayRef<int64_t>{} : space.drop_back(2);
    ArrayRef<int64_t> rowDims = sharedB ? space.drop_back(1) : space.drop_back(1).take_back(1);
    info_.shape = "gemm";
    std::string A = e_.inputName(m.getA()), B = e_.inputName(m.getB());
    bool ta = m.getTransposeA(), tb = m.getTransposeB();
    TiledGemm g;
    g.T = cType(m.getResult());
    g.M = sharedB ? extentExpr(rowDims) : dim(space[rank - 2]);
    g.N = dim(space[rank - 1]);
    g.K = KernelEmitter::contractionSize(m);
    g.count = extentExpr(lead);
    g.rows = extentOf(rowDims);
    g.cols = extentOf(space.take_back(1));
    g.matrices = extentOf(lead);
    g.aAlongK = !ta;  // A is (M, K), or (K, M) transposed
    g.bAlongK = tb;   // B is (K, N), or (N, K) transposed
    g.loadA = [&](const std::string& dst) {
      e_.line(dst + " = gm < M && gk < K ? " + A + "[bz * M * K + " + (ta ? "gk * M + gm" : "gm * K + gk") + "] : " + g.T + "(0);");
    };
    g.loadB = [&](const std::string& dst) {
      e_.line(dst + " = gn < N && gkb < K ? " + B + "[bz * K * N + " + (tb ? "gn * K + gkb" : "gkb * N + gn") + "] : " + g.T + "(0);");
    };
    g.resultIndex = [&] {
      Index idx;
      std::string rest = "bz";
      for (size_t d = lead.size(); d-- > 0;) {
        std::string name = "b" + std::to_string(d);
        e_.line("const long long " + name + " = " + (d == 0 ? rest : rest + " % " + dim(lead[d])) + ";");
        rest = "(" + rest + " / " + dim(lead[d]) + ")";
        idx.insert(idx.begin(), name);
      }
      if (sharedB) {
        std::vector<std::string> names;
        for (size_t d = 0; d < rowDims.size(); ++d) names.push_back("r" + std::to_string(d));
        idx = split("gm", rowDims, names);
      } else {
        idx.push_back("gm");
      }
      idx.push_back("gn");
      return idx;
    };
    g.linear = [](const Index&) { return std::string("(bz * M + gm) * N + gn"); };
    g.result = m.getResult();
    tiledGemm(g);
    return true;
  }

  // The convolution a contraction region (or a lone convolution op) is built around: the first
  // conv2d / conv2d_grad_input / conv2d_grad_filter whose result has every output's shape.
  Operation* convolution() {
    for (Operation* op : ops_) {
      if (!isa<Conv2DOp, Conv2DGradInputOp, Conv2DGradFilterOp>(op)) continue;
      ArrayRef<int64_t> space = shapeOf(op->getResult(0));
      if (llvm::all_of(outputs_, [&](Value v) { return shapeOf(v) == space; })) return op;
    }
    return nullptr;
  }

  // `names` declared as the index of `shape` at the C expression `linear` (row-major).
  Index split(const std::string& linear, ArrayRef<int64_t> shape, const std::vector<std::string>& names) {
    std::string stride = "1", decl;
    std::vector<std::string> parts(shape.size());
    for (size_t d = shape.size(); d-- > 0;) {
      std::string q = stride == "1" ? linear : linear + " / " + (stride.find(' ') == std::string::npos ? stride : "(" + stride + ")");
      parts[d] = d == 0 ? q : (q == linear ? q : "(" + q + ")") + " % " + dim(shape[d]);
      stride = stride == "1" ? dim(shape[d]) : stride + " * " + dim(shape[d]);
    }
    for (size_t d = 0; d < shape.size(); ++d) decl += (d ? ", " : "") + names[d] + " = " + parts[d];
    e_.line("const long long " + decl + ";");
    return Index(names.begin(), names.end());
  }

  // `dst` = `v` at `idx` where `cond` holds, else 0 (the value computed only where it holds).
  void loadIf(const std::string& dst, const std::string& cond, Value v, const std::function<Index()>& at) {
    std::string t = e_.fresh("t");
    e_.line(cType(v) + " " + t + " = 0;");
    e_.open("if (" + cond + ")");
    std::string value = e_.valueAt(v, at());
    e_.line(t + " = " + value + ";");
    e_.close();
    e_.line(dst + " = " + t + ";");
  }

  // `dst` = x[n, bz Cg + ci, oh s - p + kh d, ow s - p + kw d] (0 on the padding): the im2col
  // element at tap (ci, kh, kw), the linear `tap` of `taps`, and output position (n, oh, ow),
  // the linear `position` of `positions` (B of the forward and of the filter gradient).
  void im2col(const std::string& dst, Value x, ArrayRef<int64_t> s, ArrayRef<int64_t> p, ArrayRef<int64_t> d,
              const std::string& tap, ArrayRef<int64_t> taps, const std::string& position, ArrayRef<int64_t> positions) {
    ArrayRef<int64_t> in = shapeOf(x);
    auto str = [](int64_t v) { return std::to_string(v); };
    e_.line("bool inside = gn < N && gkb < K;");
    e_.line("long long n = 0, ci = 0, ih = 0, iw = 0;");
    e_.open("if (inside)");
    split(tap, taps, {"c_", "kh", "kw"});
    split(position, positions, {"n_", "oh", "ow"});
    e_.line("n = n_; ci = c_;");
    e_.line("ih = oh * " + str(s[0]) + " - " + str(p[0]) + " + kh * " + str(d[0]) + ";");
    e_.line("iw = ow * " + str(s[1]) + " - " + str(p[1]) + " + kw * " + str(d[1]) + ";");
    e_.line("inside = ih >= 0 && ih < " + dim(in[2]) + " && iw >= 0 && iw < " + dim(in[3]) + ";");
    e_.close();
    loadIf(dst, "inside", x, [&] { return Index{"n", "(bz * " + dim(taps[0]) + " + ci)", "ih", "iw"}; });
  }

  // A convolution as an implicit GEMM (tiledGemm), one GEMM per group (grid z), the im2col
  // indices computed while the tiles load (x, filter and gradients are never unfolded in
  // memory); the region's elementwise epilogue (bias, activation) at each accumulator. With
  // G groups, Cg = C/G input and Og = O/G output channels per group, group bz:
  //   conv2d:             y[n, bz Og + m, oh, ow] = sum_k  w[bz Og + m, k] col(x)[k, (n, oh, ow)],
  //                       k = (ci, kh, kw) < Cg KH KW, col(x) = x[n, bz Cg + ci, oh s - p + kh d, ...]
  //   conv2d_grad_input:  dx[n, bz Cg + m, ih, iw] = sum_k w[bz Og + o, m, kh, kw] gy[n, bz Og + o, oh, ow],
  //                       k = (o, kh, kw) < Og KH KW, oh = (ih + p - kh d) / s where that divides
  //   conv2d_grad_filter: dw[bz Og + m, (ci, kh, kw)] = sum_k gy[n, bz Og + m, oh, ow] col(x)[(n, oh, ow), (ci, kh, kw)],
  //                       k = (n, oh, ow) < N OH OW, the whole reduction in one block per tile (deterministic)
  // Operands computed inside the region (a pad before the convolution) are computed at the loaded index.
  bool implicitGemm() {
    Operation* op = convolution();
    if (!op) return false;
    Value result = op->getResult(0);
    ArrayRef<int64_t> space = shapeOf(result);
    info_.shape = "implicit-gemm";
    TiledGemm g;
    g.T = cType(result);
    g.result = result;
    g.linear = [&](const Index& idx) { return linearize(idx, space); };
    auto str = [](int64_t v) { return std::to_string(v); };
    // C (rows x cols) per group, K deep.
    auto sizes = [&](int64_t rows, ArrayRef<int64_t> cols, ArrayRef<int64_t> k, int64_t groups) {
      g.M = dim(rows);
      g.N = extentExpr(cols);
      g.K = extentExpr(k);
      g.count = str(groups);
      g.rows = extentOf({rows});
      g.cols = extentOf(cols);
      g.matrices = extentOf({groups});
    };
    if (auto c = dyn_cast<Conv2DOp>(op)) {
      ArrayRef<int64_t> w = shapeOf(c.getW());
      int64_t groups = c.getGroups(), og = w[0] / groups;
      SmallVector<int64_t> cols = {space[0], space[2], space[3]}, taps = {w[1], w[2], w[3]};
      sizes(og, cols, taps, groups);
      g.aAlongK = true;   // w[o] is contiguous over (ci, kh, kw)
      g.bAlongK = false;  // x is contiguous over ow
      g.loadA = [&](const std::string& dst) {
        loadIf(dst, "gm < M && gk < K", c.getW(), [&] {
          Index k = split("gk", taps, {"ci", "kh", "kw"});
          return Index{"(bz * " + str(og) + " + gm)", k[0], k[1], k[2]};
        });
      };
      g.loadB = [&](const std::string& dst) { im2col(dst, c.getX(), c.getStride(), c.getPad(), c.getDilate(), "gkb", taps, "gn", cols); };
      g.resultIndex = [&] {
        Index at = split("gn", cols, {"n", "oh", "ow"});
        e_.line("const long long o = bz * " + str(og) + " + gm;");
        return Index{at[0], "o", at[1], at[2]};
      };
      tiledGemm(g);
    } else if (auto c = dyn_cast<Conv2DGradInputOp>(op)) {
      ArrayRef<int64_t> gy = shapeOf(c.getGy()), w = shapeOf(c.getW());
      auto s = c.getStride(), p = c.getPad(), d = c.getDilate();
      int64_t groups = c.getGroups(), og = w[0] / groups;
      SmallVector<int64_t> cols = {space[0], space[2], space[3]}, taps = {og, w[2], w[3]};
      sizes(w[1], cols, taps, groups);
      g.aAlongK = true;   // w[o, ci] is contiguous over (kh, kw)
      g.bAlongK = false;  // gy is contiguous over ow
      g.loadA = [&](const std::string& dst) {
        loadIf(dst, "gm < M && gk < K", c.getW(), [&] {
          Index k = split("gk", taps, {"o", "kh", "kw"});
          return Index{"(bz * " + str(og) + " + " + k[0] + ")", "gm", k[1], k[2]};
        });
      };
      g.loadB = [&](const std::string& dst) {
        // The tap (kh, kw) reaches input position (ih, iw) from output position
        // ((ih + p - kh d) / s, ...) where s divides it.
        e_.line("bool inside = gn < N && gkb < K;");
        e_.line("long long n = 0, o = 0, oh = 0, ow = 0;");
        e_.open("if (inside)");
        split("gkb", taps, {"o_", "kh", "kw"});
        split("gn", cols, {"n_", "ih", "iw"});
        e_.line("const long long th = ih + " + str(p[0]) + " - kh * " + str(d[0]) + ", tw = iw + " + str(p[1]) + " - kw * " +
                str(d[1]) + ";");
        e_.line("n = n_; o = o_; oh = th / " + str(s[0]) + "; ow = tw / " + str(s[1]) + ";");
        e_.line("inside = th >= 0 && tw >= 0 && th % " + str(s[0]) + " == 0 && tw % " + str(s[1]) + " == 0 && oh < " +
                dim(gy[2]) + " && ow < " + dim(gy[3]) + ";");
        e_.close();
        loadIf(dst, "inside", c.getGy(), [&] { return Index{"n", "(bz * " + str(og) + " + o)", "oh", "ow"}; });
      };
      g.resultIndex = [&] {
        Index at = split("gn", cols, {"n", "ih", "iw"});
        e_.line("const long long ch = bz * " + dim(w[1]) + " + gm;");
        return Index{at[0], "ch", at[1], at[2]};
      };
      tiledGemm(g);
    } else if (auto c = dyn_cast<Conv2DGradFilterOp>(op)) {
      ArrayRef<int64_t> gy = shapeOf(c.getGy());
      int64_t groups = c.getGroups(), og = space[0] / groups;
      SmallVector<int64_t> reduced = {gy[0], gy[2], gy[3]}, taps = {space[1], space[2], space[3]};
      sizes(og, taps, reduced, groups);
      g.aAlongK = true;  // gy is contiguous over ow
      g.bAlongK = true;  // x is contiguous over ow (through iw)
      g.loadA = [&](const std::string& dst) {
        loadIf(dst, "gm < M && gk < K", c.getGy(), [&] {
          Index k = split("gk", reduced, {"n", "oh", "ow"});
          return Index{k[0], "(bz * " + str(og) + " + gm)", k[1], k[2]};
        });
      };
      g.loadB = [&](const std::string& dst) { im2col(dst, c.getX(), c.getStride(), c.getPad(), c.getDilate(), "gn", taps, "gkb", reduced); };
      g.resultIndex = [&] {
        Index at = split("gn", taps, {"ci", "kh", "kw"});
        e_.line("const long long o = bz * " + str(og) + " + gm;");
        return Index{"o", at[0], at[1], at[2]};
      };
      tiledGemm(g);
    }
    return true;
  }

  llvm::SetVector<Operation*> ops_;
  std::vector<Value> outputs_;
  std::string& globals_;
  KernelEmitter e_;
  std::vector<std::pair<Value, CheckRangeOp>> checks_, absorbedChecks_;
  llvm::SetVector<Operation*> grid_;
  KernelInfo info_;
  std::string kind_;
  Value fillBase_;  // scatter(): the base the fill kernel copies into the output, or null
};

// The prelude of every program: types for NVRTC, the scalar helpers, block reductions.
std::string prelude() {
  return R"(// Generated by kiln (codegen/cuda): one kernel per kiln.fusion region.
#ifndef KILN_CUDA_EMULATE
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
#endif
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
// The state of a grid epilogue (row kernels' last block combines the blocks' partials):
// module globals on a GPU; per host thread under the emulator, which runs a launch's blocks
// one after another on the launching thread.
#ifdef KILN_CUDA_EMULATE
#define KILN_GRID_STATE static thread_local
#else
#define KILN_GRID_STATE __device__
#endif
)" + scalar::renderCPrelude() +
         R"(// Philox-4x32-10 (Random123's philox4x32, ten rounds), as kiln/philox.h: the first word
// for key (seed) and counter (counter, 0, 0); uniform in [0, 1) with 24 random bits.
__device__ __forceinline__ double kiln_philox_uniform(unsigned long long seed, unsigned long long counter) {
  unsigned int c0 = static_cast<unsigned int>(counter), c1 = static_cast<unsigned int>(counter >> 32), c2 = 0, c3 = 0;
  unsigned int k0 = static_cast<unsigned int>(seed), k1 = static_cast<unsigned int>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    unsigned long long p0 = 0xD2511F53ull * c0, p1 = 0xCD9E8D57ull * c2;
    unsigned int n0 = static_cast<unsigned int>(p1 >> 32) ^ c1 ^ k0, n1 = static_cast<unsigned int>(p1);
    unsigned int n2 = static_cast<unsigned int>(p0 >> 32) ^ c3 ^ k1, n3 = static_cast<unsigned int>(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return static_cast<double>(c0 >> 8) * (1.0 / 16777216.0);
}
// max with NaN propagated (the first NaN wins), as the interpreter's reduce_max.
template <typename T> __device__ __forceinline__ T kiln_max_nan(T a, T b) {
  return a != a ? a : (b != b || b > a) ? b : a;
}
template <typename T> __device__ __forceinline__ T kiln_warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}
template <typename T> __device__ __forceinline__ T kiln_warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = kiln_max_nan(v, __shfl_down_sync(0xffffffffu, v, offset));
  return v;
}
// Block-wide reductions (blockDim.x a multiple of 32): every thread gets the result.
template <typename T> __device__ T kiln_block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = kiln_warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : T(0);
    v = kiln_warp_sum(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();
  return v;
}
template <typename T> __device__ T kiln_block_max(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = kiln_warp_max(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : scratch[0];
    v = kiln_warp_max(v);
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  v = scratch[0];
  __syncthreads();
  return v;
}
)";
}

// The reductions of a region over one input shape and axes: what one row-reduction kernel
// computes. "" for an op that is no reduction.
std::string reductionFamily(Operation* op) {
  if (!isa<ReduceSumOp, ReduceMaxOp>(op)) return "";
  ArrayRef<int64_t> axes = isa<ReduceSumOp>(op) ? cast<ReduceSumOp>(op).getAxes() : cast<ReduceMaxOp>(op).getAxes();
  std::string key;
  llvm::raw_string_ostream os(key);
  os << tensorOf(op->getOperand(0)) << " [";
  llvm::interleaveComma(axes, os);
  os << "]";
  return key;
}

// A reduction region's outputs as the kernels computing them: outputs that need
// reductions of one family go together (one row-reduction kernel each family), outputs
// that need none go into one elementwise kernel. One part (the whole region, one kernel)
// when some output needs reductions of two families, or when there is nothing to split:
// the region then runs as one kernel whichever shape fits.
std::vector<std::vector<Value>> reductionParts(const llvm::SetVector<Operation*>& ops, const std::vector<Value>& outputs) {
  std::vector<std::pair<std::string, std::vector<Value>>> groups;
  for (Value out : outputs) {
    std::set<std::string> families;
    for (Operation* op : producers({out}, ops))
      if (std::string f = reductionFamily(op); !f.empty()) families.insert(f);
    if (families.size() > 1) return {outputs};
    std::string key = families.empty() ? "" : *families.begin();
    auto it = llvm::find_if(groups, [&](auto& g) { return g.first == key; });
    if (it == groups.end()) groups.push_back({key, {out}});
    else it->second.push_back(out);
  }
  std::vector<std::vector<Value>> parts;
  for (auto& g : groups) parts.push_back(std::move(g.second));
  return parts;
}

// "<link path>/" of the first op carrying one (kiln.scope: the Link whose parameters it
// reads), or "": kernels are named after their Links, as on the CPU backend.
std::string scopeOf(const llvm::SetVector<Operation*>& ops) {
  for (Operation* op : ops)
    if (auto s = op->getAttrOfType<StringAttr>(kiln::passes::kScopeAttr)) return s.getValue().str() + "/";
  return "";
}

int countLines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// A matmul and the epilogue a library GEMM takes (LibraryGemm's rule, kiln/codegen/cuda.h):
// matmul [-> add of broadcast_to(bias)] [-> relu], ending at `result`.
struct GemmChain {
  MatmulOp matmul;
  Value result;  // the chain's last value: the step's C
  Value bias;    // read from outside the ops, or null
  bool relu = false;
  llvm::SetVector<Operation*> links;  // the matmul, the bias's broadcast_to and add, the relu
};

std::optional<GemmChain> libraryGemmOf(const llvm::SetVector<Operation*>& ops, const std::vector<Value>& outputs) {
  GemmChain chain;
  for (Operation* op : ops)
    if (auto m = dyn_cast<MatmulOp>(op)) {
      if (chain.matmul) return std::nullopt;  // one matmul per step
      chain.matmul = m;
    }
  if (!chain.matmul) return std::nullopt;
  MatmulOp m = chain.matmul;
  auto inside = [&](Value v) { return v.getDefiningOp() && ops.contains(v.getDefiningOp()); };
  // f32 matrices, or a batch whose rows are one matrix: a 2-d b shared by the batch of a, or sum_batch.
  bool sharedB = shapeOf(m.getB()).size() == 2 && shapeOf(m.getA()).size() > 2;
  auto f32 = [](Value v, bool matrix) {
    return (!matrix || shapeOf(v).size() == 2) && tensorOf(v).getElementType().isF32();
  };
  bool rows = sharedB || m.getSumBatch();
  if (inside(m.getA()) || inside(m.getB()) || !f32(m.getA(), !rows) || !f32(m.getB(), !m.getSumBatch()) ||
      !f32(m.getResult(), !sharedB))
    return std::nullopt;
  chain.links.insert(m);
  Value cur = m.getResult();
  // The op of `ops` that is the only use of `v`, when `v` is no output of its own.
  auto next = [&](Value v) -> Operation* {
    if (!v.hasOneUse() || llvm::is_contained(outputs, v)) return nullptr;
    Operation* user = *v.getUsers().begin();
    return ops.contains(user) ? user : nullptr;
  };
  const int64_t n = shapeOf(cur).back();
  if (auto add = dyn_cast_or_null<AddOp>(next(cur)); add && add.getLhs() != add.getRhs()) {
    Value other = add.getLhs() == cur ? add.getRhs() : add.getLhs();
    auto bc = other.getDefiningOp<BroadcastToOp>();
    if (bc && ops.contains(bc) && bc.getResult().hasOneUse() && !inside(bc.getX()) &&
        tensorOf(bc.getX()).getElementType().isF32() && shapeOf(add.getResult()) == shapeOf(cur)) {
      ArrayRef<int64_t> b = shapeOf(bc.getX());
      if ((b.size() == 1 && b[0] == n) || (b.size() == 2 && b[0] == 1 && b[1] == n)) {
        chain.bias = bc.getX();
        chain.links.insert(bc);
        chain.links.insert(add);
        cur = add.getResult();
      }
    }
  }
  if (auto relu = dyn_cast_or_null<ReluOp>(next(cur))) {
    chain.relu = true;
    chain.links.insert(relu);
    cur = relu.getResult();
  }
  chain.result = cur;
  return chain;
}

// "12", "batch", "4 * batch * batch".
std::string extentText(const Extent& e) {
  std::string s = e.batch_power == 0 ? std::to_string(e.factor) : e.factor == 1 ? "batch" : std::to_string(e.factor) + " * batch";
  for (int i = 1; i < e.batch_power; ++i) s += " * batch";
  return s;
}

// The comment that stands for a library step in the source (lit tests read it).
std::string librarySource(const KernelInfo& k) {
  const LibraryGemm& g = k.gemm;
  const auto extent = extentText;
  std::string product = std::string("buf") + std::to_string(g.a) + (g.transpose_a ? "^T" : "") + " x buf" + std::to_string(g.b) +
                        (g.transpose_b ? "^T" : "");
  if (g.bias >= 0) product += " + buf" + std::to_string(g.bias) + "[col]";
  if (g.relu) product = "relu(" + product + ")";
  return "// library gemm " + k.label + " (cuBLASLt on a GPU, cblas under the emulator; no kernel):\n//   buf" +
         std::to_string(g.c) + " = " + product + ", m = " + extent(g.m) + ", n = " + extent(g.n) + ", k = " + extent(g.k) +
         ", epilogue " + (g.bias >= 0 ? (g.relu ? "RELU_BIAS" : "BIAS") : (g.relu ? "RELU" : "DEFAULT")) + "\n";
}

// `label` with `suffix` after its ops: "3:contraction:matmul (f.cpp:2)" -> "3:contraction:matmul+epilogue (f.cpp:2)".
std::string withSuffix(const std::string& label, const std::string& suffix) {
  size_t site = label.find(" (");
  return label.substr(0, site) + suffix + (site == std::string::npos ? "" : label.substr(site));
}

// A row kernel's region and, merged after it, a batch reduction of its per-row values
// (softmax_cross_entropy's mean over the batch): the next reduction region that reads the
// row region's results and otherwise only values computed before it. Null when none.
FusionOp batchReductionAfter(FusionOp rows) {
  for (Operation* next = rows->getNextNode(); next; next = next->getNextNode()) {
    auto batch = dyn_cast<FusionOp>(next);
    if (!batch || batch.getKind() != FusionOp::kReduction) continue;
    bool readsRows = false, ready = true;
    for (Value in : batch.getInputs()) {
      Operation* def = in.getDefiningOp();
      readsRows |= def == rows.getOperation();
      ready &= !def || def == rows.getOperation() || (def->getBlock() == rows->getBlock() && def->isBeforeInBlock(rows));
    }
    if (!readsRows) continue;
    bool yieldsArgument = llvm::any_of(batch.getYield().getValues(), [](Value v) { return isa<BlockArgument>(v); });
    return ready && !yieldsArgument ? batch : FusionOp();
  }
  return FusionOp();
}

// The ops of a row region and of its batch reduction cloned into one detached kiln.fusion
// (erased with this object): the batch reduction's arguments that the row region yields
// become the yielded values, the others arguments of their own.
class MergedRegion {
 public:
  MergedRegion(FusionOp rows, FusionOp batch) {
    OpBuilder b(rows.getContext());
    fusion_ = FusionOp::create(b, rows.getLoc(), TypeRange{}, ValueRange{}, rows.getKindAttr());
    Block* body = b.createBlock(&fusion_.getRegion());
    IRMapping map;
    auto argumentFor = [&](Value in, BlockArgument arg) {
      for (auto& [v, o] : outer_)
        if (o == in) return map.map(arg, v);
      Value v = body->addArgument(arg.getType(), arg.getLoc());
      outer_.push_back({v, in});
      map.map(arg, v);
    };
    for (auto [arg, in] : llvm::zip(rows.getBody()->getArguments(), rows.getInputs())) argumentFor(in, arg);
    for (Operation& o : rows.getBody()->without_terminator()) ops_.insert(b.clone(o, map));
    ValueRange yielded = rows.getYield().getValues();
    for (auto [arg, in] : llvm::zip(batch.getBody()->getArguments(), batch.getInputs())) {
      if (auto r = dyn_cast<OpResult>(in); r && r.getOwner() == rows.getOperation()) map.map(arg, map.lookup(yielded[r.getResultNumber()]));
      else argumentFor(in, arg);
    }
    for (Operation& o : batch.getBody()->without_terminator()) {
      ops_.insert(b.clone(o, map));
      grid_.insert(ops_.back());
    }
    // The row results that ops other than the batch reduction read, then its results.
    for (auto [res, y] : llvm::zip(rows.getResults(), yielded))
      if (llvm::any_of(res.getUsers(), [&](Operation* u) { return u != batch.getOperation(); })) results_.push_back({res, map.lookup(y)});
    for (auto [res, y] : llvm::zip(batch.getResults(), batch.getYield().getValues())) results_.push_back({res, map.lookup(y)});
    for (auto& [res, y] : results_)
      if (!llvm::is_contained(outputs_, y)) outputs_.push_back(y);
  }
  ~MergedRegion() { fusion_->erase(); }
  MergedRegion(const MergedRegion&) = delete;
  MergedRegion& operator=(const MergedRegion&) = delete;

  const llvm::SetVector<Operation*>& ops() const { return ops_; }
  const llvm::SetVector<Operation*>& grid() const { return grid_; }
  const std::vector<Value>& outputs() const { return outputs_; }
  // (outer result, merged value) and (merged argument, outer value) pairs.
  const std::vector<std::pair<Value, Value>>& results() const { return results_; }
  const std::vector<std::pair<Value, Value>>& arguments() const { return outer_; }

 private:
  FusionOp fusion_;
  llvm::SetVector<Operation*> ops_, grid_;
  std::vector<Value> outputs_;
  std::vector<std::pair<Value, Value>> results_, outer_;
};

// " (file:line)" of an op's location, or "".
std::string siteOf(Operation* op) {
  auto file = dyn_cast<FileLineColLoc>(op->getLoc());
  return file ? " (" + file.getFilename().getValue().rsplit('/').second.str() + ":" + std::to_string(file.getLine()) + ")" : "";
}

// The names of a region's ops, "+"-separated, each once, layout ops and constants left out.
std::string opNames(const llvm::SetVector<Operation*>& ops) {
  std::string names;
  std::set<std::string> seen;
  for (Operation* o : ops) {
    if (isLayoutOrConstant(o)) continue;
    std::string n = o->getName().stripDialect().str();
    if (seen.insert(n).second) names += (names.empty() ? "" : "+") + n;
  }
  return names;
}

// Whether the fusion regions reading `iota` can compute it from their index instead: no
// contraction (whose operand loads read buffers) and no region yielding it unchanged.
bool iotaComputedByItsReaders(IotaOp iota) {
  return llvm::all_of(iota->getUsers(), [&](Operation* user) {
    auto f = dyn_cast<FusionOp>(user);
    if (!f || f.getKind() == FusionOp::kContraction) return false;
    return llvm::none_of(f.getYield().getValues(), [&](Value y) {
      auto arg = dyn_cast<BlockArgument>(y);
      return arg && f.getInputs()[arg.getArgNumber()] == iota.getResult();
    });
  });
}

}  // namespace

bool usesLibraryGemm(const Program& program) {
  return llvm::any_of(program.kernels, [](const KernelInfo& k) { return k.launch == LaunchKind::Library; });
}

Program emitProgram(func::FuncOp func, const EmitOptions& options) {
  Program program;
  std::string globals, kernels;
  int constants = 0;
  llvm::DenseMap<Value, int> bufferOf;
  for (auto [i, arg] : llvm::enumerate(func.getArguments())) {
    BufferInfo b;
    for (int64_t d : shapeOf(arg)) b.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    b.dtype = dtypeOf(arg, func);
    b.argument = static_cast<int>(i);
    bufferOf[arg] = static_cast<int>(program.buffers.size());
    program.buffers.push_back(b);
  }
  program.num_arguments = static_cast<int>(func.getNumArguments());
  auto newBuffer = [&](Value v, Operation* op) {
    BufferInfo b;
    for (int64_t d : shapeOf(v)) b.shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    b.dtype = dtypeOf(v, op);
    bufferOf[v] = static_cast<int>(program.buffers.size());
    program.buffers.push_back(b);
  };
  std::vector<std::pair<KernelInfo, std::string>> built;
  int index = 0;
  // Checks whose result aliases their ids (no copy) and whose status no kernel computed yet
  // (a row kernel reading the ids computes it, else a kernel of its own before its first reader),
  // with their labels; batch reductions merged into the row kernel before them.
  std::vector<std::pair<CheckRangeOp, std::string>> pendingChecks;
  llvm::DenseSet<Operation*> merged;
  // The status buffers of the checks a kernel computed (its last outputs).
  auto addStatusOutputs = [&](KernelInfo& info, const std::vector<std::pair<Value, CheckRangeOp>>& checks) {
    for (auto [ids, check] : checks) {
      newBuffer(check.getStatus(), check);
      info.outputs.push_back(bufferOf[check.getStatus()]);
      llvm::erase_if(pendingChecks, [&](auto& p) { return p.first == check; });
    }
  };
  // What a fusion region computes itself: the iotas and the pending checks it reads.
  auto absorbedBy = [&](Operation& op, const llvm::DenseMap<Value, Value>& outer, bool checks) {
    Absorbed a;
    for (auto& [arg, in] : outer) {
      if (auto iota = in.getDefiningOp<IotaOp>(); iota && !bufferOf.count(in)) a.iotas.push_back({arg, iota});
      for (auto& [check, label] : pendingChecks)
        if (checks && in == check.getResult()) a.checks.push_back({arg, check});
    }
    // (In argument order: the map's order is not the IR's.)
    auto position = [](Value v) { return cast<BlockArgument>(v).getArgNumber(); };
    llvm::sort(a.iotas, [&](auto& x, auto& y) { return position(x.first) < position(y.first); });
    llvm::sort(a.checks, [&](auto& x, auto& y) { return position(x.first) < position(y.first); });
    return a;
  };
  for (Operation& op : func.getBody().front()) {
    for (size_t c = 0; c < pendingChecks.size();) {
      auto [check, checkLabel] = pendingChecks[c];
      if (!llvm::is_contained(op.getOperands(), check.getStatus())) {
        ++c;
        continue;
      }
      llvm::SetVector<Operation*> checkOps;
      checkOps.insert(check);
      KernelBuilder builder(globals, constants, checkOps, std::vector<Value>{check.getStatus()}, checkLabel, "op");
      std::string source = builder.build();
      KernelInfo& info = builder.info();
      for (Value in : builder.inputs()) info.inputs.push_back(bufferOf.lookup(in));
      addStatusOutputs(info, {{check.getResult(), check}});
      built.push_back({info, source});
    }
    if (merged.contains(&op)) continue;
    // An iota its readers compute from their index, a check whose result is its ids.
    if (auto iota = dyn_cast<IotaOp>(op); iota && iotaComputedByItsReaders(iota)) continue;
    if (auto check = dyn_cast<CheckRangeOp>(op);
        check && bufferOf.count(check.getX()) &&
        llvm::none_of(check.getResult().getUsers(), [](Operation* u) { return isa<func::ReturnOp>(u); })) {
      bufferOf[check.getResult()] = bufferOf[check.getX()];
      pendingChecks.push_back({check, std::to_string(index++) + ":op:check_range" + siteOf(check)});
      continue;
    }
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      for (Value v : ret.getOperands()) {
        auto it = bufferOf.find(v);
        if (it == bufferOf.end()) notImplemented(&op, "of a value no kernel computes");
        program.results.push_back(it->second);
      }
      continue;
    }
    if (op.getNumResults() == 0) notImplemented(&op, "without results");
    llvm::SetVector<Operation*> ops;
    std::vector<Value> outputs;
    std::string kind = "op";
    // Region values -> outer values (a region's block arguments are its inputs).
    llvm::DenseMap<Value, Value> outer;
    std::vector<std::pair<Value, Value>> results;  // (outer result, kernel value)
    std::string label;
    if (auto fusion = dyn_cast<FusionOp>(op)) {
      kind = fusion.getKind().str();
      for (Operation& inner : fusion.getBody()->without_terminator()) ops.insert(&inner);
      for (auto [arg, in] : llvm::zip(fusion.getBody()->getArguments(), fusion.getInputs())) outer[arg] = in;
      label = std::to_string(index) + ":" + scopeOf(ops) + kind + ":" + opNames(ops);
      for (auto [res, y] : llvm::zip(fusion.getResults(), fusion.getYield().getValues()))
        results.push_back({res, y});
    } else {
      ops.insert(&op);
      label = std::to_string(index) + ":" + scopeOf(ops) + "op:" + op.getName().stripDialect().str();
      for (Value r : op.getResults()) results.push_back({r, r});
    }
    if (auto file = dyn_cast<FileLineColLoc>(op.getLoc()))
      label += " (" + file.getFilename().getValue().rsplit('/').second.str() + ":" + std::to_string(file.getLine()) + ")";
    // A collective start: its result is its bucket's buffer, which the runtime hands to the
    // communicator at this point of the plan (no kernel). None for an argument's buffer (the
    // caller's array, of which the run returns a copy: the caller starts that bucket after).
    if (auto start = dyn_cast<CollectiveStartOp>(op)) {
      auto it = bufferOf.find(start.getX());
      if (it == bufferOf.end()) notImplemented(&op, "of a value no kernel computes");
      const int buffer = it->second;
      bufferOf[start.getResult()] = buffer;
      if (program.buffers[buffer].argument < 0) {
        KernelInfo step;
        step.label = label;
        step.name = identifier(label);
        step.shape = "collective";
        step.launch = LaunchKind::Collective;
        step.work = extentOf(shapeOf(start.getX()));
        step.bucket = static_cast<int64_t>(start.getBucket());
        step.inputs = {buffer};
        built.push_back({step, "// collective start " + label + " (no kernel): buf" + std::to_string(buffer) + " (" +
                                   extentText(step.work) + " elements) to the communicator as bucket " +
                                   std::to_string(step.bucket) + "\n"});
      }
      ++index;
      continue;
    }
    // Yielded block arguments alias their input; a value yielded twice is one output.
    for (auto& [res, y] : results) {
      if (auto arg = dyn_cast<BlockArgument>(y); arg && outer.count(y)) {
        bufferOf[res] = bufferOf.lookup(outer[y]);
        continue;
      }
      if (!llvm::is_contained(outputs, y)) outputs.push_back(y);
    }
    if (outputs.empty()) continue;
    // The buffer of region value `y`: that of the outer result(s) yielding it, made on first use.
    auto outputBuffer = [&](Value y) {
      int buffer = -1;
      for (auto& [res, yy] : results)
        if (yy == y) {
          if (buffer < 0) {
            newBuffer(res, &op);
            buffer = bufferOf[res];
          }
          bufferOf[res] = buffer;
        }
      return buffer;
    };
    auto bufferRead = [&](Value in) {
      Value v = outer.count(in) ? outer[in] : in;
      auto it = bufferOf.find(v);
      if (it == bufferOf.end()) notImplemented(&op, "reading a value computed by no kernel");
      return it->second;
    };
    // One generated kernel of `kops` computing `part`.
    auto emitKernel = [&](const llvm::SetVector<Operation*>& kops, const std::vector<Value>& part, const std::string& klabel,
                          const std::string& kkind, const Absorbed& absorbed = Absorbed()) {
      KernelBuilder builder(globals, constants, kops, part, klabel, kkind, absorbed);
      std::string source = builder.build();
      KernelInfo& info = builder.info();
      for (Value in : builder.inputs()) info.inputs.push_back(bufferRead(in));
      for (Value y : part) info.outputs.push_back(outputBuffer(y));
      addStatusOutputs(info, builder.absorbedChecks());
      if (builder.accumulates()) {
        auto fill = builder.fill();
        if (Value base = builder.fillBase()) fill.first.inputs.push_back(bufferRead(base));
        // A base already in the output's buffer (updated in place) needs no copy.
        if (fill.first.inputs.empty() || fill.first.inputs[0] != fill.first.outputs[0]) built.push_back(fill);
      }
      built.push_back({info, source});
    };
    std::optional<GemmChain> chain;
    if (options.library_gemms && (kind == FusionOp::kContraction || kind == "op")) chain = libraryGemmOf(ops, outputs);
    if (chain) {
      MatmulOp m = chain->matmul;
      KernelInfo step;
      step.label = label;
      step.name = identifier(label);
      step.shape = "library-gemm";
      step.launch = LaunchKind::Library;
      LibraryGemm& g = step.gemm;
      g.transpose_a = m.getTransposeA();
      g.transpose_b = m.getTransposeB();
      ArrayRef<int64_t> c = shapeOf(m.getResult()), a = shapeOf(m.getA());
      g.m = extentOf(c.drop_back(1));  // a shared b: the rows of every matrix of a
      g.n = extentOf(c.take_back(1));
      g.k = extentOf(m.getSumBatch() ? a.drop_back(1) : g.transpose_a ? a.take_front(1) : a.take_back(1));
      g.relu = chain->relu;
      g.a = bufferRead(m.getA());
      g.b = bufferRead(m.getB());
      step.inputs = {g.a, g.b};
      if (chain->bias) step.inputs.push_back(g.bias = bufferRead(chain->bias));
      // C is the region output it is, else a buffer of its own that the rest of the region reads.
      if (llvm::is_contained(outputs, chain->result)) {
        g.c = outputBuffer(chain->result);
      } else {
        newBuffer(chain->result, &op);
        g.c = bufferOf[chain->result];
      }
      bufferOf[chain->result] = g.c;
      step.outputs = {g.c};
      std::string source = librarySource(step);
      built.push_back({step, source});
      std::vector<Value> rest;
      for (Value y : outputs)
        if (y != chain->result) rest.push_back(y);
      if (!rest.empty()) {
        llvm::SetVector<Operation*> others;
        for (Operation* o : ops)
          if (!chain->links.contains(o)) others.insert(o);
        llvm::SetVector<Operation*> needed = producers(rest, others), restOps;
        bool reduces = false;
        for (Operation* o : others)
          if (needed.contains(o)) {
            restOps.insert(o);
            reduces |= isa<ReduceSumOp, ReduceMaxOp>(o);
          }
        std::string restKind = reduces ? FusionOp::kReduction.str() : FusionOp::kElementwise.str();
        emitKernel(restOps, rest, withSuffix(label, "+epilogue"), restKind);
      }
      ++index;
      continue;
    }
    // A row region and the batch reduction after it as one row kernel, its grid epilogue
    // reducing over the rows (a trial build; its globals are kept where it fits).
    FusionOp batch = kind == FusionOp::kReduction ? batchReductionAfter(cast<FusionOp>(op)) : FusionOp();
    if (batch) {
      MergedRegion region(cast<FusionOp>(op), batch);
      llvm::DenseMap<Value, Value> regionOuter;
      for (auto& [arg, in] : region.arguments()) regionOuter[arg] = in;
      Absorbed absorbed = absorbedBy(op, regionOuter, true);
      absorbed.grid = region.grid();
      std::string savedGlobals = globals;
      int savedConstants = constants;
      KernelBuilder builder(globals, constants, region.ops(), region.outputs(),
                            withSuffix(label, "+" + opNames(region.grid())), kind, absorbed);
      std::string source = builder.build();
      if (builder.info().shape == "row-reduction") {
        KernelInfo& info = builder.info();
        for (Value in : builder.inputs()) info.inputs.push_back(bufferOf.lookup(regionOuter.lookup(in)));
        for (Value y : region.outputs()) {
          int buffer = -1;
          for (auto& [res, yy] : region.results())
            if (yy == y) {
              if (buffer < 0) {
                newBuffer(res, res.getDefiningOp());
                buffer = bufferOf[res];
              }
              bufferOf[res] = buffer;
            }
          info.outputs.push_back(buffer);
        }
        addStatusOutputs(info, builder.absorbedChecks());
        built.push_back({info, source});
        merged.insert(batch);
        ++index;
        continue;
      }
      globals = std::move(savedGlobals);
      constants = savedConstants;
    }
    std::vector<std::vector<Value>> parts = {outputs};
    if (kind == FusionOp::kReduction) {
      // Split only a region that is no row reduction as a whole (a trial build; its
      // constants are not kept).
      std::string savedGlobals = globals;
      int savedConstants = constants;
      KernelBuilder whole(globals, constants, ops, outputs, label, kind, absorbedBy(op, outer, false));
      whole.build();
      globals = std::move(savedGlobals);
      constants = savedConstants;
      if (whole.info().shape != "row-reduction") parts = reductionParts(ops, outputs);
    }
    for (auto [p, part] : llvm::enumerate(parts)) {
      // Parts of one region: "<index>.<part>:..." (distinct kernel names).
      std::string partLabel = label;
      if (parts.size() > 1) {
        size_t colon = label.find(':');
        partLabel = label.substr(0, colon) + "." + std::to_string(p) + label.substr(colon);
      }
      emitKernel(ops, part, partLabel, kind, absorbedBy(op, outer, parts.size() == 1 && kind == FusionOp::kReduction));
    }
    ++index;
  }
  // The communicator writes a bucket while the later kernels run: a collective step whose
  // buffer a later step reads, or another collective step hands over too, is dropped (the
  // caller starts that bucket after the run).
  auto shared = [&](size_t i) {
    const int buffer = built[i].first.inputs[0];
    for (size_t j = 0; j < built.size(); ++j) {
      const KernelInfo& k = built[j].first;
      if (j != i && llvm::is_contained(k.inputs, buffer) && (j > i || k.launch == LaunchKind::Collective)) return true;
    }
    return false;
  };
  std::vector<bool> dropped(built.size(), false);
  for (size_t i = 0; i < built.size(); ++i) dropped[i] = built[i].first.launch == LaunchKind::Collective && shared(i);
  for (size_t i = built.size(); i-- > 0;)
    if (dropped[i]) built.erase(built.begin() + static_cast<std::ptrdiff_t>(i));
  program.source = prelude() + globals;
  int line = countLines(program.source) + 1;
  for (auto& [info, source] : built) {
    program.source += "\n";
    ++line;
    info.first_line = line;
    line += countLines(source);
    info.last_line = line - 1;
    program.source += source;
    program.kernels.push_back(info);
  }
  // Host entry points for the SIMT emulator (compiled only there).
  program.source += "\n#ifdef KILN_CUDA_EMULATE\n";
  for (const KernelInfo& k : program.kernels) {
    if (k.launch == LaunchKind::Library || k.launch == LaunchKind::Collective) continue;  // no kernel
    program.source += "extern \"C\" void " + k.name + "__emulate(void** args, const unsigned* grid, const unsigned* block) {\n";
    program.source += "  kiln_emu::run(grid, block, [&] { " + k.name + "(";
    size_t p = 0;
    for (int b : k.inputs)
      program.source += "*static_cast<const " + cTypeOf(program.buffers[b].dtype) + "* const*>(args[" + std::to_string(p++) + "]), ";
    for (int b : k.outputs)
      program.source += "*static_cast<" + cTypeOf(program.buffers[b].dtype) + "* const*>(args[" + std::to_string(p++) + "]), ";
    program.source += "*static_cast<const long long*>(args[" + std::to_string(p) + "])); });\n}\n";
  }
  program.source += "#endif\n";
  return program;
}

std::string kernelAtLine(const Program& program, int line) {
  for (const KernelInfo& k : program.kernels)
    if (line >= k.first_line && line <= k.last_line) return k.label;
  return "";
}

void gridOf(const KernelInfo& k, int64_t batch, unsigned grid[3], unsigned block[3]) {
  auto clamp = [](int64_t v, int64_t hi) { return static_cast<unsigned>(std::max<int64_t>(1, std::min(v, hi))); };
  grid[0] = grid[1] = grid[2] = 1;
  block[0] = k.block;
  block[1] = block[2] = 1;
  switch (k.launch) {
    case LaunchKind::Elements: grid[0] = clamp((k.work.at(batch) + k.block - 1) / k.block, 65535); break;
    case LaunchKind::Rows: grid[0] = clamp(k.work.at(batch), 65535); break;
    case LaunchKind::Tiles:
      block[1] = k.block;
      grid[0] = clamp((k.work.at(batch) + k.tile - 1) / k.tile, 65535);
      grid[1] = clamp((k.rows.at(batch) + k.tile - 1) / k.tile, 65535);
      grid[2] = clamp(k.count.at(batch), 65535);
      break;
    case LaunchKind::Library:
    case LaunchKind::Collective: break;  // no kernel of kiln's
  }
}

}  // namespace kiln::cuda
