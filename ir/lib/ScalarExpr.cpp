// Parser, evaluator and C renderer of kiln's scalar expressions (ScalarExpr.h).
#include "kiln/ir/ScalarExpr.h"

#include <cmath>
#include <limits>
#include <memory>
#include <mutex>

#include "kiln/ir/KilnDialect.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln::ir::scalar {
namespace {

struct PrimInfo {
  Prim prim;
  const char* spelling;
  int arity;
};

constexpr PrimInfo kPrims[] = {
    {Prim::Neg, "neg", 1},     {Prim::Add, "add", 2},     {Prim::Sub, "sub", 2},
    {Prim::Mul, "mul", 2},     {Prim::Div, "div", 2},     {Prim::Abs, "abs", 1},
    {Prim::Pow, "pow", 2},     {Prim::Exp, "exp", 1},     {Prim::Log, "log", 1},
    {Prim::Sqrt, "sqrt", 1},   {Prim::Tanh, "tanh", 1},   {Prim::Log1p, "log1p", 1},
    {Prim::Expm1, "expm1", 1}, {Prim::Erf, "erf", 1},     {Prim::Eq, "eq", 2},
    {Prim::Ne, "ne", 2},       {Prim::Lt, "lt", 2},       {Prim::Le, "le", 2},
    {Prim::Gt, "gt", 2},       {Prim::Ge, "ge", 2},       {Prim::Gtu, "gtu", 2},
    {Prim::Select, "select", 3}, {Prim::Convert, "convert", 1},
    {Prim::Sin, "sin", 1},     {Prim::Cos, "cos", 1},     {Prim::Tan, "tan", 1},
    {Prim::Asin, "asin", 1},   {Prim::Acos, "acos", 1},   {Prim::Atan, "atan", 1},
    {Prim::Atan2, "atan2", 2}, {Prim::Floor, "floor", 1}, {Prim::Ceil, "ceil", 1},
};

const PrimInfo* infoOf(Prim p) {
  for (const PrimInfo& i : kPrims)
    if (i.prim == p) return &i;
  return nullptr;
}

bool isFloatOnly(Prim p) { return p >= Prim::Pow && p <= Prim::Ceil; }
bool isArithmetic(Prim p) { return p >= Prim::Neg && p <= Prim::Ceil; }
bool isComparison(Prim p) { return p >= Prim::Eq && p <= Prim::Gtu; }

bool any(const Expr& e, bool (*pred)(Prim)) {
  if (pred(e.prim)) return true;
  for (const Expr& o : e.operands)
    if (any(o, pred)) return true;
  return false;
}

class Parser {
 public:
  Parser(llvm::StringRef text, std::string& error) : text_(text), error_(error) {}

  mlir::FailureOr<Expr> parseAll() {
    mlir::FailureOr<Expr> e = parseExpr();
    if (mlir::failed(e)) return e;
    skipSpace();
    if (pos_ != text_.size()) return fail("unexpected text after the expression");
    return e;
  }

 private:
  mlir::FailureOr<Expr> fail(const llvm::Twine& message) {
    error_ = (message + " at offset " + llvm::Twine(pos_) + " of '" + text_ + "'").str();
    return mlir::failure();
  }

  void skipSpace() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }

  llvm::StringRef word() {
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ' ' && text_[pos_] != '(' && text_[pos_] != ')') ++pos_;
    return text_.slice(start, pos_);
  }

  mlir::FailureOr<Expr> parseExpr() {
    skipSpace();
    if (pos_ >= text_.size() || text_[pos_] == ')') return fail("expected an expression");
    Expr e;
    if (text_[pos_] != '(') {
      llvm::StringRef w = word();
      if (w == "x" || w == "y" || w == "z") {
        e.prim = Prim::Arg;
        e.arg = w[0] - 'x';
        return e;
      }
      if (w.empty() || w.getAsDouble(e.value)) return fail("expected an operand (x, y, z) or a number");
      e.prim = Prim::Const;
      return e;
    }
    ++pos_;
    skipSpace();
    llvm::StringRef name = word();
    const PrimInfo* info = nullptr;
    for (const PrimInfo& i : kPrims)
      if (name == i.spelling) info = &i;
    if (!info) return fail("unknown primitive '" + name + "'");
    e.prim = info->prim;
    for (int i = 0; i < info->arity; ++i) {
      mlir::FailureOr<Expr> operand = parseExpr();
      if (mlir::failed(operand)) return operand;
      e.operands.push_back(std::move(*operand));
    }
    skipSpace();
    if (pos_ >= text_.size() || text_[pos_] != ')')
      return fail("expected ')' after " + llvm::Twine(info->arity) + " operands of '" + name + "'");
    ++pos_;
    return e;
  }

  llvm::StringRef text_;
  std::string& error_;
  size_t pos_ = 0;
};

// Integer division of kiln.div: truncation toward zero, x / 0 = 0, MIN / -1 = MIN.
double integerDivide(double a, double b, Type t) {
  if (b == 0) return 0.0;
  if (b == -1) {
    if (t == Type::I32 && a == static_cast<double>(std::numeric_limits<int32_t>::min())) return a;
    if (t == Type::I64 && a == static_cast<double>(std::numeric_limits<int64_t>::min())) return a;
    return -a;
  }
  return std::trunc(a / b);
}

// Integer arithmetic of type `t` (held as doubles) wraps as two's complement,
// as the compiled backends compute it.
double wrapped(uint64_t bits, Type t) {
  if (t == Type::I32) return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(bits)));
  return static_cast<double>(static_cast<int64_t>(bits));
}
uint64_t bitsOf(double v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); }

double eval(const Expr& e, llvm::ArrayRef<double> args, Type t) {
  auto at = [&](size_t i) { return eval(e.operands[i], args, t); };
  bool integer = t == Type::I32 || t == Type::I64;
  switch (e.prim) {
    case Prim::Arg: return args[e.arg];
    case Prim::Const: return e.value;
    case Prim::Neg: return integer ? wrapped(0 - bitsOf(at(0)), t) : -at(0);
    case Prim::Add: return integer ? wrapped(bitsOf(at(0)) + bitsOf(at(1)), t) : at(0) + at(1);
    case Prim::Sub: return integer ? wrapped(bitsOf(at(0)) - bitsOf(at(1)), t) : at(0) - at(1);
    case Prim::Mul: return integer ? wrapped(bitsOf(at(0)) * bitsOf(at(1)), t) : at(0) * at(1);
    case Prim::Div: return isFloat(t) ? at(0) / at(1) : integerDivide(at(0), at(1), t);
    case Prim::Abs: {
      double x = at(0);
      return integer && x < 0 ? wrapped(0 - bitsOf(x), t) : std::fabs(x);
    }
    case Prim::Pow: return std::pow(at(0), at(1));
    case Prim::Exp: return std::exp(at(0));
    case Prim::Log: return std::log(at(0));
    case Prim::Sqrt: return std::sqrt(at(0));
    case Prim::Tanh: return std::tanh(at(0));
    case Prim::Log1p: return std::log1p(at(0));
    case Prim::Expm1: return std::expm1(at(0));
    case Prim::Erf: return std::erf(at(0));
    case Prim::Sin: return std::sin(at(0));
    case Prim::Cos: return std::cos(at(0));
    case Prim::Tan: return std::tan(at(0));
    case Prim::Asin: return std::asin(at(0));
    case Prim::Acos: return std::acos(at(0));
    case Prim::Atan: return std::atan(at(0));
    case Prim::Atan2: return std::atan2(at(0), at(1));
    case Prim::Floor: return std::floor(at(0));
    case Prim::Ceil: return std::ceil(at(0));
    case Prim::Eq: return at(0) == at(1);
    case Prim::Ne: return at(0) != at(1);
    case Prim::Lt: return at(0) < at(1);
    case Prim::Le: return at(0) <= at(1);
    case Prim::Gt: return at(0) > at(1);
    case Prim::Ge: return at(0) >= at(1);
    case Prim::Gtu: {
      double a = at(0), b = at(1);
      return a > b || std::isnan(a) || std::isnan(b);
    }
    case Prim::Select: return at(0) != 0 ? at(1) : at(2);
    case Prim::Convert: return at(0);  // the caller rounds to the result type
  }
  return 0;
}

std::string constant(double v, Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  switch (t) {
    case Type::Bool: os << (v != 0 ? "true" : "false"); break;
    case Type::I32: os << static_cast<int32_t>(v); break;
    case Type::I64: os << static_cast<int64_t>(v) << "LL"; break;
    case Type::F32:
    case Type::F64: {
      if (std::isinf(v) || std::isnan(v)) {  // math.h's float macros
        const char* name = std::isnan(v) ? "NAN" : v < 0 ? "(-INFINITY)" : "INFINITY";
        os << (t == Type::F32 ? std::string(name) : "static_cast<double>(" + std::string(name) + ")");
        break;
      }
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", v);
      llvm::StringRef text(buf);
      os << text;
      if (!text.contains('.') && !text.contains('e') && !text.contains('n')) os << ".0";
      if (t == Type::F32) os << "f";
      break;
    }
  }
  return s;
}

std::string render(const Expr& e, llvm::ArrayRef<std::string> args, Type t, Type result) {
  auto at = [&](size_t i) { return render(e.operands[i], args, t, result); };
  auto fn = [&](const char* name) {
    return std::string(name) + (t == Type::F32 ? "f(" : "(") + at(0) + (e.operands.size() > 1 ? ", " + at(1) : "") + ")";
  };
  auto infix = [&](const char* op) { return "(" + at(0) + " " + op + " " + at(1) + ")"; };
  switch (e.prim) {
    case Prim::Arg: return args[e.arg];
    case Prim::Const: return constant(e.value, t);
    case Prim::Neg: return isFloat(t) ? "(-" + at(0) + ")" : "kiln_ineg(" + at(0) + ")";
    case Prim::Add: return isFloat(t) ? infix("+") : "kiln_iadd(" + at(0) + ", " + at(1) + ")";
    case Prim::Sub: return isFloat(t) ? infix("-") : "kiln_isub(" + at(0) + ", " + at(1) + ")";
    case Prim::Mul: return isFloat(t) ? infix("*") : "kiln_imul(" + at(0) + ", " + at(1) + ")";
    case Prim::Div: return isFloat(t) ? infix("/") : "kiln_idiv(" + at(0) + ", " + at(1) + ")";
    case Prim::Abs: return isFloat(t) ? fn("fabs") : "kiln_iabs(" + at(0) + ")";
    case Prim::Pow: return fn("pow");
    case Prim::Exp: return fn("exp");
    case Prim::Log: return fn("log");
    case Prim::Sqrt: return fn("sqrt");
    case Prim::Tanh: return fn("tanh");
    case Prim::Log1p: return fn("log1p");
    case Prim::Expm1: return fn("expm1");
    case Prim::Erf: return fn("erf");
    case Prim::Sin: return fn("sin");
    case Prim::Cos: return fn("cos");
    case Prim::Tan: return fn("tan");
    case Prim::Asin: return fn("asin");
    case Prim::Acos: return fn("acos");
    case Prim::Atan: return fn("atan");
    case Prim::Atan2: return fn("atan2");
    case Prim::Floor: return fn("floor");
    case Prim::Ceil: return fn("ceil");
    case Prim::Eq: return infix("==");
    case Prim::Ne: return infix("!=");
    case Prim::Lt: return infix("<");
    case Prim::Le: return infix("<=");
    case Prim::Gt: return infix(">");
    case Prim::Ge: return infix(">=");
    case Prim::Gtu: return "(!" + infix("<=") + ")";
    case Prim::Select: return "(" + at(0) + " ? " + at(1) + " : " + at(2) + ")";
    case Prim::Convert:
      if (result == Type::Bool) return "(" + at(0) + " != 0)";
      return "static_cast<" + cTypeName(result).str() + ">(" + at(0) + ")";
  }
  return "";
}

}  // namespace

llvm::StringRef spelling(Prim prim) {
  if (prim == Prim::Arg) return "arg";
  if (prim == Prim::Const) return "const";
  return infoOf(prim)->spelling;
}

mlir::FailureOr<Expr> parse(llvm::StringRef text, std::string& error) { return Parser(text, error).parseAll(); }

mlir::FailureOr<const Expr*> expressionOf(mlir::Operation* op) {
  auto scalarOp = llvm::dyn_cast<ScalarOpInterface>(op);
  if (!scalarOp) return op->emitOpError("has no scalar semantics (ScalarOpInterface)");
  llvm::StringRef text = scalarOp.getScalarSemantics();
  static std::mutex mutex;
  static llvm::StringMap<std::unique_ptr<Expr>> parsed;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = parsed.find(text);
  if (it != parsed.end()) return it->second.get();
  std::string error;
  mlir::FailureOr<Expr> e = parse(text, error);
  if (mlir::failed(e)) return op->emitOpError("has invalid scalar semantics: ") << error;
  return parsed.try_emplace(text, std::make_unique<Expr>(std::move(*e))).first->second.get();
}

bool computesInF64(const Expr& expr, Type t) {
  if (t == Type::Bool) return any(expr, isArithmetic) || any(expr, [](Prim p) { return p == Prim::Const; });
  return !isFloat(t) && any(expr, isFloatOnly);
}

double evaluate(const Expr& expr, llvm::ArrayRef<double> args, Type t) {
  return eval(expr, args, computesInF64(expr, t) ? Type::F64 : t);
}

std::string renderC(const Expr& expr, llvm::ArrayRef<std::string> args, Type t, Type result) {
  if (!computesInF64(expr, t)) return render(expr, args, t, result);
  std::vector<std::string> wide;
  for (const std::string& a : args) wide.push_back("static_cast<double>(" + a + ")");
  Expr convertBack{Prim::Convert, 0, 0, {expr}};
  return render(convertBack, wide, Type::F64, result);
}

std::string renderCPrelude() {
  return R"(// Integer helpers of kiln's scalar expressions, wrapping as two's complement.
template <typename T> struct kiln_unsigned;
template <> struct kiln_unsigned<int32_t> { typedef uint32_t type; };
template <> struct kiln_unsigned<int64_t> { typedef uint64_t type; };
template <typename T> inline T kiln_ineg(T x) {
  typedef typename kiln_unsigned<T>::type U;
  return static_cast<T>(static_cast<U>(0) - static_cast<U>(x));
}
// kiln.div of integers: truncation toward zero, x / 0 = 0, MIN / -1 = MIN.
template <typename T> inline T kiln_idiv(T x, T d) {
  return d == 0 ? T(0) : d == T(-1) ? kiln_ineg(x) : T(x / d);
}
template <typename T> inline T kiln_iadd(T x, T y) {
  typedef typename kiln_unsigned<T>::type U;
  return static_cast<T>(static_cast<U>(x) + static_cast<U>(y));
}
template <typename T> inline T kiln_isub(T x, T y) {
  typedef typename kiln_unsigned<T>::type U;
  return static_cast<T>(static_cast<U>(x) - static_cast<U>(y));
}
template <typename T> inline T kiln_imul(T x, T y) {
  typedef typename kiln_unsigned<T>::type U;
  return static_cast<T>(static_cast<U>(x) * static_cast<U>(y));
}
template <typename T> inline T kiln_iabs(T x) { return x < 0 ? kiln_ineg(x) : x; }
)";
}

llvm::StringRef cTypeName(Type t) {
  switch (t) {
    case Type::Bool: return "bool";
    case Type::I32: return "int32_t";
    case Type::I64: return "int64_t";
    case Type::F32: return "float";
    case Type::F64: return "double";
  }
  return "";
}

}  // namespace kiln::ir::scalar
