// A search in progress, saved between two of its calls (include/gac/search.h),
// so that a stopped or killed run goes on from there instead of repeating the
// search from its start. All of a search's randomness is keyed by its call
// index, so going on from a call boundary gives the same bits as never stopping.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace gac {

// The whole state of draw `draw`'s search after `calls` calls.
struct SearchCheckpoint {
  uint64_t draw = 0;
  std::vector<float> params;  // the current point, in the model's parameter layout
  float loss = 0;             // its training loss (the task's loss kind)
  int32_t correct = 0;        // its training examples classified right
  float radius = 0;
  uint64_t steps = 0;         // improvements so far
  int64_t calls = 0;          // calls made so far
};

// Where an optimizer keeps the checkpoints of the stream it trains (the run
// loop gives one backed by the run's ledger, host/run/run.cpp).
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  // The saved state of draw `draw`'s search, if any.
  virtual std::optional<SearchCheckpoint> load(uint64_t draw) = 0;
  // Saves `c` durably, replacing the draw's earlier checkpoint.
  virtual void save(const SearchCheckpoint& c) = 0;
};

}  // namespace gac
