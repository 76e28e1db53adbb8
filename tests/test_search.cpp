// Pattern search and greedy random search (include/gac/search.h): each on its
// own (threads, calls, train_one, stop, failures) and as whole runs through
// the gac binary (verify, kills, signals, splits, bad keys).
#include <gtest/gtest.h>

#include <chrono>
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "gac/config.h"
#include "gac/experiment.h"
#include "gac/search.h"
#include "gac/store.h"
#include "kernels/forward.h"
#include "search_test_util.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::expect_clear_error;
using gac::test::expect_same_models;
using gac::test::kink_task;
using gac::test::small_search;
using gac::test::fingerprint;
using gac::test::Result;
using gac::test::run_gac;
using gac::test::signal_gac;

TEST(Search, ResultsDoNotDependOnThreadsOrCallsAndTrainOneAgrees) {
  for (SearchKind kind : {SearchKind::pattern, SearchKind::greedy}) {
    SCOPED_TRACE(kind == SearchKind::pattern ? "pattern" : "greedy");
    const StreamTask task = kink_task(8, 3);
    const SearchConfig cfg = small_search(kind == SearchKind::pattern ? 80 : 40, 400);
    std::vector<TrainedModel> one, three, split;
    auto a = make_search_optimizer(kind, cfg, 1), b = make_search_optimizer(kind, cfg, 3);
    a->begin_stream(task);
    b->begin_stream(task);
    const TrainCounts ca = a->train(0, 6, one);
    EXPECT_EQ(ca.draws, 6u);
    EXPECT_EQ(ca.failed + one.size(), 6u);
    b->train(0, 6, three);
    b->train(0, 2, split);
    b->train(2, 4, split);
    expect_same_models(one, three);
    expect_same_models(one, split);
    ASSERT_FALSE(one.empty()) << "no search reached training accuracy 1";
    for (const TrainedModel& m : one) {
      expect_same_models(b->train_one(m.draw), {m});
      EXPECT_GE(m.calls, 1);
      EXPECT_LE(m.step, m.calls);
      EXPECT_GT(m.radius, 0.0f);
      EXPECT_EQ(m.radius, std::exp2(std::round(std::log2(m.radius))));  // 1 halved a whole number of times
    }
  }
}

// The searched model's loss is never above its start's, and it classifies the
// training set (checked independently with the reference forward pass).
TEST(Search, ModelsImproveOnTheirDrawAndFitTheTrainingSet) {
  const StreamTask task = kink_task(8, 5);
  for (SearchKind kind : {SearchKind::pattern, SearchKind::greedy}) {
    auto opt = make_search_optimizer(kind, small_search(80, 400), 2);
    opt->begin_stream(task);
    std::vector<TrainedModel> models;
    opt->train(0, 4, models);
    ASSERT_FALSE(models.empty()) << "no search reached training accuracy 1";
    EXPECT_FALSE(models.empty()) << "no search reached training accuracy 1";
    for (const TrainedModel& m : models) {
      std::vector<float> start(task.model.n_params), b0(task.model.max_activation), b1(task.model.max_activation),
          logits(task.train.size() * task.model.n_classes);
      generate_params(task.prior, task.key, m.draw, task.model.n_params, start.data());
      const auto eval = [&](const std::vector<float>& p) {
        return evaluate_draw(task.model, p.data(), task.train.x.data(), task.train.y.data(),
                             static_cast<int>(task.train.size()), task.loss, false, b0.data(), b1.data(), logits.data());
      };
      const DrawResult end = eval(m.params);
      EXPECT_EQ(end.correct, static_cast<int>(task.train.size()));
      EXPECT_EQ(end.loss, m.loss);
      EXPECT_LE(m.loss, eval(start).loss);
    }
  }
}

TEST(Search, ASearchOutOfCallsIsCountedAsFailed) {
  const StreamTask task = kink_task(16, 7);
  auto opt = make_search_optimizer(SearchKind::pattern, small_search(32, 1), 2);  // one call, one move
  opt->begin_stream(task);
  std::vector<TrainedModel> models;
  const TrainCounts c = opt->train(0, 40, models);
  EXPECT_EQ(c.draws, 40u);
  EXPECT_EQ(c.failed + models.size(), 40u);
  EXPECT_GT(c.failed, 0u);
  for (const TrainedModel& m : models) EXPECT_EQ(m.calls, 1);
}

TEST(Search, ARaisedStopFlagEndsTrainingAtADrawBoundary) {
  std::atomic<int> stop{SIGTERM};
  auto opt = make_search_optimizer(SearchKind::greedy, small_search(40, 60), 2, &stop);
  opt->begin_stream(kink_task(8, 3));
  std::vector<TrainedModel> models;
  const TrainCounts c = opt->train(0, 5, models);
  EXPECT_EQ(c.draws, 0u);
  EXPECT_TRUE(models.empty());
}

TEST(Search, CandidatesPerBatchAreTheBudgetOverN) {
  SearchConfig c;
  c.budget = 10000;
  EXPECT_EQ(search_candidates(c, 100), 100);
  EXPECT_EQ(search_candidates(c, 300), 33);
  EXPECT_EQ(search_candidates(c, 20000), 2);
  EXPECT_EQ(search_check_every(SearchKind::pattern, c), 800);
  EXPECT_EQ(search_check_every(SearchKind::greedy, c), 266);
}

namespace {

class SearchRunTest : public gac::test::RunDirTest {
 protected:
  fs::path config(const std::string& kind) {
    return write_config(kind + ".toml", "[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 6\n"
                                        "[prior]\nkind = \"uniform\"\n[optimizer]\nkind = \"" + kind +
                                            "\"\nbudget = 80\nmax_calls = 400\ncheck_every = 5\n"
                                            "[run]\nseed = 3\nn = [4, 8]\nrepeats = 2\nbins = [0, 10]\ntarget = 4\nloss = \"raw\"\n");
  }
  Result run(const fs::path& cfg, const std::string& out, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"run", cfg.string(), "-o", (dir_ / out).string(), "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_gac(args);
  }
};

}  // namespace

TEST_F(SearchRunTest, RunsVerifyAndDoNotDependOnThreadsOrBatch) {
  for (const std::string kind : {"pattern", "greedy"}) {
    SCOPED_TRACE(kind);
    const fs::path cfg = config(kind);
    const Result a = run(cfg, kind + "_a");
    ASSERT_EQ(a.status, 0) << a.err;
    ASSERT_EQ(run(cfg, kind + "_b", {"--threads", "1", "--set", "exec.batch=3"}).status, 0);
    EXPECT_EQ(fingerprint(dir_ / (kind + "_a")), fingerprint(dir_ / (kind + "_b")));
    EXPECT_EQ(Store::open_existing(dir_ / (kind + "_a"))->meta().optimizer, kind);
    const Result v = run_gac({"verify", (dir_ / (kind + "_a")).string()});
    EXPECT_EQ(v.status, 0) << v.out << v.err;
    EXPECT_NE(v.out.find("all match"), std::string::npos) << v.out;
    const Result report = run_gac({"report", (dir_ / (kind + "_a")).string()});
    EXPECT_NE(report.out.find("trained by " + std::string(kind == "pattern" ? "pattern" : "greedy") + " search"),
              std::string::npos)
        << report.out;
  }
}

TEST_F(SearchRunTest, SplitRunMergedEqualsTheUnsplitRun) {
  const fs::path cfg = config("pattern");
  ASSERT_EQ(run(cfg, "whole").status, 0);
  for (int t = 0; t < 2; ++t)
    ASSERT_EQ(run(cfg, "split/shards/" + std::to_string(t), {"--shard", std::to_string(t) + "/2"}).status, 0);
  const Result merged = run_gac({"merge", (dir_ / "split").string()});
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(fingerprint(dir_ / "split"), fingerprint(dir_ / "whole"));
}

TEST_F(SearchRunTest, SigkillThenResumeEqualsAnUninterruptedRun) {
  const fs::path cfg = config("greedy");
  const std::vector<std::string> slow = {"--threads", "1", "--set", "run.target=200"};  // about half a second
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run(cfg, "whole", slow).status, 0);
  const double whole_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::string> args = {"run", cfg.string(), "-o", (dir_ / "killed").string(), "-q"};
  args.insert(args.end(), slow.begin(), slow.end());
  test::expect_killed_and_resumed_equals(dir_ / "whole", args, dir_ / "killed", whole_s, 3);
}

TEST_F(SearchRunTest, SigtermStopsPromptlyAndARerunCompletesIdentically) {
  // Large batches: one search takes long, so the stop lands inside one. The
  // signal comes at 30% of an uninterrupted run's time; a run that finished
  // first is tried again in a fresh directory with half the delay, and one of
  // them must be stopped.
  const fs::path cfg = config("greedy");
  const std::vector<std::string> slow = {"--threads", "1", "--set", "optimizer.budget=4000", "--set",
                                         "optimizer.max_calls=400", "--set", "run.target=24", "--set", "run.n=[8]",
                                         "--set", "run.repeats=4"};
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(run(cfg, "whole", slow).status, 0);
  const double whole_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bool stopped = false;
  double delay = 0.3 * whole_s;
  for (int attempt = 0; attempt < 4 && !stopped; ++attempt, delay /= 2) {
    std::vector<std::string> args = {"run", cfg.string(), "-o", (dir_ / ("stopped" + std::to_string(attempt))).string(),
                                     "-q"};
    args.insert(args.end(), slow.begin(), slow.end());
    const auto [r, exit_s] = signal_gac(args, delay, SIGTERM);
    std::cerr << "attempt " << attempt << ": SIGTERM after " << delay << " s of a " << whole_s
              << " s run: exit " << r.status << " " << exit_s << " s later\n";
    if (r.status == 0) continue;  // it finished before the signal
    stopped = true;
    EXPECT_EQ(r.status, 75) << r.err;
    EXPECT_LT(exit_s, 2.0);
    ASSERT_EQ(run_gac(args).status, 0);
    EXPECT_EQ(fingerprint(dir_ / "whole"), fingerprint(dir_ / ("stopped" + std::to_string(attempt))));
  }
  EXPECT_TRUE(stopped) << "every run finished before its SIGTERM (" << whole_s << " s uninterrupted)";
}

TEST_F(SearchRunTest, KeysOfAnotherOptimizerAreRefusedByName) {
  // A config file's search keys under another kind are refused; a --set of
  // optimizer.kind replaces the file's optimizer and its keys (host/config/parse.cpp).
  struct Case {
    std::string kind, set, message;
  };
  const std::vector<Case> cases = {
      {"pattern", "optimizer.lr=0.1", "optimizer.lr: does not apply to optimizer.kind = \"pattern\" (only to sgd)"},
      {"sgd", "", "optimizer.budget: does not apply to optimizer.kind = \"sgd\""},
      {"guess", "", "optimizer.budget: does not apply to optimizer.kind = \"guess\""},
      {"pattern", "optimizer.budget=0", "optimizer.budget: 0 is out of range"},
      {"greedy", "optimizer.max_calls=-3", "optimizer.max_calls: -3 is out of range"},
      {"greedy", "optimizer.incremental=false",
       "optimizer.incremental: does not apply to optimizer.kind = \"greedy\" (only to pattern)"},
      {"pattern", "optimizer.incremental=3", "optimizer.incremental: expected true or false"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"run", config(c.kind).string(), "-o", (dir_ / "never").string(), "-q"};
    if (!c.set.empty()) args.insert(args.end(), {"--set", c.set});
    SCOPED_TRACE(c.kind + " " + c.set);
    expect_clear_error(run_gac(args), c.message);
  }
  EXPECT_FALSE(fs::exists(dir_ / "never"));
}

TEST_F(SearchRunTest, FailedSearchesAreRecordedAndReported) {
  // One call of one move per search: most draws give no model.
  const Result r = run(config("pattern"), "a", {"--set", "optimizer.max_calls=1", "--set", "optimizer.budget=16"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto store = Store::open_existing(dir_ / "a");
  uint64_t failed = 0, draws = 0;
  for (const StreamState& st : store->states()) {
    failed += st.failed;
    draws += st.draws;
    EXPECT_EQ(st.draws, st.failed + st.perfect);
  }
  EXPECT_GT(failed, 0u);
  for (const StoredModel& m : store->models()) {
    EXPECT_EQ(m.search_calls, 1);
    EXPECT_LE(m.search_steps, 1);
    EXPECT_EQ(m.search_radius, 1.0);
  }
  const Result report = run_gac({"report", (dir_ / "a").string()});
  EXPECT_NE(report.out.find(std::to_string(failed) + " of " + std::to_string(draws) + " searches failed"),
            std::string::npos)
      << report.out;
  // The CSV names the optimizer and gives each cell its n's failed searches (one bin here: they add up).
  const Result csv = run_gac({"report", (dir_ / "a").string(), "--csv"});
  ASSERT_EQ(csv.status, 0) << csv.err;
  std::istringstream lines(csv.out);
  std::string line;
  std::getline(lines, line);
  EXPECT_NE(line.find(",optimizer,optimizer_title,failed"), std::string::npos) << line;
  uint64_t csv_failed = 0;
  while (std::getline(lines, line)) {
    const std::string tail = ",pattern,pattern search,";
    const size_t at = line.find(tail);
    ASSERT_NE(at, std::string::npos) << line;
    csv_failed += std::stoull(line.substr(at + tail.size()));
  }
  EXPECT_EQ(csv_failed, failed);
  const Result json = run_gac({"report", (dir_ / "a").string(), "--json"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["cells"][0]["optimizer_title"], "pattern search");
}
