// What the search tests share (test_search.cpp, test_search_checkpoint.cpp):
// a small stream whose searches succeed, a small search config, and a
// comparison of trained models bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gac/config.h"
#include "gac/experiment.h"
#include "gac/search.h"

namespace gac::test {

// A kink MLP stream of n examples from the uniform prior, loss bins [0, 10]:
// searches from it reach training accuracy 1 within a few hundred calls. The searches compare
// the raw loss: the normalized one (the default) bounds the MLP's logits, so
// a search maximizes the mean margin and seldom fits every point of the kink.
inline StreamTask kink_task(int n, uint64_t seed) {
  const RunConfig cfg = parse_config("[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 6\n"
                                         "[prior]\nkind = \"uniform\"\n[run]\nseed = " +
                                         std::to_string(seed) + "\nn = " + std::to_string(n) +
                                         "\nbins = [0, 10]\nloss = \"raw\"\n",
                                     "t");
  return stream_task(prepare_experiment(cfg), n, 0, 0);
}

inline void expect_same_models(const std::vector<TrainedModel>& a, const std::vector<TrainedModel>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].draw, b[i].draw);
    EXPECT_EQ(a[i].bin, b[i].bin);
    EXPECT_EQ(a[i].loss, b[i].loss);
    EXPECT_EQ(a[i].step, b[i].step);
    EXPECT_EQ(a[i].calls, b[i].calls);
    EXPECT_EQ(a[i].radius, b[i].radius);
    EXPECT_EQ(a[i].params, b[i].params);
  }
}

inline SearchConfig small_search(int64_t budget, int64_t max_calls) {
  SearchConfig c;
  c.budget = budget;
  c.max_calls = max_calls;
  c.check_every = 5;
  return c;
}

}  // namespace gac::test
