// Checkpoints of searches in progress (include/gac/checkpoint.h): a search
// stopped between calls and resumed from its checkpoint ends with the same
// bits as one never stopped, in process (a sink in memory) and through the
// gac binary (SIGKILL and SIGTERM, the ledger's table search_checkpoints).
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>

#include "gac/config.h"
#include "gac/experiment.h"
#include "gac/search.h"
#include "gac/store.h"
#include "search_test_util.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::expect_same_models;
using gac::test::fingerprint;
using gac::test::kink_task;
using gac::test::small_search;
using gac::test::Result;
using gac::test::run_gac;
using gac::test::signal_gac;

namespace {

// Checkpoints in memory; raises `stop` at its `stop_at`-th save, as a signal would.
class MemorySink final : public CheckpointSink {
 public:
  std::map<uint64_t, SearchCheckpoint> saved;
  int saves = 0, resumes = 0, stop_at = -1;
  std::atomic<int>* stop = nullptr;

  std::optional<SearchCheckpoint> load(uint64_t draw) override {
    const auto it = saved.find(draw);
    if (it == saved.end()) return std::nullopt;
    ++resumes;
    return it->second;
  }
  void save(const SearchCheckpoint& c) override {
    saved[c.draw] = c;
    if (++saves == stop_at && stop) stop->store(SIGTERM);
  }
};

}  // namespace

TEST(SearchCheckpoint, StoppedEveryFewCallsAndResumedEachTimeGivesTheSameModels) {
  const StreamTask task = kink_task(8, 11);
  constexpr uint64_t kDraws = 5;
  for (const SearchKind kind : {SearchKind::pattern, SearchKind::greedy}) {
    SCOPED_TRACE(kind == SearchKind::pattern ? "pattern" : "greedy");
    std::vector<TrainedModel> whole;
    const auto plain = make_search_optimizer(kind, small_search(80, 400), 2);
    plain->begin_stream(task);
    ASSERT_EQ(plain->train(0, kDraws, whole).draws, kDraws);
    ASSERT_FALSE(whole.empty());

    // A fresh optimizer (a new process) after each stop, 7 calls later.
    MemorySink sink;
    std::vector<TrainedModel> resumed;
    uint64_t done = 0;
    int stops = 0;
    while (done < kDraws && stops < 10000) {
      std::atomic<int> stop{0};
      sink.stop = &stop;
      sink.stop_at = sink.saves + 7;
      const auto opt = make_search_optimizer(kind, small_search(80, 400), 2, &stop);
      opt->begin_stream(task);
      opt->set_checkpoints(&sink, 0);
      done += opt->train(done, kDraws - done, resumed).draws;
      stops += stop.load() != 0;
    }
    EXPECT_GT(stops, 0);
    EXPECT_GT(sink.resumes, 0);
    expect_same_models(whole, resumed);
  }
}

TEST(SearchCheckpoint, StoppedAtAnyMomentInACallAndResumedGivesTheSameModels) {
  // A stop from another thread lands anywhere, also after a call halved its radius: the
  // checkpoint holds the call's start. The moments vary; the models may not.
  const StreamTask task = kink_task(64, 11);
  for (const SearchKind kind : {SearchKind::pattern, SearchKind::greedy}) {
    SCOPED_TRACE(kind == SearchKind::pattern ? "pattern" : "greedy");
    // Enough draws that the stopper's thread runs before the search ends, also on a
    // loaded machine (the kink task's searches take well under a millisecond a draw).
    const uint64_t kDraws = 60;
    SearchConfig cfg = small_search(80, 400);
    // Pattern: 9 moves a batch, a sweep spans several; greedy: 49 candidates a batch.
    cfg.budget = kind == SearchKind::pattern ? 640 : 3200;
    std::vector<TrainedModel> whole;
    const auto plain = make_search_optimizer(kind, cfg, 1);
    plain->begin_stream(task);
    ASSERT_EQ(plain->train(0, kDraws, whole).draws, kDraws);

    MemorySink sink;
    std::vector<TrainedModel> resumed;
    uint64_t done = 0;
    int stops = 0;
    for (int round = 0; done < kDraws && round < 100000; ++round) {
      std::atomic<int> stop{0};
      const auto opt = make_search_optimizer(kind, cfg, 1, &stop);
      opt->begin_stream(task);
      opt->set_checkpoints(&sink, 0);
      std::thread stopper([&stop, round] {
        std::this_thread::sleep_for(std::chrono::microseconds(20 + 30 * (round % 13)));
        stop.store(SIGTERM);
      });
      done += opt->train(done, kDraws - done, resumed).draws;
      stopper.join();
      ++stops;
    }
    EXPECT_GT(stops, 1);
    EXPECT_GT(sink.resumes, 0);
    EXPECT_FALSE(whole.empty());
    expect_same_models(whole, resumed);
  }
}

TEST(SearchCheckpoint, TrainOneAndAMisfitCheckpointSearchFromTheDraw) {
  const StreamTask task = kink_task(8, 11);
  const auto opt = make_search_optimizer(SearchKind::pattern, small_search(80, 400), 2);
  opt->begin_stream(task);
  const std::vector<TrainedModel> reference = opt->train_one(1);
  MemorySink sink;
  // Of the right size but wrong: train_one (verify) never reads checkpoints.
  sink.saved[1] = SearchCheckpoint{1, std::vector<float>(task.model.n_params, 0.0f), 99.0f, 0, 0.25f, 3, 5};
  opt->set_checkpoints(&sink, 0);
  expect_same_models(reference, opt->train_one(1));
  // Of another model size (cannot be this search's): train starts the draw afresh.
  sink.saved[1].params.resize(3);
  std::vector<TrainedModel> trained;
  opt->train(1, 1, trained);
  expect_same_models(reference, trained);
}

namespace {

class CheckpointStoreTest : public gac::test::TempDirTest {
 protected:
  static RunMeta meta() {
    RunMeta m;
    m.bin_edges = {0, 10};
    m.target = 2;
    m.ns = {4};
    m.n_params = 3;
    m.optimizer = "pattern";
    return m;
  }
  std::unique_ptr<Store> writer() { return std::make_unique<Store>(dir_ / "run", "x = 1\n", "{}", meta()); }
  static StreamState state(uint64_t draws, const std::string& status) {
    StreamState st;
    st.n = 4;
    st.draws = draws;
    st.hits = {0};
    st.stored = {0};
    st.status = status;
    return st;
  }
  static SearchCheckpoint checkpoint(uint64_t draw, float x) {
    return SearchCheckpoint{draw, {x, -x, 1e-30f}, 0.125f + x, 3, 0.0078125f, 17, 40};
  }
  std::vector<std::tuple<int, int, int, uint64_t>> draws_at(std::initializer_list<uint64_t> draws) {
    std::vector<std::tuple<int, int, int, uint64_t>> out;
    for (uint64_t d : draws) out.emplace_back(4, 0, 0, d);
    return out;
  }
};

}  // namespace

TEST_F(CheckpointStoreTest, SavedExactlyReplacedAndDeletedWithTheCommitThatEndsTheSearch) {
  auto store = writer();
  store->save_checkpoint(4, 0, 0, checkpoint(2, 0.5f));
  store->save_checkpoint(4, 0, 0, checkpoint(2, 0.75f));  // replaces
  store->save_checkpoint(4, 0, 0, checkpoint(5, 1.5f));
  const auto c = store->load_checkpoint(4, 0, 0, 2);
  ASSERT_TRUE(c);
  const SearchCheckpoint want = checkpoint(2, 0.75f);
  EXPECT_EQ(c->params, want.params);
  EXPECT_EQ(c->loss, want.loss);
  EXPECT_EQ(c->correct, want.correct);
  EXPECT_EQ(c->radius, want.radius);
  EXPECT_EQ(c->steps, want.steps);
  EXPECT_EQ(c->calls, want.calls);
  EXPECT_FALSE(store->load_checkpoint(4, 0, 0, 3));
  EXPECT_FALSE(store->load_checkpoint(4, 1, 0, 2));
  EXPECT_THROW(store->save_checkpoint(4, 0, 0, SearchCheckpoint{7, {1.0f}}), Error);

  std::vector<StoredModel> none;
  store->commit(state(3, "running"), none, {});  // draws 0..2 done: draw 2's checkpoint goes
  EXPECT_EQ(store->checkpointed_draws(), draws_at({5}));
  store.reset();
  store = writer();  // durable: a new writer reads it
  EXPECT_TRUE(store->load_checkpoint(4, 0, 0, 5));
  store->commit(state(4, "filled"), none, {});  // a finished stream keeps none
  EXPECT_TRUE(store->checkpointed_draws().empty());
}

TEST_F(CheckpointStoreTest, AVersion5LedgerIsReadAndAWriterAddsTheTable) {
  writer()->save_checkpoint(4, 0, 0, checkpoint(2, 0.5f));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "run" / "ledger.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE search_checkpoints; UPDATE meta SET value = '5' WHERE key = 'schema_version'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const auto reader = Store::open_existing(dir_ / "run");
  EXPECT_FALSE(reader->load_checkpoint(4, 0, 0, 2));
  EXPECT_TRUE(reader->checkpointed_draws().empty());
  auto store = writer();
  store->save_checkpoint(4, 0, 0, checkpoint(2, 0.5f));
  EXPECT_EQ(store->checkpointed_draws(), draws_at({2}));
}

namespace {

// One greedy stream whose searches take long (large batches), checkpointed after every call.
class CheckpointRunTest : public gac::test::RunDirTest {
 protected:
  void SetUp() override {
    RunDirTest::SetUp();
    cfg_ = write_config("greedy.toml", "[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 6\n"
                                       "[prior]\nkind = \"uniform\"\n[optimizer]\nkind = \"greedy\"\n"
                                       "budget = 4000\nmax_calls = 400\ncheck_every = 5\n"
                                       "[run]\nseed = 3\nn = 8\nrepeats = 2\nbins = [0, 10]\ntarget = 6\n"
                                       "loss = \"raw\"\n[exec]\nthreads = 1\n");
  }
  std::vector<std::string> args(const std::string& out, const std::string& every = "0") {
    return {"run", cfg_.string(), "-o", (dir_ / out).string(), "-q", "--set", "exec.checkpoint_seconds=" + every};
  }
  size_t checkpoints(const std::string& out) {
    if (!fs::exists(dir_ / out / "ledger.sqlite")) return 0;
    return Store::open_existing(dir_ / out)->checkpointed_draws().size();
  }
  // An uninterrupted run (checkpoints at the default interval); its wall time.
  double run_whole(const std::vector<std::string>& extra = {}) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::string> whole = args("whole", "60");
    whole.insert(whole.end(), extra.begin(), extra.end());
    const Result r = run_gac(whole);
    EXPECT_EQ(r.status, 0) << r.err;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  fs::path cfg_;
};

}  // namespace

TEST_F(CheckpointRunTest, SigkillAfterACheckpointThenResumeEqualsAnUninterruptedRun) {
  const std::vector<std::string> longer = {"--set", "run.repeats=4", "--set", "run.target=18", "--set",
                                           "optimizer.budget=400000", "--set", "run.n=32"};
  const double whole_s = run_whole(longer);
  std::vector<std::string> killed = args("killed");
  killed.insert(killed.end(), longer.begin(), longer.end());
  bool checkpointed = false;
  for (double at : {0.3, 0.5, 0.7}) {
    run_gac(killed, at * whole_s);
    checkpointed = checkpointed || checkpoints("killed") > 0;
  }
  EXPECT_TRUE(checkpointed) << "no kill left a checkpoint (" << whole_s << " s uninterrupted)";
  const Result r = run_gac(killed);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(fingerprint(dir_ / "whole"), fingerprint(dir_ / "killed"));
  EXPECT_EQ(checkpoints("killed"), 0u);  // finished streams keep none
}

TEST_F(CheckpointRunTest, SigtermSavesTheSearchInProgressAndARerunEndsIdentically) {
  // More streams and models: a run of seconds, so that the signal lands inside a search.
  const std::vector<std::string> longer = {"--set", "run.repeats=4", "--set", "run.target=18", "--set",
                                           "optimizer.budget=400000", "--set", "run.n=32"};
  const double whole_s = run_whole(longer);
  // A signal between two draws, or in a search's first call, leaves nothing to save: try again,
  // later; a run that finished first (this machine's speed swings), sooner.
  bool saved = false;
  double fraction = 0.3;
  for (int attempt = 0; attempt < 6 && !saved; ++attempt) {
    const std::string out = "stopped" + std::to_string(attempt);
    // Checkpoints only at a stop: what is saved comes from the signal alone.
    std::vector<std::string> stopped = args(out, "1e9");
    stopped.insert(stopped.end(), longer.begin(), longer.end());
    const auto [r, exit_s] = signal_gac(stopped, fraction * whole_s, SIGTERM);
    if (r.status == 0) {  // it finished before the signal
      fraction /= 2;
      continue;
    }
    EXPECT_EQ(r.status, 75) << r.err;
    EXPECT_LT(exit_s, 2.0);
    saved = checkpoints(out) == 1;
    if (!saved) fraction += 0.15;
    if (saved) {
      // A config of another search never reads it: the run directory refuses that config.
      std::vector<std::string> other = stopped;
      other.insert(other.end(), {"--set", "optimizer.max_calls=300"});
      const Result refused = run_gac(other);
      EXPECT_EQ(refused.status, 2) << refused.err;
      EXPECT_NE(refused.err.find("different config"), std::string::npos) << refused.err;
    }
    ASSERT_EQ(run_gac(stopped).status, 0);
    EXPECT_EQ(fingerprint(dir_ / "whole"), fingerprint(dir_ / out));
  }
  EXPECT_TRUE(saved) << "no SIGTERM left a checkpoint (" << whole_s << " s uninterrupted)";
}

TEST_F(CheckpointRunTest, BadIntervalsAndOtherOptimizersAreRefusedByName) {
  std::vector<std::string> negative = args("never", "-1");
  gac::test::expect_clear_error(run_gac(negative), "exec.checkpoint_seconds: must be >= 0");
  std::vector<std::string> guess = args("never", "5");
  guess.insert(guess.end(), {"--set", "optimizer.kind=guess"});
  gac::test::expect_clear_error(run_gac(guess), "exec.checkpoint_seconds: does not apply to optimizer.kind = \"guess\"");
  EXPECT_FALSE(fs::exists(dir_ / "never"));
}
