// Shared helpers of the CUDA codegen tests: parse kiln IR, fuse it, run it on the
// interpreter (the oracle) and through the generated kernels under the SIMT emulator.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kiln/array.h"
#include "kiln/codegen/cuda.h"
#include "kiln/codegen/interp.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/passes/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

namespace kiln::cuda::testing {

inline mlir::MLIRContext& context() {
  static mlir::MLIRContext* ctx = [] {
    auto* c = new mlir::MLIRContext();
    c->loadDialect<kiln::ir::KilnDialect, mlir::func::FuncDialect>();
    kiln::passes::registerKilnPipelines();
    return c;
  }();
  return *ctx;
}

inline mlir::OwningOpRef<mlir::ModuleOp> parse(const std::string& text) {
  auto m = mlir::parseSourceString<mlir::ModuleOp>(text, &context());
  if (!m) ADD_FAILURE() << "does not parse:\n" << text;
  return m;
}

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline mlir::func::FuncOp firstFunc(mlir::ModuleOp m) { return *m.getOps<mlir::func::FuncOp>().begin(); }

// `text` with -kiln-fuse applied.
inline mlir::OwningOpRef<mlir::ModuleOp> fused(const std::string& text) {
  auto m = parse(text);
  mlir::PassManager pm(&context());
  if (mlir::failed(mlir::parsePassPipeline("func.func(kiln-fuse)", pm)) || mlir::failed(pm.run(*m)))
    ADD_FAILURE() << "-kiln-fuse failed";
  return m;
}

// `text` with every `?` dimension replaced by `batch` (the interpreter runs concrete shapes).
inline std::string concrete(std::string text, int64_t batch) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '?' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == '>'))
      out += std::to_string(batch);
    else
      out += text[i];
  }
  return out;
}

// Deterministic inputs: floats in [lo, hi), integers in [0, ints).
inline Array input(const Shape& shape, DType dtype, uint64_t seed, double lo = 0.1, double hi = 1.0, int ints = 10) {
  Array a = Array::zeros(shape, dtype);
  uint64_t s = seed * 2654435761u + 12345;
  for (int64_t i = 0; i < a.size(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    double u = static_cast<double>(s >> 11) / 9007199254740992.0;
    switch (dtype) {
      case DType::f32: a.data<float>()[i] = static_cast<float>(lo + (hi - lo) * u); break;
      case DType::f64: a.data<double>()[i] = lo + (hi - lo) * u; break;
      case DType::i32: a.data<int32_t>()[i] = static_cast<int32_t>(u * ints); break;
      case DType::i64: a.data<int64_t>()[i] = static_cast<int64_t>(u * ints); break;
      case DType::b8: a.data<bool>()[i] = u < 0.5; break;
    }
  }
  return a;
}

inline DType dtypeOfType(mlir::Type t) {
  if (t.isF64()) return DType::f64;
  if (t.isInteger(32)) return DType::i32;
  if (t.isInteger(64)) return DType::i64;
  if (t.isInteger(1)) return DType::b8;
  return DType::f32;
}

// Inputs for every argument of `func` (concrete shapes).
inline std::vector<Array> inputsFor(mlir::func::FuncOp func, double lo = 0.1, double hi = 1.0, int ints = 10) {
  std::vector<Array> args;
  for (auto [i, t] : llvm::enumerate(func.getArgumentTypes())) {
    auto tensor = mlir::cast<mlir::RankedTensorType>(t);
    Shape shape(tensor.getShape().begin(), tensor.getShape().end());
    args.push_back(input(shape, dtypeOfType(tensor.getElementType()), i + 1, lo, hi, ints));
  }
  return args;
}

inline std::string emulatorDir() { return std::string(KILN_BINARY_DIR) + "/test-cache/cuda-emulator"; }

// Runs `program` under the emulator on `args` (the batch size `batch`).
inline std::vector<Array> runEmulated(const Program& program, const std::vector<Array>& args, int64_t batch) {
  EmulatedProgram emulated = EmulatedProgram::load(program, emulatorDir());
  std::vector<Array> storage;
  std::vector<void*> buffers;
  for (const BufferInfo& b : program.buffers) {
    Shape shape;
    for (int64_t d : b.shape) shape.push_back(d < 0 ? batch : d);
    if (b.argument >= 0) {
      storage.push_back(args.at(b.argument));
    } else {
      storage.push_back(Array::full(shape, 12345.0, b.dtype));  // garbage the kernels must overwrite
    }
    buffers.push_back(storage.back().raw_data());
  }
  for (size_t k = 0; k < program.kernels.size(); ++k) emulated.launch(k, buffers, batch);
  std::vector<Array> results;
  for (int r : program.results) results.push_back(storage[r].copy());
  return results;
}

// Element-wise agreement: exact for integers and booleans, relative for floats.
inline void expectClose(const Array& expected, const Array& actual, const std::string& what, double rtol = 1e-4,
                        double atol = 1e-5) {
  ASSERT_EQ(expected.shape(), actual.shape()) << what;
  ASSERT_EQ(expected.dtype(), actual.dtype()) << what;
  int reported = 0;
  for (int64_t i = 0; i < expected.size(); ++i) {
    double e = expected.at(i), a = actual.at(i);
    bool ok = (std::isnan(e) && std::isnan(a)) || e == a ||
              (is_floating(expected.dtype()) && std::abs(e - a) <= atol + rtol * std::abs(e));
    if (!ok && reported++ < 5) ADD_FAILURE() << what << ": element " << i << ": interpreter " << e << ", emulated CUDA " << a;
  }
}

// Options that emit kiln's own GEMM kernels in place of library (cuBLAS) calls.
inline EmitOptions generatedGemms() {
  EmitOptions options;
  options.library_gemms = false;
  return options;
}

// The differential check: `text` (dynamic dimensions allowed) fused and run through the
// generated kernels agrees with the interpreter on the concrete function. `regions`: the
// same function with kiln.fusion regions of its own (which the interpreter does not run),
// emitted instead of `text`.
inline Program expectAgrees(const std::string& text, int64_t batch = 6, double lo = 0.1, double hi = 1.0,
                            const std::string& regions = "", const EmitOptions& options = {}) {
  auto reference = parse(concrete(text, batch));
  if (!reference) return {};
  mlir::func::FuncOp refFunc = firstFunc(*reference);
  std::vector<Array> args = inputsFor(refFunc, lo, hi);
  std::vector<Array> expected = interp::run(refFunc, args);
  auto module = fused(regions.empty() ? text : regions);
  if (!module) return {};
  Program program = emitProgram(firstFunc(*module), options);
  std::vector<Array> actual = runEmulated(program, args, batch);
  EXPECT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size() && i < actual.size(); ++i)
    expectClose(expected[i], actual[i], "result " + std::to_string(i));
  return program;
}

// embed_id's gradient three ways: f32 updates computed in the region (x * x) at a batch of
// id rows, f64, and i64 (CUDA's unsigned 64-bit atomicAdd): scatter-add kernels with atomics.
inline const char* kScatterAddText = R"(
func.func @f(%ids: tensor<?x3xi32>, %u: tensor<?x3x5xf32>, %ids2: tensor<?xi32>, %d: tensor<?x4xf64>, %n: tensor<?x2xi64>) -> (tensor<10x5xf32>, tensor<10x4xf64>, tensor<10x2xi64>) {
  %0 = kiln.mul %u, %u : tensor<?x3x5xf32>
  %1 = kiln.scatter_add %ids, %0 : tensor<?x3xi32>, tensor<?x3x5xf32> -> tensor<10x5xf32>
  %2 = kiln.scatter_add %ids2, %d : tensor<?xi32>, tensor<?x4xf64> -> tensor<10x4xf64>
  %3 = kiln.scatter_add %ids2, %n : tensor<?xi32>, tensor<?x2xi64> -> tensor<10x2xi64>
  return %1, %2, %3 : tensor<10x5xf32>, tensor<10x4xf64>, tensor<10x2xi64>
})";

// An embedding's gradient accumulated over two time steps (autodiff's chain of based
// scatter_adds): the first onto an argument, the second onto the first's result.
inline const char* kScatterAddBaseText = R"(
func.func @f(%t: tensor<10x5xf32>, %ids: tensor<?xi32>, %u: tensor<?x5xf32>, %ids2: tensor<?x2xi32>, %u2: tensor<?x2x5xf32>) -> (tensor<10x5xf32>, tensor<10x5xf32>) {
  %0 = kiln.scatter_add %ids, %u base(%t) : tensor<?xi32>, tensor<?x5xf32>, tensor<10x5xf32> -> tensor<10x5xf32>
  %1 = kiln.scatter_add %ids2, %u2 base(%0) : tensor<?x2xi32>, tensor<?x2x5xf32>, tensor<10x5xf32> -> tensor<10x5xf32>
  return %0, %1 : tensor<10x5xf32>, tensor<10x5xf32>
})";

// A function @f(params) -> (resultTypes) whose ops are `body` and which returns `results`,
// without regions (for the interpreter) or with the body as one kiln.fusion region of `kind`
// (emitted instead). `params` are "%name: type" pairs; `body` uses the names, which are the
// region's block arguments there (the function's arguments get a "_in" suffix).
struct RegionCase {
  std::string reference, regions;
};
inline RegionCase regionCase(const std::string& kind, const std::vector<std::pair<std::string, std::string>>& params,
                             const std::string& body, const std::vector<std::string>& results,
                             const std::string& resultTypes) {
  auto join = [](const std::vector<std::string>& parts) {
    std::string s;
    for (const std::string& part : parts) s += (s.empty() ? "" : ", ") + part;
    return s;
  };
  std::vector<std::string> refParams, inParams, inNames, types, yields;
  for (const auto& [name, type] : params) {
    refParams.push_back(name + ": " + type);
    inParams.push_back(name + "_in: " + type);
    inNames.push_back(name + "_in");
    types.push_back(type);
  }
  for (size_t i = 0; i < results.size(); ++i)
    yields.push_back(results.size() == 1 ? "%r" : "%r#" + std::to_string(i));
  const std::string header = "func.func @f(";
  const std::string signature = ") -> (" + resultTypes + ") {\n";
  const std::string values = " " + join(results) + " : " + resultTypes + "\n";
  RegionCase c;
  c.reference = header + join(refParams) + signature + body + "  return" + values + "}";
  c.regions = header + join(inParams) + signature + "  %r" +
              (results.size() == 1 ? "" : ":" + std::to_string(results.size())) + " = kiln.fusion \"" + kind +
              "\" ins(" + join(inNames) + " : " + join(types) + ") -> (" + resultTypes + ") {\n  ^bb0(" +
              join(refParams) + "):\n" + body + "    kiln.yield" + values + "  }\n  return " + join(yields) +
              " : " + resultTypes + "\n}";
  return c;
}

// A reduction region whose outputs are over three spaces (a column sum, and values over
// the rows and over the input), as in group normalization's gradient: no one row
// reduction computes them all, so one row-reduction kernel and one elementwise kernel.
inline const RegionCase kSplitReduction = regionCase("reduction", {{"%x", "tensor<?x6xf32>"}, {"%s", "tensor<?x1xf32>"}},
                                                     R"(    %1 = kiln.sqrt %s : tensor<?x1xf32>
    %2 = kiln.broadcast_to %1 : tensor<?x1xf32> -> tensor<?x6xf32>
    %3 = kiln.div %x, %2 : tensor<?x6xf32>
    %4 = kiln.reduce_sum %3, [0] : tensor<?x6xf32> -> tensor<6xf32>
)",
                                                     {"%4", "%1", "%3"},
                                                     "tensor<6xf32>, tensor<?x1xf32>, tensor<?x6xf32>");

// Convolutions as implicit GEMMs over ragged, multi-tile GEMMs: 2 groups of 66 output
// channels (two 64-row tiles), K = 3 * 3 * 3 (a partial 16-deep step), stride 2, pad 1,
// dilate 2. The forward in f64 with an elementwise op on its input inside the region (x * x,
// computed by the input tile loads) and bias + tanh at the accumulators. The gradients in f32
// (the data gradient over 4 x 12 x 9 input positions, whose last row no window reaches; the
// filter gradient reducing over batch x 5 x 4).
inline const RegionCase kConvTiles = regionCase(
    "contraction",
    {{"%x", "tensor<?x6x11x9xf64>"}, {"%w", "tensor<132x3x3x3xf64>"}, {"%b", "tensor<132xf64>"}},
    R"(    %p = kiln.mul %x, %x : tensor<?x6x11x9xf64>
    %0 = kiln.conv2d %p, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<?x6x11x9xf64>, tensor<132x3x3x3xf64> -> tensor<?x132x5x4xf64>
    %1 = kiln.reshape %b : tensor<132xf64> -> tensor<1x132x1x1xf64>
    %2 = kiln.broadcast_to %1 : tensor<1x132x1x1xf64> -> tensor<?x132x5x4xf64>
    %3 = kiln.add %0, %2 : tensor<?x132x5x4xf64>
    %4 = kiln.tanh %3 : tensor<?x132x5x4xf64>
)",
    {"%4"}, "tensor<?x132x5x4xf64>");
inline const char* kConvGradTilesText = R"(
func.func @f(%x: tensor<?x6x12x9xf32>, %w: tensor<132x3x3x3xf32>, %gy: tensor<?x132x5x4xf32>) -> (tensor<?x6x12x9xf32>, tensor<132x3x3x3xf32>) {
  %0 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<?x132x5x4xf32>, tensor<132x3x3x3xf32> -> tensor<?x6x12x9xf32>
  %1 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 2>, groups = 2} : tensor<?x6x12x9xf32>, tensor<?x132x5x4xf32> -> tensor<132x3x3x3xf32>
  return %0, %1 : tensor<?x6x12x9xf32>, tensor<132x3x3x3xf32>
})";

// How many of the program's kernels have this shape ("gemm", "fill", "copy", "scatter-add", ...).
inline int kernelsOfShape(const Program& p, const std::string& shape) {
  return static_cast<int>(
      std::count_if(p.kernels.begin(), p.kernels.end(), [&](const KernelInfo& k) { return k.shape == shape; }));
}
inline bool hasKernelShape(const Program& p, const std::string& shape) { return kernelsOfShape(p, shape) > 0; }

// Layer norm's forward and backward (dx, dgamma, dbeta) as Chainer traces it, the row
// length D a parameter (`D` in the types): the row-wise chain is one kernel.
inline std::string layerNormGrad(int64_t d) {
  std::string text = R"(
func.func @f(%arg0: tensor<?xDxf64>, %arg1: tensor<Dxf64>, %arg2: tensor<Dxf64>, %arg3: tensor<?xDxf64>) -> (tensor<?xDxf64>, tensor<Dxf64>, tensor<Dxf64>, tensor<?xDxf64>, tensor<f64>, tensor<f64>) {
  %0 = kiln.constant dense<5.000000e-01> : tensor<f64>
  %1 = kiln.constant dense<1.000000e-05> : tensor<f64>
  %2 = kiln.constant dense<1.000000e+00> : tensor<f64>
  %3 = kiln.reduce_sum %arg0, [1] keepdims : tensor<?xDxf64> -> tensor<?x1xf64>
  %4 = kiln.dim_size %arg0, [1] : tensor<?xDxf64> -> tensor<f64>
  %5 = kiln.div %2, %4 : tensor<f64>
  %6 = kiln.broadcast_to %5 : tensor<f64> -> tensor<?x1xf64>
  %7 = kiln.mul %3, %6 : tensor<?x1xf64>
  %8 = kiln.broadcast_to %7 : tensor<?x1xf64> -> tensor<?xDxf64>
  %9 = kiln.sub %arg0, %8 : tensor<?xDxf64>
  %10 = kiln.mul %9, %9 : tensor<?xDxf64>
  %11 = kiln.reduce_sum %10, [1] keepdims : tensor<?xDxf64> -> tensor<?x1xf64>
  %12 = kiln.dim_size %10, [1] : tensor<?xDxf64> -> tensor<f64>
  %13 = kiln.div %2, %12 : tensor<f64>
  %14 = kiln.broadcast_to %13 : tensor<f64> -> tensor<?x1xf64>
  %15 = kiln.mul %11, %14 : tensor<?x1xf64>
  %16 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?x1xf64>
  %17 = kiln.add %15, %16 : tensor<?x1xf64>
  %18 = kiln.sqrt %17 : tensor<?x1xf64>
  %19 = kiln.broadcast_to %18 : tensor<?x1xf64> -> tensor<?xDxf64>
  %20 = kiln.div %9, %19 : tensor<?xDxf64>
  %21 = kiln.reshape %arg1 : tensor<Dxf64> -> tensor<1xDxf64>
  %22 = kiln.broadcast_to %21 : tensor<1xDxf64> -> tensor<?xDxf64>
  %23 = kiln.mul %20, %22 : tensor<?xDxf64>
  %24 = kiln.reshape %arg2 : tensor<Dxf64> -> tensor<1xDxf64>
  %25 = kiln.broadcast_to %24 : tensor<1xDxf64> -> tensor<?xDxf64>
  %26 = kiln.add %23, %25 : tensor<?xDxf64>
  %27 = kiln.mul %26, %arg3 : tensor<?xDxf64>
  %28 = kiln.reduce_sum %27, [0, 1] : tensor<?xDxf64> -> tensor<f64>
  %29 = kiln.reshape %2 : tensor<f64> -> tensor<1x1xf64>
  %30 = kiln.broadcast_to %29 : tensor<1x1xf64> -> tensor<?xDxf64>
  %31 = kiln.mul %30, %arg3 : tensor<?xDxf64>
  %32 = kiln.reduce_sum %31, [0] : tensor<?xDxf64> -> tensor<Dxf64>
  %33 = kiln.reshape %32 : tensor<Dxf64> -> tensor<1xDxf64>
  %34 = kiln.reshape %33 : tensor<1xDxf64> -> tensor<Dxf64>
  %35 = kiln.mul %31, %22 : tensor<?xDxf64>
  %36 = kiln.mul %31, %20 : tensor<?xDxf64>
  %37 = kiln.reduce_sum %36, [0] : tensor<?xDxf64> -> tensor<Dxf64>
  %38 = kiln.reshape %37 : tensor<Dxf64> -> tensor<1xDxf64>
  %39 = kiln.reshape %38 : tensor<1xDxf64> -> tensor<Dxf64>
  %40 = kiln.div %35, %19 : tensor<?xDxf64>
  %41 = kiln.mul %40, %20 : tensor<?xDxf64>
  %42 = kiln.neg %41 : tensor<?xDxf64>
  %43 = kiln.reduce_sum %42, [1] : tensor<?xDxf64> -> tensor<?xf64>
  %44 = kiln.reshape %43 : tensor<?xf64> -> tensor<?x1xf64>
  %45 = kiln.broadcast_to %0 : tensor<f64> -> tensor<?x1xf64>
  %46 = kiln.mul %44, %45 : tensor<?x1xf64>
  %47 = kiln.div %46, %18 : tensor<?x1xf64>
  %48 = kiln.mul %47, %14 : tensor<?x1xf64>
  %49 = kiln.broadcast_to %48 : tensor<?x1xf64> -> tensor<?xDxf64>
  %50 = kiln.mul %49, %9 : tensor<?xDxf64>
  %51 = kiln.add %40, %50 : tensor<?xDxf64>
  %52 = kiln.add %51, %50 : tensor<?xDxf64>
  %53 = kiln.neg %52 : tensor<?xDxf64>
  %54 = kiln.reduce_sum %53, [1] : tensor<?xDxf64> -> tensor<?xf64>
  %55 = kiln.reshape %54 : tensor<?xf64> -> tensor<?x1xf64>
  %56 = kiln.mul %55, %6 : tensor<?x1xf64>
  %57 = kiln.broadcast_to %56 : tensor<?x1xf64> -> tensor<?xDxf64>
  %58 = kiln.add %52, %57 : tensor<?xDxf64>
  return %58, %39, %34, %26, %28, %2 : tensor<?xDxf64>, tensor<Dxf64>, tensor<Dxf64>, tensor<?xDxf64>, tensor<f64>, tensor<f64>
}
)";
  for (size_t at; (at = text.find('D')) != std::string::npos;) text.replace(at, 1, std::to_string(d));
  return text;
}

// Row-wise softmax and log_softmax over rows of D.
inline std::string softmaxRows(int64_t d) {
  std::string text = R"(
func.func @f(%x: tensor<?xDxf32>) -> (tensor<?xDxf32>, tensor<?xDxf32>) {
  %0 = kiln.reduce_max %x, [1] keepdims : tensor<?xDxf32> -> tensor<?x1xf32>
  %1 = kiln.broadcast_to %0 : tensor<?x1xf32> -> tensor<?xDxf32>
  %2 = kiln.sub %x, %1 : tensor<?xDxf32>
  %3 = kiln.exp %2 : tensor<?xDxf32>
  %4 = kiln.reduce_sum %3, [1] keepdims : tensor<?xDxf32> -> tensor<?x1xf32>
  %5 = kiln.broadcast_to %4 : tensor<?x1xf32> -> tensor<?xDxf32>
  %6 = kiln.div %3, %5 : tensor<?xDxf32>
  %7 = kiln.log %4 : tensor<?x1xf32>
  %8 = kiln.broadcast_to %7 : tensor<?x1xf32> -> tensor<?xDxf32>
  %9 = kiln.sub %2, %8 : tensor<?xDxf32>
  return %6, %9 : tensor<?xDxf32>, tensor<?xDxf32>
})";
  for (size_t at; (at = text.find('D')) != std::string::npos;) text.replace(at, 1, std::to_string(d));
  return text;
}

// softmax_cross_entropy over D classes as the frontend traces it (row-wise.mlir): the loss
// and the label check's status; with `grad`, also dx, the loss's seed and the constant 1.
inline std::string softmaxCrossEntropy(int64_t d, bool grad) {
  const char* loss = R"(
  %0 = kiln.constant dense<1.000000e+00> : tensor<f64>
  %1 = kiln.constant dense<0.000000e+00> : tensor<f64>
  %2 = kiln.constant dense<-1> : tensor<i32>
  %result, %status = kiln.check_range %arg0, limit = D, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<?xi32>
  %3 = kiln.broadcast_to %2 : tensor<i32> -> tensor<?xi32>
  %4 = kiln.compare "ne", %result, %3 : tensor<?xi32>
  %5 = kiln.iota dim = 1 : tensor<?xDxi32>
  %6 = kiln.reshape %result : tensor<?xi32> -> tensor<?x1xi32>
  %7 = kiln.broadcast_to %6 : tensor<?x1xi32> -> tensor<?xDxi32>
  %8 = kiln.compare "eq", %5, %7 : tensor<?xDxi32>
  %9 = kiln.reduce_max %arg1, [1] keepdims : tensor<?xDxf64> -> tensor<?x1xf64>
  %10 = kiln.broadcast_to %9 : tensor<?x1xf64> -> tensor<?xDxf64>
  %11 = kiln.sub %arg1, %10 : tensor<?xDxf64>
  %12 = kiln.exp %11 : tensor<?xDxf64>
  %13 = kiln.reduce_sum %12, [1] keepdims : tensor<?xDxf64> -> tensor<?x1xf64>
  %14 = kiln.log %13 : tensor<?x1xf64>
  %15 = kiln.broadcast_to %14 : tensor<?x1xf64> -> tensor<?xDxf64>
  %16 = kiln.sub %11, %15 : tensor<?xDxf64>
  %17 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?xDxf64>
  %18 = kiln.select %8, %16, %17 : tensor<?xDxi1>, tensor<?xDxf64>
  %19 = kiln.reduce_sum %18, [1] : tensor<?xDxf64> -> tensor<?xf64>
  %20 = kiln.neg %19 : tensor<?xf64>
  %21 = kiln.broadcast_to %1 : tensor<f64> -> tensor<?xf64>
  %22 = kiln.select %4, %20, %21 : tensor<?xi1>, tensor<?xf64>
  %23 = kiln.reduce_sum %22, [0] : tensor<?xf64> -> tensor<f64>
  %24 = kiln.cast %4 : tensor<?xi1> -> tensor<?xf64>
  %25 = kiln.reduce_sum %24, [0] : tensor<?xf64> -> tensor<f64>
  %26 = kiln.max %25, %0 : tensor<f64>
  %27 = kiln.div %23, %26 : tensor<f64>
)";
  std::string text = grad ? R"(
func.func @f(%arg0: tensor<?xi32>, %arg1: tensor<?xDxf64>, %arg2: tensor<f64>) -> (tensor<?xDxf64>, tensor<f64>, tensor<f64>, tensor<f64>, tensor<2xi64>) {)" +
                                std::string(loss) + R"(
  %28 = kiln.mul %27, %arg2 : tensor<f64>
  %29 = kiln.reduce_sum %28, [] : tensor<f64> -> tensor<f64>
  %30 = kiln.mul %0, %arg2 : tensor<f64>
  %31 = kiln.div %30, %26 : tensor<f64>
  %32 = kiln.reshape %31 : tensor<f64> -> tensor<1xf64>
  %33 = kiln.broadcast_to %32 : tensor<1xf64> -> tensor<?xf64>
  %34 = kiln.select %4, %33, %21 : tensor<?xi1>, tensor<?xf64>
  %35 = kiln.neg %34 : tensor<?xf64>
  %36 = kiln.reshape %35 : tensor<?xf64> -> tensor<?x1xf64>
  %37 = kiln.broadcast_to %36 : tensor<?x1xf64> -> tensor<?xDxf64>
  %38 = kiln.select %8, %37, %17 : tensor<?xDxi1>, tensor<?xDxf64>
  %39 = kiln.neg %38 : tensor<?xDxf64>
  %40 = kiln.reduce_sum %39, [1] : tensor<?xDxf64> -> tensor<?xf64>
  %41 = kiln.reshape %40 : tensor<?xf64> -> tensor<?x1xf64>
  %42 = kiln.div %41, %13 : tensor<?x1xf64>
  %43 = kiln.broadcast_to %42 : tensor<?x1xf64> -> tensor<?xDxf64>
  %44 = kiln.mul %43, %12 : tensor<?xDxf64>
  %45 = kiln.add %38, %44 : tensor<?xDxf64>
  %46 = kiln.neg %45 : tensor<?xDxf64>
  %47 = kiln.reduce_sum %46, [1] : tensor<?xDxf64> -> tensor<?xf64>
  %48 = kiln.reshape %47 : tensor<?xf64> -> tensor<?x1xf64>
  %49 = kiln.broadcast_to %48 : tensor<?x1xf64> -> tensor<?xDxf64>
  %50 = kiln.compare "eq", %arg1, %10 : tensor<?xDxf64>
  %51 = kiln.select %50, %49, %17 : tensor<?xDxi1>, tensor<?xDxf64>
  %52 = kiln.add %45, %51 : tensor<?xDxf64>
  return %52, %27, %29, %0, %status : tensor<?xDxf64>, tensor<f64>, tensor<f64>, tensor<f64>, tensor<2xi64>
})"
                          : R"(
func.func @f(%arg0: tensor<?xi32>, %arg1: tensor<?xDxf64>) -> (tensor<f64>, tensor<2xi64>) {)" + std::string(loss) + R"(
  return %27, %status : tensor<f64>, tensor<2xi64>
})";
  for (size_t at; (at = text.find('D')) != std::string::npos;) text.replace(at, 1, std::to_string(d));
  return text;
}

}  // namespace kiln::cuda::testing
