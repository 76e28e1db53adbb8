#include "emulated_device.h"

#include "emulated_blocks.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <thread>
#include <vector>

namespace gac {
namespace {

constexpr unsigned char kPoison = 0xFF;  // fresh memory: NaN floats, 0xFFFFFFFF integers
constexpr size_t kDefaultDynamicSmem = 48 * 1024;  // CUDA's limit until raised per kernel

int default_host_threads() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 2u, 8u));
}

class EmulatedDevice final : public Device {
 public:
  explicit EmulatedDevice(const EmulatorConfig& c)
      : config_(c),
        stats_(c.stats ? c.stats : std::make_shared<EmulatorStats>()),
        blocks_(c.host_threads > 0 ? c.host_threads : default_host_threads()) {
    props_.name = c.name;
    props_.sms = c.sms;
    props_.total_memory = c.memory;
    props_.smem_per_block = c.smem_per_block;
    props_.major = 9;
    props_.minor = 0;
    props_.dense_threads = c.dense_threads;
  }

  ~EmulatedDevice() override {
    for (auto& [p, bytes] : allocations_) std::free(p);
    for (void* p : pinned_) std::free(p);
  }

  const DeviceProps& props() const override { return props_; }
  size_t free_memory() override { return (config_.memory - in_use_) * (config_.overstate_free_memory ? 16 : 1); }

  void* try_alloc(size_t bytes) override {
    if (bytes > config_.memory - in_use_) {
      ++stats_->failed_allocations;
      return nullptr;
    }
    void* p = poisoned(bytes);
    allocations_[p] = bytes;
    in_use_ += bytes;
    stats_->peak_bytes = std::max(stats_->peak_bytes, in_use_);
    return p;
  }
  void release(void* p) override {
    finish_all();
    const auto it = allocations_.find(p);
    if (it == allocations_.end()) throw Error("emulated device: release of memory it did not allocate");
    in_use_ -= it->second;
    allocations_.erase(it);
    std::free(p);
  }
  void* alloc_pinned(size_t bytes) override {
    void* p = poisoned(bytes);
    pinned_.push_back(p);
    return p;
  }
  void release_pinned(void* p) override {
    finish_all();
    std::erase(pinned_, p);
    std::free(p);
  }

  void upload(void* dst, const void* src, size_t bytes) override {
    finish_all();
    std::memcpy(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    finish_all();
    std::memcpy(dst, src, bytes);
  }
  void upload_async(void* dst, const void* src, size_t bytes, int q) override {
    queue(q).push_back([=] { std::memcpy(dst, src, bytes); });
  }
  void download_async(void* dst, const void* src, size_t bytes, int q) override {
    queue(q).push_back([=] { std::memcpy(dst, src, bytes); });
  }
  void zero_async(void* dst, size_t bytes, int q) override {
    queue(q).push_back([=] { std::memset(dst, 0, bytes); });
  }
  void synchronize(int q) override {
    if (!queue(q).empty() && !queue(1 - q).empty()) ++stats_->waits_with_other_queue_busy;
    finish(q);
  }

  int blocks_per_sm(DeviceKernel, bool, size_t) override { return config_.blocks_per_sm; }
  size_t static_smem(DeviceKernel kernel, bool) override {
    return kernel == DeviceKernel::block_evaluate ? sizeof(BlockShared) : 0;
  }
  void allow_dynamic_smem(bool smem_image, size_t bytes) override { dynamic_smem_[smem_image] = bytes; }
  size_t select_temp_bytes(uint32_t items) override { return items / 64 + 16; }

  void select_indices(void* temp, size_t temp_bytes, const uint8_t* flags, uint32_t count, uint32_t* out,
                      uint32_t* n_out, int q) override {
    check_temp(temp_bytes, count);
    (void)temp;
    queue(q).push_back([=] {
      uint32_t k = 0;
      for (uint32_t i = 0; i < count; ++i)
        if (flags[i]) out[k++] = i;
      *n_out = k;
    });
  }

  void dense_group(int grid, const DenseArgs& a, int e0, int e1, bool first_group, int q) override {
    count_launch();
    const size_t threads = dense_grid(grid);
    if (a.act_threads < threads) throw Error("emulated device: activation scratch smaller than the grid");
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) dense_group_thread(a, e0, e1, first_group, t, threads);
    });
  }
  void dense_finish(int grid, const DenseArgs& a, LossKind loss, float* hit_loss, int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) dense_finish_thread(a, loss, hit_loss, t, threads);
    });
  }
  void dense_tiles(int grid, const DenseTileArgs& a, int q) override {
    count_launch();
    const size_t smem = dense_tile_smem_words(a.m, config_.dense_threads) * sizeof(uint32_t);
    if (grid <= 0 || smem > kDefaultDynamicSmem)
      throw Error("emulated device: dense tile launch of " + std::to_string(grid) + " blocks with " +
                  std::to_string(smem) + " bytes of shared memory");
    queue(q).push_back([=, this] {
      run_blocks(grid, smem, config_.dense_threads, [&](int, int tid, float* shared_floats, BlockShared&) {
        const DenseTileMemory mem =
            carve_dense_tile_memory(a.m, reinterpret_cast<uint32_t*>(shared_floats), config_.dense_threads);
        dense_tile_thread(a, mem, tid, config_.dense_threads);
      });
    });
  }
  void block_evaluate(int grid, size_t smem, bool smem_image, const BlockArgs& a, int q) override {
    count_launch();
    check_block_launch(grid, smem, smem_image, DeviceKernel::block_evaluate);
    queue(q).push_back([=, this] {
      run_blocks(grid, smem, [&](int block, int tid, float* shared_floats, BlockShared& shared) {
        const BlockMemory mem = carve_block_memory(a.plan, smem_image, shared_floats, a.images, block);
        const int T = config_.block_threads;
        switch (prior_class(a.prior.kind)) {  // as the CUDA device picks its kernel instance
          case PriorClass::uniform: block_evaluate_thread<PriorClass::uniform>(a, shared, mem, tid, T); break;
          case PriorClass::normal: block_evaluate_thread<PriorClass::normal>(a, shared, mem, tid, T); break;
          case PriorClass::sphere: block_evaluate_thread<PriorClass::sphere>(a, shared, mem, tid, T); break;
        }
      });
    });
  }
  void sphere_factors(int grid, const BlockArgs& a, int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) sphere_factor_thread(a, t, threads);
    });
  }
  void block_finish(int grid, const BlockArgs& a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss,
                    int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) block_finish_thread(a, hits, n_hits, hit_loss, t, threads);
    });
  }
  void generate_models(const ModelSpec& m, const PriorSpec& prior, StreamKey key, LossKind loss,
                       const uint64_t* draws, uint32_t count, float* params, float* scales, int q) override {
    queue(q).push_back([=] {
      for (uint32_t i = 0; i < count; ++i) generate_model_thread(m, prior, key, loss, draws, i, params, scales);
    });
  }
  void dense_score(int grid, const ScoreArgs& a, int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) dense_score_thread(a, t, threads);
    });
  }
  void block_score(int grid, size_t smem, bool smem_image, const ScoreArgs& a, int q) override {
    check_block_launch(grid, smem, smem_image, DeviceKernel::block_score);
    queue(q).push_back([=, this] {
      run_blocks(grid, smem, [&](int block, int tid, float* shared_floats, BlockShared&) {
        const BlockMemory mem = carve_block_memory(a.plan, smem_image, shared_floats, a.act, block);
        block_score_thread(a, mem, block, grid, tid, config_.block_threads);
      });
    });
  }
  void block_trace(int examples, const TraceArgs& a, int q) override {
    const size_t smem = block_smem_floats(a.plan, false) * sizeof(float);
    if (examples <= 0 || smem > config_.smem_per_block)  // the kernel opts in to all the device has, as on CUDA
      throw Error("emulated device: trace launch of " + std::to_string(examples) + " blocks with " +
                  std::to_string(smem) + " bytes of shared memory");
    queue(q).push_back([=, this] {
      run_blocks(examples, smem, [&](int block, int tid, float* shared_floats, BlockShared&) {
        block_trace_thread(a, carve_block_memory(a.plan, false, shared_floats, a.images, block), block, tid,
                           config_.block_threads);
      });
    });
  }

  void nested_bodies(int grid, const NestedArgs& a, int q) override {
    count_launch();
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) nested_body_thread(a, t, threads);
    });
  }
  void nested_features(int grid, const NestedArgs& a, int q) override {
    const size_t threads = nested_grid(grid, a);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) nested_feature_thread(a, t, threads);
    });
  }
  void nested_heads(int grid, const NestedArgs& a, int q) override {
    count_launch();
    const size_t threads = nested_grid(grid, a);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) nested_head_thread(a, t, threads);
    });
  }
  void nested_finish(int grid, const NestedArgs& a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss,
                     int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) nested_finish_thread(a, hits, n_hits, hit_loss, t, threads);
    });
  }

  void pattern_candidates(int grid, const CandidateArgs& a, int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) pattern_candidate_thread(a, t, threads);
    });
  }
  void greedy_candidates(int grid, const CandidateArgs& a, int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) greedy_candidate_thread(a, t, threads);
    });
  }
  void candidate_scales(int grid, const CandidateArgs& a, int q) override {
    const size_t threads = dense_grid(grid);
    queue(q).push_back([=] {
      for (size_t t = 0; t < threads; ++t) candidate_scale_thread(a, t, threads);
    });
  }

 private:
  using Work = std::vector<std::function<void()>>;

  static void* poisoned(size_t bytes) {
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) throw Error("emulated device: host out of memory");
    std::memset(p, kPoison, bytes);
    return p;
  }

  Work& queue(int q) {
    if (q < 0 || q >= kQueues) throw Error("emulated device: no queue " + std::to_string(q));
    return queues_[q];
  }
  void finish(int q) {
    Work work;
    work.swap(queues_[q]);
    for (auto& w : work) w();
  }
  void finish_all() {
    for (int q = 0; q < kQueues; ++q) finish(q);
  }

  void count_launch() {
    if (launches_++ == config_.fail_at_launch)
      throw Error("emulated device " + config_.name + ": lost at launch " + std::to_string(config_.fail_at_launch));
  }
  size_t dense_grid(int grid) {
    if (grid <= 0) throw Error("emulated device: launch with a grid of " + std::to_string(grid));
    return static_cast<size_t>(grid) * config_.dense_threads;
  }
  // The threads of a nested kernel that uses per-thread scratch: no more than it holds.
  size_t nested_grid(int grid, const NestedArgs& a) {
    const size_t threads = dense_grid(grid);
    if (a.scratch_floats < nested_scratch_floats(a.m, a.n) || a.scratch_threads < threads)
      throw Error("emulated device: nested scratch smaller than the grid");
    return threads;
  }
  void check_block_launch(int grid, size_t smem, bool smem_image, DeviceKernel kernel) {
    if (grid <= 0) throw Error("emulated device: launch with a grid of " + std::to_string(grid));
    const auto allowed = dynamic_smem_.find(smem_image);
    const size_t limit = allowed == dynamic_smem_.end() ? kDefaultDynamicSmem : allowed->second;
    if (smem > limit || smem + static_smem(kernel, smem_image) > config_.smem_per_block)
      throw Error("emulated device: launch with " + std::to_string(smem) + " bytes of dynamic shared memory");
  }
  void check_temp(size_t temp_bytes, uint32_t count) {
    if (temp_bytes < select_temp_bytes(count)) throw Error("emulated device: compaction scratch too small");
  }

  // The grid's blocks, `T` (or block_threads) threads each
  // (tests/emulated_blocks.h).
  void run_blocks(int grid, size_t smem, const BlockThreadBody& body) {
    blocks_.run(grid, config_.block_threads, smem, body);
  }
  void run_blocks(int grid, size_t smem, int T, const BlockThreadBody& body) { blocks_.run(grid, T, smem, body); }

  EmulatorConfig config_;
  std::shared_ptr<EmulatorStats> stats_;
  DeviceProps props_;
  std::map<void*, size_t> allocations_;
  std::vector<void*> pinned_;
  size_t in_use_ = 0;
  std::map<bool, size_t> dynamic_smem_;
  Work queues_[kQueues];
  EmulatedBlocks blocks_;
  int launches_ = 0;  // of the search kernels
};

}  // namespace

std::unique_ptr<Device> make_emulated_device(const EmulatorConfig& config) {
  return std::make_unique<EmulatedDevice>(config);
}

namespace {

EmulatorConfig variant_config(const std::string& variant) {
  EmulatorConfig config;
  config.name = variant;
  if (variant == "emulated_tight") {
    config.block_threads = 3;
    config.dense_threads = 8;
    config.smem_per_block = 24 * 1024;
    config.memory = size_t{8} << 20;
    config.overstate_free_memory = true;
  } else if (variant != "emulated") {
    throw Error("no emulated device variant '" + variant + "'");
  }
  return config;
}

}  // namespace

std::unique_ptr<Device> make_emulated_variant_device(const std::string& variant) {
  return make_emulated_device(variant_config(variant));
}

std::unique_ptr<Backend> make_emulated_backend(const std::string& variant, std::shared_ptr<EmulatorStats> stats) {
  EmulatorConfig config = variant_config(variant);
  config.name = "emulated";
  config.stats = std::move(stats);
  DeviceBackendOptions options;
  options.name = variant;
  if (variant == "emulated_tight") options.max_launch = 61;
  return make_device_backend(make_emulated_device(config), options);
}

}  // namespace gac
