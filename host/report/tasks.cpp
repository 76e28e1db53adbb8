// How far each task of a run split by `gac slurm` has come, read from the
// task directories alone.
#include "host/report/tasks.h"

#include <charconv>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>

#include "gac/config.h"
#include "gac/error.h"
#include "host/report/records.h"
#include "host/report/units.h"

namespace gac {

namespace fs = std::filesystem;

namespace {

std::string task_counts(const std::vector<TaskProgress>& tasks) {
  std::map<std::string, int> count;
  for (const TaskProgress& t : tasks) ++count[t.state];
  std::string text;
  for (const char* state : {"done", "running", "interrupted", "never started"})
    text += (text.empty() ? "" : ", ") + std::to_string(count[state]) + " " + state;
  return text;
}

}  // namespace

// A merged run's tasks: how many are done, and whether they hold draws the merge does not have yet.
std::string merged_tasks_line(const Store& store) {
  std::vector<TaskProgress> tasks;
  try {
    tasks = task_progress(store.dir());
  } catch (const Error&) {
    return "";  // shards/ holds no task: nothing to say
  }
  uint64_t task_draws = 0, merged_draws = 0;
  for (const TaskProgress& t : tasks) task_draws += t.draws;
  for (const StreamState& s : store.states()) merged_draws += s.draws;
  return "tasks in " + (store.dir() / "shards").string() + ": " + task_counts(tasks) +
         (task_draws > merged_draws ? "; they hold draws not merged yet: run gac merge again\n" : "\n");
}

std::vector<TaskProgress> task_progress(const fs::path& dir) {
  // The plan comes from any task's ledger, else from the config gac slurm wrote.
  std::map<int, std::unique_ptr<Store>> stores;
  std::optional<RunMeta> plan;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir / "shards", ec)) {
    const std::string name = entry.path().filename().string();
    int task = -1;
    const auto [end, err] = std::from_chars(name.data(), name.data() + name.size(), task);
    if (err != std::errc() || end != name.data() + name.size() || !fs::exists(entry.path() / "ledger.sqlite")) continue;
    stores[task] = Store::open_existing(entry.path());
    if (!plan) plan = stores[task]->meta();
  }
  if (!plan && fs::exists(dir / "slurm" / "config.toml")) {
    const RunConfig cfg = load_config(dir / "slurm" / "config.toml");
    plan = RunMeta{cfg.bins, cfg.target, cfg.ns, cfg.repeats, 0, {}, cfg.tasks, -1};
  }
  if (!plan) throw Error(dir.string() + " is not a gac run directory (no ledger.sqlite) and holds no tasks of a split run (shards/)");

  std::vector<TaskProgress> tasks;
  const int bins = static_cast<int>(plan->bin_edges.size()) - 1;
  for (int task = 0; task < plan->shards; ++task) {
    TaskProgress p;
    p.task = task;
    RunMeta meta = *plan;
    meta.shard = task;
    const std::vector<Unit> units = directory_units(meta);
    p.streams = static_cast<int>(units.size());
    for (const Unit& u : units) p.wanted += static_cast<uint64_t>(u.target) * bins;
    const auto it = stores.find(task);
    if (it == stores.end()) {
      p.state = "never started";
      tasks.push_back(p);
      continue;
    }
    const std::vector<StreamState> states = it->second->states();
    const StreamIndex streams = index_streams(states);
    const bool alive = writer_alive(it->second->last_writer());
    for (const Unit& u : units) {
      const StreamState* st = find_stream(streams, u);
      if (!st) continue;
      p.draws += st->draws;
      for (int stored : st->stored) p.models += stored;
      const std::string status = unit_status(u, st, alive);
      p.streams_done += status == "filled" || status == "budget";
    }
    p.state = p.streams_done == p.streams ? "done" : alive ? "running" : "interrupted";
    tasks.push_back(p);
  }
  return tasks;
}

std::string format_task_progress(const fs::path& dir, ReportFormat format) {
  const std::vector<TaskProgress> tasks = task_progress(dir);
  auto fields = [](const TaskProgress& t) {
    ordered_json j;
    j["task"] = t.task;
    j["state"] = t.state;
    j["streams"] = t.streams;
    j["streams_done"] = t.streams_done;
    j["models"] = t.models;
    j["wanted"] = t.wanted;
    j["draws"] = t.draws;
    return j;
  };
  std::ostringstream out;
  if (format == ReportFormat::json) {
    ordered_json doc;
    doc["merged"] = false;
    doc["tasks"] = ordered_json::array();
    for (const TaskProgress& t : tasks) doc["tasks"].push_back(fields(t));
    return doc.dump(2) + "\n";
  }
  if (format == ReportFormat::csv) {
    out << "task,state,streams,streams_done,models,wanted,draws\n";
    for (const TaskProgress& t : tasks)
      out << t.task << "," << t.state << "," << t.streams << "," << t.streams_done << "," << t.models << ","
          << t.wanted << "," << t.draws << "\n";
    return out.str();
  }
  out << dir.string() << ": a run split into " << tasks.size() << " tasks, not merged yet: " << task_counts(tasks)
      << "\n\n";
  char line[160];
  std::snprintf(line, sizeof line, "%-6s %-14s %-10s %-16s %s\n", "task", "state", "streams", "models", "draws");
  out << line;
  for (const TaskProgress& t : tasks) {
    const std::string streams = std::to_string(t.streams_done) + "/" + std::to_string(t.streams);
    const std::string models = std::to_string(t.models) + "/" + std::to_string(t.wanted);
    std::snprintf(line, sizeof line, "%-6d %-14s %-10s %-16s %llu\n", t.task, t.state.c_str(), streams.c_str(),
                  models.c_str(), static_cast<unsigned long long>(t.draws));
    out << line;
  }
  out << "\nWhen every task is done: gac merge " << dir.string() << " (with --partial it merges what there is)\n";
  return out.str();
}

}  // namespace gac
