// Run configuration: a TOML file plus `--set key=value` overrides, checked
// strictly (unknown keys, wrong types and bad values are errors).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "gac/dataset.h"
#include "gac/loss.h"
#include "gac/model.h"
#include "gac/prior.h"
#include "gac/search.h"
#include "gac/sgd.h"

namespace gac {

struct RunConfig {
  DataConfig data;
  ModelConfig model;
  PriorConfig prior;
  // [optimizer]: guess (guess and check), sgd (SGD from the same draws,
  // include/gac/sgd.h), pattern or greedy (the paper's searches from the
  // same draws, include/gac/search.h); part of the run's identity unless guess
  std::string optimizer = "guess";
  SgdConfig sgd;                    // optimizer = "sgd" only
  // [sampler]: heads per body (nested sampling, gac/nested.h; docs/nested.md);
  // 1 is plain guess and check. Part of the run's identity when > 1.
  int heads = 1;
  SearchConfig search;              // optimizer = "pattern" or "greedy" only
  // [run]: what defines the experiment
  uint64_t seed = 0;                // keys the parameter streams and the data choices
  std::vector<int> ns{16};          // training-set sizes
  int repeats = 1;                  // training sets per n
  std::vector<double> bins{0.0, 10.0};  // increasing loss-bin edges
  int target = 10;                  // accepted models per (n, repeat, bin)
  LossKind loss = LossKind::normalized;
  bool early_reject = true;         // never changes which draws are accepted
  int task = -1;                    // run.shard: this task, 0..tasks-1 (a SLURM array task); -1: every task's units
  int tasks = 1;                    // run.shards: tasks the run is split into (include/gac/shards.h)
  // [run] stopping rules: not part of the run's identity, so a stopped run can be extended
  uint64_t max_draws = 100'000'000; // per (n, repeat), shared by its shards
  double time_limit = 0;            // seconds for the whole run; 0 = none
  // [exec]: how to run; never changes results
  std::string backend = "auto";     // auto | cpu | cuda
  std::string devices = "all";      // the GPUs a run drives: "all" or a list as "0,2"
  int threads = 0;                  // 0 = all cores
  uint64_t batch = 0;               // draws per backend call (0: the backend's preferred batch)
  size_t commit_bytes = size_t{256} << 20;  // commit early when the weights of the models kept pass it
  double checkpoint_seconds = 60;  // searches: save the one in progress at most this often (docs/optimizers.md)
  std::string output;               // run directory (default: runs/<config name>)
  std::string order = "interleaved";  // which stream runs when: interleaved | sequential
};

// Parses `path`, then applies each "key=value" override (value in TOML
// syntax; a bare word is taken as a string). Throws gac::Error naming the key.
RunConfig load_config(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});
RunConfig parse_config(const std::string& toml_text, const std::string& source_name,
                       const std::vector<std::string>& overrides = {});

// Canonical TOML of everything that defines the run's results ([data],
// [model], [prior], [optimizer] when it is sgd, and [run] without the
// stopping rules).
std::string identity_toml(const RunConfig& cfg);
// identity_toml plus the stopping rules and [exec]: what was actually run.
std::string resolved_toml(const RunConfig& cfg);

// The first key of the run's identity whose value differs, as "key is X
// there, Y here"; "" when both configs define the same run.
std::string identity_difference(const RunConfig& there, const RunConfig& here);

}  // namespace gac
