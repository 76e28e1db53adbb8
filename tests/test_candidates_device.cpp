// The searches' device candidate evaluator (host/optim/candidates_device.h)
// against the CPU's, on every device: each slot's Eval bit for bit, whole
// searches to the same models, and a batch too large for the device refused
// before any work. The CUDA instance skips without a GPU; the emulated
// devices (tests/emulated_device.h) run the kernel bodies on host threads.
#include <gtest/gtest.h>

#include <bit>
#include <memory>

#include "gac/config.h"
#include "gac/experiment.h"
#include "gac/search.h"
#include "host/optim/candidates.h"
#include "host/optim/candidates_device.h"
#include "emulated_device.h"
#include "search_test_util.h"
#include "test_util.h"

using namespace gac;
using gac::test::kink_task;

namespace {

std::shared_ptr<Device> device_or_null(const std::string& name) {
  if (name.rfind("emulated", 0) == 0) return make_emulated_variant_device(name);
#if defined(GAC_HAVE_CUDA)
  std::string why;
  return make_cuda_device(&why);
#else
  return nullptr;
#endif
}

// Random data on 1x28x28 images (LeNet, width 0.25) or 1x1x4 features, three classes.
StreamTask random_task(Arch arch, LossKind loss, int n, uint64_t seed) {
  ModelConfig mc;
  mc.arch = arch;
  mc.width = 0.25;
  const bool image = arch == Arch::lenet;
  const int h = image ? 28 : 1, w = image ? 28 : 4;
  const Model model = build_model(mc, 1, h, w, 3);
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(PriorConfig{}, model);
  t.key = make_stream_key(seed, n, 0, 0);
  t.loss = loss;
  t.bin_edges = {0.0f, 10.0f};
  SplitMix64 rng(seed);
  for (int i = 0; i < n * h * w; ++i) t.train.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
  for (int i = 0; i < n; ++i) t.train.y.push_back(static_cast<int32_t>(rng.below(3)));
  return t;
}


void expect_same(const Eval& want, const Eval& got, const char* what, int64_t slot) {
  EXPECT_EQ(std::bit_cast<uint32_t>(want.loss), std::bit_cast<uint32_t>(got.loss))
      << what << " slot " << slot << ": " << want.loss << " vs " << got.loss;
  EXPECT_EQ(want.correct, got.correct) << what << " slot " << slot;
}

class CandidatesDeviceSuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    device_ = device_or_null(GetParam());
    if (!device_ && GetParam() == "cuda") GAC_SKIP_WITHOUT_CUDA("see gac info");
    if (!device_) GTEST_SKIP() << "no usable " << GetParam() << " device";
  }
  std::shared_ptr<Device> device_;
};

TEST_P(CandidatesDeviceSuite, EverySlotEqualsTheCpuEvaluator) {
  constexpr int64_t kSlots = 6;
  for (Arch arch : {Arch::lenet, Arch::mlp, Arch::linear})
    for (LossKind loss : {LossKind::normalized, LossKind::raw}) {
      SCOPED_TRACE(std::string(arch_name(arch)) + (loss == LossKind::raw ? " raw" : " normalized"));
      const StreamTask task = random_task(arch, loss, arch == Arch::lenet ? 37 : 45, 11);
      const ModelSpec& m = task.model;
      const auto cpu = make_cpu_candidate_evaluator(task, 2);
      const auto dev = make_device_candidate_evaluator(task, *device_, kSlots);
      SplitMix64 rng(5);
      for (uint64_t draw : {3u, 4u}) {
        std::vector<float> current(m.n_params);
        generate_params(task.prior, task.key, draw, m.n_params, current.data());
        expect_same(cpu->set_current(current), dev->set_current(current), "current", 0);
        // A full batch, then a shorter one; the first and the last parameters' moves among them.
        for (int64_t count : {kSlots, kSlots / 2}) {
          std::vector<uint32_t> moves(count);
          for (uint32_t& mv : moves) mv = static_cast<uint32_t>(rng.below(2 * m.n_params));
          moves[0] = 1;
          moves[count - 1] = 2 * m.n_params - 2;
          std::vector<Eval> want(count), got(count);
          cpu->evaluate(PatternBatch{0.75f, moves.data(), count}, want.data());
          dev->evaluate(PatternBatch{0.75f, moves.data(), count}, got.data());
          for (int64_t s = 0; s < count; ++s) expect_same(want[s], got[s], "pattern", s + 1);
          const GreedyBatch g{0.125f, StreamKey{7, 9}, draw * 100 + count, count};
          cpu->evaluate(g, want.data());
          dev->evaluate(g, got.data());
          for (int64_t s = 0; s < count; ++s) expect_same(want[s], got[s], "greedy", s + 1);
        }
      }
    }
}

TEST_P(CandidatesDeviceSuite, WholeSearchesGiveTheCpuModels) {
  const StreamTask task = kink_task(8, 3);
  for (SearchKind kind : {SearchKind::pattern, SearchKind::greedy}) {
    SCOPED_TRACE(kind == SearchKind::pattern ? "pattern" : "greedy");
    SearchConfig cfg;
    cfg.budget = kind == SearchKind::pattern ? 80 : 40;
    cfg.max_calls = 400;
    cfg.check_every = 5;
    auto cpu = make_search_optimizer(kind, cfg, 2);
    auto dev = make_search_optimizer(kind, cfg, 2, nullptr, device_);
    cpu->begin_stream(task);
    dev->begin_stream(task);
    std::vector<TrainedModel> want, got;
    const TrainCounts cw = cpu->train(0, 3, want), cg = dev->train(0, 3, got);
    EXPECT_EQ(cw.steps, cg.steps);
    EXPECT_EQ(cw.failed, cg.failed);
    ASSERT_FALSE(want.empty());
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(want[i].draw, got[i].draw);
      EXPECT_EQ(std::bit_cast<uint32_t>(want[i].loss), std::bit_cast<uint32_t>(got[i].loss));
      EXPECT_EQ(want[i].step, got[i].step);
      EXPECT_EQ(want[i].calls, got[i].calls);
      EXPECT_EQ(want[i].radius, got[i].radius);
      EXPECT_EQ(want[i].params, got[i].params);
    }
    EXPECT_EQ(dev->train_one(want[0].draw)[0].params, want[0].params);
  }
}

TEST_P(CandidatesDeviceSuite, ABatchTooLargeForTheDeviceIsRefusedBeforeAnyWork) {
  const StreamTask task = random_task(Arch::lenet, LossKind::normalized, 37, 2);
  SearchConfig cfg;
  cfg.budget = int64_t{37} << 26;  // 64 Mi candidates of LeNet: hundreds of GB
  for (SearchKind kind : {SearchKind::pattern, SearchKind::greedy}) {
    auto dev = make_search_optimizer(kind, cfg, 1, nullptr, device_);
    try {
      dev->begin_stream(task);
      ADD_FAILURE() << "a batch of 64 Mi LeNet candidates was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("optimizer.budget"), std::string::npos) << e.what();
    }
  }
  try {
    make_device_candidate_evaluator(task, *device_, int64_t{1} << 26);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MiB of device memory"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, CandidatesDeviceSuite, ::testing::Values("cuda", "emulated", "emulated_tight"),
                         [](const auto& info) { return info.param; });

}  // namespace
