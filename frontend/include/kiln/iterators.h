// kiln::iterators: minibatch iterators over datasets, like chainer.iterators -- the abstract
// Iterator that updaters and evaluators take, SerialIterator and MultithreadIterator.
//
// A user iterator (Chainer's ParallelSequentialIterator of the ptb example, a window
// iterator) subclasses Iterator: next() returns the batch and sets the public `epoch` and
// `is_new_epoch` as Chainer's iterators do; epoch_detail() and reset() complete it, and
// serialize()/deserialize() keep its position in trainer snapshots.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/array.h"
#include "kiln/datasets.h"

namespace kiln {
namespace iterators {

// A minibatch: a list of examples, each a tuple of arrays (e.g. {x, t}).
using Batch = std::vector<std::vector<Array>>;
// The key -> array map of snapshots (kiln::ArrayMap of training.h).
using StateMap = std::map<std::string, Array>;

// chainer.dataset.Iterator.
class Iterator {
 public:
  virtual ~Iterator();
  // The next minibatch. Updates `epoch` and `is_new_epoch`. At the end of a
  // non-repeating iterator it throws kiln::Error (Chainer's StopIteration).
  virtual Batch next() = 0;
  // Epochs done as a fraction (e.g. 1.25: a quarter into the second epoch).
  virtual double epoch_detail() const = 0;
  // true when next() has no more batches (a non-repeating iterator past its epoch).
  // The default, for repeating iterators, is false.
  virtual bool exhausted() const { return false; }
  // Back to the state at construction (position 0, epoch 0); the Evaluator calls it
  // before every pass. The default throws kiln::Error (as Chainer's NotImplementedError).
  virtual void reset();
  // Writes the state under `prefix` (Chainer's serialize(serializer) into a snapshot).
  // The default writes epoch and is_new_epoch.
  virtual void serialize(StateMap& out, const std::string& prefix) const;
  // Restores a state written by serialize(); a missing key throws kiln::Error naming it.
  virtual void deserialize(const StateMap& in, const std::string& prefix);
  // Releases resources such as worker threads (Chainer's finalize); called by the updater's.
  virtual void finalize() {}

  int64_t epoch = 0;
  bool is_new_epoch = false;
};

// Shares an iterator between its owner and updaters/evaluators. Converts from a
// std::shared_ptr to an Iterator subclass (the object itself is used: what the updater
// advances, the caller sees) and from an iterator value, which is copied (or moved) in,
// as StandardUpdater(SerialIterator, ...) always did.
class IteratorHandle {
 public:
  IteratorHandle() = default;
  template <class It, std::enable_if_t<std::is_base_of_v<Iterator, It>, int> = 0>
  IteratorHandle(std::shared_ptr<It> iterator) : ptr_(std::move(iterator)) {}  // NOLINT
  template <class It, std::enable_if_t<std::is_base_of_v<Iterator, std::decay_t<It>>, int> = 0>
  IteratorHandle(It&& iterator)  // NOLINT
      : ptr_(std::make_shared<std::decay_t<It>>(std::forward<It>(iterator))) {}
  Iterator* operator->() const { return ptr_.get(); }
  Iterator& operator*() const { return *ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }
  const std::shared_ptr<Iterator>& get() const { return ptr_; }

 private:
  std::shared_ptr<Iterator> ptr_;
};

// The order in which SerialIterator and MultithreadIterator visit a dataset: the index
// state machine of Chainer's iterators (position, epoch, the order of this epoch), with
// a seeded shuffle redrawn at every epoch. Advancing it is cheap and deterministic.
class IndexOrder {
 public:
  IndexOrder(size_t size, size_t batch_size, bool repeat, bool shuffle, uint64_t seed);
  // The indices of the next batch (empty when exhausted); advances position and epoch.
  std::vector<size_t> next_indices();
  void reset();
  bool exhausted() const { return !repeat_ && epoch > 0; }
  double epoch_detail() const;
  void serialize(StateMap& out, const std::string& prefix) const;
  void deserialize(const StateMap& in, const std::string& prefix);

  int64_t epoch = 0;
  bool is_new_epoch = false;
  size_t size() const { return size_; }
  size_t batch_size() const { return batch_size_; }
  bool repeat() const { return repeat_; }
  bool shuffle() const { return shuffle_; }
  size_t current_position() const { return position_; }

 private:
  void draw_order();
  size_t size_, batch_size_;
  bool repeat_, shuffle_;
  uint64_t rng_;
  size_t position_ = 0;
  std::vector<size_t> order_;
};

// chainer.iterators.SerialIterator: batches of `batch_size` examples in order, or in a
// new seeded random order every epoch (shuffle). With repeat, a batch may span two
// epochs; without, the last batch of the epoch may be shorter and then next() throws.
class SerialIterator : public Iterator {
 public:
  SerialIterator(datasets::DatasetPtr dataset, size_t batch_size, bool repeat = true, bool shuffle = true,
                 uint64_t seed = 0);
  Batch next() override;
  bool exhausted() const override;  // no more batches (repeat = false only)
  void reset() override;
  double epoch_detail() const override;
  // Chainer's keys: current_position, epoch, is_new_epoch, order (when shuffling), and
  // the shuffle generator's state (_rng), so a resumed run draws the same orders.
  void serialize(StateMap& out, const std::string& prefix) const override;
  void deserialize(const StateMap& in, const std::string& prefix) override;
  size_t batch_size() const { return order_.batch_size(); }
  size_t current_position() const { return order_.current_position(); }
  const datasets::DatasetPtr& dataset() const { return dataset_; }

 private:
  datasets::DatasetPtr dataset_;
  IndexOrder order_;
};

// chainer.iterators.MultithreadIterator: the batches of SerialIterator with the same
// arguments and seed, in the same order, but the examples of the next batch are read
// (dataset.get_example) by `n_threads` worker threads while the current batch is used.
// Not copyable (it owns its threads); movable, or share it with std::make_shared.
// The destructor (and finalize) stop and join the threads after the batch being read.
// An exception thrown by get_example is rethrown by the next() that returns its batch.
// get_example runs on the worker threads: datasets must not record Variables there.
class MultithreadIterator : public Iterator {
 public:
  MultithreadIterator(datasets::DatasetPtr dataset, size_t batch_size, bool repeat = true, bool shuffle = true,
                      size_t n_threads = 1, uint64_t seed = 0);
  ~MultithreadIterator() override;
  MultithreadIterator(MultithreadIterator&&) noexcept;
  MultithreadIterator& operator=(MultithreadIterator&&) noexcept;
  MultithreadIterator(const MultithreadIterator&) = delete;
  MultithreadIterator& operator=(const MultithreadIterator&) = delete;

  Batch next() override;
  bool exhausted() const override;
  void reset() override;
  double epoch_detail() const override;
  void serialize(StateMap& out, const std::string& prefix) const override;
  void deserialize(const StateMap& in, const std::string& prefix) override;
  void finalize() override;
  size_t batch_size() const { return order_.batch_size(); }
  size_t n_threads() const { return n_threads_; }

 private:
  class Pool;
  void prefetch();  // submits the batch after the current state to the pool
  datasets::DatasetPtr dataset_;
  IndexOrder order_;  // the state of the consumer (what next() has returned)
  IndexOrder ahead_;  // the state after the batch being prefetched
  size_t n_threads_;
  bool pending_ = false;  // a batch is being read by the pool
  std::unique_ptr<Pool> pool_;
};

}  // namespace iterators
}  // namespace kiln
