// LeNet (and any model with a convolution) on CUDA: a thread block per draw,
// running kernels/block_forward.h.
//
// Parameters: the block generates its draw's parameters straight into shared
// memory (the Philox blocks spread over its threads) and keeps them there for
// every example. At 11,074 parameters, writing them to global memory and
// reading them back costs more than evaluating an example (44 KB of traffic
// per draw against 92k fma), so they never leave the SM. Models too big for
// shared memory (LeNet width 1 on 3x32x32 inputs) keep the image in a
// per-block slice of global memory instead (kSmemImage = false); the code is
// the same, only the pointer differs.
//
// Early rejection: the whole block decides together after each example
// (thread 0 writes the verdict to shared memory, all threads read it after a
// barrier), so leaving at the first miss is uniform across the block's warps:
// no lane idles while others go on, which is what example groups and
// compaction buy the one-thread-per-draw kernels (kernels/cuda_dense.cuh).
// Finished blocks free their SM for the next draw at once. With
// early_reject == false every draw runs every example.
//
// The grid is persistent (about as many blocks as fit on the device at once)
// and blocks take the next slot from an atomic counter when they finish one:
// draws cost very different times (one example or all of them), and a fixed
// share per block would leave the early finishers idle at the launch's end.
// Per-block scratch (logits, and the image when it lives in global memory)
// does not grow with the launch.
#pragma once

#include "kernels/block_forward.h"

namespace gac {

constexpr int kBlockThreads = 128;

struct BlockArgs {
  ModelSpec m;
  BlockPlan plan;
  PriorSpec prior;
  StreamKey key;
  uint64_t first;           // draw of slot 0
  uint32_t count;           // slots in this launch
  const float* X;           // training examples [n][in_size]
  const int32_t* Y;
  int n;
  LossKind loss;
  int early_reject;
  float* logits;            // [gridDim.x][n * n_classes]
  float* images;            // [gridDim.x][plan.image_floats] when the image is not in shared memory
  uint8_t* perfect;         // [count] 1: classified every example
  float* slot_loss;         // [count] mean training loss of perfect draws
  unsigned long long* examples;  // example evaluations done (one atomicAdd per draw)
  uint32_t* next_slot;      // work counter, zero at launch
};

// Dynamic shared memory of block_evaluate / block_score, in floats.
inline size_t block_smem_floats(const BlockPlan& plan, bool smem_image) {
  return (smem_image ? static_cast<size_t>(plan.image_floats) : 0) + plan.in_floats + 2 * static_cast<size_t>(plan.act_floats);
}

template <bool kSmemImage>
__global__ void __launch_bounds__(kBlockThreads) block_evaluate(BlockArgs a) {
  extern __shared__ float smem[];
  __shared__ int s_ok;
  __shared__ uint32_t s_slot;
  __shared__ double s_scalar;
  __shared__ double s_factors[ModelSpec::kMaxLayers];
  const int tid = threadIdx.x, T = blockDim.x;
  float* const img = kSmemImage ? smem : a.images + static_cast<size_t>(blockIdx.x) * a.plan.image_floats;
  float* const xs = kSmemImage ? smem + a.plan.image_floats : smem;
  float* const act0 = xs + a.plan.in_floats;
  float* const act1 = act0 + a.plan.act_floats;
  const int C = a.m.n_classes, D = a.m.in_size();
  float* const logits = a.logits + static_cast<size_t>(blockIdx.x) * a.n * C;

  for (;;) {
    if (tid == 0) s_slot = atomicAdd(a.next_slot, 1u);
    block_sync();
    const uint32_t slot = s_slot;  // rewritten only after the barrier that ends this iteration
    if (slot >= a.count) break;
    block_generate(a.m, a.plan, a.prior, a.key, a.first + slot, img, &s_scalar, tid, T);
    bool perfect = true;
    int done = 0;
    for (int e = 0; e < a.n; ++e) {
      const float* x = a.X + static_cast<size_t>(e) * D;
      for (int k = tid; k < D; k += T) xs[k] = x[k];
      block_sync();
      const float* z = block_forward(a.m, a.plan, img, xs, act0, act1, tid, T);
      if (tid == 0) {
        for (int c = 0; c < C; ++c) logits[e * C + c] = z[c];
        s_ok = argmax(z, C) == a.Y[e];
      }
      block_sync();
      const bool ok = s_ok != 0;  // the same value in every thread: uniform control flow
      ++done;
      perfect = perfect && ok;
      if (!ok && a.early_reject) break;
    }
    float loss = 0.0f;
    if (perfect) {  // rare: the norms are long sequential sums, worth doing only here
      const float scale = block_logit_scale(a.m, a.plan, img, a.loss, s_factors, tid, T);
      if (tid == 0) {
        float sum = 0.0f;
        for (int e = 0; e < a.n; ++e) sum = add_rn(sum, cross_entropy(logits + e * C, C, a.Y[e], scale));
        loss = sum / static_cast<float>(a.n);
      }
    }
    if (tid == 0) {
      a.perfect[slot] = perfect ? 1 : 0;
      a.slot_loss[slot] = loss;
      atomicAdd(a.examples, static_cast<unsigned long long>(done));
    }
    block_sync();  // the image, s_ok and s_slot are rewritten for the next draw
  }
}

}  // namespace gac
