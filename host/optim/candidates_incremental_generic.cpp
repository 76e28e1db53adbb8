// The incremental evaluator's kernel (candidates_incremental_lanes.h) with
// the build's baseline flags: GCC's generic vectors, fma one lane at a time.
#include "host/optim/candidates_incremental_kernel.h"

#define GAC_LANES_ISA 0
#include "host/optim/candidates_incremental_lanes.h"

const gac::IncrementalKernel* gac::incremental_kernel_generic() {
  static constexpr IncrementalKernel kernel = incremental_lanes::kernel("generic");
  return &kernel;
}
