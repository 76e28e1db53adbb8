// How the emulated device (tests/emulated_device.cpp) runs a grid of blocks:
// each emulated GPU thread is a fiber (tests/fiber.h), a block's fibers take
// turns on one OS thread, and a few OS threads take the grid's blocks, so
// blocks really run at once (their atomics, the persistent grid's slot
// counter) while a barrier costs one context switch per thread.
//
// What it keeps from a GPU, and checks:
//   - block_sync() is a real barrier: every thread of the block runs up to
//     it before any runs past it; a block where some threads wait at a
//     barrier that others have returned without reaching is an error (a GPU
//     hangs or does something undefined);
//   - the threads of a block run between two barriers in turn, forwards
//     (thread 0 first) in one phase and backwards in the next, the parity
//     changing from block to block: a read of another thread's write with no
//     barrier between them reads stale or poisoned data in some block,
//     whichever thread writes;
//   - each thread's asynchronous copies (kernels/device_intrinsics.h) stay
//     its own across barriers and land only at its async_copy_wait_all();
//   - shared memory starts poisoned (0xFF bytes: NaN floats) in every block.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/search_kernels.h"

namespace gac {

// One thread of one block: (block, thread index, the block's dynamic shared
// memory, its static shared memory).
using BlockThreadBody = std::function<void(int block, int tid, float* shared_floats, BlockShared& shared)>;

class EmulatedBlocks {
 public:
  // `host_threads`: the OS threads that run blocks at once (at least 1).
  explicit EmulatedBlocks(int host_threads);
  ~EmulatedBlocks();
  EmulatedBlocks(const EmulatedBlocks&) = delete;
  EmulatedBlocks& operator=(const EmulatedBlocks&) = delete;

  // Runs `grid` blocks of `threads` threads with `smem_bytes` of dynamic
  // shared memory each; rethrows the first error of a thread body.
  void run(int grid, int threads, size_t smem_bytes, const BlockThreadBody& body);

 private:
  struct Worker;
  int host_threads_;
  std::vector<std::unique_ptr<Worker>> workers_;  // kept: their fibers' stacks are reused
};

}  // namespace gac
