// The portable FMA peak kernel and the choice of the widest one the CPU runs.
#include "host/bench/fma_peak.h"

namespace gac {
namespace {

// A multiply and an add (portable code has no fused multiply-add; the pair
// counts 2 FLOP, as one FMA does), which the compiler may run as SSE vectors:
// what a CPU without AVX2 does at best.
struct Portable {
  using F = float;
  static F set1(float x) { return x; }
  static F fma(F a, F b, F c) { return a * b + c; }
  static F add(F a, F b) { return a + b; }
  static float sum(F v) { return v; }
};

constexpr int kPortableChains = 32;
const FmaKernel kPortable{"portable code", 32, kPortableChains, &run_fma_chains<Portable, kPortableChains>};

}  // namespace

const FmaKernel& fma_kernel_portable() { return kPortable; }

const FmaKernel& widest_fma_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && fma_kernel_avx512()) return *fma_kernel_avx512();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && fma_kernel_avx2()) return *fma_kernel_avx2();
  return kPortable;
}

}  // namespace gac
