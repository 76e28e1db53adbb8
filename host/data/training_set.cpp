// The training and test examples of one (n, repeat) (see make_train_test in
// gac/dataset.h).
#include <algorithm>
#include <set>

#include "gac/dataset.h"
#include "gac/philox.h"
#include "host/data/classes.h"
#include "host/data/data_error.h"
#include "host/data/standardization.h"

namespace gac::data_detail {
namespace {

// The rows of the chosen classes' examples in file order, relabeled to class
// indices and standardized as `source` says.
Examples gather(const Examples& from, int dim, const std::vector<size_t>& rows, const std::vector<int>& classes,
                const SplitSource& source) {
  Examples out;
  out.y.reserve(rows.size());
  out.x.reserve(rows.size() * dim);
  const size_t run = source.mean.empty() ? 1 : static_cast<size_t>(dim) / source.mean.size();
  for (size_t r : rows) {
    const auto label = std::find(classes.begin(), classes.end(), from.y[r]);
    out.y.push_back(static_cast<int32_t>(label - classes.begin()));
    const float* row = from.x.data() + r * static_cast<size_t>(dim);
    for (size_t j = 0; j < static_cast<size_t>(dim); ++j)
      out.x.push_back(source.mean.empty() ? row[j]
                                          : static_cast<float>((row[j] - source.mean[j / run]) / source.sd[j / run]));
  }
  return out;
}

// A synthetic split's only requirement, whatever its seed: n + test_size points in the pool.
void check_synthetic_size(const Dataset& data, int test_size, int n) {
  if (test_size < 1) fail("test_size = " + num(test_size) + " must be at least 1 (test accuracy needs test points)");
  const size_t pool = data.train.size(), need = static_cast<size_t>(n) + static_cast<size_t>(test_size);
  if (need > pool)
    fail("n = " + num(n) + " plus test_size = " + num(test_size) + " needs " + num(need) + " points but the " + data.name +
         " pool has " + num(pool));
}

TrainTest synthetic_split(const Dataset& data, int test_size, int n, uint64_t data_seed) {
  check_synthetic_size(data, test_size, n);
  const size_t pool = data.train.size(), need = static_cast<size_t>(n) + static_cast<size_t>(test_size);
  std::vector<size_t> order = all_rows(pool);
  SplitMix64 rng(data_seed);
  rng.shuffle(order.data(), order.size());
  TrainTest tt;
  tt.source.classes = data.class_ids;
  const std::vector<size_t> train(order.begin(), order.begin() + n), test(order.begin() + n, order.begin() + need);
  tt.train = gather(data.train, data.dim(), train, data.class_ids, tt.source);
  tt.test = gather(data.train, data.dim(), test, data.class_ids, tt.source);
  tt.source.train_rows.assign(train.begin(), train.end());
  tt.source.test_rows.assign(test.begin(), test.end());
  return tt;
}

// Examples of class c in a training set of n drawn from k classes.
size_t class_share(int n, int k, int c) { return static_cast<size_t>(n / k + (c < n % k ? 1 : 0)); }

// The rows of each class (index into `classes`) in the training split, in file order.
std::vector<std::vector<size_t>> rows_by_class(const Dataset& data, const std::vector<int>& classes) {
  std::vector<std::vector<size_t>> by_class(classes.size());
  for (size_t i = 0; i < data.train.size(); ++i) {
    const auto it = std::find(classes.begin(), classes.end(), data.train.y[i]);
    if (it != classes.end()) by_class[it - classes.begin()].push_back(i);
  }
  return by_class;
}

void check_shares(const std::vector<int>& classes, const std::vector<std::vector<size_t>>& by_class, int n) {
  const int k = static_cast<int>(classes.size());
  for (int c = 0; c < k; ++c)
    if (class_share(n, k, c) > by_class[c].size())
      fail("n = " + num(n) + " needs " + num(class_share(n, k, c)) + " examples of class " + num(c) + " (original label " +
           num(classes[c]) + ") but the training split has " + num(by_class[c].size()));
}

std::vector<size_t> test_rows_of(const Dataset& data, const std::vector<int>& classes) {
  std::vector<size_t> rows;
  for (size_t i = 0; i < data.test.size(); ++i)
    if (std::find(classes.begin(), classes.end(), data.test.y[i]) != classes.end()) rows.push_back(i);
  if (rows.empty()) fail(data.name + ": the test split has no examples of classes " + label_list(classes));
  return rows;
}

TrainTest balanced_split(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed,
                         const std::vector<int>& classes) {
  check_classes(data, classes);
  const int k = static_cast<int>(classes.size());
  std::vector<std::vector<size_t>> by_class = rows_by_class(data, classes);
  check_shares(classes, by_class, n);
  const std::vector<size_t> test_rows = test_rows_of(data, classes);

  TrainTest tt;
  tt.source.classes = classes;
  if (data.standardize && cfg.statistics == "classes") {
    std::vector<size_t> class_rows;  // file order, as the statistics of a filtered split
    for (size_t i = 0; i < data.train.size(); ++i)
      if (std::find(classes.begin(), classes.end(), data.train.y[i]) != classes.end()) class_rows.push_back(i);
    group_stats(data.train, data.dim(), data.groups, class_rows, tt.source.mean, tt.source.sd);
  } else if (data.standardize) {
    tt.source.mean = data.mean;
    tt.source.sd = data.sd;
  }

  // One generator for everything, in a fixed order: each class's pick by a
  // partial Fisher-Yates shuffle, then the classes dealt round-robin in a
  // seeded class order. Alternating classes lets early rejection discard the
  // many random nets that predict one class for everything within k examples.
  SplitMix64 rng(data_seed);
  for (int c = 0; c < k; ++c) {
    std::vector<size_t>& rows = by_class[c];
    for (size_t i = 0; i < class_share(n, k, c); ++i) std::swap(rows[i], rows[i + rng.below(rows.size() - i)]);
  }
  std::vector<int> class_order(k);
  for (int c = 0; c < k; ++c) class_order[c] = c;
  rng.shuffle(class_order.data(), class_order.size());
  std::vector<size_t> picked;
  for (size_t round = 0; picked.size() < static_cast<size_t>(n); ++round)
    for (int c : class_order)
      if (round < class_share(n, k, c)) picked.push_back(by_class[c][round]);

  tt.train = gather(data.train, data.dim(), picked, classes, tt.source);
  tt.test = gather(data.test, data.dim(), test_rows, classes, tt.source);
  tt.source.train_rows.assign(picked.begin(), picked.end());
  tt.source.test_rows.assign(test_rows.begin(), test_rows.end());
  return tt;
}

}  // namespace
}  // namespace gac::data_detail

namespace gac {

TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed,
                          const std::vector<int>& classes) {
  using namespace data_detail;
  if (n < 1) fail("n = " + num(n) + " must be at least 1");
  if (data.synthetic) return synthetic_split(data, cfg.test_size, n, data_seed);
  return balanced_split(data, cfg, n, data_seed, classes);
}

TrainTest make_train_test(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed) {
  return make_train_test(data, cfg, n, data_seed, training_set_classes(data, data_seed));
}

void check_training_set(const Dataset& data, const DataConfig& cfg, int n, uint64_t data_seed) {
  check_training_sets(data, cfg, n, {data_seed});
}

void check_training_sets(const Dataset& data, const DataConfig& cfg, int n, const std::vector<uint64_t>& data_seeds) {
  using namespace data_detail;
  if (n < 1) fail("n = " + num(n) + " must be at least 1");
  if (data.synthetic) {
    check_synthetic_size(data, cfg.test_size, n);
    return;
  }
  // What can fail depends on a set's classes alone: each distinct choice is checked once (a
  // million training sets of MNIST draw at most 45 pairs of classes).
  std::set<std::vector<int>> checked;
  for (uint64_t seed : data_seeds) {
    const std::vector<int> classes = training_set_classes(data, seed);
    if (!checked.insert(classes).second) continue;
    check_shares(classes, rows_by_class(data, classes), n);
    test_rows_of(data, classes);
  }
}

}  // namespace gac
