// The scalar semantics of kiln's elementwise ops (ScalarOpInterface, ScalarExpr.h):
// every op declares a valid expression; the evaluator gives the documented
// values; and the C++ the renderer prints, compiled by the host compiler,
// computes what the evaluator computes, for every op and element type.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "kiln/ir/KilnDialect.h"
#include "kiln/ir/ScalarExpr.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

namespace scalar = kiln::ir::scalar;
using scalar::Type;

namespace {

// One instance of each elementwise op, on f32 (compare on every predicate).
constexpr const char* kAllOps = R"mlir(
func.func @ops(%x: tensor<4xf32>, %y: tensor<4xf32>, %c: tensor<4xi1>) {
  %0 = kiln.neg %x : tensor<4xf32>
  %1 = kiln.exp %x : tensor<4xf32>
  %2 = kiln.log %x : tensor<4xf32>
  %3 = kiln.sqrt %x : tensor<4xf32>
  %4 = kiln.tanh %x : tensor<4xf32>
  %5 = kiln.sigmoid %x : tensor<4xf32>
  %6 = kiln.relu %x : tensor<4xf32>
  %7 = kiln.abs %x : tensor<4xf32>
  %8 = kiln.sign %x : tensor<4xf32>
  %9 = kiln.log1p %x : tensor<4xf32>
  %10 = kiln.expm1 %x : tensor<4xf32>
  %11 = kiln.erf %x : tensor<4xf32>
  %12 = kiln.add %x, %y : tensor<4xf32>
  %13 = kiln.sub %x, %y : tensor<4xf32>
  %14 = kiln.mul %x, %y : tensor<4xf32>
  %15 = kiln.div %x, %y : tensor<4xf32>
  %16 = kiln.max %x, %y : tensor<4xf32>
  %17 = kiln.min %x, %y : tensor<4xf32>
  %18 = kiln.pow %x, %y : tensor<4xf32>
  %19 = kiln.compare "eq", %x, %y : tensor<4xf32>
  %20 = kiln.compare "ne", %x, %y : tensor<4xf32>
  %21 = kiln.compare "lt", %x, %y : tensor<4xf32>
  %22 = kiln.compare "le", %x, %y : tensor<4xf32>
  %23 = kiln.compare "gt", %x, %y : tensor<4xf32>
  %24 = kiln.compare "ge", %x, %y : tensor<4xf32>
  %25 = kiln.select %c, %x, %y : tensor<4xi1>, tensor<4xf32>
  %26 = kiln.cast %x : tensor<4xf32> -> tensor<4xi32>
  %27 = kiln.sin %x : tensor<4xf32>
  %28 = kiln.cos %x : tensor<4xf32>
  %29 = kiln.tan %x : tensor<4xf32>
  %30 = kiln.asin %x : tensor<4xf32>
  %31 = kiln.acos %x : tensor<4xf32>
  %32 = kiln.atan %x : tensor<4xf32>
  %33 = kiln.atan2 %x, %y : tensor<4xf32>
  %34 = kiln.floor %x : tensor<4xf32>
  %35 = kiln.ceil %x : tensor<4xf32>
  return
}
)mlir";

class ScalarSemantics : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.loadDialect<kiln::ir::KilnDialect, mlir::func::FuncDialect>();
    module_ = mlir::parseSourceString<mlir::ModuleOp>(kAllOps, &ctx_);
    ASSERT_TRUE(module_);
    module_->walk([&](kiln::ir::ScalarOpInterface op) {
      std::string key = op->getName().getStringRef().str();
      if (auto cmp = llvm::dyn_cast<kiln::ir::CompareOp>(op.getOperation())) key += "." + cmp.getPredicate().str();
      ops_[key] = op.getOperation();
    });
  }

  const scalar::Expr& expr(const std::string& key) {
    mlir::FailureOr<const scalar::Expr*> e = scalar::expressionOf(ops_.at(key));
    EXPECT_TRUE(mlir::succeeded(e)) << key;
    return **e;
  }

  double eval(const std::string& key, std::vector<double> args, Type t) {
    return scalar::evaluate(expr(key), args, t);
  }

  mlir::MLIRContext ctx_;
  mlir::OwningOpRef<mlir::ModuleOp> module_;
  std::map<std::string, mlir::Operation*> ops_;
};

TEST_F(ScalarSemantics, EveryElementwiseOpDeclaresAValidExpression) {
  // Every registered op with the interface is in the module above, so none is left untested.
  for (mlir::RegisteredOperationName name : ctx_.getRegisteredOperations()) {
    if (!name.hasInterface<kiln::ir::ScalarOpInterface>()) continue;
    bool found = false;
    for (auto& [key, op] : ops_) found |= op->getName() == name;
    EXPECT_TRUE(found) << name.getStringRef().str() << " has ScalarOpInterface but is not in this test";
  }
  for (auto& [key, op] : ops_) {
    mlir::FailureOr<const scalar::Expr*> e = scalar::expressionOf(op);
    EXPECT_TRUE(mlir::succeeded(e)) << key;
  }
  EXPECT_EQ(ops_.size(), 36u);
}

TEST_F(ScalarSemantics, ParserReportsErrorsWithTheirPlace) {
  std::string error;
  EXPECT_TRUE(mlir::failed(scalar::parse("(add x)", error)));
  EXPECT_NE(error.find("expected an expression"), std::string::npos) << error;
  EXPECT_TRUE(mlir::failed(scalar::parse("(frobnicate x)", error)));
  EXPECT_NE(error.find("unknown primitive 'frobnicate'"), std::string::npos) << error;
  EXPECT_TRUE(mlir::failed(scalar::parse("(neg x) y", error)));
  EXPECT_NE(error.find("unexpected text"), std::string::npos) << error;
  EXPECT_TRUE(mlir::failed(scalar::parse("(neg w)", error)));
  EXPECT_TRUE(mlir::succeeded(scalar::parse("(select (lt x -1.5) (mul x 2) z)", error)));
}

TEST_F(ScalarSemantics, EvaluatorGivesTheDocumentedValues) {
  double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(eval("kiln.relu", {-2}, Type::F32), 0);
  EXPECT_EQ(eval("kiln.relu", {3}, Type::F32), 3);
  EXPECT_TRUE(std::isnan(eval("kiln.relu", {nan}, Type::F32)));  // NumPy's maximum(x, 0)
  EXPECT_EQ(eval("kiln.sign", {-0.5}, Type::F64), -1);
  EXPECT_EQ(eval("kiln.sign", {0}, Type::F64), 0);
  EXPECT_EQ(eval("kiln.sign", {7}, Type::I32), 1);
  EXPECT_NEAR(eval("kiln.sigmoid", {0.5}, Type::F64), 1 / (1 + std::exp(-0.5)), 1e-15);
  // Integer division: truncation, x / 0 = 0, MIN / -1 = MIN.
  EXPECT_EQ(eval("kiln.div", {7, -2}, Type::I32), -3);
  EXPECT_EQ(eval("kiln.div", {5, 0}, Type::I64), 0);
  double min32 = std::numeric_limits<int32_t>::min();
  EXPECT_EQ(eval("kiln.div", {min32, -1}, Type::I32), min32);
  EXPECT_EQ(eval("kiln.div", {7, -2}, Type::F32), -3.5);
  // std::max / std::min with NaN: the first operand unless the comparison holds.
  EXPECT_TRUE(std::isnan(eval("kiln.max", {nan, 1}, Type::F32)));
  EXPECT_EQ(eval("kiln.max", {1, nan}, Type::F32), 1);
  EXPECT_EQ(eval("kiln.min", {4, 2}, Type::F32), 2);
  EXPECT_EQ(eval("kiln.compare.ne", {nan, nan}, Type::F32), 1);
  EXPECT_EQ(eval("kiln.compare.eq", {nan, nan}, Type::F32), 0);
  EXPECT_EQ(eval("kiln.select", {0, 1, 2}, Type::F32), 2);
  EXPECT_EQ(eval("kiln.abs", {-3}, Type::I64), 3);
  EXPECT_EQ(eval("kiln.floor", {-2.5}, Type::F32), -3);
  EXPECT_EQ(eval("kiln.ceil", {-2.5}, Type::F64), -2);
  EXPECT_EQ(eval("kiln.floor", {7}, Type::I32), 7);
  EXPECT_NEAR(eval("kiln.atan2", {1, -1}, Type::F64), 3 * M_PI / 4, 1e-15);
  EXPECT_NEAR(eval("kiln.sin", {0.5}, Type::F64), std::sin(0.5), 1e-15);
  EXPECT_TRUE(std::isnan(eval("kiln.asin", {2}, Type::F64)));
}

TEST_F(ScalarSemantics, FloatOnlyPrimitivesOnIntegersComputeInF64) {
  EXPECT_TRUE(scalar::computesInF64(expr("kiln.exp"), Type::I32));
  EXPECT_TRUE(scalar::computesInF64(expr("kiln.pow"), Type::I64));
  EXPECT_FALSE(scalar::computesInF64(expr("kiln.exp"), Type::F32));
  EXPECT_FALSE(scalar::computesInF64(expr("kiln.div"), Type::I32));  // integer division is native
  EXPECT_FALSE(scalar::computesInF64(expr("kiln.select"), Type::Bool));
  EXPECT_FALSE(scalar::computesInF64(expr("kiln.compare.lt"), Type::Bool));
  EXPECT_TRUE(scalar::computesInF64(expr("kiln.add"), Type::Bool));
  EXPECT_TRUE(scalar::computesInF64(expr("kiln.relu"), Type::Bool));
  // 2^10 of integers, computed in f64: exact.
  EXPECT_EQ(eval("kiln.pow", {2, 10}, Type::I32), 1024);
}

TEST_F(ScalarSemantics, RendersReadableC) {
  EXPECT_EQ(scalar::renderC(expr("kiln.relu"), {"v"}, Type::F32, Type::F32), "((!(v <= 0.0f)) ? v : 0.0f)");
  EXPECT_EQ(scalar::renderC(expr("kiln.sigmoid"), {"a"}, Type::F64, Type::F64), "(1.0 / (1.0 + exp((-a))))");
  EXPECT_EQ(scalar::renderC(expr("kiln.exp"), {"a"}, Type::F32, Type::F32), "expf(a)");
  EXPECT_EQ(scalar::renderC(expr("kiln.div"), {"a", "b"}, Type::I32, Type::I32), "kiln_idiv(a, b)");
  EXPECT_EQ(scalar::renderC(expr("kiln.exp"), {"a"}, Type::I32, Type::I32),
            "static_cast<int32_t>(exp(static_cast<double>(a)))");
  EXPECT_EQ(scalar::renderC(expr("kiln.cast"), {"a"}, Type::F32, Type::Bool), "(a != 0)");
}

#ifdef KILN_HOST_CXX
// The rendered source of every op and type, compiled by the host compiler and
// run on inputs with signs, zeros, fractions, NaN and integer extremes, agrees
// with the evaluator bit for bit (floats within one ulp of the libm calls).
TEST_F(ScalarSemantics, RenderedCComputesWhatTheEvaluatorComputes) {
  struct Case {
    std::string key;
    Type t, result;
  };
  std::vector<Case> cases;
  for (auto& [key, op] : ops_) {
    for (Type t : {Type::F32, Type::F64, Type::I32, Type::I64, Type::Bool}) {
      // log, sqrt, log1p of negative integers are NaN, which no integer holds (undefined in C).
      bool nanOnNegatives = key == "kiln.log" || key == "kiln.sqrt" || key == "kiln.log1p" || key == "kiln.pow" ||
                            key == "kiln.asin" || key == "kiln.acos";
      if (!scalar::isFloat(t) && nanOnNegatives) continue;
      Type result = key.rfind("kiln.compare", 0) == 0 ? Type::Bool : key == "kiln.cast" ? Type::F64 : t;
      if (key == "kiln.cast" && scalar::isFloat(t)) result = Type::Bool;
      cases.push_back({key, t, result});
    }
  }
  // Integers through a float-only function are kept small: exp(2^31) does not fit an int32.
  auto inputsOf = [&](const std::string& key, Type t) -> std::vector<double> {
    bool viaF64 = !scalar::isFloat(t) && scalar::computesInF64(expr(key), t);
    switch (t) {
      case Type::Bool: return {0, 1};
      case Type::I32:
        if (viaF64) return {-2, -1, 0, 1, 3};
        return {-7, -1, 0, 1, 3, 2147483647, -2147483648.0};
      case Type::I64:
        if (viaF64) return {-2, -1, 0, 2, 5};
        return {-7, -1, 0, 2, 5, 9007199254740992.0};
      default: return {-2.5, -1, -0.0, 0.5, 1, 3, std::numeric_limits<double>::quiet_NaN()};
    }
  };
  auto literal = [](double v, const std::string& type) {
    if (std::isnan(v)) return "(" + type + ")NAN";
    char buf[64];  // floats in hexadecimal: exact, and -0.0 stays negative
    bool fp = type == "float" || type == "double";
    std::snprintf(buf, sizeof buf, fp ? "(%s)%a" : "(%s)%.17g", type.c_str(), v);
    return std::string(buf);
  };
  std::ostringstream src;
  src << "#include <cmath>\n#include <cstdint>\n#include <cstdio>\n#include <math.h>\nusing namespace std;\n"
      << scalar::renderCPrelude();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::string ty = scalar::cTypeName(c.t).str();
    std::string x = c.key == "kiln.select" ? "bool" : ty;
    src << scalar::cTypeName(c.result).str() << " f" << i << "(" << x << " x, " << ty << " y, " << ty
        << " z) { (void)x; (void)y; (void)z; return "
        << scalar::renderC(expr(c.key), {"x", "y", "z"}, c.t, c.result) << "; }\n";
  }
  src << "int main() {\n";
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    std::string ty = scalar::cTypeName(c.t).str();
    std::string x = c.key == "kiln.select" ? "bool" : ty;
    for (double a : inputsOf(c.key, c.key == "kiln.select" ? Type::Bool : c.t))
      for (double b : inputsOf(c.key, c.t))
        src << "  printf(\"%.17g\\n\", (double)f" << i << "(" << literal(a, x) << ", " << literal(b, ty) << ", "
            << literal(b, ty) << "));\n";
  }
  src << "}\n";
  std::string dir = std::string(KILN_BINARY_DIR) + "/scalar_semantics_test.d";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  std::ofstream(dir + "/rendered.cpp") << src.str();
  std::string compile = std::string(KILN_HOST_CXX) + " -std=c++17 -O0 -w -o " + dir + "/rendered " + dir +
                        "/rendered.cpp -lm";
  ASSERT_EQ(std::system(compile.c_str()), 0) << compile << "\n" << src.str();
  std::string run = dir + "/rendered > " + dir + "/out.txt";
  ASSERT_EQ(std::system(run.c_str()), 0);
  std::ifstream out(dir + "/out.txt");
  for (const Case& c : cases) {
    for (double a : inputsOf(c.key, c.key == "kiln.select" ? Type::Bool : c.t))
      for (double b : inputsOf(c.key, c.t)) {
        std::string line;
        ASSERT_TRUE(std::getline(out, line));
        double got = std::strtod(line.c_str(), nullptr);
        // The evaluator computes in double; round as the interpreter does.
        double want = scalar::evaluate(expr(c.key), {a, b, b}, c.t);
        switch (c.result) {
          case Type::F32: want = static_cast<float>(want); break;
          case Type::I32: want = std::isnan(want) ? want : static_cast<double>(static_cast<int32_t>(want)); break;
          case Type::I64: want = std::isnan(want) ? want : static_cast<double>(static_cast<int64_t>(want)); break;
          case Type::Bool: want = want != 0; break;
          case Type::F64: break;
        }
        std::string where = c.key + " " + scalar::cTypeName(c.t).str() + " (" + std::to_string(a) + ", " +
                            std::to_string(b) + ")";
        if (std::isnan(want) || std::isinf(want)) {
          EXPECT_TRUE(std::isnan(want) ? std::isnan(got) : got == want) << where << ": got " << got;
        } else if (scalar::isFloat(c.result)) {
          EXPECT_NEAR(got, want, std::fabs(want) * (c.result == Type::F32 ? 1e-6 : 1e-15) + 1e-30) << where;
        } else {
          EXPECT_EQ(got, want) << where;
        }
      }
  }
}
#endif

}  // namespace
