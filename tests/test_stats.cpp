// Wilson intervals, Student's t quantiles and summaries against known values.
#include <gtest/gtest.h>

#include <cmath>

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
  EXPECT_EQ(s.ci95.lo, 0.75);
  EXPECT_EQ(s.ci95.hi, 0.75);
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
