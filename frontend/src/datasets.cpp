// Datasets (tuple, sub, random split), loaders for digits and MNIST, SerialIterator.
#include "kiln/datasets.h"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>

namespace kiln {
namespace datasets {

TupleDataset::TupleDataset(std::vector<Array> arrays) : arrays_(std::move(arrays)) {
  if (arrays_.empty()) throw Error("kiln: TupleDataset: needs at least one array");
  for (const Array& a : arrays_) {
    if (a.ndim() < 1 || a.shape()[0] != arrays_[0].shape()[0])
      throw Error(fmt::format("kiln: TupleDataset: all arrays need the same first dimension; got {} and {}",
                              shape_str(arrays_[0].shape()), shape_str(a.shape())));
  }
}

size_t TupleDataset::size() const { return static_cast<size_t>(arrays_[0].shape()[0]); }

static Array row(const Array& a, size_t i) {
  Shape s(a.shape().begin() + 1, a.shape().end());
  Array out(s, a.dtype());
  size_t bytes = out.nbytes();
  std::memcpy(out.raw_data(), static_cast<const uint8_t*>(a.raw_data()) + i * bytes, bytes);
  return out;
}

std::vector<Array> TupleDataset::get_example(size_t i) const {
  if (i >= size()) throw Error(fmt::format("kiln: TupleDataset: index {} out of range ({} examples)", i, size()));
  std::vector<Array> out;
  for (const Array& a : arrays_) out.push_back(row(a, i));
  return out;
}

SubDataset::SubDataset(DatasetPtr base, size_t start, size_t finish, std::vector<size_t> order)
    : base_(std::move(base)), start_(start), finish_(finish), order_(std::move(order)) {
  size_t n = order_.empty() ? base_->size() : order_.size();
  if (start_ > finish_ || finish_ > n)
    throw Error(fmt::format("kiln: SubDataset: range [{}, {}) out of bounds for {} examples", start_, finish_, n));
}

std::vector<Array> SubDataset::get_example(size_t i) const {
  if (i >= size()) throw Error(fmt::format("kiln: SubDataset: index {} out of range ({} examples)", i, size()));
  size_t j = start_ + i;
  return base_->get_example(order_.empty() ? j : order_[j]);
}

static uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static std::vector<size_t> permutation(size_t n, uint64_t& state) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[next_random(state) % i]);
  return order;
}

std::pair<std::shared_ptr<SubDataset>, std::shared_ptr<SubDataset>> split_dataset_random(
    DatasetPtr dataset, size_t first_size, uint64_t seed) {
  if (first_size > dataset->size())
    throw Error(fmt::format("kiln: split_dataset_random: first_size {} exceeds the dataset size {}",
                            first_size, dataset->size()));
  uint64_t state = seed;
  std::vector<size_t> order = permutation(dataset->size(), state);
  return {std::make_shared<SubDataset>(dataset, 0, first_size, order),
          std::make_shared<SubDataset>(dataset, first_size, dataset->size(), order)};
}

// Reads a whole file, gunzipping when it is gzip-compressed (gzread passes plain files through).
static std::string read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error("kiln: cannot open '" + path + "'");
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string message = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw Error("kiln: '" + path + "' is corrupt or truncated: " + message);
  return data;
}

std::string find_digits_csv() {
  for (const char* p : {"/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
                        "/usr/share/python3-sklearn/datasets/data/digits.csv.gz"}) {
    std::ifstream f(p);
    if (f) return p;
  }
  return "";
}

std::shared_ptr<TupleDataset> load_digits(const std::string& path_in) {
  std::string path = path_in.empty() ? find_digits_csv() : path_in;
  if (path.empty())
    throw Error("kiln: load_digits: digits.csv.gz not found; install Debian's python3-sklearn "
                "(apt-get install python3-sklearn) or pass the file's path");
  std::string text = read_maybe_gzip(path);
  std::istringstream lines(text);
  std::string line;
  std::vector<float> x;
  std::vector<int32_t> t;
  size_t lineno = 0;
  while (std::getline(lines, line)) {
    ++lineno;
    if (line.empty()) continue;
    std::vector<double> values;
    std::istringstream fields(line);
    std::string field;
    while (std::getline(fields, field, ',')) {
      char* end = nullptr;
      double v = std::strtod(field.c_str(), &end);
      if (end == field.c_str()) throw Error(fmt::format("kiln: load_digits: '{}' line {}: not a number: '{}'", path, lineno, field));
      values.push_back(v);
    }
    if (values.size() != 65)
      throw Error(fmt::format("kiln: load_digits: '{}' line {}: expected 65 values (64 pixels and a label), got {}",
                              path, lineno, values.size()));
    for (int i = 0; i < 64; ++i) x.push_back(static_cast<float>(values[i] / 16.0));
    if (values[64] < 0 || values[64] > 9)
      throw Error(fmt::format("kiln: load_digits: '{}' line {}: label {} is not a digit", path, lineno, values[64]));
    t.push_back(static_cast<int32_t>(values[64]));
  }
  if (t.empty()) throw Error("kiln: load_digits: '" + path + "' holds no examples");
  int64_t n = static_cast<int64_t>(t.size());
  return std::make_shared<TupleDataset>(std::vector<Array>{Array::from(x, {n, 64}), Array::from(t, {n})});
}

static uint32_t big_endian(const std::string& d, size_t off) {
  return (uint32_t(uint8_t(d[off])) << 24) | (uint32_t(uint8_t(d[off + 1])) << 16) |
         (uint32_t(uint8_t(d[off + 2])) << 8) | uint32_t(uint8_t(d[off + 3]));
}

static std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem, stem + "-idx3-ubyte"}) {
    std::ifstream f(dir + "/" + name);
    if (f) return dir + "/" + name;
  }
  throw Error("kiln: load_mnist: '" + dir + "/" + stem + "[.gz]' not found. Download the four MNIST files "
              "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
              "t10k-labels-idx1-ubyte.gz) into " + dir);
}

std::shared_ptr<TupleDataset> load_mnist(const std::string& dir, bool train) {
  std::string prefix = train ? "train" : "t10k";
  std::string ipath = find_idx(dir, prefix + "-images-idx3-ubyte");
  std::string lpath = find_idx(dir, prefix + "-labels-idx1-ubyte");
  std::string images = read_maybe_gzip(ipath), labels = read_maybe_gzip(lpath);
  if (images.size() < 16 || big_endian(images, 0) != 2051)
    throw Error("kiln: load_mnist: '" + ipath + "' is not an idx3 image file (bad magic number)");
  if (labels.size() < 8 || big_endian(labels, 0) != 2049)
    throw Error("kiln: load_mnist: '" + lpath + "' is not an idx1 label file (bad magic number)");
  uint32_t n = big_endian(images, 4), rows = big_endian(images, 8), cols = big_endian(images, 12);
  if (images.size() != 16 + size_t(n) * rows * cols)
    throw Error(fmt::format("kiln: load_mnist: '{}' is truncated: {} bytes for {} images of {}x{}", ipath,
                            images.size(), n, rows, cols));
  if (big_endian(labels, 4) != n || labels.size() != 8 + size_t(n))
    throw Error(fmt::format("kiln: load_mnist: '{}' does not hold {} labels", lpath, n));
  int64_t d = int64_t(rows) * cols;
  Array x({int64_t(n), d}, DType::f32), t({int64_t(n)}, DType::i32);
  float* xp = x.data<float>();
  for (size_t i = 0; i < size_t(n) * d; ++i) xp[i] = uint8_t(images[16 + i]) / 255.0f;
  int32_t* tp = t.data<int32_t>();
  for (size_t i = 0; i < n; ++i) tp[i] = uint8_t(labels[8 + i]);
  return std::make_shared<TupleDataset>(std::vector<Array>{x, t});
}

}  // namespace datasets

std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch) {
  if (batch.empty()) throw Error("kiln: concat_examples: empty batch");
  std::vector<Array> out;
  for (size_t j = 0; j < batch[0].size(); ++j) {
    const Array& first = batch[0][j];
    Shape s = first.shape();
    s.insert(s.begin(), static_cast<int64_t>(batch.size()));
    Array a(s, first.dtype());
    size_t bytes = first.nbytes();
    for (size_t i = 0; i < batch.size(); ++i) {
      const Array& e = batch[i].at(j);
      if (e.shape() != first.shape() || e.dtype() != first.dtype())
        throw Error(fmt::format("kiln: concat_examples: example {} item {} has shape {} {}, expected {} {}", i, j,
                                shape_str(e.shape()), dtype_name(e.dtype()), shape_str(first.shape()),
                                dtype_name(first.dtype())));
      std::memcpy(static_cast<uint8_t*>(a.raw_data()) + i * bytes, e.raw_data(), bytes);
    }
    out.push_back(a);
  }
  return out;
}

namespace iterators {

SerialIterator::SerialIterator(datasets::DatasetPtr dataset, size_t batch_size, bool repeat, bool shuffle,
                               uint64_t seed)
    : dataset_(std::move(dataset)), batch_size_(batch_size), repeat_(repeat), shuffle_(shuffle), rng_(seed) {
  if (batch_size_ == 0) throw Error("kiln: SerialIterator: batch_size must be positive");
  if (dataset_->size() == 0) throw Error("kiln: SerialIterator: the dataset is empty");
  reset();
}

void SerialIterator::shuffle_order() {
  order_.resize(dataset_->size());
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) order_ = datasets::permutation(dataset_->size(), rng_);
}

void SerialIterator::reset() {
  epoch = 0;
  position_ = 0;
  is_new_epoch = false;
  shuffle_order();
}

bool SerialIterator::exhausted() const { return !repeat_ && epoch > 0; }

double SerialIterator::epoch_detail() const {
  return static_cast<double>(epoch) + static_cast<double>(position_) / static_cast<double>(dataset_->size());
}

std::vector<std::vector<Array>> SerialIterator::next() {
  if (exhausted()) throw Error("kiln: SerialIterator: no more batches (repeat = false and the epoch is over)");
  std::vector<std::vector<Array>> batch;
  size_t n = dataset_->size();
  size_t start_epoch = static_cast<size_t>(epoch);
  while (batch.size() < batch_size_) {
    batch.push_back(dataset_->get_example(order_[position_]));
    if (++position_ == n) {
      position_ = 0;
      ++epoch;
      if (!repeat_) break;
      shuffle_order();
    }
  }
  is_new_epoch = static_cast<size_t>(epoch) > start_epoch;
  return batch;
}

}  // namespace iterators
}  // namespace kiln
