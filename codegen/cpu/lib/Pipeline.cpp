// The pass pipeline `kiln-lower-to-llvm`: linalg on tensors to the LLVM dialect.
#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "kiln/codegen/cpu.h"
#include "kiln/env.h"
#include "kiln/error.h"
#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/BufferizationToMemRef/BufferizationToMemRef.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/OpenMPToLLVM/ConvertOpenMPToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/SCFToOpenMP/SCFToOpenMP.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Conversion/VectorToSCF/VectorToSCF.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/ControlFlow/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/AllInterfaces.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/AllocationOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/Transforms/SubsetInsertionOpInterfaceImpl.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Vector/Transforms/SubsetOpInterfaceImpl.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

namespace kiln::cpu {

#define GEN_PASS_REGISTRATION
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

// Gives every tensor a function returns its own value before bufferization: a value
// returned twice (CSE merges equal results, e.g. the gradients of two biases added into
// one pre-activation) or a constant gets a copy, so results-to-out-params (which hoists a
// result's allocation into its out-param) never sees one buffer for two out-params.
struct UniqueReturnValues : mlir::PassWrapper<UniqueReturnValues, mlir::OperationPass<mlir::func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(UniqueReturnValues)
  llvm::StringRef getArgument() const override { return "kiln-unique-return-values"; }
  void runOnOperation() override {
    getOperation().walk([](mlir::func::ReturnOp ret) {
      llvm::SmallPtrSet<mlir::Value, 16> seen;
      mlir::OpBuilder b(ret);
      for (mlir::OpOperand& operand : ret->getOpOperands()) {
        mlir::Value v = operand.get();
        auto type = mlir::dyn_cast<mlir::RankedTensorType>(v.getType());
        mlir::Operation* def = v.getDefiningOp();
        bool constant = def && def->hasTrait<mlir::OpTrait::ConstantLike>();
        if (!type || (seen.insert(v).second && !constant)) continue;
        llvm::SmallVector<mlir::Value> dynamic;
        for (int64_t i = 0; i < type.getRank(); ++i)
          if (type.isDynamicDim(i)) dynamic.push_back(mlir::tensor::DimOp::create(b, ret.getLoc(), v, i));
        mlir::Value empty =
            mlir::tensor::EmptyOp::create(b, ret.getLoc(), type.getShape(), type.getElementType(), dynamic);
        operand.set(mlir::linalg::CopyOp::create(b, ret.getLoc(), v, empty).getResult(0));
      }
    });
  }
};

// -llvm-request-c-wrappers for public functions only: the private ones
// (-kiln-outline-kernels' runs) are called from their module alone.
struct RequestPublicCWrappers
    : mlir::PassWrapper<RequestPublicCWrappers, mlir::OperationPass<mlir::func::FuncOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(RequestPublicCWrappers)
  llvm::StringRef getArgument() const override { return "kiln-request-public-c-wrappers"; }
  void runOnOperation() override {
    if (getOperation().isPrivate() && !getOperation().isExternal()) return;
    getOperation()->setAttr(mlir::LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                            mlir::UnitAttr::get(&getContext()));
  }
};

// Whether -kiln-tile-matmuls runs (and the loop and vector passes its kernels need).
bool generatesMatmuls(const PipelineOptions& options) { return !options.gemm_blas || options.generate_matmuls; }

void addBufferizationPasses(mlir::OpPassManager& pm) {
  pm.addNestedPass<mlir::func::FuncOp>(std::make_unique<UniqueReturnValues>());
  mlir::bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion = mlir::bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(mlir::bufferization::createOneShotBufferizePass(bufferize));
  // Results become caller-provided buffers; a static result allocation is
  // replaced by the out-param itself, so outputs are written in place.
  // (A static allocation is replaced by the out-param only when memref.alloc
  // has its AllocationOpInterface model: see registerCpuDialects.)
  mlir::bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  outParams.modifyPublicFunctions = true;
  pm.addPass(mlir::bufferization::createBufferResultsToOutParamsPass(outParams));
  // Dynamically sized (batch) results too are written straight into their out-params.
  pm.addNestedPass<mlir::func::FuncOp>(createKilnWriteResultsInPlace());
  // The remaining intermediate buffers: one arena per call, shared by lifetime.
  pm.addNestedPass<mlir::func::FuncOp>(createKilnPlanBuffers());
  pm.addPass(mlir::createCanonicalizerPass());
  mlir::bufferization::BufferDeallocationPipelineOptions dealloc;
  mlir::bufferization::buildBufferDeallocationPipeline(pm, dealloc);
  pm.addPass(mlir::createConvertBufferizationToMemRefPass());
}

void addLoopPasses(mlir::OpPassManager& pm, const PipelineOptions& options) {
  pm.addNestedPass<mlir::func::FuncOp>(createKilnLowerStridedCopies());
  if (generatesMatmuls(options)) {
    // The tiled matmuls of -kiln-tile-matmuls: their scf.forall over output blocks
    // becomes a parallel loop (threads below), their 2-D vector transfers 1-D ones.
    pm.addNestedPass<mlir::func::FuncOp>(mlir::createForallToParallelLoopPass());
    pm.addNestedPass<mlir::func::FuncOp>(
        mlir::createConvertVectorToSCFPass(mlir::VectorTransferToSCFOptions().enableFullUnroll()));
  }
  // Float reductions along the innermost dimension: vector accumulators (LLVM adds a
  // scalar loop's floats one at a time).
  KilnVectorizeReductionsOptions reductions;
  reductions.vectorBits = options.vector_bits;
  pm.addNestedPass<mlir::func::FuncOp>(createKilnVectorizeReductions(reductions));
  pm.addNestedPass<mlir::func::FuncOp>(mlir::createConvertLinalgToParallelLoopsPass());
  KilnSequentializeSmallLoopsOptions sequentialize;
  sequentialize.minParallelWork = options.parallel ? options.min_parallel_work : INT64_MAX;
  pm.addNestedPass<mlir::func::FuncOp>(createKilnSequentializeSmallLoops(sequentialize));
  if (options.parallel) {
    pm.addPass(mlir::createConvertSCFToOpenMPPass());
    // Inlines the memref.alloca_scope that scf-to-openmp wraps loop bodies in.
    pm.addPass(mlir::createCanonicalizerPass());
  }
  pm.addPass(mlir::createLowerAffinePass());
  pm.addPass(mlir::createSCFToControlFlowPass());
}

void addLLVMConversionPasses(mlir::OpPassManager& pm, const PipelineOptions& options) {
  pm.addNestedPass<mlir::func::FuncOp>(std::make_unique<RequestPublicCWrappers>());
  pm.addPass(mlir::memref::createExpandStridedMetadataPass());
  pm.addPass(mlir::createLowerAffinePass());
  pm.addPass(mlir::createFinalizeMemRefToLLVMConversionPass());
  mlir::ConvertMathToLLVMPassOptions math;
  math.approximateLog1p = false;  // log1p/erf/tanh... go to libm instead
  pm.addPass(mlir::createConvertMathToLLVMPass(math));
  pm.addPass(mlir::createConvertMathToLibmPass());
  // Vector ops: the generated matmuls' and -kiln-vectorize-reductions' loops, and the
  // lane extracts math-to-libm makes of a vector log1p or erf.
  pm.addPass(mlir::createConvertVectorToLLVMPass());
  pm.addPass(mlir::createUBToLLVMConversionPass());
  pm.addPass(mlir::createArithToLLVMConversionPass());
  pm.addPass(mlir::createConvertControlFlowToLLVMPass());
  pm.addPass(mlir::createConvertFuncToLLVMPass());
  pm.addPass(mlir::createConvertOpenMPToLLVMPass());
  pm.addPass(mlir::createReconcileUnrealizedCastsPass());
  // Bottom-up: the same result as the default top-down order here, in a fifth of the
  // time on a graph of thousands of OpenMP loops (0.8 s instead of 4.7 s at 35 LSTM steps).
  pm.addPass(mlir::createCanonicalizerPass(mlir::GreedyRewriteConfig().setUseTopDownTraversal(false)));
}

bool openmpRuntimeAvailable() {
  static const bool available = dlopen("libomp.so.5", RTLD_LAZY | RTLD_GLOBAL) != nullptr ||
                                dlopen("libomp.so", RTLD_LAZY | RTLD_GLOBAL) != nullptr;
  return available;
}

}  // namespace

void buildLowerToLLVMPipeline(mlir::OpPassManager& pm, const PipelineOptions& options) {
  pm.addNestedPass<mlir::func::FuncOp>(createKilnCopyRepeatedResults());
  pm.addNestedPass<mlir::func::FuncOp>(createKilnGeneralizeNamedOps());
  pm.addNestedPass<mlir::func::FuncOp>(createKilnFuseElementwise());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  pm.addNestedPass<mlir::func::FuncOp>(createKilnCloneSharedFills());
  pm.addNestedPass<mlir::func::FuncOp>(createKilnWidenBoolBuffers());
  if (generatesMatmuls(options)) {
    KilnTileMatmulsOptions tiles;
    tiles.vectorBits = options.vector_bits;
    tiles.vectorRegisters = options.vector_registers;
    tiles.fuseEpilogues = options.fuse_epilogues;
    tiles.fuseUpdateEpilogues = options.fuse_update_epilogues;
    pm.addNestedPass<mlir::func::FuncOp>(createKilnTileMatmuls(tiles));
    KilnVectorizeTransposesOptions transposes;
    transposes.vectorBits = options.vector_bits;
    pm.addNestedPass<mlir::func::FuncOp>(createKilnVectorizeTransposes(transposes));
  }
  // kiln.collective_start: a runtime call right after its bucket; only on out-params.
  pm.addPass(createKilnStartCollectives());
  addBufferizationPasses(pm);
  pm.addNestedPass<mlir::func::FuncOp>(createKilnDonateBuffers());
  pm.addNestedPass<mlir::func::FuncOp>(createKilnCheckCollectiveBuffers());
  if (options.profile) pm.addPass(createKilnProfileKernels());
  if (options.gemm_blas) pm.addPass(createKilnMatmulToBlas());
  if (options.outline_kernels) {
    KilnOutlineKernelsOptions outline;
    outline.mergeKernels = options.merge_kernels;
    pm.addPass(createKilnOutlineKernels(outline));
  }
  addLoopPasses(pm, options);
  addLLVMConversionPasses(pm, options);
}

PipelineOptions default_pipeline_options() {
  PipelineOptions options;
  if (env::num_threads() == 1) options.parallel = false;
  if (!openmpRuntimeAvailable()) options.parallel = false;
  if (std::string choice = env::get_string("KILN_GEMM"); !choice.empty()) {
    if (choice == "codegen")
      options.gemm_blas = false;
    else if (choice == "blas")
      options.gemm_blas = true;
    else
      throw Error("kiln: KILN_GEMM must be 'blas' or 'codegen', not '" + choice + "'");
  } else {
    // The default per target, measured (bench/RESULTS.md, 2026-12-02 03:10): with AVX-512
    // the generated GEMM beats OpenBLAS (whose Haswell kernels Debian's build runs there)
    // on the MLP's GEMMs and steps, so its matmuls are generated; convolutions, pooling
    // gradients and matmuls it does not tile stay calls. Elsewhere (AVX2) OpenBLAS.
    options.generate_matmuls = host_vector_shape().bits >= 512;
  }
  options.fuse_epilogues = env::get_flag("KILN_FUSE_EPILOGUES", options.fuse_epilogues);
  options.fuse_update_epilogues = env::get_flag("KILN_FUSE_EPILOGUES", options.fuse_update_epilogues);
  // KILN_PROFILE: 1 (report on stderr) or a file path; unset, empty or 0: off.
  std::string profile = env::get_string("KILN_PROFILE");
  options.profile = !profile.empty() && env::parse_flag("KILN_PROFILE", profile.c_str(), true).value;
  return options;
}

std::string pipeline_environment() {
  std::string text = "KILN_NUM_THREADS=";
  text += env::get_string("KILN_NUM_THREADS");
  text += ";KILN_GEMM=";
  text += env::get_string("KILN_GEMM");
  text += ";KILN_PROFILE=";
  text += env::get_string("KILN_PROFILE");
  text += ";KILN_FUSE_EPILOGUES=";
  text += env::get_string("KILN_FUSE_EPILOGUES");
  text += ";KILN_CPU_CAPABILITY=";
  text += env::get_string("KILN_CPU_CAPABILITY");
  return text;
}

void registerCpuDialects(mlir::DialectRegistry& registry) {
  registry.insert<mlir::affine::AffineDialect, mlir::arith::ArithDialect,
                  mlir::bufferization::BufferizationDialect, mlir::cf::ControlFlowDialect,
                  mlir::func::FuncDialect, mlir::linalg::LinalgDialect, mlir::LLVM::LLVMDialect,
                  mlir::math::MathDialect, mlir::memref::MemRefDialect, mlir::omp::OpenMPDialect,
                  mlir::scf::SCFDialect, mlir::tensor::TensorDialect, mlir::vector::VectorDialect>();
  mlir::arith::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::arith::registerBufferDeallocationOpInterfaceExternalModels(registry);
  mlir::cf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  mlir::bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::linalg::registerAllDialectInterfaceImplementations(registry);
  mlir::memref::registerAllocationOpInterfaceExternalModels(registry);
  mlir::scf::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::scf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  mlir::tensor::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::tensor::registerSubsetOpInterfaceExternalModels(registry);
  mlir::vector::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::vector::registerSubsetOpInterfaceExternalModels(registry);
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  mlir::registerOpenMPDialectTranslation(registry);
}

namespace {
struct LowerToLLVMPipelineOptions : mlir::PassPipelineOptions<LowerToLLVMPipelineOptions> {
  Option<bool> parallel{*this, "parallel", llvm::cl::desc("Run large loops on OpenMP threads"),
                        llvm::cl::init(true)};
  Option<int64_t> minParallelWork{*this, "min-parallel-work",
                                  llvm::cl::desc("See -kiln-sequentialize-small-loops"),
                                  llvm::cl::init(PipelineOptions{}.min_parallel_work)};
  Option<bool> gemmBlas{*this, "gemm-blas",
                        llvm::cl::desc("Matmuls call kiln's BLAS runtime functions (-kiln-matmul-to-blas)"),
                        llvm::cl::init(PipelineOptions{}.gemm_blas)};
  Option<bool> generateMatmuls{*this, "generate-matmuls",
                               llvm::cl::desc("With gemm-blas: matmuls -kiln-tile-matmuls takes are generated"),
                               llvm::cl::init(PipelineOptions{}.generate_matmuls)};
  Option<int64_t> vectorBits{*this, "vector-bits",
                             llvm::cl::desc("See -kiln-tile-matmuls (0: the host CPU's)"), llvm::cl::init(0)};
  Option<int64_t> vectorRegisters{*this, "vector-registers",
                                  llvm::cl::desc("See -kiln-tile-matmuls (0: the host CPU's)"), llvm::cl::init(0)};
  Option<bool> mergeKernels{*this, "merge-kernels", llvm::cl::desc("See -kiln-outline-kernels"),
                            llvm::cl::init(PipelineOptions{}.merge_kernels)};
  Option<bool> fuseEpilogues{*this, "fuse-epilogues", llvm::cl::desc("See -kiln-tile-matmuls"),
                             llvm::cl::init(PipelineOptions{}.fuse_epilogues)};
  Option<bool> fuseUpdateEpilogues{*this, "fuse-update-epilogues", llvm::cl::desc("See -kiln-tile-matmuls"),
                                   llvm::cl::init(PipelineOptions{}.fuse_update_epilogues)};
};
}  // namespace

void registerCpuPipelines() {
  registerKilnCpuPasses();
  mlir::PassPipelineRegistration<LowerToLLVMPipelineOptions>(
      "kiln-lower-to-llvm",
      "linalg on tensors to the LLVM dialect: fuse, bufferize (results as out-params), "
      "matmuls to BLAS calls, loops, OpenMP, LLVM",
      [](mlir::OpPassManager& pm, const LowerToLLVMPipelineOptions& options) {
        PipelineOptions pipeline;
        pipeline.parallel = options.parallel;
        pipeline.min_parallel_work = options.minParallelWork;
        pipeline.gemm_blas = options.gemmBlas;
        pipeline.generate_matmuls = options.generateMatmuls;
        pipeline.vector_bits = options.vectorBits;
        pipeline.vector_registers = options.vectorRegisters;
        pipeline.merge_kernels = options.mergeKernels;
        pipeline.fuse_epilogues = options.fuseEpilogues;
        pipeline.fuse_update_epilogues = options.fuseUpdateEpilogues;
        buildLowerToLLVMPipeline(pm, pipeline);
      });
}

}  // namespace kiln::cpu
