#include "host/report/boundary.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/npy.h"
#include "host/report/stored_models.h"
#include "kernels/forward.h"

namespace gac {

namespace {

namespace fs = std::filesystem;

// A stored example file as points and labels; none when the run did not store it.
void read_points(const fs::path& stem, std::vector<double>& x, std::vector<int>& y) {
  if (!fs::exists(stem.string() + "x.npy")) return;
  x = read_npy(stem.string() + "x.npy").data;
  for (double label : read_npy(stem.string() + "y.npy").data) y.push_back(static_cast<int>(label));
}

// Stream (n, repeat)'s stored points; `what` names the caller in the error
// for a stream that stores no training set.
void read_stream_points(const Store& store, int n, int repeat, const std::string& what, std::vector<double>& train_x,
                        std::vector<int>& train_y, std::vector<double>& test_x, std::vector<int>& test_y) {
  const fs::path stem = store.dir() / "data" / stream_data_stem(n, repeat);
  read_points(stem.string() + "train_", train_x, train_y);
  read_points(stem.string() + "test_", test_x, test_y);
  if (train_x.empty())
    throw Error(what + ": " + store.dir().string() + " stores no training set for n=" + std::to_string(n) + " repeat " +
                std::to_string(repeat) + " (" + stem.string() + "train_x.npy)");
}

// The grid's span: every point with a tenth of the range (at least 0.1) around it.
void set_span(DecisionMap& map) {
  double lo[2] = {1e300, 1e300}, hi[2] = {-1e300, -1e300};
  for (const std::vector<double>* points : {&map.train_x, &map.test_x})
    for (size_t i = 0; i < points->size(); ++i) {
      lo[i % 2] = std::min(lo[i % 2], (*points)[i]);
      hi[i % 2] = std::max(hi[i % 2], (*points)[i]);
    }
  for (int d = 0; d < 2; ++d) {
    const double pad = std::max(0.1 * (hi[d] - lo[d]), 0.1);
    lo[d] -= pad;
    hi[d] += pad;
  }
  map.x_lo = lo[0], map.x_hi = hi[0], map.y_lo = lo[1], map.y_hi = hi[1];
}

}  // namespace

DecisionMap decision_map(const Store& store, int n, int repeat, int max_models, int grid) {
  const std::string dir = store.dir().string();
  const ModelSpec spec = stored_model_spec(store);
  if (spec.in_size() != 2 || spec.n_classes != 2)
    throw Error("plot --figure boundary needs runs on 2-D inputs with two classes (kink, slab); " + dir + "'s model reads " +
                std::to_string(spec.in_size()) + " inputs into " + std::to_string(spec.n_classes) + " classes");
  std::vector<StoredModel> models, of_n;
  for (StoredModel& m : store.models())
    if (m.n == n) (m.repeat == repeat ? models : of_n).push_back(std::move(m));
  std::set<int> sets = {repeat};
  if (models.size() < DecisionMap::kFewModels)
    for (StoredModel& m : of_n) {
      sets.insert(m.repeat);
      models.push_back(std::move(m));
    }
  if (models.empty())
    throw Error("plot --figure boundary: " + dir + " has no model of n=" + std::to_string(n) + " repeat " +
                std::to_string(repeat));

  DecisionMap map;
  map.n = n, map.repeat = repeat, map.grid = grid, map.sets = static_cast<int>(sets.size());
  map.models_available = static_cast<int>(models.size());
  read_stream_points(store, n, repeat, "plot --figure boundary", map.train_x, map.train_y, map.test_x, map.test_y);
  set_span(map);

  std::vector<int> class1(static_cast<size_t>(grid) * grid, 0);
  std::vector<float> buf0(spec.max_activation), buf1(spec.max_activation);
  const size_t count = std::min<size_t>(models.size(), static_cast<size_t>(max_models));
  for (size_t k = 0; k < count; ++k) {
    const StoredModel& m = models[k * models.size() / count];
    const std::vector<float> params = stored_params(store, m, spec, "plot --figure boundary");
    for (int yi = 0; yi < grid; ++yi)
      for (int xi = 0; xi < grid; ++xi) {
        const float point[2] = {static_cast<float>(map.x_lo + (map.x_hi - map.x_lo) * xi / (grid - 1)),
                                static_cast<float>(map.y_lo + (map.y_hi - map.y_lo) * yi / (grid - 1))};
        const float* logits = forward_example(spec, params.data(), point, buf0.data(), buf1.data());
        class1[static_cast<size_t>(yi) * grid + xi] += argmax(logits, 2) == 1;
      }
  }
  map.models = static_cast<int>(count);
  map.share.resize(class1.size());
  for (size_t i = 0; i < class1.size(); ++i) map.share[i] = static_cast<double>(class1[i]) / count;
  return map;
}

StreamPoints stream_points(const Store& store, int n, int repeat) {
  const ModelSpec spec = stored_model_spec(store);
  if (spec.in_size() != 2)
    throw Error("plot --figure data needs runs on 2-D inputs (kink, slab); " + store.dir().string() + "'s model reads " +
                std::to_string(spec.in_size()) + " inputs");
  StreamPoints p;
  read_stream_points(store, n, repeat, "plot --figure data", p.train_x, p.train_y, p.test_x, p.test_y);
  return p;
}

}  // namespace gac
