// Interval estimates for the per-cell summary.
#include "gac/stats.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace gac {

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
// A standard error below this (accuracies lie in [0, 1]) is rounding of equal values.
constexpr double kEqualDifferences = 1e-12;
}

Interval wilson_interval(uint64_t successes, uint64_t trials, double z) {
  return wilson_interval_clustered(successes, trials, 1.0, z);
}

double design_effect(uint64_t pairs, uint64_t hits, uint64_t same_body, int heads) {
  if (heads <= 1 || hits == 0 || hits >= pairs) return 1.0;
  const double N = static_cast<double>(pairs), H = static_cast<double>(hits), p = H / N;
  const double sum_sq = H + 2.0 * static_cast<double>(same_body);
  // sum_b (h_b - p K)^2 = sum_b h_b^2 - 2 p K H + p^2 K^2 (N / K) = sum_sq - p K H
  return (sum_sq - p * heads * H) / (N * p * (1.0 - p));
}

Interval wilson_interval_clustered(uint64_t successes, uint64_t trials, double design_effect, double z) {
  if (trials == 0) return {0.0, 1.0};
  const double p = static_cast<double>(successes) / static_cast<double>(trials);
  const double n = static_cast<double>(trials) / std::max(1.0, design_effect);
  const double z2 = z * z;
  const double denom = 1.0 + z2 / n;
  const double center = (p + z2 / (2.0 * n)) / denom;
  const double half = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denom;
  // At p = 0 or 1 the bound is exact; don't let rounding move it off 0 or 1.
  const double lo = successes == 0 ? 0.0 : std::max(0.0, center - half);
  const double hi = successes == trials ? 1.0 : std::min(1.0, center + half);
  return {lo, hi};
}

double t_quantile_975(int df) {
  static constexpr std::array<double, 30> table = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                                   2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                                   2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                                   2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) return kNaN;
  if (df <= 30) return table[df - 1];
  // Cornish-Fisher expansion around the normal quantile; error < 1e-4 for df > 30.
  const double z = 1.959963984540054, v = df;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

Summary summarize(const std::vector<double>& values) {
  Summary s;
  if (values.empty()) return s;
  s.count = static_cast<int>(values.size());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / s.count;
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  s.min = *lo;
  s.max = *hi;
  s.ci95 = {kNaN, kNaN};
  if (s.count < 2) return s;

  double squares = 0;  // two passes: no cancellation when the spread is tiny
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(squares / (s.count - 1));
  const double half = t_quantile_975(s.count - 1) * s.std / std::sqrt(static_cast<double>(s.count));
  s.ci95 = {s.mean - half, s.mean + half};
  return s;
}

GroupedMean grouped_mean(const std::vector<std::vector<double>>& groups) {
  GroupedMean g;
  double sum = 0;
  for (const auto& values : groups) {
    g.count += static_cast<int>(values.size());
    g.groups += !values.empty();
    sum += std::accumulate(values.begin(), values.end(), 0.0);
  }
  g.mean = g.count ? sum / g.count : kNaN;
  g.se = kNaN;
  g.ci95 = {kNaN, kNaN};
  if (g.groups < 2) return g;

  double squares = 0;  // sum over groups of (the group's summed deviations)^2
  for (const auto& values : groups) {
    double deviation = 0;
    for (double v : values) deviation += v - g.mean;
    squares += deviation * deviation;
  }
  const double G = g.groups, N = g.count;
  g.se = std::sqrt(G / (G - 1) * squares) / N;
  const double half = t_quantile_975(g.groups - 1) * g.se;
  g.ci95 = {g.mean - half, g.mean + half};
  return g;
}

MeanDifference mean_difference(const GroupedMean& a, const GroupedMean& b) {
  MeanDifference d;
  d.mean = a.count && b.count ? a.mean - b.mean : kNaN;
  d.se = d.df = kNaN;
  d.ci95 = {kNaN, kNaN};
  if (std::isnan(a.se) || std::isnan(b.se)) return d;
  const double va = a.se * a.se, vb = b.se * b.se;
  d.se = std::sqrt(va + vb);
  // Both spreads zero: the limit of the formula is undefined; the interval has zero width anyway.
  d.df = va + vb > 0 ? (va + vb) * (va + vb) / (va * va / (a.groups - 1) + vb * vb / (b.groups - 1))
                     : a.groups + b.groups - 2.0;
  const double half = t_quantile_975(static_cast<int>(std::floor(d.df + 1e-9))) * d.se;
  d.ci95 = {d.mean - half, d.mean + half};
  return d;
}

MeanDifference paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("paired_difference: the two sides differ in size");
  std::vector<double> d(a.size());
  for (size_t r = 0; r < a.size(); ++r) d[r] = a[r] - b[r];
  const Summary s = summarize(d);
  MeanDifference m;
  m.mean = s.count ? s.mean : kNaN;
  m.se = s.count > 1 ? s.std / std::sqrt(static_cast<double>(s.count)) : kNaN;
  if (m.se < kEqualDifferences) m.se = 0;  // equal differences, up to the rounding of a[r] - b[r]
  m.df = s.count > 1 ? s.count - 1.0 : kNaN;
  m.ci95 = m.se > 0 ? s.ci95 : Interval{kNaN, kNaN};  // se 0: the t interval is degenerate, not a result
  return m;
}

}  // namespace gac
