// Per-cell results of a run directory, as a table, CSV or JSON.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gac/stats.h"
#include "gac/store.h"

namespace gac {

// One repeat (training set) of a cell, over its shards.
struct RepeatReport {
  int repeat = 0;
  std::vector<int> classes;         // original labels of its classes; empty before it starts
  int models = 0;                   // stored models in the cell
  Summary test_acc, test_loss;      // over those models
  uint64_t draws = 0, hits = 0;
  uint64_t failed = 0;              // draws whose optimization gave no model (StreamState::failed)
  std::string status;               // worst over its shards; "pending" before it starts
};

// One cell (n, bin), aggregated over repeats and shards.
struct CellReport {
  int n = 0, bin = 0;
  double loss_lo = 0, loss_hi = 0;  // the bin (loss_lo, loss_hi]
  int models = 0;                   // stored models
  int wanted = 0;                   // target * repeats
  bool filled = false;              // every repeat reached the target
  std::string status;               // filled, or the unfilled units' most telling status: running |
                                    // pending | interrupted | time | budget
  Summary test_acc;                 // over stored models; ci95: test_acc_by_repeat's, clipped to [0, 1]
  Summary test_loss;
  uint64_t draws = 0;               // draws checked
  uint64_t hits = 0;                // perfect draws with loss in the bin
  uint64_t failed = 0;              // draws of n whose optimization gave no model (every bin of n alike)
  std::string optimizer = "guess";  // the run's optimizer.kind
  double rate = 0;                  // hits / draws
  Interval rate_ci;                 // Wilson 95%; hi is the upper bound when hits = 0. Nested sampling
                                    // (heads > 1): with the effective draws (wilson_interval_clustered)
  int heads = 1;                    // sampler.heads: draws are pairs, heads per body
  uint64_t same_body = 0;           // pairs of hits within one body (StreamState::same_body)
  double design_effect = 1;         // of the rate, bodies as clusters (stats.h); 1 for plain draws
  double effective_draws = 0;       // draws / max(1, design_effect)
  double log10_rate = 0;            // log10(rate); log10(rate_ci.hi) when hits = 0
  GroupedMean test_acc_by_repeat;   // the repeat (training set) as the unit: test_acc.ci95 is its interval
  std::vector<RepeatReport> repeats;
};

std::vector<CellReport> cell_reports(const Store& store);

enum class ReportFormat { table, csv, json };
// The cells; a table of a merged run also says how its tasks stand.
std::string format_report(const Store& store, ReportFormat format);
// One row per (cell, repeat): the per-repeat breakdown (JSON: the same as format_report's).
std::string format_repeats(const Store& store, ReportFormat format);

// `gac report RUN --versus OTHER`: the same cell (n, bin) of two runs (e.g.
// guess and check against SGD from the same draws) and the difference of
// their mean test accuracies, each run's training sets (repeats) as the units.
//
// When the runs share their training sets (e.g. SGD from the same seed and
// data as a guess-and-check run), the design is paired by training set:
// `paired` is paired_difference (stats.h) over the repeats with models in the
// cell in both runs, of each repeat's mean test accuracy, and `paired_sets`
// their number k. Otherwise paired_available is false, paired NaN (see
// Versus::unpaired).
struct VersusCell {
  CellReport run, versus;
  MeanDifference test_acc;  // run's mean minus versus's (stats.h)
  bool paired_available = false;  // the runs share their training sets
  MeanDifference paired;          // by training set; NaN unless paired_available
  int paired_sets = 0;            // k: repeats with models in the cell in both runs
};

// The pooled paired estimate over training sets: for each training set (n,
// repeat), d = the mean over its cells with models in both runs of (A's mean
// test accuracy on the set - B's); then the mean of d over the sets with a
// t interval (paired_difference, stats.h). One per size n and one over all
// sizes (n = 0). cells_estimable / cells_excluding_zero count the cells whose
// own paired interval exists / excludes zero (the multiplicity check).
struct PooledDifference {
  int n = 0;  // 0: every size
  MeanDifference paired;
  int sets = 0;
  int cells = 0;  // cells with models in both runs in at least one set
  int cells_estimable = 0;
  int cells_excluding_zero = 0;
};

// Two runs cell by cell, and whether they are paired by training set.
struct Versus {
  std::vector<VersusCell> cells;
  std::vector<PooledDifference> pooled;  // per n in order, then all sizes; empty unless paired
  // "" when, for every (n, repeat) with models in both runs, the training-set
  // files under DIR/data/ (n{n}_r{r}_train_x.npy, _train_y.npy,
  // _train_rows.npy) of the two runs are byte-identical; else one line saying
  // why the paired difference is not shown, naming the first such stream. A
  // file present in one run only counts as not known to be the same.
  std::string unpaired;
  // Sizes n that one run has and the other lacks: not compared.
  std::vector<int> sizes_only_in_run, sizes_only_in_versus;
};

// The cells of the sizes n both runs have, side by side. Throws gac::Error,
// naming what differs, unless both runs have the same bin edges and at
// least one size n in common, and hold the same cells at those sizes.
Versus compare_runs(const Store& run, const Store& versus);
std::string format_versus(const Store& run, const Store& versus, ReportFormat format);

// One task of a run split by `gac slurm`, from its directory DIR/shards/I.
struct TaskProgress {
  int task = 0;
  std::string state;  // done | running | interrupted | never started
  int streams = 0, streams_done = 0;
  uint64_t models = 0, wanted = 0, draws = 0;
};

// Every task of the split run in DIR, read from the directories alone (not
// from SLURM). Throws gac::Error when DIR holds no split run.
std::vector<TaskProgress> task_progress(const std::filesystem::path& dir);
std::string format_task_progress(const std::filesystem::path& dir, ReportFormat format);

}  // namespace gac
