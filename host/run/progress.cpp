#include "host/run/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <sstream>

#include "host/report/format.h"

namespace gac {

bool all_filled(const StreamState& st, int target) {
  return std::all_of(st.stored.begin(), st.stored.end(), [target](int s) { return s >= target; });
}

bool finished(const UnitRun& u) { return all_filled(u.st, u.unit.target) || u.st.draws >= u.unit.max_draws; }

std::string duration_text(double s) {
  char buf[32];
  if (!std::isfinite(s)) return "?";
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%.1fmin", s / 60);
  else if (s < 86400 * 2) std::snprintf(buf, sizeof buf, "%.1fh", s / 3600);
  else std::snprintf(buf, sizeof buf, "%.1fd", s / 86400);
  return buf;
}

namespace {

// What the units of one n have seen so far: their hit rates and speed stand
// in for those of a unit of that n that has not run yet.
struct Pooled {
  std::vector<uint64_t> hits;
  uint64_t draws = 0;
  double seconds = 0;
};

}  // namespace

RunEstimate estimate(const std::vector<UnitRun>& units, int bins, bool pool_all_n) {
  std::map<int, Pooled> by_n;
  Pooled all;
  for (const UnitRun& u : units) {
    Pooled& p = by_n[u.unit.n];
    p.hits.resize(bins, 0);
    for (int j = 0; j < bins && j < static_cast<int>(u.st.hits.size()); ++j) p.hits[j] += u.st.hits[j];
    p.draws += u.st.draws;
    p.seconds += u.st.seconds;
    all.hits.resize(bins, 0);
    for (int j = 0; j < bins && j < static_cast<int>(u.st.hits.size()); ++j) all.hits[j] += u.st.hits[j];
    all.draws += u.st.draws;
    all.seconds += u.st.seconds;
  }
  RunEstimate e;
  for (const UnitRun& u : units) {
    e.draws += u.st.draws;
    e.wanted += static_cast<uint64_t>(u.unit.target) * bins;
    for (int j = 0; j < bins; ++j) e.models += j < static_cast<int>(u.st.stored.size()) ? u.st.stored[j] : 0;
    if (finished(u)) {
      ++e.done;
      continue;
    }
    const Pooled& p = pool_all_n && by_n[u.unit.n].draws == 0 ? all : by_n[u.unit.n];
    double need = 0;  // further draws until the last bin fills
    for (int j = 0; j < bins; ++j) {
      const int stored = j < static_cast<int>(u.st.stored.size()) ? u.st.stored[j] : 0;
      if (stored >= u.unit.target) continue;
      need = std::max(need, p.hits[j] ? (u.unit.target - stored) * static_cast<double>(p.draws) / p.hits[j] : INFINITY);
    }
    const double budget = static_cast<double>(u.unit.max_draws - u.st.draws);
    if (!std::isfinite(need)) e.budget_bound = true;
    const double seconds_per_draw = p.draws && p.seconds > 0 ? p.seconds / p.draws
                                    : all.draws && all.seconds > 0 ? all.seconds / all.draws
                                                                   : INFINITY;
    e.eta += std::min(need, budget) * seconds_per_draw;
  }
  return e;
}

double Progress::overhead_per_stream(const std::vector<UnitRun>& units, int done) {
  double evaluating = 0;
  for (const UnitRun& u : units) evaluating += u.st.seconds;
  if (!baseline_set_) {
    baseline_set_ = true;
    baseline_time_ = Clock::now();
    baseline_seconds_ = evaluating;
    baseline_done_ = done;
  }
  if (done <= baseline_done_) return 0;
  const double wall = std::chrono::duration<double>(Clock::now() - baseline_time_).count();
  return std::max(0.0, wall - (evaluating - baseline_seconds_)) / (done - baseline_done_);
}

Progress::Progress(std::ostream& log, bool enabled, const RunConfig& cfg)
    : log_(log), enabled_(enabled), tty_(isatty(STDERR_FILENO)), repeats_(cfg.repeats),
      bins_(static_cast<int>(cfg.bins.size()) - 1), pool_all_n_(cfg.optimizer != "guess") {}

void Progress::update(const std::vector<UnitRun>& units, size_t current, double rate, bool final) {
  if (!enabled_) return;
  const double since_start = std::chrono::duration<double>(Clock::now() - start_).count();
  const double since_last = std::chrono::duration<double>(Clock::now() - last_).count();
  if (!final && (since_start < 1.0 || (printed_ && since_last < (tty_ ? 0.5 : 10.0)))) return;
  if (final && !printed_) return;  // runs under a second print nothing
  last_ = Clock::now();
  printed_ = true;

  const UnitRun& u = units[current];
  std::ostringstream line;
  line << "[" << duration_text(since_start) << "] stream " << current + 1 << "/" << units.size() << " (n=" << u.unit.n
       << " repeat " << u.unit.repeat + 1 << "/" << repeats_;
  if (u.unit.shard > 0) line << " shard " << u.unit.shard;
  line << ") " << human_integer(u.st.draws) << " draws, " << human_count(rate) << "/s, bins";
  for (int stored : u.st.stored) line << " " << stored << "/" << u.unit.target;
  if (u.st.status != "running") line << " " << u.st.status;
  RunEstimate e = estimate(units, bins_, pool_all_n_);
  e.eta += overhead_per_stream(units, e.done) * static_cast<double>(units.size() - e.done);
  line << " | run: " << e.done << "/" << units.size() << " streams done, " << e.models << "/" << e.wanted << " models";
  if (e.done < static_cast<int>(units.size()))
    line << ", ETA " << (e.budget_bound ? "<= " : "") << duration_text(e.eta) << (e.budget_bound ? " (budget)" : "");
  if (tty_) log_ << "\r\033[K" << line.str() << (final ? "\n" : "") << std::flush;
  else log_ << line.str() << "\n" << std::flush;
}

}  // namespace gac
