// The vector type of the lane-wise kernels (host/optim/sgd_lanes.h,
// host/optim/candidates_incremental_lanes.h) and its basic operations.
//
// Included by .cpp files compiled each with its own instruction set, after
// defining GAC_LANES_ISA: 512 (AVX-512), 256 (AVX2 + FMA) or 0 (the build's
// baseline: SSE2 on plain x86-64). A Vec is one native vector of that set, W
// floats: GCC splits wider ones poorly, often lane by lane (AVX2 on 16 lanes
// ran 8x slower than on 8). +, *, comparisons and ?: on it are lane-wise IEEE
// operations.
//
// As in lane_math.h, everything is in an anonymous namespace and calls no
// shared inline arithmetic, so no copy compiled for one instruction set can
// be linked in place of another's.
#pragma once

#if !defined(GAC_LANES_ISA)
#error "define GAC_LANES_ISA (512, 256 or 0) before including lane_vec.h"
#endif
#if GAC_LANES_ISA != 0
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#include "host/util/lane_math.h"

namespace gac::lanes {
namespace {

#if GAC_LANES_ISA == 512
constexpr int W = 16;
#elif GAC_LANES_ISA == 256
constexpr int W = 8;
#else
constexpr int W = 4;
#endif

typedef float Vec __attribute__((vector_size(W * sizeof(float)), __may_alias__));
typedef int32_t IVec __attribute__((vector_size(W * sizeof(int32_t)), __may_alias__));

inline Vec splat(float x) { return x - Vec{}; }  // x - (+0) is x for every x, -0 and NaN included
inline Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Vec v) { std::memcpy(p, &v, sizeof v); }

// Lane-wise fma_rn: one rounding, as the reference.
inline Vec vfma(Vec a, Vec b, Vec c) {
#if GAC_LANES_ISA == 512
  return (Vec)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif GAC_LANES_ISA == 256
  return (Vec)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  Vec r;
  for (int l = 0; l < W; ++l) r[l] = std::fma(a[l], b[l], c[l]);  // fma_rn on the host
  return r;
#endif
}

inline Vec vrelu(Vec v) { return v > 0.0f ? v : Vec{}; }  // relu()
inline Vec vmax2(Vec a, Vec b) { return b > a ? b : a; }  // max2()

// portable_math.h's exp_portable and log_portable, lane by lane (lane_math.h).
// A closure, not a function pointer: the compiler inlines it into the polynomials.
constexpr auto kFma = [](Vec a, Vec b, Vec c) { return vfma(a, b, c); };
inline Vec vexp(Vec x) { return lane_math::exp<Vec, IVec>(x, kFma); }
inline Vec vlog(Vec x) { return lane_math::log<Vec, IVec>(x, kFma); }

}  // namespace
}  // namespace gac::lanes
