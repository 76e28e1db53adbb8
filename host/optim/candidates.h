// Candidate evaluation for the searches (include/gac/search.h): a batch of
// candidates around the current point, each scored on the training set
// (mean loss of the task's loss kind, examples classified correctly) exactly
// as kernels/forward.h's evaluate_draw scores a draw in full. Every evaluator
// (CPU, device) gives the same bits; the search only compares them.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "gac/backend.h"

namespace gac {

struct Eval {
  float loss = 0.0f;
  int correct = 0;
};

// Slot s (1 .. count) moves the current point by moves[s - 1] (kernels/search_moves.h: pattern_moved).
struct PatternBatch {
  float r;
  const uint32_t* moves;
  int64_t count;
};

// Slot s (1 .. count) is greedy_candidate(current, key, counter, s, r) (kernels/search_moves.h).
// An evaluator may stop a slot early once it proves the slot's loss above
// reject_above, and report it as kRejected: the search only looks for a
// loss below the current point's.
struct GreedyBatch {
  float r;
  StreamKey key;
  uint64_t counter;
  int64_t count;
  float reject_above = HUGE_VALF;
};

inline constexpr Eval kRejected{HUGE_VALF, -1};

class CandidateEvaluator {
 public:
  virtual ~CandidateEvaluator() = default;
  // Makes `current` the point the candidates move from and returns its evaluation.
  virtual Eval set_current(const std::vector<float>& current) = 0;
  // out[s - 1] = the evaluation of slot s, s = 1 .. batch.count.
  virtual void evaluate(const PatternBatch& batch, Eval* out) = 0;
  virtual void evaluate(const GreedyBatch& batch, Eval* out) = 0;
};

// Full evaluation of every candidate with evaluate_draw, the candidates of a
// batch spread over `threads` threads; with `incremental`, pattern batches
// recompute only what a move changes (host/optim/candidates_incremental.h,
// the same bits). `task` must outlive the evaluator.
std::unique_ptr<CandidateEvaluator> make_cpu_candidate_evaluator(const StreamTask& task, int threads,
                                                                 bool incremental = false);

}  // namespace gac
