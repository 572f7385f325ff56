// kiln-opt: mlir-opt with the kiln dialect and kiln's passes registered.
#include "kiln/codegen/cpu.h"
#include "kiln/codegen/cuda.h"
#include "kiln/ir/KilnDialect.h"
#include "kiln/passes/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char** argv) {
  mlir::registerTransformsPasses();  // canonicalize, cse, ...
  kiln::passes::registerKilnPipelines();
  kiln::cpu::registerCpuPipelines();
  kiln::cuda::registerCudaPasses();  // -kiln-emit-cuda
  mlir::DialectRegistry registry;
  registry.insert<kiln::ir::KilnDialect, mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::linalg::LinalgDialect, mlir::math::MathDialect, mlir::scf::SCFDialect,
                  mlir::tensor::TensorDialect>();
  kiln::cpu::registerCpuDialects(registry);
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
