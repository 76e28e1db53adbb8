// Nested sampling on a device (include/gac/nested.h): the kernel bodies of
// host/backends/device_nested.cpp, as __host__ __device__ functions that
// kernels/cuda_device.cu wraps in __global__ functions and the emulated
// device (tests/emulated_device.cpp) runs on host threads.
//
// A launch holds the bodies [body0, body0 + bodies) and, of their pairs,
// those in [first, first + count) (slot = pair - first). Three steps, each
// one thread per item, so that a body's n examples are evaluated once
// however many heads share them:
//   nested_body_thread     per body: its plain draw's parameters
//                          (its pair with head 0) and weight_norm_product
//                          of every layer but the last;
//   nested_feature_thread  per (body, example): forward_layers up to the
//                          last layer, into feats[body][example][F];
//   nested_head_thread     per pair: the head's parameters
//                          (generate_param_range, as the CPU does) and
//                          evaluate_head on its body's features, early
//                          rejection at the first miss.
// Each is the arithmetic of kernels/nested.h, so a pair's verdict and loss
// are evaluate_draw's on its full vector, bit for bit. A linear model has no
// body: its features are the examples and its product 1.0.
// nested_finish_thread gathers the loss of each compacted hit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/device_intrinsics.h"
#include "kernels/nested.h"

namespace gac {

struct NestedArgs {
  ModelSpec m;
  PriorSpec prior;     // heads = K > 1
  StreamKey key;
  uint64_t body0;      // body of body slot 0
  uint32_t bodies;     // bodies of this launch
  uint64_t first;      // pair of slot 0
  uint32_t count;      // pairs of this launch
  const float* X;      // training examples [n][in_size]
  const int32_t* Y;    // labels [n]
  int n;
  LossKind loss;
  int early_reject;
  float* body_params;  // [bodies][n_params]
  double* products;    // [bodies]
  float* feats;        // [bodies][n][F] (unused for a linear model)
  float* scratch;      // per thread: [scratch_threads][scratch_floats]
  size_t scratch_floats;
  size_t scratch_threads;
  uint8_t* flags;      // [count] 1: the pair classifies every example
  float* loss_out;     // [count] the loss of a perfect pair
  unsigned long long* examples;  // examples evaluated by the heads (added to)
};

GAC_HD bool nested_has_body(const ModelSpec& m) { return m.n_layers > 1; }

// Scratch floats each thread of the feature and head kernels needs.
GAC_HD size_t nested_scratch_floats(const ModelSpec& m, int n) {
  const size_t feature = 2 * static_cast<size_t>(m.max_activation);
  const size_t head = static_cast<size_t>(head_size(m)) + static_cast<size_t>(n) * m.n_classes;
  return feature > head ? feature : head;
}

// The body's parameters are those of its pair with head 0, the plain draw
// `body` (include/gac/nested.h), generated without a copy of the prior (a
// local PriorSpec would live in local memory).
GAC_HD void nested_body_thread(const NestedArgs& a, size_t tid, size_t threads) {
  for (size_t b = tid; b < a.bodies; b += threads) {
    float* p = a.body_params + b * a.m.n_params;
    generate_param_range(a.prior, a.key, (a.body0 + b) * a.prior.heads, 0, a.m.n_params, p);
    a.products[b] = weight_norm_product(a.m, p, a.m.n_layers - 1);
  }
}

// forward_layers of every layer but the last, its buffers chosen without an
// indexed array (which would live in local memory): the same layer calls.
GAC_HD const float* nested_body_forward(const ModelSpec& m, const float* params, const float* x, float* buf0,
                                        float* buf1) {
  const float* in = x;
  for (int l = 0; l + 1 < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    float* out = (l & 1) ? buf1 : buf0;
    if (L.kind == LayerKind::dense) dense_forward(L, params, in, out);
    else if (L.kind == LayerKind::conv) conv_forward(L, params, in, out);
    else maxpool2_forward(L, in, out);
    in = out;
  }
  return in;
}

GAC_HD void nested_feature_thread(const NestedArgs& a, size_t tid, size_t threads) {
  const int F = head_inputs(a.m), D = a.m.in_size();
  float* buf0 = a.scratch + tid * a.scratch_floats;
  float* buf1 = buf0 + a.m.max_activation;
  const size_t items = static_cast<size_t>(a.bodies) * a.n;
  for (size_t i = tid; i < items; i += threads) {
    const size_t b = i / a.n, e = i % a.n;
    const float* f = nested_body_forward(a.m, a.body_params + b * a.m.n_params, a.X + e * D, buf0, buf1);
    float* out = a.feats + i * F;
    for (int j = 0; j < F; ++j) out[j] = f[j];
  }
}

GAC_HD void nested_head_thread(const NestedArgs& a, size_t tid, size_t threads) {
  const ModelSpec& m = a.m;
  const uint64_t K = a.prior.heads;
  const size_t per_body = static_cast<size_t>(a.n) * head_inputs(m);
  float* head = a.scratch + tid * a.scratch_floats;
  float* logits = head + head_size(m);
  unsigned long long examples = 0;
  for (size_t slot = tid; slot < a.count; slot += threads) {
    const uint64_t pair = a.first + slot;
    const size_t b = static_cast<size_t>(pair / K - a.body0);
    generate_param_range(a.prior, a.key, pair, head_begin(m), m.n_params, head);
    const bool body = nested_has_body(m);
    const DrawResult r = evaluate_head(m, head, body ? a.feats + b * per_body : a.X, body ? a.products[b] : 1.0, a.Y,
                                       a.n, a.loss, a.early_reject != 0, logits);
    examples += a.early_reject ? (r.correct + 1 < a.n ? r.correct + 1 : a.n) : a.n;
    a.flags[slot] = r.correct == a.n ? 1 : 0;
    a.loss_out[slot] = r.loss;
  }
  if (examples) atomic_fetch_add(a.examples, examples);
}

// hit_loss[k] = the loss of the k-th perfect pair (slot hits[k]).
GAC_HD void nested_finish_thread(const NestedArgs& a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss,
                                 size_t tid, size_t threads) {
  for (size_t k = tid; k < *n_hits; k += threads) hit_loss[k] = a.loss_out[hits[k]];
}

}  // namespace gac
