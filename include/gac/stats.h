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
  Interval ci95;  // mean +- t * std / sqrt(count); NaN (not estimable) for count < 2
};

Summary summarize(const std::vector<double>& values);

// The mean over every value of `groups` (e.g. the models accepted on each
// training set) with the group as the unit of its interval: values of one
// group are not independent. The standard error is the cluster-robust one,
//   se^2 = G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2 / N^2,
// over the G groups holding values (N values in all), and the interval is
// mean +- t_{G-1} * se. With equally many values per group this is exactly
// the t interval over the G group means. Fewer than 2 groups: not estimable
// (se and interval NaN), never a zero-width interval from one group.
struct GroupedMean {
  int count = 0;   // values
  int groups = 0;  // groups holding at least one value
  double mean = 0, se = 0;
  Interval ci95;
};

GroupedMean grouped_mean(const std::vector<std::vector<double>>& groups);

}  // namespace gac
