// gac on a real SLURM: a one-node cluster on localhost (tests/slurm_cluster.sh,
// Debian's slurm-wlm and munge, started as root for each test process and
// stopped by its PIDs). Job arrays from `gac slurm --submit` must merge to
// exactly what their tasks give when run one after another without SLURM,
// also after tasks are preempted and requeued; bad input is one clear line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include "gac/store.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace gac;
using gac::test::fingerprint;
using gac::test::slurp;

namespace {

using Shell = gac::test::Result;

// Runs a bash command line; stdout and stderr apart.
Shell sh(const std::string& command) {
  static int calls = 0;
  const fs::path err = fs::temp_directory_path() / ("gac_slurm_err_" + std::to_string(getpid()) + "_" + std::to_string(++calls));
  Shell r;
  FILE* pipe = popen(("bash -c '" + std::regex_replace(command, std::regex("'"), "'\\''") + "' 2>" + err.string()).c_str(), "r");
  char buf[4096];
  for (size_t n; pipe && (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = pipe ? pclose(pipe) : -1;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = slurp(err);
  fs::remove(err);
  return r;
}

std::string gac_binary() { return GAC_BINARY; }
std::string source(const std::string& path) { return std::string(GAC_SOURCE_DIR) + "/" + path; }

bool have_slurm() {
  return geteuid() == 0 && sh("command -v munged slurmctld slurmd sbatch scontrol squeue scancel").status == 0;
}

class SlurmTest : public gac::test::RunDirTest {
 protected:
  static void SetUpTestSuite() {
    if (!have_slurm()) return;
    cluster_ = fs::temp_directory_path() / ("gac_slurm_cluster_" + std::to_string(getpid()));
    const Shell r = sh(source("tests/slurm_cluster.sh") + " start " + cluster_.string());
    if (r.status != 0) {
      std::cerr << "could not start the SLURM cluster:\n" << r.out << r.err;
      cluster_.clear();
      return;
    }
    setenv("SLURM_CONF", (cluster_ / "slurm.conf").c_str(), 1);
  }
  static void TearDownTestSuite() {
    if (!cluster_.empty()) sh(source("tests/slurm_cluster.sh") + " stop " + cluster_.string());
  }

  void SetUp() override {
    if (!have_slurm()) GTEST_SKIP() << "needs root and Debian's slurm-wlm and munge (scripts/install-deps)";
    ASSERT_FALSE(cluster_.empty()) << "the SLURM cluster did not start";
    RunDirTest::SetUp();
  }

  // `gac slurm ... --submit`: the ids it prints.
  std::vector<std::string> submit(const std::string& args) {
    const Shell r = sh(gac_binary() + " slurm " + args + " --submit");
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    std::vector<std::string> ids;
    const std::regex id(R"((job array|merge job) (\d+))");
    for (std::sregex_iterator it(r.out.begin(), r.out.end(), id), end; it != end; ++it) ids.push_back((*it)[2]);
    EXPECT_FALSE(ids.empty()) << r.out;
    return ids;
  }

  // Job (or array task) states, e.g. "RUNNING"; "" once SLURM has none left.
  static std::string job_states(const std::string& job) { return sh("squeue -h -o %T -j " + job).out; }

  // Waits up to `seconds` for `done`; on timeout fails with the queue and the logs.
  void wait_until(const std::function<bool()>& done, const std::string& what, const fs::path& run, double seconds = 300) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        FAIL() << "timed out waiting for " << what << "\nsqueue:\n"
               << sh("squeue").out << "logs:\n"
               << sh("tail -n 30 " + (run / "slurm/logs").string() + "/* " + (cluster_ / "log").string() + "/*").out;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  void wait_for_jobs(const std::vector<std::string>& ids, const fs::path& run) {
    for (const std::string& id : ids)
      wait_until([&] { return job_states(id).empty(); }, "job " + id + " to end", run);
  }

  // The same tasks without SLURM, one after another, then merged.
  void run_tasks_one_after_another(const std::string& config, int tasks, const fs::path& run) {
    for (int t = 0; t < tasks; ++t) {
      const Shell r = sh(gac_binary() + " run " + config + " --shard " + std::to_string(t) + "/" + std::to_string(tasks) +
                         " -o " + (run / "shards" / std::to_string(t)).string() + " -q");
      ASSERT_EQ(r.status, 0) << r.err;
    }
    const Shell merged = sh(gac_binary() + " merge " + run.string());
    ASSERT_EQ(merged.status, 0) << merged.err;
  }

  static fs::path cluster_;
};

fs::path SlurmTest::cluster_;

uint64_t draws_of(const fs::path& run) {
  if (!fs::exists(run / "ledger.sqlite")) return 0;
  uint64_t draws = 0;
  for (const StreamState& st : Store::open_existing(run)->states()) draws += st.draws;
  return draws;
}

}  // namespace

TEST_F(SlurmTest, QuickstartArrayOfFourTasksMergesToWhatItsTasksGiveOneAfterAnother) {
  const fs::path run = dir_ / "quickstart";
  // As if the cluster's MaxArraySize were 3: two arrays (tasks 0-2, then 3), and the merge job after both.
  const std::vector<std::string> ids = submit(source("configs/quickstart.toml") + " -o " + run.string() +
                                              " --tasks 4 --max-array-size 3 --merge-job");
  ASSERT_EQ(ids.size(), 3u);
  wait_for_jobs(ids, run);
  ASSERT_TRUE(fs::exists(run / "ledger.sqlite")) << "the merge job did not merge:\n" << sh("cat " + run.string() + "/slurm/logs/*").out;
  const std::string before = fingerprint(run);
  ASSERT_EQ(sh(gac_binary() + " merge " + run.string()).status, 0);  // merging again changes nothing
  EXPECT_EQ(fingerprint(run), before);

  const fs::path local = dir_ / "local";
  run_tasks_one_after_another(source("configs/quickstart.toml"), 4, local);
  EXPECT_EQ(fingerprint(run), fingerprint(local));
  EXPECT_EQ(Store::open_existing(run)->models().size(), 4u * 3u * 2u * 50u);
  const Shell verify = sh(gac_binary() + " verify " + run.string());
  EXPECT_EQ(verify.status, 0) << verify.out;
  const Shell report = sh(gac_binary() + " report " + run.string());
  EXPECT_NE(report.out.find("4 done"), std::string::npos) << report.out;
}

TEST_F(SlurmTest, SmallLeNetArrayMergesToWhatItsTasksGiveOneAfterAnother) {
  if (!fs::exists(kFashionDir)) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const fs::path cfg = fashion_lenet_config("lenet.toml", "n = [2, 3]\nrepeats = 2\nbins = [0.0, 0.69]\ntarget = 3\n");
  const fs::path run = dir_ / "lenet";
  wait_for_jobs(submit(cfg.string() + " -o " + run.string() + " --tasks 3 --cpus-per-task 1"), run);
  ASSERT_EQ(sh(gac_binary() + " merge " + run.string()).status, 0) << sh(gac_binary() + " merge " + run.string()).err;
  const fs::path local = dir_ / "local";
  run_tasks_one_after_another(cfg.string(), 3, local);
  EXPECT_EQ(fingerprint(run), fingerprint(local));
  EXPECT_EQ(Store::open_existing(run)->models().size(), 2u * 2u * 3u);
  // One thread per task, as SLURM_CPUS_PER_TASK says.
  EXPECT_NE(sh("cat " + run.string() + "/slurm/logs/*.err").out.find("cpu (1 threads"), std::string::npos);
}

TEST_F(SlurmTest, TaskPreemptedTwiceResumesToAnUninterruptedResult) {
  // Task 0 holds one stream that runs to its budget (bin 0 never fills).
  const fs::path cfg = write_config("long.toml", R"(
[data]
kind = "kink"
[run]
n = [16]
repeats = 2
bins = [0.5, 0.6, 0.69]
target = 30
max_draws = 200_000_000
)");
  const fs::path run = dir_ / "preempted";
  const std::vector<std::string> ids = submit(cfg.string() + " -o " + run.string() + " --tasks 2 --cpus-per-task 1");
  ASSERT_EQ(ids.size(), 1u);
  const std::string task0 = ids[0] + "_0";
  const fs::path shard0 = run / "shards" / "0";

  // Preempts task 0 once it has committed more than `after` draws (so its
  // new run is under way), then starts it again at once.
  uint64_t draws = 0;  // what the stopped task committed
  auto preempt = [&](const std::string& how, uint64_t after) {
    wait_until([&] { return job_states(task0).empty() || (job_states(task0) == "RUNNING\n" && draws_of(shard0) > after); },
               "task 0 to make progress", run);
    ASSERT_FALSE(job_states(task0).empty()) << "task 0 ended before it was preempted:\n"
                                             << sh("cat " + run.string() + "/slurm/logs/*_0.*").out;
    EXPECT_EQ(sh(how).status, 0) << how;
    wait_until([&] { return job_states(task0) == "PENDING\n"; }, "task 0 to be requeued (" + how + ")", run, 120);
    draws = draws_of(shard0);
    EXPECT_LT(draws, 200'000'000u) << "task 0 finished before it was preempted";
    // Skips SLURM's requeue delay, once slurmd no longer takes the new start
    // for the killed one (credentials revoked in the same second).
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(sh("scontrol update JobId=" + task0 + " StartTime=now").status, 0);
  };
  preempt("scontrol requeue " + task0, 0);
  preempt("scancel --signal=USR1 --batch " + task0, draws);  // the time limit's warning: the task requeues itself
  wait_for_jobs(ids, run);

  const std::string log = sh("cat " + run.string() + "/slurm/logs/*_0.out").out;
  EXPECT_NE(log.find("restart 2"), std::string::npos) << log;
  EXPECT_NE(log.find("exited with 75"), std::string::npos) << log;
  EXPECT_NE(log.find("requeueing task 0"), std::string::npos) << log;
  const Shell merged = sh(gac_binary() + " merge " + run.string());
  ASSERT_EQ(merged.status, 0) << merged.err;

  // The uninterrupted run: task 0 without SLURM, with task 1 as SLURM ran it.
  const fs::path reference = dir_ / "reference";
  fs::create_directories(reference / "shards");
  fs::copy(run / "shards" / "1", reference / "shards" / "1", fs::copy_options::recursive);
  ASSERT_EQ(sh(gac_binary() + " run " + cfg.string() + " --shard 0/2 -o " + (reference / "shards" / "0").string() + " -q").status, 0);
  ASSERT_EQ(sh(gac_binary() + " merge " + reference.string()).status, 0);
  EXPECT_EQ(fingerprint(run), fingerprint(reference));
}

TEST_F(SlurmTest, SearchTaskPreemptedMidSearchResumesToWhatItsTasksGiveOneAfterAnother) {
  // Greedy random search, saved after every call (~5 s a task): task 0 is requeued while a
  // search is under way (again if it stopped between two searches).
  const fs::path cfg = write_config("greedy.toml", R"(
[data]
kind = "kink"
[model]
arch = "mlp"
hidden = 6
[prior]
kind = "uniform"
[optimizer]
kind = "greedy"
budget = 400000
max_calls = 400
check_every = 5
[run]
seed = 3
n = 32
repeats = 4
bins = [0, 10]
target = 80
loss = "raw"
[exec]
checkpoint_seconds = 0
)");
  const fs::path run = dir_ / "greedy";
  const std::vector<std::string> ids = submit(cfg.string() + " -o " + run.string() + " --tasks 2 --cpus-per-task 1");
  ASSERT_EQ(ids.size(), 1u);
  const std::string task0 = ids[0] + "_0";
  const fs::path shard0 = run / "shards" / "0";
  auto saved_searches = [&] {
    return fs::exists(shard0 / "ledger.sqlite") ? Store::open_existing(shard0)->checkpointed_draws().size() : 0;
  };
  bool saved = false;
  int preemptions = 0;
  for (; preemptions < 3 && !saved; ++preemptions) {
    const uint64_t before = draws_of(shard0);
    wait_until([&] { return job_states(task0).empty() || (job_states(task0) == "RUNNING\n" && draws_of(shard0) > before); },
               "task 0 to make progress", run);
    ASSERT_FALSE(job_states(task0).empty()) << "task 0 ended before it was preempted:\n"
                                             << sh("cat " + run.string() + "/slurm/logs/*_0.*").out;
    EXPECT_EQ(sh("scontrol requeue " + task0).status, 0);
    wait_until([&] { return job_states(task0) == "PENDING\n"; }, "task 0 to be requeued", run, 120);
    saved = saved_searches() > 0;
    std::this_thread::sleep_for(std::chrono::seconds(2));  // as in TaskPreemptedTwice...
    EXPECT_EQ(sh("scontrol update JobId=" + task0 + " StartTime=now").status, 0);
  }
  EXPECT_TRUE(saved) << "task 0 never stopped inside a search";
  std::cerr << preemptions << " preemption(s) of task 0\n";
  wait_for_jobs(ids, run);
  EXPECT_NE(sh("cat " + run.string() + "/slurm/logs/*_0.out").out.find("exited with 75"), std::string::npos);
  const Shell merged = sh(gac_binary() + " merge " + run.string());
  ASSERT_EQ(merged.status, 0) << merged.err;
  EXPECT_EQ(saved_searches(), 0u);  // a finished task keeps none

  const fs::path local = dir_ / "local";
  run_tasks_one_after_another(cfg.string(), 2, local);
  EXPECT_EQ(fingerprint(run), fingerprint(local));
  const Shell verify = sh(gac_binary() + " verify " + run.string() + " --limit 20");
  EXPECT_EQ(verify.status, 0) << verify.out << verify.err;
}

TEST_F(SlurmTest, BadTasksMissingSbatchAndSbatchErrorsAreOneClearLine) {
  const std::string quickstart = source("configs/quickstart.toml");
  const std::string out = " -o " + (dir_ / "run").string();
  gac::test::expect_clear_error(sh(gac_binary() + " slurm " + quickstart + out + " --tasks 0"), "--tasks");
  gac::test::expect_clear_error(sh(gac_binary() + " slurm " + quickstart + out + " --tasks four"), "--tasks");
  gac::test::expect_clear_error(sh("PATH=/nonexistent " + gac_binary() + " slurm " + quickstart + out + " --tasks 2 --submit"),
                  "sbatch is not on PATH");
  EXPECT_TRUE(fs::exists(dir_ / "run" / "slurm" / "gac.sbatch")) << "the script is written even without sbatch";
  gac::test::expect_clear_error(sh(gac_binary() + " slurm " + quickstart + out + " --tasks 2 --partition nosuch --submit"), "sbatch failed");
  gac::test::expect_clear_error(sh(gac_binary() + " slurm " + quickstart + out + " --tasks 3"), "run.shards is 2 there, 3 here");
  EXPECT_EQ(sh("squeue -h").out, "") << "nothing was submitted";
}
