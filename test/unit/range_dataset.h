// Shared by the dataset and iterator tests: a small TupleDataset whose labels give each
// example's index, and the labels of a dataset or a batch in order.
#pragma once
#include <kiln/kiln.h>

#include <memory>
#include <vector>

// Example i is {x = [i, -i] (f32), t = i (i32)}.
inline std::shared_ptr<kiln::datasets::TupleDataset> range_dataset(int n) {
  std::vector<float> x;
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) {
    x.push_back(static_cast<float>(i));
    x.push_back(static_cast<float>(-i));
    t.push_back(i);
  }
  return std::make_shared<kiln::datasets::TupleDataset>(
      std::vector<kiln::Array>{kiln::Array::from(x, {n, 2}), kiln::Array::from(t, {n})});
}

// The labels t of a dataset, in order.
inline std::vector<int32_t> labels(const kiln::datasets::Dataset& d) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < d.size(); ++i) out.push_back(d.get_example(i).at(1).item<int32_t>());
  return out;
}

// The labels t of a batch, in order.
inline std::vector<int32_t> labels(const kiln::iterators::Batch& batch) {
  std::vector<int32_t> out;
  for (const auto& example : batch) out.push_back(example.at(1).item<int32_t>());
  return out;
}
