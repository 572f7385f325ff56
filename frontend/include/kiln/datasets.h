// kiln::datasets and kiln::iterators: datasets of examples and minibatch iterators, like Chainer's.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/array.h"

namespace kiln {

namespace datasets {

// A dataset of examples; each example is a tuple of arrays (e.g. {x, t}).
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  virtual std::vector<Array> get_example(size_t i) const = 0;
};
using DatasetPtr = std::shared_ptr<const Dataset>;

// Example i is (arrays[0][i], arrays[1][i], ...): all arrays share their first dimension.
class TupleDataset : public Dataset {
 public:
  explicit TupleDataset(std::vector<Array> arrays);
  size_t size() const override;
  std::vector<Array> get_example(size_t i) const override;
  const std::vector<Array>& arrays() const { return arrays_; }

 private:
  std::vector<Array> arrays_;
};

// A view of `base` through a list of indices (or the range [start, finish)).
class SubDataset : public Dataset {
 public:
  SubDataset(DatasetPtr base, size_t start, size_t finish, std::vector<size_t> order = {});
  size_t size() const override { return finish_ - start_; }
  std::vector<Array> get_example(size_t i) const override;

 private:
  DatasetPtr base_;
  size_t start_, finish_;
  std::vector<size_t> order_;
};

// Splits into two SubDatasets of first_size and the rest, after a seeded permutation.
std::pair<std::shared_ptr<SubDataset>, std::shared_ptr<SubDataset>> split_dataset_random(
    DatasetPtr dataset, size_t first_size, uint64_t seed = 0);

// scikit-learn's 8x8 digits (1797 examples): x float32 (N, 64) scaled to [0, 1], t int32.
// Reads Debian python3-sklearn's digits.csv.gz, or the CSV(.gz) given by `path`.
std::shared_ptr<TupleDataset> load_digits(const std::string& path = "");
// The default location of digits.csv.gz ("" if not found).
std::string find_digits_csv();

// MNIST idx files (gz or raw) in `dir`: train or t10k images/labels, x float32 (N, 784) in [0, 1].
std::shared_ptr<TupleDataset> load_mnist(const std::string& dir, bool train);

}  // namespace datasets

// Stacks examples into batch arrays: result[j] has shape (len(batch), ...example[j].shape).
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch);

namespace iterators {

class SerialIterator {
 public:
  SerialIterator(datasets::DatasetPtr dataset, size_t batch_size, bool repeat = true,
                 bool shuffle = true, uint64_t seed = 0);
  // The next minibatch of examples; throws kiln::Error at the end when repeat is false.
  std::vector<std::vector<Array>> next();
  bool exhausted() const;  // no more batches (repeat = false only)
  void reset();
  int64_t epoch = 0;
  bool is_new_epoch = false;
  double epoch_detail() const;
  size_t batch_size() const { return batch_size_; }

 private:
  void shuffle_order();
  datasets::DatasetPtr dataset_;
  size_t batch_size_;
  bool repeat_, shuffle_;
  uint64_t rng_;
  size_t position_ = 0;
  std::vector<size_t> order_;
};

}  // namespace iterators

}  // namespace kiln
