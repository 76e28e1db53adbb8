// Datasets: loading every supported format into one in-memory form, choosing
// classes, standardizing, and drawing the training set of one (n, repeat).
// Nothing is downloaded; every bad file ends in a gac::Error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gac {

// Examples as rows of `dim` floats ([c][h][w] for images), labels 0..k-1.
struct Examples {
  std::vector<float> x;
  std::vector<int32_t> y;
  size_t size() const { return y.size(); }
};

struct DataConfig {
  std::string kind = "kink";   // idx | cifar10 | npy | csv | kink | slab
  std::string path;            // idx, cifar10: directory holding the files
  std::string prefix = "";     // idx: file prefix ("" for train-images-idx3-ubyte...)
  std::vector<int> classes;    // explicit original labels, in this order (label i -> i)
  int random_classes = 0;      // > 0: choose this many classes with the data seed
  // npy: feature and label files; csv: train_file / test_file, label in `label_column`
  std::string train_x, train_y, test_x, test_y;
  std::string train_file, test_file;
  int label_column = -1;       // csv: column index of the label (-1: last)
  std::vector<int> shape;      // npy/csv: [c, h, w] of each row (empty: flat)
  bool standardize = false;    // npy/csv: standardize features with train mean/std
  int test_size = 1000;        // kink/slab: test points after the n training points
  double margin = 0.25;        // kink: vertical offset of the second polyline
  uint64_t seed = 0;           // run's data seed: class choice
};

struct Dataset {
  std::string name;
  int c = 1, h = 1, w = 1;        // shape of one example
  int n_classes = 0;
  std::vector<int> class_ids;     // original label of each class index
  bool synthetic = false;         // kink/slab: train and test come from one pool
  Examples train;                 // training split (for synthetic sets: the whole pool)
  Examples test;                  // test split of the chosen classes (empty for synthetic)
  int dim() const { return c * h * w; }
};

// Loads, filters to the chosen classes, relabels 0..k-1, and (images) scales
// to [0,1] and standardizes each channel with the training split's mean/std.
Dataset load_dataset(const DataConfig& cfg);

struct TrainTest {
  Examples train;
  Examples test;
};

// Training set of one (n, repeat), drawn with `data_seed`:
// - image/npy/csv sets: a class-balanced subset of the training split (n/k per
//   class, the first n%k classes one more), each class's examples picked at
//   random and the classes dealt round-robin in a seeded class order (so a
//   net that predicts one class is rejected within k examples); the test set
//   is the whole test split.
// - kink/slab: the pool shuffled with data_seed; train = first n points,
//   test = the next cfg.test_size points.
// Throws gac::Error when the data cannot supply n examples (or n per class share).
TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed);

}  // namespace gac
