#include "gac/shards.h"

#include <algorithm>

namespace gac {

namespace {

// Share of `total` for part i of `parts`: equal shares, the first total % parts one more.
uint64_t share(uint64_t total, int parts, int i) {
  return total / parts + (static_cast<uint64_t>(i) < total % parts ? 1 : 0);
}

}  // namespace

int shards_per_stream(const RunConfig& cfg) {
  const int64_t streams = static_cast<int64_t>(cfg.ns.size()) * cfg.repeats;
  const int64_t per_stream = (cfg.shards + streams - 1) / streams;
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
        u.task = static_cast<int>(units.size() % cfg.shards);
        u.target = static_cast<int>(share(cfg.target, S, s));
        u.max_draws = share(cfg.max_draws, S, s);
        units.push_back(u);
      }
  return units;
}

std::vector<Unit> task_units(const RunConfig& cfg) {
  std::vector<Unit> units = all_units(cfg);
  if (cfg.shard >= 0) std::erase_if(units, [&cfg](const Unit& u) { return u.task != cfg.shard; });
  return units;
}

}  // namespace gac
