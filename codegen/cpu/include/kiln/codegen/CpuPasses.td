// Passes of the CPU backend (codegen/cpu), run inside `kiln-lower-to-llvm`.
#ifndef KILN_CODEGEN_CPU_PASSES_TD
#define KILN_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnCopyRepeatedResults : Pass<"kiln-copy-repeated-results", "mlir::func::FuncOp"> {
  let summary = "Gives a tensor returned several times its own copy for each repetition";
  let description = [{
    After CSE two graph outputs can be one value. Each result becomes its own
    out-param, and `buffer-results-to-out-params` can only write an allocation
    into one of them: the second and later occurrences are replaced by a
    `linalg.copy` of the value into a new tensor.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect"];
}

def KilnProfileKernels : Pass<"kiln-profile-kernels", "mlir::ModuleOp"> {
  let summary = "Times each kernel: calls to kiln_profile_begin/end around it (KILN_PROFILE)";
  let description = [{
    On buffers, before the BLAS calls and loops are made: the function's
    top-level ops that compute (linalg ops, copies, calls) are grouped into
    runs of one kernel (the kiln.fusion region they came from, from their
    location; an op of no region is a kernel of its own, named after the op),
    and each run is wrapped in `kiln_profile_begin(name)` and
    `kiln_profile_end(name, bytes, flops)`: `name` a string constant of the
    module, `bytes` the size of the memrefs the run reads and writes and
    `flops` 2 * the iteration space of its contractions, computed at run time
    where sizes are dynamic. The runtime's report: kiln/profile.h.
  }];
  let dependentDialects = ["mlir::LLVM::LLVMDialect", "mlir::func::FuncDialect",
                           "mlir::memref::MemRefDialect", "mlir::arith::ArithDialect"];
}

def KilnWriteResultsInPlace : Pass<"kiln-write-results-in-place", "mlir::func::FuncOp"> {
  let summary = "Computes a result directly in its out-param instead of a buffer copied into it";
  let description = [{
    After `buffer-results-to-out-params`, a result whose buffer has a dynamic
    size (the symbolic batch size) is still a `memref.alloc` copied into the
    out-param at the end (`hoist-static-allocs` only replaces static ones).
    When the copy is the buffer's last use, has the out-param's type, and is
    the out-param's only use, the buffer is replaced by the out-param: no
    allocation, no copy. The caller allocates out-params of the result's run-time shape.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

def KilnDonateBuffers : Pass<"kiln-donate-buffers", "mlir::func::FuncOp"> {
  let summary = "Lets an optimizer update write the parameter's own buffer";
  let description = [{
    Runs after bufferization (results are out-params). A function attribute
    `kiln.donations = {results = R, pairs = array<i64: k, j, ...>}` (set by the
    frontend) says result k is the next value of argument j, so the caller may
    pass argument j's buffer as result k's out-param (a parameter updated in
    place). Where that is safe as the code stands (no read of argument j at or
    after the first write of out-param k, except the same-index read of the
    elementwise op that writes it), nothing changes. Otherwise argument j is
    copied at the entry and every read goes to the copy.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect"];
}

def KilnFuseElementwise : Pass<"kiln-fuse-elementwise", "mlir::func::FuncOp"> {
  let summary = "Upstream linalg elementwise fusion that leaves contractions whole";
  let description = [{
    The patterns of `-linalg-fuse-elementwise-ops` (producer/consumer fusion of
    elementwise generics, reshapes folded by expansion, constant folding),
    with a control function that never fuses into or out of a contraction
    (`linalg.matmul`, ...): folding the im2col reshape of a convolution into
    its GEMM would turn the GEMM into a generic loop nest that
    `-kiln-matmul-to-blas` and `-kiln-tile-matmuls` do not recognize.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect",
                           "mlir::affine::AffineDialect"];
}

def KilnCloneSharedFills : Pass<"kiln-clone-shared-fills", "mlir::func::FuncOp"> {
  let summary = "Gives each op that writes into a linalg.fill or tensor.empty its own";
  let description = [{
    CSE merges equal fills (zeros of one shape), so one fill can be the init
    (`outs`) of several matmuls or reductions; bufferization then fills one
    buffer and copies it into each consumer's. Cloning the fill for every
    such use after the first lets each consumer fill its own buffer in place
    (and -kiln-matmul-to-blas then drops a zero fill before a GEMM).

    CSE merges equal `tensor.empty` ops too: one empty of each shape becomes
    the init of every kernel writing that shape (hundreds in an unrolled
    recurrent graph), and one-shot bufferization's analysis, which looks at
    all values aliasing a buffer for each write, grows with the square of
    their number. Each init use of an empty after the first (fills' inits
    included) gets its own empty, so every kernel's destination is its own
    and the analysis stays linear.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def KilnPlanBuffers : Pass<"kiln-plan-buffers", "mlir::func::FuncOp"> {
  let summary = "Places a function's intermediate buffers in one arena by their lifetimes";
  let description = [{
    After bufferization (before buffer deallocation), each `memref.alloc` in
    the function's entry block whose uses (through views) stay in the
    function becomes a `memref.view` into an arena allocated once per call:
    buffers whose lifetimes (from the allocation to the last use, in entry
    block order) do not overlap share memory. Statically sized buffers go in
    one arena with constant offsets; buffers with one dynamic dimension sized
    by the same value (the symbolic batch size N) in a second arena of size
    c * N whose offsets are multiples of N, planned on their per-N sizes.
    Offsets are 64-byte aligned. The views carry `kiln.planned`.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect", "mlir::arith::ArithDialect"];
}

def KilnGeneralizeNamedOps : Pass<"kiln-generalize-named-ops", "mlir::func::FuncOp"> {
  let summary = "Turns named linalg ops other than contractions, convolutions and fills into linalg.generic";
  let description = [{
    `linalg-fuse-elementwise-ops` only fuses `linalg.generic` ops: generalizing
    reductions, broadcasts, transposes and copies first lets elementwise
    producers fuse into them (e.g. a softmax's exp into its sum). Matmuls and
    convolutions stay named for their own tiling, fills for memset.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def KilnLowerStridedCopies : Pass<"kiln-lower-strided-copies", "mlir::func::FuncOp"> {
  let summary = "Rewrites memref.copy between non-contiguous memrefs into linalg.copy";
  let description = [{
    `finalize-memref-to-llvm` lowers a copy between two identity-layout memrefs
    to `llvm.memcpy`, but any other copy (into a subview, from a transposed
    view) to a call of `memrefCopy` from MLIR's C runner utilities. Rewriting
    those copies into `linalg.copy` before the linalg-to-loops lowering gives
    plain loops, so the compiled code needs no MLIR runtime library.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def KilnSequentializeSmallLoops : Pass<"kiln-sequentialize-small-loops", "mlir::func::FuncOp"> {
  let summary = "Turns scf.parallel loops too small or too nested for threads into scf.for nests";
  let description = [{
    Only an outermost `scf.parallel` whose static iteration count (times the
    static trip counts of the loops inside it) reaches `min-parallel-work`
    stays parallel, to become an OpenMP parallel loop; every other
    `scf.parallel` becomes nested `scf.for` loops, so small kernels do not pay
    for a thread fork and inner loops stay vectorizable.
  }];
  let options = [
    Option<"minParallelWork", "min-parallel-work", "int64_t", /*default=*/"32768",
           "Smallest iteration count (with inner loops) run on several threads">,
  ];
  let dependentDialects = ["mlir::scf::SCFDialect"];
}

def KilnOutlineKernels : Pass<"kiln-outline-kernels", "mlir::ModuleOp"> {
  let summary = "Splits a large bufferized function into private functions, one per distinct kernel and runs of a few calls";
  let description = [{
    LLVM's translation of a function (the OpenMP outlining of each parallel
    loop walks the whole function), its optimization and its code generation
    take time growing faster than linearly with the function's size: an
    unrolled recurrent network's graph of thousands of kernels in one function
    compiled in minutes. After bufferization, in each public function with at
    least 2 x `kernels-per-function` kernels (ops with regions: linalg ops,
    loops; and calls):

    With `merge-kernels` (the default), when at least half of the kernels that
    become loops (ops with regions, `memref.copy` of strided views) repeat an
    earlier one (a hash of their ops, attributes and types, values, locations,
    `kiln.kernel` names and views' static offsets aside), each of them first
    becomes a private function `@<function>_kernel_<i>` (LLVM `noinline`) taking the
    buffers it uses as arguments (a strided view with its offset dynamic when
    only linalg ops, copies and `memref.dim` use it, so slices at different offsets
    pass alike) and recomputing the other constants and index arithmetic it
    uses. A kernel structurally equal to one outlined before (same types, same
    ops and attributes, same uses of arguments and results, locations aside;
    hashed, then compared with OperationEquivalence) calls that function
    instead: the steps of an unrolled time loop, the same bodies on other
    views of the arena, share one function, so LLVM optimizes and compiles each
    distinct kernel once. Their `kiln.kernel` names are dropped; KILN_PROFILE's
    names stay at the call sites.

    Then the body is cut into runs of `kernels-per-function` kernels (now
    calls) with the ops between them. A run becomes a private function
    `@<function>_part_<i>` (LLVM `noinline`) called after the run's place. It
    recomputes the region-free, memory-effect-free ops it uses (constants,
    index arithmetic, `memref.dim`, views and casts), so its loop bounds stay
    static and its buffers views of an allocation or an argument as in the
    whole function; it takes the other values it uses as arguments and
    returns those of its results used after it. Smaller functions are left as
    they are.
  }];
  let options = [
    Option<"kernelsPerFunction", "kernels-per-function", "int64_t", /*default=*/"32",
           "Kernels in each outlined run">,
    Option<"mergeKernels", "merge-kernels", "bool", /*default=*/"true",
           "Outline each kernel, structurally equal ones into one function">,
  ];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::memref::MemRefDialect"];
}

def KilnMatmulToBlas : Pass<"kiln-matmul-to-blas", "mlir::ModuleOp"> {
  let summary = "Replaces linalg.matmul and linalg.batch_matmul on f32/f64 memrefs by calls to BLAS";
  let description = [{
    Runs after bufferization. A `linalg.matmul` or `linalg.batch_matmul` whose
    operands are f32 or f64 strided memrefs and whose indexing maps are the
    plain ones or transpose A and/or B (what -kiln-lower-to-linalg produces)
    becomes a `func.call` of `kiln_gemm_<f32|f64>` or
    `kiln_batch_gemm_<f32|f64>` (declared with `llvm.emit_c_interface`, defined
    in kiln's runtime on top of cblas), with the memrefs cast to fully dynamic
    strided layouts and the transpositions as i32 flags, then an `accumulate`
    flag: C += op(A) * op(B), per batch for the batched form; when C was just
    filled with zeros (nothing else uses it in between), the fill is removed
    and `accumulate` is 0, so BLAS writes C (beta = 0). Any other
    contraction (broadcast maps, mixed or integer types) is left to the loops.

    Convolutions likewise: `linalg.conv_2d_nchw_fchw` on f32/f64 memrefs and
    the filter-gradient `linalg.generic` that `-kiln-lower-to-linalg`'s
    conv-calls option marks `kiln.conv2d_grad_filter` become calls of
    `kiln_conv2d_<f32|f64>` / `kiln_conv2d_grad_filter_<f32|f64>` (memrefs,
    i64 strides and dilations, i32 accumulate; im2col + one GEMM over the
    batch in the runtime).
  }];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect"];
}

def KilnWidenBoolBuffers : Pass<"kiln-widen-bool-buffers", "mlir::func::FuncOp"> {
  let summary = "Stores i1 tensors passed between linalg.generic kernels as i8";
  let description = [{
    An i1 result of a linalg.generic (a comparison kept for later, e.g. the
    relu mask the backward reads) that another linalg.generic reads is
    written as i8 (`arith.extui` before the yield) and each reading generic
    truncates its element back to i1 (`arith.trunci` at the start of its
    body). In memory an i1 element takes a byte but a vector of i1 is
    bit-packed, so LLVM's loop vectorizer leaves loops that load or store i1
    scalar; with i8 they vectorize. Readers that are not generics (reshapes,
    returns, library calls) read an i1 copy. Generics that kiln's library-call
    passes match (pool2d_grad, conv2d_grad_filter) are left alone. Runs on
    tensors, before bufferization.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect", "mlir::tensor::TensorDialect",
                           "mlir::linalg::LinalgDialect"];
}

def KilnVectorizeTransposes : Pass<"kiln-vectorize-transposes", "mlir::func::FuncOp"> {
  let summary = "Tiles static 2-d f32/f64 linalg.transpose ops into vector-register squares";
  let description = [{
    A static 2-d `linalg.transpose` on f32 or f64 tensors (the generated
    GEMM's per-block copy of a B read across its rows, x W^T) is tiled into
    squares of one vector register's lanes (16x16 f32 with 512-bit vectors,
    8x8 with 256-bit ones), each vectorized into a `vector.transpose` of
    registers and lowered to shuffles (the 16x16 unpack/shuffle network with
    512-bit f32, AVX2's 8x8 shuffle-and-blend network with 256-bit f32, else
    one `vector.shuffle` that LLVM lowers to permutes).
    Edges that are no multiple of the lanes stay loops. Without it the copy
    moves one element per strided scalar load. Runs on tensors after
    -kiln-tile-matmuls.
  }];
  let options = [
    Option<"vectorBits", "vector-bits", "int64_t", /*default=*/"0",
           "Bits of a vector register (0: the host's: 512 with AVX-512, 256 with AVX)">,
  ];
  // LLVM: the AVX2 8x8 lowering blends with inline assembly.
  let dependentDialects = ["mlir::vector::VectorDialect", "mlir::scf::SCFDialect",
                           "mlir::tensor::TensorDialect", "mlir::affine::AffineDialect",
                           "mlir::LLVM::LLVMDialect"];
}

def KilnVectorizeReductions : Pass<"kiln-vectorize-reductions", "mlir::func::FuncOp"> {
  let summary = "Float reductions along the innermost contiguous dimension get vector accumulators";
  let description = [{
    On buffers, before the linalg-to-loops lowering. A `linalg.generic` whose
    innermost dimension is a reduction, combined into each output by `addf`,
    `mulf`, `maximumf`, `minimumf`, `maxnumf` or `minnumf`, with an elementwise
    arith/math body and identity-layout operands (row sums and maxima, softmax's
    sums, a convolution's bias gradient over N, H, W of NCHW) becomes: an
    `scf.parallel` over its parallel dimensions, `scf.for` loops over its outer
    reduction dimensions carrying the accumulators, and over its innermost
    reduction dimensions that every input reads contiguously (H and W of NCHW,
    collapsed into one run) a flat loop of 4 vector accumulators a step, a loop
    of one vector a step and a scalar tail; then one horizontal
    `vector.reduction` (reassociating) per output element, combined with the
    output's initial value. LLVM vectorizes no float sum of a scalar loop (that
    reassociates it), so these ran one element per add latency. Reductions over
    outer dimensions only (a column sum: the innermost loop parallel) are left
    to LLVM's vectorizer.
  }];
  let options = [
    Option<"vectorBits", "vector-bits", "int64_t", /*default=*/"0",
           "Bits of a vector register (0: the host's: 512 with AVX-512, 256 with AVX)">,
  ];
  let dependentDialects = ["mlir::vector::VectorDialect", "mlir::scf::SCFDialect",
                           "mlir::memref::MemRefDialect", "mlir::arith::ArithDialect"];
}

def KilnTileMatmuls : Pass<"kiln-tile-matmuls", "mlir::func::FuncOp"> {
  let summary = "Tiles and vectorizes linalg.matmul and linalg.batch_matmul on f32/f64 tensors";
  let description = [{
    The generated GEMM of KILN_GEMM=codegen, run on tensors before
    bufferization. A matmul (or batch_matmul) with a static n, f32 or f64
    operands and plain or transposed operand maps is tiled into output blocks
    (`scf.forall`, later parallel loops over threads), a k panel (`scf.for`),
    and register tiles of up to 8x32 (`scf.for` over m, n, k). Each register
    tile is vectorized into a `vector.contract`, its accumulator is hoisted out
    of the k loop into loop-carried vectors, and the contraction is lowered to
    outer products, i.e. vector FMAs. Tile sizes divide static shapes (e.g.
    784, 1000, 10), so no partial tiles occur; an n wider than two vectors but
    no multiple of two (1000, 784 with AVX-512) is first split into two
    matmuls (`linalg::splitOp`) at the last multiple of two vectors (992 + 8,
    768 + 16), the rest one tile wide. Output blocks have 16 register tiles'
    rows. Each block packs each k panel of B into strips of nr columns
    (a tensor<nc/nr x kc x nr>, made once per block before the k loop; a
    vector row at a time, or per strip a `linalg.transpose` when B is read
    across its rows), so a register tile's B is one contiguous run instead
    of rows a whole row of B apart (TLB and L1-set misses at 2048 columns).
    A dynamic m (the symbolic batch size) gets blocks of 16 register tiles'
    rows whose register loop over rows is peeled: full
    8-row tiles are vectorized, the last partial tile one vectorized row at a
    time. A dynamic
    k has no k panel: the register kernel's k loop runs to the run-time size.
    A shape without a usable register tile, a dynamic n and other
    contractions are left to the plain loops.

    The register tile comes from the target's vector registers: `vector-bits`
    wide, `vector-registers` of them (0, the default: the host CPU's, e.g.
    512/32 with AVX-512, 256/16 with AVX2). The tile is nr = two vectors wide
    (else one, else n itself; never three: LLVM spills a vector<48xf32> FMA),
    and as many rows (at most 8) as leave registers
    for the accumulator (mr * nr / lanes), one B row (nr / lanes) and one
    broadcast A element: 8x32 f32 with AVX-512, 6x16 with AVX2; B's packed
    strips are nr wide, so the kernel's B loads are contiguous vectors.

    A matmul whose result has one use, an all-parallel `linalg.generic` over
    its output space reading it through the identity map (the epilogue of a
    `kiln.fusion` region: bias add, activation, scale, the relu mask of a
    backward, an SGD update of a weight gradient), is tiled with it: the
    epilogue is tiled into the output blocks and the matmul and the fill of
    its accumulator are fused into each block, so every block is zeroed,
    accumulated and finished by the epilogue while it is in cache; the
    epilogue's other inputs are read per block. A column split splits the
    epilogue alike. `fuse-epilogues=false` leaves epilogues as loop nests of
    their own, which the compiled backend's pipeline does unless
    KILN_FUSE_EPILOGUES=1 (measured no faster, bench/RESULTS.md), except
    (`fuse-update-epilogues`, on unless KILN_FUSE_EPILOGUES=0) the epilogue of
    a weight gradient, an A read down its columns (gy^T x, the SGD update of
    the parameter): fused, it saves the zero fill of the whole gradient and two
    passes over it (1000x1000: 24 MB of memory traffic -> 8 MB).
  }];
  let options = [
    Option<"vectorBits", "vector-bits", "int64_t", /*default=*/"0",
           "Width of the target's vector registers in bits (0: the host CPU's)">,
    Option<"vectorRegisters", "vector-registers", "int64_t", /*default=*/"0",
           "Number of the target's vector registers (0: the host CPU's)">,
    Option<"fuseEpilogues", "fuse-epilogues", "bool", /*default=*/"true",
           "Apply a matmul's elementwise epilogue to each output block">,
    Option<"fuseUpdateEpilogues", "fuse-update-epilogues", "bool", /*default=*/"true",
           "With fuse-epilogues=false: still apply the epilogue of a weight gradient "
           "(A read down its columns, gy^T x: the SGD update) to each output block">,
  ];
  let dependentDialects = ["mlir::scf::SCFDialect", "mlir::tensor::TensorDialect",
                           "mlir::vector::VectorDialect", "mlir::affine::AffineDialect",
                           "mlir::arith::ArithDialect"];
}

def KilnStartCollectives : Pass<"kiln-start-collectives", "mlir::ModuleOp"> {
  let summary = "Turns kiln.collective_start into a runtime call placed right after its bucket is computed";
  let description = [{
    Runs on linalg on tensors, before bufferization. Each `kiln.collective_start`
    and the ops that compute only its bucket (the concatenation of the
    gradients: tensor.empty, inserts, reshapes; none with memory effects)
    move, in order, right after the last op whose value they use, so the
    bucket is written as soon as its last gradient is and before the kernels
    of the rest of the backward. A bucket that is no concatenation or kernel
    result (a reshaped gradient, an input) is first copied into a fresh
    tensor (the copy into the out-param that its return needs anyway, made
    here instead of at the end). The op then becomes
    `bufferization.to_buffer %bucket read_only`, a cast to
    `memref<?xT, strided<[?], offset: ?>>` and a `func.call` of
    `kiln_collective_start_<f32|f64>` (declared with `llvm.emit_c_interface`,
    defined in kiln's runtime: kiln/collective_abi.h) with the bucket index
    as an i64; its result is replaced by the bucket. The function records its
    number of inputs in `kiln.collective_inputs` for
    -kiln-check-collective-buffers.
  }];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::memref::MemRefDialect",
                           "mlir::arith::ArithDialect", "mlir::bufferization::BufferizationDialect",
                           "mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect"];
}

def KilnCheckCollectiveBuffers : Pass<"kiln-check-collective-buffers", "mlir::func::FuncOp"> {
  let summary = "Drops the collective starts whose buffer is not one of the function's out-params";
  let description = [{
    Runs after bufferization and -buffer-results-to-out-params. A call of
    `kiln_collective_start_<f32|f64>` hands its buffer to a communicator
    that writes it after the call returns, so the buffer must be the
    caller's: one of the out-params (an argument past the
    `kiln.collective_inputs` inputs, through memref.cast). A call on any
    other buffer (an intermediate that is copied into the result later, an
    input returned as it is) is removed; the caller then starts that bucket's
    collective once the function has returned. The attribute is removed.
  }];
}

#endif // KILN_CODEGEN_CPU_PASSES_TD
