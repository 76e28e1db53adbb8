// Progress of a task's whole run on stderr: the current stream, the models
// stored so far over every stream, and a whole-run ETA.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "gac/shards.h"
#include "gac/store.h"

namespace gac {

// A unit of this task and its progress.
struct UnitRun {
  Unit unit;
  StreamState st;
  bool has_row = false;  // the ledger holds its state
};

bool all_filled(const StreamState& st, int target);
bool finished(const UnitRun& u);  // filled, or out of its draw budget

std::string duration_text(double seconds);  // "12.3s", "4.5min", "2.0h", "3.1d"

// Totals over a task's units, and the time they need to finish at the hit
// rates and speeds seen so far: those of the units of the same n, or with
// pool_all_n those of every unit run so far when no unit of that n has run.
// Guess and check's rates fall steeply with n (an n not yet run is bounded by
// its draw budget only); a trained draw fits about as often at every n.
struct RunEstimate {
  int done = 0;                     // units finished
  uint64_t models = 0, wanted = 0;  // models stored, and wanted in all
  uint64_t draws = 0;
  double eta = 0;                   // seconds; infinite while no speed is known
  bool budget_bound = false;        // a bin without hits: its unit's budget bounds the ETA
};
RunEstimate estimate(const std::vector<UnitRun>& units, int bins, bool pool_all_n = false);

// Rewritten in place on a terminal; one line every 10 s in a log file (SLURM).
class Progress {
 public:
  Progress(std::ostream& log, bool enabled, const RunConfig& cfg);

  // After a call that checked `rate` draws/s of units[current].
  void update(const std::vector<UnitRun>& units, size_t current, double rate, bool final);

 private:
  using Clock = std::chrono::steady_clock;
  std::ostream& log_;
  bool enabled_, tty_, printed_ = false;
  int repeats_, bins_;
  bool pool_all_n_;  // trained draws (SGD, searches): estimate()'s pool_all_n
  Clock::time_point start_ = Clock::now(), last_ = Clock::now();
  // At the first update: when, the units' evaluation seconds and streams
  // done, to measure the time a stream costs besides evaluation (its training
  // set, files and commits), which dominates runs of many small streams.
  bool baseline_set_ = false;
  Clock::time_point baseline_time_;
  double baseline_seconds_ = 0;
  int baseline_done_ = 0;
  double overhead_per_stream(const std::vector<UnitRun>& units, int done);
};

}  // namespace gac
