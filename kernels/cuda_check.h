// CUDA error checking and RAII wrappers: device and pinned host memory,
// streams, events, and a cuBLAS handle. Every runtime call goes through
// GAC_CUDA_CHECK (cuBLAS: GAC_CUBLAS_CHECK), which throws gac::Error naming
// the call, file and line. Destructors release without checking: they run
// during unwinding, where a second exception would terminate.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>
#include <utility>

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

inline void cublas_check(cublasStatus_t status, const char* what, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cublas: ") + what + " failed at " + file + ":" + std::to_string(line) + ": " +
                cublasGetStatusString(status));
}
#define GAC_CUBLAS_CHECK(call) ::gac::cublas_check((call), #call, __FILE__, __LINE__)

// Device buffer of T; moves, never copies.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) { resize(count); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) { o.ptr_ = nullptr, o.count_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Returns false (and holds nothing) when the device is out of memory.
  bool try_resize(size_t count) {
    release();
    if (count == 0) return true;
    const cudaError_t status = cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T));
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the (non-sticky) error so later checks do not see it
      ptr_ = nullptr;
      return false;
    }
    GAC_CUDA_CHECK(status);
    count_ = count;
    return true;
  }
  void resize(size_t count) {
    if (!try_resize(count)) throw Error("cuda: out of device memory allocating " + std::to_string(count * sizeof(T)) + " bytes");
  }
  // Synchronous upload on the default stream (begin_stream, score_test).
  void upload(const T* host, size_t count) {
    if (count > count_) resize(count);
    if (count) GAC_CUDA_CHECK(cudaMemcpy(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  void release() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// Page-locked host buffer: the target of asynchronous device-to-host copies.
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void resize(size_t count) {
    release();
    if (count == 0) return;
    GAC_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&ptr_), count * sizeof(T)));
    count_ = count;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  T& operator[](size_t i) const { return ptr_[i]; }
  void release() {
    if (ptr_) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// A stream that orders with the legacy default stream (cudaStreamDefault):
// the synchronous uploads of begin_stream/score_test can never race with it.
class CudaStream {
 public:
  CudaStream() { GAC_CUDA_CHECK(cudaStreamCreate(&stream_)); }
  ~CudaStream() {
    if (stream_) cudaStreamDestroy(stream_);
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  cudaStream_t get() const { return stream_; }
  void synchronize() const { GAC_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
};

// An event without timing, only for "this launch has finished".
class CudaEvent {
 public:
  CudaEvent() { GAC_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  ~CudaEvent() {
    if (event_) cudaEventDestroy(event_);
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  cudaEvent_t get() const { return event_; }
  void record(cudaStream_t stream) const { GAC_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  void synchronize() const { GAC_CUDA_CHECK(cudaEventSynchronize(event_)); }

 private:
  cudaEvent_t event_ = nullptr;
};

// A cuBLAS handle bound to one stream. (Not used by the kernels today: cuBLAS
// sums in its own order, and test accuracy must equal the CPU's bit for bit;
// see kernels/cuda_score.cuh.)
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    GAC_CUBLAS_CHECK(cublasCreate(&handle_));
    GAC_CUBLAS_CHECK(cublasSetStream(handle_, stream));
  }
  ~CublasHandle() {
    if (handle_) cublasDestroy(handle_);
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace gac
