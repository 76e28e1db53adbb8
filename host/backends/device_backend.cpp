// The Backend contract on an accelerator (kernels/device.h): the `cuda`
// backend on a GPU, and the emulated device in the tests.
//
// Results equal the CPU backend's: parameters come from prior_block and every
// value is computed in kernels/forward.h's order with explicit roundings
// (kernels/search_kernels.h), so the same draws are accepted with the same
// losses.
//
// Data: the training and test sets are uploaded once per stream and stay
// resident. Only perfect draws (slot index and loss) come back to the host;
// the host regenerates the weights of the models it stores. A perfect
// draw's loss needs its weight norms, long sequential sums: the block kernels
// leave them to a finish kernel that runs one thread per perfect draw, so
// the evaluating block moves straight on to its next draw.
//
// Pipeline: evaluate() cuts its range into launches of at most `capacity`
// draws and alternates two launch contexts, each with its own queue, buffers
// and pinned result area. While the host waits for and unpacks the hits of
// launch k, launch k+1 is already queued on the other queue. `capacity`
// follows the device's free memory; an allocation that fails halves it
// instead of failing the run. Nothing in the pipeline allocates or copies
// synchronously after the first launch of a stream: every copy is queued on
// the launch's own queue into pinned memory, and the test-scoring buffers
// are kept from one call to the next.
#include <algorithm>
#include <bit>
#include <cstdint>

#include "host/backends/device_backend.h"
#include "host/backends/device_launch.h"
#include "host/backends/device_nested.h"

namespace gac {
namespace {

constexpr size_t kMaxScorePairs = size_t{1} << 22;  // (model, test example) pairs per scoring batch

class DeviceBackend final : public Backend {
 public:
  DeviceBackend(std::unique_ptr<Device> device, DeviceBackendOptions options)
      : device_(std::move(device)), options_(std::move(options)), size_limit_(options_.max_launch),
        train_x_(*device_), test_x_(*device_), train_y_(*device_), test_y_(*device_),
        launches_{Launch(*device_, 0), Launch(*device_, 1)}, score_(*device_), nested_(*device_) {
    if (options_.max_launch == 0) throw Error("device backend: max_launch must be at least 1");
    for (Launch& L : launches_) {
      L.h_counts.resize(kMaxGroups);
      L.h_examples.resize(1);
    }
  }

  ~DeviceBackend() override { abandon(); }

  std::string name() const override { return options_.name; }
  std::string description() const override {
    const DeviceProps& p = device_->props();
    return options_.name + " (" + p.name + ", " + std::to_string(p.sms) + " SMs, " +
           std::to_string(p.total_memory >> 20) + " MiB, compute capability " + std::to_string(p.major) + "." +
           std::to_string(p.minor) + ")";
  }

  void begin_stream(const StreamTask& task) override {
    abandon();
    for (Launch& L : launches_) L.release();  // sized for the previous stream
    score_.release();
    nested_.reset();
    score_limit_ = SIZE_MAX;
    shape_ = LaunchShape{};
    task_ = task;
    train_x_.upload(task.train.x.data(), task.train.x.size());
    train_y_.upload(task.train.y.data(), task.train.y.size());
    test_x_.upload(task.test.x.data(), task.test.x.size());
    test_y_.upload(task.test.y.data(), task.test.y.size());
    plan_ = make_block_plan(task.model);
    shape_.dense = is_dense_only(task.model);
    // CUDA's default limit: no opt-in needed.
    shape_.tiles = shape_.dense && tile_smem_bytes() <= 48 * 1024;
    groups_ = example_groups(static_cast<int>(task.train.size()), task.early_reject);
    if (groups_.size() > kMaxGroups)
      throw Error(options_.name + ": a training set of " + std::to_string(task.train.size()) + " examples is too large");
    if (!shape_.dense) choose_block_kernel();
    size_limit_ = options_.max_launch;
    last_end_ = kNoRange;
  }

  // Enough draws per call to fill the device many times over: a thread per
  // draw for dense models, a block per draw otherwise.
  uint64_t preferred_batch() const override { return shape_.dense ? uint64_t{1} << 22 : uint64_t{1} << 18; }

  // Launches alternate between the two contexts; the older one in flight is
  // always collected first, so hits come out in draw order. When a call
  // continues the previous one, it ends by queueing the range after it (the
  // run loop's next call, most likely): the device works on that while the
  // host accepts, stores and scores. A next call that asks for it takes its
  // results; any other call drops them.
  EvalCounts evaluate(uint64_t first, uint64_t count, std::vector<Hit>& hits) override {
    if (task_.prior.heads > 1)  // nested sampling (host/backends/device_nested.cpp)
      return nested_.evaluate(task_, train_x_.get(), train_y_.get(), options_.max_launch, first, count, hits);
    EvalCounts counts{count, 0};
    if (count == 0) return counts;
    try {
      ensure_capacity(count);
      int next = 0;
      uint64_t done = 0;
      if (ahead_) {
        Launch& A = *ahead_;
        ahead_ = nullptr;
        if (A.first == first && A.count <= count) {
          done = A.count;  // in flight: collected below, before anything queued after it
          next = A.queue ^ 1;
        } else {
          abandon();
        }
      }
      const bool continues = first == last_end_;
      for (; done < count;) {
        Launch& L = launches_[next];
        if (L.busy) collect(L, hits, counts);  // launch k-2: k-1 keeps the device busy meanwhile
        const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(shape_.capacity, count - done));
        enqueue(L, first + done, chunk);
        done += chunk;
        next ^= 1;
      }
      // launches_[next] is the older launch in flight (or free), launches_[next ^ 1] the newest.
      Launch& older = launches_[next];
      if (older.busy) collect(older, hits, counts);
      const uint64_t end = first + count;
      if (continues && end <= UINT64_MAX - count) {
        enqueue(older, end, static_cast<uint32_t>(std::min<uint64_t>(shape_.capacity, count)));
        ahead_ = &older;
      }
      Launch& newest = launches_[next ^ 1];
      if (newest.busy) collect(newest, hits, counts);
      last_end_ = end;
    } catch (...) {
      abandon();
      throw;
    }
    return counts;
  }

  std::vector<TestScore> score_test(const std::vector<uint64_t>& draws) override;
  bool generate_only(uint64_t first, uint64_t count) override;

 private:
  void ensure_score_buffers(size_t models, int n);

  // ---- sizing ---------------------------------------------------------------

  // Block kernels: the image in shared memory when it fits next to the
  // activations with room for two blocks per SM (a lone block of four warps
  // cannot hide memory latency; the image in global memory, cached, lets
  // many blocks run), else in global memory. options_.image can force
  // either (to compare the two variants).
  void choose_block_kernel() {
    const size_t limit = device_->props().smem_per_block;
    size_t reserve = 0;
    for (DeviceKernel k : {DeviceKernel::block_evaluate, DeviceKernel::block_score})
      for (bool smem_image : {true, false}) reserve = std::max(reserve, device_->static_smem(k, smem_image));
    const size_t with_image = block_smem_floats(plan_, true) * sizeof(float);
    shape_.smem_image = with_image + reserve <= limit && options_.image != ImagePlace::global;
    if (shape_.smem_image && options_.image == ImagePlace::automatic) {
      device_->allow_dynamic_smem(true, with_image);
      shape_.smem_image = device_->blocks_per_sm(DeviceKernel::block_evaluate, true, with_image) >= 2;
    }
    // Example 0 resident and the next one prefetched, when a second example buffer fits.
    plan_.resident_example = block_smem_floats(plan_, shape_.smem_image) * sizeof(float) + reserve <= limit;
    shape_.smem_bytes = block_smem_floats(plan_, shape_.smem_image) * sizeof(float);
    if (shape_.smem_bytes + reserve > limit)
      throw Error(options_.name + ": the model's activations need " + std::to_string(shape_.smem_bytes) +
                  " bytes of shared memory per block; this device allows " + std::to_string(limit));
    device_->allow_dynamic_smem(shape_.smem_image, shape_.smem_bytes);
  }

  size_t tile_smem_bytes() const {
    return dense_tile_smem_words(task_.model, device_->props().dense_threads) * sizeof(uint32_t);
  }

  int resident_blocks(DeviceKernel kernel) const {
    const size_t smem = kernel == DeviceKernel::dense_tiles ? tile_smem_bytes() : shape_.dense ? 0 : shape_.smem_bytes;
    return device_->props().sms * std::max(1, device_->blocks_per_sm(kernel, shape_.smem_image, smem));
  }

  // Grid and sizes of a launch of `capacity` draws.
  LaunchShape shape_for(uint32_t capacity) const {
    LaunchShape s = shape_;
    s.capacity = capacity;
    s.hit_capacity = std::min(capacity, std::max(256u, capacity / 8));
    const int threads = device_->props().dense_threads;
    if (s.tiles) {
      s.grid = static_cast<int>(std::min<uint64_t>((capacity + threads - 1) / threads, resident_blocks(DeviceKernel::dense_tiles)));
      return s;  // no compaction scratch, no activations in device memory
    }
    if (s.dense) {
      s.grid = static_cast<int>(std::min<uint64_t>((capacity + threads - 1) / threads, resident_blocks(DeviceKernel::dense_group)));
      s.act_threads = static_cast<size_t>(s.grid) * threads;
    } else {
      s.grid = static_cast<int>(std::min<uint64_t>(capacity, resident_blocks(DeviceKernel::block_evaluate)));
    }
    s.select_bytes = std::max<size_t>(device_->select_temp_bytes(capacity), 1);
    return s;
  }

  // Device bytes of one launch context.
  size_t launch_bytes(const LaunchShape& s) const {
    const ModelSpec& m = task_.model;
    const size_t n = task_.train.size(), L = s.capacity;
    const size_t counters = kMaxGroups * sizeof(uint32_t) + sizeof(uint32_t) + sizeof(unsigned long long);
    if (s.tiles) return L * (sizeof(uint32_t) + sizeof(float)) + counters;  // the hit list
    size_t bytes = s.select_bytes + L * (sizeof(uint8_t) + sizeof(uint32_t) + sizeof(float)) + counters;
    if (s.dense)
      bytes += sizeof(float) * (L * (m.n_params + n * m.n_classes) + s.act_threads * 2 * m.max_activation);
    else
      bytes += sizeof(float) * (L * n * m.n_classes + (s.smem_image ? 0 : s.grid * plan_.image_floats)) +
               (sphere() ? sizeof(double) * L : 0);
    return bytes;
  }

  bool allocate(Launch& L, const LaunchShape& s) {
    const ModelSpec& m = task_.model;
    const size_t n = task_.train.size(), cap = s.capacity;
    bool ok = L.mem.alive.try_resize(cap) && L.mem.hit_loss.try_resize(cap) && L.mem.counts.try_resize(kMaxGroups) &&
              L.mem.next_slot.try_resize(1) && L.mem.examples.try_resize(1);
    if (ok && !s.tiles) ok = L.mem.flags.try_resize(cap) && L.mem.select_temp.try_resize(s.select_bytes);
    if (ok && s.dense && !s.tiles)
      ok = L.mem.params.try_resize(cap * m.n_params) && L.mem.logits.try_resize(cap * n * m.n_classes) &&
           L.mem.act.try_resize(s.act_threads * 2 * m.max_activation);
    if (ok && !s.dense)
      ok = L.mem.logits.try_resize(cap * n * m.n_classes) && L.mem.sphere.try_resize(sphere() ? cap : 0) &&
           L.mem.images.try_resize(s.smem_image ? 0 : static_cast<size_t>(s.grid) * plan_.image_floats);
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
    abandon();
    for (Launch& L : launches_) L.release();  // growing: what they hold counts as free
    shape_.capacity = 0;
    const size_t free_bytes = device_->free_memory();
    uint32_t cap = want;
    while (cap > 1 && 2 * launch_bytes(shape_for(cap)) > free_bytes / 4) cap /= 2;
    for (;; cap /= 2) {
      if (cap == 0) throw Error(options_.name + ": out of device memory even for a launch of one draw");
      const LaunchShape s = shape_for(cap);
      const bool fits = options_.memory_cap == 0 || 2 * launch_bytes(s) <= options_.memory_cap;
      if (fits && allocate(launches_[0], s) && allocate(launches_[1], s)) {
        shape_ = s;
        break;
      }
      for (Launch& L : launches_) L.release();
    }
    if (cap < want) size_limit_ = cap;
  }

  // ---- the pipeline ---------------------------------------------------------

  void enqueue(Launch& L, uint64_t first, uint32_t count) {
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.train.size());
    const int q = L.queue;
    L.first = first;
    L.count = count;
    if (shape_.tiles) {
      for (void* counter : {static_cast<void*>(L.mem.next_slot.get()), static_cast<void*>(L.mem.counts.get())})
        device_->zero_async(counter, sizeof(uint32_t), q);
      device_->zero_async(L.mem.examples.get(), sizeof(unsigned long long), q);
      device_->dense_tiles(tile_grid(count), tile_args(L, first, count, true), q);
      device_->download_async(L.h_counts.get(), L.mem.counts.get(), sizeof(uint32_t), q);
      device_->download_async(L.h_examples.get(), L.mem.examples.get(), sizeof(unsigned long long), q);
    } else if (shape_.dense) {
      const int threads = device_->props().dense_threads;
      const int grid = static_cast<int>(std::min<uint64_t>(shape_.grid, (count + threads - 1) / threads));
      DenseArgs a{m, task_.prior, task_.key, first, count, shape_.capacity, shape_.act_threads,
                  train_x_.get(), train_y_.get(), n, L.mem.params.get(), L.mem.logits.get(), L.mem.act.get(),
                  L.mem.flags.get(), L.mem.alive.get(), nullptr};
      for (size_t g = 0; g < groups_.size(); ++g) {
        a.n_alive = g ? L.mem.counts.get() + g - 1 : nullptr;
        device_->dense_group(grid, a, groups_[g].first, groups_[g].second, g == 0, q);
        // The survivors of group g: the slot list and count group g + 1 reads.
        device_->select_indices(L.mem.select_temp.get(), shape_.select_bytes, L.mem.flags.get(), count, L.mem.alive.get(),
                                L.mem.counts.get() + g, q);
      }
      a.n_alive = L.mem.counts.get() + groups_.size() - 1;
      device_->dense_finish(grid, a, task_.loss, L.mem.hit_loss.get(), q);
      device_->download_async(L.h_counts.get(), L.mem.counts.get(), groups_.size() * sizeof(uint32_t), q);
    } else {
      const BlockArgs a = block_args(L, first, count, n);
      device_->zero_async(L.mem.examples.get(), sizeof(unsigned long long), q);
      queue_block_evaluate(L, a);
      device_->select_indices(L.mem.select_temp.get(), shape_.select_bytes, L.mem.flags.get(), count, L.mem.alive.get(),
                              L.mem.counts.get(), q);
      device_->block_finish(item_grid(DeviceKernel::block_finish, count), a, L.mem.alive.get(), L.mem.counts.get(),
                            L.mem.hit_loss.get(), q);
      device_->download_async(L.h_counts.get(), L.mem.counts.get(), sizeof(uint32_t), q);
      device_->download_async(L.h_examples.get(), L.mem.examples.get(), sizeof(unsigned long long), q);
    }
    // The first hit_capacity hits ride along; a launch with more fetches the rest in collect().
    const uint32_t h = std::min(shape_.hit_capacity, count);
    device_->download_async(L.h_slots.get(), L.mem.alive.get(), h * sizeof(uint32_t), q);
    device_->download_async(L.h_loss.get(), L.mem.hit_loss.get(), h * sizeof(float), q);
    L.busy = true;
  }

  // The dense tile kernel on `count` slots from `first`; without `evaluate`, generation only.
  DenseTileArgs tile_args(Launch& L, uint64_t first, uint32_t count, bool evaluate) const {
    const DenseTileArgs a{task_.model, task_.prior, task_.key, first, count, train_x_.get(), train_y_.get(),
                          static_cast<int>(task_.train.size()), task_.loss,
                          evaluate ? static_cast<int>(groups_.size()) : 0, task_.early_reject ? 1 : 0,
                          L.mem.next_slot.get(), L.mem.counts.get(), L.mem.alive.get(), L.mem.hit_loss.get(), L.mem.examples.get()};
    for (size_t g = 0; g < groups_.size(); ++g)  // the kernel computes the groups' bounds itself
      if (tile_group_end(a, static_cast<int>(g)) != groups_[g].second)
        throw Error(options_.name + ": example group " + std::to_string(g) + " disagrees with the tile kernel's");
    return a;
  }
  int tile_grid(uint32_t count) const {
    const int threads = device_->props().dense_threads;
    return static_cast<int>(std::min<uint64_t>(shape_.grid, (count + threads - 1) / threads));
  }

  BlockArgs block_args(Launch& L, uint64_t first, uint32_t count, int n) const {
    return BlockArgs{task_.model, plan_, task_.prior, philox_keys(task_.key), first, count, train_x_.get(),
                     train_y_.get(), n, task_.loss, task_.early_reject ? 1 : 0, L.mem.logits.get(), L.mem.images.get(),
                     L.mem.flags.get(), sphere() ? L.mem.sphere.get() : nullptr, L.mem.examples.get(), L.mem.next_slot.get(),
                     task_.key};
  }

  // The block kernel on a.count slots, after the sphere factors it reads.
  void queue_block_evaluate(Launch& L, const BlockArgs& a) {
    device_->zero_async(L.mem.next_slot.get(), sizeof(uint32_t), L.queue);
    if (a.sphere) device_->sphere_factors(item_grid(DeviceKernel::sphere_factors, a.count), a, L.queue);
    const int grid = static_cast<int>(std::min<uint64_t>(shape_.grid, a.count));
    device_->block_evaluate(grid, shape_.smem_bytes, shape_.smem_image, a, L.queue);
  }

  // Blocks of a one-thread-per-item kernel over `items` items.
  int item_grid(DeviceKernel kernel, uint64_t items) const {
    const int threads = device_->props().dense_threads;
    return static_cast<int>(std::min<uint64_t>((items + threads - 1) / threads, resident_blocks(kernel)));
  }

  bool sphere() const { return task_.prior.kind == PriorKind::sphere; }

  // Waits for launch L and appends its hits (in slot order) to `hits`.
  void collect(Launch& L, std::vector<Hit>& hits, EvalCounts& counts) {
    device_->synchronize(L.queue);
    L.busy = false;
    uint32_t n_hits;
    if (shape_.dense && !shape_.tiles) {
      // Group g ran on the survivors of group g - 1 (all slots for g = 0).
      n_hits = L.h_counts[groups_.size() - 1];
      counts.examples += static_cast<uint64_t>(L.count) * (groups_[0].second - groups_[0].first);
      for (size_t g = 1; g < groups_.size(); ++g)
        counts.examples += static_cast<uint64_t>(L.h_counts[g - 1]) * (groups_[g].second - groups_[g].first);
    } else {
      n_hits = L.h_counts[0];
      counts.examples += L.h_examples[0];
    }
    if (n_hits > L.count) throw Error(options_.name + ": a launch of " + std::to_string(L.count) + " draws reported " +
                                      std::to_string(n_hits) + " perfect draws");
    const uint32_t h = std::min(shape_.hit_capacity, L.count);
    if (n_hits > h) {  // the rest, on L's own queue: the other launch keeps running meanwhile
      L.h_more_slots.grow(n_hits - h);
      L.h_more_loss.grow(n_hits - h);
      device_->download_async(L.h_more_slots.get(), L.mem.alive.get() + h, (n_hits - h) * sizeof(uint32_t), L.queue);
      device_->download_async(L.h_more_loss.get(), L.mem.hit_loss.get() + h, (n_hits - h) * sizeof(float), L.queue);
      device_->synchronize(L.queue);
    }
    const float* edges = task_.bin_edges.data();
    const int n_edges = static_cast<int>(task_.bin_edges.size());
    const size_t start = hits.size();
    for (uint32_t k = 0; k < n_hits; ++k) {
      const uint32_t slot = k < h ? L.h_slots[k] : L.h_more_slots[k - h];
      const float loss = k < h ? L.h_loss[k] : L.h_more_loss[k - h];
      hits.push_back({L.first + slot, loss, find_bin(edges, n_edges, loss)});
    }
    // The tiles append their hits in whatever order the blocks finish.
    if (shape_.tiles)
      std::sort(hits.begin() + start, hits.end(), [](const Hit& x, const Hit& y) { return x.draw < y.draw; });
  }

  // Drops queued launches (after an error, before the data change, or a
  // range queued ahead that nobody asked for).
  void abandon() noexcept {
    ahead_ = nullptr;
    for (Launch& L : launches_)
      if (L.busy) {
        L.busy = false;
        try {
          device_->synchronize(L.queue);
        } catch (...) {  // we may already be unwinding from the error that broke the queue
        }
      }
  }

  std::unique_ptr<Device> device_;
  DeviceBackendOptions options_;
  uint32_t size_limit_;  // largest launch this stream may try (lowered by memory)
  StreamTask task_;
  std::vector<std::pair<int, int>> groups_;  // dense kernels: example groups [e0, e1)
  BlockPlan plan_{};
  LaunchShape shape_{};
  DeviceArray<float> train_x_, test_x_;
  DeviceArray<int32_t> train_y_, test_y_;
  Launch launches_[2];
  ScoreBuffers score_;
  DeviceNested nested_;
  size_t score_limit_ = SIZE_MAX;  // most models per scoring batch (lowered by memory)
  Launch* ahead_ = nullptr;  // the launch queued ahead for the range after the last call, if any
  static constexpr uint64_t kNoRange = UINT64_MAX;
  uint64_t last_end_ = kNoRange;  // end of the last call's range
};

// ---- test scoring -------------------------------------------------------------

// Models scored per batch: enough for this call's draws (rounded up to a
// power of two, so that the buffers are rarely reallocated), at most
// kMaxScorePairs (model, example) pairs, and at most what the device held
// when an allocation last failed.
void DeviceBackend::ensure_score_buffers(size_t models, int n) {
  Device& dev = *device_;
  const ModelSpec& m = task_.model;
  size_t want = std::min({std::bit_ceil(models), std::max<size_t>(1, kMaxScorePairs / n), score_limit_});
  if (score_.batch >= std::min(models, want)) return;
  for (;; want /= 2) {
    if (want == 0) throw Error(options_.name + ": out of device memory scoring even one model");
    const size_t pairs = want * n;
    size_t act_floats;
    if (shape_.dense) {
      const int threads = dev.props().dense_threads;
      score_.grid = static_cast<int>(
          std::min<size_t>((pairs + threads - 1) / threads, resident_blocks(DeviceKernel::dense_score)));
      act_floats = static_cast<size_t>(score_.grid) * threads * 2 * m.max_activation;
    } else {
      const size_t items = want * ((n + kScoreChunk - 1) / kScoreChunk);
      score_.grid = static_cast<int>(std::min<size_t>(items, resident_blocks(DeviceKernel::block_score)));
      act_floats = shape_.smem_image ? 0 : static_cast<size_t>(score_.grid) * plan_.image_floats;
    }
    score_.release();
    if (score_.mem.draws.try_grow(want) && score_.mem.params.try_grow(want * m.n_params) && score_.mem.scales.try_grow(want) &&
        score_.mem.act.try_grow(act_floats) && score_.mem.loss.try_grow(pairs) && score_.mem.correct.try_grow(pairs))
      break;
    score_limit_ = want / 2;
  }
  score_.batch = want;
  score_.h_draws.grow(want);
  score_.h_loss.grow(want * n);
  score_.h_correct.grow(want * n);
}

std::vector<TestScore> DeviceBackend::score_test(const std::vector<uint64_t>& draws) {
  const ModelSpec& m = task_.model;
  const int n = static_cast<int>(task_.test.size());
  std::vector<TestScore> scores(draws.size());
  if (draws.empty() || n == 0) return scores;
  Device& dev = *device_;
  ensure_score_buffers(draws.size(), n);
  // The queue the range queued ahead (if any) is not on: scoring runs beside it.
  const int q = ahead_ ? ahead_->queue ^ 1 : 0;
  for (size_t start = 0; start < draws.size(); start += score_.batch) {
    const uint32_t models = static_cast<uint32_t>(std::min(score_.batch, draws.size() - start));
    const size_t pairs = static_cast<size_t>(models) * n;
    std::copy_n(draws.data() + start, models, score_.h_draws.get());
    dev.upload_async(score_.mem.draws.get(), score_.h_draws.get(), models * sizeof(uint64_t), q);
    dev.generate_models(m, task_.prior, task_.key, task_.loss, score_.mem.draws.get(), models, score_.mem.params.get(),
                        score_.mem.scales.get(), q);
    const ScoreArgs a{m, plan_, models, score_.mem.params.get(), score_.mem.scales.get(), test_x_.get(), test_y_.get(), n,
                      score_.mem.act.get(), score_.mem.correct.get(), score_.mem.loss.get()};
    if (shape_.dense) {
      // A smaller last batch may take fewer blocks: the activation stride is
      // the launch's own thread count, within what the buffer was sized for.
      const int threads = dev.props().dense_threads;
      dev.dense_score(static_cast<int>(std::min<size_t>(score_.grid, (pairs + threads - 1) / threads)), a, q);
    } else {
      dev.block_score(score_.grid, shape_.smem_bytes, shape_.smem_image, a, q);
    }
    dev.download_async(score_.h_loss.get(), score_.mem.loss.get(), pairs * sizeof(float), q);
    dev.download_async(score_.h_correct.get(), score_.mem.correct.get(), pairs * sizeof(uint8_t), q);
    dev.synchronize(q);
    // Summed on the host in example order, in double: the CPU backend's sum.
    for (uint32_t i = 0; i < models; ++i) {
      double l = 0;
      int c = 0;
      for (int e = 0; e < n; ++e) {
        l += score_.h_loss[static_cast<size_t>(i) * n + e];
        c += score_.h_correct[static_cast<size_t>(i) * n + e];
      }
      scores[start + i] = TestScore{static_cast<double>(c) / n, l / n};
    }
  }
  return scores;
}

// The generation of evaluate()'s launches alone: the dense kernel's first
// group on no examples, or the block kernel with no examples.
bool DeviceBackend::generate_only(uint64_t first, uint64_t count) {
  if (task_.prior.heads > 1) return false;  // nested sampling generates heads inside its evaluation
  try {
    abandon();
    last_end_ = kNoRange;
    ensure_capacity(count);
    Launch& L = launches_[0];
    for (uint64_t done = 0; done < count;) {
      const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(shape_.capacity, count - done));
      if (shape_.tiles) {
        device_->zero_async(L.mem.next_slot.get(), sizeof(uint32_t), L.queue);
        device_->dense_tiles(tile_grid(chunk), tile_args(L, first + done, chunk, false), L.queue);
      } else if (shape_.dense) {
        const int threads = device_->props().dense_threads;
        const int grid = static_cast<int>(std::min<uint64_t>(shape_.grid, (chunk + threads - 1) / threads));
        const DenseArgs a{task_.model, task_.prior, task_.key, first + done, chunk, shape_.capacity, shape_.act_threads,
                          train_x_.get(), train_y_.get(), 0, L.mem.params.get(), L.mem.logits.get(), L.mem.act.get(),
                          L.mem.flags.get(), L.mem.alive.get(), nullptr};
        device_->dense_group(grid, a, 0, 0, true, L.queue);
      } else {
        queue_block_evaluate(L, block_args(L, first + done, chunk, 0));
      }
      done += chunk;
    }
    device_->synchronize(L.queue);
  } catch (...) {
    abandon();
    throw;
  }
  return true;
}

}  // namespace

std::unique_ptr<Backend> make_device_backend(std::unique_ptr<Device> device, DeviceBackendOptions options) {
  return std::make_unique<DeviceBackend>(std::move(device), std::move(options));
}

std::vector<float> device_generate_params(Device& device, const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                          const std::vector<uint64_t>& draws) {
  std::vector<float> out(draws.size() * m.n_params);
  if (draws.empty()) return out;
  DeviceArray<uint64_t> d_draws(device);
  DeviceArray<float> params(device);
  d_draws.upload(draws.data(), draws.size());
  if (!params.try_resize(out.size())) throw Error("device: out of memory generating parameters");
  device.generate_models(m, prior, key, LossKind::raw, d_draws.get(), static_cast<uint32_t>(draws.size()),
                         params.get(), nullptr, 0);
  device.download(out.data(), params.get(), out.size() * sizeof(float));
  return out;
}

std::vector<float> device_trace_layers(Device& device, const ModelSpec& m, const std::vector<float>& params,
                                       const std::vector<float>& X, int n) {
  const BlockPlan plan = make_block_plan(m);
  const size_t per_example = block_trace_floats(m, plan);
  std::vector<float> out(n * per_example);
  if (n == 0) return out;
  DeviceArray<float> d_params(device), d_x(device), images(device), trace(device);
  d_params.upload(params.data(), params.size());
  d_x.upload(X.data(), X.size());
  if (!images.try_resize(static_cast<size_t>(n) * plan.image_floats) || !trace.try_resize(out.size()))
    throw Error("device: out of memory tracing layers");
  device.block_trace(n, TraceArgs{m, plan, d_params.get(), d_x.get(), images.get(), trace.get()}, 0);
  device.download(out.data(), trace.get(), out.size() * sizeof(float));
  return out;
}

}  // namespace gac
