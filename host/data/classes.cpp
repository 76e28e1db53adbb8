#include "host/data/classes.h"

#include <algorithm>

#include "gac/philox.h"
#include "host/data/data_error.h"

namespace gac::data_detail {
namespace {

bool contains(const std::vector<int>& sorted, int label) { return std::binary_search(sorted.begin(), sorted.end(), label); }

// k of the ascending `labels`, uniformly at random, sorted ascending.
std::vector<int> draw_classes(std::vector<int> labels, int k, uint64_t seed) {
  // Partial Fisher-Yates: the first k places become a uniform k-subset.
  SplitMix64 rng(seed);
  for (int i = 0; i < k; ++i) std::swap(labels[i], labels[i + rng.below(labels.size() - i)]);
  labels.resize(k);
  std::sort(labels.begin(), labels.end());
  return labels;
}

}  // namespace

std::string label_list(const std::vector<int>& labels) {
  std::string s;
  for (size_t i = 0; i < labels.size() && i < 20; ++i) s += (i ? ", " : "") + num(labels[i]);
  return s + (labels.size() > 20 ? ", ..." : "");
}

void check_classes(const Dataset& data, const std::vector<int>& classes) {
  if (static_cast<int>(classes.size()) != data.n_classes)
    fail(num(classes.size()) + " classes (" + label_list(classes) + ") but the model has " + num(data.n_classes) +
         " outputs");
  for (size_t i = 0; i < classes.size(); ++i) {
    if (!contains(data.labels, classes[i]))
      fail("class label " + num(classes[i]) + " is not in the training split (labels present: " +
           label_list(data.labels) + ")");
    if (std::find(classes.begin(), classes.begin() + static_cast<std::ptrdiff_t>(i), classes[i]) !=
        classes.begin() + static_cast<std::ptrdiff_t>(i))
      fail("class label " + num(classes[i]) + " is listed twice");
  }
}

void choose_classes(const DataConfig& cfg, Dataset& d, const std::vector<int>& test_labels) {
  if (!cfg.classes.empty()) {
    if (cfg.random_classes > 0) fail("give either data.classes or data.random_classes, not both");
    d.class_ids = cfg.classes;
  } else if (cfg.random_classes != 0) {
    const int k = cfg.random_classes;
    if (k < 0 || k > static_cast<int>(d.labels.size()))
      fail("data.random_classes = " + num(k) + " but the training split has " + num(d.labels.size()) + " labels");
    if (cfg.class_draw == "per_run") d.class_ids = draw_classes(d.labels, k, cfg.seed);
    else if (cfg.class_draw != "per_training_set")
      fail("data.class_draw '" + cfg.class_draw + "' is not one of per_training_set, per_run");
    d.n_classes = k;
  } else {
    // All classes: a test label the training split lacks could never be
    // predicted, and dropping it would quietly change the test set.
    for (int label : test_labels)
      if (!contains(d.labels, label)) fail("the test split has label " + num(label) + ", which the training split lacks");
    d.class_ids = d.labels;
  }
  if (!d.class_ids.empty()) d.n_classes = static_cast<int>(d.class_ids.size());
  if (d.n_classes < 2)
    fail("needs at least 2 classes, got " + num(d.n_classes) +
         (d.class_ids.empty() ? " (data.random_classes)" : " (" + label_list(d.class_ids) + ")"));
  if (!d.class_ids.empty()) check_classes(d, d.class_ids);
}

}  // namespace gac::data_detail

namespace gac {

std::vector<int> training_set_classes(const Dataset& data, uint64_t data_seed) {
  using namespace data_detail;
  if (!data.class_ids.empty()) return data.class_ids;
  // A seed of its own, so the class draw and the example picks stay independent.
  return draw_classes(data.labels, data.n_classes, splitmix64(data_seed ^ 0xC1A55E5D0A7Aull));
}

std::string classes_text(const std::vector<int>& classes, const char* sep) {
  std::string s;
  for (size_t i = 0; i < classes.size(); ++i) s += (i ? sep : "") + std::to_string(classes[i]);
  return s;
}

}  // namespace gac
