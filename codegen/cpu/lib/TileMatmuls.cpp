// -kiln-tile-matmuls: linalg.matmul / linalg.batch_matmul on static f32/f64 tensors become
// cache-tiled (scf.forall over output tiles, scf.for over k), register-tiled and vectorized
// loops whose inner kernel is a grid of vector FMAs on an accumulator held in registers.
// A matmul's elementwise epilogue (its kiln.fusion region's bias add, activation, relu
// mask, optimizer update) is fused into the output blocks: applied to each block right
// after its last k panel, while it is in cache, not as a second pass over the output.
// Used by KILN_GEMM=codegen; runs on tensors, before bufferization.
#include <algorithm>
#include <optional>

#include "kiln/codegen/cpu.h"
#include "kiln/env.h"
#include "kiln/error.h"
#include "kiln/passes/LibraryCalls.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/LoweringPatterns.h"
#include "mlir/Dialect/Vector/Transforms/VectorRewritePatterns.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/LoopInvariantCodeMotionUtils.h"
#include "llvm/TargetParser/Host.h"

namespace kiln::cpu {

#define GEN_PASS_DEF_KILNTILEMATMULS
#include "kiln/codegen/CpuPasses.h.inc"

namespace {

using namespace mlir;

// Tile sizes per loop dim of the op ([batch,] m, n, k).
struct MatmulTiles {
  SmallVector<int64_t> cache;     // forall tiles: batch 1, m, n; k 0
  SmallVector<int64_t> kcache;    // scf.for over k
  SmallVector<int64_t> registers; // the vectorized kernel: batch 1, mr, nr, 1
  // m is dynamic (the symbolic batch size): the register loop over m is
  // peeled, full mr-row tiles are vectorized and the last partial one is not.
  bool peelRows = false;
  bool packA = false;  // A read down its columns (gy^T x): packed into mr-wide strips
  bool packB = true;   // B packed into nr-wide strips where its form allows (packOperand)
  int64_t depth = ShapedType::kDynamic;  // k
};

// Largest multiple of `step` that divides `size` and is at most max(cap, step).
int64_t divisorTile(int64_t size, int64_t step, int64_t cap) {
  for (int64_t t = std::max(cap / step, int64_t(1)) * step; t >= step; t -= step)
    if (size % t == 0) return t;
  return step;
}

bool isPlainMatmulMaps(linalg::LinalgOp op, bool batched) {
  // Every map a projected permutation (plain or transposed operands, no broadcasts),
  // and the result map the identity on [batch,] m, n.
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps.size() != 3) return false;
  unsigned rank = batched ? 3 : 2;
  for (AffineMap m : maps)
    if (!m.isProjectedPermutation() || m.getNumResults() != rank) return false;
  return maps[2] == AffineMap::getMultiDimIdentityMap(rank + 1, op->getContext()).getMajorSubMap(rank);
}

// The register tile for vectors of `lanes` elements and `registers` vector registers:
// nr two vectors when they divide n, else one, else n itself when it is at most two
// vectors, and as many rows as fit (at most 8): mr * nr/lanes accumulators + nr/lanes
// for B's row + 1 for the broadcast element of A <= registers. The width with the most
// accumulator vectors wins (the first on ties): 8x32 f32 with AVX-512 (32 x 512 bits),
// 6x16 with AVX2 (16 x 256 bits). No three-vector rows: LLVM splits a vector<48xf32>
// FMA into odd pieces and spills (2.6 GFLOP/s at 8x48 on AVX-512). The rows of a static
// m that mr does not divide are peeled like a dynamic m's: full mr-row tiles, then the
// rest a row at a time. A wider n that is no multiple of two vectors was split first
// (columnSplit).
struct RegisterTile {
  int64_t mr, nr;
  bool peel;
};
std::optional<RegisterTile> chooseRegisterTile(int64_t m, int64_t n, bool dynamicRows, int64_t lanes,
                                               int64_t registers) {
  auto vectorsOf = [&](int64_t nr) { return (nr + lanes - 1) / lanes; };
  SmallVector<int64_t> widths;
  for (int64_t c : {2 * lanes, lanes})
    if (c <= n && n % c == 0) widths.push_back(c);
  if (widths.empty() && n <= 2 * lanes) widths.push_back(n);
  if (widths.empty()) return std::nullopt;  // awkward: keep the plain loops
  std::optional<RegisterTile> best;
  for (int64_t nr : widths) {
    int64_t v = vectorsOf(nr);
    int64_t rows = std::clamp((registers - 1 - v) / v, int64_t(1), int64_t(8));
    if (!dynamicRows && m <= rows) rows = m;
    if (!best || rows * v > best->mr * vectorsOf(best->nr))
      best = RegisterTile{rows, nr, dynamicRows || m % rows != 0};
  }
  return best;
}

// A matmul (or batch_matmul) the generated GEMM handles: f32/f64 tensors, plain or
// transposed operands, a static n; its loop ranges ([batch,] m, n, k).
struct MatmulShape {
  bool batched;
  int64_t m, n, k;
  int64_t lanes;  // elements per vector register
};
std::optional<MatmulShape> matmulShape(linalg::LinalgOp op, int64_t vectorBits) {
  bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
  if (!isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op.getOperation())) return std::nullopt;
  if (!op.hasPureTensorSemantics()) return std::nullopt;
  if (op->getNumResults() != 1) return std::nullopt;
  Type elem = getElementTypeOrSelf(op->getResult(0).getType());
  if (!elem.isF32() && !elem.isF64()) return std::nullopt;
  for (Value v : op->getOperands())
    if (getElementTypeOrSelf(v.getType()) != elem) return std::nullopt;
  if (!isPlainMatmulMaps(op, batched)) return std::nullopt;
  SmallVector<int64_t> ranges = op.getStaticLoopRanges();
  unsigned first = batched ? 1 : 0;
  if (ranges.size() != first + 3) return std::nullopt;
  int64_t m = ranges[first], n = ranges[first + 1], k = ranges[first + 2];
  // The batch, the rows (m) and the reduction (k) may be dynamic (the
  // symbolic batch size: x W^T, gy W and gy^T x of a training step); n not.
  if (ShapedType::isDynamic(n)) return std::nullopt;
  if ((!ShapedType::isDynamic(m) && m <= 0) || n <= 0 || (!ShapedType::isDynamic(k) && k <= 0))
    return std::nullopt;
  int64_t lanes = std::max<int64_t>(vectorBits / elem.getIntOrFloatBitWidth(), 1);
  return MatmulShape{batched, m, n, k, lanes};
}

// Where to split the columns of a matmul whose n is wider than two vectors but no
// multiple of two (1000 = 31 x 32 + 8 f32 with AVX-512, 784 = 24 x 32 + 16, 100 =
// 6 x 16 + 4 with AVX2): at the last multiple of two vectors, so the first part has
// two-vector register tiles and the rest (fewer than two vectors) is a matmul of its
// own, one tile wide. Without the split the tile would be one vector (784: 8
// accumulators, half the FMA rate) or an odd divisor of n (25 for 1000 and 100: rows
// of two or more vectors with a ragged end, ~20x slower). Nothing for other matmuls.
std::optional<int64_t> columnSplit(linalg::LinalgOp op, int64_t vectorBits) {
  std::optional<MatmulShape> shape = matmulShape(op, vectorBits);
  if (!shape) return std::nullopt;
  int64_t n = shape->n, pair = 2 * shape->lanes;
  if (n <= pair || n % pair == 0) return std::nullopt;
  return n - n % pair;
}

// B read across its rows (x W^T: B's map is ([batch,] n, k) instead of (k, n)).
bool readsBAcrossRows(linalg::LinalgOp op) {
  bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
  MLIRContext* ctx = op->getContext();
  unsigned b = batched ? 1 : 0, n = b + 1, k = b + 2;
  SmallVector<AffineExpr> transposed;
  if (batched) transposed.push_back(getAffineDimExpr(0, ctx));
  transposed.append({getAffineDimExpr(n, ctx), getAffineDimExpr(k, ctx)});
  return op.getIndexingMapsArray()[1] == AffineMap::get(k + 1, 0, transposed, ctx);
}

// A read down its columns (gy^T x, a weight gradient: A's map is ([batch,] k, m)).
bool readsADownColumns(linalg::LinalgOp op) {
  bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
  MLIRContext* ctx = op->getContext();
  unsigned b = batched ? 1 : 0, m = b, k = b + 2;
  SmallVector<AffineExpr> transposed;
  if (batched) transposed.push_back(getAffineDimExpr(0, ctx));
  transposed.append({getAffineDimExpr(k, ctx), getAffineDimExpr(m, ctx)});
  return op.getIndexingMapsArray()[0] == AffineMap::get(k + 1, 0, transposed, ctx);
}

// The columns of a matmul whose output blocks pack A (an A read down its columns, gy^T x,
// with whole register rows) when they have no divisor of at least four register tiles up
// to 256 columns (992 = 31 x 32: 32-wide blocks, each packed A panel serving one register
// tile): split at the last multiple of the 256-column block (768 + 224), so that both
// parts have wide blocks. The static rows still give the threads several blocks each.
std::optional<int64_t> blockSplit(linalg::LinalgOp op, int64_t vectorBits, int64_t vectorRegisters) {
  std::optional<MatmulShape> shape = matmulShape(op, vectorBits);
  if (!shape || ShapedType::isDynamic(shape->m) || !readsADownColumns(op)) return std::nullopt;
  std::optional<RegisterTile> tile = chooseRegisterTile(shape->m, shape->n, false, shape->lanes, vectorRegisters);
  if (!tile || tile->peel) return std::nullopt;
  int64_t n = shape->n, nr = tile->nr, block = std::max<int64_t>(256 / nr, 1) * nr;
  if (n <= block || n % nr != 0 || divisorTile(n, nr, 256) >= 4 * nr || n % block == 0) return std::nullopt;
  return n - n % block;
}

std::optional<MatmulTiles> chooseTiles(linalg::LinalgOp op, int64_t vectorBits, int64_t vectorRegisters) {
  std::optional<MatmulShape> shape = matmulShape(op, vectorBits);
  if (!shape) return std::nullopt;
  bool batched = shape->batched;
  int64_t m = shape->m, n = shape->n, k = shape->k, lanes = shape->lanes;
  bool dynamicRows = ShapedType::isDynamic(m), dynamicDepth = ShapedType::isDynamic(k);

  // Register tile: mr rows of A times an nr-wide row of B per k step.
  std::optional<RegisterTile> tile = chooseRegisterTile(m, n, dynamicRows, lanes, vectorRegisters);
  if (!tile) return std::nullopt;
  int64_t mr = tile->mr, nr = tile->nr;
  // Cache tiles: output blocks for threads and L2, a k panel for L1/L2. Each block packs
  // its k panels of B (packB) for its 16 register rows (16 instead of 8 halves the copies:
  // 2048^3 0.78 -> 0.84-0.94 of OpenBLAS, 256^3 0.95 -> 1.0, one core of a Xeon with
  // AVX-512, loaded machine), and x W^T's transposed copy serves the MLP's batch of 128 rows
  // (0.64-0.68 -> 0.73-0.83 of OpenBLAS on one Zen 5 core). kc 512 and nc 512 measured no
  // better (the 2 MiB L2 holds the 256 KiB packed panel either way). An A read down its
  // columns (gy^T x) is packed too when its register rows are whole (no peeled rows) and
  // the block is more than one register tile wide (one tile reads its A panel once), and
  // its blocks then have more register rows where there are blocks enough for the
  // threads: the packed panel of B serves more of them.
  int64_t nc = divisorTile(n, nr, 256);
  bool packA = readsADownColumns(op) && !tile->peel && nc >= 2 * nr;
  int64_t blockRows = 16;
  int64_t mc = tile->peel ? blockRows * mr : divisorTile(m, mr, blockRows * mr);
  // A static m that mr does not divide (6-row tiles with AVX2: 128 = 21 x 6 + 2) is cut into
  // as many row blocks as 16-tile ones would need, of nearly equal height (66 + 62 rows, not
  // 96 + 32), so that the threads' blocks hold similar work. Measured (AVX2 code on a Zen 4,
  // 2 threads, alternated): 256^3 +6%; 128x1000x1000 unchanged (its 2-thread shortfall is not
  // this, bench/RESULTS.md 2026-12-04).
  if (tile->peel && !dynamicRows) {
    int64_t rowBlocks = (m + mc - 1) / mc, rows = (m + rowBlocks - 1) / rowBlocks;
    mc = (rows + mr - 1) / mr * mr;
  }
  if (packA) {
    // Up to 32 register rows while that leaves at least 8 blocks for the threads.
    int64_t wide = divisorTile(m, mr, 32 * mr);
    if ((m / wide) * (n / nc) >= 8) mc = wide;
  }
  // A dynamic k (the batch of a weight gradient) runs in panels of at most 256 (the last
  // one partial), so that its packed copies have a static bound.
  int64_t kc = dynamicDepth ? 256 : divisorTile(k, 1, 256);
  if (!dynamicDepth && kc < 32) kc = k;

  MatmulTiles t;
  if (batched) {
    t.cache.push_back(1);
    t.kcache.push_back(0);
    t.registers.push_back(1);
  }
  t.cache.append({mc, nc, 0});
  t.kcache.append({0, 0, kc == k ? 0 : kc});
  t.registers.append({mr, nr, 1});
  t.peelRows = tile->peel;
  t.packA = packA;
  // Over a dynamic k, a block of few register rows (gy^T x 10x1000x128: one 8-row tile
  // and two rows) reads its B panel about once: packed, 1.07 -> 0.97 of OpenBLAS.
  t.packB = !dynamicDepth || dynamicRows || std::min(m, mc) >= 4 * mr;
  t.depth = k;
  return t;
}

SmallVector<OpFoldResult> asFoldResults(Builder& b, ArrayRef<int64_t> sizes) {
  SmallVector<OpFoldResult> r;
  for (int64_t s : sizes) r.push_back(b.getIndexAttr(s));
  return r;
}

FailureOr<Operation*> tileOnce(RewriterBase& rewriter, Operation* op, ArrayRef<int64_t> sizes,
                               scf::SCFTilingOptions::LoopType loopType,
                               SmallVectorImpl<LoopLikeOpInterface>* loops = nullptr) {
  if (llvm::all_of(sizes, [](int64_t s) { return s == 0; })) return op;
  scf::SCFTilingOptions options;
  options.setTileSizes(asFoldResults(rewriter, sizes));
  options.setLoopType(loopType);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> tiled = scf::tileUsingSCF(rewriter, cast<TilingInterface>(op), options);
  if (failed(tiled)) return failure();
  rewriter.replaceOp(op, tiled->replacements);
  if (loops) loops->assign(tiled->loops.begin(), tiled->loops.end());
  return tiled->tiledOps.back();
}

// B's map in a matmul: (k, n), or (n, k) when read across its rows (x W^T); [batch,] first.
AffineMap plainBMap(linalg::LinalgOp op) {
  bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
  MLIRContext* ctx = op->getContext();
  unsigned b = batched ? 1 : 0, n = b + 1, k = b + 2;
  SmallVector<AffineExpr> plain;
  if (batched) plain.push_back(getAffineDimExpr(0, ctx));
  plain.append({getAffineDimExpr(k, ctx), getAffineDimExpr(n, ctx)});
  return AffineMap::get(k + 1, 0, plain, ctx);
}

// Copies `rows` rows of `width` elements of `source` (dims `rowDim` and `colDim`, from
// column `column`; other dims at 0) into `dest`, row r at `at(r)`: one vector transfer
// per row. Returns the filled `dest`.
Value copyRows(OpBuilder& builder, Location loc, Value source, unsigned rowDim, unsigned colDim, Value column,
               int64_t width, Value rows, Value dest, llvm::function_ref<SmallVector<Value>(Value)> at) {
  Value zero = arith::ConstantIndexOp::create(builder, loc, 0), one = arith::ConstantIndexOp::create(builder, loc, 1);
  auto type = cast<RankedTensorType>(source.getType());
  auto loop = scf::ForOp::create(
      builder, loc, zero, rows, one, ValueRange{dest}, [&](OpBuilder& builder, Location loc, Value r, ValueRange acc) {
        SmallVector<Value> from(type.getRank(), zero);
        from[rowDim] = r;
        from[colDim] = column;
        Value row = vector::TransferReadOp::create(builder, loc, VectorType::get({width}, type.getElementType()),
                                                   source, from, std::nullopt, ArrayRef<bool>{true});
        Value written =
            vector::TransferWriteOp::create(builder, loc, row, acc[0], at(r), ArrayRef<bool>{true}).getResult();
        scf::YieldOp::create(builder, loc, written);
      });
  return loop.getResult(0);
}

// The buffer of a k panel's packed copy: before the k loop when there is one and the
// copy's shape is static (one buffer per output block, reused by all its k panels),
// else at `op`. Leaves the insertion point at `op`.
Value packBuffer(RewriterBase& rewriter, linalg::LinalgOp op, ArrayRef<OpFoldResult> sizes, Type elem) {
  Operation* kLoop = op->getParentOp();
  bool hoist = isa<scf::ForOp>(kLoop) && llvm::all_of(sizes, [](OpFoldResult s) { return isa<Attribute>(s); });
  rewriter.setInsertionPoint(hoist ? kLoop : op.getOperation());
  Value empty = tensor::EmptyOp::create(rewriter, op->getLoc(), sizes, elem);
  rewriter.setInsertionPoint(op);
  return empty;
}

// An operand's k panel in an output block, packed into strips of `width` columns:
// packed[j][k][l] = X(k, j * width + l), a tensor<NJ x kc x width> whose strips are each
// one contiguous run of kc * width elements. For B (kc x nc, or nc x kc when read across
// its rows) the strips are nr wide: the register kernel's nr-wide row of B per k step is
// one contiguous vector and a register tile's whole k panel of B is contiguous, instead
// of rows a whole row of B apart (8 KiB at 2048 columns: every k step another page, and
// all of a strip's rows in the same L1 sets). For an A read down its columns (gy^T x,
// kc x mc) the strips are mr wide: the mr elements of A a k step broadcasts are
// contiguous and a register tile's k panel of A is one run (kc * 32 bytes) instead of kc
// rows of A (a page each at 1000 columns). Packed once per output block and k panel,
// read by all its register tiles. The buffer is made before the k loop (one per output
// block; a dynamic k panel, the batch, gets one of its static bound `kBound`); each strip
// is copied a row (one vector transfer) at a time or, B read across its rows, transposed
// (linalg.transpose: -kiln-vectorize-transposes makes it register tiles).
struct Packed {
  Value packed;
  unsigned operand;  // 0: A, 1: B
  int64_t width;
  bool transposed;   // B read across its rows, copied transposed: read through the plain map
};
std::optional<Packed> packOperand(RewriterBase& rewriter, linalg::LinalgOp op, unsigned operand, int64_t width,
                                  int64_t kBound) {
  bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
  unsigned b = batched ? 1 : 0;
  bool transposed = false;
  unsigned kDim, colDim;
  if (operand == 0) {
    if (!readsADownColumns(op)) return std::nullopt;
    kDim = b;
    colDim = b + 1;
  } else {
    transposed = readsBAcrossRows(op);
    if (!transposed && op.getIndexingMapsArray()[1] != plainBMap(op)) return std::nullopt;
    kDim = transposed ? b + 1 : b;
    colDim = transposed ? b : b + 1;
  }
  Value tile = op->getOperand(operand);
  auto type = cast<RankedTensorType>(tile.getType());
  int64_t cols = type.getDimSize(colDim);
  if (ShapedType::isDynamic(cols) || cols % width != 0) return std::nullopt;
  bool dynamicDepth = type.isDynamicDim(kDim);
  if (dynamicDepth && kBound <= 0) return std::nullopt;
  // A plain B pays for its copy over a static k panel of some depth only: packed, a
  // 10-deep k (gy W 128x1000x10) went 1.42 -> 0.55-0.68 of OpenBLAS (2 threads, Xeon
  // family 6 model 167, same run), while a 1000-deep k gained 0.93 -> 1.04-1.09. A
  // dynamic k (the batch of a weight gradient) is packed in panels of kBound rows.
  if (operand == 1 && !transposed && !dynamicDepth && type.getDimSize(kDim) < 64) return std::nullopt;
  Location loc = op->getLoc();
  Type elem = type.getElementType();
  rewriter.setInsertionPoint(op);
  OpFoldResult kc = dynamicDepth ? tensor::getMixedSize(rewriter, loc, tile, kDim)
                                 : OpFoldResult(rewriter.getIndexAttr(type.getDimSize(kDim)));
  OpFoldResult strip = rewriter.getIndexAttr(width), one = rewriter.getIndexAttr(1), zero = rewriter.getIndexAttr(0);
  OpFoldResult bufferDepth = dynamicDepth ? OpFoldResult(rewriter.getIndexAttr(kBound)) : kc;
  Value empty = packBuffer(rewriter, op, {rewriter.getIndexAttr(cols / width), bufferDepth, strip}, elem);
  Value lb = arith::ConstantIndexOp::create(rewriter, loc, 0),
        ub = arith::ConstantIndexOp::create(rewriter, loc, cols / width),
        step = arith::ConstantIndexOp::create(rewriter, loc, 1);
  SmallVector<int64_t> stripShape{getConstantIntValue(kc).value_or(ShapedType::kDynamic), width};
  auto stripType = RankedTensorType::get(stripShape, elem);
  Value rows = getValueOrCreateConstantIndexOp(rewriter, loc, kc);
  auto loop = scf::ForOp::create(
      rewriter, loc, lb, ub, step, ValueRange{empty}, [&](OpBuilder& builder, Location loc, Value j, ValueRange acc) {
        Value column = affine::makeComposedAffineApply(builder, loc, builder.getAffineDimExpr(0) * width, {j});
        Value filled;
        if (!transposed) {
          filled = copyRows(builder, loc, tile, kDim, colDim, column, width, rows, acc[0],
                            [&](Value k) { return SmallVector<Value>{j, k, lb}; });
        } else {
          // width x kc transposed into kc x width (-kiln-vectorize-transposes: register tiles).
          SmallVector<OpFoldResult> offsets(type.getRank(), zero), sizes(type.getRank(), one),
              strides(type.getRank(), one);
          offsets[colDim] = column;
          sizes[colDim] = strip;
          sizes[kDim] = kc;
          auto sourceType = RankedTensorType::get({width, stripShape[0]}, elem);
          Value source = tensor::ExtractSliceOp::create(builder, loc, sourceType, tile, offsets, sizes, strides);
          SmallVector<OpFoldResult> at{j, zero, zero}, extent{one, kc, strip}, unit(3, one);
          Value dest = tensor::ExtractSliceOp::create(builder, loc, stripType, acc[0], at, extent, unit);
          Value copy = linalg::TransposeOp::create(builder, loc, source, dest, ArrayRef<int64_t>{1, 0})->getResult(0);
          filled = tensor::InsertSliceOp::create(builder, loc, copy, acc[0], at, extent, unit);
        }
        scf::YieldOp::create(builder, loc, filled);
      });
  return Packed{loop.getResult(0), operand, width, transposed};
}

// A register tile's matmul reads its operand from the packed strips (packOperand): the
// slice of B at (k, n) becomes the packed strip n / nr at row k, read through B's plain
// map; the slice of A at (k, m) the strip m / mr at row k, through A's own map.
void readPacked(RewriterBase& rewriter, linalg::LinalgOp op, const Packed& pack) {
  bool batched = isa<linalg::BatchMatmulOp>(op.getOperation());
  unsigned b = batched ? 1 : 0;
  unsigned kDim = pack.transposed ? b + 1 : b, colDim = pack.transposed ? b : b + 1;
  Value tile = op->getOperand(pack.operand);
  Location loc = op->getLoc();
  rewriter.setInsertionPoint(op);
  SmallVector<OpFoldResult> offsets, sizes;
  auto slice = tile.getDefiningOp<tensor::ExtractSliceOp>();
  if (slice) {
    offsets = slice.getMixedOffsets();
    sizes = slice.getMixedSizes();
  } else {
    offsets.assign(cast<RankedTensorType>(tile.getType()).getRank(), rewriter.getIndexAttr(0));
    sizes = tensor::getMixedSizes(rewriter, loc, tile);
  }
  AffineExpr d0 = rewriter.getAffineDimExpr(0);
  OpFoldResult j = affine::makeComposedFoldedAffineApply(rewriter, loc, d0.floorDiv(pack.width), {offsets[colDim]});
  SmallVector<OpFoldResult> at{j, offsets[kDim], rewriter.getIndexAttr(0)};
  SmallVector<OpFoldResult> extent{rewriter.getIndexAttr(1), sizes[kDim], sizes[colDim]};
  SmallVector<int64_t> shape;
  if (batched) shape.push_back(1);
  for (OpFoldResult s : {sizes[kDim], sizes[colDim]}) shape.push_back(getConstantIntValue(s).value_or(ShapedType::kDynamic));
  auto type = RankedTensorType::get(shape, cast<RankedTensorType>(tile.getType()).getElementType());
  Value row = tensor::ExtractSliceOp::create(rewriter, loc, type, pack.packed, at, extent,
                                             SmallVector<OpFoldResult>(3, rewriter.getIndexAttr(1)));
  rewriter.modifyOpInPlace(op, [&] {
    op->setOperand(pack.operand, row);
    if (pack.transposed) {
      SmallVector<Attribute> maps;
      for (AffineMap m : op.getIndexingMapsArray()) maps.push_back(AffineMapAttr::get(m));
      maps[1] = AffineMapAttr::get(plainBMap(op));
      op->setAttr("indexing_maps", ArrayAttr::get(op->getContext(), maps));
    }
  });
  if (slice && slice->use_empty()) rewriter.eraseOp(slice);
}

// The elementwise epilogue of a matmul: the one user of its result, an all-parallel
// linalg.generic over the matmul's output space that reads the result through the
// identity map and writes outputs of that space (bias add, activation, scale, the relu
// mask of a backward, an SGD update of a weight gradient). Its other inputs (a bias row,
// a mask, a parameter, a scalar learning rate) are read per block. Null for anything
// else (a result with other uses, a reduction, a reshape, a library call): those keep
// their own loop nest.
linalg::GenericOp epilogueOf(linalg::LinalgOp matmul) {
  Value result = matmul->getResult(0);
  if (!result.hasOneUse()) return {};
  OpOperand& use = *result.getUses().begin();
  auto generic = dyn_cast<linalg::GenericOp>(use.getOwner());
  if (!generic || !generic.hasPureTensorSemantics() || passes::isMarkedLibraryCall(generic)) return {};
  if (generic.isDpsInit(&use)) return {};
  int64_t rank = cast<ShapedType>(result.getType()).getRank();
  if (generic.getNumLoops() != rank || generic.getNumParallelLoops() != rank) return {};
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, generic->getContext());
  if (generic.getMatchingIndexingMap(&use) != identity) return {};
  for (OpOperand& operand : generic->getOpOperands()) {
    AffineMap map = generic.getMatchingIndexingMap(&operand);
    if (generic.isDpsInit(&operand) ? map != identity : !map.isProjectedPermutation()) return {};
  }
  for (Operation& op : generic.getBody()->without_terminator())
    if (!isPure(&op)) return {};
  return generic;
}

// Erases a matmul whose tiles replaced it, and the fill of its accumulator. The sizes
// the tiles' loops read of them (tensor.dim) are read of the fill's destination instead,
// which has the same shape.
void eraseUntiled(RewriterBase& rewriter, linalg::LinalgOp matmul) {
  auto fill = matmul.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
  for (Operation* op : {matmul.getOperation(), fill.getOperation()}) {
    if (!op) continue;
    Value init = cast<DestinationStyleOpInterface>(op).getDpsInits()[0];
    for (OpOperand& use : llvm::make_early_inc_range(op->getResult(0).getUses()))
      if (isa<tensor::DimOp>(use.getOwner())) rewriter.modifyOpInPlace(use.getOwner(), [&] { use.set(init); });
  }
  if (matmul->use_empty()) rewriter.eraseOp(matmul);
  if (fill && fill->use_empty()) rewriter.eraseOp(fill);
}

// The column split (columnSplit) of a matmul with an epilogue: the epilogue is split at
// the same column, and each part reads the matmul of its own columns (the accumulator's
// fill sliced alike), so both parts keep their epilogue.
LogicalResult splitWithEpilogue(RewriterBase& rewriter, linalg::LinalgOp matmul, linalg::GenericOp epilogue,
                                int64_t at) {
  rewriter.setInsertionPoint(epilogue);
  auto [first, rest] = linalg::splitOp(rewriter, cast<TilingInterface>(epilogue.getOperation()),
                                       epilogue.getNumLoops() - 1, rewriter.getIndexAttr(at));
  if (!first || !rest) return failure();
  // A slice of `producer` (a matmul or its fill) becomes the producer computed on that slice.
  auto sliceProducer = [&](tensor::ExtractSliceOp slice) -> Operation* {
    rewriter.setInsertionPoint(slice);
    FailureOr<TilingResult> tiled =
        tensor::replaceExtractSliceWithTiledProducer(rewriter, slice, cast<OpResult>(slice.getSource()));
    if (failed(tiled) || tiled->tiledOps.empty()) return nullptr;
    rewriter.replaceOp(slice, tiled->tiledValues[0]);
    return tiled->tiledOps.back();
  };
  for (TilingInterface part : {first, rest})
    for (OpOperand& operand : part->getOpOperands()) {
      auto slice = operand.get().getDefiningOp<tensor::ExtractSliceOp>();
      if (!slice || slice.getSource() != matmul->getResult(0)) continue;
      Operation* partMatmul = sliceProducer(slice);
      if (!partMatmul) return failure();
      auto accumulator =
          cast<linalg::LinalgOp>(partMatmul).getDpsInits()[0].getDefiningOp<tensor::ExtractSliceOp>();
      if (accumulator && accumulator.getSource().getDefiningOp<linalg::FillOp>() && !sliceProducer(accumulator))
        return failure();
    }
  eraseUntiled(rewriter, matmul);
  return success();
}

// Tiles a matmul's epilogue into the output blocks (scf.forall, `sizes` per output dim) and
// fuses the matmul and the fill of its accumulator into each block: every block is
// zeroed, accumulated and finished by the epilogue in turn. Returns the block's matmul.
FailureOr<Operation*> tileWithEpilogue(RewriterBase& rewriter, linalg::LinalgOp matmul,
                                       linalg::GenericOp epilogue, ArrayRef<int64_t> sizes) {
  scf::SCFTilingOptions tiling;
  tiling.setTileSizes(asFoldResults(rewriter, sizes));
  tiling.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
  scf::SCFTileAndFuseOptions options;
  options.setTilingOptions(tiling);
  Operation* fill = matmul.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
  if (fill && !fill->getResult(0).hasOneUse()) fill = nullptr;
  options.setFusionControlFn(
      [&](tensor::ExtractSliceOp, OpResult producer, bool) -> std::optional<scf::SCFTileAndFuseOptions::ControlFnResult> {
        if (producer.getOwner() == matmul.getOperation() || (fill && producer.getOwner() == fill))
          return scf::SCFTileAndFuseOptions::ControlFnResult{};
        return std::nullopt;
      });
  rewriter.setInsertionPoint(epilogue);
  FailureOr<scf::SCFTileAndFuseResult> fused =
      scf::tileConsumerAndFuseProducersUsingSCF(rewriter, cast<TilingInterface>(epilogue.getOperation()), options);
  if (failed(fused)) return failure();
  Operation* blockMatmul = nullptr;
  for (Operation* op : fused->tiledAndFusedOps)
    if (isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op)) blockMatmul = op;
  if (!blockMatmul) return failure();
  for (OpResult r : epilogue->getResults()) rewriter.replaceAllUsesWith(r, fused->replacements.lookup(r));
  rewriter.eraseOp(epilogue);
  eraseUntiled(rewriter, matmul);
  return blockMatmul;
}

// The fill of a matmul's accumulator (a zero, or any constant) when the matmul is its one
// use: it can be done per tile instead of over the whole output first.
linalg::FillOp accumulatorFill(Operation* matmul) {
  auto fill = cast<linalg::LinalgOp>(matmul).getDpsInits()[0].getDefiningOp<linalg::FillOp>();
  if (!fill || !fill.hasPureTensorSemantics() || !fill->getResult(0).hasOneUse()) return {};
  return fill;
}

// Tiles `matmul` by `sizes` into loops of `loopType` with the fill of its accumulator
// (accumulatorFill) fused in: each tile is filled right before it is accumulated, while it
// is in cache, instead of a memset of the whole output before the GEMM's pass over it (for
// an output block), or not at all (for a register tile: its accumulator then starts as the
// constant, the fill folds away after vectorization). A matmul without such a fill is
// tiled alone. Returns the tile's matmul; `loops` gets the loops.
FailureOr<Operation*> tileWithFill(RewriterBase& rewriter, Operation* matmul, ArrayRef<int64_t> sizes,
                                   scf::SCFTilingOptions::LoopType loopType,
                                   SmallVectorImpl<LoopLikeOpInterface>* loops = nullptr) {
  linalg::FillOp fill = accumulatorFill(matmul);
  if (!fill) return tileOnce(rewriter, matmul, sizes, loopType, loops);
  scf::SCFTilingOptions tiling;
  tiling.setTileSizes(asFoldResults(rewriter, sizes));
  tiling.setLoopType(loopType);
  scf::SCFTileAndFuseOptions options;
  options.setTilingOptions(tiling);
  options.setFusionControlFn(
      [&](tensor::ExtractSliceOp, OpResult producer, bool) -> std::optional<scf::SCFTileAndFuseOptions::ControlFnResult> {
        if (producer.getOwner() == fill.getOperation()) return scf::SCFTileAndFuseOptions::ControlFnResult{};
        return std::nullopt;
      });
  rewriter.setInsertionPoint(matmul);
  FailureOr<scf::SCFTileAndFuseResult> fused =
      scf::tileConsumerAndFuseProducersUsingSCF(rewriter, cast<TilingInterface>(matmul), options);
  if (failed(fused)) return failure();
  Operation* tileMatmul = nullptr;
  for (Operation* op : fused->tiledAndFusedOps)
    if (isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op)) tileMatmul = op;
  if (!tileMatmul) return failure();
  rewriter.replaceAllUsesWith(matmul->getResult(0), fused->replacements.lookup(matmul->getResult(0)));
  if (loops) loops->assign(fused->loops.begin(), fused->loops.end());
  eraseUntiled(rewriter, cast<linalg::LinalgOp>(matmul));
  return tileMatmul;
}

// A matmul tile inside kiln's tiling (an scf.forall) with static shapes: vectorizable.
bool isStaticKernel(linalg::LinalgOp op) {
  return isa<linalg::MatmulOp, linalg::BatchMatmulOp>(op.getOperation()) && op.hasPureTensorSemantics() &&
         !op.hasDynamicShape() && op->getParentOfType<scf::ForallOp>();
}

struct TileMatmulsPass : impl::KilnTileMatmulsBase<TileMatmulsPass> {
  using Base::Base;
  // Whether `op`'s epilogue is applied to its output blocks: every epilogue with
  // fuse-epilogues, else (fuse-update-epilogues) that of a weight gradient, an A read down
  // its columns (gy^T x): its SGD update then reads the parameter and writes the new one
  // per block while the block's gradient is in cache, instead of a zero fill of the whole
  // gradient (a memset of 4 MB at 1000x1000), the GEMM's pass over it and a third pass
  // reading it and the parameter (24 MB of memory traffic -> 8 MB).
  bool fusesEpilogueOf(linalg::LinalgOp op) const {
    return fuseEpilogues || (fuseUpdateEpilogues && readsADownColumns(op));
  }
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    MLIRContext* ctx = &getContext();
    VectorShape shape = host_vector_shape();
    if (vectorBits > 0) shape.bits = vectorBits;
    if (vectorRegisters > 0) shape.registers = vectorRegisters;
    IRRewriter rewriter(ctx);
    // Columns that are no multiple of the lanes: two matmuls, each with whole vectors;
    // then columns without a wide block of their own (blockSplit): two matmuls again.
    for (int round = 0; round < 2; ++round) {
    SmallVector<std::pair<linalg::LinalgOp, int64_t>> splits;
    func.walk([&](linalg::LinalgOp op) {
      if (auto at = round == 0 ? columnSplit(op, shape.bits) : blockSplit(op, shape.bits, shape.registers))
        splits.push_back({op, *at});
    });
    for (auto& [op, at] : splits) {
      if (linalg::GenericOp epilogue = fusesEpilogueOf(op) ? epilogueOf(op) : linalg::GenericOp()) {
        if (failed(splitWithEpilogue(rewriter, op, epilogue, at))) {
          op->emitError("kiln-tile-matmuls: splitting the columns and the epilogue at ") << at << " failed";
          return signalPassFailure();
        }
        continue;
      }
      // The fill of the accumulator is split too: each part fills its own columns (then per
      // tile, tileWithFill), and the whole output is not filled first.
      Value fillValue;
      if (linalg::FillOp fill = accumulatorFill(op)) {
        fillValue = fill.getInputs()[0];
        rewriter.modifyOpInPlace(op, [&] { op.getDpsInitsMutable()[0].set(fill.getOutputs()[0]); });
        rewriter.eraseOp(fill);
      }
      rewriter.setInsertionPoint(op);
      auto [first, rest] = linalg::splitOp(rewriter, cast<TilingInterface>(op.getOperation()),
                                           op.getNumLoops() - 2, rewriter.getIndexAttr(at));
      if (!first) {
        op->emitError("kiln-tile-matmuls: splitting the columns at ") << at << " failed";
        return signalPassFailure();
      }
      if (fillValue)
        for (TilingInterface part : {first, rest}) {
          if (!part) continue;
          auto matmul = cast<linalg::LinalgOp>(part.getOperation());
          rewriter.setInsertionPoint(matmul);
          Value filled = linalg::FillOp::create(rewriter, matmul.getLoc(), ValueRange{fillValue},
                                                ValueRange{matmul.getDpsInits()[0]})
                             .getResult(0);
          rewriter.modifyOpInPlace(matmul, [&] { matmul.getDpsInitsMutable()[0].set(filled); });
        }
    }
    }
    SmallVector<std::pair<linalg::LinalgOp, MatmulTiles>> work;
    func.walk([&](linalg::LinalgOp op) {
      if (auto tiles = chooseTiles(op, shape.bits, shape.registers)) work.push_back({op, *tiles});
    });
    if (work.empty()) return;

    for (auto& [op, tiles] : work) {
      SmallVector<LoopLikeOpInterface> registerLoops;
      SmallVector<int64_t> outputShape;
      for (int64_t size : cast<ShapedType>(op.getDpsInits()[0].getType()).getShape())
        outputShape.push_back(ShapedType::isDynamic(size) ? -1 : size);
      // The output blocks; with an epilogue, the epilogue's blocks with the matmul fused in.
      linalg::GenericOp epilogue = fusesEpilogueOf(op) ? epilogueOf(op) : linalg::GenericOp();
      FailureOr<Operation*> tiled =
          epilogue ? tileWithEpilogue(rewriter, op, epilogue, ArrayRef<int64_t>(tiles.cache).drop_back())
                   : tileWithFill(rewriter, op, tiles.cache, scf::SCFTilingOptions::LoopType::ForallOp);
      if (succeeded(tiled))
        tiled = tileOnce(rewriter, *tiled, tiles.kcache, scf::SCFTilingOptions::LoopType::ForOp);
      // The output blocks' loop states the depth and the output's shape, so that
      // KILN_PROFILE counts the FLOPs: 2 * k per output element.
      if (succeeded(tiled) && !ShapedType::isDynamic(tiles.depth))
        if (auto forall = (*tiled)->getParentOfType<scf::ForallOp>()) {
          forall->setAttr(kMatmulDepthAttr, rewriter.getI64IntegerAttr(tiles.depth));
          forall->setAttr(kMatmulOutputAttr, rewriter.getDenseI64ArrayAttr(outputShape));
        }
      // The block's k panels of B, and of an A read down its columns (full register rows
      // only), packed into strips.
      SmallVector<Packed> packs;
      if (succeeded(tiled)) {
        auto block = cast<linalg::LinalgOp>(*tiled);
        int64_t kBound = tiles.kcache.back();
        if (tiles.packA)
          if (auto a = packOperand(rewriter, block, 0, tiles.registers.end()[-3], kBound)) packs.push_back(*a);
        if (tiles.packB)
          if (auto b = packOperand(rewriter, block, 1, tiles.registers.end()[-2], kBound)) packs.push_back(*b);
      }
      // One k panel (no k loop in the block): each register tile takes the block's fill, so
      // its accumulator starts as the fill's constant instead of a read of the block (the
      // fill folds away: no pass over the output before the GEMM's). First the tiles over
      // [batch,] m, n with the fill fused in, then each one's loop over k.
      if (succeeded(tiled) && !tiles.peelRows && tiles.kcache.back() == 0 && accumulatorFill(*tiled)) {
        SmallVector<int64_t> tileSizes(tiles.registers), depth(tiles.registers.size(), 0);
        tileSizes.back() = 0;
        depth.back() = tiles.registers.back();
        SmallVector<LoopLikeOpInterface> kLoop;
        tiled = tileWithFill(rewriter, *tiled, tileSizes, scf::SCFTilingOptions::LoopType::ForOp, &registerLoops);
        if (succeeded(tiled)) tiled = tileOnce(rewriter, *tiled, depth, scf::SCFTilingOptions::LoopType::ForOp, &kLoop);
        registerLoops.append(kLoop.begin(), kLoop.end());
      } else if (succeeded(tiled)) {
        tiled = tileOnce(rewriter, *tiled, tiles.registers, scf::SCFTilingOptions::LoopType::ForOp,
                         &registerLoops);
      }
      if (succeeded(tiled))
        for (const Packed& pack : packs) readPacked(rewriter, cast<linalg::LinalgOp>(*tiled), pack);
      if (failed(tiled)) {
        op->emitError("kiln-tile-matmuls: tiling failed");
        return signalPassFailure();
      }
      if (tiles.peelRows) {
        // The register loop over m (after the batch loop, if any): full tiles, then the rest.
        size_t rows = registerLoops.size() == 4 ? 1 : 0;
        auto loop = rows < registerLoops.size() ? dyn_cast<scf::ForOp>(registerLoops[rows].getOperation())
                                                : scf::ForOp();
        scf::ForOp partial;
        if (loop && succeeded(scf::peelForLoopAndSimplifyBounds(rewriter, loop, partial)) && partial) {
          // The partial tile (fewer than mr rows): one row at a time, each vectorized.
          SmallVector<Operation*> rest;
          partial.walk([&](linalg::LinalgOp inner) {
            if (isa<linalg::MatmulOp, linalg::BatchMatmulOp>(inner.getOperation())) rest.push_back(inner);
          });
          SmallVector<int64_t> rowTiles(tiles.registers.size(), 0);
          rowTiles[rows] = 1;
          for (Operation* inner : rest)
            if (failed(tileOnce(rewriter, inner, rowTiles, scf::SCFTilingOptions::LoopType::ForOp))) {
              inner->emitError("kiln-tile-matmuls: tiling the partial tile failed");
              return signalPassFailure();
            }
        }
      }
    }
    // Tiles with constant sizes get static types (peeled loops' full tiles too).
    {
      RewritePatternSet patterns(ctx);
      tensor::ExtractSliceOp::getCanonicalizationPatterns(patterns, ctx);
      tensor::InsertSliceOp::getCanonicalizationPatterns(patterns, ctx);
      tensor::CastOp::getCanonicalizationPatterns(patterns, ctx);
      affine::AffineMinOp::getCanonicalizationPatterns(patterns, ctx);
      affine::AffineApplyOp::getCanonicalizationPatterns(patterns, ctx);
      ctx->getLoadedDialect<linalg::LinalgDialect>()->getCanonicalizationPatterns(patterns);
      linalg::MatmulOp::getCanonicalizationPatterns(patterns, ctx);
      linalg::BatchMatmulOp::getCanonicalizationPatterns(patterns, ctx);
      if (failed(applyPatternsGreedily(func, std::move(patterns)))) return signalPassFailure();
    }
    // The register tiles' matmuls, and the fills of register tiles (at most a register
    // file of elements: a vector.transfer_write of the constant, which the accumulator's
    // read then folds into; a block's fill stays a loop over memory).
    SmallVector<Operation*> kernels;
    func.walk([&](linalg::LinalgOp op) {
      if (isStaticKernel(op)) kernels.push_back(op);
      if (auto fill = dyn_cast<linalg::FillOp>(op.getOperation()))
        if (fill.hasPureTensorSemantics() && !op.hasDynamicShape() && op->getParentOfType<scf::ForallOp>() &&
            cast<ShapedType>(fill.getResult(0).getType()).getNumElements() <= shape.registers * (shape.bits / 32))
          kernels.push_back(op);
    });
    for (Operation* kernel : kernels) {
      rewriter.setInsertionPoint(kernel);
      FailureOr<linalg::VectorizationResult> vectorized =
          linalg::vectorize(rewriter, kernel, /*inputVectorSizes=*/{}, /*inputScalableVecDims=*/{},
                            /*vectorizeNDExtract=*/false, /*flatten1DDepthwiseConv=*/false,
                            /*assumeDynamicDimsMatchVecSizes=*/false, /*createNamedContraction=*/true);
      if (failed(vectorized)) continue;  // stays a (small, tiled) linalg op: loops later
      rewriter.replaceOp(kernel, vectorized->replacements);
    }

    // Fold the slices of the tiles, then keep each accumulator tile in registers across
    // the k loop (hoisting its extract/insert and read/write pairs out of the loop).
    {
      RewritePatternSet patterns(ctx);
      tensor::ExtractSliceOp::getCanonicalizationPatterns(patterns, ctx);
      tensor::InsertSliceOp::getCanonicalizationPatterns(patterns, ctx);
      vector::TransferReadOp::getCanonicalizationPatterns(patterns, ctx);
      vector::TransferWriteOp::getCanonicalizationPatterns(patterns, ctx);
      scf::ForOp::getCanonicalizationPatterns(patterns, ctx);
      affine::AffineApplyOp::getCanonicalizationPatterns(patterns, ctx);
      if (failed(applyPatternsGreedily(func, std::move(patterns)))) return signalPassFailure();
    }
    SmallVector<scf::ForOp> loops;
    func.walk([&](scf::ForOp loop) { loops.push_back(loop); });  // innermost first
    for (scf::ForOp loop : loops) {
      if (!loop->getParentOfType<scf::ForallOp>()) continue;
      rewriter.setInsertionPoint(loop);
      hoistLoopInvariantSubsets(rewriter, cast<LoopLikeOpInterface>(loop.getOperation()));
    }

    // vector.contract -> outer products -> FMAs on rows of the accumulator.
    {
      RewritePatternSet patterns(ctx);
      vector::populateVectorContractLoweringPatterns(patterns, vector::VectorContractLowering::OuterProduct);
      vector::populateVectorOuterProductLoweringPatterns(patterns);
      vector::populateVectorTransferPermutationMapLoweringPatterns(patterns);
      vector::populateVectorTransposeLoweringPatterns(patterns, vector::VectorTransposeLowering::EltWise);
      vector::populateVectorBroadcastLoweringPatterns(patterns);
      vector::populateVectorShapeCastLoweringPatterns(patterns);
      // The write of a register tile's fill, overwritten by the tile's result, is dropped.
      vector::TransferWriteOp::getCanonicalizationPatterns(patterns, ctx);
      scf::ForOp::getCanonicalizationPatterns(patterns, ctx);
      if (failed(applyPatternsGreedily(func, std::move(patterns)))) return signalPassFailure();
    }
  }
};

}  // namespace

VectorShape vector_shape_of(const std::string& features) {
  auto has = [&](const char* name) {
    std::string f = "+" + std::string(name);
    for (size_t at = features.find(f); at != std::string::npos; at = features.find(f, at + 1)) {
      size_t end = at + f.size();
      if (end == features.size() || features[end] == ',') return true;
    }
    return false;
  };
  if (has("avx512f")) return {512, 32};
  if (has("avx")) return {256, 16};
  return {128, 16};
}

VectorShape host_vector_shape() {
  std::string features;
  for (const std::string& feature : target_cpu().features)
    if (feature[0] == '+') features += feature + ",";
  return vector_shape_of(features);
}

TargetCpu target_cpu() {
  static const std::pair<std::string, std::vector<std::string>> host = [] {
    std::vector<std::string> features;
    for (const auto& feature : llvm::sys::getHostCPUFeatures())
      features.push_back((feature.second ? "+" : "-") + feature.first().str());
    std::sort(features.begin(), features.end(), [](const std::string& a, const std::string& b) {
      return a.compare(1, std::string::npos, b, 1, std::string::npos) < 0;
    });
    return std::make_pair(llvm::sys::getHostCPUName().str(), features);
  }();
  TargetCpu cpu{host.first, host.second, ""};
  std::string level = env::get_string("KILN_CPU_CAPABILITY");
  if (level.empty() || level == "avx512") return cpu;
  if (level != "avx2" && level != "sse4.2")
    throw Error("kiln: KILN_CPU_CAPABILITY must be 'avx512', 'avx2' or 'sse4.2', not '" + level + "'");
  cpu.capability = level;
  // What is above the level: AVX-512 (and AVX10, whose 256-bit forms need it here), AMX,
  // and with sse4.2 every AVX and FMA extension too.
  auto above = [&](const std::string& name) {
    for (const char* prefix : {"avx512", "avx10", "amx", "evex512"})
      if (name.rfind(prefix, 0) == 0) return true;
    if (level == "avx2") return false;
    for (const char* prefix : {"avx", "fma", "f16c", "xop", "vaes", "vpclmulqdq", "gfni"})
      if (name.rfind(prefix, 0) == 0) return true;
    return false;
  };
  for (std::string& feature : cpu.features)
    if (feature[0] == '+' && above(feature.substr(1))) feature[0] = '-';
  return cpu;
}

}  // namespace kiln::cpu
