// The scalar meaning of kiln's elementwise ops, stated once per op.
//
// Each op with ScalarOpInterface declares, in KilnOps.td, one expression of
// its operands' elements (`getScalarSemantics()`), in this syntax:
//
//   expr := x | y | z                 the op's operands 0, 1, 2
//         | <number>                  a constant of the computation type
//         | (<prim> expr...)          a primitive applied to sub-expressions
//
// e.g. relu is `(select (gtu x 0) x 0)`. Every backend reads that one
// definition: the interpreter evaluates it (`evaluate`), -kiln-lower-to-linalg
// emits it as arith/math ops, and `renderC` prints it as C/C++/CUDA source.
//
// Types. The computation type T is the element type of the op's last operand
// (the data operand: select's `on_false`, compare's `rhs`). Constants and
// arithmetic are of type T; comparisons give a boolean; `select` takes a
// boolean and two values of T; `convert` converts to the op's result element
// type. An expression that uses a float-only primitive (exp, log, ...) on an
// integer T, or any arithmetic on a boolean T, is computed in f64 with its
// operands converted to f64 and its result converted back to the result type
// (`computesInF64`), on every backend alike.
//
// The primitives' semantics (for all backends):
//   neg add sub mul         IEEE on floats; wrapping on integers
//   div                     IEEE on floats; integers truncate toward zero,
//                           x / 0 = 0 and MIN / -1 = MIN (never a trap)
//   pow exp log sqrt tanh log1p expm1 erf      float only (C's functions)
//   sin cos tan asin acos atan atan2 floor ceil float only (C's functions)
//   abs                     |x| (fabs on floats: abs(-0.0) = +0.0)
//   eq lt le gt ge          ordered: false when either side is NaN
//   ne                      true when either side is NaN (C's !=)
//   gtu                     greater than or unordered: true when either is NaN
//   select c a b            c ? a : b
//   convert a               kiln.cast: float->int truncates, int->float is
//                           signed, anything->bool is `!= 0`
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "mlir/Support/LLVM.h"

namespace mlir {
class Operation;
}

namespace kiln::ir::scalar {

enum class Prim : uint8_t {
  Arg, Const,
  Neg, Add, Sub, Mul, Div, Abs,
  Pow, Exp, Log, Sqrt, Tanh, Log1p, Expm1, Erf, Sin, Cos, Tan, Asin, Acos, Atan, Atan2, Floor, Ceil,
  Eq, Ne, Lt, Le, Gt, Ge, Gtu,
  Select, Convert,
};

struct Expr {
  Prim prim = Prim::Const;
  int64_t arg = 0;     // Arg: the operand's index
  double value = 0;    // Const: the constant
  std::vector<Expr> operands;
};

// The spelling of a primitive in the syntax ("add", "gtu", ...).
llvm::StringRef spelling(Prim prim);

// Parses `text`; on a syntax error returns failure and sets `error`.
mlir::FailureOr<Expr> parse(llvm::StringRef text, std::string& error);

// The parsed expression of an op with ScalarOpInterface, parsed once per
// distinct text (thread-safe). Failure (with the op's diagnostic emitted) if
// the op has no scalar semantics or its text does not parse.
mlir::FailureOr<const Expr*> expressionOf(mlir::Operation* op);

// Element types as the evaluator and the renderer see them.
enum class Type : uint8_t { Bool, I32, I64, F32, F64 };
inline bool isFloat(Type t) { return t == Type::F32 || t == Type::F64; }

// Whether `expr`, for computation type `t`, is computed in f64 (see above).
bool computesInF64(const Expr& expr, Type t);

// The value of `expr` for operand values `args` (held as doubles, as the
// interpreter holds every element), computation type `t`. The caller rounds
// the result to the result's element type.
double evaluate(const Expr& expr, llvm::ArrayRef<double> args, Type t);

// C++ source (valid CUDA C++) of `expr` for operand expressions `args`,
// computation type `t` and result type `result`; it may call the helpers of
// renderCPrelude(), which a translation unit includes once.
std::string renderC(const Expr& expr, llvm::ArrayRef<std::string> args, Type t, Type result);
std::string renderCPrelude();
// The C type name of `t` ("float", "int32_t", "bool", ...).
llvm::StringRef cTypeName(Type t);

}  // namespace kiln::ir::scalar
