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

// Nested sampling's cluster-robust rate interval (bodies as clusters,
// docs/nested.md): Wilson's interval of the proportion successes / trials
// with the effective number of trials, trials / max(1, design_effect).
// Design effect 1 is wilson_interval, bit for bit.
Interval wilson_interval_clustered(uint64_t successes, uint64_t trials, double design_effect,
                                   double z = 1.959963984540054);

// The design effect of a rate over pairs in clusters of `heads` (bodies):
// sum over bodies of (h_b - p heads)^2 over pairs p (1 - p), from the pairs,
// the hits, and sum_b h_b^2 = hits + 2 same_body. 1 when heads is 1 or there
// are no hits (nothing to estimate it from) or every pair hit.
double design_effect(uint64_t pairs, uint64_t hits, uint64_t same_body, int heads);

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

// a.mean - b.mean for two independent grouped means (one cell of two runs,
// each with its own training sets as the units): se^2 = se_a^2 + se_b^2, the
// Welch-Satterthwaite degrees of freedom
//   df = (se_a^2 + se_b^2)^2 / (se_a^4 / (G_a - 1) + se_b^4 / (G_b - 1)),
// and the interval difference +- t_floor(df) * se (rounding df down widens
// it a little; df >= min(G_a, G_b) - 1 >= 1). Not estimable (se, df and
// interval NaN) when either side is; mean NaN when either has no values.
struct MeanDifference {
  double mean = 0, se = 0, df = 0;
  Interval ci95;
};

MeanDifference mean_difference(const GroupedMean& a, const GroupedMean& b);

// mean(a) - mean(b) for k paired values (a[r] and b[r] measured on the same
// training set r): the mean of d_r = a[r] - b[r], se = sd(d) / sqrt(k),
// df = k - 1 and the interval mean +- t_{k-1} * se. Not estimable (se, df and
// interval NaN) when k < 2; mean NaN when k = 0. Every d_r equal: se 0 (an
// se below 1e-12 is rounding) and df = k - 1, but the interval is NaN too,
// never a zero-width interval.
// Throws std::invalid_argument unless a and b have the same size.
MeanDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace gac
