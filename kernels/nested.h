// Nested sampling's arithmetic (include/gac/nested.h): a body's features on
// the training set, computed once, and each head tried on them. This is the
// reference the nested engines are held to, and it is exact: it performs
// evaluate_draw's operations on the pair's full vector in the same order.
//   - The logits are the last layer's dense_forward on the features: the
//     same fma chain (bias, then the inputs in order).
//   - The loss's scale divides by weight_norm_product, a product of layer
//     factors taken in layer order starting from 1.0: the body's layers give
//     its prefix (the same double), and times the head's factor gives the
//     full product, as the last step of the full loop.
#pragma once

#include "gac/prior.h"
#include "kernels/forward.h"

namespace gac {

// The head is the last layer (always dense): its weights then its bias, the
// parameters [head_begin, n_params).
GAC_HD const Layer& head_layer(const ModelSpec& m) { return m.layers[m.n_layers - 1]; }
GAC_HD int head_begin(const ModelSpec& m) { return head_layer(m).w_off; }
GAC_HD int head_size(const ModelSpec& m) { return m.n_params - head_begin(m); }
GAC_HD int head_inputs(const ModelSpec& m) { return head_layer(m).in_size(); }  // features per example

// The last layer with offsets into the head's own parameters.
GAC_HD Layer head_view(const ModelSpec& m) {
  Layer L = head_layer(m);
  const int begin = head_begin(m);
  L.w_off -= begin;
  if (L.b_off >= 0) L.b_off -= begin;
  return L;
}

// The body's features of examples X[0 .. n) into feats[e * head_inputs + i];
// returns the body's weight_norm_product (every weight layer but the last).
// buf0 and buf1 hold max_activation floats each.
GAC_HD double body_features(const ModelSpec& m, const float* params, const float* X, int n, float* feats, float* buf0,
                            float* buf1) {
  const int F = head_inputs(m), D = m.in_size();
  for (int e = 0; e < n; ++e) {
    const float* f = forward_layers(m, params, X + static_cast<size_t>(e) * D, buf0, buf1, m.n_layers - 1);
    for (int i = 0; i < F; ++i) feats[static_cast<size_t>(e) * F + i] = f[i];
  }
  return weight_norm_product(m, params, m.n_layers - 1);
}

// The logit scale of a pair from its body's product and its head.
GAC_HD float pair_logit_scale(const ModelSpec& m, const Layer& head, const float* head_params, double body_product,
                              LossKind loss) {
  if (loss == LossKind::raw) return 1.0f;
  return static_cast<float>(ddiv_rn(1.0, dmul_rn(body_product, weight_norm(m, head, head_params + head.w_off))));
}

// evaluate_draw of the pair (body, head) from the body's features and
// product and the head's parameters (head_size floats, generate_param_range):
// the same result, bit for bit. logits_buf holds n * n_classes floats.
GAC_HD DrawResult evaluate_head(const ModelSpec& m, const float* head_params, const float* feats, double body_product,
                                const int32_t* Y, int n, LossKind loss_kind, bool early_reject, float* logits_buf) {
  const Layer L = head_view(m);
  const int C = m.n_classes, F = head_inputs(m);
  DrawResult r{0, 0.0f};
  for (int e = 0; e < n; ++e) {
    float* z = logits_buf + e * C;
    dense_forward(L, head_params, feats + static_cast<size_t>(e) * F, z);
    if (argmax(z, C) == Y[e]) ++r.correct;
    else if (early_reject) return r;
  }
  if (early_reject && r.correct < n) return r;
  const float scale = pair_logit_scale(m, L, head_params, body_product, loss_kind);
  float sum = 0.0f;
  for (int e = 0; e < n; ++e) sum = add_rn(sum, cross_entropy(logits_buf + e * C, C, Y[e], scale));
  r.loss = sum / static_cast<float>(n);
  return r;
}

}  // namespace gac
