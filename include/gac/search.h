// The paper's gradient-free searches (Table 4; docs/optimizers.md has every
// rule and deviation): pattern search and greedy random search. Draw d of a
// stream is one search from prior draw d. Each call of a search evaluates
// batches of M = max(2, budget / n) candidates on the training set -- slot 0
// the current point -- and moves to the batch's best (ties keep the current
// point, then the lowest slot), comparing the mean training loss of the
// task's loss kind. A search ends with a model when its training accuracy,
// checked after calls 1, 1 + check_every, ... and the last, is 1.
//
//   pattern  slots 1.. take the next moves (one parameter +-r) of a shuffled
//            list of all 2 D moves; a call ends at its first improvement; r
//            starts at 1 and halves each time the list is used up (reshuffled)
//   greedy   slots 1.. are current + r N(0, I); r starts at 1 and halves
//            after 100 batches without improvement; a call ends at its
//            first improvement or gives up after 30 halvings
//
// The shuffles and the Gaussians come from Philox keyed by (stream key, draw,
// call, ...), so a search's result depends on nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "gac/optimizer.h"

namespace gac {

class Device;  // kernels/device.h

enum class SearchKind { pattern, greedy };

// [optimizer] keys of kind = "pattern" | "greedy". The defaults are the
// paper's MNIST settings (configs/table4/*.yaml there).
struct SearchConfig {
  int64_t budget = 10000;     // candidates x training examples per batch (the paper's MNIST: pattern 10,000, greedy 200,000)
  int64_t max_calls = 80000;  // calls per search (the paper's `epochs`)
  int64_t check_every = 0;    // training accuracy checked every this many calls; 0: the paper's
                              // max_calls / 100 (pattern) or / 300 (greedy)
  bool incremental = true;    // pattern: recompute only what a move changes (the same bits as in full)
};

constexpr int kGreedyStallBatches = 100;  // greedy: failed batches before r halves
constexpr int kGreedyHalvings = 30;       // greedy: halvings before a call gives up

// Candidates per batch for n training examples: max(2, budget / n).
int64_t search_candidates(const SearchConfig& cfg, int n);

// The calls between training-accuracy checks.
int64_t search_check_every(SearchKind kind, const SearchConfig& cfg);

// Philox key of draw `draw`'s search moves in stream `key`.
StreamKey search_key(StreamKey key, uint64_t draw);

// What the searches of one optimizer have done so far, counted as they go
// (gac bench reads them while a search runs).
struct SearchStats {
  std::atomic<uint64_t> batches{0};     // batches evaluated
  std::atomic<uint64_t> candidates{0};  // candidates evaluated (slots 1.. of each batch)
  std::atomic<uint64_t> steps{0};       // improvements (calls that moved the current point)
};

// threads 0: every core. With a device, the candidates are scored there
// (host/optim/candidates_device.h), else on the CPU's threads. The result
// never depends on threads or device. `stats`, when given, is counted into
// and must outlive the optimizer.
std::unique_ptr<Optimizer> make_search_optimizer(SearchKind kind, const SearchConfig& cfg, int threads,
                                                 const std::atomic<int>* stop = nullptr,
                                                 std::shared_ptr<Device> device = nullptr, SearchStats* stats = nullptr);

}  // namespace gac
