// The FMA peak kernel (fma_peak.h) for AVX-512: 16 floats per FMA.
#include <immintrin.h>

#include "host/bench/fma_peak.h"

namespace gac {

#if defined(__AVX512F__)
namespace {

struct Avx512 {
  using F = __m512;
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static float sum(F v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float total = 0;
    for (float x : lanes) total += x;
    return total;
  }
};

// Two 512-bit FMA pipes with a latency of 4 cycles need 8 independent chains
// in flight; 16 leave room for a longer latency and fit the 32 registers.
constexpr int kChains = 16;
const FmaKernel kAvx512{"AVX-512", 512, kChains, &run_fma_chains<Avx512, kChains>};

}  // namespace

const FmaKernel* fma_kernel_avx512() { return &kAvx512; }
#else
const FmaKernel* fma_kernel_avx512() { return nullptr; }
#endif

}  // namespace gac
