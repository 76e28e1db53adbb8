#include "host/data/synthetic.h"

#include <cmath>

#include "gac/philox.h"
#include "host/data/data_error.h"

namespace gac::data_detail {
namespace {

Dataset synthetic(const std::string& name) {
  Dataset d;
  d.name = name;
  d.c = 1;
  d.h = 1;
  d.w = 2;
  d.n_classes = 2;
  d.labels = d.class_ids = {0, 1};
  d.synthetic = true;
  return d;
}

void add_point(Examples& e, double x, double y, int32_t label) {
  e.x.push_back(static_cast<float>(x));
  e.x.push_back(static_cast<float>(y));
  e.y.push_back(label);
}

}  // namespace

Dataset make_kink(const DataConfig& cfg) {
  constexpr int kPoints = 2000;
  if (!(std::isfinite(cfg.margin) && cfg.margin > 0)) fail("kink: margin " + show(cfg.margin) + " must be positive");
  Dataset d = synthetic("kink");
  for (int upper = 0; upper < 2; ++upper)
    for (int i = 0; i < kPoints; ++i) {
      const double x = -1.0 + 2.0 * i / (kPoints - 1);
      add_point(d.train, x, -std::fabs(x) + (upper ? cfg.margin : 0.0), upper ? 0 : 1);
    }
  return d;
}

Dataset make_slab() {
  constexpr int kSlabs = 4, kPoints = 400;
  constexpr double kThickness = 0.35, kGap = 0.2;
  constexpr uint64_t kPoolSeed = 0x5EED51AB5EED51ABull;
  Dataset d = synthetic("slab");
  SplitMix64 rng(kPoolSeed);
  for (int k = 0; k < kSlabs; ++k) {
    const double top = 1.0 - (kThickness + kGap) * k, bottom = top - kThickness;
    const bool left = k % 2 == 0;
    const double x0 = left ? -1.0 : 0.1, x1 = left ? -0.1 : 1.0;
    for (int i = 0; i < kPoints; ++i) {
      const double x = x0 + (x1 - x0) * rng.uniform();
      add_point(d.train, x, bottom + kThickness * rng.uniform(), left ? 1 : 0);
    }
  }
  return d;
}

}  // namespace gac::data_detail
