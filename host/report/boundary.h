// `gac plot --figure boundary`: what a 2-D run's accepted models decide over
// the plane (the paper's Figure 2 panels).
#pragma once

#include <vector>

#include "gac/store.h"

namespace gac {

// The accepted models of stream (n, repeat) of a run on 2-D inputs with two
// classes (of every repeat of n when that stream holds fewer than
// kFewModels, as in a run of one model per training set; `sets` says how
// many), evaluated with kernels/forward.h on a grid x 0..grid-1 from
// x_lo to x_hi (and y likewise) spanning its training and test points with a
// margin: share[y * grid + x] is the share of the models predicting class 1
// there. At most max_models models are drawn, evenly over the stream's.
struct DecisionMap {
  static constexpr int kFewModels = 20;
  int n = 0, repeat = 0, grid = 0, sets = 1;
  double x_lo = 0, x_hi = 0, y_lo = 0, y_hi = 0;
  std::vector<double> share;
  int models = 0, models_available = 0;
  std::vector<double> train_x, test_x;  // x0, x1 per point
  std::vector<int> train_y, test_y;
};

// Throws gac::Error naming the run when its inputs are not 2-D with two
// classes, or when the stream has no model.
DecisionMap decision_map(const Store& store, int n, int repeat, int max_models = 200, int grid = 160);

// The stored training and test points of stream (n, repeat) of a run on 2-D
// inputs (x0, x1 per point; the test set empty when none is stored), for
// `gac plot --figure data` (the paper's Figure 1). Throws gac::Error naming
// the run when its inputs are not 2-D or it stores no such training set.
struct StreamPoints {
  std::vector<double> train_x, test_x;
  std::vector<int> train_y, test_y;
};
StreamPoints stream_points(const Store& store, int n, int repeat);

}  // namespace gac
