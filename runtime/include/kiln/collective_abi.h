// The C ABI of the call that a compiled graph makes to start a collective on one of its
// results (kiln.collective_start, lowered by the cpu backend's -kiln-start-collectives),
// and the per-thread handler that the call reaches. One definition for the pass, the runtime
// (runtime/src/collective_calls.cpp), kiln::distributed (which registers the handler) and
// the tests. No MLIR, no MPI here.
//
// The pass declares
//   func.func private @kiln_collective_start_f32(memref<?xf32, strided<[?], offset: ?>> bucket,
//                                               i64 index) attributes {llvm.emit_c_interface}
// (and _f64) and calls it right after the graph has written `bucket`, which is one of the
// graph's result buffers; the graph does not touch it again. The call passes the buffer to
// the handler registered on the calling thread (the thread that runs the graph) and
// returns; with no handler registered, or a buffer that is not contiguous, it does nothing
// (the caller then starts the collective itself once the graph has returned).
#pragma once
#include <cstdint>

#include "kiln/dtype.h"
#include "kiln/gemm_abi.h"

namespace kiln::collective_abi {

// <prefix><f32|f64>, without the `_mlir_ciface_` prefix.
inline constexpr const char* kCollectiveStartPrefix = "kiln_collective_start_";
inline constexpr int kNumParams = 2;  // the memref, the i64 index

// What the call reaches: `index` is the op's bucket attribute, `data`/`count`/`dtype` the
// bucket's buffer. Called on the thread running the graph, between two of its kernels; it
// must not throw (there are compiled frames below it) and should return quickly.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void start(int64_t index, void* data, int64_t count, DType dtype) noexcept = 0;
};

// Registers `handler` on this thread for its lifetime (the previous one is restored after).
class ScopedHandler {
 public:
  explicit ScopedHandler(Handler& handler);
  ~ScopedHandler();
  ScopedHandler(const ScopedHandler&) = delete;
  ScopedHandler& operator=(const ScopedHandler&) = delete;

 private:
  Handler* previous_;
};

// The handler registered on this thread, or null.
Handler* current_handler();

}  // namespace kiln::collective_abi

extern "C" {
void _mlir_ciface_kiln_collective_start_f32(kiln::gemm_abi::StridedMemRef<float, 1>* bucket, int64_t index);
void _mlir_ciface_kiln_collective_start_f64(kiln::gemm_abi::StridedMemRef<double, 1>* bucket, int64_t index);
}

static_assert(kiln::gemm_abi::arity(&_mlir_ciface_kiln_collective_start_f32) == kiln::collective_abi::kNumParams &&
                  kiln::gemm_abi::arity(&_mlir_ciface_kiln_collective_start_f64) == kiln::collective_abi::kNumParams,
              "the collective declarations and kNumParams disagree");
