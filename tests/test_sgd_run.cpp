// Whole SGD runs ([optimizer] kind = "sgd") through the gac binary: what is
// stored is what the trainer gives, independent of batch, threads, kills,
// signals and splits; verify re-trains and catches tampering; repair re-trains
// a missing weights file; bad optimizer keys are one clear error each;
// `report --versus` sets a guess-and-check run beside an SGD run.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "gac/experiment.h"
#include "gac/npy.h"
#include "gac/sgd.h"
#include "gac/store.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::count_lines;
using gac::test::expect_clear_error;
using gac::test::expect_killed_and_resumed_equals;
using gac::test::fingerprint;
using gac::test::interrupt_at_random_moments;
using gac::test::Result;
using gac::test::run_gac;
using gac::test::signal_gac;
using gac::test::slurp;

namespace {

class SgdRunTest : public gac::test::RunDirTest {
 protected:
  // The kink MLP over 4 streams, with an [optimizer] section or none.
  static std::string kink_run(const std::string& optimizer) {
    return "[data]\nkind = \"kink\"\n[model]\narch = \"mlp\"\nhidden = 10\n" + optimizer +
           "[run]\nseed = 3\nn = [4, 8]\nrepeats = 2\nbins = [0.66, 0.67, 0.68, 0.69]\ntarget = 10\n";
  }
  // Trained by SGD (the paper's Figure 2 settings, fewer epochs): fills in about a second on 2 cores.
  fs::path sgd_config(const std::string& extra = "") {
    return write_config("sgd.toml",
                        kink_run("[optimizer]\nkind = \"sgd\"\nlr = 0.1\nbatch_size = 3\nepochs = 20\n") + extra);
  }
  fs::path guess_config() { return write_config("guess.toml", kink_run("")); }

  static std::vector<std::string> run_args(const fs::path& cfg, const fs::path& out, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"run", cfg.string(), "-o", out.string(), "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  Result run(const fs::path& cfg, const std::string& out, const std::vector<std::string>& extra = {}) {
    return run_gac(run_args(cfg, dir_ / out, extra));
  }

  // One thread, small calls and a larger target: slow enough to be stopped
  // mid-run. Runs it uninterrupted into DIR/whole and returns its seconds;
  // *args runs it into DIR/<out>.
  double slow_run(const std::string& out, std::vector<std::string>* args) {
    const std::vector<std::string> slow = {"--threads", "1", "--set", "exec.batch=64", "--set", "run.target=40"};
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(run(sgd_config(), "whole", slow).status, 0);
    *args = run_args(sgd_config(), dir_ / out, slow);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

std::vector<float> weights_of(const fs::path& file) {
  const NpyArray a = read_npy(file);
  return std::vector<float>(a.data.begin(), a.data.end());
}

}  // namespace

// Each stream, trained afresh over the draws it checked, gives exactly the
// stored models: per bin the first `target` hits in (draw, bin) order, with
// their parameters, loss and test scores, and the stream ends at the draw
// that filled its last bin.
TEST_F(SgdRunTest, StoresWhatItsTrainerSays) {
  ASSERT_EQ(run(sgd_config(), "a").status, 0);
  const auto store = Store::open_existing(dir_ / "a");
  EXPECT_EQ(store->meta().optimizer, "sgd");
  const Experiment ex = prepare_experiment(parse_config(store->config_toml(), "config.toml"));
  std::map<std::tuple<int, int, uint64_t, int>, StoredModel> stored;
  for (const StoredModel& m : store->models()) stored[{m.n, m.repeat, m.draw, m.bin}] = m;
  EXPECT_EQ(stored.size(), 2u * 2u * 3u * 10u);

  size_t matched = 0;
  for (const StreamState& st : store->states()) {
    SCOPED_TRACE("n=" + std::to_string(st.n) + " repeat " + std::to_string(st.repeat));
    EXPECT_EQ(st.status, "filled");
    SgdTrainer trainer(1);
    trainer.begin_stream(stream_task(ex, st.n, st.repeat, st.shard), ex.cfg.sgd);
    std::vector<SgdHit> hits;
    trainer.train(0, st.draws, hits);
    std::vector<int> per_bin(3, 0);
    std::vector<uint64_t> all(3, 0);
    std::vector<SgdHit> kept;
    uint64_t draws_with_a_model = 0, filled_at = 0;
    for (size_t i = 0; i < hits.size(); ++i) {
      draws_with_a_model += i == 0 || hits[i - 1].draw != hits[i].draw;
      ++all[hits[i].bin];
      if (per_bin[hits[i].bin]++ < 10) kept.push_back(hits[i]);
      if (filled_at == 0 && *std::min_element(per_bin.begin(), per_bin.end()) >= 10) filled_at = hits[i].draw + 1;
    }
    EXPECT_EQ(filled_at, st.draws);  // the last draw checked is the one that filled the last bin
    EXPECT_EQ(st.hits, all);
    EXPECT_EQ(st.perfect, draws_with_a_model);
    const std::vector<TestScore> scores = trainer.score_test(kept);
    for (size_t i = 0; i < kept.size(); ++i) {
      const auto it = stored.find({st.n, st.repeat, kept[i].draw, kept[i].bin});
      ASSERT_NE(it, stored.end()) << "draw " << kept[i].draw << " bin " << kept[i].bin << " not stored";
      const StoredModel& m = it->second;
      EXPECT_EQ(static_cast<float>(m.train_loss), kept[i].loss);
      EXPECT_EQ(m.test_acc, scores[i].accuracy);
      EXPECT_EQ(m.test_loss, scores[i].loss);
      EXPECT_EQ(m.file, "weights/n" + std::to_string(st.n) + "_r" + std::to_string(st.repeat) + "_s0_d" +
                            std::to_string(kept[i].draw) + "_b" + std::to_string(kept[i].bin) + ".npy");
      EXPECT_EQ(weights_of(dir_ / "a" / m.file), kept[i].params);
      ++matched;
    }
  }
  EXPECT_EQ(matched, stored.size());
}

TEST_F(SgdRunTest, ResultsDoNotDependOnBatchOrThreads) {
  const fs::path cfg = sgd_config();
  ASSERT_EQ(run(cfg, "a").status, 0);
  ASSERT_EQ(run(cfg, "b", {"--threads", "1", "--set", "exec.batch=7"}).status, 0);
  ASSERT_EQ(run(cfg, "c", {"--threads", "2", "--set", "exec.batch=3"}).status, 0);
  ASSERT_EQ(run(cfg, "d", {"--threads", "3", "--set", "exec.batch=100"}).status, 0);
  const std::string a = fingerprint(dir_ / "a");
  EXPECT_EQ(fingerprint(dir_ / "b"), a);
  EXPECT_EQ(fingerprint(dir_ / "c"), a);
  EXPECT_EQ(fingerprint(dir_ / "d"), a);
}

TEST_F(SgdRunTest, SigkillAtRandomMomentsThenResumeEqualsAnUninterruptedRun) {
  std::vector<std::string> args;
  const double whole_s = slow_run("killed", &args);
  expect_killed_and_resumed_equals(dir_ / "whole", args, dir_ / "killed", whole_s, 5);
}

TEST_F(SgdRunTest, SigtermStopsPromptlyAndARerunCompletesIdentically) {
  std::vector<std::string> args;
  const double whole_s = slow_run("stopped", &args);
  const int stops = interrupt_at_random_moments(
      dir_ / "stopped", whole_s, 1,
      [&](double delay) {
        const auto [r, exit_s] = signal_gac(args, delay, SIGTERM);
        if (r.status == 0) return false;  // finished first
        std::cerr << "exited " << exit_s << " s after SIGTERM\n";
        EXPECT_EQ(r.status, 75) << r.err;
        EXPECT_NE(r.err.find("stopped by SIGTERM"), std::string::npos) << r.err;
        EXPECT_LT(exit_s, 5.0);
        return true;
      },
      0.3, 0.3);
  EXPECT_EQ(stops, 1) << "the run always finished before the signal";
  ASSERT_EQ(run_gac(args).status, 0);
  EXPECT_EQ(fingerprint(dir_ / "whole"), fingerprint(dir_ / "stopped"));
}

TEST_F(SgdRunTest, VerifyRetrainsEveryModelAndCatchesATamperedWeightsFile) {
  ASSERT_EQ(run(sgd_config(), "a").status, 0);
  const Result ok = run_gac({"verify", (dir_ / "a").string()});
  EXPECT_EQ(ok.status, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("verified 120 models"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("all match"), std::string::npos) << ok.out;

  // One float one ulp off: the file no longer equals the re-trained draw.
  const StoredModel m = Store::open_existing(dir_ / "a")->models().at(5);
  std::vector<float> w = weights_of(dir_ / "a" / m.file);
  w[3] = std::nextafter(w[3], 10.0f);
  write_file_atomic(dir_ / "a" / m.file, npy_bytes_f32(w.data(), {static_cast<int64_t>(w.size())}));
  const Result bad = run_gac({"verify", (dir_ / "a").string()});
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("MISMATCH " + m.file), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("differs from the re-trained draw"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("1 mismatches"), std::string::npos) << bad.out;
}

TEST_F(SgdRunTest, RunRegeneratesADeletedWeightsFileBitForBitByRetraining) {
  ASSERT_EQ(run(sgd_config(), "a").status, 0);
  const std::vector<StoredModel> models = Store::open_existing(dir_ / "a")->models();
  const std::string before = fingerprint(dir_ / "a");
  for (size_t i : {size_t{2}, models.size() - 1}) fs::remove(dir_ / "a" / models[i].file);
  const Result v = run_gac({"verify", (dir_ / "a").string()});
  EXPECT_EQ(v.status, 1);
  EXPECT_NE(v.out.find("PROBLEM missing weights file " + models[2].file), std::string::npos) << v.out;
  const Result r = run(sgd_config(), "a");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("regenerated 2 missing weights files by re-training their draws"), std::string::npos) << r.err;
  EXPECT_EQ(fingerprint(dir_ / "a"), before);  // fingerprint hashes every weights file's bytes
}

TEST_F(SgdRunTest, SplitRunMergedEqualsTheUnsplitRun) {
  const fs::path cfg = sgd_config();
  ASSERT_EQ(run(cfg, "whole").status, 0);
  for (int t = 0; t < 3; ++t)
    ASSERT_EQ(run(cfg, "split/shards/" + std::to_string(t), {"--shard", std::to_string(t) + "/3"}).status, 0);
  const Result merged = run_gac({"merge", (dir_ / "split").string()});
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(fingerprint(dir_ / "split"), fingerprint(dir_ / "whole"));
  EXPECT_EQ(run_gac({"verify", (dir_ / "split").string()}).status, 0);
}

TEST_F(SgdRunTest, BackendCudaStillTrainsOnTheCpuAndSaysSo) {
  const Result r = run(sgd_config(), "a", {"--backend", "cuda"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(count_lines(r.err, "gac: SGD trains on the CPU"), 1u) << r.err;
  EXPECT_NE(r.err.find("; trainer sgd ("), std::string::npos) << r.err;
}

TEST_F(SgdRunTest, InfoAndReportNameTheOptimizer) {
  const Result info = run_gac({"info", sgd_config().string()});
  EXPECT_NE(info.out.find("optimizer: SGD from each draw (lr 0.1, momentum 0, batch 3 (at most n/2), 20 epochs)"),
            std::string::npos)
      << info.out;
  const Result guess = run_gac({"info", guess_config().string()});
  EXPECT_NE(guess.out.find("optimizer: guess and check\n"), std::string::npos) << guess.out;
  ASSERT_EQ(run(sgd_config(), "a").status, 0);
  EXPECT_NE(run_gac({"report", (dir_ / "a").string()}).out.find("trained by SGD from the draws"), std::string::npos);
  const auto doc = nlohmann::json::parse(run_gac({"report", (dir_ / "a").string(), "--json"}).out);
  EXPECT_EQ(doc["meta"]["optimizer"], "sgd");
  EXPECT_NE(slurp(dir_ / "a" / "config.toml").find("[optimizer]\nbatch_size = 3\nepochs = 20\nkind = \"sgd\"\nlr = 0.1\n"),
            std::string::npos);
}

TEST_F(SgdRunTest, BadOptimizerKeysAreOneClearErrorEach) {
  const fs::path guess = guess_config();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"optimizer.kind=adam"}, "optimizer.kind: 'adam' is not one of guess, sgd"},
      {{"optimizer.kind=sgd", "optimizer.lr=0"}, "optimizer.lr: must be positive, got 0"},
      {{"optimizer.kind=sgd", "optimizer.lr=1e-50"}, "optimizer.lr: 1e-50 is not a positive float"},
      {{"optimizer.kind=sgd", "optimizer.lr=fast"}, "optimizer.lr: expected a number, got a string"},
      {{"optimizer.kind=sgd", "optimizer.momentum=1"}, "optimizer.momentum: must be in [0, 1), got 1"},
      {{"optimizer.kind=sgd", "optimizer.batch_size=0"}, "optimizer.batch_size: 0 is out of range"},
      {{"optimizer.kind=sgd", "optimizer.epochs=-1"}, "optimizer.epochs: -1 is out of range"},
      {{"optimizer.kind=sgd", "optimizer.epochs=10000000"}, "optimizer.epochs: 10000000 epochs of up to n = 8"},
      {{"optimizer.lr=0.1"}, "optimizer.lr: does not apply to optimizer.kind = \"guess\" (only to sgd)"},
      {{"optimizer.epochs=3"}, "optimizer.epochs: does not apply to optimizer.kind = \"guess\""},
      {{"optimizer.nesterov=true"}, "unknown key 'optimizer.nesterov'"},
  };
  for (const auto& [sets, message] : cases) {
    std::vector<std::string> args = {"run", guess.string(), "-o", (dir_ / "never").string(), "-q"};
    for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
    SCOPED_TRACE(sets.back());
    expect_clear_error(run_gac(args), message);
  }
  EXPECT_FALSE(fs::exists(dir_ / "never"));
  // In the file: the same checks.
  const fs::path file = write_config("guess_lr.toml", "[optimizer]\nlr = 0.1\n");
  expect_clear_error(run(file, "never"), "optimizer.lr: does not apply to optimizer.kind = \"guess\"");
}

TEST_F(SgdRunTest, AGuessRunAndAnSgdRunOfTheSameCellsSideBySide) {
  ASSERT_EQ(run(guess_config(), "gac").status, 0);
  ASSERT_EQ(run(sgd_config(), "sgd").status, 0);
  const Result table = run_gac({"report", (dir_ / "gac").string(), "--versus", (dir_ / "sgd").string()});
  ASSERT_EQ(table.status, 0) << table.err;
  EXPECT_NE(table.out.find("A = " + (dir_ / "gac").string() + ": guess and check"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("B = " + (dir_ / "sgd").string() + ": SGD from each draw"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("A - B [95% CI]"), std::string::npos) << table.out;

  // The difference is each run's own cell mean, one minus the other.
  const auto ours = nlohmann::json::parse(run_gac({"report", (dir_ / "gac").string(), "--json"}).out)["cells"];
  const auto theirs = nlohmann::json::parse(run_gac({"report", (dir_ / "sgd").string(), "--json"}).out)["cells"];
  const auto both = nlohmann::json::parse(
      run_gac({"report", (dir_ / "gac").string(), "--versus", (dir_ / "sgd").string(), "--json"}).out);
  ASSERT_EQ(both["cells"].size(), 6u);
  EXPECT_EQ(both["versus"]["optimizer"], "sgd");
  for (size_t i = 0; i < 6; ++i) {
    const auto& c = both["cells"][i];
    EXPECT_EQ(c["run"]["test_acc_mean"], ours[i]["test_acc_mean"]);
    EXPECT_EQ(c["versus"]["test_acc_mean"], theirs[i]["test_acc_mean"]);
    EXPECT_NEAR(c["difference"]["test_acc"].get<double>(),
                ours[i]["test_acc_mean"].get<double>() - theirs[i]["test_acc_mean"].get<double>(), 1e-12);
    EXPECT_LT(c["difference"]["ci_lo"].get<double>(), c["difference"]["ci_hi"].get<double>());
  }
  const Result csv = run_gac({"report", (dir_ / "gac").string(), "--versus", (dir_ / "sgd").string(), "--csv"});
  // Header, 6 cells, then the pooled rows: one per n and one over all sizes (the runs share training sets).
  EXPECT_EQ(count_lines(csv.out, ""), 7u + both["pooled"].size());
  EXPECT_EQ(both["pooled"].size(), 3u);

  // Other bins: refused, naming what differs.
  ASSERT_EQ(run(sgd_config(), "bins", {"--set", "run.bins=[0.66, 0.68, 0.69]"}).status, 0);
  expect_clear_error(run_gac({"report", (dir_ / "gac").string(), "--versus", (dir_ / "bins").string()}),
                     "has bin edges [0.66,0.67,0.68,0.69] but " + (dir_ / "bins").string() + " has [0.66,0.68,0.69]");
  // Other sizes: the sizes both have compare, the same as in the whole run.
  ASSERT_EQ(run(sgd_config(), "ns", {"--set", "run.n=[4]"}).status, 0);
  const Result part_json = run_gac({"report", (dir_ / "gac").string(), "--versus", (dir_ / "ns").string(), "--json"});
  ASSERT_EQ(part_json.status, 0) << part_json.err;
  const auto part = nlohmann::json::parse(part_json.out);
  EXPECT_EQ(part["sizes_only_in_run"], nlohmann::json::array({8}));
  EXPECT_EQ(part["sizes_only_in_versus"], nlohmann::json::array());
  ASSERT_EQ(part["cells"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(part["cells"][i]["n"], 4);
    EXPECT_EQ(part["cells"][i]["run"], both["cells"][i]["run"]);
    EXPECT_EQ(part["cells"][i]["versus"]["test_acc_mean"], both["cells"][i]["versus"]["test_acc_mean"]);
  }
  expect_clear_error(run_gac({"report", (dir_ / "gac").string(), "--versus", (dir_ / "nothing").string()}),
                     "not a gac run directory");
}
