// The SGD kernel of sgd_lanes.h for AVX2 + FMA: two vectors per value.
#include "host/optim/sgd_kernel.h"

#if defined(__AVX2__) && defined(__FMA__)
#define GAC_LANES_ISA 256
#include "host/optim/sgd_lanes.h"

const gac::SgdLaneKernel* gac::sgd_kernel_avx2() {
  static constexpr SgdLaneKernel kernel = sgd_lanes::kernel("avx2");
  return &kernel;
}
#else
const gac::SgdLaneKernel* gac::sgd_kernel_avx2() { return nullptr; }
#endif
