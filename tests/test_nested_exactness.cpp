// Nested sampling is exact (docs/nested.md): on cells where plain guess and
// check has many hits, the nested sampler's rates per pair and the mean test
// accuracy of its accepted pairs agree with plain sampling's within their
// statistical error (bodies as clusters), with a fixed seed; and the same
// comparison catches a deliberately biased sampler (heads from another law).
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "gac/backend.h"
#include "gac/experiment.h"
#include "gac/stats.h"

using namespace gac;

namespace {

constexpr uint32_t kHeads = 64;
constexpr uint64_t kDraws = 2'500'000;
constexpr int kN = 4;
constexpr size_t kScored = 1500;  // accepted draws scored per sampler and bin

// Per bin: rate, its variance, mean test accuracy of accepted draws and its variance.
struct BinEstimate {
  double rate = 0, rate_var = 0, acc = 0, acc_var = 0;
  uint64_t hits = 0;
};

std::vector<BinEstimate> estimate(Backend& backend, const StreamTask& task, uint32_t heads) {
  backend.begin_stream(task);
  std::vector<Hit> hits;
  backend.evaluate(0, kDraws, hits);
  const size_t bins = task.bin_edges.size() - 1;
  std::vector<BinEstimate> out(bins);
  std::vector<std::map<uint64_t, uint64_t>> per_body(bins);
  std::vector<std::vector<uint64_t>> scored(bins);
  for (const Hit& h : hits) {
    if (h.bin < 0) continue;
    ++out[h.bin].hits;
    ++per_body[h.bin][h.draw / heads];
    if (scored[h.bin].size() < kScored) scored[h.bin].push_back(h.draw);
  }
  for (size_t j = 0; j < bins; ++j) {
    BinEstimate& e = out[j];
    const double N = static_cast<double>(kDraws), H = static_cast<double>(e.hits);
    e.rate = H / N;
    uint64_t same_body = 0;
    for (const auto& [body, h] : per_body[j]) same_body += h * (h - 1) / 2;
    e.rate_var = e.rate * (1 - e.rate) / N * std::max(1.0, design_effect(kDraws, e.hits, same_body, static_cast<int>(heads)));
    // Mean test accuracy of the scored draws, its variance with bodies as clusters.
    const std::vector<TestScore> scores = backend.score_test(scored[j]);
    std::map<uint64_t, std::pair<double, double>> body_sums;  // body -> (sum of accuracies, count)
    double sum = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      sum += scores[i].accuracy;
      auto& b = body_sums[scored[j][i] / heads];
      b.first += scores[i].accuracy;
      b.second += 1;
    }
    const double m = static_cast<double>(scores.size());
    e.acc = sum / m;
    double v = 0;
    for (const auto& [body, s] : body_sums) v += (s.first - e.acc * s.second) * (s.first - e.acc * s.second);
    const double clusters = static_cast<double>(body_sums.size());
    e.acc_var = v / (m * m) * clusters / (clusters - 1);
  }
  return out;
}

// The largest |z| of the differences between two samplers' rates and mean accuracies.
double largest_z(const std::vector<BinEstimate>& a, const std::vector<BinEstimate>& b) {
  double worst = 0;
  for (size_t j = 0; j < a.size(); ++j) {
    EXPECT_GE(a[j].hits, kScored) << "bin " << j << ": too few hits to compare";
    const double z_rate = (a[j].rate - b[j].rate) / std::sqrt(a[j].rate_var + b[j].rate_var);
    const double z_acc = (a[j].acc - b[j].acc) / std::sqrt(a[j].acc_var + b[j].acc_var);
    std::cerr << "bin " << j << ": hits " << a[j].hits << " vs " << b[j].hits << ", rates " << a[j].rate << " vs " << b[j].rate << " (z " << z_rate << "), mean test acc "
              << a[j].acc << " vs " << b[j].acc << " (z " << z_acc << ")\n";
    worst = std::max({worst, std::abs(z_rate), std::abs(z_acc)});
  }
  return worst;
}

}  // namespace

TEST(NestedExactness, RatesAndTestAccuracyAgreeWithPlainSamplingAndABiasedSamplerFails) {
  RunConfig cfg;  // the kink MLP (2 -> 10 -> 2), uniform prior
  cfg.seed = 12;
  cfg.bins = {0.64, 0.66, 0.68, 0.70};
  const Experiment plain_ex = prepare_experiment(cfg);
  cfg.heads = kHeads;
  const Experiment nested_ex = prepare_experiment(cfg);
  // Independent streams: the plain draws from shard 0's key, the pairs from shard 1's.
  StreamTask plain = stream_task(plain_ex, kN, 0, 0), nested = stream_task(nested_ex, kN, 0, 1);
  plain.bin_edges = nested.bin_edges = {0.64f, 0.66f, 0.68f, 0.70f};
  nested.train = plain.train;
  nested.test = plain.test;
  const auto backend = make_cpu_backend(0);
  const std::vector<BinEstimate> p = estimate(*backend, plain, 1);
  const std::vector<BinEstimate> q = estimate(*backend, nested, kHeads);
  EXPECT_LT(largest_z(p, q), 4.0) << "nested sampling disagrees with plain guess and check";

  // A biased sampler: heads whose weights come from a narrower law (the
  // last layer's weight tensor at 0.6 of its radius; its bias as it was).
  StreamTask biased = nested;
  biased.prior.scale[biased.prior.n_tensors - 2] *= 0.6f;
  const std::vector<BinEstimate> b = estimate(*backend, biased, kHeads);
  EXPECT_GT(largest_z(p, b), 6.0) << "the comparison cannot tell a biased sampler";
}
