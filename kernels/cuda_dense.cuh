// Linear and MLP models on CUDA: one thread per draw, early rejection by
// example groups with the surviving draws compacted between groups.
//
// Why groups: with one thread running all examples and leaving at its first
// miss, a warp runs as long as its longest-lived lane, and most lanes sit
// idle after example 0 or 1. Instead every launch checks example 0 for all
// draws, then example 1 for the survivors, then examples 2-3, 4-7, ...
// (groups doubling in size) and, between groups, CUB's DeviceSelect packs the
// surviving slots into a dense list, so the next group's warps are full of
// live draws again. Within a group no thread exits early: the lanes of a warp
// run the same examples, and a doomed draw wastes at most one group's work.
// Full evaluation (task.early_reject == false) is one group of all examples.
//
// Storage, all lane-interleaved (kernels/strided_forward.h) so that the
// lanes of a warp touch neighbouring addresses:
//   params  [n_params][capacity], by slot: generated once, by the first group
//   logits  [n * n_classes][capacity], by slot: kept until the loss is summed
//   act     [2 * max_activation][threads], by thread: per-example scratch
// Example data are the same for every lane (broadcast loads).
//
// Losses: once the last group leaves only perfect draws, dense_finish sums
// each one's cross-entropy in example order from the stored logits, exactly
// as evaluate_draw does, so accepted draws and losses equal the CPU's.
#pragma once

#include "kernels/strided_forward.h"

namespace gac {

constexpr int kDenseThreads = 128;

struct DenseArgs {
  ModelSpec m;
  PriorSpec prior;
  StreamKey key;
  uint64_t first;          // draw of slot 0
  uint32_t count;          // slots in this launch
  size_t capacity;         // stride of params and logits (>= count)
  size_t act_threads;      // stride of act (= total threads of the launch)
  const float* X;          // training examples [n][in_size]
  const int32_t* Y;        // labels [n]
  int n;
  float* params;
  float* logits;
  float* act;
  uint8_t* alive_flag;     // [capacity] 1 while the slot's draw has classified every example so far
  const uint32_t* alive;   // surviving slots (after the previous group)
  const uint32_t* n_alive; // their number, on the device (written by DeviceSelect)
};

// Examples [e0, e1) for every live draw. The first group walks all slots,
// generates their parameters and sets alive_flag; later groups walk the
// compacted list and clear the flag of draws that miss an example.
__global__ void __launch_bounds__(kDenseThreads) dense_group(DenseArgs a, int e0, int e1, int first_group) {
  const size_t tid = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t threads = static_cast<size_t>(gridDim.x) * blockDim.x;
  const uint32_t total = first_group ? a.count : *a.n_alive;
  const int C = a.m.n_classes, D = a.m.in_size();
  const Strided buf0{a.act + tid, a.act_threads};
  const Strided buf1{a.act + a.m.max_activation * a.act_threads + tid, a.act_threads};
  for (size_t i = tid; i < total; i += threads) {
    const uint32_t slot = first_group ? static_cast<uint32_t>(i) : a.alive[i];
    const Strided p{a.params + slot, a.capacity};
    const Strided logits{a.logits + slot, a.capacity};
    if (first_group) generate_params(a.prior, a.key, a.first + slot, a.m.n_params, p);
    bool ok = true;
    for (int e = e0; e < e1; ++e) {
      const Strided z = dense_model_forward_at(a.m, p, a.X + static_cast<size_t>(e) * D, buf0, buf1);
      for (int c = 0; c < C; ++c) logits[e * C + c] = z[c];
      ok = ok && argmax_at(z, C) == a.Y[e];
    }
    if (first_group) a.alive_flag[slot] = ok ? 1 : 0;
    else if (!ok) a.alive_flag[slot] = 0;
  }
}

// Mean training loss of each perfect draw (the survivors of the last group).
__global__ void __launch_bounds__(kDenseThreads) dense_finish(DenseArgs a, LossKind loss, float* hit_loss) {
  const size_t tid = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t threads = static_cast<size_t>(gridDim.x) * blockDim.x;
  const uint32_t total = *a.n_alive;
  for (size_t i = tid; i < total; i += threads) {
    const uint32_t slot = a.alive[i];
    const Strided p{a.params + slot, a.capacity};
    const Strided logits{a.logits + slot, a.capacity};
    hit_loss[i] = training_loss_at(a.m, p, logits, a.Y, a.n, loss);
  }
}

}  // namespace gac
