// Nested sampling on a device: bodies in chunks, each chunk's parameters,
// products and features computed once on the device, then its pairs in
// launches of at most max_pairs_ heads; each launch's perfect pairs are
// compacted and only they (slot and loss) come back. Every step runs on
// queue 0 and the host waits for each launch's hits: nested runs are for
// rare cells, where the heads kernel's time dominates and hits are few.
#include "host/backends/device_nested.h"

#include <algorithm>

namespace gac {
namespace {

constexpr uint32_t kMaxPairs = 1u << 20;    // pairs per head launch
constexpr uint32_t kMaxBodies = 1u << 12;   // bodies per chunk
constexpr int kBlocksPerSm = 16;            // grid of the per-thread-scratch kernels

uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

DeviceNested::DeviceNested(Device& device)
    : device_(device), body_params_(device), feats_(device), scratch_(device), loss_(device), hit_loss_(device),
      products_(device), flags_(device), select_temp_(device), alive_(device), n_hits_(device), examples_(device) {}

void DeviceNested::reset() {
  pair_cap_ = body_cap_ = 0;
  grid_cap_ = 0;
  release();
}

void DeviceNested::release() {
  for (DeviceArray<float>* a : {&body_params_, &feats_, &scratch_, &loss_, &hit_loss_}) a->release();
  products_.release();
  flags_.release();
  select_temp_.release();
  alive_.release();
  n_hits_.release();
  examples_.release();
}

int DeviceNested::grid(size_t items) const {
  const size_t T = device_.props().dense_threads;
  return static_cast<int>(std::clamp<size_t>(ceil_div(items, T), 1, max_grid_));
}

NestedArgs DeviceNested::args(const StreamTask& task, const float* X, const int32_t* Y) const {
  const ModelSpec& m = task.model;
  const int n = static_cast<int>(task.train.size());
  return NestedArgs{m, task.prior, task.key, 0, 0, 0, 0, X, Y, n, task.loss, task.early_reject ? 1 : 0,
                    body_params_.get(), products_.get(), feats_.get(), scratch_.get(), nested_scratch_floats(m, n),
                    static_cast<size_t>(max_grid_) * device_.props().dense_threads, flags_.get(), loss_.get(),
                    examples_.get()};
}

bool DeviceNested::try_allocate(const StreamTask& task) {
  const ModelSpec& m = task.model;
  const size_t n = task.train.size(), T = device_.props().dense_threads;
  const size_t body_floats = nested_has_body(m) ? max_bodies_ * (m.n_params + n * head_inputs(m)) : 0;
  const size_t scratch = static_cast<size_t>(max_grid_) * T * nested_scratch_floats(m, static_cast<int>(n));
  return body_params_.try_grow(nested_has_body(m) ? size_t{max_bodies_} * m.n_params : 0) &&
         feats_.try_grow(body_floats ? size_t{max_bodies_} * n * head_inputs(m) : 0) &&
         products_.try_grow(max_bodies_) && scratch_.try_grow(scratch) && loss_.try_grow(max_pairs_) &&
         hit_loss_.try_grow(max_pairs_) && flags_.try_grow(max_pairs_) && alive_.try_grow(max_pairs_) &&
         select_temp_.try_grow(device_.select_temp_bytes(max_pairs_)) && n_hits_.try_grow(1) && examples_.try_grow(1);
}

// This call's sizes: what it needs, within the stream's caps (a quarter of
// the free memory at first); an allocation that fails halves the caps.
void DeviceNested::size(const StreamTask& task, uint32_t max_launch, uint64_t pairs, uint64_t bodies) {
  const ModelSpec& m = task.model;
  const size_t n = task.train.size(), T = device_.props().dense_threads;
  if (pair_cap_ == 0) {
    const size_t budget = device_.free_memory() / 4;
    const size_t per_body = nested_has_body(m) ? (m.n_params + n * head_inputs(m)) * sizeof(float) : 1;
    const size_t per_block = T * nested_scratch_floats(m, static_cast<int>(n)) * sizeof(float);
    pair_cap_ = std::min(max_launch, kMaxPairs);
    body_cap_ = static_cast<uint32_t>(std::clamp<size_t>(budget / per_body, 1, kMaxBodies));
    grid_cap_ = static_cast<int>(std::clamp<size_t>(
        std::min<size_t>(budget / per_block, static_cast<size_t>(device_.props().sms) * kBlocksPerSm), 1, INT32_MAX));
  }
  for (;;) {
    max_pairs_ = static_cast<uint32_t>(std::min<uint64_t>(pair_cap_, pairs));
    max_bodies_ = static_cast<uint32_t>(std::min<uint64_t>(body_cap_, bodies));
    max_grid_ = static_cast<int>(std::clamp<uint64_t>(
        ceil_div(std::max<uint64_t>(uint64_t{max_bodies_} * n, max_pairs_), T), 1, grid_cap_));
    if (try_allocate(task)) return;
    release();  // what did fit would crowd the retry
    if (pair_cap_ == 1 && body_cap_ == 1 && grid_cap_ == 1)
      throw Error("device: out of memory for nested sampling's buffers");
    pair_cap_ = std::max(1u, max_pairs_ / 2);
    body_cap_ = std::max(1u, max_bodies_ / 2);
    grid_cap_ = std::max(1, max_grid_ / 2);
  }
}

EvalCounts DeviceNested::evaluate(const StreamTask& task, const float* X, const int32_t* Y, uint32_t max_launch,
                                  uint64_t first, uint64_t count, std::vector<Hit>& hits) {
  EvalCounts counts{count, 0};
  if (count == 0) return counts;
  const ModelSpec& m = task.model;
  const int n = static_cast<int>(task.train.size());
  const uint64_t K = task.prior.heads, end = first + count;
  const bool body = nested_has_body(m);
  const uint64_t body_begin = first / K, body_end = (end - 1) / K + 1;
  size(task, max_launch, count, body_end - body_begin);
  NestedArgs a = args(task, X, Y);
  const float* edges = task.bin_edges.data();
  const int n_edges = static_cast<int>(task.bin_edges.size());
  for (uint64_t chunk = body_begin; chunk < body_end; chunk += max_bodies_) {
    a.body0 = chunk;
    a.bodies = static_cast<uint32_t>(std::min<uint64_t>(max_bodies_, body_end - chunk));
    if (body) {
      device_.nested_bodies(grid(a.bodies), a, 0);
      device_.nested_features(grid(static_cast<size_t>(a.bodies) * n), a, 0);
      counts.examples += static_cast<uint64_t>(a.bodies) * n;
    }
    const uint64_t lo = std::max(first, chunk * K), hi = std::min(end, (chunk + a.bodies) * K);
    for (uint64_t p = lo; p < hi; p += a.count) {
      a.first = p;
      a.count = static_cast<uint32_t>(std::min<uint64_t>(max_pairs_, hi - p));
      device_.zero_async(examples_.get(), sizeof(unsigned long long), 0);
      device_.nested_heads(grid(a.count), a, 0);
      device_.select_indices(select_temp_.get(), select_temp_.size(), flags_.get(), a.count, alive_.get(),
                             n_hits_.get(), 0);
      device_.nested_finish(grid(a.count), a, alive_.get(), n_hits_.get(), hit_loss_.get(), 0);
      uint32_t n_hits = 0;
      unsigned long long examples = 0;
      device_.download(&n_hits, n_hits_.get(), sizeof n_hits);
      device_.download(&examples, examples_.get(), sizeof examples);
      if (n_hits > a.count) throw Error("device: a launch of " + std::to_string(a.count) + " pairs reported " +
                                        std::to_string(n_hits) + " perfect pairs");
      counts.examples += examples;
      if (n_hits == 0) continue;
      h_alive_.resize(n_hits);
      h_loss_.resize(n_hits);
      device_.download(h_alive_.data(), alive_.get(), n_hits * sizeof(uint32_t));
      device_.download(h_loss_.data(), hit_loss_.get(), n_hits * sizeof(float));
      for (uint32_t k = 0; k < n_hits; ++k)
        hits.push_back({p + h_alive_[k], h_loss_[k], find_bin(edges, n_edges, h_loss_[k])});
    }
  }
  return counts;
}

}  // namespace gac
