// Internals of the per-cell aggregation (cells.cpp) that the report's
// formats share.
#pragma once

#include <limits>

#include "gac/report.h"

namespace gac {

// A figure that is not there: no models in a cell, or not estimable.
inline const double kNaN = std::numeric_limits<double>::quiet_NaN();

// The rate is only bounded from above when no draw has hit yet.
inline bool rate_is_upper_bound(const CellReport& c) { return c.hits == 0 && c.draws > 0; }

}  // namespace gac
