// Iterators: the abstract Iterator, the shared index order, SerialIterator and
// MultithreadIterator (a pool of threads reading the next batch's examples).
#include "kiln/iterators.h"

#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

namespace kiln {
namespace iterators {

namespace {

int64_t state_int(const StateMap& in, const std::string& key, const char* who) {
  auto it = in.find(key);
  if (it == in.end()) throw Error(fmt::format("kiln: {}::deserialize: the state has no key '{}'", who, key));
  const Array& a = it->second;
  if (a.size() != 1)
    throw Error(fmt::format("kiln: {}::deserialize: key '{}' has shape {}, expected one value", who, key,
                            shape_str(a.shape())));
  switch (a.dtype()) {
    case DType::i64: return a.data<int64_t>()[0];
    case DType::i32: return a.data<int32_t>()[0];
    case DType::b8: return a.data<bool>()[0] ? 1 : 0;
    case DType::f64: return static_cast<int64_t>(a.data<double>()[0]);
    case DType::f32: return static_cast<int64_t>(a.data<float>()[0]);
  }
  return 0;
}

}  // namespace

// ---- Iterator ------------------------------------------------------------------------

Iterator::~Iterator() = default;

void Iterator::reset() {
  throw Error("kiln: Iterator::reset: this iterator does not implement reset() (the Evaluator calls it before "
              "every pass over the data)");
}

void Iterator::serialize(StateMap& out, const std::string& prefix) const {
  out[prefix + "epoch"] = Array::scalar<int64_t>(epoch);
  out[prefix + "is_new_epoch"] = Array::scalar<bool>(is_new_epoch);
}

void Iterator::deserialize(const StateMap& in, const std::string& prefix) {
  epoch = state_int(in, prefix + "epoch", "Iterator");
  is_new_epoch = state_int(in, prefix + "is_new_epoch", "Iterator") != 0;
}

// ---- IndexOrder ----------------------------------------------------------------------

IndexOrder::IndexOrder(size_t size, size_t batch_size, bool repeat, bool shuffle, uint64_t seed)
    : size_(size), batch_size_(batch_size), repeat_(repeat), shuffle_(shuffle), rng_(seed) {
  reset();
}

void IndexOrder::draw_order() {
  if (shuffle_) {
    order_ = datasets::detail::shuffled_indices(size_, rng_);
  } else {
    order_.resize(size_);
    std::iota(order_.begin(), order_.end(), 0);
  }
}

void IndexOrder::reset() {
  epoch = 0;
  position_ = 0;
  is_new_epoch = false;
  draw_order();
}

double IndexOrder::epoch_detail() const {
  return static_cast<double>(epoch) + static_cast<double>(position_) / static_cast<double>(size_);
}

std::vector<size_t> IndexOrder::next_indices() {
  std::vector<size_t> indices;
  if (exhausted()) return indices;
  const int64_t start_epoch = epoch;
  while (indices.size() < batch_size_) {
    indices.push_back(order_[position_]);
    if (++position_ == size_) {
      position_ = 0;
      ++epoch;
      if (!repeat_) break;
      draw_order();
    }
  }
  is_new_epoch = epoch > start_epoch;
  return indices;
}

void IndexOrder::serialize(StateMap& out, const std::string& prefix) const {
  out[prefix + "current_position"] = Array::scalar<int64_t>(static_cast<int64_t>(position_));
  out[prefix + "epoch"] = Array::scalar<int64_t>(epoch);
  out[prefix + "is_new_epoch"] = Array::scalar<bool>(is_new_epoch);
  if (shuffle_) {
    std::vector<int64_t> order(order_.begin(), order_.end());
    out[prefix + "order"] = Array::from(order, {static_cast<int64_t>(order.size())});
    int64_t rng;
    std::memcpy(&rng, &rng_, sizeof rng);
    out[prefix + "_rng"] = Array::scalar<int64_t>(rng);
  }
}

void IndexOrder::deserialize(const StateMap& in, const std::string& prefix) {
  int64_t position = state_int(in, prefix + "current_position", "SerialIterator");
  int64_t ep = state_int(in, prefix + "epoch", "SerialIterator");
  bool new_epoch = state_int(in, prefix + "is_new_epoch", "SerialIterator") != 0;
  if (position < 0 || static_cast<size_t>(position) >= size_ || ep < 0)
    throw Error(fmt::format("kiln: SerialIterator::deserialize: position {} at epoch {} is out of range for a "
                            "dataset of {} examples (a different dataset?)",
                            position, ep, size_));
  std::vector<size_t> order;
  uint64_t rng = rng_;
  if (shuffle_) {
    auto it = in.find(prefix + "order");
    if (it == in.end())
      throw Error(fmt::format("kiln: SerialIterator::deserialize: the state has no key '{}order'", prefix));
    const Array& a = it->second;
    if (a.ndim() != 1 || static_cast<size_t>(a.size()) != size_ || (a.dtype() != DType::i64 && a.dtype() != DType::i32))
      throw Error(fmt::format("kiln: SerialIterator::deserialize: key '{}order' has shape {} {}, expected ({}) int64",
                              prefix, shape_str(a.shape()), dtype_name(a.dtype()), size_));
    for (int64_t k = 0; k < a.size(); ++k) {
      int64_t v = a.dtype() == DType::i64 ? a.data<int64_t>()[k] : a.data<int32_t>()[k];
      if (v < 0 || static_cast<size_t>(v) >= size_)
        throw Error(fmt::format("kiln: SerialIterator::deserialize: key '{}order' holds index {}, out of range", prefix,
                                v));
      order.push_back(static_cast<size_t>(v));
    }
    // Chainer's snapshots have no generator state: the shuffles then continue from this one.
    if (in.count(prefix + "_rng")) {
      int64_t r = state_int(in, prefix + "_rng", "SerialIterator");
      std::memcpy(&rng, &r, sizeof rng);
    }
  }
  position_ = static_cast<size_t>(position);
  epoch = ep;
  is_new_epoch = new_epoch;
  if (shuffle_) {
    order_ = std::move(order);
    rng_ = rng;
  }
}

// ---- SerialIterator ------------------------------------------------------------------

static datasets::DatasetPtr checked_dataset(datasets::DatasetPtr dataset, size_t batch_size, const char* who) {
  if (!dataset) throw Error(fmt::format("kiln: {}: argument 'dataset' is null", who));
  if (batch_size == 0) throw Error(fmt::format("kiln: {}: batch_size must be positive", who));
  if (dataset->size() == 0) throw Error(fmt::format("kiln: {}: the dataset is empty", who));
  return dataset;
}

SerialIterator::SerialIterator(datasets::DatasetPtr dataset, size_t batch_size, bool repeat, bool shuffle,
                               uint64_t seed)
    : dataset_(checked_dataset(std::move(dataset), batch_size, "SerialIterator")),
      order_(dataset_->size(), batch_size, repeat, shuffle, seed) {}

void SerialIterator::reset() {
  order_.reset();
  epoch = order_.epoch;
  is_new_epoch = order_.is_new_epoch;
}

bool SerialIterator::exhausted() const { return order_.exhausted(); }

double SerialIterator::epoch_detail() const { return order_.epoch_detail(); }

Batch SerialIterator::next() {
  if (exhausted()) throw Error("kiln: SerialIterator: no more batches (repeat = false and the epoch is over)");
  std::vector<size_t> indices = order_.next_indices();
  Batch batch;
  batch.reserve(indices.size());
  for (size_t i : indices) batch.push_back(dataset_->get_example(i));
  epoch = order_.epoch;
  is_new_epoch = order_.is_new_epoch;
  return batch;
}

void SerialIterator::serialize(StateMap& out, const std::string& prefix) const { order_.serialize(out, prefix); }

void SerialIterator::deserialize(const StateMap& in, const std::string& prefix) {
  order_.deserialize(in, prefix);
  epoch = order_.epoch;
  is_new_epoch = order_.is_new_epoch;
}

// ---- MultithreadIterator -------------------------------------------------------------

// Worker threads reading the examples of one batch at a time. All fields are guarded by
// `mutex`; a worker takes the next index, reads it unlocked and stores the example.
class MultithreadIterator::Pool {
 public:
  explicit Pool(size_t n_threads) {
    for (size_t i = 0; i < n_threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    work_ready_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void submit(datasets::DatasetPtr dataset, std::vector<size_t> indices) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      dataset_ = std::move(dataset);
      indices_ = std::move(indices);
      results_.assign(indices_.size(), {});
      next_ = finished_ = 0;
      error_ = nullptr;
    }
    work_ready_.notify_all();
  }

  // Waits for the batch submitted last; rethrows the first exception of get_example.
  Batch wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return finished_ == indices_.size(); });
    std::exception_ptr error = error_;
    Batch batch = std::move(results_);
    indices_.clear();
    results_.clear();
    next_ = finished_ = 0;
    error_ = nullptr;
    if (error) std::rethrow_exception(error);
    return batch;
  }

  // Drops the batch being read: examples not yet started are skipped, those being read finish.
  void cancel() {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_ += indices_.size() - next_;
    next_ = indices_.size();
    done_.wait(lock, [&] { return finished_ == indices_.size(); });
    indices_.clear();
    results_.clear();
    next_ = finished_ = 0;
    error_ = nullptr;
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      work_ready_.wait(lock, [&] { return stop_ || next_ < indices_.size(); });
      if (stop_) return;
      const size_t slot = next_++;
      const size_t index = indices_[slot];
      datasets::DatasetPtr dataset = dataset_;
      lock.unlock();
      std::vector<Array> example;
      std::exception_ptr error;
      try {
        example = dataset->get_example(index);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (slot < results_.size()) results_[slot] = std::move(example);
      if (error && !error_) error_ = error;
      if (++finished_ == indices_.size()) done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_ready_, done_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
  datasets::DatasetPtr dataset_;
  std::vector<size_t> indices_;
  Batch results_;
  size_t next_ = 0, finished_ = 0;
  std::exception_ptr error_;
};

MultithreadIterator::MultithreadIterator(datasets::DatasetPtr dataset, size_t batch_size, bool repeat, bool shuffle,
                                         size_t n_threads, uint64_t seed)
    : dataset_(checked_dataset(std::move(dataset), batch_size, "MultithreadIterator")),
      order_(dataset_->size(), batch_size, repeat, shuffle, seed),
      ahead_(order_),
      n_threads_(n_threads) {
  if (n_threads_ == 0) throw Error("kiln: MultithreadIterator: argument 'n_threads' must be positive, got 0");
}

MultithreadIterator::~MultithreadIterator() { finalize(); }

MultithreadIterator::MultithreadIterator(MultithreadIterator&&) noexcept = default;
MultithreadIterator& MultithreadIterator::operator=(MultithreadIterator&& other) noexcept {
  if (this != &other) {
    finalize();
    dataset_ = std::move(other.dataset_);
    order_ = std::move(other.order_);
    ahead_ = std::move(other.ahead_);
    n_threads_ = other.n_threads_;
    pending_ = other.pending_;
    pool_ = std::move(other.pool_);
    epoch = other.epoch;
    is_new_epoch = other.is_new_epoch;
    other.pending_ = false;
  }
  return *this;
}

void MultithreadIterator::prefetch() {
  ahead_ = order_;
  std::vector<size_t> indices = ahead_.next_indices();
  if (indices.empty()) return;
  if (!pool_) pool_ = std::make_unique<Pool>(n_threads_);
  pool_->submit(dataset_, std::move(indices));
  pending_ = true;
}

Batch MultithreadIterator::next() {
  if (!dataset_) throw Error("kiln: MultithreadIterator: the iterator was moved from");
  if (!pending_) prefetch();
  if (!pending_) throw Error("kiln: MultithreadIterator: no more batches (repeat = false and the epoch is over)");
  pending_ = false;
  Batch batch;
  try {
    batch = pool_->wait();
  } catch (...) {
    // The failed batch is skipped, as a SerialIterator would have advanced past it too.
    order_ = ahead_;
    epoch = order_.epoch;
    is_new_epoch = order_.is_new_epoch;
    throw;
  }
  order_ = ahead_;
  epoch = order_.epoch;
  is_new_epoch = order_.is_new_epoch;
  prefetch();  // read the following batch while this one is used
  return batch;
}

bool MultithreadIterator::exhausted() const { return order_.exhausted(); }

double MultithreadIterator::epoch_detail() const { return order_.epoch_detail(); }

void MultithreadIterator::reset() {
  if (pending_) {
    pool_->cancel();
    pending_ = false;
  }
  order_.reset();
  epoch = order_.epoch;
  is_new_epoch = order_.is_new_epoch;
}

void MultithreadIterator::serialize(StateMap& out, const std::string& prefix) const {
  order_.serialize(out, prefix);
}

void MultithreadIterator::deserialize(const StateMap& in, const std::string& prefix) {
  if (pending_) {
    pool_->cancel();
    pending_ = false;
  }
  order_.deserialize(in, prefix);
  epoch = order_.epoch;
  is_new_epoch = order_.is_new_epoch;
}

void MultithreadIterator::finalize() {
  if (pool_ && pending_) pool_->cancel();
  pending_ = false;
  pool_.reset();
}

}  // namespace iterators
}  // namespace kiln
