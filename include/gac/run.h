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
#include "gac/dataset.h"
#include "gac/model.h"

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

// Everything derived from a config before any draw: data and model.
struct Experiment {
  RunConfig cfg;
  Dataset data;
  Model model;
  PriorSpec prior;
};
Experiment prepare_experiment(const RunConfig& cfg);

// The task of stream (n, repeat, shard): training and test sets, key, bins.
StreamTask stream_task(const Experiment& ex, int n, int repeat, int shard = 0);
// The same with the given classes (original labels) instead of the drawn ones: verify rebuilds a
// stream from the classes its ledger records.
StreamTask stream_task(const Experiment& ex, int n, int repeat, int shard, const std::vector<int>& classes);

// The classes of every training set: one line when they are fixed for the
// run, else one line per n listing each repeat's (the run log, `gac info`).
void print_classes(std::ostream& out, const Experiment& ex, const std::string& prefix);

// "guess and check", or "SGD from each draw (lr 0.1, momentum 0, ...)": the
// run log, `gac info`.
std::string optimizer_text(const RunConfig& cfg);

// "n16_r0_": the prefix of a stream's files under DIR/data/.
std::string stream_data_stem(int n, int repeat);

RunOutcome run_experiment(const RunConfig& cfg, const RunOptions& opts, std::ostream& log);

// Makes SIGTERM, SIGINT and SIGUSR1 (SLURM's warning before a time limit or
// a preemption) set the returned flag instead of killing the process.
const std::atomic<int>& install_stop_signals();

}  // namespace gac
