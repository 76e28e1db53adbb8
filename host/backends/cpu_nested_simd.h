// Nested sampling's SIMD kernels for the CPU backend (host/backends/cpu_nested.cpp
// drives them), two steps per body, each lane doing exactly the scalar
// reference's operations (kernels/nested.h) in its order:
//   bodies  W bodies at once, lane l = body first + l: the plain draws'
//           parameters, every layer but the last on each training example
//           (the example a broadcast, as in cpu_simd.h's draws mode), and
//           the body's weight-norm product;
//   heads   W heads of one body at once, lane l = one head: its parameters
//           from Philox (the lanes differ only in the counter's purpose
//           word), the last layer on the body's features (broadcasts), early
//           rejection per example until every lane has missed one.
//
// Included by the ISA files (cpu_simd_avx512.cpp, cpu_simd_avx2.cpp) after
// cpu_simd.h, for their vector type.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "host/backends/cpu_simd.h"
#include "kernels/nested.h"

namespace gac {

// One ISA's nested kernels (the two steps above). `bodies` is a task whose
// prior has heads = 1 (the plain draws); feats get n * head_inputs floats
// per body, products one double per body.
struct NestedSimdKernel {
  const char* name;
  int lanes;
  void (*bodies)(const StreamTask& bodies, uint64_t first, int count, float* feats, double* products);
  // Heads [h0, h1) of `body` on its features: appends the perfect pairs to
  // `hits` in order and returns the example evaluations.
  uint64_t (*heads)(const StreamTask& task, uint64_t body, uint32_t h0, uint32_t h1, const float* feats,
                    double product, std::vector<Hit>& hits);
};

// Head parameters of pairs[0 .. lanes) by the scalar generator, lane-minor
// into H: the normal prior. Portable code (cpu_nested.cpp), as
// generate_lanes_scalar.
void generate_head_lanes_scalar(const StreamTask& task, const uint64_t* pairs, int lanes, float* H);

namespace simd {

template <class V>
struct Nested {
  using K = Kernel<V>;
  using F = typename V::F;
  using I = typename V::I;
  static constexpr int W = V::W;

  struct Scratch {
    AlignedBuffer params, buf0, buf1, head, logits;
  };

  static ModelSpec body_model(const ModelSpec& m) {
    ModelSpec b = m;
    b.n_layers = m.n_layers - 1;
    return b;
  }

  static void bodies(const StreamTask& t, uint64_t first, int count, float* feats, double* products) {
    thread_local Scratch s;
    const ModelSpec& m = t.model;
    const ModelSpec body = body_model(m);
    const int n = static_cast<int>(t.train.size()), F = head_inputs(m), D = m.in_size();
    float* P = s.params.get(static_cast<size_t>(m.n_params) * W);
    float* b0 = s.buf0.get(static_cast<size_t>(m.max_activation) * W);
    float* b1 = s.buf1.get(static_cast<size_t>(m.max_activation) * W);
    uint64_t draws[W];
    for (int l = 0; l < W; ++l) draws[l] = first + std::min(l, count - 1);
    K::generate(t, draws, P);
    for (int e = 0; e < n; ++e) {
      const float* z = K::forward_draws(body, P, t.train.x.data() + static_cast<size_t>(e) * D, b0, b1);
      for (int l = 0; l < count; ++l)
        for (int i = 0; i < F; ++i) feats[(static_cast<size_t>(l) * n + e) * F + i] = z[static_cast<size_t>(i) * W + l];
    }
    alignas(64) double p[W];
    K::norm_products(body, P, p);
    for (int l = 0; l < count; ++l) products[l] = p[l];
  }

  // Philox blocks [block, block + NB) of W heads of `body` (purposes in
  // lane order), their uniforms stored for head parameters [begin, end).
  template <int NB>
  static void uniform_head_blocks(const StreamTask& t, I purpose, uint64_t body, int block, int begin, int end,
                                  int& tensor, float* H) {
    const PriorSpec& prior = t.prior;
    I c[NB][4];
    for (int b = 0; b < NB; ++b) {
      c[b][0] = V::iset1(static_cast<uint32_t>(block + b));
      c[b][1] = purpose;
      c[b][2] = V::iset1(static_cast<uint32_t>(body));
      c[b][3] = V::iset1(static_cast<uint32_t>(body >> 32));
    }
    K::template philox<NB>(c, t.key.k0, t.key.k1);
    for (int i = std::max(4 * block, begin); i < std::min(4 * (block + NB), end); ++i) {
      while (tensor + 1 < prior.n_tensors && i >= prior.tensor_end[tensor]) ++tensor;
      const int k = i - 4 * block;
      V::store(H + static_cast<size_t>(i - begin) * W, V::uniform(c[k / 4][k % 4], mul_rn(prior.scale[tensor], 0x1.0p-23f)));
    }
  }

  // The head parameters of W pairs of `body` (heads[l] in lane l), lane-minor:
  // value j of the head (parameter head_begin + j) at H[j * W + l].
  static void generate_heads(const StreamTask& t, uint64_t body, const uint32_t* heads, float* H) {
    const PriorSpec& prior = t.prior;
    const int begin = prior.head_begin, end = t.model.n_params;
    if (!is_uniform_prior(prior.kind)) {
      uint64_t pairs[W];
      for (int l = 0; l < W; ++l) pairs[l] = body * prior.heads + heads[l];
      generate_head_lanes_scalar(t, pairs, W, H);
      return;
    }
    uint64_t purposes[W];  // as 64-bit words: draw_lo loads their low halves
    for (int l = 0; l < W; ++l) purposes[l] = head_purpose(heads[l]);
    const I purpose = V::draw_lo(purposes);
    int tensor = 0;
    while (tensor + 1 < prior.n_tensors && begin >= prior.tensor_end[tensor]) ++tensor;
    constexpr int kInterleave = 4;
    const int blocks_end = (end + 3) / 4;
    int b = begin / 4;
    for (; b + kInterleave <= blocks_end; b += kInterleave)
      uniform_head_blocks<kInterleave>(t, purpose, body, b, begin, end, tensor, H);
    for (; b < blocks_end; ++b) uniform_head_blocks<1>(t, purpose, body, b, begin, end, tensor, H);
  }

  // W heads from heads[0] (count of them real) on the body's features.
  static uint64_t head_group(const StreamTask& t, uint64_t body, const uint32_t* heads, int count, const float* feats,
                             double product, Scratch& s, std::vector<Hit>& hits) {
    const ModelSpec& m = t.model;
    const Layer L = head_view(m);
    const int n = static_cast<int>(t.train.size()), C = m.n_classes, F = head_inputs(m);
    float* H = s.head.get(static_cast<size_t>(head_size(m)) * W);
    float* logits = s.logits.get(static_cast<size_t>(n) * C * W);
    generate_heads(t, body, heads, H);
    const uint32_t valid = count >= 32 ? ~0u : (1u << count) - 1u;
    uint32_t alive = valid;
    uint64_t examples = 0;
    for (int e = 0; e < n; ++e) {
      examples += std::popcount(t.early_reject ? alive : valid);
      float* z = logits + static_cast<size_t>(e) * C * W;
      K::template dense<true, false>(L, H, -1, feats + static_cast<size_t>(e) * F, z);
      alive &= K::argmax_is(z, C, V::set1(static_cast<float>(t.train.y[e])));
      if (t.early_reject && !alive) return examples;
    }
    if (!alive) return examples;
    alignas(64) double sq[W];
    if (t.loss == LossKind::normalized) V::sum_squares(H + static_cast<size_t>(L.w_off) * W, L.weight_count(), sq);
    float lane_logits[64];
    for (uint32_t a = alive; a; a &= a - 1) {
      const int l = std::countr_zero(a);
      const float scale = t.loss == LossKind::raw
                              ? 1.0f
                              : static_cast<float>(1.0 / (product * (std::sqrt(sq[l]) / static_cast<double>(m.norm_divisor))));
      float sum = 0.0f;
      for (int e = 0; e < n; ++e) {
        for (int c = 0; c < C; ++c) lane_logits[c] = logits[(static_cast<size_t>(e) * C + c) * W + l];
        sum = add_rn(sum, cross_entropy(lane_logits, C, t.train.y[e], scale));
      }
      const float loss = sum / static_cast<float>(n);
      hits.push_back({body * t.prior.heads + heads[l], loss,
                      find_bin(t.bin_edges.data(), static_cast<int>(t.bin_edges.size()), loss)});
    }
    return examples;
  }

  static uint64_t heads(const StreamTask& t, uint64_t body, uint32_t h0, uint32_t h1, const float* feats,
                        double product, std::vector<Hit>& hits) {
    thread_local Scratch s;
    uint64_t examples = 0;
    for (uint32_t h = h0; h < h1; h += W) {
      const int count = static_cast<int>(std::min<uint32_t>(W, h1 - h));
      uint32_t group[W];
      for (int l = 0; l < W; ++l) group[l] = h + std::min(l, count - 1);
      examples += head_group(t, body, group, count, feats, product, s, hits);
    }
    return examples;
  }
};

}  // namespace simd

// Each ISA's nested kernels, or nullptr when the build did not compile it.
const NestedSimdKernel* nested_kernel_avx512();
const NestedSimdKernel* nested_kernel_avx2();

}  // namespace gac
