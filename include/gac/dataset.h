// Datasets: loading every supported format into one in-memory form, choosing
// the classes of each training set, standardizing, and drawing the training
// set of one (n, repeat). Nothing is downloaded; every bad file ends in a
// gac::Error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gac {

// Examples as rows of `dim` floats ([c][h][w] for images) and their labels.
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
  int random_classes = 0;      // > 0: choose this many classes at random...
  std::string class_draw = "per_training_set";  // ...afresh for every (n, repeat) training set (the paper's
                               // data seeds), or "per_run": one choice with the run seed
  std::string statistics = "all";  // standardize with the whole training split (all classes: the paper's
                               // _get_statistics) or "classes": the training split of the chosen classes
  // npy: feature and label files; csv: train_file / test_file, label in `label_column`
  std::string train_x, train_y, test_x, test_y;
  std::string train_file, test_file;
  int label_column = -1;       // csv: column index of the label (-1: last)
  std::vector<int> shape;      // npy/csv: [c, h, w] of each row (empty: flat)
  bool standardize = false;    // npy/csv: standardize features (images always are)
  int test_size = 1000;        // kink/slab: test points after the n training points
  double margin = 0.25;        // kink: vertical offset of the second polyline
  uint64_t seed = 0;           // the run's class-choice seed (class_draw = "per_run")
};

// Both splits as read from the files, every class kept: values scaled ([0,1]
// for image bytes) but not standardized, labels as in the files. Each
// training set takes its classes' rows from here.
struct Dataset {
  std::string name;
  int c = 1, h = 1, w = 1;        // shape of one example
  int n_classes = 0;              // classes of every training set (the model's outputs)
  std::vector<int> labels;        // the labels of the training split, ascending
  std::vector<int> class_ids;     // the classes of every training set when fixed (an explicit list, all
                                  // labels, or one choice per run); empty when drawn per training set
  bool synthetic = false;         // kink/slab: train and test come from one pool
  Examples train;                 // training split (for synthetic sets: the whole pool)
  Examples test;                  // test split (empty for synthetic sets)
  // Standardization of each of `groups` equal runs of a row (channels, or single
  // features): off for synthetic sets and unstandardized npy/csv.
  bool standardize = false;
  int groups = 1;
  std::vector<double> mean, sd;   // of the whole training split, per group
  int dim() const { return c * h * w; }
};

// Loads both splits, checks the class choice, and computes the statistics of
// the whole training split.
Dataset load_dataset(const DataConfig& cfg);

// Seeds derived from the run seed for data choices.
uint64_t class_choice_seed(uint64_t seed);
uint64_t data_seed(uint64_t seed, int n, int repeat);

// Where a training/test pair came from: enough to rebuild it from the files.
struct SplitSource {
  std::vector<int> classes;          // original label of each class index 0..k-1
  std::vector<int64_t> train_rows;   // row of each training example in the training split (kink/slab: the pool)
  std::vector<int64_t> test_rows;    // row of each test example in the test split (kink/slab: the pool)
  std::vector<double> mean, sd;      // x = (value - mean[g]) / sd[g] for each group g; empty: not standardized
};

struct TrainTest {
  Examples train;  // labels are class indices 0..k-1
  Examples test;
  SplitSource source;
};

// The classes (original labels, in class-index order) of the training set
// drawn with `data_seed`: the fixed ones, or k labels drawn with a seed
// derived from data_seed, sorted ascending.
std::vector<int> training_set_classes(const Dataset& data, uint64_t data_seed);

// Training set of one (n, repeat), drawn with `data_seed`, of `classes`
// (default: training_set_classes):
// - image/npy/csv sets: a class-balanced subset of the training split (n/k per
//   class, the first n%k classes one more), each class's examples picked at
//   random and the classes dealt round-robin in a seeded class order (so a
//   net that predicts one class is rejected within k examples); the test set
//   is the whole test split of those classes, in file order. Both are
//   standardized with the statistics that cfg.statistics names.
// - kink/slab: the pool shuffled with data_seed; train = first n points,
//   test = the next cfg.test_size points.
// Throws gac::Error when the data cannot supply n examples (or n per class share).
TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed);
TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed,
                          const std::vector<int>& classes);

// Throws what make_train_test would throw for too few examples of a class,
// without building the sets: cheap enough to check every (n, repeat) first.
void check_training_set(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed);
// The same for many training sets of size n: each distinct class choice once,
// a synthetic pool's size once (a million sets in well under a second).
void check_training_sets(const Dataset& data, const DataConfig& cfg, int n, const std::vector<uint64_t>& data_seeds);

// "3, 7": a class list as gac prints it ("3,7" with sep ",").
std::string classes_text(const std::vector<int>& classes, const char* sep = ", ");

}  // namespace gac
