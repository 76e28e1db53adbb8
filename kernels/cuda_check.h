// CUDA error checking and the stream wrapper of kernels/cuda_device.cu.
// Every runtime call goes through GAC_CUDA_CHECK, which throws gac::Error
// naming the call, file and line.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "gac/error.h"

namespace gac {

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess)
    throw Error(std::string("cuda: ") + what + " failed at " + file + ":" + std::to_string(line) + ": " +
                cudaGetErrorString(status));
}
#define GAC_CUDA_CHECK(call) ::gac::cuda_check((call), #call, __FILE__, __LINE__)

// After a kernel launch: a bad configuration shows up here, a fault in the
// kernel at the next synchronizing call (also checked).
#define GAC_CUDA_CHECK_LAUNCH() ::gac::cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

// A stream that orders with the legacy default stream (cudaStreamDefault
// flags): the synchronous copies of the device can never race with it.
class CudaStream {
 public:
  CudaStream() { GAC_CUDA_CHECK(cudaStreamCreate(&stream_)); }
  ~CudaStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

}  // namespace gac
