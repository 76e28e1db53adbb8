// `gac report DIR --probes slab`: which decision each accepted model learned,
// told by probe sets it must classify perfectly (the paper's Figure 3).
#pragma once

#include <string>
#include <vector>

#include "gac/report.h"
#include "gac/store.h"

namespace gac {

// Points on the plane with labels; a model "fits" a probe set when it
// classifies every point right.
struct ProbeSet {
  std::string name;
  std::vector<float> x;  // x0, x1 per point
  std::vector<int> y;
};

// The paper's two probes of the slab data (its datasets.py SlabLinear and
// SlabNonlinear4, rebuilt from their geometry): "linear", 30 points per class
// on both sides of x = 0 (0.1 away), which only the straight boundary between
// the classes' half-planes fits; "nonlinear", 30 points per class 0.1·√2 to
// either side of a zigzag through the gaps between the four slabs, which only
// a boundary that follows the slabs fits.
std::vector<ProbeSet> slab_probes();

// Per cell (n, bin): how many of its models fit each probe set, with Wilson
// 95% intervals over models (each model of its own training set, as the
// paper's Figure 3 draws them: with several models per training set the
// models are not independent and the report says so). Throws gac::Error
// unless the run's models read 2 inputs into 2 classes.
std::string format_probe_report(const Store& store, const std::vector<ProbeSet>& probes, ReportFormat format);

}  // namespace gac
