// How a run splits into units of work and the tasks of a SLURM array, and
// which configs may go on with a run directory's units.
//
// A unit is one parameter stream (n, repeat, shard): its draws come from the
// key (seed, n, repeat, shard), so units never share a draw. Each (n, repeat)
// is cut into S = clamp(ceil(K / streams), 1, target) units for K tasks; unit
// s fills every bin to its share of the target (target / S, the first
// target % S units one more) within its share of max_draws. Units are listed
// by n, repeat, shard and dealt to the K tasks round-robin (unit u to task
// u % K). What is found therefore depends only on the config and K; with K
// no larger than the number of streams (S = 1) a split run finds exactly
// what one process finds.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gac/config.h"

namespace gac {

struct Unit {
  int n = 0, repeat = 0, shard = 0;  // the stream key (with the run seed)
  int task = 0;                      // the task that runs it, 0..K-1
  int target = 0;                    // models per bin this unit stores
  uint64_t max_draws = 0;            // draws this unit may check
};

// S: units per (n, repeat) stream for cfg.tasks tasks.
int shards_per_stream(const RunConfig& cfg);

// Every unit of the run, in dealing order.
std::vector<Unit> all_units(const RunConfig& cfg);

// The units task cfg.task runs (every unit when cfg.task is -1).
std::vector<Unit> task_units(const RunConfig& cfg);

// Why a run directory made with `stored` cannot go on as `fresh`, naming the
// first key that differs; "" when it can: the same experiment, or the same
// one with a larger target, more repeats or more training-set sizes n (its
// streams simply continue). A run split into tasks may only grow its target.
std::string extension_problem(const RunConfig& stored, const RunConfig& fresh);

}  // namespace gac
