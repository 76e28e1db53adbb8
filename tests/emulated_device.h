// An emulated accelerator behind the Device interface (kernels/device.h),
// so that the device backend (host/backends/device_backend.cpp) and the
// kernel bodies of kernels/search_kernels.h and kernels/nested_kernels.h run
// in CI, where there is no GPU.
//
// It behaves like a GPU where that matters to correctness:
//   - a block kernel runs its grid's blocks on `host_threads` OS threads at
//     once, each block as `block_threads` fibers meeting at a real barrier in
//     block_sync(), sharing the block's shared memory and the atomic work
//     counter (tests/emulated_blocks.h);
//   - queued work is deferred until synchronize(queue) (or a synchronous
//     copy or a release, which wait for everything, as on CUDA): results read
//     before synchronizing are stale;
//   - device and pinned memory start as 0xFF bytes (NaN floats), so a read of
//     something never written shows;
//   - memory is finite: an allocation beyond `memory` fails as cudaMalloc
//     does; launches check their grid and shared memory as CUDA does.
#pragma once

#include <memory>
#include <string>

#include "host/backends/device_backend.h"

namespace gac {

// What the emulated device saw (read after the backend is done with it).
struct EmulatorStats {
  size_t peak_bytes = 0;        // most device memory held at once
  int failed_allocations = 0;   // out-of-memory answers
  int waits_with_other_queue_busy = 0;  // synchronize(q) while the other queue still had work: the pipeline overlaps
};

struct EmulatorConfig {
  std::string name = "emulated";
  int sms = 3;
  int blocks_per_sm = 2;
  int block_threads = 4;             // threads per block of the block kernels
  int host_threads = 0;              // OS threads running blocks at once; 0: the cores, 2 to 8
  int dense_threads = 32;            // threads per block of the one-thread-per-item kernels
  size_t memory = size_t{1} << 30;   // device memory
  size_t smem_per_block = 227 * 1024;
  bool overstate_free_memory = false;  // report 16x the free memory: allocations fail and launches shrink
  int fail_at_launch = -1;  // >= 0: that launch of a search kernel (counted from 0) throws, as a device lost
  std::shared_ptr<EmulatorStats> stats;  // optional
};

std::unique_ptr<Device> make_emulated_device(const EmulatorConfig& config = {});

// The backend test suite's emulated devices:
//   "emulated"        an H100 in miniature: 3 SMs, 2 blocks each, 4 threads a block;
//   "emulated_tight"  3 threads a block, 8-thread dense blocks, 24 KB of shared
//                     memory (LeNet's image goes to global memory), 61 draws a
//                     launch and 8 MiB whose free memory is overstated, so
//                     allocations fail and launches shrink.
std::unique_ptr<Backend> make_emulated_backend(const std::string& variant,
                                               std::shared_ptr<EmulatorStats> stats = nullptr);
// The device of such a variant alone (the searches' candidate evaluator drives a Device).
std::unique_ptr<Device> make_emulated_variant_device(const std::string& variant);

}  // namespace gac
