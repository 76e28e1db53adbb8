// Nested sampling (include/gac/nested.h): pair identity, and every engine's
// pairs bit for bit equal to evaluate_draw on the pair's full vector.
#include <gtest/gtest.h>

#include <cstring>

#include "gac/backend.h"
#include "gac/error.h"
#include "gac/stats.h"
#include "kernels/nested.h"
#include "test_util.h"

using namespace gac;

namespace {

using test::NestedArch;
using test::nested_archs;

PriorConfig prior_of(PriorKind kind) {
  PriorConfig pc;
  pc.kind = kind;
  pc.sigma = 0.7;
  return pc;
}

StreamTask nested_task(const NestedArch& a, PriorKind kind, uint32_t heads, int n_train, uint64_t seed) {
  const Model model = build_model(a.mc, a.c, a.h, a.w, 2);
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(prior_of(kind), model, heads);
  t.key = make_stream_key(seed, n_train, 0, 0);
  t.bin_edges = {0.0f, 0.6f, 0.68f, 0.69f, 10.0f};
  SplitMix64 rng(seed);
  const int D = a.c * a.h * a.w;
  for (int i = 0; i < n_train * D; ++i) t.train.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
  for (int i = 0; i < n_train; ++i) t.train.y.push_back(static_cast<int32_t>(rng.below(2)));
  return t;
}

std::vector<float> params_of(const StreamTask& t, uint64_t draw) {
  std::vector<float> p(t.model.n_params);
  generate_params(t.prior, t.key, draw, t.model.n_params, p.data());
  return p;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST(NestedPairs, HeadZeroIsThePlainDrawAndEveryHeadSharesItsBody) {
  constexpr uint32_t K = 5;
  for (const NestedArch& a : nested_archs())
    for (PriorKind kind : {PriorKind::uniform, PriorKind::normal, PriorKind::kaiming, PriorKind::regular}) {
      const StreamTask plain = nested_task(a, kind, 1, 2, 7);
      const StreamTask nested = nested_task(a, kind, K, 2, 7);
      const int begin = nested.prior.head_begin, N = plain.model.n_params;
      ASSERT_EQ(begin, plain.model.layers[plain.model.n_layers - 1].w_off);
      for (uint64_t body : {0ull, 3ull, (1ull << 33) + 1}) {
        const std::vector<float> draw = params_of(plain, body);
        EXPECT_EQ(params_of(nested, body * K), draw) << a.name << " body " << body;
        for (uint32_t h = 1; h < K; ++h) {
          const std::vector<float> pair = params_of(nested, body * K + h);
          EXPECT_TRUE(std::equal(draw.begin(), draw.begin() + begin, pair.begin())) << a.name << " head " << h;
          int same = 0;
          for (int i = begin; i < N; ++i) same += pair[i] == draw[i];
          EXPECT_EQ(same, 0) << a.name << ": head " << h << " repeats head 0's values";
          std::vector<float> head(N - begin);
          generate_param_range(nested.prior, nested.key, body * K + h, begin, N, head.data());
          EXPECT_TRUE(std::equal(head.begin(), head.end(), pair.begin() + begin)) << a.name;
        }
      }
    }
}

TEST(NestedPairs, TheSpherePriorAndBadHeadCountsAreRefused) {
  const Model model = build_model(ModelConfig{}, 1, 1, 2, 2);
  EXPECT_NE(test::error_of([&] { make_prior_spec(prior_of(PriorKind::sphere), model, 4); }).find("sphere"),
            std::string::npos);
  EXPECT_NO_THROW(make_prior_spec(prior_of(PriorKind::sphere), model, 1));
  EXPECT_NE(test::error_of([&] { make_prior_spec(PriorConfig{}, model, 0); }).find("sampler.heads"), std::string::npos);
  EXPECT_NE(test::error_of([&] { make_prior_spec(PriorConfig{}, model, kMaxHeads + 1); }).find("sampler.heads"),
            std::string::npos);
}

// kernels/nested.h: the body's features and product, then the head, give
// evaluate_draw's result on the pair's full vector, bit for bit.
TEST(NestedEvaluation, EachPairEqualsAFullEvaluationOfItsVector) {
  constexpr uint32_t K = 6;
  constexpr int n = 5;
  for (const NestedArch& a : nested_archs())
    for (PriorKind kind : {PriorKind::uniform, PriorKind::normal, PriorKind::kaiming, PriorKind::regular})
      for (LossKind loss : {LossKind::normalized, LossKind::raw}) {
        StreamTask t = nested_task(a, kind, K, n, 11);
        t.loss = loss;
        const ModelSpec& m = t.model;
        std::vector<float> b0(m.max_activation), b1(m.max_activation), logits(n * m.n_classes);
        std::vector<float> feats(static_cast<size_t>(n) * head_inputs(m)), head(head_size(m));
        StreamTask plain = t;
        plain.prior.heads = 1;
        for (uint64_t body = 0; body < 4; ++body) {
          const std::vector<float> bp = params_of(plain, body);
          const bool layers = m.n_layers > 1;
          const double product = layers ? body_features(m, bp.data(), t.train.x.data(), n, feats.data(), b0.data(),
                                                        b1.data())
                                        : 1.0;
          const float* f = layers ? feats.data() : t.train.x.data();
          for (uint32_t h = 0; h < K; ++h) {
            const uint64_t pair = body * K + h;
            generate_param_range(t.prior, t.key, pair, head_begin(m), m.n_params, head.data());
            const DrawResult got = evaluate_head(m, head.data(), f, product, t.train.y.data(), n, loss, false,
                                                 logits.data());
            const std::vector<float> full = params_of(t, pair);
            const DrawResult want = evaluate_draw(m, full.data(), t.train.x.data(), t.train.y.data(), n, loss, false,
                                                  b0.data(), b1.data(), logits.data());
            EXPECT_EQ(got.correct, want.correct) << a.name << " pair " << pair;
            EXPECT_TRUE(same_bits(got.loss, want.loss)) << a.name << " pair " << pair << ": " << got.loss << " vs "
                                                        << want.loss;
          }
        }
      }
}

// Every CPU engine's nested evaluate() against plain reference loops over
// the pairs' full vectors: the same hits, losses bit for bit, and the SIMD
// kernels' example counts equal to the scalar reference's.
class NestedBackends : public ::testing::TestWithParam<std::string> {};

TEST_P(NestedBackends, PairsMatchTheReference) {
  std::unique_ptr<Backend> backend;
  try {
    backend = make_cpu_backend(2, GetParam());
  } catch (const Error&) {
    GTEST_SKIP() << GetParam() << " does not run on this CPU";
  }
  const auto scalar = make_cpu_backend(2, "scalar");
  for (const NestedArch& a : nested_archs())
    for (PriorKind kind : {PriorKind::uniform, PriorKind::normal})
      for (bool early : {true, false}) {
        const bool lenet = a.mc.arch == Arch::lenet;
        const uint32_t K = lenet ? 19 : 300;
        StreamTask t = nested_task(a, kind, K, 3, 5);
        t.early_reject = early;
        // Starting and ending inside bodies, as a resumed run or a shard may.
        const uint64_t first = K + 5, count = (lenet ? 2 : 7) * K + 11;
        backend->begin_stream(t);
        std::vector<Hit> got;
        const EvalCounts counts = backend->evaluate(first, count, got);
        EXPECT_EQ(counts.draws, count);
        scalar->begin_stream(t);
        std::vector<Hit> scalar_hits;
        EXPECT_EQ(scalar->evaluate(first, count, scalar_hits).examples, counts.examples) << a.name;

        const ModelSpec& m = t.model;
        const int n = static_cast<int>(t.train.size());
        std::vector<float> b0(m.max_activation), b1(m.max_activation), logits(n * m.n_classes);
        std::vector<Hit> want;
        for (uint64_t d = first; d < first + count; ++d) {
          const std::vector<float> p = params_of(t, d);
          const DrawResult r = evaluate_draw(m, p.data(), t.train.x.data(), t.train.y.data(), n, t.loss, false,
                                             b0.data(), b1.data(), logits.data());
          if (r.correct == n)
            want.push_back({d, r.loss, find_bin(t.bin_edges.data(), static_cast<int>(t.bin_edges.size()), r.loss)});
        }
        ASSERT_EQ(got.size(), want.size()) << a.name;
        EXPECT_GT(want.size(), 0u) << a.name << ": a test with no hits checks nothing";
        for (size_t i = 0; i < want.size(); ++i) {
          EXPECT_EQ(got[i].draw, want[i].draw) << a.name;
          EXPECT_TRUE(same_bits(got[i].loss, want[i].loss)) << a.name << " pair " << want[i].draw;
          EXPECT_EQ(got[i].bin, want[i].bin) << a.name;
        }
        // Test scores of pairs: the pair's full vector.
        if (!got.empty()) {
          t.test = t.train;
          backend->begin_stream(t);
          scalar->begin_stream(t);
          std::vector<uint64_t> draws{got.front().draw, got.back().draw};
          const auto s1 = backend->score_test(draws), s2 = scalar->score_test(draws);
          for (size_t i = 0; i < draws.size(); ++i) EXPECT_EQ(s1[i].accuracy, 1.0) << a.name;
          for (size_t i = 0; i < draws.size(); ++i) EXPECT_EQ(s1[i].loss, s2[i].loss) << a.name;
        }
      }
}

INSTANTIATE_TEST_SUITE_P(Cpu, NestedBackends, ::testing::Values("auto", "avx512", "avx2", "scalar"));

// The cluster-robust rate (bodies as clusters) and its design effect.
TEST(NestedStatistics, DesignEffectOfKnownBodiesAndOneHeadIsWilson) {
  // Two bodies of K = 4: 4 hits and 0. sum_b (h_b - pK)^2 = 8, N p (1 - p) = 2.
  EXPECT_DOUBLE_EQ(design_effect(8, 4, 6, 4), 4.0);
  // Hits spread one per body: fewer than independent draws would vary.
  EXPECT_DOUBLE_EQ(design_effect(8, 2, 0, 4), (2.0 - 0.25 * 4 * 2) / (8 * 0.25 * 0.75));
  EXPECT_EQ(design_effect(1000, 7, 0, 1), 1.0);
  EXPECT_EQ(design_effect(1000, 0, 0, 64), 1.0);
  for (uint64_t hits : {0, 1, 5, 999, 1000}) {
    const Interval plain = wilson_interval(hits, 1000), clustered = wilson_interval_clustered(hits, 1000, 1.0);
    EXPECT_TRUE(std::memcmp(&plain, &clustered, sizeof plain) == 0) << hits;
    // A design effect below 1 never narrows the interval; above 1 it widens it.
    const Interval under = wilson_interval_clustered(hits, 1000, 0.5);
    EXPECT_TRUE(std::memcmp(&plain, &under, sizeof plain) == 0) << hits;
    const Interval wide = wilson_interval_clustered(hits, 1000, 4.0);
    EXPECT_GE(wide.hi, plain.hi);
    EXPECT_LE(wide.lo, plain.lo);
  }
  EXPECT_GT(wilson_interval_clustered(5, 1000, 4.0).hi, wilson_interval(5, 1000).hi);
}
