// The SGD kernel of sgd_lanes.h for AVX-512: one vector per value.
#include "host/optim/sgd_kernel.h"

#if defined(__AVX512F__) && defined(__FMA__)
#define GAC_LANES_ISA 512
#include "host/optim/sgd_lanes.h"

const gac::SgdLaneKernel* gac::sgd_kernel_avx512() {
  static constexpr SgdLaneKernel kernel = sgd_lanes::kernel("avx512");
  return &kernel;
}
#else
const gac::SgdLaneKernel* gac::sgd_kernel_avx512() { return nullptr; }
#endif
