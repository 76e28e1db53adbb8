// What the device backend needs from an accelerator: memory, two in-order
// queues, copies, a compaction, and the search kernels of
// kernels/search_kernels.h, kernels/dense_tiles.h, kernels/nested_kernels.h
// and kernels/candidate_kernels.h.
//
// host/backends/device_backend.cpp builds the Backend contract
// (include/gac/backend.h) on top of this interface: launch sizing, the
// two-queue pipeline, the out-of-memory shrink, hits and test scores. Two
// devices implement it:
//   kernels/cuda_device.cu      a CUDA GPU (the `cuda` backend);
//   tests/emulated_device.cpp   host threads running the same kernel bodies,
//                               each block's threads meeting at a barrier,
//                               queued work deferred until synchronized: CI
//                               runs the whole backend on it without a GPU.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gac/error.h"
#include "kernels/candidate_kernels.h"
#include "kernels/dense_tiles.h"
#include "kernels/nested_kernels.h"
#include "kernels/search_kernels.h"

namespace gac {

struct DeviceProps {
  std::string name;
  int sms = 1;
  size_t total_memory = 0;
  size_t smem_per_block = 0;  // the most shared memory a block may use (static + dynamic)
  int major = 0, minor = 0;   // compute capability
  int dense_threads = 128;    // threads per block of the one-thread-per-item kernels
};

// Kernels whose occupancy decides launch sizes.
enum class DeviceKernel { dense_group, dense_tiles, dense_score, block_evaluate, block_score, block_finish, sphere_factors };

class Device {
 public:
  static constexpr int kQueues = 2;
  virtual ~Device() = default;

  virtual const DeviceProps& props() const = 0;
  virtual size_t free_memory() = 0;

  // ---- memory ----
  // nullptr when the device is out of memory; any other failure throws.
  virtual void* try_alloc(size_t bytes) = 0;
  virtual void release(void* p) = 0;  // waits for all queued work first
  virtual void* alloc_pinned(size_t bytes) = 0;  // host memory the queues copy into
  virtual void release_pinned(void* p) = 0;

  // ---- copies ----
  // Synchronous, ordered after everything queued.
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  // Queued on `queue` (0 .. kQueues-1): nothing is known done before
  // synchronize(queue). Host memory must be pinned (alloc_pinned) and stay
  // untouched until then.
  virtual void upload_async(void* dst, const void* src, size_t bytes, int queue) = 0;
  virtual void download_async(void* dst, const void* src, size_t bytes, int queue) = 0;
  virtual void zero_async(void* dst, size_t bytes, int queue) = 0;
  virtual void synchronize(int queue) = 0;

  // ---- launch sizing ----
  virtual int blocks_per_sm(DeviceKernel kernel, bool smem_image, size_t dynamic_smem) = 0;
  virtual size_t static_smem(DeviceKernel kernel, bool smem_image) = 0;
  // Lets the block kernels use `bytes` of dynamic shared memory.
  virtual void allow_dynamic_smem(bool smem_image, size_t bytes) = 0;
  // Scratch bytes of a compaction of up to `items` items.
  virtual size_t select_temp_bytes(uint32_t items) = 0;

  // ---- queued work ----
  // out[k] = index of the k-th set flag among flags[0 .. count); *n_out = their number.
  virtual void select_indices(void* temp, size_t temp_bytes, const uint8_t* flags, uint32_t count, uint32_t* out,
                              uint32_t* n_out, int queue) = 0;
  virtual void dense_group(int grid, const DenseArgs& a, int e0, int e1, bool first_group, int queue) = 0;
  virtual void dense_finish(int grid, const DenseArgs& a, LossKind loss, float* hit_loss, int queue) = 0;
  // Blocks of props().dense_threads threads with dense_tile_smem_words words
  // of dynamic shared memory (kernels/dense_tiles.h).
  virtual void dense_tiles(int grid, const DenseTileArgs& a, int queue) = 0;
  virtual void block_evaluate(int grid, size_t dynamic_smem, bool smem_image, const BlockArgs& a, int queue) = 0;
  // One thread per item (kernels/search_kernels.h): the sphere factor of
  // every slot of a.count; the loss of the *n_hits perfect slots in hits.
  virtual void sphere_factors(int grid, const BlockArgs& a, int queue) = 0;
  virtual void block_finish(int grid, const BlockArgs& a, const uint32_t* hits, const uint32_t* n_hits,
                            float* hit_loss, int queue) = 0;
  virtual void generate_models(const ModelSpec& m, const PriorSpec& prior, StreamKey key, LossKind loss,
                               const uint64_t* draws, uint32_t count, float* params, float* scales, int queue) = 0;
  virtual void dense_score(int grid, const ScoreArgs& a, int queue) = 0;
  virtual void block_score(int grid, size_t dynamic_smem, bool smem_image, const ScoreArgs& a, int queue) = 0;
  // One block per example, the image in global memory (a.images), dynamic
  // shared memory block_smem_floats(plan, false) floats (the kernel opts in
  // to more than 48 KB itself).
  virtual void block_trace(int examples, const TraceArgs& a, int queue) = 0;

  // ---- search candidates (kernels/candidate_kernels.h) ----
  // Blocks of props().dense_threads threads, one thread per item: the
  // parameters of a.count pattern or greedy candidates, then their scales.
  virtual void pattern_candidates(int grid, const CandidateArgs& a, int queue) = 0;
  virtual void greedy_candidates(int grid, const CandidateArgs& a, int queue) = 0;
  virtual void candidate_scales(int grid, const CandidateArgs& a, int queue) = 0;

  // ---- nested sampling (kernels/nested_kernels.h) ----
  // Blocks of props().dense_threads threads, one thread per item: bodies,
  // (body, example) items, pairs, and the *n_hits perfect pairs (their loss
  // gathered into hit_loss). The feature and head kernels use a.scratch for
  // grid * dense_threads threads.
  virtual void nested_bodies(int grid, const NestedArgs& a, int queue) = 0;
  virtual void nested_features(int grid, const NestedArgs& a, int queue) = 0;
  virtual void nested_heads(int grid, const NestedArgs& a, int queue) = 0;
  virtual void nested_finish(int grid, const NestedArgs& a, const uint32_t* hits, const uint32_t* n_hits,
                             float* hit_loss, int queue) = 0;
};

// `count` T allocated through a Device and handed back by its `Free`
// (release or release_pinned) when released or destroyed; moves, never copies.
template <class T, void (Device::*Free)(void*)>
class DeviceOwned {
 public:
  explicit DeviceOwned(Device& device) : device_(&device) {}
  ~DeviceOwned() { release(); }
  DeviceOwned(DeviceOwned&& o) noexcept
      : device_(o.device_), ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceOwned& operator=(DeviceOwned&& o) noexcept {  // frees what it held
    if (this != &o) {
      release();
      device_ = o.device_;
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  DeviceOwned(const DeviceOwned&) = delete;
  DeviceOwned& operator=(const DeviceOwned&) = delete;

  void release() {
    if (ptr_) (device_->*Free)(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 protected:
  Device* device_;
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// Device memory of `count` T.
template <class T>
class DeviceArray : public DeviceOwned<T, &Device::release> {
 public:
  using DeviceOwned<T, &Device::release>::DeviceOwned;

  // False (holding nothing) when the device is out of memory.
  bool try_resize(size_t count) {
    this->release();
    if (count == 0) return true;
    this->ptr_ = static_cast<T*>(this->device_->try_alloc(count * sizeof(T)));
    if (!this->ptr_) return false;
    this->count_ = count;
    return true;
  }
  // At least `count` elements (the contents are not kept); false, holding
  // nothing, when the device is out of memory.
  bool try_grow(size_t count) { return count <= this->count_ || try_resize(count); }
  void upload(const T* host, size_t count) {
    if (count > this->count_ && !try_resize(count))
      throw Error("device: out of memory uploading " + std::to_string(count * sizeof(T)) + " bytes");
    if (count) this->device_->upload(this->ptr_, host, count * sizeof(T));
  }
};

// Pinned host memory of `count` T.
template <class T>
class PinnedArray : public DeviceOwned<T, &Device::release_pinned> {
 public:
  using DeviceOwned<T, &Device::release_pinned>::DeviceOwned;

  void resize(size_t count) {
    this->release();
    if (count == 0) return;
    this->ptr_ = static_cast<T*>(this->device_->alloc_pinned(count * sizeof(T)));
    this->count_ = count;
  }
  // At least `count` elements: grows (geometrically), never shrinks; the
  // contents are not kept.
  void grow(size_t count) {
    if (count > this->count_) resize(std::max(count, 2 * this->count_));
  }
  T& operator[](size_t i) const { return this->ptr_[i]; }
};

}  // namespace gac
