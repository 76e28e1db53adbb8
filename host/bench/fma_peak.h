// The CPU's FP32 peak, measured: independent chains of fused multiply-adds of
// the widest vectors the CPU runs, enough of them to keep every FMA pipe busy
// (latency x pipes in flight). It is the ceiling of `gac bench` on a CPU: no
// real kernel does more floating-point work per second.
//
// One kernel per instruction set, each in a file compiled for it
// (fma_peak_avx512.cpp, fma_peak_avx2.cpp) and chosen at run time, as the CPU
// backend's are (host/backends/cpu_simd.h); fma_peak.cpp has the portable one.
#pragma once

#include <cstdint>

namespace gac {

struct FmaKernel {
  const char* name;  // "AVX-512", "AVX2+FMA", "portable code"
  int vector_bits;   // width of one operation's operands
  int chains;        // independent accumulator vectors
  // Runs `iterations` rounds of one multiply-add on each chain and returns a
  // sum of the chains (a result the caller keeps, so no work is skipped).
  float (*run)(uint64_t iterations);
  double flops(uint64_t iterations) const {  // a multiply-add counts 2, as in GFLOP/s everywhere in gac
    return 2.0 * static_cast<double>(iterations) * chains * (vector_bits / 32);
  }
};

// The loop of every kernel, on the vectors V of one ISA (V::F, set1, fma,
// add, sum): x -> 0.999 x + 0.001 tends to 1, so no value overflows or turns
// denormal. In an anonymous namespace, so that each ISA file compiles its own
// copy and no other file can end up calling it (the isa_kernels test).
namespace {

template <class V, int kChains>
float run_fma_chains(uint64_t iterations) {
  const typename V::F a = V::set1(0.999f), b = V::set1(0.001f);
  typename V::F acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = V::set1(static_cast<float>(c));
  for (uint64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 32
    for (int c = 0; c < kChains; ++c) acc[c] = V::fma(acc[c], a, b);
  }
  typename V::F sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = V::add(sum, acc[c]);
  return V::sum(sum);
}

}  // namespace

const FmaKernel* fma_kernel_avx512();  // nullptr where the build has no AVX-512 code
const FmaKernel* fma_kernel_avx2();    // nullptr where the build has no AVX2 code
const FmaKernel& fma_kernel_portable();

// The widest of them that this CPU runs.
const FmaKernel& widest_fma_kernel();

}  // namespace gac
