// Chainer's dataset helpers: TransformDataset, ConcatenatedDataset, split_dataset(_n)(_random),
// get_cross_validation_datasets, concat_examples with device and padding, and the PTB reader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/device.h>
#include <kiln/kiln.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <set>

#include "error_of.h"
#include "range_dataset.h"

using namespace kiln;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(Datasets, TransformDataset) {
  auto base = range_dataset(4);
  datasets::TransformDataset doubled(base, [](const std::vector<Array>& ex) {
    std::vector<float> x = ex[0].to_vector<float>();
    for (float& v : x) v *= 2;
    return std::vector<Array>{Array::from(x, ex[0].shape()), ex[1]};
  });
  EXPECT_EQ(doubled.size(), 4u);
  auto ex = doubled.get_example(3);
  EXPECT_THAT(ex[0].to_vector<float>(), ElementsAre(6, -6));
  EXPECT_EQ(ex[1].item<int32_t>(), 3);
  EXPECT_THAT(error_of([&] { doubled.get_example(4); }), HasSubstr("TransformDataset: index 4 out of range"));
  EXPECT_THAT(error_of([&] { datasets::TransformDataset(base, nullptr); }), HasSubstr("argument 'transform'"));
}

TEST(Datasets, ConcatenatedDataset) {
  auto a = range_dataset(3), b = range_dataset(2);
  datasets::ConcatenatedDataset both({a, b, range_dataset(0 + 1)});
  EXPECT_EQ(both.size(), 6u);
  EXPECT_THAT(labels(both), ElementsAre(0, 1, 2, 0, 1, 0));
  EXPECT_THAT(both.get_example(4)[0].to_vector<float>(), ElementsAre(1, -1));
  EXPECT_THAT(error_of([&] { both.get_example(6); }), HasSubstr("index 6 out of range (6 examples)"));
  EXPECT_THAT(error_of([&] { datasets::ConcatenatedDataset({a, nullptr}); }), HasSubstr("'datasets[1]' is null"));
  EXPECT_EQ(datasets::ConcatenatedDataset(std::vector<datasets::DatasetPtr>{}).size(), 0u);
}

TEST(Datasets, SplitDatasetWithOrder) {
  auto ds = range_dataset(6);
  auto [first, second] = datasets::split_dataset(ds, 2, {5, 3, 1, 0, 2, 4});
  EXPECT_THAT(labels(*first), ElementsAre(5, 3));
  EXPECT_THAT(labels(*second), ElementsAre(1, 0, 2, 4));
  auto [all, none] = datasets::split_dataset(ds, 6);
  EXPECT_THAT(labels(*all), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(none->size(), 0u);
  EXPECT_THAT(error_of([&] { datasets::split_dataset(ds, 7); }),
              HasSubstr("split_dataset: argument 'split_at' (7) exceeds the dataset size 6"));
  EXPECT_THAT(error_of([&] { datasets::split_dataset(ds, 2, {0, 1}); }),
              HasSubstr("argument 'order' must have the same length as the dataset: len(order) = 2"));
  EXPECT_THAT(error_of([&] { datasets::SubDataset(ds, 0, 2, {0, 1, 2, 3, 4, 9}); }), HasSubstr("holds index 9"));
}

TEST(Datasets, SplitRandomUsesTheSeededPermutation) {
  auto ds = range_dataset(9);
  std::vector<size_t> perm = datasets::random_permutation(9, 4);
  std::set<size_t> distinct(perm.begin(), perm.end());
  EXPECT_EQ(distinct.size(), 9u);
  auto [a, b] = datasets::split_dataset_random(ds, 4, 4);
  std::vector<int32_t> expected_a, expected_b;
  for (size_t i = 0; i < 9; ++i) (i < 4 ? expected_a : expected_b).push_back(static_cast<int32_t>(perm[i]));
  EXPECT_EQ(labels(*a), expected_a);
  EXPECT_EQ(labels(*b), expected_b);
  auto [c, d] = datasets::split_dataset_random(ds, 4, 4);
  EXPECT_EQ(labels(*c), expected_a);  // same seed, same split
  EXPECT_NE(datasets::random_permutation(9, 5), perm);
}

TEST(Datasets, SplitDatasetN) {
  auto ds = range_dataset(11);
  auto parts = datasets::split_dataset_n(ds, 3);  // 11 // 3 = 3 each; the last two are left out
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_THAT(labels(*parts[0]), ElementsAre(0, 1, 2));
  EXPECT_THAT(labels(*parts[1]), ElementsAre(3, 4, 5));
  EXPECT_THAT(labels(*parts[2]), ElementsAre(6, 7, 8));
  std::vector<size_t> order = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  auto reversed = datasets::split_dataset_n(ds, 2, order);
  EXPECT_THAT(labels(*reversed[0]), ElementsAre(10, 9, 8, 7, 6));
  EXPECT_THAT(labels(*reversed[1]), ElementsAre(5, 4, 3, 2, 1));

  auto random = datasets::split_dataset_n_random(ds, 3, 2);
  std::vector<size_t> perm = datasets::random_permutation(11, 2);
  for (size_t k = 0; k < 3; ++k) {
    ASSERT_EQ(random[k]->size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(labels(*random[k])[i], static_cast<int32_t>(perm[3 * k + i]));
  }
  EXPECT_THAT(error_of([&] { datasets::split_dataset_n(ds, 0); }), HasSubstr("split_dataset_n: argument 'n' must be positive"));
}

TEST(Datasets, CrossValidationFolds) {
  // Chainer: borders 0, 3, 6, 10 -> test sizes 3, 3, 4, taken in reverse, the order rotated
  // right by each test size: tests {6..9}, {3, 4, 5}, {0, 1, 2}.
  auto ds = range_dataset(10);
  auto folds = datasets::get_cross_validation_datasets(ds, 3);
  ASSERT_EQ(folds.size(), 3u);
  EXPECT_THAT(labels(*folds[0].first), ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_THAT(labels(*folds[0].second), ElementsAre(6, 7, 8, 9));
  EXPECT_THAT(labels(*folds[1].first), ElementsAre(6, 7, 8, 9, 0, 1, 2));
  EXPECT_THAT(labels(*folds[1].second), ElementsAre(3, 4, 5));
  EXPECT_THAT(labels(*folds[2].first), ElementsAre(3, 4, 5, 6, 7, 8, 9));
  EXPECT_THAT(labels(*folds[2].second), ElementsAre(0, 1, 2));

  auto random = datasets::get_cross_validation_datasets_random(ds, 4, 1);
  std::multiset<int32_t> tested;
  for (const auto& [train, test] : random) {
    EXPECT_EQ(train->size() + test->size(), 10u);
    std::set<int32_t> in_train;
    for (int32_t t : labels(*train)) in_train.insert(t);
    for (int32_t t : labels(*test)) {
      EXPECT_FALSE(in_train.count(t)) << t;
      tested.insert(t);
    }
  }
  EXPECT_EQ(tested.size(), 10u);
  for (int32_t t = 0; t < 10; ++t) EXPECT_EQ(tested.count(t), 1u) << t;
  EXPECT_THAT(error_of([&] { datasets::get_cross_validation_datasets(ds, 0); }), HasSubstr("'n_folds' must be positive"));
}

TEST(Datasets, ConcatExamplesWithPadding) {
  std::vector<std::vector<Array>> batch = {
      {Array::from<int32_t>({1, 2}, {2}), Array::from<float>({1, 2, 3, 4}, {2, 2})},
      {Array::from<int32_t>({3, 4, 5}, {3}), Array::from<float>({5, 6, 7}, {1, 3})},
  };
  auto padded = concat_examples(batch, -1, -1.0);
  EXPECT_EQ(padded[0].shape(), (Shape{2, 3}));
  EXPECT_THAT(padded[0].to_vector<int32_t>(), ElementsAre(1, 2, -1, 3, 4, 5));
  EXPECT_EQ(padded[1].shape(), (Shape{2, 2, 3}));
  EXPECT_THAT(padded[1].to_vector<float>(), ElementsAre(1, 2, -1, 3, 4, -1, 5, 6, 7, -1, -1, -1));
  // One padding value per array of the example.
  auto each = concat_examples(batch, -1, std::vector<double>{0, 9});
  EXPECT_THAT(each[0].to_vector<int32_t>(), ElementsAre(1, 2, 0, 3, 4, 5));
  EXPECT_THAT(each[1].to_vector<float>(), ElementsAre(1, 2, 9, 3, 4, 9, 5, 6, 7, 9, 9, 9));
  // Same shapes: padding changes nothing; the device form without padding is the plain one.
  std::vector<std::vector<Array>> same = {{Array::from<float>({1, 2}, {2})}, {Array::from<float>({3, 4}, {2})}};
  EXPECT_THAT(concat_examples(same, -1, 0.0)[0].to_vector<float>(), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(concat_examples(same, -1)[0].to_vector<float>(), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(concat_examples(same)[0].to_vector<float>(), ElementsAre(1, 2, 3, 4));
}

TEST(Datasets, ConcatExamplesErrorsNameTheArgument) {
  std::vector<std::vector<Array>> ragged = {{Array::zeros({2})}, {Array::zeros({3})}};
  EXPECT_THAT(error_of([&] { concat_examples(ragged); }),
              HasSubstr("concat_examples: argument 'batch': batch[1][0] has shape (3,) float32, expected (2,) float32 "
                        "like batch[0][0] (give a padding value"));
  std::vector<std::vector<Array>> ranks = {{Array::zeros({2})}, {Array::zeros({2, 1})}};
  EXPECT_THAT(error_of([&] { concat_examples(ranks, -1, 0.0); }), HasSubstr("batch[1][0] has shape (2, 1)"));
  std::vector<std::vector<Array>> dtypes = {{Array::zeros({2})}, {Array::zeros({2}, DType::i32)}};
  EXPECT_THAT(error_of([&] { concat_examples(dtypes, -1, 0.0); }), HasSubstr("int32, expected (2,) float32"));
  std::vector<std::vector<Array>> counts = {{Array::zeros({2}), Array::zeros({1})}, {Array::zeros({2})}};
  EXPECT_THAT(error_of([&] { concat_examples(counts); }), HasSubstr("example 1 holds 1 arrays, expected 2"));
  EXPECT_THAT(error_of([&] { concat_examples({}); }), HasSubstr("argument 'batch' is empty"));
  std::vector<std::vector<Array>> same = {{Array::zeros({2})}};
  if (!std::getenv("KILN_CUDA_EMULATE") && !cuda_driver::unavailable_reason().empty())  // a GPU id is Device::cuda(id)
    EXPECT_THAT(error_of([&] { concat_examples(same, 0); }), HasSubstr("Device::cuda(0): no CUDA device"));
  EXPECT_THAT(error_of([&] { concat_examples(same, -2); }),
              HasSubstr("concat_examples: argument 'device' must be -1 (the host) or a GPU id, got -2"));
  EXPECT_THAT(error_of([&] { concat_examples(same, -1, std::vector<double>{1, 2}); }),
              HasSubstr("argument 'padding' holds 2 values, expected one per array of an example (1)"));
}

TEST(Datasets, PtbWordsFromADirectory) {
  fs::path dir = fs::path(testing::TempDir()) / "kiln_ptb_test";
  fs::create_directories(dir);
  std::ofstream(dir / "ptb.train.txt") << " the cat sat \n the dog\n\n";
  std::ofstream(dir / "ptb.valid.txt") << "dog sat the\n";
  std::ofstream(dir / "ptb.test.txt") << "cat";  // no final newline: still one line
  auto vocab = datasets::get_ptb_words_vocabulary(dir.string());
  EXPECT_EQ(vocab.size(), 5u);
  EXPECT_EQ(vocab.at("the"), 0);
  EXPECT_EQ(vocab.at("cat"), 1);
  EXPECT_EQ(vocab.at("sat"), 2);
  EXPECT_EQ(vocab.at("<eos>"), 3);
  EXPECT_EQ(vocab.at("dog"), 4);
  auto [train, valid, test] = datasets::get_ptb_words(dir.string());
  EXPECT_EQ(train.dtype(), DType::i32);
  EXPECT_THAT(train.to_vector<int32_t>(), ElementsAre(0, 1, 2, 3, 0, 4, 3, 3));  // a blank line is an <eos>
  EXPECT_THAT(valid.to_vector<int32_t>(), ElementsAre(4, 2, 0, 3));
  EXPECT_THAT(test.to_vector<int32_t>(), ElementsAre(1, 3));

  std::ofstream(dir / "ptb.test.txt") << "cat bird\n";
  EXPECT_THAT(error_of([&] { datasets::get_ptb_words(dir.string()); }),
              HasSubstr("ptb.test.txt' line 1: the word 'bird' is not in the vocabulary"));
  fs::remove(dir / "ptb.valid.txt");
  std::string missing = error_of([&] { datasets::get_ptb_words(dir.string()); });
  EXPECT_THAT(missing, HasSubstr((dir / "ptb.valid.txt").string() + "' not found"));
  EXPECT_THAT(missing, HasSubstr("download ptb.train.txt, ptb.valid.txt and ptb.test.txt"));
  EXPECT_THAT(error_of([] { datasets::get_ptb_words_vocabulary("/nonexistent-ptb"); }),
              HasSubstr("get_ptb_words_vocabulary: '/nonexistent-ptb/ptb.train.txt' not found"));
  fs::remove_all(dir);
}
