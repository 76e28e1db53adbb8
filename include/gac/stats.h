// Interval estimates for the per-cell summary.
#pragma once

#include <cstdint>
#include <vector>

namespace gac {

struct Interval {
  double lo = 0, hi = 0;
};

// Wilson score interval of a binomial proportion (95% by default). With zero
// successes, hi is the upper bound reported for an unfilled cell.
Interval wilson_interval(uint64_t successes, uint64_t trials, double z = 1.959963984540054);

// Two-sided 95% quantile of Student's t with `df` degrees of freedom.
double t_quantile_975(int df);

struct Summary {
  int count = 0;
  double mean = 0, std = 0, min = 0, max = 0;  // std: sample standard deviation
  Interval ci95;  // mean +- t * std / sqrt(count); equal to the mean for count < 2
};

Summary summarize(const std::vector<double>& values);

}  // namespace gac
