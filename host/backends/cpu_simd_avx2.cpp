// The SIMD kernel of cpu_simd.h for AVX2 + FMA: 8 draws per vector.
#include <immintrin.h>

#include "host/backends/cpu_nested_simd.h"
#include "host/backends/cpu_simd.h"

namespace gac {

#if defined(__AVX2__) && defined(__FMA__)
namespace {

struct Avx2 {
  static constexpr int W = 8;
  using F = __m256;
  using I = __m256i;
  using M = __m256;

  static F load(const float* p) { return _mm256_load_ps(p); }
  static void store(float* p, F v) { _mm256_store_ps(p, v); }
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F zero() { return _mm256_setzero_ps(); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F max2(F a, F b) { return _mm256_max_ps(b, a); }  // b > a ? b : a (see cpu_simd_avx512.cpp)
  static F sqrt(F v) { return _mm256_sqrt_ps(v); }
  static F relu(F v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }
  static M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static F blend(M m, F if_set, F otherwise) { return _mm256_blendv_ps(otherwise, if_set, m); }
  static uint32_t eq_bits(F a, F b) { return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_EQ_OQ))); }

  static I iset1(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
  static I ixor3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  // Low and high words of each lane's draw index.
  static I draw_lo(const uint64_t* draws) {
    alignas(32) uint32_t v[W];
    for (int l = 0; l < W; ++l) v[l] = static_cast<uint32_t>(draws[l]);
    return _mm256_load_si256(reinterpret_cast<const I*>(v));
  }
  static I draw_hi(const uint64_t* draws) {
    alignas(32) uint32_t v[W];
    for (int l = 0; l < W; ++l) v[l] = static_cast<uint32_t>(draws[l] >> 32);
    return _mm256_load_si256(reinterpret_cast<const I*>(v));
  }
  static void mulhilo(I a, I m, I& hi, I& lo) {
    const I even = _mm256_mul_epu32(a, m);
    const I odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
  static F uniform(I bits, float scale23) {
    const I centered = _mm256_sub_epi32(_mm256_srli_epi32(bits, 8), _mm256_set1_epi32(1 << 23));
    return _mm256_mul_ps(_mm256_cvtepi32_ps(centered), _mm256_set1_ps(scale23));
  }
  static void sum_squares(const float* p, int count, double out[W]) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    for (int i = 0; i < count; ++i) {
      const F w = _mm256_load_ps(p + static_cast<size_t>(i) * W);
      const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(w));
      const __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
      lo = _mm256_fmadd_pd(a, a, lo);
      hi = _mm256_fmadd_pd(b, b, hi);
    }
    _mm256_storeu_pd(out, lo);
    _mm256_storeu_pd(out + 4, hi);
  }
};

using K = simd::Kernel<Avx2>;
const SimdKernel kAvx2{"avx2", Avx2::W, &K::evaluate, &K::score, &K::generate_range, &K::greedy,
                        &K::greedy_generate, &K::box_muller};
using N = simd::Nested<Avx2>;
const NestedSimdKernel kAvx2Nested{"avx2", Avx2::W, &N::bodies, &N::heads};

}  // namespace

const SimdKernel* simd_kernel_avx2() { return &kAvx2; }
const NestedSimdKernel* nested_kernel_avx2() { return &kAvx2Nested; }
#else
const SimdKernel* simd_kernel_avx2() { return nullptr; }
const NestedSimdKernel* nested_kernel_avx2() { return nullptr; }
#endif

}  // namespace gac

