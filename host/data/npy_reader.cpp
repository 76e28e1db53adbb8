// Users' features and labels in .npy files (the format itself: host/data/npy.cpp).
#include <algorithm>
#include <climits>
#include <cmath>

#include "gac/npy.h"
#include "host/data/raw_data.h"

namespace gac::data_detail {
namespace {

namespace fs = std::filesystem;

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + num(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

Split<double> load_npy_split(const std::string& x_file, const std::string& y_file, Shape& shape, bool& flat) {
  require_file(x_file);
  require_file(y_file);
  NpyArray x = read_npy(x_file);
  const NpyArray y = read_npy(y_file);
  const auto& xs = x.shape;
  const bool positive = std::all_of(xs.begin(), xs.end(), [](int64_t d) { return d > 0 && d <= INT_MAX; });
  if ((xs.size() != 2 && xs.size() != 4) || !positive)
    fail(x_file + ": features must have shape (N, D) or (N, c, h, w) with no empty axis, got " + shape_text(xs));
  // The reader holds every value, so their count bounds the row size.
  if (x.data.size() / static_cast<size_t>(xs[0]) > INT_MAX)
    fail(x_file + ": examples of shape " + shape_text(xs) + " are too large");
  flat = xs.size() == 2;
  shape = flat ? Shape{1, 1, int(xs[1])} : Shape{int(xs[1]), int(xs[2]), int(xs[3])};
  if (y.shape.size() != 1 || y.shape[0] != xs[0])
    fail(y_file + ": labels must have shape (" + num(xs[0]) + ",) to match " + x_file + ", got " + shape_text(y.shape));
  Split<double> split;
  for (size_t i = 0; i < y.data.size(); ++i) split.labels.push_back(to_label(y.data[i], y_file + ": index " + num(i)));
  const auto bad = std::find_if(x.data.begin(), x.data.end(), [](double v) { return !std::isfinite(static_cast<float>(v)); });
  if (bad != x.data.end()) require_finite(*bad, x_file + ": example " + num((bad - x.data.begin()) / shape.dim()));
  split.x = std::move(x.data);
  return split;
}

}  // namespace

RawData<double> load_npy(const DataConfig& cfg) {
  RawData<double> raw;
  raw.name = "npy:" + fs::path(cfg.train_x).filename().string();
  Shape test_shape;
  bool test_flat = false;
  raw.train = load_npy_split(cfg.train_x, cfg.train_y, raw.shape, raw.flat);
  raw.test = load_npy_split(cfg.test_x, cfg.test_y, test_shape, test_flat);
  if (!(test_shape == raw.shape))
    fail(cfg.test_x + ": examples of " + num(test_shape.dim()) + " values (" + test_shape.str() + ") but " + cfg.train_x +
         " has " + num(raw.shape.dim()) + " (" + raw.shape.str() + ")");
  apply_config_shape(cfg.shape, raw, cfg.train_x);
  return raw;
}

}  // namespace gac::data_detail
