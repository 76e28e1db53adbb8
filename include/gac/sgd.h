// The SGD baseline (the paper's train_sgd): every model starts from a prior
// draw d, the same draw GAC would check, and is trained with minibatch SGD on
// the raw cross-entropy. Its trajectory is snapshotted into loss bins as
// kernels/sgd_step.h describes: bin j takes the parameters of the first check
// at which the model classifies the whole training set and its (normalized)
// loss is <= edges[j+1], if that loss is also > edges[j]. One draw yields at
// most one model per bin; draws are consumed in index order like GAC's hits.
//
// Many draws are trained at once, one SIMD vector of them at a time (16 with
// AVX-512) by the widest kernel the CPU runs, across all cores
// (host/optim/sgd.cpp); a single draw can be re-trained alone (train_one, for
// verify) with bit-identical parameters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gac/backend.h"
#include "gac/optimizer.h"

namespace gac {

// [optimizer] kind = "sgd" settings (torch.optim.SGD semantics).
struct SgdConfig {
  double lr = 0.001;
  double momentum = 0.0;  // no dampening, no Nesterov; > 0: a bin's model still stops at its snapshot
  int batch_size = 2;     // the paper caps it at n/2: see effective_batch_size
  int epochs = 30;
  // > 0: the paper's SGDPoison (host/optim/poison.h): train on the training
  // set repeated this many times plus the test split with changed labels,
  // stop at the first check that fits that poisoned set, then bin the model
  // by its loss on the training set alone. 0: plain SGD.
  int poison_repeats = 0;
};

// The trainer holds every epoch's order of the examples it trains on:
// epochs x examples is at most this.
constexpr int64_t kMaxSgdEpochExamples = int64_t{1} << 26;

// Throws gac::Error naming the bad value: lr must be > 0 and finite as a
// float, momentum in [0, 1), batch_size >= 1, epochs >= 0, poison_repeats >= 0.
void validate_sgd_config(const SgdConfig& cfg);

// The paper's minibatch size for n training examples: min(n / 2, batch_size),
// at least 1; with poison_repeats > 0 (n: the poisoned set's size) the
// paper's SGDPoison takes min(n, batch_size).
int effective_batch_size(const SgdConfig& cfg, int n);

// One accepted SGD model: its parameters are the snapshot; step counts SGD
// steps before it.
using SgdHit = TrainedModel;
// Trajectories run and SGD steps taken, summed over them.
using SgdCounts = TrainCounts;

// The trainer's SIMD kernels this CPU and build run, widest first: some of
// "avx512", "avx2", then "generic" (the build's baseline instructions).
std::vector<std::string> sgd_kernels();

struct SgdLaneKernel;  // host/optim/sgd_kernel.h

class SgdTrainer {
 public:
  // threads 0: every core. kernel: "auto" (the first of sgd_kernels()) or
  // one of sgd_kernels(); throws gac::Error for one this CPU or build lacks.
  // Every kernel gives the same hits, bit for bit.
  explicit SgdTrainer(int threads = 0, const std::string& kernel = "auto");
  ~SgdTrainer();
  SgdTrainer(const SgdTrainer&) = delete;
  SgdTrainer& operator=(const SgdTrainer&) = delete;

  // Makes (task, cfg) current. Throws gac::Error for a bad config, or a task
  // with no training examples, fewer than two bin edges, examples not of the
  // model's input size or labels outside its classes.
  void begin_stream(const StreamTask& task, const SgdConfig& cfg);

  // Trains draws [first, first + count) and appends their hits to `hits`,
  // ordered by (draw, bin). The result depends only on the task, the config
  // and the draws: not on threads, nor on how draws are split into calls.
  SgdCounts train(uint64_t first, uint64_t count, std::vector<SgdHit>& hits);

  // Re-trains one draw alone with the plain reference code (kernels/sgd_step.h):
  // the same hits, bit for bit, as train() gives for that draw.
  std::vector<SgdHit> train_one(uint64_t draw) const;

  // Test accuracy and loss (the task's loss kind) of each hit's parameters,
  // computed as the CPU backend scores a draw.
  std::vector<TestScore> score_test(const std::vector<SgdHit>& hits) const;

  // Draws per train() call that keep every thread busy for a while (hits
  // hold their parameters, so a call's memory grows with its draws).
  uint64_t preferred_batch() const;

  int threads() const { return threads_; }
  const char* kernel() const;       // the kernel's name: "avx512", "avx2" or "generic"
  std::string description() const;  // "sgd (2 threads, avx512 kernel, 16 lanes)"

 private:
  struct Stream;
  int threads_;
  const SgdLaneKernel* kernel_;
  std::unique_ptr<Stream> stream_;
};

}  // namespace gac
