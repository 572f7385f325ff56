// Datasets, iterators and the digits/MNIST loaders.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <kiln/kiln.h>
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <set>

using namespace kiln;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {
std::shared_ptr<datasets::TupleDataset> range_dataset(int n) {
  std::vector<float> x;
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) { x.push_back(i); x.push_back(-i); t.push_back(i); }
  return std::make_shared<datasets::TupleDataset>(std::vector<Array>{Array::from(x, {n, 2}), Array::from(t, {n})});
}
std::string error_of(const std::function<void()>& f) {
  try { f(); } catch (const Error& e) { return e.what(); }
  return "(no error)";
}
}  // namespace

TEST(Datasets, TupleAndConcat) {
  auto ds = range_dataset(5);
  EXPECT_EQ(ds->size(), 5u);
  auto ex = ds->get_example(3);
  EXPECT_THAT(ex[0].to_vector<float>(), ElementsAre(3, -3));
  EXPECT_EQ(ex[1].item<int32_t>(), 3);
  auto batch = concat_examples({ds->get_example(1), ds->get_example(4)});
  EXPECT_EQ(batch[0].shape(), (Shape{2, 2}));
  EXPECT_THAT(batch[0].to_vector<float>(), ElementsAre(1, -1, 4, -4));
  EXPECT_THAT(batch[1].to_vector<int32_t>(), ElementsAre(1, 4));
  EXPECT_THAT(error_of([&] { ds->get_example(5); }), HasSubstr("out of range"));
  EXPECT_THAT(error_of([&] { datasets::TupleDataset({Array::zeros({3}), Array::zeros({4})}); }),
              HasSubstr("same first dimension"));
}

TEST(Datasets, SplitRandomIsAPartition) {
  auto ds = range_dataset(10);
  auto [a, b] = datasets::split_dataset_random(ds, 7, 3);
  EXPECT_EQ(a->size(), 7u);
  EXPECT_EQ(b->size(), 3u);
  std::set<int> seen;
  for (size_t i = 0; i < a->size(); ++i) seen.insert(a->get_example(i)[1].item<int32_t>());
  for (size_t i = 0; i < b->size(); ++i) seen.insert(b->get_example(i)[1].item<int32_t>());
  EXPECT_EQ(seen.size(), 10u);
}

TEST(Iterators, SerialIteratorEpochs) {
  auto ds = range_dataset(5);
  iterators::SerialIterator it(ds, 2, /*repeat=*/true, /*shuffle=*/false);
  auto b1 = it.next();
  EXPECT_EQ(b1.size(), 2u);
  EXPECT_FALSE(it.is_new_epoch);
  EXPECT_DOUBLE_EQ(it.epoch_detail(), 0.4);
  it.next();
  auto b3 = it.next();  // wraps: 4, then 0 of the next epoch
  EXPECT_EQ(b3[0][1].item<int32_t>(), 4);
  EXPECT_EQ(b3[1][1].item<int32_t>(), 0);
  EXPECT_TRUE(it.is_new_epoch);
  EXPECT_EQ(it.epoch, 1);

  iterators::SerialIterator once(ds, 2, /*repeat=*/false, /*shuffle=*/true);
  size_t total = 0;
  while (!once.exhausted()) total += once.next().size();
  EXPECT_EQ(total, 5u);
  EXPECT_THAT(error_of([&] { once.next(); }), HasSubstr("no more batches"));
}

TEST(Datasets, Digits) {
  if (datasets::find_digits_csv().empty()) GTEST_SKIP() << "python3-sklearn's digits.csv.gz is not installed";
  auto d = datasets::load_digits();
  EXPECT_EQ(d->size(), 1797u);
  EXPECT_EQ(d->arrays()[0].shape(), (Shape{1797, 64}));
  auto first = d->get_example(0);
  EXPECT_FLOAT_EQ(first[0].to_vector<float>()[2], 5.0f / 16.0f);  // "0,0,5,13,..."
  EXPECT_EQ(first[1].item<int32_t>(), 0);
}

TEST(Datasets, BadFilesNameThePath) {
  EXPECT_THAT(error_of([] { datasets::load_digits("/nonexistent/digits.csv"); }), HasSubstr("/nonexistent/digits.csv"));
  std::string bad = testing::TempDir() + "/bad_digits.csv";
  std::ofstream(bad) << "1,2,3\n";
  EXPECT_THAT(error_of([&] { datasets::load_digits(bad); }), HasSubstr("expected 65 values"));
  EXPECT_THAT(error_of([] { datasets::load_mnist("/nonexistent-mnist", true); }), HasSubstr("Download the four MNIST files"));
}

TEST(Datasets, MnistIdxFiles) {
  std::string dir = testing::TempDir() + "/kiln_mnist";
  std::system(("mkdir -p " + dir).c_str());
  auto be = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  std::string images = be(2051) + be(2) + be(2) + be(2) + std::string{0, char(255), char(51), 0, 1, 2, 3, 4};
  std::string labels = be(2049) + be(2) + std::string{7, 3};
  gzFile g = gzopen((dir + "/t10k-images-idx3-ubyte.gz").c_str(), "wb");
  gzwrite(g, images.data(), images.size());
  gzclose(g);
  std::ofstream(dir + "/t10k-labels-idx1-ubyte", std::ios::binary) << labels;
  auto d = datasets::load_mnist(dir, false);
  EXPECT_EQ(d->size(), 2u);
  EXPECT_THAT(d->get_example(0)[0].to_vector<float>(), ElementsAre(0.f, 1.f, 0.2f, 0.f));
  EXPECT_THAT(d->arrays()[1].to_vector<int32_t>(), ElementsAre(7, 3));
  std::ofstream(dir + "/t10k-labels-idx1-ubyte", std::ios::binary) << be(2049) + be(5) + "x";
  EXPECT_THAT(error_of([&] { datasets::load_mnist(dir, false); }), HasSubstr("t10k-labels-idx1-ubyte"));
}
