// Kernel: links an object file into one process-wide ORC LLJIT and calls it with memref descriptors.
#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "kiln/codegen/cpu.h"
#include "kiln/env.h"
#include "kiln/error.h"
#include "llvm/ExecutionEngine/Orc/AbsoluteSymbols.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"

namespace kiln::cpu {
namespace {

using PackedEntry = void (*)(void**);

// Makes libomp's symbols visible to the generated code, and applies KILN_NUM_THREADS.
void loadOpenMPRuntime() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string error;
    if (llvm::sys::DynamicLibrary::LoadLibraryPermanently("libomp.so.5", &error)) return;
    if (int n = env::num_threads(); n > 0)
      if (auto* set = reinterpret_cast<void (*)(int)>(
              llvm::sys::DynamicLibrary::SearchForAddressOfSymbol("omp_set_num_threads")))
        set(n);
  });
}

struct Jit {
  std::mutex mutex;  // guards dylib creation and removal
  std::unique_ptr<llvm::orc::LLJIT> lljit;
  std::atomic<uint64_t> counter{0};
};

Jit& jit() {
  static Jit* instance = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    auto* j = new Jit;
    auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!builder) throw Error("kiln: cpu backend: " + llvm::toString(builder.takeError()));
    auto lljit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*builder)).create();
    if (!lljit) throw Error("kiln: cpu backend: creating the JIT failed: " + llvm::toString(lljit.takeError()));
    j->lljit = std::move(*lljit);
    return j;
  }();
  return *instance;
}

}  // namespace

struct Kernel::Impl {
  llvm::orc::JITDylib* dylib = nullptr;
  PackedEntry entry = nullptr;
};

Kernel::Kernel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Kernel::~Kernel() {
  if (!impl_ || !impl_->dylib) return;
  Jit& j = jit();
  std::lock_guard<std::mutex> lock(j.mutex);
  llvm::consumeError(j.lljit->getExecutionSession().removeJITDylib(*impl_->dylib));
}

std::unique_ptr<Kernel> Kernel::load_object(const std::vector<uint8_t>& object, const std::string& entry) {
  loadOpenMPRuntime();
  Jit& j = jit();
  auto impl = std::make_unique<Impl>();
  std::string name = "kiln_kernel_" + std::to_string(j.counter++);
  {
    std::lock_guard<std::mutex> lock(j.mutex);
    auto dylib = j.lljit->createJITDylib(name);
    if (!dylib) throw Error("kiln: cpu backend: " + llvm::toString(dylib.takeError()));
    impl->dylib = &*dylib;
  }
  // Symbols the code needs from the process: malloc/free, memcpy, libm, libomp.
  auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      j.lljit->getDataLayout().getGlobalPrefix());
  if (!process) throw Error("kiln: cpu backend: " + llvm::toString(process.takeError()));
  impl->dylib->addGenerator(std::move(*process));
  // The kernel's malloc/free (intermediate buffers) come from kiln's buffer
  // pool: buffers are reused across calls instead of fresh pages each step.
  llvm::orc::SymbolMap allocator;
  allocator[j.lljit->mangleAndIntern("malloc")] = {
      llvm::orc::ExecutorAddr::fromPtr(&kiln::detail::kernel_malloc), llvm::JITSymbolFlags::Exported};
  allocator[j.lljit->mangleAndIntern("free")] = {llvm::orc::ExecutorAddr::fromPtr(&kiln::detail::kernel_free),
                                                 llvm::JITSymbolFlags::Exported};
  if (llvm::Error err = impl->dylib->define(llvm::orc::absoluteSymbols(std::move(allocator))))
    throw Error("kiln: cpu backend: " + llvm::toString(std::move(err)));

  std::unique_ptr<Kernel> kernel(new Kernel(std::move(impl)));  // removes the dylib on error
  // One object, or the parts of an object set (compiled on threads), linked together.
  std::vector<std::vector<uint8_t>> objects = split_objects(object);
  for (size_t i = 0; i < objects.size(); ++i) {
    llvm::StringRef bytes(reinterpret_cast<const char*>(objects[i].data()), objects[i].size());
    std::string part = objects.size() == 1 ? name : name + "." + std::to_string(i);
    if (llvm::Error err = j.lljit->addObjectFile(*kernel->impl_->dylib, llvm::MemoryBuffer::getMemBufferCopy(bytes, part)))
      throw Error("kiln: cpu backend: loading the object" +
                  (objects.size() == 1 ? std::string() : " " + std::to_string(i + 1) + " of " + std::to_string(objects.size())) +
                  " (" + std::to_string(objects[i].size()) + " bytes) failed: " + llvm::toString(std::move(err)));
  }
  auto address = j.lljit->lookup(*kernel->impl_->dylib, "kiln_packed_" + entry);
  if (!address)
    throw Error("kiln: cpu backend: linking the object failed: " + llvm::toString(address.takeError()));
  kernel->impl_->entry = address->toPtr<PackedEntry>();
  return kernel;
}

void Kernel::call(const std::vector<Array>& inputs, std::vector<Array>& outputs) const {
  // One descriptor per memref: {allocated, aligned, offset, sizes[rank], strides[rank]}.
  size_t words = 0;
  for (const Array& a : inputs) words += 3 + 2 * a.shape().size();
  for (const Array& a : outputs) words += 3 + 2 * a.shape().size();
  std::vector<int64_t> descriptors(words);
  std::vector<void*> args;
  args.reserve(inputs.size() + outputs.size());
  size_t at = 0;
  auto describe = [&](const void* data, const Shape& shape) {
    int64_t* d = &descriptors[at];
    d[0] = d[1] = static_cast<int64_t>(reinterpret_cast<intptr_t>(data));
    d[2] = 0;
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      d[3 + i] = shape[i];
      d[3 + shape.size() + i] = stride;
      stride *= shape[i];
    }
    args.push_back(d);
    at += 3 + 2 * shape.size();
  };
  for (const Array& a : inputs) describe(a.raw_data(), a.shape());
  for (Array& a : outputs) describe(a.raw_data(), a.shape());
  impl_->entry(args.data());
}

}  // namespace kiln::cpu
