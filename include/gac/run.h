// The orchestrator: runs the units of one task (include/gac/shards.h), each
// drawing in index order until every loss bin holds its target, the draw
// budget runs out, the time limit passes or a signal asks it to stop.
#pragma once

#include <atomic>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>

#include "gac/backend.h"
#include "gac/config.h"
#include "gac/experiment.h"

namespace gac {

struct RunOptions {
  std::filesystem::path dir;   // run directory
  bool progress = true;        // progress lines on stderr
  std::shared_ptr<Backend> backend;  // tests: run on this backend instead of the config's
  // Set to a signal number when the run should commit and stop (0: go on);
  // checked at least every half second or so.
  const std::atomic<int>* stop = nullptr;
};

struct RunOutcome {
  bool complete = false;       // every unit filled or out of budget
  bool time_limit_hit = false;
  int stop_signal = 0;         // the signal that stopped the run (0: none)
  uint64_t commits = 0;        // ledger transactions
  std::string backend_note;    // e.g. why auto chose the CPU
};

RunOutcome run_experiment(const RunConfig& cfg, const RunOptions& opts, std::ostream& log);

// Makes SIGTERM, SIGINT and SIGUSR1 (SLURM's warning before a time limit or
// a preemption) set the returned flag instead of killing the process.
const std::atomic<int>& install_stop_signals();

}  // namespace gac
