// The paper's SGDPoison ([optimizer] poison_repeats, host/optim/poison.h):
// the poisoned set's contents and labels, bad input, a trainer whose poisoned
// models fit their training set yet score worse on the test set than plain
// SGD's from the same draws, re-training one draw alone bit for bit (what
// verify does), and a whole run through the gac binary that verify re-trains.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gac/config.h"
#include "gac/model.h"
#include "gac/philox.h"
#include "gac/prior.h"
#include "gac/sgd.h"
#include "host/optim/poison.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::error_of;
using gac::test::run_gac;

namespace {

Examples numbered(int count, int width, int n_classes, float base) {
  Examples ex;
  for (int e = 0; e < count; ++e) {
    for (int i = 0; i < width; ++i) ex.x.push_back(base + static_cast<float>(e * width + i));
    ex.y.push_back(e % n_classes);
  }
  return ex;
}

// Points in `dim` dimensions whose label is the sign of their first
// coordinate, the rest noise: a linear model learns them from a few, and any
// labelling of up to dim + 1 of them is linearly separable, so SGD can fit a
// poisoned set of that many points.
Examples teacher_examples(int count, int dim, uint64_t seed) {
  SplitMix64 rng(seed);
  Examples ex;
  for (int e = 0; e < count; ++e) {
    const int label = e % 2;
    ex.x.push_back(static_cast<float>((label ? 1 : -1) * (0.5 + 0.5 * rng.uniform())));
    for (int i = 1; i < dim; ++i) ex.x.push_back(static_cast<float>(rng.uniform() - 0.5));
    ex.y.push_back(label);
  }
  return ex;
}

StreamTask teacher_task(int n, int n_test, int dim) {
  ModelConfig mc;
  mc.arch = Arch::linear;
  const Model model = build_model(mc, 1, 1, dim, 2);
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(PriorConfig{}, model);
  t.key = make_stream_key(5, n, 0, 0);
  t.bin_edges = {0.0f, 100.0f};  // every model that fits its set
  t.train = teacher_examples(n, dim, 1);
  t.test = teacher_examples(n_test, dim, 2);
  return t;
}

double mean_accuracy(const std::vector<TestScore>& scores) {
  double sum = 0;
  for (const TestScore& s : scores) sum += s.accuracy;
  return scores.empty() ? 0 : sum / static_cast<double>(scores.size());
}

}  // namespace

TEST(PoisonedSet, TrainingExamplesRepeatedInARowThenTheTestSplitWithChangedLabels) {
  const Examples train = numbered(3, 2, 2, 0.0f), test = numbered(4, 2, 2, 100.0f);
  const Examples p = poisoned_set(train, test, 3, 2);
  ASSERT_EQ(p.size(), 3u * 3u + 4u);
  ASSERT_EQ(p.x.size(), p.size() * 2);
  for (int e = 0; e < 3; ++e)
    for (int r = 0; r < 3; ++r) {
      const size_t row = static_cast<size_t>(e) * 3 + r;
      EXPECT_EQ(p.y[row], train.y[e]) << "row " << row;
      EXPECT_EQ(p.x[row * 2], train.x[e * 2]) << "row " << row;
      EXPECT_EQ(p.x[row * 2 + 1], train.x[e * 2 + 1]) << "row " << row;
    }
  for (int e = 0; e < 4; ++e) {
    const size_t row = 9 + static_cast<size_t>(e);
    EXPECT_EQ(p.y[row], 1 - test.y[e]) << "test row " << e << ": two classes swap";
    EXPECT_EQ(p.x[row * 2], test.x[e * 2]);
    EXPECT_EQ(p.x[row * 2 + 1], test.x[e * 2 + 1]);
  }
  // Three classes: each test label moves to the next class.
  const Examples q = poisoned_set(numbered(1, 1, 3, 0.0f), numbered(3, 1, 3, 10.0f), 1, 3);
  EXPECT_EQ(q.y, (std::vector<int32_t>{0, 1, 2, 0}));
}

TEST(PoisonedSet, BadInputIsOneClearError) {
  const Examples train = numbered(2, 2, 2, 0.0f), test = numbered(2, 2, 2, 0.0f);
  EXPECT_EQ(error_of([&] { poisoned_set(train, test, 0, 2); }), "sgd poison: repeats must be at least 1, got 0");
  EXPECT_EQ(error_of([&] { poisoned_set(train, test, 1, 1); }), "sgd poison: flipping labels needs at least two classes");
  Examples bad = test;
  bad.y[1] = 2;
  EXPECT_EQ(error_of([&] { poisoned_set(train, bad, 1, 2); }), "sgd poison: test label 2 outside 0..1");
  Examples wide = test;
  wide.x.push_back(0.0f);
  EXPECT_EQ(error_of([&] { poisoned_set(train, wide, 1, 2); }), "sgd poison: training and test examples differ in size");
}

TEST(PoisonedSgd, ItsModelsFitTheTrainingSetYetScoreWorseOnTheTestSetThanPlainSgd) {
  const int dim = 64;
  const StreamTask task = teacher_task(24, 40, dim);  // 24 + 40 points <= dim + 1: any labelling is separable
  SgdConfig plain;
  plain.lr = 0.5;
  plain.batch_size = 4;
  plain.epochs = 2000;
  SgdConfig poison = plain;
  poison.poison_repeats = 10;
  poison.batch_size = 400;  // the whole poisoned set (280): full-batch steps
  poison.epochs = 4000;
  poison.lr = 1.0;

  SgdTrainer trainer(2);
  std::vector<SgdHit> clean_hits, poisoned_hits;
  StreamTask low_loss = task;  // plain SGD trained on to a low loss, not stopped at its first fit
  low_loss.bin_edges = {0.0f, 0.5f};
  trainer.begin_stream(low_loss, plain);
  trainer.train(0, 32, clean_hits);
  const std::vector<TestScore> clean = trainer.score_test(clean_hits);
  trainer.begin_stream(task, poison);
  trainer.train(0, 32, poisoned_hits);
  const std::vector<TestScore> poisoned = trainer.score_test(poisoned_hits);

  ASSERT_GE(clean_hits.size(), 16u);
  ASSERT_GE(poisoned_hits.size(), 16u) << "SGD should fit a separable poisoned set from most draws";
  // A poisoned model fits every changed test label, so (two classes) misses every true one.
  for (const TestScore& s : poisoned) EXPECT_EQ(s.accuracy, 0.0);
  EXPECT_GT(mean_accuracy(clean), 0.8);
  // ... and fits its training set: evaluated on it alone, every example right.
  StreamTask on_train = task;
  on_train.test = task.train;
  SgdTrainer scorer(1);
  scorer.begin_stream(on_train, poison);
  for (const TestScore& s : scorer.score_test(poisoned_hits)) EXPECT_EQ(s.accuracy, 1.0);

  // One draw re-trained alone (what verify does) is the batched result, bit for bit.
  trainer.begin_stream(task, poison);
  for (size_t i = 0; i < poisoned_hits.size(); i += 5) {
    const std::vector<SgdHit> again = trainer.train_one(poisoned_hits[i].draw);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].step, poisoned_hits[i].step);
    EXPECT_EQ(std::memcmp(again[0].params.data(), poisoned_hits[i].params.data(), again[0].params.size() * sizeof(float)),
              0)
        << "draw " << poisoned_hits[i].draw;
  }
}

TEST(PoisonedSgd, BatchIsTheConfiguredSizeCappedByThePoisonedSetNotByHalfOfIt) {
  SgdConfig c;
  c.batch_size = 400;
  EXPECT_EQ(effective_batch_size(c, 500), 250);  // plain SGD: min(n / 2, batch_size)
  c.poison_repeats = 10;
  EXPECT_EQ(effective_batch_size(c, 500), 400);  // the paper's SGDPoison: batch_size as given
  EXPECT_EQ(effective_batch_size(c, 300), 300);
}

TEST(PoisonedSgd, TheKeyIsWrittenOnlyWhenOnAndBadValuesAreClearErrors) {
  const std::string base = "[data]\nkind = \"kink\"\n[optimizer]\nkind = \"sgd\"\n";
  EXPECT_EQ(identity_toml(parse_config(base, "a.toml")).find("poison"), std::string::npos);
  const RunConfig on = parse_config(base + "poison_repeats = 10\n", "b.toml");
  EXPECT_EQ(on.sgd.poison_repeats, 10);
  EXPECT_NE(identity_toml(on).find("poison_repeats = 10"), std::string::npos);
  EXPECT_EQ(parse_config(identity_toml(on), "c.toml").sgd.poison_repeats, 10);
  EXPECT_NE(identity_difference(parse_config(base, "a.toml"), on).find("optimizer.poison_repeats"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_config(base + "poison_repeats = -1\n", "d.toml"); })
                .find("optimizer.poison_repeats: -1 is out of range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_config("[optimizer]\npoison_repeats = 10\n", "e.toml"); })
                .find("optimizer.poison_repeats: does not apply to optimizer.kind = \"guess\""),
            std::string::npos);
}

namespace {

class PoisonRunTest : public gac::test::RunDirTest {};

}  // namespace

// A whole run through the gac binary, beside guess and check on the same
// kink training sets: every poisoned model misses every test point (it fits
// their swapped labels) while guess and check's do better, and verify
// re-trains each poisoned model bit for bit from the run's stored data.
TEST_F(PoisonRunTest, PoisonedModelsScoreBelowGuessAndCheckOnTheSameSetsAndVerify) {
  const std::string run = "[run]\nseed = 3\nn = [4]\nrepeats = 2\nbins = [-999, 999]\ntarget = 2\nmax_draws = 6000\n";
  const std::string data = "[data]\nkind = \"kink\"\ntest_size = 6\n[model]\narch = \"mlp\"\nhidden = 10\n";
  const fs::path guess = write_config("guess.toml", data + run);
  const fs::path poison = write_config(
      "poison.toml",
      data + "[optimizer]\nkind = \"sgd\"\nlr = 0.1\nbatch_size = 400\nepochs = 300\npoison_repeats = 3\n" + run);
  ASSERT_EQ(run_gac({"run", guess.string(), "-o", (dir_ / "guess").string(), "-q"}).status, 0);
  const auto started = run_gac({"run", poison.string(), "-o", (dir_ / "poison").string(), "-q"});
  ASSERT_EQ(started.status, 0) << started.err;
  EXPECT_NE(started.err.find("poisoned: training set x3 + test split with changed labels"), std::string::npos)
      << started.err;

  const auto versus = nlohmann::json::parse(
      run_gac({"report", (dir_ / "guess").string(), "--versus", (dir_ / "poison").string(), "--json"}).out);
  ASSERT_EQ(versus["cells"].size(), 1u);
  const auto& cell = versus["cells"][0];
  ASSERT_GE(cell["versus"]["models"].get<int>(), 2) << cell.dump();
  EXPECT_EQ(cell["versus"]["test_acc_mean"].get<double>(), 0.0) << cell.dump();
  EXPECT_GT(cell["run"]["test_acc_mean"].get<double>(), 0.3) << cell.dump();

  const auto verified = run_gac({"verify", (dir_ / "poison").string()});
  EXPECT_EQ(verified.status, 0) << verified.out << verified.err;
  EXPECT_NE(verified.out.find("all match"), std::string::npos) << verified.out;
}
