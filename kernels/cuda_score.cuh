// Test-set scoring of accepted draws on CUDA: the test split stays resident,
// the accepted models of one call are generated on the device, and every
// (model, test example) pair gets its correctness and cross-entropy; the host
// sums them in example order in double, as the CPU backend does, so accuracy
// and loss equal the CPU's bit for bit.
//
// Why no cuBLAS: a GEMM sums in its own blocked order, so its logits differ
// from the reference in the last bits, and an argmax near a tie could then
// flip and change the accuracy, which must equal the CPU's exactly. These
// kernels keep the reference order; scoring runs once per accepted model, a
// small cost beside the search.
#pragma once

#include "kernels/block_forward.h"
#include "kernels/cuda_lenet.cuh"
#include "kernels/strided_forward.h"

namespace gac {

// Parameters of draws[i] at params[i * n_params], state_dict order, and
// (when scales is not null) each model's logit scale.
__global__ void generate_models(ModelSpec m, PriorSpec prior, StreamKey key, LossKind loss, const uint64_t* draws,
                                uint32_t count, float* params, float* scales) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  float* p = params + static_cast<size_t>(i) * m.n_params;
  generate_params(prior, key, draws[i], m.n_params, p);
  if (scales) scales[i] = logit_scale(m, p, loss);
}

struct ScoreArgs {
  ModelSpec m;
  BlockPlan plan;
  uint32_t models;
  const float* params;   // [models][n_params]
  const float* scales;   // [models]
  const float* X;        // test examples [n][in_size]
  const int32_t* Y;
  int n;
  float* act;            // dense: [2 * max_activation][total threads]; block: per-block images
  uint8_t* correct;      // [models][n]
  float* loss;           // [models][n]
};

// Dense models: one thread per (model, example) pair. Neighbouring threads
// share the model, so its parameter reads are broadcasts.
__global__ void __launch_bounds__(kDenseThreads) dense_score(ScoreArgs a) {
  const size_t tid = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t threads = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t pairs = static_cast<size_t>(a.models) * a.n;
  const int C = a.m.n_classes, D = a.m.in_size();
  const Strided buf0{a.act + tid, threads};
  const Strided buf1{a.act + a.m.max_activation * threads + tid, threads};
  for (size_t i = tid; i < pairs; i += threads) {
    const size_t model = i / a.n;
    const int e = static_cast<int>(i % a.n);
    const float* p = a.params + model * a.m.n_params;
    const Strided z = dense_model_forward_at(a.m, p, a.X + static_cast<size_t>(e) * D, buf0, buf1);
    a.correct[i] = argmax_at(z, C) == a.Y[e] ? 1 : 0;
    a.loss[i] = cross_entropy_at(z, 0, C, a.Y[e], a.scales[model]);
  }
}

constexpr int kScoreChunk = 32;  // test examples per block work item

// Other models: a block per (model, chunk of kScoreChunk examples).
template <bool kSmemImage>
__global__ void __launch_bounds__(kBlockThreads) block_score(ScoreArgs a) {
  extern __shared__ float smem[];
  const int tid = threadIdx.x, T = blockDim.x;
  float* const img = kSmemImage ? smem : a.act + static_cast<size_t>(blockIdx.x) * a.plan.image_floats;
  float* const xs = kSmemImage ? smem + a.plan.image_floats : smem;
  float* const act0 = xs + a.plan.in_floats;
  float* const act1 = act0 + a.plan.act_floats;
  const int C = a.m.n_classes, D = a.m.in_size();
  const int chunks = (a.n + kScoreChunk - 1) / kScoreChunk;
  const size_t items = static_cast<size_t>(a.models) * chunks;
  for (size_t item = blockIdx.x; item < items; item += gridDim.x) {
    const size_t model = item / chunks;
    const int e0 = static_cast<int>(item % chunks) * kScoreChunk;
    const int e1 = e0 + kScoreChunk < a.n ? e0 + kScoreChunk : a.n;
    block_load_image(a.m, a.plan, a.params + model * a.m.n_params, img, tid, T);
    for (int e = e0; e < e1; ++e) {
      const float* x = a.X + static_cast<size_t>(e) * D;
      for (int k = tid; k < D; k += T) xs[k] = x[k];
      block_sync();
      const float* z = block_forward(a.m, a.plan, img, xs, act0, act1, tid, T);
      if (tid == 0) {
        const size_t pair = model * a.n + e;
        a.correct[pair] = argmax(z, C) == a.Y[e] ? 1 : 0;
        a.loss[pair] = cross_entropy(z, C, a.Y[e], a.scales[model]);
      }
      block_sync();  // xs and the activations are rewritten next
    }
  }
}

}  // namespace gac
