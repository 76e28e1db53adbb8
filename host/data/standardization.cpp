#include "host/data/standardization.h"

#include <cmath>

namespace gac::data_detail {

void group_stats(const Examples& e, int dim, int groups, const std::vector<size_t>& rows, std::vector<double>& mean,
                 std::vector<double>& sd) {
  const size_t run = static_cast<size_t>(dim / groups), count = rows.size() * run;
  mean.assign(groups, 0.0);
  std::vector<double> var(groups, 0.0);
  for (size_t r : rows)
    for (size_t j = 0; j < static_cast<size_t>(dim); ++j) mean[j / run] += e.x[r * dim + j];
  for (double& m : mean) m /= static_cast<double>(count);
  for (size_t r : rows)
    for (size_t j = 0; j < static_cast<size_t>(dim); ++j) {
      const double dev = e.x[r * dim + j] - mean[j / run];
      var[j / run] += dev * dev;
    }
  sd.resize(groups);
  for (int g = 0; g < groups; ++g) {
    const double s = std::sqrt(var[g] / static_cast<double>(count));
    sd[g] = s > 0 ? s : 1.0;
  }
}

std::vector<size_t> all_rows(size_t count) {
  std::vector<size_t> rows(count);
  for (size_t i = 0; i < count; ++i) rows[i] = i;
  return rows;
}

}  // namespace gac::data_detail
