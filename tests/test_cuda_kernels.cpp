// The block kernels' pieces (kernels/block_forward.h, kernels/search_kernels.h,
// kernels/device_intrinsics.h) against plain references on fresh random
// inputs, on the host: the keyed Philox, the multiply-high division, the
// image and activation layouts and what they promise the GPU (aligned
// vectors, conflict-free patch loads, work spread over the schedulers), the
// register-tiled conv + pool, the example staging and its deferred copies,
// whole launches on the emulated device at the GPU's block size, and the
// dense tiles' in-block compaction (kernels/dense_tiles.h).
#include <gtest/gtest.h>

#include <barrier>
#include <cmath>
#include <cstring>
#include <set>
#include <thread>

#include "gac/backend.h"
#include "gac/config.h"
#include "host/backends/device_backend.h"
#include "emulated_device.h"
#include "test_util.h"

using namespace gac;

namespace {

Model lenet(int c, int h, int w, int classes = 2, double width = 0.5) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  mc.width = width;
  return build_model(mc, c, h, w, classes);
}

std::vector<Model> conv_models() {
  return {lenet(1, 28, 28), lenet(3, 32, 32, 10), lenet(1, 28, 28, 3, 1.0), lenet(1, 29, 31)};
}

}  // namespace

TEST(BlockKernelPieces, KeyedPhiloxEqualsPhilox) {
  SplitMix64 rng(17);
  for (int i = 0; i < 2000; ++i) {
    const StreamKey key{static_cast<uint32_t>(rng.next()), static_cast<uint32_t>(rng.next())};
    const uint64_t draw = rng.next() >> (i % 64);
    const uint32_t block = static_cast<uint32_t>(rng.next());
    const U32x4 want = philox_block(key, draw, block), got = philox_block_keyed(philox_keys(key), draw, block);
    for (int j = 0; j < 4; ++j) ASSERT_EQ(got.v[j], want.v[j]) << "case " << i;
  }
}

TEST(BlockKernelPieces, MultiplyHighDivisionIsExact) {
  for (int d : {1, 2, 3, 5, 6, 7, 12, 13, 36, 72, 100, 255, 1000, 4095, 32767}) {
    const Reciprocal r = make_reciprocal(d);
    for (int n = 0; n < (1 << 16); ++n) ASSERT_EQ(divide(n, r), n / d) << n << " / " << d;
  }
}

TEST(BlockKernelPieces, LayoutsGiveAlignedVectorsAndEveryStepItsInput) {
  for (const Model& model : conv_models()) {
    const ModelSpec& m = model.spec;
    const BlockPlan plan = make_block_plan(m);
    EXPECT_EQ(plan.image_floats % 4, 0);
    EXPECT_EQ(plan.in_floats % 4, 0);
    EXPECT_EQ(plan.act_floats % 4, 0);
    EXPECT_EQ(plan.act1_floats % 4, 0);
    // Each tensor congruent to its parameter offset mod 4: Philox blocks are aligned stores.
    for (int l = 0; l < m.n_layers; ++l) {
      const Layer& L = m.layers[l];
      const BlockLayer& B = plan.layers[l];
      if (L.w_off >= 0) {
        EXPECT_EQ((B.w_img - L.w_off) % 4, 0) << "layer " << l;
      }
      if (L.b_off >= 0) {
        EXPECT_EQ((B.b_img - L.b_off) % 4, 0) << "layer " << l;
      }
      if (L.kind == LayerKind::dense) {
        EXPECT_EQ(B.w_stride % 8, 4) << "layer " << l;
        EXPECT_GE(B.w_stride, L.in_size());
      }
    }
    // Every step's input layout fits its buffer and suits its reader.
    ActLayout in = plan.in;
    int32_t capacity = plan.in_floats;
    for (int l = 0, step = 0; l < m.n_layers; ++l, ++step) {
      const Layer& L = m.layers[l];
      const BlockLayer& B = plan.layers[l];
      EXPECT_LE(in.base + L.in_c * in.plane, capacity) << "layer " << l;
      EXPECT_GE(in.row, L.in_w);
      if (B.fuse_pool) {
        const Layer& P = m.layers[l + 1];
        EXPECT_EQ(in.base % 4, 0);
        EXPECT_EQ(in.row % 4, 0);
        EXPECT_EQ(in.plane % 4, 0);
        EXPECT_GE(in.row, 4 * ((P.out_w + 1) / 2) + 4) << "every pair's 8-column patch inside the row";
        ++l;
      } else if (L.kind == LayerKind::dense) {
        EXPECT_EQ((in.base - B.w_img) % 4, 0) << "inputs aligned like the weights";
      }
      in = B.out;
      capacity = step % 2 == 0 ? plan.act_floats : plan.act1_floats;
    }
  }
}

TEST(BlockKernelPieces, LayersTooLargeForTheReciprocalsTakeTheGenericSteps) {
  // Width 8 on 128x128: conv1 has 48 x 62 x 31 = 92,256 pairs (the
  // multiply-high division is exact below 2^16), conv2 128 x 29 x 15.
  const Model model = lenet(1, 128, 128, 2, 8.0);
  const BlockPlan plan = make_block_plan(model.spec);
  EXPECT_EQ(plan.layers[0].fuse_pool, 0);
  EXPECT_EQ(plan.layers[2].fuse_pool, 1);
}

TEST(BlockKernelPieces, LeNetPatchLoadsAreConflictFreeAndSchedulersEven) {
  // LeNet w0.5 on 28x28: the strides make_block_plan picks put every quarter
  // warp's eight 16-byte patch loads in eight bank groups.
  const Model model = lenet(1, 28, 28);
  const ModelSpec& m = model.spec;
  const BlockPlan plan = make_block_plan(m, 256);
  EXPECT_EQ(plan.in.row, 28);  // no padding needed: 28 / 2 = 6 pairs + 8, mod 8
  for (int step : {0, 2}) {
    const Layer& conv = m.layers[step];
    const Layer& pool = m.layers[step + 1];
    const ActLayout& in = step == 0 ? plan.in : plan.layers[0].out;
    const int pairs = (pool.out_w + 1) / 2, per_channel = pool.out_h * pairs;
    for (int q = 0; q * 8 < conv.out_c * per_channel; ++q) {
      std::set<int> chunks, groups;
      for (int i = q * 8; i < q * 8 + 8 && i < conv.out_c * per_channel; ++i) {
        const int rest = i % per_channel;
        chunks.insert(in.at(0, 2 * (rest / pairs), 4 * (rest % pairs)) / 4);
      }
      for (int c : chunks) groups.insert(c % 8);
      EXPECT_EQ(groups.size(), chunks.size()) << "step " << step << " quarter warp " << q;
    }
  }
  // Work per scheduler (warp w on w % 4) of one example's steps, each item
  // costed by its multiply-adds, summed over the four rotations the block
  // kernel cycles through (slot mod 4): the same on every scheduler.
  int64_t load[4] = {0, 0, 0, 0};
  for (int rotation = 0; rotation < 4; ++rotation) {
    for (int l = 0; l < m.n_layers; ++l) {
      const Layer& L = m.layers[l];
      const bool fused = plan.layers[l].fuse_pool != 0;
      const Layer& O = fused ? m.layers[l + 1] : L;
      const int items = fused ? L.out_c * O.out_h * ((O.out_w + 1) / 2) : O.out_size();
      const int64_t cost = fused ? 200 * L.in_c : L.in_size();
      bool warp_busy[8] = {};
      for (int tid = 0; tid < 256; ++tid)
        for (int item = step_thread(tid, 256, rotation); item < items; item += 256) warp_busy[tid / 32] = true;
      for (int w = 0; w < 8; ++w) load[w % 4] += warp_busy[w] ? cost : 0;
      if (fused) ++l;
    }
  }
  for (int s = 1; s < 4; ++s) EXPECT_EQ(load[s], load[0]) << "scheduler " << s;
}

TEST(BlockKernelPieces, TiledConvPoolEqualsConvThenPool) {
  // Fresh random weights and inputs; any number of threads (run one after
  // the other: the step has no barrier) writes every pooled output once.
  uint64_t seed = 40;
  for (const Model& model : conv_models()) {
    const ModelSpec& m = model.spec;
    const BlockPlan plan = make_block_plan(m);
    ActLayout in = plan.in;
    for (int l = 0; l < m.n_layers; ++l) {
      const Layer& L = m.layers[l];
      if (!plan.layers[l].fuse_pool) {
        in = plan.layers[l].out;
        continue;
      }
      const Layer& P = m.layers[l + 1];
      const BlockLayer& B = plan.layers[l];
      const std::vector<float> params = test::random_floats(m.n_params, ++seed, -0.5, 0.5);
      const std::vector<float> x = test::random_floats(static_cast<size_t>(L.in_size()), ++seed, -2, 2);
      std::vector<float> img(plan.image_floats, NAN);
      block_load_image(m, plan, params.data(), img.data(), 0, 1);
      std::vector<float> staged(in.base + L.in_c * in.plane, NAN);  // NaN padding: read only for dropped outputs
      for (int c = 0; c < L.in_c; ++c)
        for (int y = 0; y < L.in_h; ++y)
          for (int xx = 0; xx < L.in_w; ++xx) staged[in.at(c, y, xx)] = x[(c * L.in_h + y) * L.in_w + xx];
      std::vector<float> conv(L.out_size()), want(P.out_size());
      conv_forward(L, params.data(), x.data(), conv.data());
      maxpool2_forward(P, conv.data(), want.data());
      for (int threads : {1, 3, 256}) {
        std::vector<float> out(std::max(plan.act_floats, B.out.base + P.out_c * B.out.plane) + 8, NAN);
        for (int t = 0; t < threads; ++t)
          block_conv_pool<5>(L, P, B, in, img.data(), staged.data(), out.data(), t, threads);
        for (int c = 0; c < P.out_c; ++c)
          for (int y = 0; y < P.out_h; ++y)
            for (int xx = 0; xx < P.out_w; ++xx)
              ASSERT_EQ(test::float_bits(out[B.out.at(c, y, xx)]), test::float_bits(want[(c * P.out_h + y) * P.out_w + xx]))
                  << m.in_c << "x" << m.in_h << "x" << m.in_w << " layer " << l << ", " << threads << " threads, ("
                  << c << ", " << y << ", " << xx << ")";
      }
      in = B.out;
      ++l;
    }
  }
}

TEST(BlockKernelPieces, StagingFollowsTheLayoutAndAsyncCopiesLandAtTheWait) {
  for (const Model& model : {lenet(1, 28, 28), lenet(1, 29, 31), lenet(3, 32, 32)}) {
    const ModelSpec& m = model.spec;
    const BlockPlan plan = make_block_plan(m);
    const std::vector<float> x = test::random_floats(m.in_size(), 3);
    std::vector<float> staged(plan.in_floats, NAN);
    for (int t = 0; t < 5; ++t) block_stage_example(m, plan, x.data(), staged.data(), t, 5);
    // Nothing has arrived before the wait (a GPU gives no such promise either).
    for (float v : staged) ASSERT_TRUE(std::isnan(v));
    async_copy_wait_all();
    for (int c = 0; c < m.in_c; ++c)
      for (int y = 0; y < m.in_h; ++y)
        for (int xx = 0; xx < m.in_w; ++xx)
          ASSERT_EQ(test::float_bits(staged[plan.in.at(c, y, xx)]), test::float_bits(x[(c * m.in_h + y) * m.in_w + xx]));
  }
}

namespace {

// A LeNet stream over random data whose labels some draws fit perfectly.
StreamTask lenet_task(int n, bool early, PriorKind kind, uint64_t seed) {
  const Model model = lenet(1, 28, 28);
  StreamTask t;
  t.model = model.spec;
  PriorConfig pc;
  pc.kind = kind;
  pc.sphere_radius = 20.0;
  t.prior = make_prior_spec(pc, model);
  t.key = make_stream_key(seed, n, 0, 0);
  t.early_reject = early;
  t.bin_edges = {0.0f, 0.6f, 0.69f, 10.0f};
  SplitMix64 rng(seed);
  for (int i = 0; i < n * 784; ++i) t.train.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
  for (int i = 0; i < n; ++i) t.train.y.push_back(0);  // one class: perfect draws exist
  for (int i = 0; i < 784; ++i) t.test.x.push_back(0.0f);
  t.test.y = {0};
  return t;
}

void expect_same_as_cpu(Backend& device, const StreamTask& task, uint64_t count, const std::string& what) {
  const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  std::vector<Hit> want, got;
  cpu->begin_stream(task);
  device.begin_stream(task);
  cpu->evaluate(0, count, want);
  device.evaluate(0, count, got);
  EXPECT_GT(want.size(), 0u) << what << ": no perfect draw, nothing compared";
  test::expect_same_hits(want, got, what);
}

}  // namespace

TEST(BlockKernelLaunches, BlocksOf256ThreadsWithTheSchedulerRotationMatchTheCpu) {
  // The GPU's block size: every step rotated by its first warp, example 0
  // resident and the next one prefetched, every prior class.
  EmulatorConfig config;
  config.sms = 1;
  config.blocks_per_sm = 2;
  config.block_threads = 256;
  DeviceBackendOptions options;
  options.name = "emulated, 256 threads";
  const std::unique_ptr<Backend> device = make_device_backend(make_emulated_device(config), options);
  for (PriorKind kind : {PriorKind::uniform, PriorKind::normal, PriorKind::sphere})
    for (bool early : {true, false})
      expect_same_as_cpu(*device, lenet_task(4, early, kind, 5), 60,
                         "prior " + std::to_string(int(kind)) + (early ? " early" : " full"));
}

TEST(BlockKernelLaunches, OneExampleBufferWhenTwoDoNotFit) {
  // 8 KB of shared memory: the image goes to global memory and a second
  // example buffer (3 KB) does not fit, so every example is staged when needed.
  EmulatorConfig config;
  config.smem_per_block = 8 * 1024;
  const std::unique_ptr<Backend> device = make_device_backend(make_emulated_device(config));
  for (bool early : {true, false}) expect_same_as_cpu(*device, lenet_task(3, early, PriorKind::uniform, 6), 80, "one buffer");
}

namespace {

// A barrier for host threads playing one block (as the emulated device's).
struct TestBarrier final : HostBlockBarrier {
  explicit TestBarrier(int threads) : barrier(threads) {}
  void arrive_and_wait() override { barrier.arrive_and_wait(); }
  std::barrier<> barrier;
};

// Runs body(tid) on `threads` host threads meeting at one barrier.
template <class Body>
void run_block(int threads, const Body& body) {
  TestBarrier barrier(threads);
  std::vector<std::jthread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      host_block_barrier = &barrier;
      body(t);
      host_block_barrier = nullptr;
    });
}

}  // namespace

TEST(DenseTiles, BlockAppendEqualsAStableFilter) {
  // Rounds of random votes appended one after the other: the kept values in
  // thread order, round after round, as a plain loop keeps them.
  for (int threads : {1, 5, 32}) {
    SplitMix64 rng(static_cast<uint64_t>(threads));
    const int rounds = 6;
    std::vector<uint8_t> keep(static_cast<size_t>(rounds) * threads);
    for (auto& k : keep) k = rng.below(3) == 0;
    std::vector<uint32_t> want;
    for (size_t i = 0; i < keep.size(); ++i)
      if (keep[i]) want.push_back(static_cast<uint32_t>(i));
    std::vector<uint32_t> out(keep.size(), 0xFFFFFFFFu), warp_base(threads + 2, 0);
    run_block(threads, [&](int tid) {
      for (int r = 0; r < rounds; ++r) {
        const size_t i = static_cast<size_t>(r) * threads + tid;
        block_append(keep[i] != 0, static_cast<uint32_t>(i), out.data(), warp_base.data(), tid, threads);
      }
    });
    ASSERT_EQ(warp_base[threads], want.size()) << threads << " threads";
    for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(out[k], want[k]) << threads << " threads, entry " << k;
  }
}

namespace {

StreamTask mlp_task(int inputs, int n, bool early, uint64_t seed) {
  ModelConfig mc;  // the paper's MLP: 10 hidden units, no hidden bias
  const Model model = build_model(mc, 1, 1, inputs, 2);
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(PriorConfig{}, model);
  t.key = make_stream_key(seed, n, 0, 0);
  t.early_reject = early;
  t.bin_edges = {0.0f, 0.6f, 0.69f, 10.0f};
  SplitMix64 rng(seed);
  for (int i = 0; i < n * inputs; ++i) t.train.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
  for (int i = 0; i < n; ++i) t.train.y.push_back(static_cast<int32_t>(rng.below(2)));
  t.test.x.assign(inputs, 0.0f);
  t.test.y = {0};
  return t;
}

}  // namespace

TEST(DenseTiles, SmallAndLargeMlpsMatchTheCpu) {
  // 2 inputs: 42 parameters, tiles in shared memory; 64 inputs: 672
  // parameters, 88 KB a tile of 32: the compaction passes through device
  // memory. Early rejection over 7 examples (groups [0,1) [1,2) [2,4) [4,7)),
  // and full evaluation.
  for (int inputs : {2, 64})
    for (bool early : {true, false}) {
      EmulatorConfig config;
      config.stats = std::make_shared<EmulatorStats>();
      const std::unique_ptr<Backend> device = make_device_backend(make_emulated_device(config));
      expect_same_as_cpu(*device, mlp_task(inputs, 7, early, 11), inputs == 2 ? 20000 : 3000,
                         std::to_string(inputs) + " inputs" + (early ? " early" : " full"));
      // The tiles hold only the hit list and counters: a few bytes a draw.
      if (inputs == 2) {
        EXPECT_LT(config.stats->peak_bytes, size_t{20000} * 2 * 12 + 4096);
      }
    }
}

TEST(DeviceMemory, ArraysMoveAndFreeWhatTheyHeld) {
  const std::unique_ptr<Device> device = make_emulated_device();
  const size_t empty = device->free_memory();
  DeviceArray<float> a(*device);
  ASSERT_TRUE(a.try_resize(1000));
  DeviceArray<float> b = std::move(a);
  EXPECT_EQ(a.get(), nullptr);
  EXPECT_EQ(b.size(), 1000u);
  EXPECT_EQ(device->free_memory(), empty - 4000);
  b = DeviceArray<float>(*device);  // moving an empty array in frees what b held
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(device->free_memory(), empty);
  PinnedArray<uint32_t> p(*device);
  p.resize(10);
  p[3] = 7;
  PinnedArray<uint32_t> q = std::move(p);
  EXPECT_EQ(p.get(), nullptr);
  EXPECT_EQ(q.size(), 10u);
  EXPECT_EQ(q[3], 7u);
  q = PinnedArray<uint32_t>(*device);
  EXPECT_EQ(q.size(), 0u);
}
