// kiln::datasets: datasets of examples, their splits, PTB and digits/MNIST loaders, and
// concat_examples, like Chainer's (the iterators are in kiln/iterators.h, included here).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
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

// Applies `transform` to every example of `dataset` when it is read (chainer.datasets.TransformDataset).
// The transform may run on MultithreadIterator's worker threads: it must not record Variables.
class TransformDataset : public Dataset {
 public:
  using Transform = std::function<std::vector<Array>(const std::vector<Array>&)>;
  TransformDataset(DatasetPtr dataset, Transform transform);
  size_t size() const override { return dataset_->size(); }
  std::vector<Array> get_example(size_t i) const override;

 private:
  DatasetPtr dataset_;
  Transform transform_;
};

// The examples of `datasets` one after the other (chainer.datasets.ConcatenatedDataset).
class ConcatenatedDataset : public Dataset {
 public:
  explicit ConcatenatedDataset(std::vector<DatasetPtr> datasets);
  size_t size() const override { return size_; }
  std::vector<Array> get_example(size_t i) const override;

 private:
  std::vector<DatasetPtr> datasets_;
  size_t size_ = 0;
};

using SubDatasetPtr = std::shared_ptr<SubDataset>;

// Chainer's splits. `order` (empty: the identity) is a permutation of the base dataset's
// indices; the first subset holds order[:split_at], the second order[split_at:].
std::pair<SubDatasetPtr, SubDatasetPtr> split_dataset(DatasetPtr dataset, size_t split_at,
                                                      std::vector<size_t> order = {});
// Splits into first_size examples and the rest, after a seeded permutation.
std::pair<SubDatasetPtr, SubDatasetPtr> split_dataset_random(DatasetPtr dataset, size_t first_size,
                                                             uint64_t seed = 0);
// n subsets of len(dataset) / n examples each (order[i*m:(i+1)*m], m = len / n; the
// remainder is left out, as in Chainer).
std::vector<SubDatasetPtr> split_dataset_n(DatasetPtr dataset, size_t n, std::vector<size_t> order = {});
std::vector<SubDatasetPtr> split_dataset_n_random(DatasetPtr dataset, size_t n, uint64_t seed = 0);
// n_folds (train, test) splits: the test sets are disjoint, cover the dataset and differ
// in size by at most one (Chainer's order of folds: the first test set is the last
// len/n_folds examples of `order`).
std::vector<std::pair<SubDatasetPtr, SubDatasetPtr>> get_cross_validation_datasets(
    DatasetPtr dataset, size_t n_folds, std::vector<size_t> order = {});
std::vector<std::pair<SubDatasetPtr, SubDatasetPtr>> get_cross_validation_datasets_random(
    DatasetPtr dataset, size_t n_folds, uint64_t seed = 0);
// The permutation of 0..n-1 that the *_random functions use for `seed`.
std::vector<size_t> random_permutation(size_t n, uint64_t seed);
namespace detail {
// A permutation of 0..n-1 drawn from the generator `state` (advanced): the shuffle of
// random_permutation and of the iterators.
std::vector<size_t> shuffled_indices(size_t n, uint64_t& state);
}  // namespace detail

// Penn Treebank (PTB-format word files: whitespace-separated words, one sentence a line).
// Reads dir/ptb.train.txt, ptb.valid.txt and ptb.test.txt; each is a 1-d int32 array of
// word ids with "<eos>" after every line. Ids are given in order of first appearance in
// the training file (chainer.datasets.get_ptb_words). A missing file throws a kiln::Error
// saying where to download it; a word of valid/test absent from train names file and line.
struct PtbWords {
  Array train, valid, test;
};
PtbWords get_ptb_words(const std::string& dir);
// word -> id of the training file (chainer.datasets.get_ptb_words_vocabulary).
std::map<std::string, int32_t> get_ptb_words_vocabulary(const std::string& dir);

// scikit-learn's 8x8 digits (1797 examples): x float32 (N, 64) scaled to [0, 1], t int32.
// Reads Debian python3-sklearn's digits.csv.gz, or the CSV(.gz) given by `path`.
std::shared_ptr<TupleDataset> load_digits(const std::string& path = "");
// The default location of digits.csv.gz ("" if not found).
std::string find_digits_csv();

// MNIST idx files (gz or raw) in `dir`: train or t10k images/labels, x float32 (N, 784) in [0, 1].
std::shared_ptr<TupleDataset> load_mnist(const std::string& dir, bool train);

}  // namespace datasets

// Stacks examples into batch arrays: result[j] has shape (len(batch), ...example[j].shape).
// Every example must hold the same number of arrays, and batch[i][j] the shape and dtype
// of batch[0][j]; otherwise a kiln::Error names the entry.
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch);
// Chainer's concat_examples(batch, device, padding): the arrays on `device`. An int device:
// -1 (Chainer's None / -1) is the host, N >= 0 is Device::cuda(N). With padding, arrays j of the examples
// may differ in shape (same ndim): result[j] has the elementwise largest shape, filled
// with `padding` beyond each example; a vector gives one padding value per array j.
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, int device,
                                   std::optional<double> padding = std::nullopt);
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, int device,
                                   const std::vector<double>& padding);
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, const Device& device,
                                   std::optional<double> padding = std::nullopt);
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, const Device& device,
                                   const std::vector<double>& padding);


}  // namespace kiln

// The iterators over these datasets (Iterator, SerialIterator, MultithreadIterator).
#include "kiln/iterators.h"  // NOLINT(build/include_order)
