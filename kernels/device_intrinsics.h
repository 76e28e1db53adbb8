// Every GPU intrinsic the kernels use, as a GAC_HD function with a host
// version that does what the hardware does, so that the emulated device
// (tests/emulated_device.cpp: a block's threads as fibers meeting at a real
// barrier, tests/emulated_blocks.h) runs the kernels' bodies faithfully:
//   atomics         relaxed host atomics;
//   vector loads    four scalar loads (the device's ld.shared.v4 needs 16-byte
//                   alignment: the layouts of kernels/block_forward.h give it);
//   async copies    cp.async on sm_80+, a plain copy on sm_75; on the host the
//                   copy is *deferred* until async_copy_wait_all(), as the
//                   data is not known to have arrived before it on a GPU, so a
//                   kernel reading a prefetched buffer too early reads stale
//                   data in the tests too;
//   warp votes      ballot, the warp's width and lane; on the host every
//                   thread is a warp of one (its ballot is its own vote).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "gac/hd.h"

namespace gac {

GAC_HD uint32_t atomic_fetch_add(uint32_t* p, uint32_t v) {
#if defined(__CUDA_ARCH__)
  return atomicAdd(p, v);
#else
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

GAC_HD unsigned long long atomic_fetch_add(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  return atomicAdd(p, v);
#else
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

// Four floats from a 16-byte aligned address (one ld.v4 on the device).
GAC_HD void load4(const float* p, float v[4]) {
#if defined(__CUDA_ARCH__)
  const float4 q = *reinterpret_cast<const float4*>(p);
  v[0] = q.x;
  v[1] = q.y;
  v[2] = q.z;
  v[3] = q.w;
#else
  for (int j = 0; j < 4; ++j) v[j] = p[j];
#endif
}

// Four floats to a 16-byte aligned address (one st.v4 on the device).
GAC_HD void store4(float* p, const float v[4]) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
#else
  for (int j = 0; j < 4; ++j) p[j] = v[j];
#endif
}

#if !defined(__CUDA_ARCH__)
// The host's copies in flight: done at async_copy_wait_all, per thread (the
// emulated device swaps each fiber's own list in when the fiber runs).
struct HostAsyncCopy {
  void* dst;
  const void* src;
  size_t bytes;
};
inline thread_local std::vector<HostAsyncCopy> host_async_copies;
#endif

// Copies 4 bytes (`words` = 1) or 16 bytes (`words` = 4, both addresses
// 16-byte aligned) from global to shared memory without waiting; the data
// is there for this thread after async_copy_wait_all(), for the block after
// the barrier that follows it.
GAC_HD void async_copy(float* dst_shared, const float* src_global, int words) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned dst = static_cast<unsigned>(__cvta_generic_to_shared(dst_shared));
  if (words == 4)
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src_global) : "memory");
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src_global) : "memory");
#elif defined(__CUDA_ARCH__)
  for (int j = 0; j < words; ++j) dst_shared[j] = src_global[j];
#else
  host_async_copies.push_back({dst_shared, src_global, static_cast<size_t>(words) * sizeof(float)});
#endif
}

// Waits for all of this thread's async_copy calls.
GAC_HD void async_copy_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_all;\n" ::: "memory");
#elif !defined(__CUDA_ARCH__)
  for (const HostAsyncCopy& c : host_async_copies) std::memcpy(c.dst, c.src, c.bytes);
  host_async_copies.clear();
#endif
}

// Threads per warp: 32 on the GPU; on the host every thread is a warp of one.
GAC_HD int warp_width() {
#if defined(__CUDA_ARCH__)
  return 32;
#else
  return 1;
#endif
}

// The lane of this thread in its warp (blocks are one-dimensional).
GAC_HD int warp_lane() {
#if defined(__CUDA_ARCH__)
  return static_cast<int>(threadIdx.x & 31u);
#else
  return 0;
#endif
}

// Bit k set for each lane k of the warp whose `predicate` holds (all lanes
// take part: call it from uniform control flow).
GAC_HD uint32_t warp_ballot(bool predicate) {
#if defined(__CUDA_ARCH__)
  return __ballot_sync(0xFFFFFFFFu, predicate);
#else
  return predicate ? 1u : 0u;
#endif
}

GAC_HD int popcount32(uint32_t v) {
#if defined(__CUDA_ARCH__)
  return __popc(v);
#else
  return __builtin_popcount(v);
#endif
}

}  // namespace gac
