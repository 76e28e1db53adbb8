// The CPU's incremental evaluator of pattern-search candidates
// (host/optim/candidates.h): a pattern move changes one parameter, so only
// what lies downstream of it changes. set_current keeps the current point's
// activations of every layer for every training example; a candidate
// recomputes only the output channel (conv) or unit (dense) its parameter
// feeds, the pooling of that channel, and the layers after them, with
// kernels/forward.h's arithmetic in its order, then the loss as
// evaluate_draw does: the same bits as a full evaluation.
#pragma once

#include <memory>
#include <string>

#include "host/optim/candidates.h"

namespace gac {

// Greedy batches (every parameter moves) go to make_cpu_candidate_evaluator's
// full evaluation. `kernel`: as incremental_kernel() takes it
// (host/optim/candidates_incremental_kernel.h). `task` must outlive the evaluator.
std::unique_ptr<CandidateEvaluator> make_incremental_candidate_evaluator(const StreamTask& task, int threads,
                                                                         const std::string& kernel = "auto");

}  // namespace gac
