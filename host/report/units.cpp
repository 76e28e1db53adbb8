// The units a run directory's cells and tasks are made of, and how each stands.
#include "host/report/units.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>

#include "gac/config.h"

namespace gac {

namespace {

// Which status explains an unfilled cell best: a stream still running says
// more than one stopped by a signal or a kill, one stopped by the time limit,
// one not begun yet, or one out of its budget.
int status_rank(const std::string& status) {
  if (status == "filled") return 0;
  if (status == "budget") return 1;
  if (status == "pending") return 2;
  if (status == "time") return 3;
  if (status == "interrupted") return 4;
  return 5;  // running, or anything unexpected
}

// A writer that committed within this long may still be running.
constexpr double kWriterStaleSeconds = 120;

bool unit_filled(const Unit& u, const StreamState& st) {
  return std::all_of(st.stored.begin(), st.stored.end(), [&u](int stored) { return stored >= u.target; });
}

}  // namespace

// Whether the process that last committed to a run may still be at work: it
// committed recently and, on this host, its process exists.
bool writer_alive(const std::optional<WriterInfo>& w) {
  if (!w) return false;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (now - w->time > kWriterStaleSeconds) return false;
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof host - 1);
  return w->host != host || ::kill(w->pid, 0) == 0 || errno == EPERM;
}

// The units this directory's cells are made of: the run's, or its task's
// when it holds one task of a split run (include/gac/shards.h).
std::vector<Unit> directory_units(const RunMeta& meta) {
  RunConfig plan;
  plan.ns = meta.ns;
  plan.repeats = std::max(meta.repeats, 0);
  plan.target = std::max(meta.target, 1);
  plan.tasks = std::max(meta.shards, 1);
  plan.task = meta.shard;
  return task_units(plan);
}

StreamIndex index_streams(const std::vector<StreamState>& states) {
  StreamIndex index;
  for (const StreamState& s : states) index[{s.n, s.repeat, s.shard}] = &s;
  return index;
}

const StreamState* find_stream(const StreamIndex& index, const Unit& u) {
  const auto it = index.find({u.n, u.repeat, u.shard});
  return it == index.end() ? nullptr : it->second;
}

// A unit's status as the report shows it: pending before its first commit,
// or while a grown target waits for the run to go on; interrupted when its
// run died while it was running.
std::string unit_status(const Unit& u, const StreamState* st, bool alive) {
  if (!st) return "pending";
  if (st->status == "filled" && !unit_filled(u, *st)) return "pending";
  if (st->status == "running" && !alive) return "interrupted";
  return st->status;
}

std::string worse_status(const std::string& a, const std::string& b) {
  return status_rank(b) > status_rank(a) ? b : a;
}

}  // namespace gac
