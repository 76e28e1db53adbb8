// Priors: the distribution of one draw's parameter vector, generated from
// Philox so that parameter i of draw d is the same number on every backend.
//
//   uniform  U(-r, r) for every weight and bias (the paper's hypercube)
//   normal   N(0, sigma^2)
//   kaiming  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per layer (PyTorch's default init)
//   regular  the paper's reset_parameters(): LeNet as kaiming; MLP and linear
//            weights U(-1/sqrt(fan_out), 1/sqrt(fan_out)), biases U(-1, 1)
//   sphere   Gaussian direction scaled to total L2 norm R
//
// Parameter i uses word i%4 of Philox block i/4. A uniform is built from the
// top 24 bits exactly (an integer in [-2^23, 2^23) times a power of two) and
// scaled with a single rounding. Normals use Box-Muller with the log and
// sin/cos of gac/portable_math.h, which round identically on host and device.
// With nested sampling (heads > 1) draw index p is a pair (body, head) whose
// blocks gac/nested.h defines: pair_raw and generate_param_range generate
// pairs, and generate_params does on the host (device code draws plain
// draws only).
#pragma once

#include "gac/hd.h"
#include "gac/nested.h"
#include "gac/philox.h"
#include "gac/portable_math.h"

namespace gac {

enum class PriorKind : int32_t { uniform, normal, kaiming, sphere, regular };
const char* prior_name(PriorKind kind);  // "uniform", ...

// The [prior] section of a config.
struct PriorConfig {
  PriorKind kind = PriorKind::uniform;
  double radius = 1.0;         // uniform: U(-radius, radius)
  double sigma = 1.0;          // normal: N(0, sigma^2)
  double sphere_radius = 1.0;  // sphere: total L2 norm
};

// Per-tensor scales resolved on the host (kaiming bounds depend on fan_in).
struct PriorSpec {
  static constexpr int kMaxTensors = 32;
  PriorKind kind = PriorKind::uniform;
  int32_t n_tensors = 0;
  int32_t tensor_end[kMaxTensors];  // exclusive end offset of each tensor
  float scale[kMaxTensors];         // r (uniform, kaiming, regular) or sigma (normal)
  double sphere_radius = 1.0;
  // Nested sampling (gac/nested.h): draw p is pair (p / heads, p % heads);
  // the head is parameters [head_begin, n_params), the last layer.
  uint32_t heads = 1;
  int32_t head_begin = 0;
};

// The spec of `prior` for the tensors of `model` (host only, host/model/prior.cpp).
struct Model;
// heads > 1: nested sampling's pairs (gac/nested.h); the sphere prior cannot
// nest (its one global norm ties the head to the body) and is refused.
PriorSpec make_prior_spec(const PriorConfig& prior, const Model& model, uint32_t heads = 1);

// Priors drawn as a 24-bit uniform times a per-tensor scale.
GAC_HD bool is_uniform_prior(PriorKind kind) {
  return kind == PriorKind::uniform || kind == PriorKind::kaiming || kind == PriorKind::regular;
}

// Uniform in [-scale, scale) from one 32-bit word.
GAC_HD float uniform_from_bits(uint32_t bits, float scale) {
  const float centered = static_cast<float>(static_cast<int32_t>(bits >> 8) - (1 << 23));
  return mul_rn(centered, mul_rn(scale, 0x1.0p-23f));
}

// Two standard normals from two 32-bit words (Box-Muller).
GAC_HD void normals_from_bits(uint32_t a, uint32_t b, float* z0, float* z1) {
  const float u1 = mul_rn(static_cast<float>((a >> 8) + 1u), 0x1.0p-24f);  // (0, 1]
  const float u2 = mul_rn(static_cast<float>(b >> 8), 0x1.0p-24f);         // [0, 1)
  const float r = sqrt_rn(mul_rn(-2.0f, log_portable(u1)));
  float c, s;
  sincos_2pi_portable(u2, &c, &s);
  *z0 = mul_rn(r, c);
  *z1 = mul_rn(r, s);
}

// Writes the 4 parameters of block `block` (indices 4*block .. 4*block+3),
// before any sphere scaling. `tensor` is a tensor at or before the one
// holding index 4*block and is advanced past it: callers walking blocks in
// order keep one variable instead of searching from the first tensor.
GAC_HD void prior_block(const PriorSpec& prior, StreamKey key, uint64_t draw, uint32_t block, float out[4],
                        int& tensor) {
  const U32x4 r = philox_block(key, draw, block);
  const bool uniform = is_uniform_prior(prior.kind);
  if (!uniform) {
    normals_from_bits(r.v[0], r.v[1], &out[0], &out[1]);
    normals_from_bits(r.v[2], r.v[3], &out[2], &out[3]);
    if (prior.kind == PriorKind::sphere) return;  // scaled as a whole afterwards
  }
  for (int j = 0; j < 4; ++j) {
    while (tensor + 1 < prior.n_tensors && block * 4u + j >= static_cast<uint32_t>(prior.tensor_end[tensor])) ++tensor;
    out[j] = uniform ? uniform_from_bits(r.v[j], prior.scale[tensor]) : mul_rn(out[j], prior.scale[tensor]);
  }
}

GAC_HD void prior_block(const PriorSpec& prior, StreamKey key, uint64_t draw, uint32_t block, float out[4]) {
  int tensor = 0;
  prior_block(prior, key, draw, block, out, tensor);
}

// prior_block in two steps, for callers that know each parameter's tensor:
// the block's four values before the per-tensor scale (prior_raw), then
// each value in tensor `tensor` (prior_scaled) -- the same roundings, so
// the same bits.
GAC_HD void prior_raw(const PriorSpec& prior, StreamKey key, uint64_t draw, uint32_t block, float raw[4],
                      uint32_t purpose = kPurposeParams) {
  const U32x4 r = philox_block(key, draw, block, purpose);
  if (is_uniform_prior(prior.kind)) {
    for (int j = 0; j < 4; ++j) raw[j] = static_cast<float>(static_cast<int32_t>(r.v[j] >> 8) - (1 << 23));
    return;
  }
  normals_from_bits(r.v[0], r.v[1], &raw[0], &raw[1]);
  normals_from_bits(r.v[2], r.v[3], &raw[2], &raw[3]);
}

// prior_raw of nested sampling's draw (pair) `draw`: a head's values come
// from its own block, the body's from the body's plain draw; a block holding
// both is computed twice, each side keeping its own values (gac/nested.h).
GAC_HD void pair_raw(const PriorSpec& prior, StreamKey key, uint64_t draw, uint32_t block, float raw[4]) {
  const Pair pair = pair_of(draw, prior.heads);
  const int32_t first = static_cast<int32_t>(4 * block);
  const bool head = pair.head != 0 && first + 4 > prior.head_begin;
  prior_raw(prior, key, pair.body, block, raw, head ? head_purpose(pair.head) : kPurposeParams);
  if (!head || first >= prior.head_begin) return;
  float body[4];
  prior_raw(prior, key, pair.body, block, body);
  for (int j = 0; j < 4; ++j)
    if (first + j < prior.head_begin) raw[j] = body[j];
}

// What prior_raw's values of tensor `tensor` are multiplied by: the
// uniform's scale / 2^23 (uniform_from_bits), sigma, or 1 for the sphere
// (scaled as a whole afterwards; times 1 leaves every float as it is).
GAC_HD float prior_factor(const PriorSpec& prior, int tensor) {
  switch (prior.kind) {
    case PriorKind::uniform:
    case PriorKind::kaiming:
    case PriorKind::regular: return mul_rn(prior.scale[tensor], 0x1.0p-23f);
    case PriorKind::normal: return prior.scale[tensor];
    case PriorKind::sphere: break;
  }
  return 1.0f;
}

GAC_HD float prior_scaled(const PriorSpec& prior, float raw, int tensor) {
  return mul_rn(raw, prior_factor(prior, tensor));
}

// Calls visit(i, value) for parameters i = 0 .. n_params-1 of `draw`, in
// order, before any sphere scaling: a draw walked without being stored.
template <class Visit>
GAC_HD void for_each_prior_value(const PriorSpec& prior, StreamKey key, uint64_t draw, int n_params, Visit visit) {
  int tensor = 0;
  for (int b = 0; 4 * b < n_params; ++b) {
    float raw[4];
    prior_raw(prior, key, draw, static_cast<uint32_t>(b), raw);
    for (int j = 0; j < 4; ++j) {
      const int i = 4 * b + j;
      if (i >= n_params) break;
      while (tensor + 1 < prior.n_tensors && i >= prior.tensor_end[tensor]) ++tensor;
      visit(i, prior_scaled(prior, raw[j], tensor));
    }
  }
}

// Parameters [begin, end) of draw (pair) `draw` into out[0 .. end - begin):
// the values generate_params gives them (any prior but the sphere, which
// scales the whole vector and cannot nest). Nested sampling generates a
// pair's head alone so.
template <class Out>
GAC_HD void generate_param_range(const PriorSpec& prior, StreamKey key, uint64_t draw, int begin, int end, Out out) {
  int tensor = 0;
  while (tensor + 1 < prior.n_tensors && begin >= prior.tensor_end[tensor]) ++tensor;
  for (int b = begin / 4; 4 * b < end; ++b) {
    float raw[4];
    pair_raw(prior, key, draw, static_cast<uint32_t>(b), raw);
    for (int j = 0; j < 4; ++j) {
      const int i = 4 * b + j;
      if (i < begin) continue;
      if (i >= end) break;
      while (tensor + 1 < prior.n_tensors && i >= prior.tensor_end[tensor]) ++tensor;
      out[i - begin] = prior_scaled(prior, raw[j], tensor);
    }
  }
}

// The sphere prior's factor R / |z| of `draw`: generate_params' sum of
// squares, in its order, without storing the parameters.
GAC_HD double sphere_factor(const PriorSpec& prior, StreamKey key, uint64_t draw, int n_params) {
  double sq = 0.0;
  for_each_prior_value(prior, key, draw, n_params, [&](int, float w) { sq = dfma_rn(w, w, sq); });
  return ddiv_rn(prior.sphere_radius, dsqrt_rn(sq));
}

// All n_params parameters of one draw, written through `params`: a float*
// or any accessor with operator[] (e.g. lane-interleaved device storage).
template <class Out>
GAC_HD void generate_params(const PriorSpec& prior, StreamKey key, uint64_t draw, int n_params, Out params) {
  if (prior.heads > 1) {  // nested sampling's pairs (a device scores accepted pairs so)
    generate_param_range(prior, key, draw, 0, n_params, params);
    return;
  }
  const int full = n_params / 4;
  int tensor = 0;
  for (int b = 0; b < full; ++b) {
    float v[4];
    prior_block(prior, key, draw, static_cast<uint32_t>(b), v, tensor);
    for (int j = 0; j < 4; ++j) params[4 * b + j] = v[j];
  }
  if (n_params % 4) {
    float tail[4];
    prior_block(prior, key, draw, static_cast<uint32_t>(full), tail, tensor);
    for (int j = 0; j < n_params % 4; ++j) params[4 * full + j] = tail[j];
  }
  if (prior.kind == PriorKind::sphere) {
    // Sequential sum in double: same order, same rounding, on every backend.
    double sq = 0.0;
    for (int i = 0; i < n_params; ++i) sq = dfma_rn(params[i], params[i], sq);
    const double factor = ddiv_rn(prior.sphere_radius, dsqrt_rn(sq));
    for (int i = 0; i < n_params; ++i) params[i] = static_cast<float>(dmul_rn(params[i], factor));
  }
}

}  // namespace gac
