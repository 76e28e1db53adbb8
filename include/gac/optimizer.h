// The optimizer contract: what turns draws of a stream into trained models.
// Guess and check needs none (a draw is its own model, include/gac/backend.h);
// SGD (include/gac/sgd.h) trains from each draw. The run loop, verify, repair
// and report see only this interface.
//
// Draw d of a stream is one optimization started from prior draw d. Whatever
// randomness it uses is keyed by (stream key, d, ...), so its models depend
// only on the task, the config and d: never on threads, on how draws are split
// into calls, on the backend, shards or preemption.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gac/backend.h"
#include "gac/checkpoint.h"

namespace gac {

// One model an optimizer trained.
struct TrainedModel {
  uint64_t draw;              // the prior draw it started from
  int32_t bin;                // loss bin it is accepted into
  float loss;                 // training loss of its parameters (the task's loss kind)
  int32_t step;               // optimizer steps taken before it (0: the draw itself)
  std::vector<float> params;  // in the model's parameter layout
  int64_t calls = 0;          // searches: calls made (include/gac/search.h); 0 for SGD
  float radius = 0.0f;        // searches: the final radius; 0 for SGD
};

struct TrainCounts {
  uint64_t draws = 0;   // draws trained: a prefix of those asked for (fewer only when stopped)
  uint64_t steps = 0;   // optimizer steps taken, summed over them
  uint64_t failed = 0;  // draws whose optimization gave no model of training accuracy 1
};

struct RunConfig;

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // Makes `task` current. Throws gac::Error for a task the optimizer cannot train.
  virtual void begin_stream(const StreamTask& task) = 0;

  // Trains draws [first, first + count) and appends their models to `models`,
  // ordered by (draw, bin). Trains them all unless the stop flag given to
  // make_optimizer is raised: then counts.draws says how many, from `first`.
  virtual TrainCounts train(uint64_t first, uint64_t count, std::vector<TrainedModel>& models) = 0;

  // Re-trains one draw alone: the same models, bit for bit, as train() gives for it.
  virtual std::vector<TrainedModel> train_one(uint64_t draw) const = 0;

  // Test accuracy and loss (the task's loss kind) of each model's parameters.
  virtual std::vector<TestScore> score_test(const std::vector<TrainedModel>& models) const = 0;

  // Draws per train() call that keep every thread busy for a while.
  virtual uint64_t preferred_batch() const = 0;
  // train() calls are best asked for multiples of this many draws (no thread idles).
  virtual uint64_t call_group() const = 0;

  virtual int threads() const = 0;
  virtual std::string description() const = 0;

  // Searches (include/gac/checkpoint.h): from now on train() goes on with a
  // draw from its checkpoint in `sink`, if one is there, and saves its
  // state to `sink` between calls at most every `every_seconds` (0: after
  // every call) and when stopped. train_one() never uses them. Null: none.
  // Other optimizers keep nothing in progress and ignore it.
  virtual void set_checkpoints(CheckpointSink* sink, double every_seconds) {
    (void)sink;
    (void)every_seconds;
  }
};

// Test accuracy and loss (the task's loss kind) of each model's parameters on
// task.test, computed as the CPU backend scores a draw, on `threads` threads.
std::vector<TestScore> score_trained_models(const StreamTask& task, int threads, const std::vector<TrainedModel>& models);

// How reports name optimizer.kind `kind`: "guess and check", "SGD",
// "pattern search", "greedy search".
std::string optimizer_title(const std::string& kind);

// The optimizer cfg.optimizer names on `threads` threads (0: every core);
// nullptr for guess and check. A long optimization (a search) abandons its
// draw when `stop` becomes non-zero.
std::unique_ptr<Optimizer> make_optimizer(const RunConfig& cfg, int threads, const std::atomic<int>* stop = nullptr);

}  // namespace gac
