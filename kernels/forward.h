// The arithmetic of one model on one example, and of the loss, as plain
// __host__ __device__ loops. This is the reference every backend is tested
// against: the CPU backend runs it as is, CUDA kernels call it per thread.
//
// Sums run in a fixed order (bias first, then inputs in memory order) with
// explicit fma, so a backend that keeps this order reproduces it exactly.
#pragma once

#include "gac/hd.h"
#include "gac/loss.h"
#include "gac/model.h"
#include "gac/portable_math.h"

namespace gac {

GAC_HD float relu(float v) { return v > 0.0f ? v : 0.0f; }

GAC_HD void dense_forward(const Layer& L, const float* p, const float* in, float* out) {
  const int n_in = L.in_size();
  const float* W = p + L.w_off;
  for (int o = 0; o < L.out_c; ++o) {
    float acc = L.b_off >= 0 ? p[L.b_off + o] : 0.0f;
    const float* w = W + o * n_in;
    for (int i = 0; i < n_in; ++i) acc = fma_rn(w[i], in[i], acc);
    out[o] = L.relu ? relu(acc) : acc;
  }
}

GAC_HD void conv_forward(const Layer& L, const float* p, const float* in, float* out) {
  const int k = L.k;
  for (int oc = 0; oc < L.out_c; ++oc) {
    const float bias = L.b_off >= 0 ? p[L.b_off + oc] : 0.0f;
    const float* W = p + L.w_off + oc * L.in_c * k * k;
    for (int oy = 0; oy < L.out_h; ++oy)
      for (int ox = 0; ox < L.out_w; ++ox) {
        float acc = bias;
        for (int ic = 0; ic < L.in_c; ++ic)
          for (int ky = 0; ky < k; ++ky) {
            const float* row = in + (ic * L.in_h + oy + ky) * L.in_w + ox;
            const float* w = W + (ic * k + ky) * k;
            for (int kx = 0; kx < k; ++kx) acc = fma_rn(w[kx], row[kx], acc);
          }
        out[(oc * L.out_h + oy) * L.out_w + ox] = L.relu ? relu(acc) : acc;
      }
  }
}

GAC_HD float max2(float a, float b) { return b > a ? b : a; }

GAC_HD void maxpool2_forward(const Layer& L, const float* in, float* out) {
  for (int c = 0; c < L.out_c; ++c)
    for (int y = 0; y < L.out_h; ++y)
      for (int x = 0; x < L.out_w; ++x) {
        const float* r0 = in + (c * L.in_h + 2 * y) * L.in_w + 2 * x;
        const float* r1 = r0 + L.in_w;
        out[(c * L.out_h + y) * L.out_w + x] = max2(max2(r0[0], r0[1]), max2(r1[0], r1[1]));
      }
}

// Runs layers [0, layers) on one example. buf0 and buf1 hold
// spec.max_activation floats each; returns the buffer holding the last
// layer's output (x itself when layers is 0).
GAC_HD const float* forward_layers(const ModelSpec& m, const float* params, const float* x, float* buf0, float* buf1,
                                   int layers) {
  const float* in = x;
  float* bufs[2] = {buf0, buf1};
  for (int l = 0; l < layers; ++l) {
    const Layer& L = m.layers[l];
    float* out = bufs[l & 1];
    if (L.kind == LayerKind::dense) dense_forward(L, params, in, out);
    else if (L.kind == LayerKind::conv) conv_forward(L, params, in, out);
    else maxpool2_forward(L, in, out);
    in = out;
  }
  return in;
}

// Runs all layers on one example; returns the buffer holding the logits.
GAC_HD const float* forward_example(const ModelSpec& m, const float* params, const float* x, float* buf0,
                                    float* buf1) {
  return forward_layers(m, params, x, buf0, buf1, m.n_layers);
}

// PyTorch's argmax: the first index holding the maximum.
GAC_HD int argmax(const float* z, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (z[i] > z[best]) best = i;
  return best;
}

// One layer's factor of the product below: the Frobenius norm of its
// weights `w` over norm_divisor. Squares are summed in double, sequentially,
// so every backend gets the same value.
GAC_HD double weight_norm(const ModelSpec& m, const Layer& L, const float* w) {
  double sq = 0.0;
  for (int i = 0, n = L.weight_count(); i < n; ++i) sq = dfma_rn(w[i], w[i], sq);
  return ddiv_rn(dsqrt_rn(sq), m.norm_divisor);
}

// Product over the weight layers among [0, layers) of weight_norm, in order.
GAC_HD double weight_norm_product(const ModelSpec& m, const float* params, int layers) {
  double product = 1.0;
  for (int l = 0; l < layers; ++l) {
    const Layer& L = m.layers[l];
    if (L.w_off >= 0) product = dmul_rn(product, weight_norm(m, L, params + L.w_off));
  }
  return product;
}

// Product over weight layers of (Frobenius norm / norm_divisor).
GAC_HD double weight_norm_product(const ModelSpec& m, const float* params) {
  return weight_norm_product(m, params, m.n_layers);
}

// Factor applied to the logits before the loss.
GAC_HD float logit_scale(const ModelSpec& m, const float* params, LossKind loss) {
  return loss == LossKind::raw ? 1.0f : static_cast<float>(ddiv_rn(1.0, weight_norm_product(m, params)));
}

// Cross-entropy of (scale * logits) against `label`, computed stably, with
// the portable exp and log so that every backend gets the same bits.
GAC_HD float cross_entropy(const float* logits, int n_classes, int label, float scale) {
  float mx = mul_rn(logits[0], scale);
  for (int i = 1; i < n_classes; ++i) mx = max2(mx, mul_rn(logits[i], scale));
  float sum = 0.0f;
  for (int i = 0; i < n_classes; ++i) sum = add_rn(sum, exp_portable(add_rn(mul_rn(logits[i], scale), -mx)));
  // log(sum) + (max - z_label): no large intermediate that would swallow the small term.
  return add_rn(log_portable(sum), add_rn(mx, -mul_rn(logits[label], scale)));
}

// Bin j with edges[j] < loss <= edges[j+1]; -1 outside every bin (NaN too).
GAC_HD int find_bin(const float* edges, int n_edges, float loss) {
  if (!(loss > edges[0]) || !(loss <= edges[n_edges - 1])) return -1;
  int j = 0;
  while (!(loss <= edges[j + 1])) ++j;
  return j;
}

struct DrawResult {
  int correct;  // training examples classified correctly (early rejection: up to the first miss)
  float loss;   // mean training loss; computed only for perfect draws unless full evaluation
};

// Evaluates one draw on the training set. With early rejection it stops at
// the first misclassified example; a perfect draw gets the same loss either
// way because the loss is summed afterwards, in example order, from the
// stored logits (`logits_buf` holds n * n_classes floats).
GAC_HD DrawResult evaluate_draw(const ModelSpec& m, const float* params, const float* X, const int32_t* Y, int n,
                                LossKind loss_kind, bool early_reject, float* buf0, float* buf1,
                                float* logits_buf) {
  const int C = m.n_classes, D = m.in_size();
  DrawResult r{0, 0.0f};
  for (int e = 0; e < n; ++e) {
    const float* z = forward_example(m, params, X + static_cast<size_t>(e) * D, buf0, buf1);
    for (int c = 0; c < C; ++c) logits_buf[e * C + c] = z[c];
    if (argmax(z, C) == Y[e]) ++r.correct;
    else if (early_reject) return r;
  }
  if (early_reject && r.correct < n) return r;
  const float scale = logit_scale(m, params, loss_kind);
  float sum = 0.0f;
  for (int e = 0; e < n; ++e) sum = add_rn(sum, cross_entropy(logits_buf + e * C, C, Y[e], scale));
  r.loss = sum / static_cast<float>(n);
  return r;
}

}  // namespace gac
