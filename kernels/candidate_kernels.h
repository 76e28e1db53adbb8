// The searches' candidates built on a device (host/optim/candidates_device.cpp):
// each candidate's parameters from the current point with the arithmetic of
// kernels/search_moves.h, and each candidate's logit scale, so the device's
// candidates are the CPU evaluator's bit for bit. One thread per item, the
// items strided over the grid's threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/forward.h"
#include "kernels/search_moves.h"

namespace gac {

struct CandidateArgs {
  ModelSpec m;
  LossKind loss;
  const float* current;    // [n_params]
  uint32_t count;          // candidates: slots 1 .. count at params[(slot - 1) * n_params]
  float r;                 // the batch's radius
  const uint32_t* moves;   // pattern: [count] moves
  StreamKey key;           // greedy: Philox key and counter of the batch
  uint64_t counter;
  float* params;           // [count][n_params]
  float* scales;           // [count] logit scales
};

// Pattern: one item per (candidate, parameter); the candidate's one move applied to its parameter.
GAC_HD void pattern_candidate_thread(const CandidateArgs& a, size_t tid, size_t threads) {
  const size_t d = static_cast<size_t>(a.m.n_params), items = a.count * d;
  for (size_t i = tid; i < items; i += threads) {
    const size_t s = i / d, p = i % d;
    const uint32_t move = a.moves[s];
    a.params[i] = p == pattern_move_param(move) ? pattern_moved(a.current[p], move, a.r) : a.current[p];
  }
}

// Greedy: one item per (candidate, block of four parameters).
GAC_HD void greedy_candidate_thread(const CandidateArgs& a, size_t tid, size_t threads) {
  const int64_t d = a.m.n_params;
  const size_t blocks = static_cast<size_t>((d + 3) / 4), items = a.count * blocks;
  for (size_t i = tid; i < items; i += threads) {
    const size_t s = i / blocks;
    greedy_candidate_block(a.current, d, a.key, a.counter, static_cast<int64_t>(s) + 1, a.r,
                           static_cast<int64_t>(i % blocks), a.params + s * static_cast<size_t>(d));
  }
}

// One item per candidate: its logit scale (a sequential sum over its weights).
GAC_HD void candidate_scale_thread(const CandidateArgs& a, size_t tid, size_t threads) {
  for (size_t s = tid; s < a.count; s += threads)
    a.scales[s] = logit_scale(a.m, a.params + s * static_cast<size_t>(a.m.n_params), a.loss);
}

}  // namespace gac
