// SGD from a prior draw, one model at a time: the minibatch order, the
// torch.optim.SGD update, the rule that snapshots a trajectory into loss
// bins, and the whole trajectory. Plain __host__ __device__ code; the batched
// CPU trainer (host/optim/sgd_lanes.h) runs the same operations in the same
// order for many models at once, and tests check the two agree bit for bit.
//
// A trajectory: parameters start as draw d of the prior. Before every
// minibatch step, and once after the last one, the full training set is
// checked (accuracy, and the loss of `loss` kind: normalized by default) the
// way GAC checks a draw. Bin j (edges[j], edges[j+1]] is *reached* at the
// first check with accuracy 1 and loss <= edges[j+1]; its snapshot is the
// parameters at that check, accepted into bin j if the loss is also >
// edges[j]. With momentum 0 (all the paper's configs) this is exactly the
// paper's train_sgd run once per bin from the same draw, whose model gets a
// zero gradient, so stays put, once it reaches the bin's upper edge; all bins
// in one pass. With momentum > 0 the paper's model would still drift on its
// momentum buffer; here it stops updating entirely. Unlike the paper's code
// this never ends training early because *all* models of a batch reached
// accuracy 1 (its es_acc break): a model's result depends on its draw alone.
// The trajectory ends when every bin is reached, after `epochs` epochs, or
// when a parameter stops being finite (its loss would be NaN: it can reach
// no bin).
#pragma once

#include <cstdint>

#include "gac/hd.h"
#include "gac/model.h"
#include "gac/philox.h"
#include "gac/prior.h"
#include "kernels/backward.h"
#include "kernels/forward.h"

namespace gac {

// 32-bit words from Philox, keyed by (stream key, epoch): the counter holds
// the epoch where a draw holds its index, and kPurposeSgdOrder.
struct OrderWords {
  StreamKey key;
  uint64_t epoch;
  uint32_t block = 0;
  int used = 4;
  U32x4 words{};

  GAC_HD uint32_t next() {
    if (used == 4) {
      words = philox_block(key, epoch, block++, kPurposeSgdOrder);
      used = 0;
    }
    return words.v[used++];
  }

  // Unbiased integer in [0, range), range > 0 (Lemire's multiply-and-reject).
  GAC_HD uint32_t below(uint32_t range) {
    uint64_t m = static_cast<uint64_t>(next()) * range;
    if (static_cast<uint32_t>(m) < range) {
      const uint32_t threshold = (0u - range) % range;
      while (static_cast<uint32_t>(m) < threshold) m = static_cast<uint64_t>(next()) * range;
    }
    return static_cast<uint32_t>(m >> 32);
  }
};

// The order in which epoch `epoch` visits the n training examples (the
// paper's torch.randperm per epoch): a Fisher-Yates shuffle, a pure function
// of (key, epoch, n), shared by every model of the stream.
GAC_HD void minibatch_order(StreamKey key, uint64_t epoch, int n, int32_t* order) {
  for (int i = 0; i < n; ++i) order[i] = i;
  OrderWords words{key, epoch};
  for (int i = n - 1; i > 0; --i) {
    const int j = static_cast<int>(words.below(static_cast<uint32_t>(i + 1)));
    const int32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

// torch.optim.SGD without dampening, Nesterov or weight decay: with momentum
// the buffer starts as the first gradient, then buf = momentum * buf + grad;
// the step is params -= lr * buf (PyTorch's add_ with alpha: one fma).
GAC_HD void sgd_update(int n_params, float lr, float momentum, bool first_step, const float* grad, float* velocity,
                       float* params) {
  for (int i = 0; i < n_params; ++i) {
    float d = grad[i];
    if (momentum != 0.0f) {
      velocity[i] = first_step ? d : add_rn(mul_rn(momentum, velocity[i]), d);
      d = velocity[i];
    }
    params[i] = fma_rn(-lr, d, params[i]);
  }
}

// Applies one check to a trajectory's bins. `lowest` is the lowest bin
// reached so far (n_edges - 1: none); since edges increase, a check that
// reaches bin j reaches every bin above it too. Returns the bin this check's
// snapshot is accepted into, or -1 (bins skipped past in one step, or a loss
// at or below edges[0], are reached but accept nothing).
GAC_HD int reach_bins(const float* edges, int n_edges, bool perfect, float loss, int& lowest) {
  if (!perfect || !(loss <= edges[n_edges - 1])) return -1;
  const int bin = find_bin(edges, n_edges, loss);  // -1: loss <= edges[0]
  const int reached = bin < 0 ? 0 : bin;
  if (reached >= lowest) return -1;
  lowest = reached;
  return bin;
}

// GAC_HD isfinite for floats: false for NaN and +-inf.
GAC_HD bool finite(float v) { return v - v == 0.0f; }

// One stream's SGD problem as plain data (pointers to host or device memory).
struct SgdProblem {
  ModelSpec model;
  PriorSpec prior;
  StreamKey key;
  LossKind loss;          // the check's loss (training itself is on the raw loss)
  const float* x;         // training set: n examples of model.in_size() floats
  const int32_t* y;
  int n;
  const float* edges;     // bin edges, increasing
  int n_edges;
  const int32_t* order;   // [epochs][n]: minibatch_order of every epoch
  int epochs;
  int batch;              // effective minibatch size (the last one of an epoch may be smaller)
  float lr, momentum;
};

// One model's working memory (sizes in floats).
struct SgdScratch {
  float* params;    // n_params
  float* grad;      // n_params
  float* velocity;  // n_params (momentum only)
  float* acts;      // total_activations
  float* d0;        // max_activation
  float* d1;        // max_activation
  float* logits;    // n * n_classes
};

// The gradient of the mean raw cross-entropy over examples order[0 .. count).
GAC_HD void minibatch_gradient(const SgdProblem& P, const int32_t* order, int count, SgdScratch s) {
  const ModelSpec& m = P.model;
  for (int i = 0; i < m.n_params; ++i) s.grad[i] = 0.0f;
  const float inv_batch = 1.0f / static_cast<float>(count);
  for (int b = 0; b < count; ++b) {
    const int e = order[b];
    example_gradient(m, s.params, P.x + static_cast<size_t>(e) * m.in_size(), P.y[e], inv_batch, s.acts, s.d0, s.d1,
                     s.grad);
  }
}

// Trains draw `draw` and calls emit(bin, loss, step, params) for each
// accepted snapshot (`step`: SGD steps taken before it). Returns the steps taken.
template <class Emit>
GAC_HD int sgd_trajectory(const SgdProblem& P, uint64_t draw, SgdScratch s, Emit&& emit) {
  const ModelSpec& m = P.model;
  generate_params(P.prior, P.key, draw, m.n_params, s.params);
  int lowest = P.n_edges - 1;
  // The check before step `step`; false once every bin is reached.
  auto check = [&](int step) {
    const DrawResult r = evaluate_draw(m, s.params, P.x, P.y, P.n, P.loss, true, s.d0, s.d1, s.logits);
    const int bin = reach_bins(P.edges, P.n_edges, r.correct == P.n, r.loss, lowest);
    if (bin >= 0) emit(bin, r.loss, step, static_cast<const float*>(s.params));
    return lowest > 0;
  };
  int step = 0;
  for (int epoch = 0; epoch < P.epochs; ++epoch)
    for (int start = 0; start < P.n; start += P.batch) {
      if (!check(step)) return step;
      const int count = P.n - start < P.batch ? P.n - start : P.batch;
      minibatch_gradient(P, P.order + static_cast<size_t>(epoch) * P.n + start, count, s);
      sgd_update(m.n_params, P.lr, P.momentum, step == 0, s.grad, s.velocity, s.params);
      ++step;
      for (int i = 0; i < m.n_params; ++i)
        if (!finite(s.params[i])) return step;
    }
  check(step);
  return step;
}

}  // namespace gac
