// The SGD kernel of sgd_lanes.h with the build's baseline flags: GCC's
// generic vectors (SSE2 on plain x86-64) and fma one lane at a time.
#include "host/optim/sgd_kernel.h"

#define GAC_LANES_ISA 0
#include "host/optim/sgd_lanes.h"

const gac::SgdLaneKernel* gac::sgd_kernel_generic() {
  static constexpr SgdLaneKernel kernel = sgd_lanes::kernel("generic");
  return &kernel;
}
