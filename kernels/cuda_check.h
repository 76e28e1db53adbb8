// CUDA error checking and RAII device memory.
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
      cudaGetLastError();  // clear the sticky-free error state
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
  void upload(const T* host, size_t count) {
    if (count > count_) resize(count);
    if (count) GAC_CUDA_CHECK(cudaMemcpy(ptr_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  void release() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace gac
