// The runtime's worker pool (parallel.h): threads created on first use, waiting
// on a condition variable (passive: no spinning between jobs), one job at a time.
#include "parallel.h"

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
  Pool::get().run(chunks, chunk, threads - 1);
  t_inside = false;
}

}  // namespace kiln::runtime
