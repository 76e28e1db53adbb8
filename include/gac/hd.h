// Portability macros for arithmetic shared by the CPU backend and CUDA kernels.
//
// Draws must be bit-identical on both backends, so the parameter generator
// only uses operations that round the same way everywhere: IEEE +,-,*,/, sqrt
// and explicit fma. The host is compiled with -ffp-contract=off; on the device
// the *_rn intrinsics stop nvcc from fusing a multiply into a following add.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define GAC_HD __host__ __device__ __forceinline__
#else
#define GAC_HD inline
#endif

namespace gac {

GAC_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

GAC_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

GAC_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

GAC_HD float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

GAC_HD double dfma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

GAC_HD double dmul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

GAC_HD double ddiv_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}

GAC_HD double dsqrt_rn(double a) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

}  // namespace gac
