// Gradients for SGD: the backward pass of every layer of kernels/forward.h on
// one example, and the gradient of the mean raw cross-entropy of a minibatch.
// Plain __host__ __device__ loops over one model's float parameters; this is
// the reference the batched CPU trainer (host/optim/sgd_lanes.h) reproduces
// bit for bit, so every sum here has one fixed order, written with explicit
// fma and *_rn operations.
//
// Layout: the gradient vector has the parameter vector's layout. `acts` holds
// every layer's output one after another (activation_offset), which is what
// the backward pass needs: each layer's input and output.
#pragma once

#include "gac/hd.h"
#include "gac/model.h"
#include "gac/portable_math.h"
#include "kernels/forward.h"

namespace gac {

// Where layer `l`'s output starts in the all-activations buffer.
GAC_HD int activation_offset(const ModelSpec& m, int l) {
  int offset = 0;
  for (int i = 0; i < l; ++i) offset += m.layers[i].out_size();
  return offset;
}

// Floats of the all-activations buffer.
GAC_HD int total_activations(const ModelSpec& m) { return activation_offset(m, m.n_layers); }

// forward_example, keeping every layer's output in `acts`; returns the logits.
GAC_HD const float* forward_keep(const ModelSpec& m, const float* p, const float* x, float* acts) {
  const float* in = x;
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    float* out = acts + activation_offset(m, l);
    if (L.kind == LayerKind::dense) dense_forward(L, p, in, out);
    else if (L.kind == LayerKind::conv) conv_forward(L, p, in, out);
    else maxpool2_forward(L, in, out);
    in = out;
  }
  return in;
}

// d(mean cross-entropy of the batch)/d(logits) for one example of it:
// (softmax(z) - onehot(label)) * inv_batch, with the stable softmax of
// cross_entropy (the portable exp, so every backend agrees).
GAC_HD void cross_entropy_grad(const float* z, int n_classes, int label, float inv_batch, float* dz) {
  float mx = z[0];
  for (int c = 1; c < n_classes; ++c) mx = max2(mx, z[c]);
  float sum = 0.0f;
  for (int c = 0; c < n_classes; ++c) sum = add_rn(sum, exp_portable(add_rn(z[c], -mx)));
  for (int c = 0; c < n_classes; ++c) {
    const float softmax = exp_portable(add_rn(z[c], -mx)) / sum;
    dz[c] = mul_rn(add_rn(softmax, c == label ? -1.0f : 0.0f), inv_batch);
  }
}

// The ReLU's backward over `count` values: the gradient passes where the
// output is positive (PyTorch's threshold_backward on the output), in place.
GAC_HD void relu_backward(const float* out, float* d_out, int count) {
  for (int i = 0; i < count; ++i)
    if (!(out[i] > 0.0f)) d_out[i] = 0.0f;
}

// Dense layer. `d_out`: gradient of the layer's output (ReLU applied in place
// here); adds the weight and bias gradients to `grad`; writes the input's
// gradient to `d_in` unless it is null (the first layer needs none).
GAC_HD void dense_backward(const Layer& L, const float* p, const float* in, const float* out, float* d_out, float* grad,
                           float* d_in) {
  if (L.relu) relu_backward(out, d_out, L.out_size());
  const int n_in = L.in_size();
  for (int o = 0; o < L.out_c; ++o) {
    if (L.b_off >= 0) grad[L.b_off + o] = add_rn(grad[L.b_off + o], d_out[o]);
    float* g = grad + L.w_off + o * n_in;
    for (int i = 0; i < n_in; ++i) g[i] = fma_rn(d_out[o], in[i], g[i]);
  }
  if (!d_in) return;
  const float* W = p + L.w_off;
  for (int i = 0; i < n_in; ++i) {
    float acc = 0.0f;
    for (int o = 0; o < L.out_c; ++o) acc = fma_rn(W[o * n_in + i], d_out[o], acc);
    d_in[i] = acc;
  }
}

// Convolution (stride 1, no padding), same contract as dense_backward. Each
// weight's gradient sums over output positions in reading order; each
// input's gradient sums over the output channels, then the output positions
// that see it, in reading order.
GAC_HD void conv_backward(const Layer& L, const float* p, const float* in, const float* out, float* d_out, float* grad,
                          float* d_in) {
  if (L.relu) relu_backward(out, d_out, L.out_size());
  const int k = L.k, plane = L.out_h * L.out_w;
  for (int oc = 0; oc < L.out_c; ++oc) {
    const float* d = d_out + oc * plane;
    if (L.b_off >= 0) {
      float s = grad[L.b_off + oc];
      for (int i = 0; i < plane; ++i) s = add_rn(s, d[i]);
      grad[L.b_off + oc] = s;
    }
    for (int ic = 0; ic < L.in_c; ++ic)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          float& g = grad[L.w_off + ((oc * L.in_c + ic) * k + ky) * k + kx];
          float s = g;
          for (int oy = 0; oy < L.out_h; ++oy)
            for (int ox = 0; ox < L.out_w; ++ox)
              s = fma_rn(d[oy * L.out_w + ox], in[(ic * L.in_h + oy + ky) * L.in_w + ox + kx], s);
          g = s;
        }
  }
  if (!d_in) return;
  for (int ic = 0; ic < L.in_c; ++ic)
    for (int y = 0; y < L.in_h; ++y)
      for (int x = 0; x < L.in_w; ++x) {
        float acc = 0.0f;
        for (int oc = 0; oc < L.out_c; ++oc) {
          const float* W = p + L.w_off + (oc * L.in_c + ic) * k * k;
          const float* d = d_out + oc * plane;
          for (int oy = y - k + 1 > 0 ? y - k + 1 : 0; oy <= y && oy < L.out_h; ++oy)
            for (int ox = x - k + 1 > 0 ? x - k + 1 : 0; ox <= x && ox < L.out_w; ++ox)
              acc = fma_rn(W[(y - oy) * k + (x - ox)], d[oy * L.out_w + ox], acc);
        }
        d_in[(ic * L.in_h + y) * L.in_w + x] = acc;
      }
}

// Which of a 2x2 window's values (0..3 in reading order) max pooling took:
// the first maximum, as PyTorch routes the gradient.
GAC_HD int window_argmax(float v0, float v1, float v2, float v3) {
  const float v[4] = {v0, v1, v2, v3};
  return argmax(v, 4);
}

// 2x2 max pooling: each output's gradient goes to the input it took; inputs
// no window took (an odd last row or column) get zero.
GAC_HD void maxpool2_backward(const Layer& L, const float* in, const float* d_out, float* d_in) {
  for (int i = 0, n = L.in_size(); i < n; ++i) d_in[i] = 0.0f;
  for (int c = 0; c < L.out_c; ++c)
    for (int y = 0; y < L.out_h; ++y)
      for (int x = 0; x < L.out_w; ++x) {
        const int top = (c * L.in_h + 2 * y) * L.in_w + 2 * x, bottom = top + L.in_w;
        const int pick = window_argmax(in[top], in[top + 1], in[bottom], in[bottom + 1]);
        d_in[(pick < 2 ? top : bottom) + (pick & 1)] = d_out[(c * L.out_h + y) * L.out_w + x];
      }
}

// Adds one example's gradient of (cross-entropy / batch) to `grad`. `acts`
// holds total_activations floats; d0 and d1 hold max_activation floats each.
GAC_HD void example_gradient(const ModelSpec& m, const float* p, const float* x, int label, float inv_batch, float* acts,
                             float* d0, float* d1, float* grad) {
  const float* z = forward_keep(m, p, x, acts);
  cross_entropy_grad(z, m.n_classes, label, inv_batch, d0);
  float* d_out = d0;
  float* d_in = d1;
  for (int l = m.n_layers - 1; l >= 0; --l) {
    const Layer& L = m.layers[l];
    const float* in = l > 0 ? acts + activation_offset(m, l - 1) : x;
    const float* out = acts + activation_offset(m, l);
    float* d_in_or_null = l > 0 ? d_in : nullptr;
    if (L.kind == LayerKind::dense) dense_backward(L, p, in, out, d_out, grad, d_in_or_null);
    else if (L.kind == LayerKind::conv) conv_backward(L, p, in, out, d_out, grad, d_in_or_null);
    else maxpool2_backward(L, in, d_out, d_in);  // never first: a model starts with a dense or conv layer
    float* t = d_out;
    d_out = d_in;
    d_in = t;
  }
}

}  // namespace gac
