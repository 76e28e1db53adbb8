// Incremental evaluation of pattern-search candidates (host/optim/candidates.h).
//
// A pattern move changes one parameter, so on each example only one output
// unit (dense) or channel (conv) of its layer changes: the evaluator keeps
// every layer's output for the current point on every training example,
// recomputes that unit from the cached input of its layer, and runs the
// layers after it from there. Each recomputation is kernels/forward.h's own
// code (dense_unit, conv_channel_forward, forward_layers_from), so the
// logits, the weight norms (only the moved layer's is recomputed) and the
// loss summed in example order are bit for bit those of a full evaluation.
// About 69% of LeNet's parameters sit in fc1, whose move costs fc1's one
// unit plus fc2 and fc3: ~11k of a full pass's ~282k multiply-adds.
#pragma once

#include <memory>

#include "host/optim/candidates.h"

namespace gac {

// Pattern batches incrementally; greedy batches in full (every parameter moves).
std::unique_ptr<CandidateEvaluator> make_incremental_candidate_evaluator(const StreamTask& task, int threads);

}  // namespace gac
