// Elementary functions written out in explicit IEEE steps (fma, +, *, /),
// so the CPU scalar code, the CPU SIMD code and CUDA all round them
// identically: draws (Box-Muller) and losses (cross-entropy) are then
// bit-identical on every backend, unlike with each platform's libm.
#pragma once

#include <cmath>
#include <cstring>

#include "gac/hd.h"

namespace gac {

// ln(x) for positive normal x, to a few ulp (NaN for NaN or x < 0).
GAC_HD float log_portable(float x) {
  if (!(x > 0.0f) || x > 3.40282347e38f) return x == 0.0f ? -HUGE_VALF : x > 0.0f ? x : NAN;
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = static_cast<int>(bits >> 23) - 127;
  bits = (bits & 0x007FFFFFu) | 0x3F800000u;  // mantissa in [1, 2)
  float m;
  memcpy(&m, &bits, sizeof m);
  if (m > 1.41421356f) {
    m = mul_rn(m, 0.5f);
    e += 1;
  }
  // ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.1716
  const float s = add_rn(m, -1.0f) / add_rn(m, 1.0f);
  const float s2 = mul_rn(s, s);
  float p = 1.0f / 11.0f;
  p = fma_rn(p, s2, 1.0f / 9.0f);
  p = fma_rn(p, s2, 1.0f / 7.0f);
  p = fma_rn(p, s2, 1.0f / 5.0f);
  p = fma_rn(p, s2, 1.0f / 3.0f);
  const float s3 = mul_rn(s2, s);
  const float ln_m = mul_rn(2.0f, fma_rn(s3, p, s));
  const float ef = static_cast<float>(e);
  return fma_rn(ef, 0.693145752f, fma_rn(ef, 1.42860677e-06f, ln_m));
}

// cos and sin of 2*pi*t for t in [0, 1).
GAC_HD void sincos_2pi_portable(float t, float* c, float* s) {
  const float q4 = mul_rn(t, 4.0f);                  // exact
  const int q = static_cast<int>(add_rn(q4, 0.5f));   // nearest quarter turn
  const float x = mul_rn(add_rn(q4, -static_cast<float>(q)), 1.57079637f);  // |x| <= pi/4
  const float x2 = mul_rn(x, x);
  float ps = -1.0f / 39916800.0f;
  ps = fma_rn(ps, x2, 1.0f / 362880.0f);
  ps = fma_rn(ps, x2, -1.0f / 5040.0f);
  ps = fma_rn(ps, x2, 1.0f / 120.0f);
  ps = fma_rn(ps, x2, -1.0f / 6.0f);
  const float sin_x = fma_rn(mul_rn(x2, x), ps, x);
  float pc = 1.0f / 479001600.0f;
  pc = fma_rn(pc, x2, -1.0f / 3628800.0f);
  pc = fma_rn(pc, x2, 1.0f / 40320.0f);
  pc = fma_rn(pc, x2, -1.0f / 720.0f);
  pc = fma_rn(pc, x2, 1.0f / 24.0f);
  pc = fma_rn(pc, x2, -0.5f);
  const float cos_x = fma_rn(x2, pc, 1.0f);
  switch (q & 3) {
    case 0: *c = cos_x; *s = sin_x; break;
    case 1: *c = -sin_x; *s = cos_x; break;
    case 2: *c = -cos_x; *s = -sin_x; break;
    default: *c = sin_x; *s = -cos_x; break;
  }
}

// e^x for x <= 0 (the shifted logits of a stable softmax), to a few ulp;
// 0 below -87 where e^x leaves the normal floats.
GAC_HD float exp_portable(float x) {
  if (!(x > -87.0f)) return x != x ? x : 0.0f;  // NaN stays NaN
  // x = k ln2 + r, |r| <= ln2/2, with ln2 split in two for an exact product.
  const float k = static_cast<float>(static_cast<int>(fma_rn(x, 1.44269504f, x < 0.0f ? -0.5f : 0.5f)));
  const float r = fma_rn(k, -1.42860677e-06f, fma_rn(k, -0.693145752f, x));
  float p = 1.0f / 5040.0f;
  p = fma_rn(p, r, 1.0f / 720.0f);
  p = fma_rn(p, r, 1.0f / 120.0f);
  p = fma_rn(p, r, 1.0f / 24.0f);
  p = fma_rn(p, r, 1.0f / 6.0f);
  p = fma_rn(p, r, 0.5f);
  p = fma_rn(p, r, 1.0f);
  p = fma_rn(p, r, 1.0f);
  const uint32_t bits = static_cast<uint32_t>(static_cast<int>(k) + 127) << 23;  // 2^k, k in [-126, 0]
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return mul_rn(p, scale);
}

}  // namespace gac
