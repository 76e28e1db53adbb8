#include "gac/shards.h"

#include <algorithm>
#include <string>

namespace gac {

namespace {

// Share of `total` for part i of `parts`: equal shares, the first total % parts one more.
uint64_t share(uint64_t total, int parts, int i) {
  return total / parts + (static_cast<uint64_t>(i) < total % parts ? 1 : 0);
}

}  // namespace

int shards_per_stream(const RunConfig& cfg) {
  const int64_t streams = static_cast<int64_t>(cfg.ns.size()) * cfg.repeats;
  const int64_t per_stream = (cfg.tasks + streams - 1) / streams;
  return static_cast<int>(std::clamp<int64_t>(per_stream, 1, cfg.target));
}

std::vector<Unit> all_units(const RunConfig& cfg) {
  const int S = shards_per_stream(cfg);
  std::vector<Unit> units;
  for (int n : cfg.ns)
    for (int r = 0; r < cfg.repeats; ++r)
      for (int s = 0; s < S; ++s) {
        Unit u;
        u.n = n;
        u.repeat = r;
        u.shard = s;
        u.task = static_cast<int>(units.size() % cfg.tasks);
        u.target = static_cast<int>(share(cfg.target, S, s));
        u.max_draws = share(cfg.max_draws, S, s);
        units.push_back(u);
      }
  return units;
}

std::vector<Unit> task_units(const RunConfig& cfg) {
  std::vector<Unit> units = all_units(cfg);
  if (cfg.task >= 0) std::erase_if(units, [&cfg](const Unit& u) { return u.task != cfg.task; });
  return units;
}

std::string extension_problem(const RunConfig& stored, const RunConfig& fresh) {
  // Apart from the keys a run may grow, everything must be as it was.
  RunConfig fixed = fresh;
  fixed.target = stored.target;
  fixed.repeats = stored.repeats;
  fixed.ns = stored.ns;
  if (std::string difference = identity_difference(stored, fixed); !difference.empty()) return difference;

  if (fresh.target < stored.target)
    return "run.target is " + std::to_string(stored.target) + " there, " + std::to_string(fresh.target) +
           " here (a run can grow its target, never shrink it)";
  if (fresh.repeats < stored.repeats)
    return "run.repeats is " + std::to_string(stored.repeats) + " there, " + std::to_string(fresh.repeats) +
           " here (a run can add repeats, never drop them)";
  for (int n : stored.ns)
    if (std::find(fresh.ns.begin(), fresh.ns.end(), n) == fresh.ns.end())
      return "run.n holds " + std::to_string(n) + " there but not here (a run can add sizes n, never drop them)";
  if (fresh.tasks > 1 && (fresh.ns != stored.ns || fresh.repeats != stored.repeats))
    return "run.n or run.repeats differ: a run split into " + std::to_string(fresh.tasks) +
           " tasks keeps its streams, only run.target may grow (run the new streams in a new directory)";
  if (shards_per_stream(fresh) != shards_per_stream(stored))
    return "run.target " + std::to_string(fresh.target) + " splits each stream into " +
           std::to_string(shards_per_stream(fresh)) + " shards, the run there into " +
           std::to_string(shards_per_stream(stored)) + " (keep the target, or use a new directory)";
  return "";
}

}  // namespace gac
