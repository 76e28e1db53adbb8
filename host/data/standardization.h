// The statistics that standardize a dataset's values.
#pragma once

#include <cstddef>
#include <vector>

#include "gac/dataset.h"

namespace gac::data_detail {

// Mean and population std of each of `groups` equal runs of a row (the
// channels of [c][h][w], or every single feature) over the given rows. A
// constant group gets std 1, so it is only centered: dividing by 0 would
// turn it into NaN.
void group_stats(const Examples& e, int dim, int groups, const std::vector<size_t>& rows, std::vector<double>& mean,
                 std::vector<double>& sd);

// 0, 1, ..., count - 1: every row of a split.
std::vector<size_t> all_rows(size_t count);

}  // namespace gac::data_detail
