// The FMA peak kernel (fma_peak.h) for AVX2 with FMA: 8 floats per FMA.
#include <immintrin.h>

#include "host/bench/fma_peak.h"

namespace gac {

#if defined(__AVX2__) && defined(__FMA__)
namespace {

struct Avx2 {
  using F = __m256;
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static float sum(F v) {
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, v);
    float total = 0;
    for (float x : lanes) total += x;
    return total;
  }
};

// Two 256-bit FMA pipes with a latency of 4 to 5 cycles need 8 to 10
// independent chains in flight; 12 and the two operands fill the 16 registers.
constexpr int kChains = 12;
const FmaKernel kAvx2{"AVX2+FMA", 256, kChains, &run_fma_chains<Avx2, kChains>};

}  // namespace

const FmaKernel* fma_kernel_avx2() { return &kAvx2; }
#else
const FmaKernel* fma_kernel_avx2() { return nullptr; }
#endif

}  // namespace gac
