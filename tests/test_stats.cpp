// Wilson intervals, Student's t quantiles, summaries and the interval with
// the training set as the unit, against known values and hand computations.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "gac/stats.h"

using namespace gac;

TEST(StatsWilson, ZeroSuccessesGiveUpperBound) {
  const Interval i = wilson_interval(0, 10);
  EXPECT_EQ(i.lo, 0.0);
  EXPECT_NEAR(i.hi, 0.2775, 1e-4);
  // With zero hits the upper bound is z^2 / (n + z^2), about 3.84 / n for large n.
  EXPECT_NEAR(wilson_interval(0, 100000000).hi, 3.8415e-8, 1e-11);
}

TEST(StatsWilson, KnownValues) {
  const Interval half = wilson_interval(5, 10);
  EXPECT_NEAR(half.lo, 0.2366, 1e-4);
  EXPECT_NEAR(half.hi, 0.7634, 1e-4);
  const Interval all = wilson_interval(10, 10);
  EXPECT_NEAR(all.lo, 0.7225, 1e-4);
  EXPECT_EQ(all.hi, 1.0);
  const Interval one = wilson_interval(1, 1000);
  EXPECT_NEAR(one.lo, 0.000177, 1e-6);
  EXPECT_NEAR(one.hi, 0.005643, 1e-6);
}

TEST(StatsWilson, NoTrialsIsWholeRange) {
  const Interval i = wilson_interval(0, 0);
  EXPECT_EQ(i.lo, 0.0);
  EXPECT_EQ(i.hi, 1.0);
}

TEST(StatsWilson, OtherConfidence) {
  // z = 2.576 (99%) is wider than the default 95%.
  const Interval i95 = wilson_interval(5, 10), i99 = wilson_interval(5, 10, 2.5758293035489);
  EXPECT_LT(i99.lo, i95.lo);
  EXPECT_GT(i99.hi, i95.hi);
}

TEST(StatsT, TableValues) {
  EXPECT_DOUBLE_EQ(t_quantile_975(1), 12.706);
  EXPECT_DOUBLE_EQ(t_quantile_975(2), 4.303);
  EXPECT_DOUBLE_EQ(t_quantile_975(7), 2.365);
  EXPECT_DOUBLE_EQ(t_quantile_975(10), 2.228);
  EXPECT_DOUBLE_EQ(t_quantile_975(30), 2.042);
  EXPECT_TRUE(std::isnan(t_quantile_975(0)));
}

TEST(StatsT, ExpansionBeyondTable) {
  EXPECT_NEAR(t_quantile_975(31), t_quantile_975(30), 0.01);
  EXPECT_NEAR(t_quantile_975(31), 2.0395, 1e-3);
  EXPECT_NEAR(t_quantile_975(60), 2.0003, 1e-3);
  EXPECT_NEAR(t_quantile_975(120), 1.9799, 1e-3);
  EXPECT_NEAR(t_quantile_975(1000000), 1.95996, 1e-4);
  for (int df = 1; df < 200; ++df) EXPECT_GT(t_quantile_975(df), t_quantile_975(df + 1)) << "df " << df;
}

TEST(StatsSummary, KnownData) {
  const Summary s = summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.count, 8);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_NEAR(s.std, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_EQ(s.min, 2.0);
  EXPECT_EQ(s.max, 9.0);
  const double half = 2.365 * std::sqrt(32.0 / 7.0) / std::sqrt(8.0);
  EXPECT_NEAR(s.ci95.lo, 5.0 - half, 1e-12);
  EXPECT_NEAR(s.ci95.hi, 5.0 + half, 1e-12);
}

TEST(StatsSummary, SingleValue) {
  const Summary s = summarize({0.75});
  EXPECT_EQ(s.count, 1);
  EXPECT_EQ(s.mean, 0.75);
  EXPECT_EQ(s.std, 0.0);
  EXPECT_EQ(s.min, 0.75);
  EXPECT_EQ(s.max, 0.75);
  EXPECT_TRUE(std::isnan(s.ci95.lo));  // not estimable, never a zero-width interval
  EXPECT_TRUE(std::isnan(s.ci95.hi));
}

TEST(StatsSummary, Empty) {
  const Summary s = summarize({});
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.mean, 0.0);
  EXPECT_EQ(s.std, 0.0);
  EXPECT_EQ(s.min, 0.0);
  EXPECT_EQ(s.max, 0.0);
  EXPECT_EQ(s.ci95.lo, 0.0);
  EXPECT_EQ(s.ci95.hi, 0.0);
}

TEST(StatsSummary, IdenticalValuesHaveZeroSpread) {
  const Summary s = summarize(std::vector<double>(50, 0.9));
  EXPECT_NEAR(s.std, 0.0, 1e-12);
  EXPECT_NEAR(s.ci95.lo, 0.9, 1e-12);
  EXPECT_NEAR(s.ci95.hi, 0.9, 1e-12);
}

// Three training sets with 2, 1 and 3 models. By hand: N = 6, mean 4.5/6 = 0.75;
// the groups' summed deviations are 0.2, -0.15, -0.05, so
// se^2 = 3/2 * (0.04 + 0.0225 + 0.0025) / 36 = 0.00270833.., and t_2 = 4.303.
TEST(StatsGroupedMean, HandComputation) {
  const GroupedMean g = grouped_mean({{0.8, 0.9}, {0.6}, {0.7, 0.7, 0.8}});
  EXPECT_EQ(g.count, 6);
  EXPECT_EQ(g.groups, 3);
  EXPECT_NEAR(g.mean, 0.75, 1e-15);
  EXPECT_NEAR(g.se, std::sqrt(1.5 * 0.065 / 36), 1e-15);
  EXPECT_NEAR(g.se, 0.0520416, 1e-7);
  EXPECT_NEAR(g.ci95.lo, 0.75 - 4.303 * 0.0520416, 1e-6);  // [0.5261, 0.9739]
  EXPECT_NEAR(g.ci95.hi, 0.75 + 4.303 * 0.0520416, 1e-6);
  // Treating the 6 models as independent would claim about half that width.
  const Summary naive = summarize({0.8, 0.9, 0.6, 0.7, 0.7, 0.8});
  EXPECT_LT(naive.ci95.hi - naive.ci95.lo, 0.55 * (g.ci95.hi - g.ci95.lo));
}

// With as many models in every group, the interval is the t interval over the group means.
TEST(StatsGroupedMean, EqualGroupsGiveTheIntervalOfTheGroupMeans) {
  const GroupedMean g = grouped_mean({{0.5, 0.7}, {0.8, 0.8}, {0.9, 1.0}, {0.6, 0.6}});
  const Summary means = summarize({0.6, 0.8, 0.95, 0.6});
  EXPECT_NEAR(g.mean, means.mean, 1e-15);
  EXPECT_NEAR(g.ci95.lo, means.ci95.lo, 1e-12);
  EXPECT_NEAR(g.ci95.hi, means.ci95.hi, 1e-12);
  EXPECT_NEAR(g.ci95.hi - g.mean, 3.182 * 0.0850857, 1e-6);  // t_3 * sd(means) / sqrt(4), by hand
}

TEST(StatsGroupedMean, OneGroupIsNotEstimable) {
  for (const GroupedMean& g : {grouped_mean({{0.7, 0.8, 0.9}}), grouped_mean({{}, {0.6}, {}}), grouped_mean({{0.6}})}) {
    EXPECT_EQ(g.groups, 1);
    EXPECT_FALSE(std::isnan(g.mean));
    EXPECT_TRUE(std::isnan(g.se));
    EXPECT_TRUE(std::isnan(g.ci95.lo));
    EXPECT_TRUE(std::isnan(g.ci95.hi));
  }
  const GroupedMean none = grouped_mean({{}, {}});
  EXPECT_EQ(none.count, 0);
  EXPECT_TRUE(std::isnan(none.mean));
}

TEST(StatsGroupedMean, EmptyGroupsDoNotCount) {
  const GroupedMean a = grouped_mean({{0.8, 0.9}, {}, {0.6}, {0.7, 0.7, 0.8}, {}});
  const GroupedMean b = grouped_mean({{0.8, 0.9}, {0.6}, {0.7, 0.7, 0.8}});
  EXPECT_EQ(a.groups, 3);
  EXPECT_EQ(a.ci95.lo, b.ci95.lo);
  EXPECT_EQ(a.ci95.hi, b.ci95.hi);
}

// Two grouped means by hand. A: groups {0.8, 0.9}, {0.6, 0.7}, {0.9}: mean
// 0.78, summed deviations 0.14, -0.26, 0.12, se^2 = 3/2 * 0.1016 / 25 =
// 0.006096. B: {0.5}, {0.7, 0.6}: mean 0.6, deviations -0.1, 0.1, se^2 =
// 2/1 * 0.02 / 9 = 0.004444... Difference 0.18, se^2 = 0.0105404...,
// df = 0.0105404^2 / (0.006096^2 / 2 + 0.0044444^2 / 1) = 2.898, so t_2 = 4.303.
TEST(StatsMeanDifference, WelchSatterthwaiteByHand) {
  const GroupedMean a = grouped_mean({{0.8, 0.9}, {0.6, 0.7}, {0.9}}), b = grouped_mean({{0.5}, {0.7, 0.6}});
  const MeanDifference d = mean_difference(a, b);
  const double va = 1.5 * 0.1016 / 25, vb = 2.0 * 0.02 / 9;
  EXPECT_NEAR(d.mean, 0.18, 1e-15);
  EXPECT_NEAR(d.se, std::sqrt(va + vb), 1e-15);
  EXPECT_NEAR(d.df, (va + vb) * (va + vb) / (va * va / 2 + vb * vb / 1), 1e-12);
  EXPECT_NEAR(d.df, 2.8983, 1e-4);
  EXPECT_NEAR(d.ci95.lo, 0.18 - 4.303 * std::sqrt(va + vb), 1e-12);
  EXPECT_NEAR(d.ci95.hi, 0.18 + 4.303 * std::sqrt(va + vb), 1e-12);
}

TEST(StatsMeanDifference, EqualSpreadsAndRepeatsGiveThePooledDegreesOfFreedom) {
  // se_a = se_b and G_a = G_b = 3: df = (2v)^2 / (2 v^2 / 2) = 4, exactly the two-sample t's.
  const MeanDifference d = mean_difference(grouped_mean({{0.1}, {0.2}, {0.3}}), grouped_mean({{0.5}, {0.6}, {0.7}}));
  EXPECT_NEAR(d.df, 4.0, 1e-12);
  EXPECT_NEAR(d.mean, -0.4, 1e-15);
  EXPECT_NEAR(d.ci95.hi - d.mean, 2.776 * d.se, 1e-12);  // t_4, not t_3 from a df of 3.9999...
}

TEST(StatsMeanDifference, NotEstimableWhenEitherSideIs) {
  const GroupedMean two = grouped_mean({{0.8}, {0.6}}), one = grouped_mean({{0.5, 0.7}}), none = grouped_mean({});
  const MeanDifference d = mean_difference(two, one);
  EXPECT_NEAR(d.mean, 0.1, 1e-15);  // the means still differ by this much
  EXPECT_TRUE(std::isnan(d.se));
  EXPECT_TRUE(std::isnan(d.df));
  EXPECT_TRUE(std::isnan(d.ci95.lo) && std::isnan(d.ci95.hi));
  EXPECT_TRUE(std::isnan(mean_difference(one, two).ci95.hi));
  EXPECT_TRUE(std::isnan(mean_difference(two, none).mean));
}

// Four training sets, the same in both runs. By hand: d = 0.10, 0.05, 0.15,
// 0.05, mean 0.35 / 4 = 0.0875; deviations 0.0125, -0.0375, 0.0625, -0.0375,
// squares summing to 0.006875, sd^2 = 0.006875 / 3, se = sd / 2 = 0.0239357,
// df = 3, t_3 = 3.182: [0.0875 - 0.0761634, 0.0875 + 0.0761634] = [0.0113, 0.1637].
TEST(StatsPairedDifference, HandComputation) {
  const std::vector<double> a = {0.80, 0.75, 0.90, 0.70}, b = {0.70, 0.70, 0.75, 0.65};
  const MeanDifference d = paired_difference(a, b);
  EXPECT_NEAR(d.mean, 0.0875, 1e-15);
  EXPECT_NEAR(d.se, std::sqrt(0.006875 / 3) / 2, 1e-15);
  EXPECT_NEAR(d.se, 0.0239357, 1e-7);
  EXPECT_EQ(d.df, 3.0);
  EXPECT_NEAR(d.ci95.lo, 0.0875 - 3.182 * std::sqrt(0.006875 / 3) / 2, 1e-12);
  EXPECT_NEAR(d.ci95.hi, 0.0875 + 3.182 * std::sqrt(0.006875 / 3) / 2, 1e-12);
  EXPECT_NEAR(d.ci95.lo, 0.0113366, 1e-6);
  // The same values as independent samples (one value per group): the Welch
  // interval (df 4.30, t_4) is wider and reaches below 0.
  std::vector<std::vector<double>> ga, gb;
  for (size_t r = 0; r < a.size(); ++r) ga.push_back({a[r]}), gb.push_back({b[r]});
  const MeanDifference welch = mean_difference(grouped_mean(ga), grouped_mean(gb));
  EXPECT_NEAR(welch.mean, d.mean, 1e-15);
  EXPECT_LT(welch.ci95.lo, 0.0);
}

TEST(StatsPairedDifference, FewerThanTwoPairsIsNotEstimable) {
  const MeanDifference one = paired_difference({0.8}, {0.6});
  EXPECT_NEAR(one.mean, 0.2, 1e-15);
  EXPECT_TRUE(std::isnan(one.se));
  EXPECT_TRUE(std::isnan(one.df));
  EXPECT_TRUE(std::isnan(one.ci95.lo) && std::isnan(one.ci95.hi));
  const MeanDifference none = paired_difference({}, {});
  EXPECT_TRUE(std::isnan(none.mean));
  EXPECT_TRUE(std::isnan(none.ci95.lo));
  EXPECT_THROW(paired_difference({0.8, 0.7}, {0.6}), std::invalid_argument);
}

// d = 0.1 on every training set (up to the rounding of 0.8 - 0.7 etc.): se 0
// and df 2, but no zero-width interval.
TEST(StatsPairedDifference, EqualDifferencesGiveNoInterval) {
  const MeanDifference d = paired_difference({0.8, 0.7, 0.9}, {0.7, 0.6, 0.8});
  EXPECT_NEAR(d.mean, 0.1, 1e-15);
  EXPECT_EQ(d.se, 0.0);
  EXPECT_EQ(d.df, 2.0);
  EXPECT_TRUE(std::isnan(d.ci95.lo) && std::isnan(d.ci95.hi));
}
