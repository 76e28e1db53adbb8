// How a run splits into units and tasks (include/gac/shards.h), which config
// changes a run directory may take, and the SLURM files `gac slurm` writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "gac/config.h"
#include "gac/shards.h"
#include "gac/slurm.h"
#include "test_util.h"

using namespace gac;
namespace fs = std::filesystem;
using gac::test::slurp;

namespace {

// Table 2's shape: 5 sizes n x 5 repeats, 7 bins, 10 models per bin.
RunConfig table2(int tasks) {
  RunConfig c;
  c.ns = {2, 4, 8, 16, 32};
  c.repeats = 5;
  c.bins = {0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65};
  c.target = 10;
  c.max_draws = 1'000'000'000;
  c.tasks = tasks;
  return c;
}

}  // namespace

TEST(ShardPlan, OneTaskRunsEveryStreamWhole) {
  const std::vector<Unit> units = all_units(table2(1));
  ASSERT_EQ(units.size(), 25u);
  for (const Unit& u : units) {
    EXPECT_EQ(u.shard, 0);
    EXPECT_EQ(u.task, 0);
    EXPECT_EQ(u.target, 10);
    EXPECT_EQ(u.max_draws, 1'000'000'000u);
  }
}

TEST(ShardPlan, TasksUpToTheStreamCountTakeWholeStreams) {
  // With K <= 25 streams a split run is the unsplit run dealt out.
  std::map<int, int> per_task;
  for (const Unit& u : all_units(table2(4))) {
    EXPECT_EQ(u.shard, 0);
    EXPECT_EQ(u.target, 10);
    ++per_task[u.task];
  }
  EXPECT_EQ(per_task, (std::map<int, int>{{0, 7}, {1, 6}, {2, 6}, {3, 6}}));
}

TEST(ShardPlan, ManyTasksSplitEachStreamAndStayBusy) {
  for (int tasks : {26, 64, 100, 256}) {
    const RunConfig cfg = table2(tasks);
    const std::vector<Unit> units = all_units(cfg);
    const int S = shards_per_stream(cfg);
    EXPECT_EQ(units.size(), 25u * S) << tasks;
    std::set<int> busy;
    std::map<std::pair<int, int>, std::pair<int, uint64_t>> per_stream;  // (n, repeat) -> target, draws
    std::set<std::tuple<int, int, int>> keys;
    for (const Unit& u : units) {
      busy.insert(u.task);
      EXPECT_GE(u.target, 1) << tasks;
      per_stream[{u.n, u.repeat}].first += u.target;
      per_stream[{u.n, u.repeat}].second += u.max_draws;
      EXPECT_TRUE(keys.insert({u.n, u.repeat, u.shard}).second) << "two units share a stream key";
    }
    for (const auto& [stream, sums] : per_stream) {
      EXPECT_EQ(sums.first, 10) << tasks;  // the shards' targets add up to the stream's
      EXPECT_EQ(sums.second, 1'000'000'000u) << tasks;
    }
    // Every task has work, up to one unit per model wanted (10 x 25 = 250).
    EXPECT_EQ(static_cast<int>(busy.size()), std::min(tasks, 250)) << tasks;
  }
  EXPECT_EQ(shards_per_stream(table2(64)), 3);
  EXPECT_EQ(shards_per_stream(table2(256)), 10);  // at most the target: a shard holds at least one model per bin
}

TEST(ShardPlan, TaskUnitsAreTheTasksShareOfAllUnits) {
  RunConfig cfg = table2(8);
  size_t total = 0;
  for (int t = 0; t < 8; ++t) {
    cfg.task = t;
    for (const Unit& u : task_units(cfg)) EXPECT_EQ(u.task, t);
    total += task_units(cfg).size();
  }
  cfg.task = -1;
  EXPECT_EQ(total, task_units(cfg).size());
}

TEST(RunIdentity, DifferencesAreNamedByKey) {
  RunConfig a = table2(1), b = a;
  EXPECT_EQ(identity_difference(a, b), "");
  b.seed = 7;
  EXPECT_EQ(identity_difference(a, b), "run.seed is 0 there, 7 here");
  b = a;
  b.max_draws = 5;  // a stopping rule, not the run's identity
  b.order = "sequential";
  EXPECT_EQ(identity_difference(a, b), "");
}

TEST(RunIdentity, ARunMayGrowItsTargetRepeatsAndSizes) {
  const RunConfig stored = table2(1);
  RunConfig grown = stored;
  grown.target = 20;
  grown.repeats = 8;
  grown.ns = {2, 4, 8, 16, 32, 64};
  EXPECT_EQ(extension_problem(stored, grown), "");
  EXPECT_NE(extension_problem(grown, stored).find("run.target is 20 there, 10 here"), std::string::npos);
  RunConfig fewer = stored;
  fewer.repeats = 4;
  EXPECT_NE(extension_problem(stored, fewer).find("never drop"), std::string::npos);
  fewer = stored;
  fewer.ns = {2, 4, 8, 16, 64};
  EXPECT_NE(extension_problem(stored, fewer).find("run.n holds 32 there but not here"), std::string::npos);
  RunConfig other = grown;
  other.model.hidden = 3;
  other.model.arch = Arch::mlp;
  EXPECT_NE(extension_problem(stored, other), "");
}

TEST(RunIdentity, ASplitRunMayOnlyGrowItsTargetKeepingItsShards) {
  RunConfig stored = table2(8);
  stored.task = 3;
  RunConfig grown = stored;
  grown.target = 30;
  EXPECT_EQ(extension_problem(stored, grown), "");
  grown.repeats = 6;
  EXPECT_NE(extension_problem(stored, grown).find("only run.target may grow"), std::string::npos);
  // 64 tasks: 3 shards per stream with target 10, but 2 with target 2.
  RunConfig many = table2(64);
  RunConfig smaller_split = many;
  many.target = 2;
  EXPECT_EQ(shards_per_stream(many), 2);
  EXPECT_NE(extension_problem(many, smaller_split).find("splits each stream into 3 shards"), std::string::npos);
  RunConfig other_task = stored;
  other_task.task = 4;
  EXPECT_EQ(extension_problem(stored, other_task), "run.shard is 3 there, 4 here");
}

TEST(RunIdentity, ShardKeysParseAndCheck) {
  const RunConfig c = parse_config("[run]\nshards = 4\nshard = 2\n", "t");
  EXPECT_EQ(c.task, 2);
  EXPECT_EQ(c.tasks, 4);
  EXPECT_EQ(parse_config("[run]\nshards = 4\nshard = \"all\"\n", "t").task, -1);
  EXPECT_ERROR_MENTIONS(parse_config("[run]\nshards = 4\nshard = 4\n", "t"), "run.shard: task 4 does not exist");
  EXPECT_ERROR_MENTIONS(parse_config("[run]\nshard = 1\n", "t"), "run.shards = 1");
  EXPECT_ERROR_MENTIONS(parse_config("[exec]\norder = \"random\"\n", "t"), "exec.order");
  // The identity names the task; a whole (or merged) split run says "all".
  const std::string all = identity_toml(parse_config("[run]\nshards = 4\n", "t"));
  EXPECT_NE(all.find("shard = \"all\""), std::string::npos) << all;
  EXPECT_EQ(identity_toml(parse_config(identity_toml(c), "t")), identity_toml(c));
}

class SlurmFilesTest : public gac::test::RunDirTest {
 protected:
  void SetUp() override {
    RunDirTest::SetUp();
    options_.dir = dir_ / "run";
    options_.tasks = 4;
    options_.job_name = "gac-test";
    options_.gac = GAC_BINARY;
  }

  SlurmOptions options_;
  RunConfig cfg_;
};

TEST_F(SlurmFilesTest, ScriptHasTheArrayRequeueSignalAndPassedOptions) {
  options_.throttle = 2;
  options_.partition = "gpu";
  options_.gpus_per_task = "1";
  options_.cpus_per_task = 8;
  options_.sbatch_lines = {"--exclusive", "#SBATCH --mail-type=END"};
  const SlurmFiles files = write_slurm_files(cfg_, options_);
  const std::string script = slurp(files.script);
  for (const char* line : {"#SBATCH --array=0-3%2\n", "#SBATCH --requeue\n", "#SBATCH --signal=B:USR1@120\n",
                           "#SBATCH --open-mode=append\n", "#SBATCH --partition=gpu\n", "#SBATCH --gpus-per-task=1\n",
                           "#SBATCH --cpus-per-task=8\n", "#SBATCH --exclusive\n", "#SBATCH --mail-type=END\n",
                           "/slurm/logs/%A_%a.out\n", "/slurm/logs/%A_%a.err\n", "--shard \"$task/$tasks\"",
                           "scontrol requeue"})
    EXPECT_NE(script.find(line), std::string::npos) << line << "\n" << script;
  EXPECT_EQ(system(("bash -n " + files.script.string()).c_str()), 0) << "the script is not valid bash";
  EXPECT_TRUE(fs::is_directory(options_.dir / "slurm" / "logs"));
  // The tasks run the split run's config.
  const RunConfig written = load_config(files.config);
  EXPECT_EQ(written.tasks, 4);
  EXPECT_EQ(written.task, -1);
  ASSERT_EQ(files.sbatch_commands.size(), 1u);
}

TEST_F(SlurmFilesTest, MoreTasksThanMaxArraySizeAreSubmittedInChunks) {
  options_.tasks = 2500;
  options_.max_array_size = 1000;
  options_.throttle = 50;
  const SlurmFiles files = write_slurm_files(cfg_, options_);
  ASSERT_EQ(files.sbatch_commands.size(), 3u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"--array=0-999%50", "--export=ALL,GAC_TASK_OFFSET=0"},
      {"--array=0-999%50", "--export=ALL,GAC_TASK_OFFSET=1000"},
      {"--array=0-499%50", "--export=ALL,GAC_TASK_OFFSET=2000"}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& c = files.sbatch_commands[i];
    EXPECT_NE(std::find(c.begin(), c.end(), expected[i].first), c.end()) << i;
    EXPECT_NE(std::find(c.begin(), c.end(), expected[i].second), c.end()) << i;
  }
  const std::string submit = slurp(files.submit);
  EXPECT_NE(submit.find("GAC_TASK_OFFSET=2000"), std::string::npos) << submit;
}

TEST_F(SlurmFilesTest, RefusesADirectoryOfAnotherRunOrSplit) {
  write_slurm_files(cfg_, options_);
  write_slurm_files(cfg_, options_);  // the same again: fine
  options_.tasks = 5;
  EXPECT_ERROR_MENTIONS(write_slurm_files(cfg_, options_), "run.shards is 4 there, 5 here");
  options_.tasks = 4;
  RunConfig other = cfg_;
  other.seed = 9;
  EXPECT_ERROR_MENTIONS(write_slurm_files(other, options_), "run.seed is 0 there, 9 here");
  std::ofstream(options_.dir / "notes.txt") << "mine";
  EXPECT_ERROR_MENTIONS(write_slurm_files(cfg_, options_), "not a gac run directory");
  options_.dir = dir_ / "with space";
  EXPECT_ERROR_MENTIONS(write_slurm_files(cfg_, options_), "#SBATCH");
}

TEST_F(SlurmFilesTest, SbatchValuesStayOneWordOnOneLineAndTimeLimitsAreSlurms) {
  // A newline in a value would end the #SBATCH comment and run the rest as a command of the script.
  const auto refused = [&](SlurmOptions o, const std::string& needle) {
    EXPECT_ERROR_MENTIONS(write_slurm_files(cfg_, o), needle);
    EXPECT_FALSE(fs::exists(options_.dir)) << "nothing is written for " << needle;
  };
  SlurmOptions o = options_;
  o.partition = "gpu\ntouch /tmp/gac-injected";
  refused(o, "--partition: 'gpu\ntouch /tmp/gac-injected' holds a control character");
  o = options_;
  o.job_name = "my job";
  refused(o, "--job-name: 'my job' holds a blank or a quote");
  o = options_;
  o.sbatch_lines = {"--mail-type=END\nrm -rf ~"};
  refused(o, "--sbatch: '--mail-type=END\nrm -rf ~' holds a control character");
  for (const char* bad : {"abc", "1-", "1:", "1:2:3:4", "-5", "1-2-3", "1.5", ""}) {
    o = options_;
    o.time = bad;
    if (*bad) refused(o, std::string("--time: '") + bad + "' is not a SLURM time limit");
  }
  for (const char* good : {"30", "30:00", "2:30:00", "1-12", "1-12:30", "1-12:30:00", "UNLIMITED"}) {
    o = options_;
    o.time = good;
    const SlurmFiles files = write_slurm_files(cfg_, o);
    EXPECT_NE(slurp(files.script).find(std::string("#SBATCH --time=") + good + "\n"), std::string::npos) << good;
    fs::remove_all(options_.dir);
  }
  o = options_;
  o.sbatch_lines = {"#SBATCH --mail-user=a@b.c --mail-type=END"};  // a raw line may hold blanks
  EXPECT_NE(slurp(write_slurm_files(cfg_, o).script).find("#SBATCH --mail-user=a@b.c --mail-type=END\n"), std::string::npos);
}
