// The incremental evaluator's kernel (candidates_incremental_lanes.h) for AVX512.
#include "host/optim/candidates_incremental_kernel.h"

#if defined(__AVX512F__) && defined(__FMA__)
#define GAC_LANES_ISA 512
#include "host/optim/candidates_incremental_lanes.h"

const gac::IncrementalKernel* gac::incremental_kernel_avx512() {
  static constexpr IncrementalKernel kernel = incremental_lanes::kernel("avx512");
  return &kernel;
}
#else
const gac::IncrementalKernel* gac::incremental_kernel_avx512() { return nullptr; }
#endif
