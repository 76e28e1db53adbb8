// kernels/forward.h and include/gac/prior.h over strided storage.
//
// CUDA kernels that run one draw per thread keep each draw's parameters,
// activations and logits "lane-interleaved": value i of the draw in slot s is
// at base[i * stride + s], so the 32 lanes of a warp, holding neighbouring
// slots, touch one contiguous run of memory per value (coalesced), instead of
// 32 addresses n_params apart. The reference functions take plain `float*`;
// the ones here take an accessor `a` with `a[i]` and do exactly the same IEEE
// operations in exactly the same order, so results are bit-identical (host
// tests check them against the reference with a stride-1 accessor and with
// real strides: tests/test_cuda.cpp).
//
// Plain __host__ __device__ code: compiled by nvcc for the kernels and by the
// host compiler for the tests.
#pragma once

#include <cstddef>

#include "gac/hd.h"
#include "gac/model.h"
#include "gac/prior.h"
#include "kernels/forward.h"

namespace gac {

// base[i * stride]: one draw's values in lane-interleaved storage.
struct Strided {
  float* base;
  size_t stride;
  GAC_HD float& operator[](int i) const { return base[static_cast<size_t>(i) * stride]; }
};

// dense_forward: bias first, then the inputs in memory order.
template <class P, class In, class Out>
GAC_HD void dense_forward_at(const Layer& L, P p, In in, Out out) {
  const int n_in = L.in_size();
  for (int o = 0; o < L.out_c; ++o) {
    float acc = L.b_off >= 0 ? p[L.b_off + o] : 0.0f;
    const int w = L.w_off + o * n_in;
    for (int i = 0; i < n_in; ++i) acc = fma_rn(p[w + i], in[i], acc);
    out[o] = L.relu ? relu(acc) : acc;
  }
}

// forward_example for models made only of dense layers. The first layer
// reads the example itself (the same address in every lane: a broadcast).
// Returns the buffer holding the logits.
template <class P, class Buf>
GAC_HD Buf dense_model_forward_at(const ModelSpec& m, P p, const float* x, Buf buf0, Buf buf1) {
  dense_forward_at(m.layers[0], p, x, buf0);
  for (int l = 1; l < m.n_layers; ++l) {
    if (l & 1) dense_forward_at(m.layers[l], p, buf0, buf1);
    else dense_forward_at(m.layers[l], p, buf1, buf0);
  }
  return (m.n_layers - 1) & 1 ? buf1 : buf0;
}

// True when a model is made only of dense layers (one thread per draw).
inline bool is_dense_only(const ModelSpec& m) {
  for (int l = 0; l < m.n_layers; ++l)
    if (m.layers[l].kind != LayerKind::dense) return false;
  return m.n_layers > 0;
}

template <class Z>
GAC_HD int argmax_at(Z z, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (z[i] > z[best]) best = i;
  return best;
}

template <class P>
GAC_HD double weight_norm_product_at(const ModelSpec& m, P params) {
  double product = 1.0;
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    if (L.w_off < 0) continue;
    double sq = 0.0;
    for (int i = 0, n = L.weight_count(); i < n; ++i) sq = dfma_rn(params[L.w_off + i], params[L.w_off + i], sq);
    product = dmul_rn(product, ddiv_rn(dsqrt_rn(sq), m.norm_divisor));
  }
  return product;
}

template <class P>
GAC_HD float logit_scale_at(const ModelSpec& m, P params, LossKind loss) {
  return loss == LossKind::raw ? 1.0f : static_cast<float>(ddiv_rn(1.0, weight_norm_product_at(m, params)));
}

// cross_entropy over logits z[offset .. offset + n_classes).
template <class Z>
GAC_HD float cross_entropy_at(Z z, int offset, int n_classes, int label, float scale) {
  float mx = mul_rn(z[offset], scale);
  for (int i = 1; i < n_classes; ++i) mx = max2(mx, mul_rn(z[offset + i], scale));
  float sum = 0.0f;
  for (int i = 0; i < n_classes; ++i) sum = add_rn(sum, exp_portable(add_rn(mul_rn(z[offset + i], scale), -mx)));
  return add_rn(log_portable(sum), add_rn(mx, -mul_rn(z[offset + label], scale)));
}

// The mean training loss of a perfect draw from its stored logits
// (logits[e * C + c]), summed in example order like evaluate_draw.
template <class P, class Z>
GAC_HD float training_loss_at(const ModelSpec& m, P params, Z logits, const int32_t* Y, int n, LossKind loss) {
  const int C = m.n_classes;
  const float scale = logit_scale_at(m, params, loss);
  float sum = 0.0f;
  for (int e = 0; e < n; ++e) sum = add_rn(sum, cross_entropy_at(logits, e * C, C, Y[e], scale));
  return sum / static_cast<float>(n);
}

}  // namespace gac
