// Datasets: a reader per file format (IDX, CIFAR-10 binary, NPY, CSV:
// host/data/*_reader.cpp) gives both splits in the form of raw_data.h, which
// becomes a Dataset here; the synthetic kink and slab sets are made whole
// (synthetic.cpp). Every problem with a file is a gac::Error naming it: a
// wrong file must never turn into silently wrong numbers.
#include "gac/dataset.h"

#include <algorithm>

#include "host/data/classes.h"
#include "host/data/raw_data.h"
#include "host/data/standardization.h"
#include "host/data/synthetic.h"

namespace gac::data_detail {
namespace {

// One split's rows as floats divided by `divisor` (255 for image bytes).
template <class T>
Examples scaled(const Split<T>& split, double divisor) {
  Examples out;
  out.y.assign(split.labels.begin(), split.labels.end());
  out.x.resize(split.x.size());
  for (size_t j = 0; j < split.x.size(); ++j) out.x[j] = static_cast<float>(static_cast<double>(split.x[j]) / divisor);
  return out;
}

template <class T>
Dataset finish(RawData<T> raw, const DataConfig& cfg, double divisor, bool standardize_values) {
  if (cfg.statistics != "all" && cfg.statistics != "classes")
    fail("data.statistics '" + cfg.statistics + "' is not one of all, classes");
  Dataset d;
  d.name = raw.name;
  d.c = raw.shape.c;
  d.h = raw.shape.h;
  d.w = raw.shape.w;
  d.labels = raw.train.labels;
  std::sort(d.labels.begin(), d.labels.end());
  d.labels.erase(std::unique(d.labels.begin(), d.labels.end()), d.labels.end());
  choose_classes(cfg, d, raw.test.labels);
  if (!d.class_ids.empty() &&
      std::none_of(raw.test.labels.begin(), raw.test.labels.end(), [&](int l) {
        return std::find(d.class_ids.begin(), d.class_ids.end(), l) != d.class_ids.end();
      }))
    fail(d.name + ": the test split has no examples of the chosen classes (" + label_list(d.class_ids) + ")");
  d.train = scaled(raw.train, divisor);
  d.test = scaled(raw.test, divisor);
  d.standardize = standardize_values;
  d.groups = raw.flat ? d.dim() : d.c;
  if (d.standardize) group_stats(d.train, d.dim(), d.groups, all_rows(d.train.size()), d.mean, d.sd);
  return d;
}

}  // namespace
}  // namespace gac::data_detail

namespace gac {

Dataset load_dataset(const DataConfig& cfg) {
  using namespace data_detail;
  constexpr double kByte = 255.0;
  if (cfg.kind == "kink") return make_kink(cfg);
  if (cfg.kind == "slab") return make_slab();
  if (cfg.kind == "idx") return finish(load_idx(cfg), cfg, kByte, true);
  if (cfg.kind == "cifar10") return finish(load_cifar10(cfg), cfg, kByte, true);
  if (cfg.kind == "npy") return finish(load_npy(cfg), cfg, 1.0, cfg.standardize);
  if (cfg.kind == "csv") return finish(load_csv(cfg), cfg, 1.0, cfg.standardize);
  fail("unknown data.kind '" + cfg.kind + "' (valid: idx, cifar10, npy, csv, kink, slab)");
}

}  // namespace gac
