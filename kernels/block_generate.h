// A draw's parameters into a block's image (kernels/block_plan.h), each
// thread a run of consecutive Philox blocks, and the logit scale of a draw
// from its parameters generated one after the other (the finish kernel).
#pragma once

#include "gac/prior.h"
#include "kernels/block_plan.h"
#include "kernels/device_intrinsics.h"
#include "kernels/forward.h"

namespace gac {

// The Philox blocks one thread writes into the image: `count` consecutive
// ones from `first`, so that its cursor only steps forward. The count per
// thread is odd: a quarter-warp's eight 16-byte stores of one step then fall
// into eight different bank groups (lanes 4 * count floats apart).
struct BlockGenerator {
  ImageCursor start;
  int32_t first = 0;
  int32_t count = 0;
};

GAC_HD BlockGenerator make_block_generator(const BlockPlan& plan, int n_params, int tid, int threads) {
  const int blocks = (n_params + 3) / 4;
  const int per_thread = ((blocks + threads - 1) / threads) | 1;
  BlockGenerator g;
  g.first = tid * per_thread < blocks ? tid * per_thread : blocks;
  g.count = (g.first + per_thread < blocks ? g.first + per_thread : blocks) - g.first;
  if (g.count > 0) g.start = image_cursor(plan, 4 * g.first);
  return g;
}

// Philox4x32-10 with its ten round keys computed once per stream: the block
// kernels get them as kernel arguments, so the device XORs them in from the
// constant bank instead of adding W0/W1 to the key every round. The same
// rounds as philox4x32_10, so the same bits.
struct PhiloxKeys {
  uint32_t k0[10];
  uint32_t k1[10];
};

GAC_HD PhiloxKeys philox_keys(StreamKey key) {
  PhiloxKeys k;
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    k.k0[round] = k0;
    k.k1[round] = k1;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return k;
}

GAC_HD U32x4 philox_block_keyed(const PhiloxKeys& k, uint64_t draw, uint32_t block) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  U32x4 c{{block, kPurposeParams, static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32)}};
  GAC_UNROLL
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = mulhi32(M0, c.v[0]), lo0 = M0 * c.v[0];
    const uint32_t hi1 = mulhi32(M1, c.v[2]), lo1 = M1 * c.v[2];
    c = U32x4{{hi1 ^ c.v[1] ^ k.k0[round], lo1, hi0 ^ c.v[3] ^ k.k1[round], lo0}};
  }
  return c;
}

// The priors by what their generation code does, a template argument of the
// block kernels: no run-time switch on the kind inside the loop.
//   uniform  uniform, kaiming and regular: a 24-bit integer times the tensor's r / 2^23
//   normal   Box-Muller times the tensor's sigma
//   sphere   Box-Muller times the draw's sphere factor (in double)
enum class PriorClass : int32_t { uniform, normal, sphere };

GAC_HD PriorClass prior_class(PriorKind kind) {
  return is_uniform_prior(kind)         ? PriorClass::uniform
         : kind == PriorKind::normal ? PriorClass::normal
                                     : PriorClass::sphere;
}

// prior_raw of kernels' prior class `C`.
template <PriorClass C>
GAC_HD void prior_raw_as(const PhiloxKeys& keys, uint64_t draw, uint32_t block, float raw[4]) {
  const U32x4 r = philox_block_keyed(keys, draw, block);
  if (C == PriorClass::uniform) {
    GAC_UNROLL
    for (int j = 0; j < 4; ++j) raw[j] = static_cast<float>(static_cast<int32_t>(r.v[j] >> 8) - (1 << 23));
  } else {
    normals_from_bits(r.v[0], r.v[1], &raw[0], &raw[1]);
    normals_from_bits(r.v[2], r.v[3], &raw[2], &raw[3]);
  }
}

// prior_factor of tensor `tensor` for prior class C (1 for the sphere).
template <PriorClass C>
GAC_HD float prior_factor_as(const PriorSpec& prior, int tensor) {
  if (C == PriorClass::uniform) return mul_rn(prior.scale[tensor], 0x1.0p-23f);
  if (C == PriorClass::normal) return prior.scale[tensor];
  return 1.0f;
}

// A raw value as generate_params leaves it: times the tensor's factor, and
// for the sphere times the draw's factor instead (times 1 changes no float).
template <PriorClass C>
GAC_HD float prior_value_as(float raw, float factor, double sphere) {
  if (C == PriorClass::sphere) return static_cast<float>(dmul_rn(raw, sphere));
  return mul_rn(raw, factor);
}

// The cursor past the end of its row: on to the next row or tensor, with
// the row length and factor of where it lands.
template <PriorClass C>
GAC_HD void next_row(const BlockPlan& plan, const PriorSpec& prior, ImageCursor& c, int& row, float& factor) {
  const BlockSegment& S = plan.segments[c.seg];
  c.col = 0;
  c.at += S.stride - S.row;
  if (c.p == S.end && c.seg + 1 < plan.n_segments) {
    c.at = plan.segments[++c.seg].img;
    row = plan.segments[c.seg].row;
    factor = prior_factor_as<C>(prior, c.seg);
  }
}

// Philox block b of the draw at cursor c (row: c's row length, factor: its
// tensor's prior factor), the cursor moved past it.
template <PriorClass C>
GAC_HD void generate_block_as(const BlockPlan& plan, const PriorSpec& prior, const PhiloxKeys& keys, uint64_t draw,
                              uint32_t b, int n_params, double sphere, float* img, ImageCursor& c, int& row,
                              float& factor) {
  float raw[4];
  prior_raw_as<C>(keys, draw, b, raw);
  if (c.col + 4 <= row && (c.at & 3) == 0) {  // the common case
    float v[4];
    GAC_UNROLL
    for (int j = 0; j < 4; ++j) v[j] = prior_value_as<C>(raw[j], factor, sphere);
    store4(img + c.at, v);
    c.p += 4;
    c.at += 4;
    c.col += 4;
    if (c.col == row) next_row<C>(plan, prior, c, row, factor);
  } else {
    for (int j = 0; j < 4 && c.p < n_params; ++j) {
      img[c.at] = prior_value_as<C>(raw[j], factor, sphere);
      ++c.p;
      ++c.at;
      if (++c.col == row) next_row<C>(plan, prior, c, row, factor);
    }
  }
}

// The parameters of `draw` into the image, each thread its blocks of `g`.
// `sphere` is the draw's sphere factor (sphere prior only; see
// sphere_factor). A block of four parameters inside one row is one aligned
// 16-byte store (the image places every tensor congruent to its parameter
// offset mod 4); one that crosses a row or tensor end is stored value by
// value. Ends with block_sync().
template <PriorClass C>
GAC_HD void block_generate_as(const BlockPlan& plan, const BlockGenerator& g, int n_params, const PriorSpec& prior,
                              const PhiloxKeys& keys, uint64_t draw, double sphere, float* img) {
  ImageCursor c = g.start;
  int row = plan.segments[c.seg].row;
  float factor = prior_factor_as<C>(prior, c.seg);
  for (int b = g.first; b < g.first + g.count; ++b)
    generate_block_as<C>(plan, prior, keys, draw, static_cast<uint32_t>(b), n_params, sphere, img, c, row, factor);
  block_sync();
}

// block_generate_as for the prior's class, chosen at run time (host tests).
GAC_HD void block_generate(const BlockPlan& plan, const BlockGenerator& g, int n_params, const PriorSpec& prior,
                           StreamKey key, uint64_t draw, double sphere, float* img) {
  const PhiloxKeys keys = philox_keys(key);
  switch (prior_class(prior.kind)) {
    case PriorClass::uniform:
      block_generate_as<PriorClass::uniform>(plan, g, n_params, prior, keys, draw, sphere, img);
      break;
    case PriorClass::normal:
      block_generate_as<PriorClass::normal>(plan, g, n_params, prior, keys, draw, sphere, img);
      break;
    case PriorClass::sphere:
      block_generate_as<PriorClass::sphere>(plan, g, n_params, prior, keys, draw, sphere, img);
      break;
  }
}

// Copies contiguous parameters (state_dict order) into the image.
GAC_HD void block_load_image(const ModelSpec& m, const BlockPlan& plan, const float* params, float* img, int tid,
                             int threads) {
  const BlockGenerator g = make_block_generator(plan, m.n_params, tid, threads);
  ImageCursor c = g.start;
  const int end = 4 * (g.first + g.count) < m.n_params ? 4 * (g.first + g.count) : m.n_params;
  for (int p = 4 * g.first; p < end; ++p) {
    img[c.at] = params[p];
    advance_in_row(plan, c, 1);
  }
  block_sync();
}

// The first layer from l on that has weights (n_layers: none).
GAC_HD int next_weight_layer(const ModelSpec& m, int l) {
  while (l < m.n_layers && m.layers[l].w_off < 0) ++l;
  return l;
}

GAC_HD float sphere_scaled(float w, bool sphere, double factor) {
  return sphere ? static_cast<float>(dmul_rn(w, factor)) : w;
}

// logit_scale of `draw` with its parameters generated one after the other
// and none stored: each weight tensor's squares are summed as they come, in
// weight_norm_product's order. `sphere` is the draw's sphere factor (sphere
// prior only). One thread's sequential work: the batched finish kernels run
// it for perfect draws, one thread each.
GAC_HD float streamed_logit_scale(const ModelSpec& m, const PriorSpec& prior, StreamKey key, uint64_t draw,
                                  double sphere, LossKind loss) {
  if (loss == LossKind::raw) return 1.0f;
  const bool is_sphere = prior.kind == PriorKind::sphere;
  double product = 1.0, sq = 0.0;
  int l = next_weight_layer(m, 0);
  int w_begin = l < m.n_layers ? m.layers[l].w_off : m.n_params;
  int w_end = l < m.n_layers ? w_begin + m.layers[l].weight_count() : m.n_params;
  for_each_prior_value(prior, key, draw, m.n_params, [&](int i, float w) {
    if (i < w_begin) return;
    w = sphere_scaled(w, is_sphere, sphere);
    sq = dfma_rn(w, w, sq);
    if (i + 1 < w_end) return;
    product = dmul_rn(product, ddiv_rn(dsqrt_rn(sq), m.norm_divisor));
    sq = 0.0;
    l = next_weight_layer(m, l + 1);
    w_begin = l < m.n_layers ? m.layers[l].w_off : m.n_params;
    w_end = l < m.n_layers ? w_begin + m.layers[l].weight_count() : m.n_params;
  });
  return static_cast<float>(ddiv_rn(1.0, product));
}

}  // namespace gac
