// The SIMD kernel of cpu_simd.h for AVX-512: 16 draws per vector.
#include <immintrin.h>

#include "host/backends/cpu_nested_simd.h"
#include "host/backends/cpu_simd.h"

namespace gac {

#if defined(__AVX512F__) && defined(__AVX512DQ__)
namespace {

struct Avx512 {
  static constexpr int W = 16;
  using F = __m512;
  using I = __m512i;
  using M = __mmask16;

  static F load(const float* p) { return _mm512_load_ps(p); }
  static void store(float* p, F v) { _mm512_store_ps(p, v); }
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F zero() { return _mm512_setzero_ps(); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  // MAXPS returns its first operand when it is greater, else its second:
  // max_ps(b, a) = b > a ? b : a, exactly the scalar max2(a, b) and relu.
  static F max2(F a, F b) { return _mm512_max_ps(b, a); }
  // maskz: _mm512_sqrt_ps trips GCC 12's -Wuninitialized (_mm512_undefined_ps).
  static F sqrt(F v) { return _mm512_maskz_sqrt_ps(static_cast<__mmask16>(0xFFFF), v); }
  static F relu(F v) { return _mm512_max_ps(v, _mm512_setzero_ps()); }
  static M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static F blend(M m, F if_set, F otherwise) { return _mm512_mask_blend_ps(m, otherwise, if_set); }
  static uint32_t eq_bits(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }

  static I iset1(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
  static I ixor3(I a, I b, I c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
  // Low and high words of each lane's draw index.
  static I draw_lo(const uint64_t* draws) {
    alignas(64) uint32_t v[W];
    for (int l = 0; l < W; ++l) v[l] = static_cast<uint32_t>(draws[l]);
    return _mm512_load_si512(v);
  }
  static I draw_hi(const uint64_t* draws) {
    alignas(64) uint32_t v[W];
    for (int l = 0; l < W; ++l) v[l] = static_cast<uint32_t>(draws[l] >> 32);
    return _mm512_load_si512(v);
  }
  // 32x32 -> 64-bit products of every lane: even lanes and odd lanes
  // separately (VPMULUDQ), then one two-source permute gathers the high
  // words and one the low words.
  static void mulhilo(I a, I m, I& hi, I& lo) {
    const I even = _mm512_mul_epu32(a, m);
    const I odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    const I hi_index = _mm512_set_epi32(31, 15, 29, 13, 27, 11, 25, 9, 23, 7, 21, 5, 19, 3, 17, 1);
    const I lo_index = _mm512_set_epi32(30, 14, 28, 12, 26, 10, 24, 8, 22, 6, 20, 4, 18, 2, 16, 0);
    hi = _mm512_permutex2var_epi32(even, hi_index, odd);
    lo = _mm512_permutex2var_epi32(even, lo_index, odd);
  }
  static F uniform(I bits, float scale23) {
    const I centered = _mm512_sub_epi32(_mm512_srli_epi32(bits, 8), _mm512_set1_epi32(1 << 23));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(centered), _mm512_set1_ps(scale23));
  }
  // Per lane: sequential sum of squares in double, as the scalar code.
  static void sum_squares(const float* p, int count, double out[W]) {
    __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
    for (int i = 0; i < count; ++i) {
      const F w = _mm512_load_ps(p + static_cast<size_t>(i) * W);
      const __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(w));
      const __m512d b = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)));
      lo = _mm512_fmadd_pd(a, a, lo);
      hi = _mm512_fmadd_pd(b, b, hi);
    }
    _mm512_storeu_pd(out, lo);
    _mm512_storeu_pd(out + 8, hi);
  }
};

using K = simd::Kernel<Avx512>;
const SimdKernel kAvx512{"avx512", Avx512::W, &K::evaluate, &K::score, &K::generate_range, &K::greedy,
                        &K::greedy_generate, &K::box_muller};
using N = simd::Nested<Avx512>;
const NestedSimdKernel kAvx512Nested{"avx512", Avx512::W, &N::bodies, &N::heads};

}  // namespace

const SimdKernel* simd_kernel_avx512() { return &kAvx512; }
const NestedSimdKernel* nested_kernel_avx512() { return &kAvx512Nested; }
#else
const SimdKernel* simd_kernel_avx512() { return nullptr; }
const NestedSimdKernel* nested_kernel_avx512() { return nullptr; }
#endif

}  // namespace gac
