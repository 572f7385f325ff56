// The compiled CPU backend: linalg on tensors -> LLVM dialect -> object file -> ORC JIT.
//
// Three stages, each usable alone so that a disk cache can skip the first two:
//   buildLowerToLLVMPipeline  MLIR passes, linalg-on-tensors to the LLVM dialect
//   compile_to_object         LLVM dialect to an optimized object file for the host CPU
//   Kernel::load_object       object bytes to a callable kernel (ORC LLJIT)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/array.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir {
class DialectRegistry;
}

namespace kiln::cpu {

#define GEN_PASS_DECL
#include "kiln/codegen/CpuPasses.h.inc"

// On the scf.forall of a matmul's output blocks (-kiln-tile-matmuls), for the FLOP count
// of -kiln-profile-kernels (2 * k per output element): the matmul's static depth k, and
// its output's shape, -1 for a dynamic size (whose extent is then the forall's upper bound
// that is not a constant: canonicalization may drop the loop's static dimensions of one
// iteration, never a dynamic one).
inline constexpr const char* kMatmulDepthAttr = "kiln.matmul_depth";
inline constexpr const char* kMatmulOutputAttr = "kiln.matmul_output";

struct PipelineOptions {
  // Run large parallel loops on several threads (OpenMP); needs libomp at run time.
  bool parallel = true;
  // See -kiln-sequentialize-small-loops.
  int64_t min_parallel_work = 32768;
  // Matmuls (linalg.matmul, linalg.batch_matmul on f32/f64), convolutions and pooling
  // gradients call OpenBLAS / kiln's runtime (-kiln-matmul-to-blas); when false, static
  // f32/f64 matmuls are tiled and vectorized (-kiln-tile-matmuls), the rest become loops.
  bool gemm_blas = true;
  // With gemm_blas: the matmuls -kiln-tile-matmuls takes are generated all the same
  // (convolutions, pooling gradients and the other matmuls stay calls). The default
  // where the generated GEMM is the faster (default_pipeline_options).
  bool generate_matmuls = false;
  // Times every kernel (-kiln-profile-kernels; KILN_PROFILE, kiln/profile.h).
  bool profile = false;
  // A large function's kernels move into private functions of their own
  // (-kiln-outline-kernels), so that LLVM's time stays about linear in its size.
  bool outline_kernels = true;
  // With outline_kernels: each kernel moves into a function of its own, structurally
  // equal ones into one (-kiln-outline-kernels merge-kernels), so an unrolled loop's
  // steps share their code.
  bool merge_kernels = true;
  // The target's vector registers, for the generated GEMM's register tiles
  // (-kiln-tile-matmuls): width in bits and count; 0 is the host CPU's.
  int64_t vector_bits = 0;
  int64_t vector_registers = 0;
  // The generated GEMM applies a matmul's elementwise epilogue to each output block
  // (-kiln-tile-matmuls fuse-epilogues; KILN_FUSE_EPILOGUES=1). Off by default: not
  // faster, measured (bench/RESULTS.md, 2026-12-02 06:40): the epilogue stays one loop
  // nest after the GEMM.
  bool fuse_epilogues = false;
  // ... but a weight gradient's (gy^T x: its SGD update) is applied to each output block
  // (-kiln-tile-matmuls fuse-update-epilogues) unless KILN_FUSE_EPILOGUES=0: no zero fill
  // of the whole gradient and no second pass over it and the parameter.
  bool fuse_update_epilogues = true;
};

// The vector registers of a CPU with these LLVM features ("+avx2,+fma,-avx512f,...":
// '+' marks a feature present): 512 bits x 32 with avx512f, 256 x 16 with avx,
// else 128 x 16 (SSE). host_vector_shape() is the host CPU's.
struct VectorShape {
  int64_t bits = 128;
  int64_t registers = 16;
};
VectorShape vector_shape_of(const std::string& features);
// The vector registers of the CPU kiln compiles for (target_cpu()).
VectorShape host_vector_shape();

// The CPU the compiled graphs are generated for: the host's name and LLVM features, less
// what is above KILN_CPU_CAPABILITY (PyTorch's ATEN_CPU_CAPABILITY): `avx2` drops AVX-512
// and AMX (the AVX2 code, its 6x16 register tiles and OpenBLAS GEMMs by default, on an
// AVX-512 host), `sse4.2` drops AVX too; unset, empty or `avx512`: the host's. A level
// above the host's changes nothing; any other value is a kiln::Error. Read on every call
// (the cache key, host_target_id, has it).
struct TargetCpu {
  std::string name;
  std::vector<std::string> features;  // "+avx2", "-avx512f", ...
  std::string capability;             // "" (the host's), "avx2" or "sse4.2"
};
TargetCpu target_cpu();

// Adds the passes from linalg/tensor/arith/math on tensors to the LLVM dialect:
// elementwise fusion, one-shot bufferization with function boundaries, results
// as caller-provided out-params, buffer deallocation, matmuls to BLAS calls
// (options.gemm_blas), linalg to (parallel)
// loops, OpenMP, and conversion to LLVM with `llvm.emit_c_interface` wrappers.
void buildLowerToLLVMPipeline(mlir::OpPassManager& pm, const PipelineOptions& options = {});

// Registers the dialects, bufferization models and LLVM IR translations the
// pipeline and compile_to_object need.
void registerCpuDialects(mlir::DialectRegistry& registry);
// Registers the CPU passes and the named pipeline `kiln-lower-to-llvm`.
void registerCpuPipelines();

// The pipeline options for this process: KILN_NUM_THREADS=1, or no libomp,
// turns threads off; KILN_GEMM=codegen|blas picks how matmuls run (generated loops
// or OpenBLAS). Unset: OpenBLAS, except that on a host with AVX-512 the matmuls
// -kiln-tile-matmuls takes are generated (measured faster there, bench/RESULTS.md
// 2026-12-02 03:10). Read from the environment on every call.
PipelineOptions default_pipeline_options();
// The environment default_pipeline_options reads, as text (a few getenv calls,
// no parsing): what changes the options within a process, for in-memory cache
// keys on the hot path. Equal text, equal options.
std::string pipeline_environment();

// Everything that makes an object file differ besides its IR: LLVM version,
// target triple, host CPU name and features, threads or not, optimization
// level, GEMM choice ("gemm=blas|codegen|blas+generated"). Part of a disk-cache key; the
// CPU part is computed once, the pipeline options each call.
std::string host_target_id(int opt_level = 3);

// Translates `module` (LLVM dialect, entry `entry` with a C interface) to LLVM
// IR, optimizes it at -O`opt_level` for the host CPU and emits an ELF object.
// The object also defines `kiln_packed_<entry>(void** args)`, which calls
// `_mlir_ciface_<entry>` with args[i] as its i-th descriptor pointer. If
// `llvm_ir` is given it receives the optimized LLVM IR. Throws kiln::Error.
// A large module's LLVM stage runs in parts on threads (KILN_COMPILE_THREADS, default
// the hardware threads): its functions spread over parts, each optimized and compiled
// on its own; the result is then an object set (kObjectsMagic, the count and each
// object's size and bytes, little-endian u64) that Kernel::load_object links as one.
std::vector<uint8_t> compile_to_object(mlir::ModuleOp module, const std::string& entry = "graph",
                                       int opt_level = 3, std::string* llvm_ir = nullptr);
inline constexpr char kObjectsMagic[] = "KILNOBJS";
// The objects of compile_to_object's result: its one object, or the objects of a set.
// Throws kiln::Error on a corrupt set.
std::vector<std::vector<uint8_t>> split_objects(const std::vector<uint8_t>& bytes);

// Whether this build has kiln's `-kiln-lower-to-linalg` pass, which
// compile_module needs to go from kiln ops to linalg.
bool linalg_lowering_available();

struct CompileOptions {
  PipelineOptions pipeline = default_pipeline_options();
  int opt_level = 3;
  // When non-empty: <dump_prefix>.linalg.mlir and <dump_prefix>.ll are written.
  std::string dump_prefix;
  // Where a failed compile leaves the IR it failed on: <failure_prefix>.failed.mlir.
  std::string failure_prefix = "kiln-graph";
};

struct CompileReport {
  int64_t linalg_ops = 0;  // linalg ops after -kiln-lower-to-linalg
  double linalg_ms = 0;    // kiln -> linalg
  double llvm_dialect_ms = 0;  // linalg -> LLVM dialect (buildLowerToLLVMPipeline)
  double object_ms = 0;    // LLVM IR, optimization and machine code (compile_to_object)
};

// Lowers `module` (kiln ops after the frontend pipeline, entry @graph) to
// linalg, then to the LLVM dialect, then to an object file; the module is
// transformed in place. Throws kiln::Error with MLIR's diagnostics (which name
// the failing op) and the path of a file holding the IR of the failing stage.
std::vector<uint8_t> compile_module(mlir::ModuleOp module, const CompileOptions& options = {},
                                    CompileReport* report = nullptr);

// A compiled graph loaded into the JIT. Thread-safe to call concurrently if
// the compiled code does not write its inputs.
class Kernel {
 public:
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // Links an object from compile_to_object into the process (no MLIR involved).
  static std::unique_ptr<Kernel> load_object(const std::vector<uint8_t>& object,
                                             const std::string& entry = "graph");

  // Calls the entry with memref descriptors of `inputs` then `outputs` (the
  // out-params, already allocated with their final shapes and dtypes).
  void call(const std::vector<Array>& inputs, std::vector<Array>& outputs) const;

 private:
  struct Impl;
  explicit Kernel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cpu
