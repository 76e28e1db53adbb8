#include "gac/merge.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <tuple>

#include "gac/config.h"
#include "gac/error.h"
#include "host/util/small_file.h"
#include "gac/npy.h"
#include "gac/shards.h"
#include "gac/store.h"

namespace gac {

namespace fs = std::filesystem;

namespace {

// One task's run directory DIR/shards/I, opened read-only.
struct TaskDir {
  int task = 0;
  fs::path dir;
  std::unique_ptr<Store> store;
  RunConfig cfg;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string list(const std::vector<int>& tasks) {
  std::string text;
  for (int t : tasks) text += (text.empty() ? "" : ", ") + std::to_string(t);
  return text;
}

// The started tasks under DIR/shards, ordered by task.
std::vector<TaskDir> open_tasks(const fs::path& shards) {
  std::vector<TaskDir> tasks;
  for (const auto& entry : fs::directory_iterator(shards)) {
    const std::string name = entry.path().filename().string();
    int task = -1;
    const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), task);
    if (err != std::errc() || end != name.data() + name.size() || task < 0)
      throw Error(entry.path().string() + " is not a task directory (expected shards/0, shards/1, ...)");
    if (!fs::exists(entry.path() / "ledger.sqlite")) continue;  // never started: missing
    TaskDir t;
    t.task = task;
    t.dir = entry.path();
    t.store = Store::open_existing(t.dir);
    t.cfg = parse_config(t.store->config_toml(), (t.dir / "config.toml").string());
    if (t.cfg.tasks < 2 || t.cfg.task != task)
      throw Error(t.dir.string() + " holds " +
                  (t.cfg.tasks < 2 ? std::string("a run not split into tasks")
                                    : "task " + std::to_string(t.cfg.task) + " of a split run") +
                  ", not task " + name);
    tasks.push_back(std::move(t));
  }
  std::sort(tasks.begin(), tasks.end(), [](const TaskDir& a, const TaskDir& b) { return a.task < b.task; });
  return tasks;
}

// Every unit of the task filled, or out of its budget.
bool task_finished(const TaskDir& t) {
  for (const Unit& u : task_units(t.cfg)) {
    const auto st = t.store->load_state(u.n, u.repeat, u.shard);
    const bool filled = st && std::all_of(st->stored.begin(), st->stored.end(), [&u](int s) { return s >= u.target; });
    if (!filled && !(st && st->status == "budget")) return false;
  }
  return true;
}

// DIR/data: the training sets, the same files in every task that ran the (n, repeat).
void copy_training_sets(const TaskDir& t, const fs::path& dir) {
  if (!fs::is_directory(t.dir / "data")) return;
  fs::create_directories(dir / "data");
  for (const auto& entry : fs::directory_iterator(t.dir / "data")) {
    const fs::path target = dir / "data" / entry.path().filename();
    if (entry.path().extension() == ".npy" && !fs::exists(target)) write_file_atomic(target, read_bytes(entry.path()));
  }
}

// Copies the streams of task t the merged run lacks (or has less of): for
// each, the models after the merged state and the task's state, in one commit.
int copy_streams(const TaskDir& t, Store& merged) {
  std::map<std::tuple<int, int, int>, std::vector<StoredModel>> models;
  for (StoredModel& m : t.store->models()) models[{m.n, m.repeat, m.shard}].push_back(std::move(m));
  int copied = 0;
  for (const StreamState& st : t.store->states()) {
    const auto have = merged.load_state(st.n, st.repeat, st.shard);
    if (have && (have->draws > st.draws || (have->draws == st.draws && have->status == st.status))) continue;
    std::vector<StoredModel> fresh;
    std::vector<std::vector<float>> weights;
    for (const StoredModel& m : models[{st.n, st.repeat, st.shard}]) {
      if (have && m.draw < have->draws) continue;  // merged with the state that reached it
      const NpyArray array = read_npy(t.dir / m.file);
      fresh.push_back(m);
      weights.emplace_back(array.data.begin(), array.data.end());
    }
    merged.commit(st, fresh, weights);
    ++copied;
  }
  return copied;
}

}  // namespace

MergeSummary merge_shards(const fs::path& dir, bool partial) {
  const fs::path shards = dir / "shards";
  if (!fs::is_directory(shards))
    throw Error(dir.string() + " holds no shards/ directory: nothing to merge (the tasks of a gac slurm job write " +
                (shards / "I").string() + ")");
  const std::vector<TaskDir> tasks = open_tasks(shards);

  // The run they split: the config gac slurm wrote, else the first task's.
  const fs::path script_config = dir / "slurm" / "config.toml";
  const bool have_script_config = fs::exists(script_config);
  if (!have_script_config && tasks.empty()) throw Error("no task in " + shards.string() + " has started: nothing to merge");
  RunConfig whole = have_script_config ? load_config(script_config) : tasks.front().cfg;
  whole.task = -1;
  const std::string reference = have_script_config ? script_config.string() : (tasks.front().dir / "config.toml").string();
  if (whole.tasks < 2) throw Error(reference + " is not a run split into tasks (run.shards = 1)");
  for (const TaskDir& t : tasks) {
    RunConfig task_run = t.cfg;
    task_run.task = -1;
    const std::string difference = identity_difference(whole, task_run);
    if (!difference.empty())
      throw Error(t.dir.string() + " is a task of another run than " + reference + ": " + difference);
  }

  MergeSummary summary;
  summary.tasks = whole.tasks;
  std::vector<bool> started(whole.tasks, false);
  for (const TaskDir& t : tasks) {
    started[t.task] = true;
    if (!task_finished(t)) summary.unfinished.push_back(t.task);
  }
  for (int task = 0; task < whole.tasks; ++task)
    if (!started[task]) summary.missing.push_back(task);
  if (!partial && (!summary.missing.empty() || !summary.unfinished.empty()))
    throw Error("not every task of " + dir.string() + " is finished (" +
                (summary.missing.empty() ? "" : "never started: " + list(summary.missing)) +
                (summary.missing.empty() || summary.unfinished.empty() ? "" : "; ") +
                (summary.unfinished.empty() ? "" : "unfinished: " + list(summary.unfinished)) +
                "); gac report " + dir.string() + " shows their progress, and gac merge --partial merges what there is");
  if (tasks.empty()) throw Error("no task in " + shards.string() + " has started: nothing to merge");

  RunMeta meta = tasks.front().store->meta();
  meta.shard = -1;
  const std::string config_file = (dir / "config.toml").string();
  const std::string layout =
      read_small_file(tasks.front().dir / "layout.json", "", "a run's layout.json is a small JSON file");
  Store merged(dir, identity_toml(whole), layout, meta,
               [&](const std::string& stored) { return extension_problem(parse_config(stored, config_file), whole); });
  for (const TaskDir& t : tasks) {
    copy_training_sets(t, dir);
    summary.streams_copied += copy_streams(t, merged);
  }
  summary.models = merged.models().size();
  return summary;
}

}  // namespace gac
