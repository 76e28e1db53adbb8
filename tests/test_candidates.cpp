// The incremental pattern-search evaluator (host/optim/candidates_incremental.h)
// against the full one (host/optim/candidates_cpu.cpp): the same Eval bits for
// moves in every tensor of every model family, on every SIMD kernel this CPU
// runs, and the same models from a whole search; optimizer.incremental parses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/search.h"
#include "host/optim/candidates.h"
#include "host/optim/candidates_incremental.h"
#include "host/optim/candidates_incremental_kernel.h"
#include "candidate_test_util.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"

using namespace gac;
using gac::test::random_point;
using gac::test::random_task;

namespace {

// Both moves (+r, -r) of the first and last parameter of every tensor, and random ones.
std::vector<uint32_t> moves_in_every_tensor(const ModelSpec& m, uint32_t seed) {
  std::vector<uint32_t> moves;
  auto both = [&](int p) {
    moves.push_back(2 * p);
    moves.push_back(2 * p + 1);
  };
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    if (L.w_off >= 0) {
      both(L.w_off);
      both(L.w_off + L.weight_count() - 1);
    }
    if (L.b_off >= 0) {
      both(L.b_off);
      both(L.b_off + L.out_c - 1);
    }
  }
  std::mt19937 rng(seed);
  for (int i = 0; i < 16; ++i) moves.push_back(rng() % (2 * static_cast<uint32_t>(m.n_params)));
  return moves;
}

void expect_same_bits(const Eval& full, const Eval& incremental, const std::string& what) {
  EXPECT_EQ(full.correct, incremental.correct) << what;
  EXPECT_EQ(std::memcmp(&full.loss, &incremental.loss, sizeof(float)), 0)
      << what << ": " << full.loss << " vs " << incremental.loss;
}

// Each batch of `moves` from the current point, on both evaluators.
void expect_same_batch(CandidateEvaluator& full, CandidateEvaluator& incremental, const std::vector<uint32_t>& moves,
                       float r, const std::string& what) {
  const PatternBatch batch{r, moves.data(), static_cast<int64_t>(moves.size())};
  std::vector<Eval> a(moves.size()), b(moves.size());
  full.evaluate(batch, a.data());
  incremental.evaluate(batch, b.data());
  for (size_t i = 0; i < moves.size(); ++i) expect_same_bits(a[i], b[i], what + " move " + std::to_string(moves[i]));
}

// body(task, full, incremental) on a random task of `model` for every
// kernel and both loss kinds.
template <typename Body>
void on_every_kernel(const ModelConfig& model, int in_c, int in_h, int in_w, int classes, int n, uint32_t seed,
                     Body body) {
  for (LossKind loss : {LossKind::normalized, LossKind::raw})
    for (const std::string& kernel : incremental_kernels()) {
      SCOPED_TRACE(kernel + (loss == LossKind::raw ? " raw" : " normalized"));
      const StreamTask task = random_task(model, in_c, in_h, in_w, classes, n, loss, seed);
      auto full = make_cpu_candidate_evaluator(task, 2);
      auto incremental = make_incremental_candidate_evaluator(task, 2, kernel);
      body(task, *full, *incremental);
    }
}

// set_current, a batch of moves, then set_current to a moved point and again.
void expect_incremental_is_full(const ModelConfig& model, int in_c, int in_h, int in_w, int classes, int n) {
  on_every_kernel(model, in_c, in_h, in_w, classes, n, 7,
                  [](const StreamTask& task, CandidateEvaluator& full, CandidateEvaluator& incremental) {
                    const std::vector<uint32_t> moves = moves_in_every_tensor(task.model, 11);
                    std::vector<float> point = random_point(task.model, 5);
                    for (int round = 0; round < 2; ++round) {
                      expect_same_bits(full.set_current(point), incremental.set_current(point), "set_current");
                      for (float r : {1.0f, 0.0371f})
                        expect_same_batch(full, incremental, moves, r, "round " + std::to_string(round));
                      for (int i = 0; i < 3; ++i) point[moves[i * 7] / 2] += 0.25f;  // a moved point
                    }
                  });
}

// The search's walk: set_current to the current point moved by one
// parameter (the incremental update of the cache), then a batch from there.
void expect_walk_is_full(const ModelConfig& model, int in_c, int in_h, int in_w, int classes, int n) {
  on_every_kernel(model, in_c, in_h, in_w, classes, n, 9,
                  [](const StreamTask& task, CandidateEvaluator& full, CandidateEvaluator& incremental) {
                    const std::vector<uint32_t> moves = moves_in_every_tensor(task.model, 13);
                    std::vector<float> point = random_point(task.model, 6);
                    expect_same_bits(full.set_current(point), incremental.set_current(point), "set_current");
                    expect_same_bits(full.set_current(point), incremental.set_current(point), "unchanged");
                    for (uint32_t step : moves) {
                      float& w = point[pattern_move_param(step)];
                      w = pattern_moved(w, step, 0.3f);
                      const std::string what = "after move " + std::to_string(step);
                      expect_same_bits(full.set_current(point), incremental.set_current(point), what);
                      expect_same_batch(full, incremental, moves, 0.125f, what);
                    }
                  });
}

}  // namespace

TEST(IncrementalCandidates, LinearIsFullEvaluationBitForBit) {
  ModelConfig c;
  c.arch = Arch::linear;
  expect_incremental_is_full(c, 1, 1, 9, 3, 21);
}

TEST(IncrementalCandidates, MlpIsFullEvaluationBitForBit) {
  ModelConfig c;
  c.arch = Arch::mlp;
  c.hidden = 7;
  c.layers = 2;
  expect_incremental_is_full(c, 1, 1, 5, 4, 19);
  c.hidden_bias = true;
  c.layers = 1;
  expect_incremental_is_full(c, 1, 1, 6, 2, 33);
}

TEST(IncrementalCandidates, LenetIsFullEvaluationBitForBit) {
  ModelConfig c;
  c.arch = Arch::lenet;
  c.width = 1.0;
  expect_incremental_is_full(c, 1, 28, 28, 10, 5);  // MNIST-sized
  c.width = 0.25;
  expect_incremental_is_full(c, 3, 32, 32, 10, 17);  // CIFAR-10-sized, narrow
}

TEST(IncrementalCandidates, SearchWalkIsFullEvaluationBitForBit) {
  ModelConfig c;
  c.arch = Arch::mlp;
  c.hidden = 6;
  c.layers = 2;
  expect_walk_is_full(c, 1, 1, 5, 3, 23);
  c.arch = Arch::lenet;
  c.width = 0.25;
  expect_walk_is_full(c, 1, 28, 28, 10, 3);
}

// The norms' chains run kChainGroup at a time, grouped by length: batches of
// every size up to three groups and more, ties, repeats, first and last weights.
TEST(IncrementalCandidates, EveryBatchSizeIsFullEvaluationBitForBit) {
  ModelConfig c;
  c.arch = Arch::mlp;
  c.hidden = 9;
  c.layers = 2;
  const StreamTask task = random_task(c, 1, 1, 7, 4, 18, LossKind::normalized, 4);
  auto full = make_cpu_candidate_evaluator(task, 2);
  auto incremental = make_incremental_candidate_evaluator(task, 2);
  const std::vector<float> point = random_point(task.model, 8);
  full->set_current(point);
  incremental->set_current(point);
  std::mt19937 rng(21);
  const Layer& last = task.model.layers[task.model.n_layers - 1];
  for (int count = 1; count <= 26; ++count) {
    std::vector<uint32_t> moves;
    for (int i = 0; i < count; ++i) moves.push_back(rng() % (2 * static_cast<uint32_t>(task.model.n_params)));
    moves[0] = 0;                                           // the first weight
    if (count > 2) moves[2] = 2 * (last.w_off + last.weight_count() - 1) + 1;  // the last weight of the last layer
    if (count > 3) moves[3] = moves[1];                      // a repeat
    expect_same_batch(*full, *incremental, moves, 0.5f, "batch of " + std::to_string(count));
  }
}

// A hidden unit no example activates, moved by less than keeps it dead: the
// candidates' logits are the current point's (the evaluator stops early).
TEST(IncrementalCandidates, DeadUnitMovesAreFullEvaluationBitForBit) {
  ModelConfig c;
  c.arch = Arch::mlp;
  c.hidden = 5;
  c.layers = 2;
  c.hidden_bias = true;
  const StreamTask task = random_task(c, 1, 1, 6, 3, 20, LossKind::normalized, 2);
  const Layer& first = task.model.layers[0];
  ASSERT_GE(first.b_off, 0);
  std::vector<float> point = random_point(task.model, 3);
  point[first.b_off + 2] = -100.0f;  // unit 2 of the first layer: never above 0 for inputs in [0, 1)
  std::vector<uint32_t> moves;
  for (int i = 0; i < first.in_size(); ++i) {
    moves.push_back(2 * (first.w_off + 2 * first.in_size() + i));
    moves.push_back(2 * (first.w_off + 2 * first.in_size() + i) + 1);
  }
  moves.push_back(2 * (first.b_off + 2));
  for (LossKind loss : {LossKind::normalized, LossKind::raw}) {
    StreamTask t = task;
    t.loss = loss;
    auto full = make_cpu_candidate_evaluator(t, 2);
    auto incremental = make_incremental_candidate_evaluator(t, 2);
    expect_same_bits(full->set_current(point), incremental->set_current(point), "set_current");
    expect_same_batch(*full, *incremental, moves, 0.5f, loss == LossKind::raw ? "raw" : "normalized");
  }
}

TEST(IncrementalCandidates, GreedyBatchesAreEvaluatedInFull) {
  ModelConfig c;
  c.arch = Arch::mlp;
  const StreamTask task = random_task(c, 1, 1, 4, 3, 9, LossKind::normalized, 3);
  auto full = make_cpu_candidate_evaluator(task, 2);
  auto incremental = make_incremental_candidate_evaluator(task, 2);
  const std::vector<float> point = random_point(task.model, 2);
  full->set_current(point);
  incremental->set_current(point);
  const GreedyBatch batch{0.1f, StreamKey{1, 2}, 3, 5};
  std::vector<Eval> a(5), b(5);
  full->evaluate(batch, a.data());
  incremental->evaluate(batch, b.data());
  for (int i = 0; i < 5; ++i) expect_same_bits(a[i], b[i], "greedy slot " + std::to_string(i + 1));
}

TEST(IncrementalCandidates, PatternSearchFindsTheSameModels) {
  const RunConfig cfg = parse_config("[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 6\n"
                                     "[prior]\nkind = \"uniform\"\n[run]\nseed = 3\nn = 8\nbins = [0, 10]\n"
                                     "loss = \"raw\"\n",
                                     "t");
  const StreamTask task = stream_task(prepare_experiment(cfg), 8, 0, 0);
  SearchConfig sc;
  sc.budget = 80;
  sc.max_calls = 400;
  sc.check_every = 5;
  std::vector<TrainedModel> found[2];
  for (bool incremental : {false, true}) {
    sc.incremental = incremental;
    auto search = make_search_optimizer(SearchKind::pattern, sc, 2);
    search->begin_stream(task);
    search->train(0, 4, found[incremental]);
  }
  ASSERT_FALSE(found[0].empty());
  ASSERT_EQ(found[0].size(), found[1].size());
  for (size_t i = 0; i < found[0].size(); ++i) {
    EXPECT_EQ(found[0][i].draw, found[1][i].draw);
    EXPECT_EQ(found[0][i].step, found[1][i].step);
    ASSERT_EQ(found[0][i].params.size(), found[1][i].params.size());
    EXPECT_EQ(std::memcmp(found[0][i].params.data(), found[1][i].params.data(), found[0][i].params.size() * 4), 0);
  }
}

TEST(IncrementalCandidates, ConfigKeyParsesForPatternOnly) {
  const std::string base = "[data]\nkind = \"kink\"\n[optimizer]\nkind = \"";
  EXPECT_TRUE(parse_config(base + "pattern\"\n", "t").search.incremental);
  EXPECT_FALSE(parse_config(base + "pattern\"\nincremental = false\n", "t").search.incremental);
  for (const char* kind : {"greedy", "sgd", "guess"}) {
    try {
      parse_config(base + kind + "\"\nincremental = true\n", "t");
      ADD_FAILURE() << kind << ": optimizer.incremental accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("optimizer.incremental: does not apply to optimizer.kind"), std::string::npos)
          << e.what();
    }
  }
  try {
    parse_config(base + "pattern\"\nincremental = 1\n", "t");
    ADD_FAILURE() << "a non-boolean accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.incremental"), std::string::npos) << e.what();
  }
}

// The kernels' lane-wise loss against forward.h's argmax and cross_entropy,
// example by example: ordinary logits, spreads past exp's underflow at -87,
// ties, huge, infinite and NaN logits, odd scales.
TEST(IncrementalCandidates, KernelScoreIsCrossEntropyBitForBit) {
  const int C = 10, lanes = 3 * kIncrementalLanePad;
  std::mt19937 rng(17);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<std::vector<float>> logits(C, std::vector<float>(lanes));
  std::vector<int32_t> labels(lanes);
  for (int e = 0; e < lanes; ++e) {
    const float spread = e < 16 ? 1.0f : e < 32 ? 300.0f : 1e30f;
    for (int c = 0; c < C; ++c) logits[c][e] = spread * u(rng);
    labels[e] = static_cast<int32_t>(rng() % C);
  }
  logits[3][1] = logits[5][1];  // a tie: the first index wins
  logits[0][2] = INFINITY;
  logits[4][3] = -INFINITY;
  logits[7][4] = NAN;
  logits[2][5] = 3.4e38f;
  for (int c = 0; c < C; ++c) logits[c][6] = 0.0f;
  std::vector<const float*> channels(C);
  for (int c = 0; c < C; ++c) channels[c] = logits[c].data();
  for (const std::string& name : incremental_kernels())
    for (float scale : {1.0f, 0.37f, 1e-3f, 25.0f}) {
      std::vector<float> loss(lanes);
      std::vector<int32_t> hit(lanes);
      incremental_kernel(name).score(channels.data(), C, labels.data(), scale, loss.data(), hit.data(), lanes);
      for (int e = 0; e < lanes; ++e) {
        float z[C];
        for (int c = 0; c < C; ++c) z[c] = logits[c][e];
        const float want = cross_entropy(z, C, labels[e], scale);
        EXPECT_EQ(std::memcmp(&want, &loss[e], sizeof(float)), 0)
            << name << " scale " << scale << " example " << e << ": " << want << " vs " << loss[e];
        EXPECT_EQ(hit[e], argmax(z, C) == labels[e] ? 1 : 0) << name << " example " << e;
      }
    }
}

TEST(IncrementalCandidates, UnknownKernelIsRefused) {
  EXPECT_THROW(incremental_kernel("sse9"), Error);
  EXPECT_FALSE(incremental_kernels().empty());
  EXPECT_EQ(incremental_kernels().back(), "generic");
}
