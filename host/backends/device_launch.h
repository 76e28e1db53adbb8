// The device backend's launch contexts (host/backends/device_backend.cpp):
// the example groups of the dense kernels, what decides a launch's sizes,
// and the buffers, queue and pinned results of one launch and of test
// scoring.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/device.h"

namespace gac {

inline constexpr int kMaxGroups = 40;                      // example groups: 2 + log2(n)

// Example groups of the dense kernels: [0,1), [1,2), [2,4), [4,8), ...;
// one group of all examples for full evaluation.
inline std::vector<std::pair<int, int>> example_groups(int n, bool early_reject) {
  std::vector<std::pair<int, int>> groups;
  if (!early_reject || n <= 1) {
    groups.push_back({0, n});
    return groups;
  }
  groups.push_back({0, 1});
  for (int e0 = 1, size = 1; e0 < n; e0 += size, size = e0) groups.push_back({e0, std::min(n, e0 + size)});
  return groups;
}

// Everything that decides sizes for the current stream.
struct LaunchShape {
  bool dense = true;          // which kernel family
  bool tiles = false;         // dense: in-block tiles of draws (kernels/dense_tiles.h), no compaction passes
  bool smem_image = true;     // block kernels: the image fits in shared memory
  size_t smem_bytes = 0;      // block kernels: dynamic shared memory
  uint32_t capacity = 0;      // draws per launch (0: not allocated)
  int grid = 0;               // blocks per launch
  size_t act_threads = 0;     // dense: threads per launch (activation scratch)
  uint32_t hit_capacity = 0;  // hits copied back with every launch; more take a second copy
  size_t select_bytes = 0;    // compaction scratch
};

// One launch's device memory. Each array frees itself (DeviceArray); a
// launch gives all of it back at once by taking a fresh set.
struct LaunchMemory {
  explicit LaunchMemory(Device& d)
      : params(d), logits(d), act(d), hit_loss(d), images(d), sphere(d), flags(d), select_temp(d), alive(d),
        counts(d), next_slot(d), examples(d) {}
  DeviceArray<float> params, logits, act, hit_loss, images;
  DeviceArray<double> sphere;
  DeviceArray<uint8_t> flags, select_temp;
  DeviceArray<uint32_t> alive, counts, next_slot;
  DeviceArray<unsigned long long> examples;
};

// One launch's device memory, queue and pinned results.
struct Launch {
  Launch(Device& d, int q)
      : device(&d), queue(q), mem(d), h_counts(d), h_slots(d), h_more_slots(d), h_loss(d), h_more_loss(d),
        h_examples(d) {}
  Device* device;
  int queue;
  LaunchMemory mem;
  PinnedArray<uint32_t> h_counts, h_slots, h_more_slots;  // h_more_*: hits beyond hit_capacity (grow only)
  PinnedArray<float> h_loss, h_more_loss;
  PinnedArray<unsigned long long> h_examples;
  bool busy = false;  // queued and not yet collected
  uint64_t first = 0;
  uint32_t count = 0;

  void release() { mem = LaunchMemory(*device); }  // the pinned results stay: they are small
};

// Test scoring's device memory (freeing itself like LaunchMemory).
struct ScoreMemory {
  explicit ScoreMemory(Device& d) : draws(d), params(d), scales(d), act(d), loss(d), correct(d) {}
  DeviceArray<uint64_t> draws;
  DeviceArray<float> params, scales, act, loss;
  DeviceArray<uint8_t> correct;
};

// Test scoring's buffers, kept from one score_test() to the next: scoring
// after every commit allocates and frees nothing.
struct ScoreBuffers {
  explicit ScoreBuffers(Device& d) : device(&d), mem(d), h_draws(d), h_loss(d), h_correct(d) {}
  Device* device;
  ScoreMemory mem;
  PinnedArray<uint64_t> h_draws;
  PinnedArray<float> h_loss;
  PinnedArray<uint8_t> h_correct;
  size_t batch = 0;  // models per batch the buffers hold
  int grid = 0;      // blocks of the scoring kernel

  void release() {
    mem = ScoreMemory(*device);
    batch = 0;
  }
};

}  // namespace gac
