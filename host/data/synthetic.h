// The paper's synthetic 2-D sets: one pool of points, which the data seed
// shuffles into each training set and its test points.
#pragma once

#include "gac/dataset.h"

namespace gac::data_detail {

// y = -|x| (label 1) and the same raised by `margin` (label 0), 2000 evenly
// spaced x in [-1, 1] each.
Dataset make_kink(const DataConfig& cfg);

// Four horizontal slabs from y = 1 down, alternately left (label 1) and right
// (label 0). The seed is fixed so that the pool is the same for every run;
// only its shuffle depends on the data seed.
Dataset make_slab();

}  // namespace gac::data_detail
