// The runtime side of kiln.collective_start (kiln/collective_abi.h): compiled graphs call
// these to hand a finished result buffer to the handler registered on their thread.
#include "kiln/collective_abi.h"

namespace kiln::collective_abi {
namespace {

thread_local Handler* registered = nullptr;

template <typename T>
void start(gemm_abi::StridedMemRef<T, 1>* bucket, int64_t index) {
  Handler* h = registered;
  if (!h || !bucket || (bucket->sizes[0] > 1 && bucket->strides[0] != 1)) return;
  h->start(index, bucket->aligned + bucket->offset, bucket->sizes[0], dtype_of<T>::value);
}

}  // namespace

ScopedHandler::ScopedHandler(Handler& handler) : previous_(registered) { registered = &handler; }
ScopedHandler::~ScopedHandler() { registered = previous_; }
Handler* current_handler() { return registered; }

}  // namespace kiln::collective_abi

extern "C" {

__attribute__((visibility("default"))) void _mlir_ciface_kiln_collective_start_f32(
    kiln::gemm_abi::StridedMemRef<float, 1>* bucket, int64_t index) {
  kiln::collective_abi::start(bucket, index);
}

__attribute__((visibility("default"))) void _mlir_ciface_kiln_collective_start_f64(
    kiln::gemm_abi::StridedMemRef<double, 1>* bucket, int64_t index) {
  kiln::collective_abi::start(bucket, index);
}
}
