// The experiment a config defines, before any draw: its data, model and
// prior, and the task of each stream (n, repeat, shard) -- training and test
// sets, parameter key, loss and bins. The run, the checks of a run directory,
// `gac verify`, `gac report` and `gac bench` all build on it.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "gac/backend.h"
#include "gac/config.h"
#include "gac/dataset.h"
#include "gac/model.h"

namespace gac {

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

}  // namespace gac
