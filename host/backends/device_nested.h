// Nested sampling on a device (include/gac/nested.h, kernels/nested_kernels.h):
// the device backend's evaluate() for sampler.heads > 1.
#pragma once

#include <vector>

#include "gac/backend.h"
#include "kernels/device.h"

namespace gac {

// Buffers kept from one call to the next; sized for a stream on its first call.
class DeviceNested {
 public:
  explicit DeviceNested(Device& device);

  // Frees the buffers (a new stream: sized again on its first call).
  void reset();

  // Pairs [first, first + count) of `task` (prior.heads > 1), its training
  // set resident at X and Y: perfect pairs appended to `hits` in pair order,
  // and the examples counted as the CPU backend counts them (n for each
  // body touched, and each head's up to its first miss). At most
  // `max_launch` pairs per launch.
  EvalCounts evaluate(const StreamTask& task, const float* X, const int32_t* Y, uint32_t max_launch, uint64_t first,
                      uint64_t count, std::vector<Hit>& hits);

 private:
  void size(const StreamTask& task, uint32_t max_launch, uint64_t pairs, uint64_t bodies);
  bool try_allocate(const StreamTask& task);
  void release();
  NestedArgs args(const StreamTask& task, const float* X, const int32_t* Y) const;
  int grid(size_t items) const;

  Device& device_;
  uint32_t pair_cap_ = 0, body_cap_ = 0;  // the stream's limits (0: not sized yet)
  int grid_cap_ = 0;
  uint32_t max_bodies_ = 0;  // this call's bodies per chunk
  uint32_t max_pairs_ = 0;   // and pairs per head launch
  int max_grid_ = 0;         // blocks of the feature and head kernels (their scratch)
  DeviceArray<float> body_params_, feats_, scratch_, loss_, hit_loss_;
  DeviceArray<double> products_;
  DeviceArray<uint8_t> flags_, select_temp_;
  DeviceArray<uint32_t> alive_, n_hits_;
  DeviceArray<unsigned long long> examples_;
  std::vector<uint32_t> h_alive_;
  std::vector<float> h_loss_;
};

}  // namespace gac
