// CUDA backend: the Backend contract (include/gac/backend.h) on one GPU.
//
// Results equal the CPU backend's: parameters come from prior_block
// (include/gac/prior.h) and every value is computed in kernels/forward.h's
// order with explicit roundings, so the same draws are accepted with the same
// losses. Two kernels evaluate draws:
//   kernels/cuda_dense.cuh  linear/MLP: a thread per draw, example groups with
//                           compaction of the survivors between groups;
//   kernels/cuda_lenet.cuh  models with convolutions: a block per draw, the
//                           parameters in shared memory.
// Test scoring: kernels/cuda_score.cuh.
//
// Data: the training and test sets are uploaded once per stream and stay
// resident. Only perfect draws (slot index and loss) come back to the host;
// the host regenerates the weights of the models it stores.
//
// Pipeline: evaluate() cuts its range into launches of at most `capacity`
// draws and alternates two launch contexts, each with its own stream,
// buffers and pinned result area. While the host waits for and unpacks the
// hits of launch k, launch k+1 is already queued on the other stream.
// `capacity` follows the device's free memory (cudaMemGetInfo); an
// allocation that fails halves it instead of failing the run.
//
// Test hooks (environment, read when the backend is made):
//   GAC_CUDA_MAX_LAUNCH=N   at most N draws per launch
//   GAC_CUDA_MEMORY_CAP=B   pretend launch buffers beyond B bytes (both
//                           launches together) do not fit: exercises the
//                           out-of-memory shrink path
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "gac/backend.h"
#include "kernels/block_forward.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_dense.cuh"
#include "kernels/cuda_lenet.cuh"
#include "kernels/cuda_score.cuh"
#include "kernels/forward.h"
#include "kernels/strided_forward.h"

namespace gac {
namespace {

constexpr uint32_t kMaxLaunch = 1u << 22;  // draws per launch: slot indices are 32-bit, launches stay short
constexpr int kMaxGroups = 40;              // example groups: 2 + log2(n)
constexpr size_t kMaxScorePairs = size_t{1} << 22;  // (model, test example) pairs per scoring batch

// Example groups of the dense kernels: [0,1), [1,2), [2,4), [4,8), ...;
// one group of all examples for full evaluation.
std::vector<std::pair<int, int>> example_groups(int n, bool early_reject) {
  std::vector<std::pair<int, int>> groups;
  if (!early_reject || n <= 1) {
    groups.push_back({0, n});
    return groups;
  }
  groups.push_back({0, 1});
  for (int e0 = 1, size = 1; e0 < n; e0 += size, size = e0) groups.push_back({e0, std::min(n, e0 + size)});
  return groups;
}

uint64_t env_u64(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (*end) throw Error(std::string("environment variable ") + name + " must be a whole number, got '" + v + "'");
  return x;
}

template <class Kernel>
int blocks_per_sm(Kernel kernel, int threads, size_t smem) {
  int blocks = 0;
  GAC_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem));
  return blocks;
}

template <class Kernel>
size_t static_smem(Kernel kernel) {
  cudaFuncAttributes attr{};
  GAC_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  return attr.sharedSizeBytes;
}

// Everything that decides sizes for the current stream.
struct LaunchShape {
  bool dense = true;       // which kernel family
  bool smem_image = true;  // block kernels: the image fits in shared memory
  size_t smem_bytes = 0;   // block kernels: dynamic shared memory
  uint32_t capacity = 0;   // draws per launch (0: not allocated)
  int grid = 0;            // blocks per launch
  size_t act_threads = 0;  // dense: threads per launch (activation scratch)
  uint32_t hit_capacity = 0;  // hits copied back with every launch; more take a second copy
  size_t cub_bytes = 0;
};

// One launch's device buffers, stream and pinned results.
struct Launch {
  CudaStream stream;
  CudaEvent done;
  DeviceBuffer<float> params, logits, act, slot_loss, hit_loss, images;
  DeviceBuffer<uint8_t> flags, cub_temp;
  DeviceBuffer<uint32_t> alive, counts, next_slot;
  DeviceBuffer<unsigned long long> examples;
  PinnedBuffer<uint32_t> h_counts, h_slots;
  PinnedBuffer<float> h_loss;
  PinnedBuffer<unsigned long long> h_examples;
  bool busy = false;  // queued and not yet collected
  uint64_t first = 0;
  uint32_t count = 0;

  void release() {
    for (DeviceBuffer<float>* b : {&params, &logits, &act, &slot_loss, &hit_loss, &images}) b->release();
    flags.release();
    cub_temp.release();
    alive.release();
    counts.release();
    next_slot.release();
    examples.release();
  }
};

// Makes `device` current; the first member of the backend, so that the
// streams and events of the other members are created on that device.
struct CurrentDevice {
  explicit CurrentDevice(int device) : id(device) { GAC_CUDA_CHECK(cudaSetDevice(device)); }
  int id;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    GAC_CUDA_CHECK(cudaGetDeviceProperties(&props_, device));
    max_launch_ = kMaxLaunch;
    if (const uint64_t cap = env_u64("GAC_CUDA_MAX_LAUNCH")) max_launch_ = static_cast<uint32_t>(std::min<uint64_t>(cap, kMaxLaunch));
    memory_cap_ = env_u64("GAC_CUDA_MEMORY_CAP");
    for (Launch& L : launches_) {
      L.h_counts.resize(kMaxGroups);
      L.h_examples.resize(1);
    }
  }

  ~CudaBackend() override { abandon(); }

  std::string name() const override { return "cuda"; }
  std::string description() const override {
    return "cuda (" + std::string(props_.name) + ", " + std::to_string(props_.multiProcessorCount) + " SMs, " +
           std::to_string(props_.totalGlobalMem >> 20) + " MiB, compute capability " + std::to_string(props_.major) +
           "." + std::to_string(props_.minor) + ")";
  }

  void begin_stream(const StreamTask& task) override {
    abandon();
    task_ = task;
    train_x_.upload(task.train.x.data(), task.train.x.size());
    train_y_.upload(task.train.y.data(), task.train.y.size());
    test_x_.upload(task.test.x.data(), task.test.x.size());
    test_y_.upload(task.test.y.data(), task.test.y.size());
    plan_ = make_block_plan(task.model);
    shape_ = LaunchShape{};
    shape_.dense = is_dense_only(task.model);
    groups_ = example_groups(static_cast<int>(task.train.size()), task.early_reject);
    if (groups_.size() > kMaxGroups)
      throw Error("cuda: a training set of " + std::to_string(task.train.size()) + " examples is too large");
    if (!shape_.dense) choose_block_kernel();
    size_limit_ = max_launch_;
    for (Launch& L : launches_) L.release();
  }

  EvalCounts evaluate(uint64_t first, uint64_t count, std::vector<Hit>& hits) override {
    EvalCounts counts{count, 0};
    if (count == 0) return counts;
    ensure_capacity(count);
    try {
      int next = 0;
      for (uint64_t done = 0; done < count;) {
        Launch& L = launches_[next];
        if (L.busy) collect(L, hits, counts);  // launch k-2: k-1 keeps the GPU busy meanwhile
        const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(shape_.capacity, count - done));
        enqueue(L, first + done, chunk);
        done += chunk;
        next ^= 1;
      }
      for (int k = 0; k < 2; ++k, next ^= 1)  // the older launch first: hits stay in draw order
        if (launches_[next].busy) collect(launches_[next], hits, counts);
    } catch (...) {
      abandon();
      throw;
    }
    return counts;
  }

  std::vector<TestScore> score_test(const std::vector<uint64_t>& draws) override;

 private:
  // ---- sizing ---------------------------------------------------------------

  // Block kernels: the image in shared memory when it fits next to the
  // activations, else in global memory.
  void choose_block_kernel() {
    const size_t optin = props_.sharedMemPerBlockOptin;
    const size_t with_image = block_smem_floats(plan_, true) * sizeof(float);
    const size_t reserve = std::max(static_smem(block_evaluate<true>), static_smem(block_evaluate<false>));
    shape_.smem_image = with_image + reserve <= optin;
    shape_.smem_bytes = block_smem_floats(plan_, shape_.smem_image) * sizeof(float);
    if (shape_.smem_bytes + reserve > optin)
      throw Error("cuda: the model's activations need " + std::to_string(shape_.smem_bytes) +
                  " bytes of shared memory per block; this device allows " + std::to_string(optin));
    const int bytes = static_cast<int>(shape_.smem_bytes);
    if (shape_.smem_image) {
      GAC_CUDA_CHECK(cudaFuncSetAttribute(block_evaluate<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
      GAC_CUDA_CHECK(cudaFuncSetAttribute(block_score<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    } else {
      GAC_CUDA_CHECK(cudaFuncSetAttribute(block_evaluate<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
      GAC_CUDA_CHECK(cudaFuncSetAttribute(block_score<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    }
  }

  // Grid and sizes of a launch of `capacity` draws.
  LaunchShape shape_for(uint32_t capacity) const {
    LaunchShape s = shape_;
    s.capacity = capacity;
    s.hit_capacity = std::min(capacity, std::max(256u, capacity / 8));
    const int sms = props_.multiProcessorCount;
    if (s.dense) {
      const int resident = sms * std::max(1, blocks_per_sm(dense_group, kDenseThreads, 0));
      s.grid = static_cast<int>(std::min<uint64_t>((capacity + kDenseThreads - 1) / kDenseThreads, resident));
      s.act_threads = static_cast<size_t>(s.grid) * kDenseThreads;
    } else {
      const int per_sm = s.smem_image ? blocks_per_sm(block_evaluate<true>, kBlockThreads, s.smem_bytes)
                                      : blocks_per_sm(block_evaluate<false>, kBlockThreads, s.smem_bytes);
      s.grid = static_cast<int>(std::min<uint64_t>(capacity, static_cast<uint64_t>(sms) * std::max(1, per_sm)));
    }
    size_t a = 0, b = 0;
    GAC_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, a, thrust::counting_iterator<uint32_t>(0),
                                              static_cast<const uint8_t*>(nullptr), static_cast<uint32_t*>(nullptr),
                                              static_cast<uint32_t*>(nullptr), static_cast<int64_t>(capacity)));
    GAC_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, b, static_cast<const float*>(nullptr),
                                              static_cast<const uint8_t*>(nullptr), static_cast<float*>(nullptr),
                                              static_cast<uint32_t*>(nullptr), static_cast<int64_t>(capacity)));
    s.cub_bytes = std::max<size_t>(std::max(a, b), 1);
    return s;
  }

  // Device bytes of one launch context.
  size_t launch_bytes(const LaunchShape& s) const {
    const ModelSpec& m = task_.model;
    const size_t n = task_.train.size(), L = s.capacity;
    size_t bytes = s.cub_bytes + L * (sizeof(uint8_t) + 2 * sizeof(uint32_t) + 2 * sizeof(float)) +
                   kMaxGroups * sizeof(uint32_t) + sizeof(unsigned long long);
    if (s.dense) {
      bytes += sizeof(float) * (L * (m.n_params + n * m.n_classes) + s.act_threads * 2 * m.max_activation);
    } else {
      bytes += sizeof(float) * s.grid * (n * m.n_classes + (s.smem_image ? 0 : plan_.image_floats));
    }
    return bytes;
  }

  bool allocate(Launch& L, const LaunchShape& s) {
    const ModelSpec& m = task_.model;
    const size_t n = task_.train.size(), cap = s.capacity;
    bool ok = L.flags.try_resize(cap) && L.alive.try_resize(cap) && L.hit_loss.try_resize(cap) &&
              L.counts.try_resize(kMaxGroups) && L.next_slot.try_resize(1) && L.examples.try_resize(1) &&
              L.cub_temp.try_resize(s.cub_bytes);
    if (ok && s.dense)
      ok = L.params.try_resize(cap * m.n_params) && L.logits.try_resize(cap * n * m.n_classes) &&
           L.act.try_resize(s.act_threads * 2 * m.max_activation);
    if (ok && !s.dense)
      ok = L.slot_loss.try_resize(cap) && L.logits.try_resize(static_cast<size_t>(s.grid) * n * m.n_classes) &&
           L.images.try_resize(s.smem_image ? 0 : static_cast<size_t>(s.grid) * plan_.image_floats);
    if (!ok) return false;
    L.h_slots.resize(s.hit_capacity);
    L.h_loss.resize(s.hit_capacity);
    return true;
  }

  // Makes both launch contexts hold min(count, limits) draws: at most what
  // a quarter of the free memory holds, halved again while allocation fails.
  // A size that had to shrink is remembered for the stream, so later calls
  // do not retry (and fail) the larger sizes.
  void ensure_capacity(uint64_t count) {
    const uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(count, size_limit_));
    if (shape_.capacity >= want) return;
    for (Launch& L : launches_) L.release();  // growing: what they hold counts as free
    size_t free_bytes = 0, total = 0;
    GAC_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    uint32_t cap = want;
    while (cap > 1 && 2 * launch_bytes(shape_for(cap)) > free_bytes / 4) cap /= 2;
    for (;; cap /= 2) {
      if (cap == 0) throw Error("cuda: out of device memory even for a launch of one draw");
      const LaunchShape s = shape_for(cap);
      const bool fits = memory_cap_ == 0 || 2 * launch_bytes(s) <= memory_cap_;
      if (fits && allocate(launches_[0], s) && allocate(launches_[1], s)) {
        shape_ = s;
        break;
      }
      for (Launch& L : launches_) L.release();
    }
    if (cap < want) size_limit_ = cap;
  }

  // ---- the pipeline ---------------------------------------------------------

  void select_flagged(Launch& L, const uint8_t* flags, uint32_t* out_slots, uint32_t* n_out, uint32_t count) {
    size_t bytes = shape_.cub_bytes;
    GAC_CUDA_CHECK(cub::DeviceSelect::Flagged(L.cub_temp.get(), bytes, thrust::counting_iterator<uint32_t>(0), flags,
                                              out_slots, n_out, static_cast<int64_t>(count), L.stream.get()));
  }

  void enqueue(Launch& L, uint64_t first, uint32_t count) {
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.train.size());
    const cudaStream_t s = L.stream.get();
    L.first = first;
    L.count = count;
    const int grid = static_cast<int>(std::min<uint64_t>(shape_.grid, shape_.dense ? (count + kDenseThreads - 1) / kDenseThreads : count));
    if (shape_.dense) {
      DenseArgs a{m, task_.prior, task_.key, first, count, shape_.capacity, shape_.act_threads,
                  train_x_.get(), train_y_.get(), n, L.params.get(), L.logits.get(), L.act.get(),
                  L.flags.get(), L.alive.get(), nullptr};
      for (size_t g = 0; g < groups_.size(); ++g) {
        a.n_alive = g ? L.counts.get() + g - 1 : nullptr;
        dense_group<<<grid, kDenseThreads, 0, s>>>(a, groups_[g].first, groups_[g].second, g == 0);
        GAC_CUDA_CHECK_LAUNCH();
        select_flagged(L, L.flags.get(), L.alive.get(), L.counts.get() + g, count);  // survivors of group g
      }
      a.n_alive = L.counts.get() + groups_.size() - 1;
      dense_finish<<<grid, kDenseThreads, 0, s>>>(a, task_.loss, L.hit_loss.get());
      GAC_CUDA_CHECK_LAUNCH();
      GAC_CUDA_CHECK(cudaMemcpyAsync(L.h_counts.get(), L.counts.get(), groups_.size() * sizeof(uint32_t),
                                     cudaMemcpyDeviceToHost, s));
    } else {
      BlockArgs a{m, plan_, task_.prior, task_.key, first, count, train_x_.get(), train_y_.get(), n, task_.loss,
                  task_.early_reject ? 1 : 0, L.logits.get(), L.images.get(), L.flags.get(), L.slot_loss.get(),
                  L.examples.get(), L.next_slot.get()};
      GAC_CUDA_CHECK(cudaMemsetAsync(L.examples.get(), 0, sizeof(unsigned long long), s));
      GAC_CUDA_CHECK(cudaMemsetAsync(L.next_slot.get(), 0, sizeof(uint32_t), s));
      if (shape_.smem_image) block_evaluate<true><<<grid, kBlockThreads, shape_.smem_bytes, s>>>(a);
      else block_evaluate<false><<<grid, kBlockThreads, shape_.smem_bytes, s>>>(a);
      GAC_CUDA_CHECK_LAUNCH();
      select_flagged(L, L.flags.get(), L.alive.get(), L.counts.get(), count);
      size_t bytes = shape_.cub_bytes;
      GAC_CUDA_CHECK(cub::DeviceSelect::Flagged(L.cub_temp.get(), bytes, static_cast<const float*>(L.slot_loss.get()),
                                                static_cast<const uint8_t*>(L.flags.get()), L.hit_loss.get(),
                                                L.counts.get() + 1, static_cast<int64_t>(count), s));
      GAC_CUDA_CHECK(cudaMemcpyAsync(L.h_counts.get(), L.counts.get(), sizeof(uint32_t), cudaMemcpyDeviceToHost, s));
      GAC_CUDA_CHECK(cudaMemcpyAsync(L.h_examples.get(), L.examples.get(), sizeof(unsigned long long),
                                     cudaMemcpyDeviceToHost, s));
    }
    // The first hit_capacity hits ride along; a launch with more fetches the rest in collect().
    const uint32_t h = std::min(shape_.hit_capacity, count);
    GAC_CUDA_CHECK(cudaMemcpyAsync(L.h_slots.get(), L.alive.get(), h * sizeof(uint32_t), cudaMemcpyDeviceToHost, s));
    GAC_CUDA_CHECK(cudaMemcpyAsync(L.h_loss.get(), L.hit_loss.get(), h * sizeof(float), cudaMemcpyDeviceToHost, s));
    L.done.record(s);
    L.busy = true;
  }

  // Waits for launch L and appends its hits (in slot order) to `hits`.
  void collect(Launch& L, std::vector<Hit>& hits, EvalCounts& counts) {
    L.done.synchronize();
    L.busy = false;
    uint32_t n_hits;
    if (shape_.dense) {
      // Group g ran on the survivors of group g - 1 (all slots for g = 0).
      n_hits = L.h_counts[groups_.size() - 1];
      counts.examples += static_cast<uint64_t>(L.count) * (groups_[0].second - groups_[0].first);
      for (size_t g = 1; g < groups_.size(); ++g)
        counts.examples += static_cast<uint64_t>(L.h_counts[g - 1]) * (groups_[g].second - groups_[g].first);
    } else {
      n_hits = L.h_counts[0];
      counts.examples += L.h_examples[0];
    }
    const uint32_t h = std::min(shape_.hit_capacity, L.count);
    std::vector<uint32_t> more_slots;
    std::vector<float> more_loss;
    if (n_hits > h) {
      more_slots.resize(n_hits - h);
      more_loss.resize(n_hits - h);
      GAC_CUDA_CHECK(cudaMemcpyAsync(more_slots.data(), L.alive.get() + h, more_slots.size() * sizeof(uint32_t),
                                     cudaMemcpyDeviceToHost, L.stream.get()));
      GAC_CUDA_CHECK(cudaMemcpyAsync(more_loss.data(), L.hit_loss.get() + h, more_loss.size() * sizeof(float),
                                     cudaMemcpyDeviceToHost, L.stream.get()));
      L.stream.synchronize();
    }
    const float* edges = task_.bin_edges.data();
    const int n_edges = static_cast<int>(task_.bin_edges.size());
    for (uint32_t k = 0; k < n_hits; ++k) {
      const uint32_t slot = k < h ? L.h_slots[k] : more_slots[k - h];
      const float loss = k < h ? L.h_loss[k] : more_loss[k - h];
      hits.push_back({L.first + slot, loss, find_bin(edges, n_edges, loss)});
    }
  }

  // Drops queued launches (after an error, or before the data change).
  void abandon() {
    for (Launch& L : launches_)
      if (L.busy) {
        cudaStreamSynchronize(L.stream.get());  // unchecked: we may already be unwinding from an error
        cudaGetLastError();
        L.busy = false;
      }
  }

  CurrentDevice device_;
  cudaDeviceProp props_{};
  uint32_t max_launch_ = kMaxLaunch;
  uint64_t memory_cap_ = 0;
  uint32_t size_limit_ = kMaxLaunch;  // largest launch this stream may try (lowered by memory)
  StreamTask task_;
  std::vector<std::pair<int, int>> groups_;  // dense kernels: example groups [e0, e1)
  BlockPlan plan_{};
  LaunchShape shape_{};
  DeviceBuffer<float> train_x_, test_x_;
  DeviceBuffer<int32_t> train_y_, test_y_;
  Launch launches_[2];
};

// ---- test scoring -------------------------------------------------------------

std::vector<TestScore> CudaBackend::score_test(const std::vector<uint64_t>& draws) {
  const ModelSpec& m = task_.model;
  const int n = static_cast<int>(task_.test.size());
  std::vector<TestScore> scores(draws.size());
  if (draws.empty() || n == 0) return scores;
  const int sms = props_.multiProcessorCount;
  size_t batch = std::max<size_t>(1, std::min(draws.size(), kMaxScorePairs / n));
  DeviceBuffer<uint64_t> d_draws;
  DeviceBuffer<float> params, scales, act, loss;
  DeviceBuffer<uint8_t> correct;
  int grid = 0;
  // Buffers for `batch` models; halves the batch when the device is full.
  for (;; batch /= 2) {
    if (batch == 0) throw Error("cuda: out of device memory scoring even one model");
    const size_t pairs = batch * n;
    size_t act_floats;
    if (shape_.dense) {
      const int resident = sms * std::max(1, blocks_per_sm(dense_score, kDenseThreads, 0));
      grid = static_cast<int>(std::min<size_t>((pairs + kDenseThreads - 1) / kDenseThreads, resident));
      act_floats = static_cast<size_t>(grid) * kDenseThreads * 2 * m.max_activation;
    } else {
      const int per_sm = shape_.smem_image ? blocks_per_sm(block_score<true>, kBlockThreads, shape_.smem_bytes)
                                           : blocks_per_sm(block_score<false>, kBlockThreads, shape_.smem_bytes);
      const size_t items = batch * ((n + kScoreChunk - 1) / kScoreChunk);
      grid = static_cast<int>(std::min<size_t>(items, static_cast<size_t>(sms) * std::max(1, per_sm)));
      act_floats = shape_.smem_image ? 0 : static_cast<size_t>(grid) * plan_.image_floats;
    }
    if (d_draws.try_resize(batch) && params.try_resize(batch * m.n_params) && scales.try_resize(batch) &&
        act.try_resize(act_floats) && loss.try_resize(pairs) && correct.try_resize(pairs))
      break;
  }
  std::vector<float> h_loss(batch * n);
  std::vector<uint8_t> h_correct(batch * n);
  // Scoring is not pipelined: kernels on the legacy default stream, ordered
  // with the synchronous copies around them.
  const cudaStream_t s = cudaStreamLegacy;
  for (size_t start = 0; start < draws.size(); start += batch) {
    const uint32_t models = static_cast<uint32_t>(std::min(batch, draws.size() - start));
    const size_t pairs = static_cast<size_t>(models) * n;
    d_draws.upload(draws.data() + start, models);
    generate_models<<<(models + 127) / 128, 128, 0, s>>>(m, task_.prior, task_.key, task_.loss, d_draws.get(), models,
                                                         params.get(), scales.get());
    GAC_CUDA_CHECK_LAUNCH();
    const ScoreArgs a{m, plan_, models, params.get(), scales.get(), test_x_.get(), test_y_.get(), n,
                      act.get(), correct.get(), loss.get()};
    if (shape_.dense) {
      // A smaller last batch may take fewer blocks: the activation stride is
      // the launch's own thread count, within what the buffer was sized for.
      dense_score<<<static_cast<int>(std::min<size_t>(grid, (pairs + kDenseThreads - 1) / kDenseThreads)), kDenseThreads, 0, s>>>(a);
    } else if (shape_.smem_image) {
      block_score<true><<<grid, kBlockThreads, shape_.smem_bytes, s>>>(a);
    } else {
      block_score<false><<<grid, kBlockThreads, shape_.smem_bytes, s>>>(a);
    }
    GAC_CUDA_CHECK_LAUNCH();
    GAC_CUDA_CHECK(cudaMemcpy(h_loss.data(), loss.get(), pairs * sizeof(float), cudaMemcpyDeviceToHost));
    GAC_CUDA_CHECK(cudaMemcpy(h_correct.data(), correct.get(), pairs * sizeof(uint8_t), cudaMemcpyDeviceToHost));
    // Summed on the host in example order, in double: the CPU backend's sum.
    for (uint32_t i = 0; i < models; ++i) {
      double l = 0;
      int c = 0;
      for (int e = 0; e < n; ++e) {
        l += h_loss[static_cast<size_t>(i) * n + e];
        c += h_correct[static_cast<size_t>(i) * n + e];
      }
      scores[start + i] = TestScore{static_cast<double>(c) / n, l / n};
    }
  }
  return scores;
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (why_not)
      *why_not = status == cudaErrorInsufficientDriver || status == cudaErrorNoDevice || count == 0
                     ? std::string("no NVIDIA GPU or driver found (CUDA: ") +
                           (status != cudaSuccess ? cudaGetErrorString(status) : "0 devices") + ")"
                     : cudaGetErrorString(status);
    cudaGetLastError();
    return nullptr;
  }
  cudaDeviceProp p{};
  status = cudaGetDeviceProperties(&p, 0);
  if (status == cudaSuccess && p.major < 8) {
    if (why_not)
      *why_not = std::string(p.name) + " has compute capability " + std::to_string(p.major) + "." +
                 std::to_string(p.minor) + "; this build targets " GAC_CUDA_ARCHS " (8.0 and newer)";
    return nullptr;
  }
  if (status == cudaSuccess) status = cudaSetDevice(0);
  if (status == cudaSuccess) status = cudaFree(nullptr);  // creates the context: a broken driver shows here
  if (status != cudaSuccess) {
    if (why_not) *why_not = cudaGetErrorString(status);
    cudaGetLastError();
    return nullptr;
  }
  return std::make_unique<CudaBackend>(0);
}

std::vector<float> cuda_generate_params(const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                        const std::vector<uint64_t>& draws) {
  std::vector<float> out(draws.size() * m.n_params);
  if (draws.empty()) return out;
  DeviceBuffer<uint64_t> d_draws(draws.size());
  d_draws.upload(draws.data(), draws.size());
  DeviceBuffer<float> params(draws.size() * m.n_params);
  generate_models<<<(draws.size() + 127) / 128, 128, 0, cudaStreamLegacy>>>(m, prior, key, LossKind::raw, d_draws.get(),
                                                        static_cast<uint32_t>(draws.size()), params.get(), nullptr);
  GAC_CUDA_CHECK_LAUNCH();
  GAC_CUDA_CHECK(cudaMemcpy(out.data(), params.get(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

std::vector<std::string> cuda_device_descriptions() {
  std::vector<std::string> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    out.push_back(std::to_string(d) + ": " + p.name + ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB, " +
                  std::to_string(p.multiProcessorCount) + " SMs, compute capability " + std::to_string(p.major) + "." +
                  std::to_string(p.minor));
  }
  return out;
}

}  // namespace gac
