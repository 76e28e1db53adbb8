// portable_math.h's exp, log and sincos_2pi, lane by lane, for GCC vector types: every
// branch computed, then chosen per lane, each lane performing the scalar
// steps exactly (so the SIMD losses and normals equal the reference's).
// `fma` is the lane-wise fma_rn of the caller's instruction set.
//
// Everything is in an anonymous namespace: each file compiled for its own
// instruction set keeps its own copy, and no copy built for AVX-512 can be
// linked in place of another's.
#pragma once

#include <cmath>

namespace gac::lane_math {
namespace {

// exp_portable for the lanes of x.
template <class Vec, class IVec, class Fma>
inline Vec exp(Vec x, Fma fma) {
  const auto splat = [](float v) { return v - Vec{}; };  // v - (+0) is v, -0 included
  const IVec in_range = x > -87.0f;
  const Vec xs = in_range ? x : Vec{};  // out-of-range lanes are replaced below
  const IVec ki = __builtin_convertvector(fma(xs, splat(1.44269504f), xs < 0.0f ? splat(-0.5f) : splat(0.5f)), IVec);
  const Vec k = __builtin_convertvector(ki, Vec);
  const Vec r = fma(k, splat(-1.42860677e-06f), fma(k, splat(-0.693145752f), xs));
  Vec p = splat(1.0f / 5040.0f);
  p = fma(p, r, splat(1.0f / 720.0f));
  p = fma(p, r, splat(1.0f / 120.0f));
  p = fma(p, r, splat(1.0f / 24.0f));
  p = fma(p, r, splat(1.0f / 6.0f));
  p = fma(p, r, splat(0.5f));
  p = fma(p, r, splat(1.0f));
  p = fma(p, r, splat(1.0f));
  const Vec scale = (Vec)((ki + 127) << 23);  // 2^k
  return in_range ? p * scale : (x != x ? x : Vec{});
}

// log_portable for the lanes of x.
template <class Vec, class IVec, class Fma>
inline Vec log(Vec x, Fma fma) {
  const auto splat = [](float v) { return v - Vec{}; };
  const IVec special = ~(x > 0.0f) | (x > 3.40282347e38f);  // not positive (NaN too), or inf
  const Vec xs = special ? splat(1.0f) : x;
  IVec bits = (IVec)xs;
  IVec e = ((bits >> 23) & 0xFF) - 127;
  bits = (bits & 0x007FFFFF) | 0x3F800000;
  Vec m = (Vec)bits;
  const IVec big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  const Vec s = (m + -1.0f) / (m + 1.0f);
  const Vec s2 = s * s;
  Vec p = splat(1.0f / 11.0f);
  p = fma(p, s2, splat(1.0f / 9.0f));
  p = fma(p, s2, splat(1.0f / 7.0f));
  p = fma(p, s2, splat(1.0f / 5.0f));
  p = fma(p, s2, splat(1.0f / 3.0f));
  const Vec ln_m = 2.0f * fma(s2 * s, p, s);
  const Vec ef = __builtin_convertvector(e, Vec);
  const Vec result = fma(ef, splat(0.693145752f), fma(ef, splat(1.42860677e-06f), ln_m));
  const Vec special_value = x == 0.0f ? splat(-HUGE_VALF) : (x > 0.0f ? x : splat(NAN));
  return special ? special_value : result;
}

// sincos_2pi_portable for the lanes of t, each in [0, 1).
template <class Vec, class IVec, class Fma>
inline void sincos_2pi(Vec t, Vec& c, Vec& s, Fma fma) {
  const auto splat = [](float v) { return v - Vec{}; };
  const Vec q4 = t * 4.0f;
  const IVec q = __builtin_convertvector(q4 + 0.5f, IVec);  // truncation, as static_cast<int>
  const Vec x = (q4 - __builtin_convertvector(q, Vec)) * 1.57079637f;
  const Vec x2 = x * x;
  Vec ps = splat(-1.0f / 39916800.0f);
  ps = fma(ps, x2, splat(1.0f / 362880.0f));
  ps = fma(ps, x2, splat(-1.0f / 5040.0f));
  ps = fma(ps, x2, splat(1.0f / 120.0f));
  ps = fma(ps, x2, splat(-1.0f / 6.0f));
  const Vec sin_x = fma(x2 * x, ps, x);
  Vec pc = splat(1.0f / 479001600.0f);
  pc = fma(pc, x2, splat(-1.0f / 3628800.0f));
  pc = fma(pc, x2, splat(1.0f / 40320.0f));
  pc = fma(pc, x2, splat(-1.0f / 720.0f));
  pc = fma(pc, x2, splat(1.0f / 24.0f));
  pc = fma(pc, x2, splat(-0.5f));
  const Vec cos_x = fma(x2, pc, splat(1.0f));
  const IVec quadrant = q & 3;
  c = quadrant == 0 ? cos_x : quadrant == 1 ? -sin_x : quadrant == 2 ? -cos_x : sin_x;
  s = quadrant == 0 ? sin_x : quadrant == 1 ? cos_x : quadrant == 2 ? -sin_x : -cos_x;
}

}  // namespace
}  // namespace gac::lane_math
