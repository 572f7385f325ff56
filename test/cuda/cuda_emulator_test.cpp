// Differential tests of the CUDA emitter: each kernel kind, generated as CUDA C++, run
// under the SIMT emulator (KILN_CUDA_EMULATE's execution model) agrees with the
// interpreter (the oracle), including a whole MLP training step (Adam).
#include "cuda_test_util.h"

#include <array>

namespace kiln::cuda::testing {
namespace {

TEST(CudaEmulator, ElementwiseBroadcastChain) {
  // (x + b) * y, relu, a compare and a cast: one grid-stride kernel with broadcasts.
  Program p = expectAgrees(R"(
func.func @f(%x: tensor<?x7xf32>, %b: tensor<7xf32>, %y: tensor<?x7xf32>) -> (tensor<?x7xf32>, tensor<?x7xf32>) {
  %c = kiln.constant dense<0.5> : tensor<f32>
  %0 = kiln.broadcast_to %b : tensor<7xf32> -> tensor<?x7xf32>
  %1 = kiln.add %x, %0 : tensor<?x7xf32>
  %2 = kiln.mul %1, %y : tensor<?x7xf32>
  %3 = kiln.broadcast_to %c : tensor<f32> -> tensor<?x7xf32>
  %4 = kiln.sub %2, %3 : tensor<?x7xf32>
  %5 = kiln.relu %4 : tensor<?x7xf32>
  %6 = kiln.compare "gt", %5, %3 : tensor<?x7xf32>
  %7 = kiln.cast %6 : tensor<?x7xi1> -> tensor<?x7xf32>
  return %5, %7 : tensor<?x7xf32>, tensor<?x7xf32>
})", 9);
  ASSERT_EQ(p.kernels.size(), 1u);
  EXPECT_EQ(p.kernels[0].shape, "elementwise");
}

TEST(CudaEmulator, ElementwiseVectorizedWithTail) {
  // Whole operands only: 128-bit loads; 4 * 7 + 2 elements leave a tail of 2.
  Program p = expectAgrees(R"(
func.func @f(%x: tensor<30xf32>, %y: tensor<30xf32>) -> tensor<30xf32> {
  %0 = kiln.mul %x, %y : tensor<30xf32>
  %1 = kiln.exp %0 : tensor<30xf32>
  %2 = kiln.sqrt %1 : tensor<30xf32>
  return %2 : tensor<30xf32>
})");
  ASSERT_EQ(p.kernels.size(), 1u);
  EXPECT_EQ(p.kernels[0].shape, "elementwise-vectorized");
  EXPECT_NE(p.source.find("float4"), std::string::npos);
}

TEST(CudaEmulator, ColumnSumWithEpilogue) {
  // A bias gradient and its SGD update: reduction over the batch (axis 0), one block per column.
  Program p = expectAgrees(R"(
func.func @f(%g: tensor<?x37xf32>, %b: tensor<37xf32>) -> tensor<37xf32> {
  %lr = kiln.constant dense<0.1> : tensor<37xf32>
  %0 = kiln.reduce_sum %g, [0] : tensor<?x37xf32> -> tensor<37xf32>
  %1 = kiln.mul %lr, %0 : tensor<37xf32>
  %2 = kiln.sub %b, %1 : tensor<37xf32>
  return %2 : tensor<37xf32>
})", 300);
  EXPECT_TRUE(hasKernelShape(p, "row-reduction"));
  EXPECT_NE(p.source.find("kiln_block_sum"), std::string::npos);
}

TEST(CudaEmulator, SoftmaxAndLogSoftmaxRows) {
  // Row-wise softmax and log_softmax over 300 classes (several warps per row): one kernel.
  Program p = expectAgrees(softmaxRows(300), 5, -8.0, 8.0);
  ASSERT_EQ(p.kernels.size(), 1u);
  EXPECT_EQ(p.kernels[0].shape, "row-reduction");
  EXPECT_NE(p.source.find("kiln_block_max"), std::string::npos);
}

constexpr const char* kMatmulsWithEpilogueAndTransposes = R"(
func.func @f(%x: tensor<?x70xf32>, %w: tensor<90x70xf32>, %b: tensor<90xf32>, %g: tensor<?x90xf32>) -> (tensor<?x90xf32>, tensor<70x90xf32>) {
  %z = kiln.constant dense<0.0> : tensor<f32>
  %0 = kiln.matmul %x, %w {transpose_b} : tensor<?x70xf32>, tensor<90x70xf32> -> tensor<?x90xf32>
  %1 = kiln.broadcast_to %b : tensor<90xf32> -> tensor<?x90xf32>
  %2 = kiln.add %0, %1 : tensor<?x90xf32>
  %3 = kiln.relu %2 : tensor<?x90xf32>
  %4 = kiln.matmul %x, %g {transpose_a} : tensor<?x70xf32>, tensor<?x90xf32> -> tensor<70x90xf32>
  return %3, %4 : tensor<?x90xf32>, tensor<70x90xf32>
})";

TEST(CudaEmulator, MatmulTiledWithEpilogueAndTransposes) {
  // Sizes that are not multiples of the 64x64 tile or the K step of 16; generated GEMMs only.
  Program p = expectAgrees(kMatmulsWithEpilogueAndTransposes, 67, -1.0, 1.0, "", generatedGemms());
  EXPECT_TRUE(hasKernelShape(p, "gemm"));
  EXPECT_FALSE(hasKernelShape(p, "library-gemm"));
  EXPECT_NE(p.source.find("__syncthreads()"), std::string::npos);
}

// The GEMMs of `p`'s library steps, in order.
std::vector<LibraryGemm> libraryStepsOf(const Program& p) {
  std::vector<LibraryGemm> steps;
  for (const KernelInfo& k : p.kernels)
    if (k.launch == LaunchKind::Library) steps.push_back(k.gemm);
  return steps;
}

TEST(CudaEmulator, MatmulsAsLibraryStepsWithTheirEpilogues) {
  // The same through library steps (cblas under the emulator): matmul + bias + relu in one
  // step (RELU_BIAS), the transposed weight gradient (k = batch) in another.
  Program p = expectAgrees(kMatmulsWithEpilogueAndTransposes, 67, -1.0, 1.0);
  std::vector<LibraryGemm> steps = libraryStepsOf(p);
  EXPECT_FALSE(hasKernelShape(p, "gemm"));
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_TRUE(steps[0].relu);
  EXPECT_GE(steps[0].bias, 0);
  EXPECT_TRUE(steps[0].transpose_b);
  EXPECT_TRUE(steps[1].transpose_a);
  EXPECT_EQ(steps[1].k.batch_power, 1);
  // A rest of the epilogue cuBLASLt does not take (a bias along the rows, then tanh): the
  // step, then a generated kernel reading its result.
  Program q = expectAgrees(R"(
func.func @f(%x: tensor<?x70xf32>, %w: tensor<70x9xf32>, %r: tensor<?x1xf32>) -> tensor<?x9xf32> {
  %0 = kiln.matmul %x, %w : tensor<?x70xf32>, tensor<70x9xf32> -> tensor<?x9xf32>
  %1 = kiln.broadcast_to %r : tensor<?x1xf32> -> tensor<?x9xf32>
  %2 = kiln.add %0, %1 : tensor<?x9xf32>
  %3 = kiln.tanh %2 : tensor<?x9xf32>
  return %3 : tensor<?x9xf32>
})", 5, -1.0, 1.0);
  ASSERT_EQ(q.kernels.size(), 2u);
  EXPECT_EQ(q.kernels[0].launch, LaunchKind::Library);
  EXPECT_EQ(q.kernels[0].gemm.bias, -1);
  EXPECT_EQ(q.kernels[1].inputs.front(), q.kernels[0].gemm.c);
}

TEST(CudaEmulator, BatchedMatmul) {
  expectAgrees(R"(
func.func @f(%a: tensor<3x5x20xf32>, %b: tensor<3x20x6xf32>) -> tensor<3x5x6xf32> {
  %0 = kiln.matmul %a, %b : tensor<3x5x20xf32>, tensor<3x20x6xf32> -> tensor<3x5x6xf32>
  %1 = kiln.tanh %0 : tensor<3x5x6xf32>
  return %1 : tensor<3x5x6xf32>
})", 1, -1.0, 1.0);
}

// The forms -kiln-batch-matmuls builds: a 2-d weight shared by a batch of step inputs (+ bias
// and tanh), and the sum of the steps' weight-gradient products (sum_batch): one GEMM each over
// the rows of all the steps, as generated kernels and as library steps.
constexpr const char* kBatchedStepMatmuls = R"(
func.func @f(%x: tensor<3x?x20xf32>, %w: tensor<9x20xf32>, %b: tensor<9xf32>, %g: tensor<3x?x9xf32>) -> (tensor<3x?x9xf32>, tensor<9x20xf32>, tensor<3x?x20xf32>) {
  %0 = kiln.matmul %x, %w {transpose_b} : tensor<3x?x20xf32>, tensor<9x20xf32> -> tensor<3x?x9xf32>
  %1 = kiln.broadcast_to %b : tensor<9xf32> -> tensor<3x?x9xf32>
  %2 = kiln.add %0, %1 : tensor<3x?x9xf32>
  %3 = kiln.tanh %2 : tensor<3x?x9xf32>
  %4 = kiln.matmul %g, %x {sum_batch, transpose_a} : tensor<3x?x9xf32>, tensor<3x?x20xf32> -> tensor<9x20xf32>
  %5 = kiln.matmul %g, %w : tensor<3x?x9xf32>, tensor<9x20xf32> -> tensor<3x?x20xf32>
  return %3, %4, %5 : tensor<3x?x9xf32>, tensor<9x20xf32>, tensor<3x?x20xf32>
})";

TEST(CudaEmulator, BatchedStepMatmulsAreOneGemmOverTheSteps) {
  Program p = expectAgrees(kBatchedStepMatmuls, 7, -1.0, 1.0, "", generatedGemms());
  EXPECT_TRUE(hasKernelShape(p, "gemm"));
  EXPECT_NE(p.source.find("count = 1;"), std::string::npos);
  std::vector<LibraryGemm> steps = libraryStepsOf(expectAgrees(kBatchedStepMatmuls, 7, -1.0, 1.0));
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].m.factor, 3);  // 3 x batch rows
  EXPECT_EQ(steps[0].m.batch_power, 1);
  EXPECT_EQ(steps[1].k.factor, 3);  // the sum over 3 x batch rows
  EXPECT_EQ(steps[1].k.batch_power, 1);
}

TEST(CudaEmulator, ConvolutionAndGradients) {
  // A strided, padded, dilated grouped convolution with bias + relu, and both gradients.
  expectAgrees(R"(
func.func @f(%x: tensor<?x4x9x8xf32>, %w: tensor<6x2x3x3xf32>, %b: tensor<6xf32>, %gy: tensor<?x6x4x4xf32>) -> (tensor<?x6x4x4xf32>, tensor<?x4x9x8xf32>, tensor<6x2x3x3xf32>) {
  %0 = kiln.conv2d %x, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 1>, groups = 2} : tensor<?x4x9x8xf32>, tensor<6x2x3x3xf32> -> tensor<?x6x4x4xf32>
  %1 = kiln.reshape %b : tensor<6xf32> -> tensor<1x6x1x1xf32>
  %2 = kiln.broadcast_to %1 : tensor<1x6x1x1xf32> -> tensor<?x6x4x4xf32>
  %3 = kiln.add %0, %2 : tensor<?x6x4x4xf32>
  %4 = kiln.relu %3 : tensor<?x6x4x4xf32>
  %5 = kiln.conv2d_grad_input %gy, %w {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 1>, groups = 2} : tensor<?x6x4x4xf32>, tensor<6x2x3x3xf32> -> tensor<?x4x9x8xf32>
  %6 = kiln.conv2d_grad_filter %x, %gy {stride = array<i64: 2, 2>, pad = array<i64: 1, 1>, dilate = array<i64: 2, 1>, groups = 2} : tensor<?x4x9x8xf32>, tensor<?x6x4x4xf32> -> tensor<6x2x3x3xf32>
  return %4, %5, %6 : tensor<?x6x4x4xf32>, tensor<?x4x9x8xf32>, tensor<6x2x3x3xf32>
})", 2, -1.0, 1.0);
}

TEST(CudaEmulator, ConvolutionsAsImplicitGemmsOnRaggedTiles) {
  // Several tiles in each direction, partial ones at every edge, groups, stride, dilate,
  // an elementwise op on the input inside the forward's region, f64 and f32.
  Program forward = expectAgrees(kConvTiles.reference, 4, -1.0, 1.0, kConvTiles.regions);
  Program grads = expectAgrees(kConvGradTilesText, 4, -1.0, 1.0);
  for (const Program* p : {&forward, &grads}) {
    ASSERT_FALSE(p->kernels.empty());
    for (const KernelInfo& k : p->kernels) EXPECT_EQ(k.shape, "implicit-gemm") << k.label;
  }
  // The forward's launch: 2 column tiles (4 x 5 x 4 = 80), 2 row tiles (66), one z per group.
  unsigned grid[3], block[3];
  gridOf(forward.kernels[0], 4, grid, block);
  EXPECT_EQ(grid[0], 2u);
  EXPECT_EQ(grid[1], 2u);
  EXPECT_EQ(grid[2], 2u);
  EXPECT_EQ(block[0] * block[1], 256u);
}

TEST(CudaEmulator, PoolingAndGradients) {
  expectAgrees(R"(
func.func @f(%x: tensor<?x3x7x7xf32>, %gy: tensor<?x3x4x4xf32>) -> (tensor<?x3x4x4xf32>, tensor<?x3x4x4xf32>, tensor<?x3x7x7xf32>, tensor<?x3x7x7xf32>) {
  %0 = kiln.pool2d "max", %x {ksize = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<?x3x7x7xf32> -> tensor<?x3x4x4xf32>
  %1 = kiln.pool2d "avg", %x {ksize = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<?x3x7x7xf32> -> tensor<?x3x4x4xf32>
  %2 = kiln.pool2d_grad "max", %x, %gy {ksize = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<?x3x7x7xf32>, tensor<?x3x4x4xf32> -> tensor<?x3x7x7xf32>
  %3 = kiln.pool2d_grad "avg", %x, %gy {ksize = array<i64: 3, 3>, stride = array<i64: 2, 2>, pad = array<i64: 1, 1>} : tensor<?x3x7x7xf32>, tensor<?x3x4x4xf32> -> tensor<?x3x7x7xf32>
  return %0, %1, %2, %3 : tensor<?x3x4x4xf32>, tensor<?x3x4x4xf32>, tensor<?x3x7x7xf32>, tensor<?x3x7x7xf32>
})", 2, -1.0, 1.0);
}

TEST(CudaEmulator, GatherScatterArgmaxLayouts) {
  // embed_id and its gradient, argmax, a transpose and a strided slice.
  expectAgrees(R"(
func.func @f(%t: tensor<10x5xf32>, %ids: tensor<?xi32>, %u: tensor<?x5xf32>, %x: tensor<?x5xf32>) -> (tensor<?x5xf32>, tensor<10x5xf32>, tensor<?xi32>, tensor<5x?xf32>, tensor<3x2xf32>) {
  %0 = kiln.gather %t, %ids : tensor<10x5xf32>, tensor<?xi32> -> tensor<?x5xf32>
  %1 = kiln.scatter_add %ids, %u : tensor<?xi32>, tensor<?x5xf32> -> tensor<10x5xf32>
  %2 = kiln.argmax %x, 1 : tensor<?x5xf32> -> tensor<?xi32>
  %3 = kiln.transpose %x, [1, 0] : tensor<?x5xf32> -> tensor<5x?xf32>
  %4 = kiln.slice %t {start = array<i64: 2, 1>, limit = array<i64: 9, 5>, step = array<i64: 3, 2>} : tensor<10x5xf32> -> tensor<3x2xf32>
  return %0, %1, %2, %3, %4 : tensor<?x5xf32>, tensor<10x5xf32>, tensor<?xi32>, tensor<5x?xf32>, tensor<3x2xf32>
})", 7, -1.0, 1.0);
}

TEST(CudaEmulator, ScatterAddWithAtomics) {
  // Repeated ids add up (10 rows of 5 from 7 x 3 ids; of 4 and 2 from 7 ids).
  Program p = expectAgrees(kScatterAddText, 7, -1.0, 1.0);
  EXPECT_EQ(kernelsOfShape(p, "fill"), 3);
  EXPECT_EQ(kernelsOfShape(p, "scatter-add"), 3);
  EXPECT_NE(p.source.find("atomicAdd(reinterpret_cast<unsigned long long*>("), std::string::npos);
}

TEST(CudaEmulator, ScatterAddOntoABaseCopiesItThenUsesAtomics) {
  // Each step is a copy of its base into the output and one atomicAdd per update element,
  // never the per-table-element loop over every id; repeated ids add up.
  Program p = expectAgrees(kScatterAddBaseText, 9, -1.0, 1.0);
  EXPECT_EQ(kernelsOfShape(p, "copy"), 2);
  EXPECT_EQ(kernelsOfShape(p, "scatter-add"), 2);
  for (const KernelInfo& k : p.kernels)
    if (k.shape == "copy") EXPECT_EQ(k.inputs.size(), 1u) << k.label;
  EXPECT_NE(p.source.find("out0[i] = in0[i];"), std::string::npos);
  EXPECT_NE(p.source.find("atomicAdd(&out0["), std::string::npos);
}

TEST(CudaEmulator, ReductionRegionOverThreeSpacesIsSplit) {
  Program p = expectAgrees(kSplitReduction.reference, 5, 0.1, 1.0, kSplitReduction.regions);
  ASSERT_EQ(p.kernels.size(), 2u);
  EXPECT_EQ(p.kernels[0].shape, "row-reduction");
  EXPECT_EQ(p.kernels[1].shape, "elementwise");
  EXPECT_EQ(p.kernels[0].name, "kiln_0_0_reduction_sqrt_div_reduce_sum");
  EXPECT_EQ(p.kernels[1].name, "kiln_0_1_reduction_sqrt_div_reduce_sum");
}

// The block reductions (kiln_block_sum / kiln_block_max) in the lines of kernel `k`.
int blockReductions(const Program& p, const KernelInfo& k) {
  std::istringstream lines(p.source);
  int n = 0, count = 0;
  for (std::string line; std::getline(lines, line);)
    if (++n >= k.first_line && n <= k.last_line &&
        (line.find("= kiln_block_sum(") != std::string::npos || line.find("= kiln_block_max(") != std::string::npos))
      ++count;
  return count;
}

// The row-wise chain of `p` is one kernel: the row-reduction kernel with the most block
// reductions has all `reductions`, a warp per row up to 32 elements, else a block of 128.
void expectOneRowKernel(const Program& p, int64_t d, int reductions) {
  const KernelInfo* row = nullptr;
  for (const KernelInfo& k : p.kernels)
    if (k.shape == "row-reduction" && (!row || blockReductions(p, k) > blockReductions(p, *row))) row = &k;
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(blockReductions(p, *row), reductions) << row->label;
  EXPECT_EQ(row->block, d <= 32 ? 32 : 128) << row->label;
}

TEST(CudaEmulator, RowWiseRegionsOfAnyRowLengthAreOneKernel) {
  // Rows of one element, shorter than a warp, odd, longer than a block's threads (1000)
  // and than 32 of its strides (4097): the same values as the interpreter.
  for (int64_t d : {1, 7, 33, 1000, 4097}) {
    SCOPED_TRACE("row length " + std::to_string(d));
    if (d != 7 && d != 1000) {  // (rows of 10 and 300: SoftmaxAndLogSoftmaxRows, emit-cuda.mlir)
      Program softmax = expectAgrees(softmaxRows(d), 3, -8.0, 8.0);
      ASSERT_EQ(softmax.kernels.size(), 1u);
      expectOneRowKernel(softmax, d, 2);
      // x read once per element: kept in registers (<= 8 per thread), else in shared memory.
      EXPECT_NE(softmax.source.find(d <= 1024 ? "rc0[e] = in0[" : "rs0[j] = in0["), std::string::npos);
    }
    Program layerNorm = expectAgrees(layerNormGrad(d), 3, 0.1, 1.0);
    expectOneRowKernel(layerNorm, d, 4);
  }
}

TEST(CudaEmulator, SoftmaxCrossEntropyIsOneKernelWithItsLabelCheck) {
  // Rows of 3, 10, 33 (two passes of a warp), 300 and 1000 classes; batches of 1 to 1100
  // (more rows than the grid epilogue's 1024 blocks). Labels cycle through the classes with
  // every fifth ignored (-1); then two bad labels, of which the status names the first.
  // Loss, dx and status against the interpreter; forward ONE kernel (no label check, iota
  // or mean kernel), forward and backward 4 (the valid count that dx needs before the rows).
  struct Case {
    int64_t classes, batch;
  };
  for (Case c : {Case{3, 5}, Case{10, 1}, Case{33, 37}, Case{300, 9}, Case{1000, 3}, Case{5, 1100}}) {
    for (bool grad : {false, true}) {
      for (bool bad : {false, true}) {
        SCOPED_TRACE(std::to_string(c.classes) + " classes, batch " + std::to_string(c.batch) +
                     (grad ? ", backward" : "") + (bad ? ", bad labels" : ""));
        std::string text = softmaxCrossEntropy(c.classes, grad);
        auto reference = parse(concrete(text, c.batch));
        ASSERT_TRUE(reference);
        std::vector<Array> args = inputsFor(firstFunc(*reference), -4.0, 4.0);
        std::vector<int32_t> labels(c.batch);
        for (int64_t i = 0; i < c.batch; ++i) labels[i] = i % 5 == 4 ? -1 : static_cast<int32_t>((i * 7) % c.classes);
        if (bad) {
          labels[c.batch - 1] = -5;
          labels[c.batch / 2] = static_cast<int32_t>(c.classes);
        }
        args[0] = Array::from<int32_t>(labels, {c.batch});
        std::vector<Array> expected = interp::run(firstFunc(*reference), args);
        auto module = fused(text);
        Program p = emitProgram(firstFunc(*module));
        EXPECT_EQ(p.kernels.size(), grad ? 4u : 1u);
        std::vector<Array> actual = runEmulated(p, args, c.batch);
        ASSERT_EQ(expected.size(), actual.size());
        for (size_t i = 0; i < expected.size(); ++i) expectClose(expected[i], actual[i], "result " + std::to_string(i), 1e-12, 1e-12);
        std::vector<int64_t> status = actual.back().to_vector<int64_t>();
        if (bad) EXPECT_EQ(status, (std::vector<int64_t>{c.batch / 2, c.classes}));
        else EXPECT_EQ(status, (std::vector<int64_t>{-1, 0}));
      }
    }
  }
}

TEST(CudaEmulator, PhiloxDropoutMaskMatchesInterpreter) {
  // The same stream as the CPU backend and the interpreter: a dropout mask of ratio 0.3.
  Program p = expectAgrees(R"(
func.func @f(%k: tensor<2xi64>, %x: tensor<7x9xf32>) -> (tensor<7x9xf32>, tensor<7x9xf32>) {
  %r = kiln.constant dense<0.3> : tensor<7x9xf32>
  %s = kiln.constant dense<1.4285714> : tensor<7x9xf32>
  %z = kiln.constant dense<0.0> : tensor<7x9xf32>
  %0 = kiln.rng_uniform %k : tensor<2xi64> -> tensor<7x9xf32>
  %1 = kiln.compare "ge", %0, %r : tensor<7x9xf32>
  %2 = kiln.mul %x, %s : tensor<7x9xf32>
  %3 = kiln.select %1, %2, %z : tensor<7x9xi1>, tensor<7x9xf32>
  return %0, %3 : tensor<7x9xf32>, tensor<7x9xf32>
})");
  EXPECT_NE(p.source.find("kiln_philox_uniform"), std::string::npos);
}

TEST(CudaEmulator, MlpAdamTrainingStep) {
  // A whole training step of the digits MLP (64-100-100-10, softmax cross entropy, Adam),
  // as the frontend emits it (symbolic batch): every kernel against the interpreter.
  std::string text = readFile(std::string(KILN_SOURCE_DIR) + "/test/cuda/inputs/mlp_adam_step.kiln");
  // Matmuls as library steps (cblas here), and as generated GEMM kernels.
  Program p = expectAgrees(text, 16);
  EXPECT_GE(p.kernels.size(), 10u);
  EXPECT_TRUE(hasKernelShape(p, "library-gemm"));
  EXPECT_TRUE(hasKernelShape(p, "row-reduction"));
  Program q = expectAgrees(text, 16, 0.1, 1.0, "", generatedGemms());
  EXPECT_TRUE(hasKernelShape(q, "gemm"));
  EXPECT_FALSE(hasKernelShape(q, "library-gemm"));
}

}  // namespace
}  // namespace kiln::cuda::testing

namespace kiln::cuda::testing {
namespace {

TEST(CudaEmulator, CnnTrainingStep) {
  // The digits CNN step (conv + batch normalization + relu + max pooling + linear layers,
  // softmax cross entropy, Adam) as the frontend emits it: every kernel against the interpreter.
  std::string text = readFile(std::string(KILN_SOURCE_DIR) + "/test/cuda/inputs/cnn_step.kiln");
  Program p = expectAgrees(text, 8);
  EXPECT_TRUE(hasKernelShape(p, "row-reduction"));
  EXPECT_TRUE(hasKernelShape(p, "implicit-gemm"));  // the convolution and its filter gradient
}

}  // namespace
}  // namespace kiln::cuda::testing

namespace kiln::cuda::testing {
namespace {

TEST(CudaEmulator, CheckRangeStatusWithIgnoredLabel) {
  // Labels 0..9 with -1 ignored (softmax_cross_entropy's ignore_label): status [-1, 0].
  auto module = fused(R"(
func.func @f(%t: tensor<4xi32>) -> (tensor<4xi32>, tensor<2xi64>) {
  %r, %s = kiln.check_range %t, limit = 10, ignore = -1 {function = "softmax_cross_entropy", operand = "t"} : tensor<4xi32>
  return %r, %s : tensor<4xi32>, tensor<2xi64>
})");
  Program p = emitProgram(firstFunc(*module));
  std::vector<Array> ok = runEmulated(p, {Array::from<int32_t>({3, -1, 9, 0}, {4})}, 0);
  EXPECT_EQ(ok[0].to_vector<int32_t>(), (std::vector<int32_t>{3, -1, 9, 0}));
  EXPECT_EQ(ok[1].to_vector<int64_t>(), (std::vector<int64_t>{-1, 0}));
  // The first id outside [0, 10) that is not -1: index 2, value 10.
  std::vector<Array> bad = runEmulated(p, {Array::from<int32_t>({3, -1, 10, -2}, {4})}, 0);
  EXPECT_EQ(bad[1].to_vector<int64_t>(), (std::vector<int64_t>{2, 10}));
}

// cuda_fp16.h / cuda_bf16.h under the emulator: float -> __half / __nv_bfloat16 rounds to
// nearest even exactly as cvt.rn (ties both ways, just above a tie, overflow to infinity,
// subnormals and the carry into the smallest normal, NaN to 0x7fff, a double rounded once),
// back to float exactly; arithmetic rounds once; a __half through a warp shuffle. The bit
// patterns are computed by hand. The same source compiles with NVRTC for sm_80.
TEST(CudaEmulator, HalfAndBfloat16RoundToNearestEvenAsCuda) {
  Program p;
  p.source = R"(#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void kiln_narrow(const float* x, const unsigned short* bits, unsigned short* h,
                                       unsigned short* b, float* hf, float* bf, unsigned short* other, long long n) {
  const __half lane = __shfl_down_sync(0xffffffffu, __float2half(static_cast<float>(threadIdx.x)), 1);
  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
    h[i] = __half_as_ushort(__float2half(x[i]));
    b[i] = __bfloat16_as_ushort(__float2bfloat16(x[i]));
    hf[i] = __half2float(__ushort_as_half(bits[i]));
    bf[i] = __bfloat162float(__ushort_as_bfloat16(bits[i]));
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    other[0] = __half_as_ushort(__hadd(__float2half(2048.0f), __float2half(1.0f)));  // 2049: a tie, to 2048
    other[1] = __half_as_ushort(__float2half(2048.0f) + __float2half(3.0f));         // 2051: a tie, to 2052
    other[2] = __half_as_ushort(__double2half(1.0 + 0x1p-11 + 0x1p-40));            // above the tie: up
    other[3] = __bfloat16_as_ushort(__float2bfloat16(256.0f) + __float2bfloat16(1.0f));  // 257: to 256
    other[4] = __bfloat16_as_ushort(__hmul(__float2bfloat16(3.0f), __float2bfloat16(1.0f / 3.0f)));
    other[5] = __half_as_ushort(lane);
  }
}
#ifdef KILN_CUDA_EMULATE
extern "C" void kiln_narrow__emulate(void** a, const unsigned* grid, const unsigned* block) {
  kiln_emu::run(grid, block, [&] {
    kiln_narrow(*static_cast<const float* const*>(a[0]), *static_cast<const unsigned short* const*>(a[1]),
                *static_cast<unsigned short* const*>(a[2]), *static_cast<unsigned short* const*>(a[3]),
                *static_cast<float* const*>(a[4]), *static_cast<float* const*>(a[5]),
                *static_cast<unsigned short* const*>(a[6]), *static_cast<const long long*>(a[7]));
  });
}
#endif
)";
  struct Case { uint32_t f; uint16_t half, bf16; };
  const std::vector<Case> cases = {
      {0x3f800000, 0x3c00, 0x3f80},  // 1
      {0x3f801000, 0x3c00, 0x3f80},  // 1 + 2^-11: half's tie, to even 1.0
      {0x3f803000, 0x3c02, 0x3f80},  // 1 + 3 * 2^-11: tie, to even 0x3c02
      {0x3f801001, 0x3c01, 0x3f80},  // just above the tie: up
      {0x3f808000, 0x3c04, 0x3f80},  // 1 + 2^-8: bfloat16's tie, to even 1.0
      {0x3f818000, 0x3c0c, 0x3f82},  // 1 + 3 * 2^-8: tie, to even 0x3f82
      {0x3f808001, 0x3c04, 0x3f81},  // just above bfloat16's tie: up
      {0x3dcccccd, 0x2e66, 0x3dcd},  // 0.1
      {0x477fe000, 0x7bff, 0x4780},  // 65504: half's largest
      {0x477fefff, 0x7bff, 0x4780},  // just below 65520: 65504
      {0x477ff000, 0x7c00, 0x4780},  // 65520: the tie with infinity, up (0x7bff is odd)
      {0x7f7fffff, 0x7c00, 0x7f80},  // FLT_MAX: both infinite
      {0x7f7f7fff, 0x7c00, 0x7f7f},  // below bfloat16's tie: 0x7f7f
      {0xb3800000, 0x8001, 0xb380},  // -2^-24: half's smallest subnormal
      {0x33000000, 0x0000, 0x3300},  // 2^-25: the tie with 0, to 0
      {0x33400000, 0x0001, 0x3340},  // 1.5 * 2^-25: up to 2^-24
      {0x33c00000, 0x0002, 0x33c0},  // 3 * 2^-25: tie between 1 and 2 ulps, to 2
      {0x387fe000, 0x0400, 0x3880},  // 2^-14 - 2^-25: tie, carries to the smallest normal
      {0x00018000, 0x0000, 0x0002},  // a float subnormal: bfloat16's tie, to even 0x0002
      {0x00008000, 0x0000, 0x0000},  // tie with 0
      {0x80000000, 0x8000, 0x8000},  // -0
      {0xff800000, 0xfc00, 0xff80},  // -inf
      {0x7fc00001, 0x7fff, 0x7fff},  // NaN: canonical
  };
  // Narrow bits -> float bits: half exact (a NaN canonical), bfloat16 the top half (payload kept).
  const std::vector<std::array<uint32_t, 3>> back = {
      {0x0001, 0x33800000, 0x00010000}, {0x7bff, 0x477fe000, 0x7bff0000}, {0x3555, 0x3eaaa000, 0x35550000},
      {0xfc00, 0xff800000, 0xfc000000}, {0x7e00, 0x7fffffff, 0x7e000000}, {0x3c01, 0x3f802000, 0x3c010000},
      {0x0400, 0x38800000, 0x04000000}, {0x83ff, 0xb87fc000, 0x83ff0000}, {0x7fc1, 0x7fffffff, 0x7fc10000},
  };
  const long long n = static_cast<long long>(cases.size());
  std::vector<float> x(n), hf(n), bf(n);
  std::vector<uint16_t> bits(n), h(n), b(n), other(6);
  for (long long i = 0; i < n; ++i) {
    std::memcpy(&x[i], &cases[i].f, 4);
    bits[i] = static_cast<uint16_t>(back[i % back.size()][0]);
  }
  p.buffers.resize(7);
  KernelInfo k;
  k.name = "kiln_narrow";
  k.label = "narrow";
  k.block = 32;
  k.work = Extent{1, 1};  // the batch argument is the element count
  k.inputs = {0, 1};
  k.outputs = {2, 3, 4, 5, 6};
  p.kernels.push_back(k);
  EmulatedProgram emulated = EmulatedProgram::load(p, emulatorDir());
  emulated.launch(0, {x.data(), bits.data(), h.data(), b.data(), hf.data(), bf.data(), other.data()}, n);
  auto bitsOf = [](float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; };
  for (long long i = 0; i < n; ++i) {
    EXPECT_EQ(h[i], cases[i].half) << std::hex << "__float2half(0x" << cases[i].f << ")";
    EXPECT_EQ(b[i], cases[i].bf16) << std::hex << "__float2bfloat16(0x" << cases[i].f << ")";
    EXPECT_EQ(bitsOf(hf[i]), back[i % back.size()][1]) << std::hex << "__half2float(0x" << bits[i] << ")";
    EXPECT_EQ(bitsOf(bf[i]), back[i % back.size()][2]) << std::hex << "__bfloat162float(0x" << bits[i] << ")";
  }
  EXPECT_EQ(other, (std::vector<uint16_t>{0x6800, 0x6802, 0x3c01, 0x4380, 0x3f80, 0x3c00}));
  if (nvrtcAvailable()) EXPECT_FALSE(nvrtcCompile(p, "sm_80").cubin.empty());
}

}  // namespace
}  // namespace kiln::cuda::testing
