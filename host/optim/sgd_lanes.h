// The lane-wise code of the batched SGD trainer (host/optim/sgd_kernel.h):
// lane l of every value belongs to one model, one SIMD vector (Vec) per
// value. Each lane performs exactly the operations of the one-model
// reference (kernels/backward.h, kernels/sgd_step.h) in the same order, so
// its parameters are bit-identical to it (tests/test_sgd.cpp checks that).
//
// All models of a stream visit the same minibatches, so the first layer
// reads each example as one value shared by all lanes (SharedIn).
//
// Included only by sgd_lanes_{avx512,avx2,generic}.cpp, each compiled with
// its own instruction set, after defining GAC_LANES_ISA (host/util/lane_vec.h:
// Vec, W and the lane-wise fma, exp and log). Everything here is in an
// anonymous namespace, as there.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>

#include "host/optim/sgd_kernel.h"
#include "host/util/lane_vec.h"

namespace gac::sgd_lanes {
namespace {

using namespace gac::lanes;
static_assert(W <= kMaxSgdLanes);

// ---- the loss (gac/portable_math.h, kernels/forward.h), lane-wise ----------

// Bit l for each lane l where `set` (a comparison: -1 or 0) is true.
inline uint32_t lane_mask(IVec set) {
  uint32_t mask = 0;
  for (int l = 0; l < W; ++l) mask |= (set[l] != 0 ? 1u : 0u) << l;
  return mask;
}

// Lanes whose argmax (the first maximum) of z[0 .. n_classes) is `label`.
inline uint32_t argmax_is(const Vec* z, int n_classes, int label) {
  Vec best = z[0], index{};
  for (int c = 1; c < n_classes; ++c) {
    const auto greater = z[c] > best;
    best = greater ? z[c] : best;
    index = greater ? splat(static_cast<float>(c)) : index;
  }
  return lane_mask(index == static_cast<float>(label));
}

// cross_entropy_grad of kernels/backward.h, lane-wise.
inline void vcross_entropy_grad(const Vec* z, int n_classes, int label, float inv_batch, Vec* dz) {
  Vec mx = z[0];
  for (int c = 1; c < n_classes; ++c) mx = vmax2(mx, z[c]);
  Vec sum{};
  for (int c = 0; c < n_classes; ++c) sum = sum + vexp(z[c] + -mx);
  for (int c = 0; c < n_classes; ++c) {
    const Vec softmax = vexp(z[c] + -mx) / sum;
    dz[c] = (softmax + (c == label ? -1.0f : 0.0f)) * inv_batch;
  }
}

// cross_entropy of logits z[0 .. n_classes) (one Vec per class) times `scale`.
inline Vec vcross_entropy(const Vec* z, int n_classes, int label, Vec scale) {
  Vec mx = z[0] * scale;
  for (int i = 1; i < n_classes; ++i) mx = vmax2(mx, z[i] * scale);
  Vec sum{};
  for (int i = 0; i < n_classes; ++i) sum = sum + vexp(z[i] * scale + -mx);
  return vlog(sum) + (mx + -(z[label] * scale));
}

// ---- the logit scale (kernels/forward.h), lane-wise in double --------------

// Half of a Vec's lanes, as floats and as doubles (one native vector).
typedef float HalfF __attribute__((vector_size(W / 2 * sizeof(float))));
typedef double HalfD __attribute__((vector_size(W / 2 * sizeof(double))));
constexpr auto kHalf = std::make_index_sequence<W / 2>();

template <size_t... I>
void split(Vec v, HalfD& low, HalfD& high, std::index_sequence<I...>) {
  low = __builtin_convertvector(__builtin_shufflevector(v, v, I...), HalfD);
  high = __builtin_convertvector(__builtin_shufflevector(v, v, (I + W / 2)...), HalfD);
}

template <size_t... I>
Vec join(HalfF low, HalfF high, std::index_sequence<I...>) {
  return __builtin_shufflevector(low, high, I..., (I + W / 2)...);
}

inline HalfD dfma(HalfD a, HalfD b, HalfD c) {  // dfma_rn
#if GAC_LANES_ISA == 512
  return _mm512_fmadd_pd(a, b, c);
#elif GAC_LANES_ISA == 256
  return _mm256_fmadd_pd(a, b, c);
#else
  for (int l = 0; l < W / 2; ++l) c[l] = std::fma(a[l], b[l], c[l]);
  return c;
#endif
}

inline HalfD dsqrt(HalfD a) {  // dsqrt_rn
#if GAC_LANES_ISA == 512
  return _mm512_sqrt_pd(a);
#elif GAC_LANES_ISA == 256
  return _mm256_sqrt_pd(a);
#else
  for (int l = 0; l < W / 2; ++l) a[l] = std::sqrt(a[l]);
  return a;
#endif
}

// logit_scale of every lane's parameters P, step for step.
inline Vec logit_scale(const ModelSpec& m, const Vec* P, LossKind loss) {
  if (loss == LossKind::raw) return splat(1.0f);
  HalfD product[2] = {HalfD{} + 1.0, HalfD{} + 1.0};
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    if (L.w_off < 0) continue;
    HalfD sq[2] = {};
    for (int i = 0, n = L.weight_count(); i < n; ++i) {
      HalfD w[2];
      split(P[L.w_off + i], w[0], w[1], kHalf);
      for (int h = 0; h < 2; ++h) sq[h] = dfma(w[h], w[h], sq[h]);
    }
    for (int h = 0; h < 2; ++h) product[h] = product[h] * (dsqrt(sq[h]) / static_cast<double>(m.norm_divisor));
  }
  return join(__builtin_convertvector(1.0 / product[0], HalfF), __builtin_convertvector(1.0 / product[1], HalfF), kHalf);
}

// Lane-minor arrays: value i of all lanes is one Vec.
inline Vec* lanes(float* p) { return reinterpret_cast<Vec*>(p); }
inline const Vec* lanes(const float* p) { return reinterpret_cast<const Vec*>(p); }

// Layer l's output in the all-activations buffer (activation_offset).
inline Vec* layer_output(const ModelSpec& m, Vec* acts, int l) {
  for (int i = 0; i < l; ++i) acts += m.layers[i].out_size();
  return acts;
}

// A layer's input value i: the example itself (SharedIn: the same for every
// lane) or a lane-minor activation.
template <bool SharedIn>
Vec input(const float* in, int i) {
  if constexpr (SharedIn) return splat(in[i]);
  else return lanes(in)[i];
}

// ---- forward (kernels/forward.h) ------------------------------------------

// B outputs of a dense layer at once (each input loaded once for all B),
// each summed as dense_forward does: bias, then the inputs in order.
template <bool SharedIn, int B>
void dense_rows(const Layer& L, const Vec* P, const float* in, Vec* out, int o) {
  const int n_in = L.in_size();
  Vec acc[B];
  for (int b = 0; b < B; ++b) acc[b] = L.b_off >= 0 ? P[L.b_off + o + b] : Vec{};
  const Vec* w = P + L.w_off + o * n_in;
  for (int i = 0; i < n_in; ++i) {
    const Vec x = input<SharedIn>(in, i);
    for (int b = 0; b < B; ++b) acc[b] = vfma(w[b * n_in + i], x, acc[b]);
  }
  for (int b = 0; b < B; ++b) out[o + b] = L.relu ? vrelu(acc[b]) : acc[b];
}

template <bool SharedIn>
void dense_forward(const Layer& L, const Vec* P, const float* in, Vec* out) {
  int o = 0;
  for (; o + 4 <= L.out_c; o += 4) dense_rows<SharedIn, 4>(L, P, in, out, o);
  for (; o < L.out_c; ++o) dense_rows<SharedIn, 1>(L, P, in, out, o);
}

// OB output channels x XB output columns of one output row, in registers:
// each input row segment is loaded once for all kx and channels, each
// weight once for all columns. Every output is summed as conv_forward does:
// bias, then (ic, ky, kx) in order.
template <bool SharedIn, int OB, int XB>
void conv_tile(const Layer& L, const Vec* P, const float* in, Vec* out, int oc, int oy, int ox) {
  const int k = L.k;
  Vec acc[OB][XB];
  for (int a = 0; a < OB; ++a)
    for (int j = 0; j < XB; ++j) acc[a][j] = L.b_off >= 0 ? P[L.b_off + oc + a] : Vec{};
  for (int ic = 0; ic < L.in_c; ++ic)
    for (int ky = 0; ky < k; ++ky) {
      const int row = (ic * L.in_h + oy + ky) * L.in_w + ox;
      for (int kx = 0; kx < k; ++kx) {
        Vec x[XB];
        for (int j = 0; j < XB; ++j) x[j] = input<SharedIn>(in, row + kx + j);
        for (int a = 0; a < OB; ++a) {
          const Vec w = P[L.w_off + (((oc + a) * L.in_c + ic) * k + ky) * k + kx];
          for (int j = 0; j < XB; ++j) acc[a][j] = vfma(w, x[j], acc[a][j]);
        }
      }
    }
  for (int a = 0; a < OB; ++a)
    for (int j = 0; j < XB; ++j)
      out[((oc + a) * L.out_h + oy) * L.out_w + ox + j] = L.relu ? vrelu(acc[a][j]) : acc[a][j];
}

template <bool SharedIn, int OB>
void conv_channels(const Layer& L, const Vec* P, const float* in, Vec* out, int oc) {
  constexpr int XB = 4;
  for (int oy = 0; oy < L.out_h; ++oy) {
    int ox = 0;
    for (; ox + XB <= L.out_w; ox += XB) conv_tile<SharedIn, OB, XB>(L, P, in, out, oc, oy, ox);
    for (; ox < L.out_w; ++ox) conv_tile<SharedIn, OB, 1>(L, P, in, out, oc, oy, ox);
  }
}

template <bool SharedIn>
void conv_forward(const Layer& L, const Vec* P, const float* in, Vec* out) {
  int oc = 0;
  for (; oc + 4 <= L.out_c; oc += 4) conv_channels<SharedIn, 4>(L, P, in, out, oc);
  for (; oc + 3 <= L.out_c; oc += 3) conv_channels<SharedIn, 3>(L, P, in, out, oc);
  for (; oc < L.out_c; ++oc) conv_channels<SharedIn, 1>(L, P, in, out, oc);
}

template <bool SharedIn>
void maxpool2_forward(const Layer& L, const float* in, Vec* out) {
  for (int c = 0; c < L.out_c; ++c)
    for (int y = 0; y < L.out_h; ++y)
      for (int x = 0; x < L.out_w; ++x) {
        const int top = (c * L.in_h + 2 * y) * L.in_w + 2 * x, bottom = top + L.in_w;
        out[(c * L.out_h + y) * L.out_w + x] =
            vmax2(vmax2(input<SharedIn>(in, top), input<SharedIn>(in, top + 1)),
                  vmax2(input<SharedIn>(in, bottom), input<SharedIn>(in, bottom + 1)));
      }
}

template <bool SharedIn>
void layer_forward(const Layer& L, const Vec* P, const float* in, Vec* out) {
  if (L.kind == LayerKind::dense) dense_forward<SharedIn>(L, P, in, out);
  else if (L.kind == LayerKind::conv) conv_forward<SharedIn>(L, P, in, out);
  else maxpool2_forward<SharedIn>(L, in, out);
}

// forward_keep on example x (shared by all lanes); returns the logits.
inline const Vec* forward_keep(const ModelSpec& m, const Vec* P, const float* x, Vec* acts) {
  const float* in = x;
  for (int l = 0; l < m.n_layers; ++l) {
    Vec* out = layer_output(m, acts, l);
    if (l == 0) layer_forward<true>(m.layers[l], P, in, out);
    else layer_forward<false>(m.layers[l], P, in, out);
    in = reinterpret_cast<const float*>(out);
  }
  return reinterpret_cast<const Vec*>(in);
}

// ---- backward (kernels/backward.h) ----------------------------------------

inline void relu_backward(const Vec* out, Vec* d_out, int count) {
  for (int i = 0; i < count; ++i) d_out[i] = out[i] > 0.0f ? d_out[i] : Vec{};
}

template <bool SharedIn>
void dense_backward(const Layer& L, const Vec* P, const float* in, const Vec* out, Vec* d_out, Vec* grad, Vec* d_in) {
  if (L.relu) relu_backward(out, d_out, L.out_size());
  const int n_in = L.in_size();
  for (int o = 0; o < L.out_c; ++o) {
    if (L.b_off >= 0) grad[L.b_off + o] = grad[L.b_off + o] + d_out[o];
    Vec* g = grad + L.w_off + o * n_in;
    for (int i = 0; i < n_in; ++i) g[i] = vfma(d_out[o], input<SharedIn>(in, i), g[i]);
  }
  if (!d_in) return;
  const Vec* w = P + L.w_off;
  for (int i = 0; i < n_in; ++i) {
    Vec acc{};
    for (int o = 0; o < L.out_c; ++o) acc = vfma(w[o * n_in + i], d_out[o], acc);
    d_in[i] = acc;
  }
}

// The gradients of the K weights (oc, ic, ky, 0..K-1) in registers, each
// summed over the output positions in reading order as conv_backward does;
// each output gradient is loaded once for all K.
template <bool SharedIn, int K>
void conv_weight_grad_row(const Layer& L, const float* in, const Vec* d, Vec* grad, int oc, int ic, int ky) {
  Vec* g = grad + L.w_off + ((oc * L.in_c + ic) * K + ky) * K;
  Vec s[K];
  for (int kx = 0; kx < K; ++kx) s[kx] = g[kx];
  for (int oy = 0; oy < L.out_h; ++oy) {
    const int row = (ic * L.in_h + oy + ky) * L.in_w;
    for (int ox = 0; ox < L.out_w; ++ox) {
      const Vec dv = d[oy * L.out_w + ox];
      for (int kx = 0; kx < K; ++kx) s[kx] = vfma(dv, input<SharedIn>(in, row + ox + kx), s[kx]);
    }
  }
  for (int kx = 0; kx < K; ++kx) g[kx] = s[kx];
}

template <bool SharedIn>
void conv_backward(const Layer& L, const Vec* P, const float* in, const Vec* out, Vec* d_out, Vec* grad, Vec* d_in) {
  if (L.relu) relu_backward(out, d_out, L.out_size());
  const int k = L.k, plane = L.out_h * L.out_w;
  for (int oc = 0; oc < L.out_c; ++oc) {
    const Vec* d = d_out + oc * plane;
    if (L.b_off >= 0) {
      Vec s = grad[L.b_off + oc];
      for (int i = 0; i < plane; ++i) s = s + d[i];
      grad[L.b_off + oc] = s;
    }
    if (k == 5) {
      for (int ic = 0; ic < L.in_c; ++ic)
        for (int ky = 0; ky < k; ++ky) conv_weight_grad_row<SharedIn, 5>(L, in, d, grad, oc, ic, ky);
      continue;
    }
    for (int ic = 0; ic < L.in_c; ++ic)
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          Vec& g = grad[L.w_off + ((oc * L.in_c + ic) * k + ky) * k + kx];
          Vec s = g;
          for (int oy = 0; oy < L.out_h; ++oy) {
            const int row = (ic * L.in_h + oy + ky) * L.in_w + kx;
            for (int ox = 0; ox < L.out_w; ++ox) s = vfma(d[oy * L.out_w + ox], input<SharedIn>(in, row + ox), s);
          }
          g = s;
        }
  }
  if (!d_in) return;
  for (int ic = 0; ic < L.in_c; ++ic)
    for (int y = 0; y < L.in_h; ++y)
      for (int x = 0; x < L.in_w; ++x) {
        Vec acc{};
        for (int oc = 0; oc < L.out_c; ++oc) {
          const Vec* w = P + L.w_off + (oc * L.in_c + ic) * k * k;
          const Vec* d = d_out + oc * plane;
          for (int oy = y - k + 1 > 0 ? y - k + 1 : 0; oy <= y && oy < L.out_h; ++oy)
            for (int ox = x - k + 1 > 0 ? x - k + 1 : 0; ox <= x && ox < L.out_w; ++ox)
              acc = vfma(w[(y - oy) * k + (x - ox)], d[oy * L.out_w + ox], acc);
        }
        d_in[(ic * L.in_h + y) * L.in_w + x] = acc;
      }
}

// Each window's gradient goes to the input window_argmax picks (the first
// maximum), chosen per lane with the same comparisons.
inline void maxpool2_backward(const Layer& L, const Vec* in, const Vec* d_out, Vec* d_in) {
  for (int i = 0, n = L.in_size(); i < n; ++i) d_in[i] = Vec{};
  for (int c = 0; c < L.out_c; ++c)
    for (int y = 0; y < L.out_h; ++y)
      for (int x = 0; x < L.out_w; ++x) {
        const int top = (c * L.in_h + 2 * y) * L.in_w + 2 * x, bottom = top + L.in_w;
        const int at[4] = {top, top + 1, bottom, bottom + 1};
        Vec best = in[at[0]], pick{};
        for (int j = 1; j < 4; ++j) {
          const auto greater = in[at[j]] > best;
          best = greater ? in[at[j]] : best;
          pick = greater ? splat(static_cast<float>(j)) : pick;
        }
        const Vec d = d_out[(c * L.out_h + y) * L.out_w + x];
        for (int j = 0; j < 4; ++j) d_in[at[j]] = pick == static_cast<float>(j) ? d : Vec{};
      }
}

// example_gradient for every lane, on example x with label `label`.
inline void example_gradient(const ModelSpec& m, const Vec* P, const float* x, int label, float inv_batch, Vec* acts,
                             Vec* d0, Vec* d1, Vec* grad) {
  vcross_entropy_grad(forward_keep(m, P, x, acts), m.n_classes, label, inv_batch, d0);
  Vec* d_out = d0;
  Vec* d_in = d1;
  for (int i = m.n_layers - 1; i >= 0; --i) {
    const Layer& L = m.layers[i];
    const Vec* out = layer_output(m, acts, i);
    if (i == 0) {
      if (L.kind == LayerKind::dense) dense_backward<true>(L, P, x, out, d_out, grad, nullptr);
      else if (L.kind == LayerKind::conv) conv_backward<true>(L, P, x, out, d_out, grad, nullptr);
      break;  // a first max pooling has no parameters before it to pass a gradient to
    }
    const Vec* in = layer_output(m, acts, i - 1);
    const float* in_f = reinterpret_cast<const float*>(in);
    if (L.kind == LayerKind::dense) dense_backward<false>(L, P, in_f, out, d_out, grad, d_in);
    else if (L.kind == LayerKind::conv) conv_backward<false>(L, P, in_f, out, d_out, grad, d_in);
    else maxpool2_backward(L, in, d_out, d_in);
    Vec* t = d_out;
    d_out = d_in;
    d_in = t;
  }
}

// ---- the kernel (host/optim/sgd_kernel.h) ----------------------------------

uint32_t classify(const SgdProblem& p, SgdScratch s, uint32_t active) {
  const ModelSpec& m = p.model;
  const int C = m.n_classes;
  Vec* logits = lanes(s.logits);
  uint32_t perfect = active;
  for (int e = 0; e < p.n && perfect; ++e) {
    const Vec* z = forward_keep(m, lanes(s.params), p.x + static_cast<size_t>(e) * m.in_size(), lanes(s.acts));
    for (int c = 0; c < C; ++c) logits[e * C + c] = z[c];
    perfect &= argmax_is(z, C, p.y[e]);
  }
  return perfect;
}

void mean_loss(const SgdProblem& p, SgdScratch s, float* loss) {
  const int C = p.model.n_classes;
  const Vec scale = logit_scale(p.model, lanes(s.params), p.loss);
  Vec sum{};
  for (int e = 0; e < p.n; ++e) sum = sum + vcross_entropy(lanes(s.logits) + e * C, C, p.y[e], scale);
  const Vec mean = sum / static_cast<float>(p.n);
  for (int l = 0; l < W; ++l) loss[l] = mean[l];
}

// sgd_update, lane-wise (-ffp-contract=off: momentum * v + d rounds twice, as
// mul_rn then add_rn); also finds the lanes whose parameters stopped being
// finite (finite(): v - v == 0).
uint32_t update(const SgdProblem& p, bool first_step, const Vec* grad, Vec* velocity, Vec* P) {
  const Vec neg_lr = splat(-p.lr), momentum = splat(p.momentum);
  IVec bad{};
  for (int i = 0, n = p.model.n_params; i < n; ++i) {
    Vec d = grad[i];
    if (p.momentum != 0.0f) {
      velocity[i] = first_step ? d : momentum * velocity[i] + d;
      d = velocity[i];
    }
    P[i] = vfma(neg_lr, d, P[i]);
    bad |= P[i] - P[i] != 0.0f;
  }
  return lane_mask(bad);
}

uint32_t step(const SgdProblem& p, SgdScratch s, const int32_t* order, int count, bool first_step) {
  const ModelSpec& m = p.model;
  Vec* grad = lanes(s.grad);
  for (int i = 0; i < m.n_params; ++i) grad[i] = Vec{};
  const float inv_batch = 1.0f / static_cast<float>(count);
  for (int b = 0; b < count; ++b)
    example_gradient(m, lanes(s.params), p.x + static_cast<size_t>(order[b]) * m.in_size(), p.y[order[b]], inv_batch,
                     lanes(s.acts), lanes(s.d0), lanes(s.d1), grad);
  return update(p, first_step, grad, lanes(s.velocity), lanes(s.params));
}

void exp_log(const float* x, float* exp, float* log) {
  Vec v;
  for (int l = 0; l < W; ++l) v[l] = x[l];
  const Vec e = vexp(v), g = vlog(v);
  for (int l = 0; l < W; ++l) exp[l] = e[l], log[l] = g[l];
}

void layer(const Layer& L, const float* P_f, const float* in, float* out_f, float* d_out_f, float* grad_f,
           float* d_in_f) {
  const Vec* P = lanes(P_f);
  Vec *out = lanes(out_f), *d_out = lanes(d_out_f), *grad = lanes(grad_f), *d_in = lanes(d_in_f);
  layer_forward<false>(L, P, in, out);
  if (L.kind == LayerKind::dense) dense_backward<false>(L, P, in, out, d_out, grad, d_in);
  else if (L.kind == LayerKind::conv) conv_backward<false>(L, P, in, out, d_out, grad, d_in);
  else maxpool2_backward(L, lanes(in), d_out, d_in);
}

constexpr SgdLaneKernel kernel(const char* name) { return {name, W, &classify, &mean_loss, &step, &exp_log, &layer}; }

}  // namespace
}  // namespace gac::sgd_lanes
