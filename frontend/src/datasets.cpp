// Datasets (tuple, sub, transform, concatenated), Chainer's splits, the digits and MNIST
// loaders, and concat_examples.
#include "kiln/datasets.h"

#include <zlib.h>

#include <algorithm>
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
  if (!base_) throw Error("kiln: SubDataset: argument 'dataset' is null");
  if (!order_.empty() && order_.size() != base_->size())
    throw Error(fmt::format("kiln: SubDataset: argument 'order' must have the same length as the base dataset: "
                            "len(order) = {} while len(dataset) = {}",
                            order_.size(), base_->size()));
  for (size_t k : order_)
    if (k >= base_->size())
      throw Error(fmt::format("kiln: SubDataset: argument 'order' holds index {}, out of range for {} examples", k,
                              base_->size()));
  size_t n = base_->size();
  if (start_ > finish_ || finish_ > n)
    throw Error(fmt::format("kiln: SubDataset: range [{}, {}) out of bounds for {} examples", start_, finish_, n));
}

std::vector<Array> SubDataset::get_example(size_t i) const {
  if (i >= size()) throw Error(fmt::format("kiln: SubDataset: index {} out of range ({} examples)", i, size()));
  size_t j = start_ + i;
  return base_->get_example(order_.empty() ? j : order_[j]);
}

TransformDataset::TransformDataset(DatasetPtr dataset, Transform transform)
    : dataset_(std::move(dataset)), transform_(std::move(transform)) {
  if (!dataset_) throw Error("kiln: TransformDataset: argument 'dataset' is null");
  if (!transform_) throw Error("kiln: TransformDataset: argument 'transform' is empty");
}

std::vector<Array> TransformDataset::get_example(size_t i) const {
  if (i >= size())
    throw Error(fmt::format("kiln: TransformDataset: index {} out of range ({} examples)", i, size()));
  return transform_(dataset_->get_example(i));
}

ConcatenatedDataset::ConcatenatedDataset(std::vector<DatasetPtr> datasets) : datasets_(std::move(datasets)) {
  for (size_t k = 0; k < datasets_.size(); ++k) {
    if (!datasets_[k]) throw Error(fmt::format("kiln: ConcatenatedDataset: argument 'datasets[{}]' is null", k));
    size_ += datasets_[k]->size();
  }
}

std::vector<Array> ConcatenatedDataset::get_example(size_t i) const {
  if (i >= size_)
    throw Error(fmt::format("kiln: ConcatenatedDataset: index {} out of range ({} examples)", i, size_));
  for (const DatasetPtr& d : datasets_) {
    if (i < d->size()) return d->get_example(i);
    i -= d->size();
  }
  throw Error("kiln: ConcatenatedDataset: internal error: index past the datasets");
}

namespace detail {

static uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::vector<size_t> shuffled_indices(size_t n, uint64_t& state) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[next_random(state) % i]);
  return order;
}

}  // namespace detail

std::vector<size_t> random_permutation(size_t n, uint64_t seed) {
  uint64_t state = seed;
  return detail::shuffled_indices(n, state);
}

static void check_dataset(const DatasetPtr& dataset, const char* function) {
  if (!dataset) throw Error(fmt::format("kiln: {}: argument 'dataset' is null", function));
}

std::pair<SubDatasetPtr, SubDatasetPtr> split_dataset(DatasetPtr dataset, size_t split_at,
                                                      std::vector<size_t> order) {
  check_dataset(dataset, "split_dataset");
  size_t n = dataset->size();
  if (split_at > n)
    throw Error(fmt::format("kiln: split_dataset: argument 'split_at' ({}) exceeds the dataset size {}", split_at, n));
  if (!order.empty() && order.size() != n)
    throw Error(fmt::format("kiln: split_dataset: argument 'order' must have the same length as the dataset: "
                            "len(order) = {} while len(dataset) = {}",
                            order.size(), n));
  return {std::make_shared<SubDataset>(dataset, 0, split_at, order),
          std::make_shared<SubDataset>(dataset, split_at, n, order)};
}

std::pair<SubDatasetPtr, SubDatasetPtr> split_dataset_random(DatasetPtr dataset, size_t first_size,
                                                             uint64_t seed) {
  check_dataset(dataset, "split_dataset_random");
  if (first_size > dataset->size())
    throw Error(fmt::format("kiln: split_dataset_random: argument 'first_size' ({}) exceeds the dataset size {}",
                            first_size, dataset->size()));
  return split_dataset(dataset, first_size, random_permutation(dataset->size(), seed));
}

static std::vector<SubDatasetPtr> split_n(const DatasetPtr& dataset, size_t n, const std::vector<size_t>& order,
                                          const char* function) {
  check_dataset(dataset, function);
  if (n == 0) throw Error(fmt::format("kiln: {}: argument 'n' must be positive, got 0", function));
  if (!order.empty() && order.size() != dataset->size())
    throw Error(fmt::format("kiln: {}: argument 'order' must have the same length as the dataset: "
                            "len(order) = {} while len(dataset) = {}",
                            function, order.size(), dataset->size()));
  size_t sub_size = dataset->size() / n;
  std::vector<SubDatasetPtr> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(std::make_shared<SubDataset>(dataset, sub_size * i, sub_size * (i + 1), order));
  return out;
}

std::vector<SubDatasetPtr> split_dataset_n(DatasetPtr dataset, size_t n, std::vector<size_t> order) {
  return split_n(dataset, n, order, "split_dataset_n");
}

std::vector<SubDatasetPtr> split_dataset_n_random(DatasetPtr dataset, size_t n, uint64_t seed) {
  check_dataset(dataset, "split_dataset_n_random");
  return split_n(dataset, n, random_permutation(dataset->size(), seed), "split_dataset_n_random");
}

std::vector<std::pair<SubDatasetPtr, SubDatasetPtr>> get_cross_validation_datasets(DatasetPtr dataset,
                                                                                   size_t n_folds,
                                                                                   std::vector<size_t> order) {
  check_dataset(dataset, "get_cross_validation_datasets");
  size_t whole = dataset->size();
  if (n_folds == 0) throw Error("kiln: get_cross_validation_datasets: argument 'n_folds' must be positive, got 0");
  if (order.empty()) {
    order.resize(whole);
    std::iota(order.begin(), order.end(), 0);
  } else if (order.size() != whole) {
    throw Error(fmt::format("kiln: get_cross_validation_datasets: argument 'order' must have the same length as "
                            "the dataset: len(order) = {} while len(dataset) = {}",
                            order.size(), whole));
  }
  std::vector<size_t> test_sizes;
  for (size_t i = 0; i < n_folds; ++i) test_sizes.push_back(whole * (i + 1) / n_folds - whole * i / n_folds);
  std::vector<std::pair<SubDatasetPtr, SubDatasetPtr>> splits;
  for (auto it = test_sizes.rbegin(); it != test_sizes.rend(); ++it) {
    size_t test_size = *it;
    splits.push_back(split_dataset(dataset, whole - test_size, order));
    // Rotate right by test_size: the next test set is the block before this one.
    std::rotate(order.begin(), order.end() - static_cast<std::ptrdiff_t>(test_size), order.end());
  }
  return splits;
}

std::vector<std::pair<SubDatasetPtr, SubDatasetPtr>> get_cross_validation_datasets_random(DatasetPtr dataset,
                                                                                          size_t n_folds,
                                                                                          uint64_t seed) {
  check_dataset(dataset, "get_cross_validation_datasets_random");
  return get_cross_validation_datasets(dataset, n_folds, random_permutation(dataset->size(), seed));
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

static void check_batch(const std::vector<std::vector<Array>>& batch, const char* function) {
  if (batch.empty()) throw Error(fmt::format("kiln: {}: argument 'batch' is empty", function));
  for (size_t i = 1; i < batch.size(); ++i)
    if (batch[i].size() != batch[0].size())
      throw Error(fmt::format("kiln: {}: argument 'batch': example {} holds {} arrays, expected {} like example 0",
                              function, i, batch[i].size(), batch[0].size()));
}

// Chainer's int device: -1 the host, N >= 0 GPU N.
static Device device_from_id(int device, const char* function) {
  if (device < -1) throw Error(fmt::format("kiln: {}: argument 'device' must be -1 (the host) or a GPU id, got {}",
                                           function, device));
  return device == -1 ? Device::cpu() : Device::cuda(device);
}

// result[j] of concat_examples: examples stacked; with `padding`, each example copied into the
// leading corner of the elementwise largest shape, the rest filled with the padding value.
static Array concat_item(const std::vector<std::vector<Array>>& batch, size_t j, std::optional<double> padding) {
  const Array& first = batch[0][j];
  Shape inner = first.shape();
  for (size_t i = 0; i < batch.size(); ++i) {
    const Array& e = batch[i][j];
    bool same_rank = e.ndim() == first.ndim();
    if (e.dtype() != first.dtype() || !same_rank || (!padding && e.shape() != first.shape()))
      throw Error(fmt::format("kiln: concat_examples: argument 'batch': batch[{}][{}] has shape {} {}, expected {} {} "
                              "like batch[0][{}]{}",
                              i, j, shape_str(e.shape()), dtype_name(e.dtype()), shape_str(first.shape()),
                              dtype_name(first.dtype()), j,
                              padding || !same_rank ? "" : " (give a padding value for variable-length examples)"));
    for (size_t d = 0; d < inner.size(); ++d) inner[d] = std::max(inner[d], e.shape()[d]);
  }
  Shape s = inner;
  s.insert(s.begin(), static_cast<int64_t>(batch.size()));
  const size_t item = dtype_size(first.dtype());
  Array out = padding ? Array::full(s, *padding, first.dtype()) : Array(s, first.dtype());
  const size_t stride = static_cast<size_t>(shape_size(inner)) * item;
  uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Array e = batch[i][j].to(Device::cpu());  // an example on a device is read through a copy
    const uint8_t* src = static_cast<const uint8_t*>(e.raw_data());
    if (e.shape() == inner) {
      std::memcpy(dst + i * stride, src, e.nbytes());
      continue;
    }
    // Copy row by row (the last dimension contiguous) into the padded block.
    if (e.size() == 0) continue;
    const size_t nd = inner.size();
    const size_t row = static_cast<size_t>(e.shape()[nd - 1]) * item;
    const int64_t rows = e.size() / e.shape()[nd - 1];
    std::vector<int64_t> index(nd, 0);
    for (int64_t r = 0; r < rows; ++r) {
      size_t offset = 0;
      for (size_t d = 0; d + 1 < nd; ++d) offset = offset * static_cast<size_t>(inner[d]) + static_cast<size_t>(index[d]);
      offset *= static_cast<size_t>(inner[nd - 1]);
      std::memcpy(dst + i * stride + offset * item, src + static_cast<size_t>(r) * row, row);
      for (size_t d = nd - 1; d-- > 0;) {
        if (++index[d] < e.shape()[d]) break;
        index[d] = 0;
      }
    }
  }
  return out;
}

std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch) {
  check_batch(batch, "concat_examples");
  std::vector<Array> out;
  for (size_t j = 0; j < batch[0].size(); ++j) out.push_back(concat_item(batch, j, std::nullopt));
  return out;
}

std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, int device,
                                   std::optional<double> padding) {
  return concat_examples(batch, device_from_id(device, "concat_examples"), padding);
}

std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, int device,
                                   const std::vector<double>& padding) {
  return concat_examples(batch, device_from_id(device, "concat_examples"), padding);
}

// The batch stacked on the host, then moved to `device` (one copy per array).
std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, const Device& device,
                                   std::optional<double> padding) {
  check_batch(batch, "concat_examples");
  std::vector<Array> out;
  for (size_t j = 0; j < batch[0].size(); ++j) out.push_back(concat_item(batch, j, padding).to(device));
  return out;
}

std::vector<Array> concat_examples(const std::vector<std::vector<Array>>& batch, const Device& device,
                                   const std::vector<double>& padding) {
  check_batch(batch, "concat_examples");
  if (padding.size() != batch[0].size())
    throw Error(fmt::format("kiln: concat_examples: argument 'padding' holds {} values, expected one per array of an "
                            "example ({})",
                            padding.size(), batch[0].size()));
  std::vector<Array> out;
  for (size_t j = 0; j < batch[0].size(); ++j) out.push_back(concat_item(batch, j, padding[j]).to(device));
  return out;
}

}  // namespace kiln
