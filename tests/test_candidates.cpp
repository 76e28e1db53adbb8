// Candidate evaluators (host/optim/candidates.h): the incremental evaluator of
// pattern moves (host/optim/candidates_incremental.h) gives, bit for bit, the
// full evaluation's loss and correct count, for moves of every layer's first,
// last and random weights and biases, before and after the current point moves.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "gac/config.h"
#include "gac/experiment.h"
#include "gac/search.h"
#include "host/optim/candidates.h"
#include "host/optim/candidates_incremental.h"
#include "kernels/search_moves.h"
#include "test_util.h"

using namespace gac;
using test::NestedArch;
using test::nested_archs;

namespace {

StreamTask random_task(const NestedArch& a, LossKind loss, int n, uint64_t seed) {
  const Model model = build_model(a.mc, a.c, a.h, a.w, 3);
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(PriorConfig{}, model, 1);
  t.key = make_stream_key(seed, n, 0, 0);
  t.loss = loss;
  t.bin_edges = {-999.0f, 999.0f};
  SplitMix64 rng(seed);
  const int D = a.c * a.h * a.w;
  for (int i = 0; i < n * D; ++i) t.train.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
  for (int i = 0; i < n; ++i) t.train.y.push_back(static_cast<int32_t>(rng.below(3)));
  return t;
}

// Moves of the first, last and three random weights and biases of every layer, both signs.
std::vector<uint32_t> moves_in_every_layer(const ModelSpec& m, std::mt19937& rng) {
  std::vector<uint32_t> params;
  auto add_range = [&](int begin, int count) {
    if (begin < 0 || count <= 0) return;
    params.push_back(begin);
    params.push_back(begin + count - 1);
    for (int k = 0; k < 3; ++k) params.push_back(begin + static_cast<int>(rng() % count));
  };
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    add_range(L.w_off, L.weight_count());
    add_range(L.b_off, L.out_c);
  }
  std::vector<uint32_t> moves;
  for (uint32_t p : params) moves.insert(moves.end(), {2 * p, 2 * p + 1});
  return moves;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void expect_same_evals(const std::vector<Eval>& a, const std::vector<Eval>& b, const std::vector<uint32_t>& moves) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same_bits(a[i].loss, b[i].loss)) << "move " << moves[i] << ": " << a[i].loss << " vs " << b[i].loss;
    EXPECT_EQ(a[i].correct, b[i].correct) << "move " << moves[i];
  }
}

}  // namespace

TEST(IncrementalCandidates, EveryMoveOfEveryLayerEqualsAFullEvaluation) {
  std::mt19937 rng(11);
  for (const NestedArch& a : nested_archs())
    for (LossKind loss : {LossKind::raw, LossKind::normalized}) {
      SCOPED_TRACE(std::string(a.name) + (loss == LossKind::raw ? " raw" : " normalized"));
      const StreamTask task = random_task(a, loss, 6, 5);
      std::vector<float> current(task.model.n_params);
      generate_params(task.prior, task.key, 3, task.model.n_params, current.data());
      const auto full = make_cpu_candidate_evaluator(task, 1);
      const auto incremental = make_incremental_candidate_evaluator(task, 2);
      const std::vector<uint32_t> moves = moves_in_every_layer(task.model, rng);
      for (int round = 0; round < 2; ++round) {  // round 1: after the current point moved
        const Eval f = full->set_current(current), g = incremental->set_current(current);
        EXPECT_TRUE(same_bits(f.loss, g.loss));
        EXPECT_EQ(f.correct, g.correct);
        const float r = round == 0 ? 0.375f : 0.0625f;
        const PatternBatch batch{r, moves.data(), static_cast<int64_t>(moves.size())};
        std::vector<Eval> ef(moves.size()), eg(moves.size());
        full->evaluate(batch, ef.data());
        incremental->evaluate(batch, eg.data());
        expect_same_evals(ef, eg, moves);
        int changed = 0;
        for (const Eval& e : ef) changed += !same_bits(e.loss, f.loss);
        EXPECT_GT(changed, static_cast<int>(moves.size()) / 2) << "the moves hardly change the loss: a weak test";
        for (uint32_t m : {moves[0], moves[moves.size() / 2], moves.back()})  // move the current point
          current[pattern_move_param(m)] = pattern_moved(current[pattern_move_param(m)], m, r);
      }
    }
}

// A whole pattern search gives the same models with incremental evaluation on and off.
TEST(IncrementalCandidates, APatternSearchIsTheSameWithAndWithout) {
  const RunConfig cfg = parse_config("[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 6\n"
                                     "[prior]\nkind = \"uniform\"\n[run]\nseed = 4\nn = 8\nbins = [0, 10]\nloss = \"raw\"\n",
                                     "t");
  const StreamTask task = stream_task(prepare_experiment(cfg), 8, 0, 0);
  SearchConfig sc;
  sc.budget = 80;
  sc.max_calls = 300;
  sc.check_every = 5;
  std::vector<TrainedModel> on, off;
  auto a = make_search_optimizer(SearchKind::pattern, sc, 2);
  sc.incremental = false;
  auto b = make_search_optimizer(SearchKind::pattern, sc, 2);
  a->begin_stream(task);
  b->begin_stream(task);
  const TrainCounts ca = a->train(0, 5, on), cb = b->train(0, 5, off);
  EXPECT_EQ(ca.steps, cb.steps);
  EXPECT_EQ(ca.failed, cb.failed);
  ASSERT_FALSE(on.empty());
  ASSERT_EQ(on.size(), off.size());
  for (size_t i = 0; i < on.size(); ++i) {
    EXPECT_EQ(on[i].draw, off[i].draw);
    EXPECT_TRUE(same_bits(on[i].loss, off[i].loss));
    EXPECT_EQ(on[i].calls, off[i].calls);
    EXPECT_EQ(on[i].params, off[i].params);
  }
}
