// The incremental evaluator's kernel (candidates_incremental_lanes.h) for AVX2.
#include "host/optim/candidates_incremental_kernel.h"

#if defined(__AVX2__) && defined(__FMA__)
#define GAC_LANES_ISA 256
#include "host/optim/candidates_incremental_lanes.h"

const gac::IncrementalKernel* gac::incremental_kernel_avx2() {
  static constexpr IncrementalKernel kernel = incremental_lanes::kernel("avx2");
  return &kernel;
}
#else
const gac::IncrementalKernel* gac::incremental_kernel_avx2() { return nullptr; }
#endif
