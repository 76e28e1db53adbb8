// Runs split into tasks and merged, stopped by signals and resumed, grown on
// an existing directory, scheduled across streams; through the gac binary.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <regex>
#include <set>

#include "gac/backend.h"
#include "gac/store.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::expect_clear_error;
using gac::test::fingerprint;
using gac::test::interrupt_at_random_moments;
using gac::test::Result;
using gac::test::run_gac;
using gac::test::signal_gac;
using gac::test::slurp;

namespace {

class SplitRunTest : public gac::test::RunDirTest {
 protected:
  // Streams that never fill (no loss that low): they run to their budget, the time limit or a signal.
  fs::path endless_config(const std::string& extra = "") {
    return write_config("endless.toml", R"(
[data]
kind = "kink"
[run]
n = [16, 8]
repeats = 2
bins = [0.0, 0.01]
target = 1
max_draws = 100_000_000_000
)" + extra);
  }

  // Runs each task of `tasks` into run/shards/I, one after another, then merges them.
  void run_tasks(const fs::path& cfg, int tasks, const fs::path& run, const std::vector<std::string>& extra = {}) {
    for (int t = 0; t < tasks; ++t) {
      std::vector<std::string> args = {"run", cfg.string(), "--shard", std::to_string(t) + "/" + std::to_string(tasks),
                                       "-o", (run / "shards" / std::to_string(t)).string(), "-q"};
      args.insert(args.end(), extra.begin(), extra.end());
      const Result r = run_gac(args);
      ASSERT_EQ(r.status, 0) << r.err;
    }
  }

  Result merge(const fs::path& run, bool partial = false) {
    return partial ? run_gac({"merge", run.string(), "--partial"}) : run_gac({"merge", run.string()});
  }
};

uint64_t total_draws(const fs::path& run) {
  uint64_t draws = 0;
  for (const StreamState& st : Store::open_existing(run)->states()) draws += st.draws;
  return draws;
}

}  // namespace

TEST_F(SplitRunTest, TasksMergedEqualTheUnsplitRun) {
  const fs::path cfg = kink_config();
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "whole").string(), "-q"}).status, 0);
  run_tasks(cfg, 3, dir_ / "split");
  // Before the merge, report shows each task.
  const Result progress = run_gac({"report", (dir_ / "split").string()});
  EXPECT_EQ(progress.status, 0) << progress.err;
  EXPECT_NE(progress.out.find("3 done"), std::string::npos) << progress.out;
  const Result merged = merge(dir_ / "split");
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(fingerprint(dir_ / "split"), fingerprint(dir_ / "whole"));
  EXPECT_TRUE(fs::exists(dir_ / "split" / "data" / "n8_r1_train_x.npy"));
  // Merging again changes nothing; the merged run verifies and reports like any run.
  ASSERT_EQ(merge(dir_ / "split").status, 0);
  EXPECT_EQ(fingerprint(dir_ / "split"), fingerprint(dir_ / "whole"));
  const Result verify = run_gac({"verify", (dir_ / "split").string()});
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
  const Result report = run_gac({"report", (dir_ / "split").string()});
  EXPECT_NE(report.out.find("80/80"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("tasks in"), std::string::npos) << report.out;
}

TEST_F(SplitRunTest, MoreTasksThanStreamsSplitEachStreamIntoShards) {
  // 6 tasks over 4 streams: 2 shards per stream, 20 models per bin each.
  const fs::path cfg = kink_config();
  run_tasks(cfg, 6, dir_ / "split");
  ASSERT_EQ(merge(dir_ / "split").status, 0);
  // The same units in one process (run.shards = 6, every task's units).
  ASSERT_EQ(run_gac({"run", cfg.string(), "--set", "run.shards=6", "-o", (dir_ / "one").string(), "-q"}).status, 0);
  EXPECT_EQ(fingerprint(dir_ / "split"), fingerprint(dir_ / "one"));
  const auto store = Store::open_existing(dir_ / "split");
  EXPECT_EQ(store->models().size(), 4u * 3u * 40u);
  std::set<int> shards;
  for (const StreamState& st : store->states()) shards.insert(st.shard);
  EXPECT_EQ(shards, (std::set<int>{0, 1}));
  EXPECT_EQ(run_gac({"verify", (dir_ / "split").string()}).status, 0);
}

TEST_F(SplitRunTest, MergeRefusesMissingTasksUnlessPartial) {
  const fs::path cfg = kink_config();
  const fs::path run = dir_ / "split";
  ASSERT_EQ(run_gac({"run", cfg.string(), "--shard", "0/3", "-o", (run / "shards" / "0").string(), "-q"}).status, 0);
  ASSERT_EQ(run_gac({"run", cfg.string(), "--shard", "2/3", "-o", (run / "shards" / "2").string(), "-q", "--set",
                     "run.time_limit=0.01"})
                .status,
            75);
  expect_clear_error(merge(run), "never started: 1; unfinished: 2");
  EXPECT_FALSE(fs::exists(run / "ledger.sqlite"));
  const Result progress = run_gac({"report", run.string()});
  EXPECT_NE(progress.out.find("1 done, 0 running, 1 interrupted, 1 never started"), std::string::npos) << progress.out;
  const Result partial = merge(run, true);
  ASSERT_EQ(partial.status, 0) << partial.err;
  EXPECT_NE(partial.out.find("partial"), std::string::npos) << partial.out;
  const Result report = run_gac({"report", run.string()});
  EXPECT_NE(report.out.find("pending"), std::string::npos) << report.out;
  // The missing and unfinished tasks run, and a second merge completes the run.
  run_tasks(cfg, 3, run);
  ASSERT_EQ(merge(run).status, 0);
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "whole").string(), "-q"}).status, 0);
  EXPECT_EQ(fingerprint(run), fingerprint(dir_ / "whole"));
}

TEST_F(SplitRunTest, MergeRefusesTasksOfAnotherRunOrSplit) {
  const fs::path cfg = kink_config();
  const fs::path run = dir_ / "split";
  run_tasks(cfg, 2, run);
  ASSERT_EQ(run_gac({"run", cfg.string(), "--shard", "1/2", "--set", "run.seed=4", "-o", (dir_ / "other").string(), "-q"})
                .status,
            0);
  fs::remove_all(run / "shards" / "1");
  fs::rename(dir_ / "other", run / "shards" / "1");
  expect_clear_error(merge(run), "run.seed is 3 there, 4 here");

  fs::remove_all(run / "shards" / "1");
  ASSERT_EQ(run_gac({"run", cfg.string(), "--shard", "1/3", "-o", (run / "shards" / "1").string(), "-q"}).status, 0);
  expect_clear_error(merge(run), "run.shards is 2 there, 3 here");

  fs::remove_all(run / "shards" / "1");
  fs::create_directories(run / "shards" / "extra");
  expect_clear_error(merge(run), "is not a task directory");
  expect_clear_error(merge(dir_), "nothing to merge");
  EXPECT_FALSE(fs::exists(run / "ledger.sqlite"));
}

TEST_F(SplitRunTest, MergeKilledAtRandomMomentsThenRunAgainCompletes) {
  const fs::path cfg = kink_config();
  run_tasks(cfg, 4, dir_ / "split", {"--set", "run.target=150"});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(merge(dir_ / "split").status, 0);
  const double whole_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const fs::path killed = dir_ / "killed";
  const int kills = interrupt_at_random_moments(
      killed, whole_s, 4,
      [&](double delay) {
        if (!fs::exists(killed)) {  // the first try, or one whose merge finished first: the shards again
          fs::create_directories(killed);
          fs::copy(dir_ / "split" / "shards", killed / "shards", fs::copy_options::recursive);
        }
        return run_gac({"merge", killed.string()}, delay).status == -SIGKILL;
      },
      0.1, 0.6);
  ASSERT_EQ(merge(killed).status, 0);
  EXPECT_GT(kills, 0) << "the merge always finished before the kill";
  EXPECT_EQ(fingerprint(dir_ / "killed"), fingerprint(dir_ / "split"));
}

TEST_F(SplitRunTest, BadShardOptionIsOneClearLine) {
  const fs::path cfg = kink_config();
  for (const char* bad : {"4/4", "1", "-1/2", "a/b", "1/0", "2/3x"})
    expect_clear_error(run_gac({"run", cfg.string(), "--shard", bad, "-o", (dir_ / "a").string()}), "--shard");
  expect_clear_error(run_gac({"run", cfg.string(), "--set", "run.shard=3", "-o", (dir_ / "a").string()}),
                     "task 3 does not exist");
  EXPECT_FALSE(fs::exists(dir_ / "a"));
}

TEST_F(SplitRunTest, SignalsStopPromptlyAndTheRunResumesExactly) {
  const fs::path cfg = kink_config();
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"run", cfg.string(), "-o", (dir_ / out).string(), "-q", "--threads", "1",
                                    "--set", "exec.batch=512", "--set", "run.target=100"};
  };
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(run_gac(args("whole")).status, 0);
  // Signals at random moments within the time a whole run takes (this machine's speed varies).
  const double whole_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int signals[] = {SIGTERM, SIGINT, SIGUSR1, SIGTERM};
  int sent = 0;
  const int stops = interrupt_at_random_moments(
      dir_ / "stopped", whole_s, 4,
      [&](double after_s) {
        const int signal = signals[sent];
        const Result r = signal_gac(args("stopped"), after_s, signal).result;
        if (r.status == 0) return false;  // finished first
        ++sent;
        EXPECT_EQ(r.status, 75) << r.err;
        EXPECT_NE(r.err.find(std::string("stopped by SIG") + sigabbrev_np(signal)), std::string::npos) << r.err;
        return true;
      },
      0.1, 0.6);
  ASSERT_EQ(run_gac(args("stopped")).status, 0);
  EXPECT_GT(stops, 0) << "the run always finished before the signal";
  EXPECT_EQ(fingerprint(dir_ / "whole"), fingerprint(dir_ / "stopped"));
}

TEST_F(SplitRunTest, StopIsPromptWhateverTheBatch) {
  // A slow model and a batch of 2^32 draws: evaluate() calls must still be short.
  const fs::path cfg = endless_config("[model]\narch = \"mlp\"\nhidden = 256\nlayers = 3\n");
  const auto [r, exit_s] = signal_gac(
      {"run", cfg.string(), "-o", (dir_ / "a").string(), "--threads", "1", "--set", "exec.batch=4294967296"}, 2.0, SIGTERM);
  EXPECT_EQ(r.status, 75) << r.err;
  EXPECT_LT(exit_s, 10.0);
  std::cerr << "exited " << exit_s << " s after SIGTERM\n";
  const Result report = run_gac({"report", (dir_ / "a").string()});
  EXPECT_NE(report.out.find("interrupted"), std::string::npos) << report.out;
  EXPECT_GT(total_draws(dir_ / "a"), 0u);
}

TEST_F(SplitRunTest, KilledRunShowsInterruptedAndNeverStartedStreamsPending) {
  const fs::path cfg = endless_config();
  const Result r =
      run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q", "--set", "exec.order=\"sequential\""}, 2.0);
  ASSERT_EQ(r.status, -SIGKILL);
  const Result report = run_gac({"report", (dir_ / "a").string(), "--csv"});
  EXPECT_NE(report.out.find("16,0,0,0.01,0,2,0,interrupted,"), std::string::npos) << report.out;  // begun, killed
  EXPECT_NE(report.out.find("8,0,0,0.01,0,2,0,pending,"), std::string::npos) << report.out;       // never begun
}

TEST_F(SplitRunTest, InterleavedStreamsAllProgressUnderATimeLimit) {
  const fs::path cfg = endless_config("time_limit = 4.5\n");
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "interleaved").string()});
  EXPECT_EQ(r.status, 75) << r.err;
  const auto states = Store::open_existing(dir_ / "interleaved")->states();
  ASSERT_EQ(states.size(), 4u);
  for (const StreamState& st : states) {
    EXPECT_GT(st.draws, 0u) << "n=" << st.n << " repeat " << st.repeat;
    EXPECT_EQ(st.status, "time");
  }
  // Progress shows the whole run.
  EXPECT_NE(r.err.find("run: 0/4 streams done"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << r.err;
  // One stream after another, the first takes all the time.
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "sequential").string(), "-q", "--set",
                     "exec.order=\"sequential\""})
                .status,
            75);
  EXPECT_EQ(Store::open_existing(dir_ / "sequential")->states().size(), 1u);
}

TEST_F(SplitRunTest, CommitsDoNotGrowWithTheModels) {
  const Result r = run_gac({"run", kink_config().string(), "-o", (dir_ / "a").string(), "--set", "run.target=300"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex(R"((\d+)/\d+ models, .* \((\d+) commits\))"))) << r.err;
  const int models = std::stoi(m[1]), commits = std::stoi(m[2]);
  EXPECT_EQ(models, 4 * 3 * 300);
  EXPECT_LT(commits, models / 10) << "about one commit a second and per stream, not one per model";
}

TEST_F(SplitRunTest, ARunGrowsItsTargetRepeatsAndSizesKeepingEveryModel) {
  const fs::path cfg = kink_config();
  const fs::path run = dir_ / "grown";
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", run.string(), "-q", "--set", "run.n=[4]", "--set", "run.repeats=1"})
                .status,
            0);
  const std::vector<StoredModel> before = Store::open_existing(run)->models();
  // More repeats and another n: new streams, the old ones untouched, as a fresh run of the larger config.
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", run.string(), "-q"}).status, 0);
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "fresh").string(), "-q"}).status, 0);
  EXPECT_EQ(fingerprint(run), fingerprint(dir_ / "fresh"));
  // A larger target: every stream goes on from where it stopped; no model changes or repeats.
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", run.string(), "-q", "--set", "run.target=60"}).status, 0);
  const auto store = Store::open_existing(run);
  EXPECT_EQ(store->meta().target, 60);
  EXPECT_EQ(store->models().size(), 4u * 3u * 60u);
  std::set<std::tuple<int, int, int, uint64_t>> draws;
  for (const StoredModel& m : store->models()) draws.insert({m.n, m.repeat, m.shard, m.draw});
  for (const StoredModel& m : before) EXPECT_TRUE(draws.count({m.n, m.repeat, m.shard, m.draw})) << m.file;
  for (const StreamState& st : store->states()) EXPECT_EQ(st.status, "filled");
  EXPECT_EQ(run_gac({"verify", run.string()}).status, 0);
  EXPECT_NE(slurp(run / "config.toml").find("target = 60"), std::string::npos);

  // Shrinking or dropping is refused, and changes nothing.
  const std::string grown = fingerprint(run);
  expect_clear_error(run_gac({"run", cfg.string(), "-o", run.string(), "-q"}), "run.target is 60 there, 40 here");
  expect_clear_error(run_gac({"run", cfg.string(), "-o", run.string(), "-q", "--set", "run.target=60", "--set", "run.n=[8]"}),
                     "run.n holds 4 there but not here");
  EXPECT_EQ(fingerprint(run), grown);
}

TEST_F(SplitRunTest, ACommentInTheRunsConfigIsNotAnotherConfig) {
  const fs::path cfg = kink_config();
  ASSERT_EQ(run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"}).status, 0);
  const std::string before = fingerprint(dir_ / "a");
  std::ofstream(dir_ / "a" / "config.toml", std::ios::app) << "# checked by hand on Monday\n";
  const Result r = run_gac({"run", cfg.string(), "-o", (dir_ / "a").string(), "-q"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(fingerprint(dir_ / "a"), before);
  EXPECT_NE(slurp(dir_ / "a" / "config.toml").find("Monday"), std::string::npos) << "the user's note stays";
}

TEST_F(SplitRunTest, CpuThreadsFollowTheAffinityMaskAndSlurm) {
  cpu_set_t all, one;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "needs two CPUs";
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &all)) {
      CPU_SET(c, &one);
      break;
    }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const std::string pinned = make_cpu_backend(0)->description();
  sched_setaffinity(0, sizeof all, &all);
  EXPECT_NE(pinned.find("(1 threads"), std::string::npos) << pinned;
  const std::string every = make_cpu_backend(0)->description();
  EXPECT_NE(every.find(std::to_string(CPU_COUNT(&all)) + " threads"), std::string::npos) << every;
  setenv("SLURM_CPUS_PER_TASK", "1", 1);
  const std::string slurm = make_cpu_backend(0)->description();
  unsetenv("SLURM_CPUS_PER_TASK");
  EXPECT_NE(slurm.find("(1 threads"), std::string::npos) << slurm;
}
