// -kiln-vectorize-transposes: a static 2-d linalg.transpose on f32/f64 tensors (the
// generated GEMM's copy of a B read across its rows, x W^T) becomes square tiles of
// one vector register's lanes (16x16 f32 with AVX-512, 8x8 with AVX2), each a
// vector.transpose of registers (AVX-512 f32: the 16x16 shuffle network; else one
// shuffle), instead of scalar loops moving one element at a time with strided loads.
// Ragged edges (sizes no multiple of the lanes) stay loops. Runs on tensors, after
// -kiln-tile-matmuls.
#include "kiln/codegen/cpu.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Dialect/X86Vector/Transforms.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNVECTORIZETRANSPOSES
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// Elements of one vector register for `elem`, if a transpose of `op` can use tiles of
// that many rows and columns: 2-d, static, f32/f64, both sizes at least one tile.
std::optional<int64_t> tileLanes(linalg::TransposeOp op, int64_t vectorBits) {
  if (!op.hasPureTensorSemantics()) return std::nullopt;
  auto type = dyn_cast<RankedTensorType>(op.getInput().getType());
  if (!type || type.getRank() != 2 || !type.hasStaticShape()) return std::nullopt;
  Type elem = type.getElementType();
  if (!elem.isF32() && !elem.isF64()) return std::nullopt;
  int64_t lanes = vectorBits / elem.getIntOrFloatBitWidth();
  if (lanes < 2 || type.getDimSize(0) < lanes || type.getDimSize(1) < lanes) return std::nullopt;
  return lanes;
}

struct VectorizeTransposesPass : impl::KilnVectorizeTransposesBase<VectorizeTransposesPass> {
  using Base::Base;
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    MLIRContext* ctx = &getContext();
    int64_t bits = vectorBits > 0 ? vectorBits : host_vector_shape().bits;
    SmallVector<std::pair<linalg::TransposeOp, int64_t>> work;
    func.walk([&](linalg::TransposeOp op) {
      if (auto lanes = tileLanes(op, bits)) work.push_back({op, *lanes});
    });
    if (work.empty()) return;

    IRRewriter rewriter(ctx);
    for (auto& [op, lanes] : work) {
      scf::SCFTilingOptions options;
      options.setTileSizes({rewriter.getIndexAttr(lanes), rewriter.getIndexAttr(lanes)});
      options.setLoopType(scf::SCFTilingOptions::LoopType::ForOp);
      rewriter.setInsertionPoint(op);
      FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(rewriter, cast<TilingInterface>(op.getOperation()), options);
      if (failed(tiled)) {
        op->emitError("kiln-vectorize-transposes: tiling failed");
        return signalPassFailure();
      }
      rewriter.replaceOp(op, tiled->replacements);
    }
    // Full tiles get static types; the ragged ones keep dynamic sizes (loops later).
    {
      RewritePatternSet patterns(ctx);
      tensor::ExtractSliceOp::getCanonicalizationPatterns(patterns, ctx);
      tensor::InsertSliceOp::getCanonicalizationPatterns(patterns, ctx);
      tensor::CastOp::getCanonicalizationPatterns(patterns, ctx);
      affine::AffineMinOp::getCanonicalizationPatterns(patterns, ctx);
      affine::AffineApplyOp::getCanonicalizationPatterns(patterns, ctx);
      ctx->getLoadedDialect<linalg::LinalgDialect>()->getCanonicalizationPatterns(patterns);
      if (failed(applyPatternsGreedily(func, std::move(patterns)))) return signalPassFailure();
    }
    SmallVector<linalg::TransposeOp> tiles;
    func.walk([&](linalg::TransposeOp op) {
      auto type = dyn_cast<RankedTensorType>(op.getInput().getType());
      if (op.hasPureTensorSemantics() && type && type.getRank() == 2 && type.hasStaticShape() &&
          type.getDimSize(0) == type.getDimSize(1) && type.getDimSize(0) * type.getElementTypeBitWidth() == bits)
        tiles.push_back(op);
    });
    for (linalg::TransposeOp tile : tiles) {
      rewriter.setInsertionPoint(tile);
      FailureOr<linalg::VectorizationResult> vectorized = linalg::vectorize(rewriter, tile);
      if (failed(vectorized)) continue;  // stays a (small) loop nest
      rewriter.replaceOp(tile, vectorized->replacements);
    }
    // 16x16 f32 tiles: AVX-512's unpack/shuffle network; 8x8 f32: AVX2's; other
    // sizes (f64): one shuffle, which LLVM's x86 backend lowers to permutes.
    RewritePatternSet patterns(ctx);
    if (bits == 256)
      x86vector::avx2::populateSpecializedTransposeLoweringPatterns(
          patterns, x86vector::avx2::LoweringOptions().setTransposeOptions(
                        x86vector::avx2::TransposeLoweringOptions().lower8x8xf32()));
    vector::VectorTransposeLowering lowering = bits == 512 ? vector::VectorTransposeLowering::Shuffle16x16
                                                           : vector::VectorTransposeLowering::Shuffle1D;
    vector::populateVectorTransposeLoweringPatterns(patterns, lowering);
    vector::populateVectorTransferPermutationMapLoweringPatterns(patterns);
    vector::populateVectorShapeCastLoweringPatterns(patterns);
    if (failed(applyPatternsGreedily(func, std::move(patterns)))) return signalPassFailure();
  }
};

}  // namespace
}  // namespace kiln::cpu
