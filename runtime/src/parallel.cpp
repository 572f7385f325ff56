// The runtime's parallel loops (parallel.h): on the OpenMP runtime's threads when
// the process has loaded libomp (the JIT's generated loops run there), else on
// a worker pool of the runtime's own: threads created on first use, waiting on
// a condition variable (passive: no spinning between jobs), one job at a time.
#include "parallel.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "kiln/env.h"

namespace kiln::runtime {
namespace {

thread_local bool t_inside = false;

class Pool {
 public:
  static Pool& get() {
    // Leaked on purpose: workers may still be waiting when static destructors run.
    static Pool* pool = new Pool();
    return *pool;
  }

  void run(int64_t chunks, const std::function<void(int64_t)>& chunk, int workers) {
    std::lock_guard<std::mutex> job(job_mutex_);  // one job at a time
    ensure(workers);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      chunk_ = &chunk;
      chunks_ = chunks;
      next_.store(0);
      done_ = 0;
      active_ = std::min<int64_t>(workers, chunks - 1);
      ++generation_;
    }
    wake_.notify_all();
    int64_t mine = work();
    std::unique_lock<std::mutex> lock(mutex_);
    done_ += mine;
    finished_.wait(lock, [&] { return done_ == chunks_ && joined_ == active_; });
    chunk_ = nullptr;
    joined_ = 0;
  }

 private:
  // Takes chunks until none is left; returns how many it ran.
  int64_t work() {
    int64_t ran = 0;
    for (int64_t i; (i = next_.fetch_add(1)) < chunks_; ++ran) (*chunk_)(i);
    return ran;
  }

  void ensure(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      int index = static_cast<int>(threads_.size());
      threads_.emplace_back([this, index] { loop(index); });
      threads_.back().detach();
    }
  }

  void loop(int index) {
    t_inside = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (index >= active_) continue;  // this job uses fewer workers
      lock.unlock();
      int64_t ran = work();
      lock.lock();
      done_ += ran;
      ++joined_;
      finished_.notify_all();
    }
  }

  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> threads_;
  const std::function<void(int64_t)>* chunk_ = nullptr;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  int64_t done_ = 0;      // chunks run in this job
  int64_t active_ = 0;    // workers taking part in this job
  int64_t joined_ = 0;    // of those, how many finished
  uint64_t generation_ = 0;
};

// libomp's entry points (the ABI compilers emit for `#pragma omp parallel`), once the
// process has loaded it with RTLD_GLOBAL (codegen/cpu's JIT does, for the generated
// loops). The runtime's loops run on the same threads as the generated ones: a second
// pool would be a third set of threads on the cores, and libomp's workers spin
// (KMP_BLOCKTIME, 200 ms by default) for a while after each generated loop, taking a
// core from the pool's workers and OpenBLAS meanwhile (the CNN step's convolution GEMMs
// ran at 0.6-0.7 of their speed alone).
struct Ident {  // libomp's ident_t
  int32_t reserved_1 = 0;
  int32_t flags = 0x02;  // KMP_IDENT_KMPC
  int32_t reserved_2 = 0, reserved_3 = 0;
  const char* psource = ";kiln;kiln::runtime::parallel_for;0;0;;";
};
using Microtask = void (*)(int32_t* gtid, int32_t* btid, ...);
struct OpenMP {
  void (*fork_call)(Ident*, int32_t, Microtask, ...) = nullptr;
  void (*push_num_threads)(Ident*, int32_t, int32_t) = nullptr;
  int32_t (*global_thread_num)(Ident*) = nullptr;
};

// The entry points, or null while libomp is not loaded (looked up again on later calls
// until it is; once found, kept: the JIT never unloads it).
const OpenMP* openmp() {
  static std::atomic<const OpenMP*> found{nullptr};
  if (const OpenMP* o = found.load(std::memory_order_acquire)) return o;
  void* fork = ::dlsym(RTLD_DEFAULT, "__kmpc_fork_call");
  void* push = ::dlsym(RTLD_DEFAULT, "__kmpc_push_num_threads");
  void* gtid = ::dlsym(RTLD_DEFAULT, "__kmpc_global_thread_num");
  if (!fork || !push || !gtid) return nullptr;
  static OpenMP entries;
  static std::once_flag once;
  std::call_once(once, [&] {
    entries.fork_call = reinterpret_cast<decltype(entries.fork_call)>(fork);
    entries.push_num_threads = reinterpret_cast<decltype(entries.push_num_threads)>(push);
    entries.global_thread_num = reinterpret_cast<decltype(entries.global_thread_num)>(gtid);
    found.store(&entries, std::memory_order_release);
  });
  return &entries;
}

// One parallel_for on an OpenMP team: its threads take chunks until none is left.
struct TeamJob {
  const std::function<void(int64_t)>* chunk;
  int64_t chunks;
  std::atomic<int64_t> next{0};
};

void teamMicrotask(int32_t*, int32_t*, TeamJob* job) {
  const bool saved = t_inside;
  t_inside = true;
  for (int64_t i; (i = job->next.fetch_add(1)) < job->chunks;) (*job->chunk)(i);
  t_inside = saved;
}

void runOnOpenMP(const OpenMP& omp, int64_t chunks, const std::function<void(int64_t)>& chunk, int threads) {
  static Ident ident;
  TeamJob job{&chunk, chunks};
  const int32_t gtid = omp.global_thread_num(&ident);
  omp.push_num_threads(&ident, gtid, static_cast<int32_t>(std::min<int64_t>(threads, chunks)));
  omp.fork_call(&ident, 1, reinterpret_cast<Microtask>(&teamMicrotask), &job);
}

int threadCount() {
  int n = env::num_threads();
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return n;
}

}  // namespace

int parallel_threads() { return t_inside ? 1 : threadCount(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int threads = threadCount();
  int64_t chunks = std::min<int64_t>((n + grain - 1) / grain, static_cast<int64_t>(threads) * 4);
  if (chunks <= 1 || threads <= 1 || t_inside) {
    body(0, n);
    return;
  }
  int64_t size = (n + chunks - 1) / chunks;
  chunks = (n + size - 1) / size;
  std::function<void(int64_t)> chunk = [&](int64_t i) { body(i * size, std::min(n, (i + 1) * size)); };
  t_inside = true;
  if (const OpenMP* omp = openmp())
    runOnOpenMP(*omp, chunks, chunk, threads);
  else
    Pool::get().run(chunks, chunk, threads - 1);
  t_inside = false;
}

}  // namespace kiln::runtime
