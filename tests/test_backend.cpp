// One suite, every backend (ggml's test-backend-ops idea): each backend's
// evaluate() and score_test() against a plain loop over the reference
// arithmetic, on fresh random data. The CUDA instance skips without a device;
// the emulated devices (tests/emulated_device.h) run the CUDA backend's code
// and kernel bodies on host threads everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "gac/backend.h"
#include "gac/config.h"
#include "host/backends/device_backend.h"
#include "gac/error.h"
#include "emulated_device.h"
#include "test_util.h"

using namespace gac;

namespace {

std::unique_ptr<Backend> backend_or_null(const std::string& name) {
  if (name == "cpu") return make_cpu_backend(2);
  if (name.rfind("emulated", 0) == 0) return make_emulated_backend(name);
  if (name.rfind("cpu_", 0) == 0) {
    try {
      return make_cpu_backend(2, name.substr(4));
    } catch (const Error&) {
      return nullptr;  // that SIMD kernel does not run on this CPU
    }
  }
#if defined(GAC_HAVE_CUDA)
  std::string why;
  return make_cuda_backend(&why);
#else
  return nullptr;
#endif
}

// A stream over random data with labels that some draws fit perfectly.
StreamTask random_task(const ModelConfig& mc, int c, int h, int w, int n_train, int n_test, bool early, uint64_t seed) {
  const Model model = build_model(mc, c, h, w, 2);
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(PriorConfig{}, model);
  t.key = make_stream_key(seed, n_train, 0, 0);
  t.early_reject = early;
  t.bin_edges = {0.0f, 0.6f, 0.68f, 0.69f, 10.0f};
  SplitMix64 rng(seed);
  auto fill = [&](Examples& ex, int count) {
    for (int i = 0; i < count * c * h * w; ++i) ex.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
    for (int i = 0; i < count; ++i) ex.y.push_back(static_cast<int32_t>(rng.below(2)));
  };
  fill(t.train, n_train);
  fill(t.test, n_test);
  return t;
}

// random_task for an MLP on 1x1x2 inputs or a LeNet on 1x28x28 images.
StreamTask arch_task(Arch arch, int n_train, int n_test, uint64_t seed) {
  ModelConfig mc;
  mc.arch = arch;
  const bool image = arch == Arch::lenet;
  return random_task(mc, 1, image ? 28 : 1, image ? 28 : 2, n_train, n_test, true, seed);
}

// Examples a device backend evaluates for a draw whose first miss is example
// `miss` (n: none) with early rejection: dense models run example groups
// [0,1), [1,2), [2,4), ... to the end of the group holding the miss; block
// models stop at the miss itself, as the CPU does.
uint64_t device_examples(bool dense, int miss, int n) {
  if (miss >= n) return n;
  if (!dense) return miss + 1;
  int end = 1;
  while (end <= miss) end *= 2;
  return std::min(end, n);
}

bool is_device(const std::string& backend) { return backend == "cuda" || backend.rfind("emulated", 0) == 0; }

// The perfect draws among [first, first + count) by plain reference loops,
// and in *examples the example evaluations `backend` should report.
std::vector<Hit> reference_hits(const StreamTask& t, uint64_t first, uint64_t count, const std::string& backend,
                                uint64_t* examples) {
  const ModelSpec& m = t.model;
  const int n = static_cast<int>(t.train.size());
  std::vector<float> p(m.n_params), b0(m.max_activation), b1(m.max_activation), logits(n * m.n_classes);
  std::vector<Hit> hits;
  for (uint64_t d = first; d < first + count; ++d) {
    generate_params(t.prior, t.key, d, m.n_params, p.data());
    const DrawResult r = evaluate_draw(m, p.data(), t.train.x.data(), t.train.y.data(), n, t.loss, false, b0.data(),
                                       b1.data(), logits.data());
    // Stopping at the first miss: `correct` is that miss's index.
    const DrawResult e = evaluate_draw(m, p.data(), t.train.x.data(), t.train.y.data(), n, t.loss, true, b0.data(),
                                       b1.data(), logits.data());
    if (!t.early_reject) *examples += n;
    else if (is_device(backend)) *examples += device_examples(is_dense_only(m), e.correct, n);
    else *examples += std::min(n, e.correct + 1);
    if (r.correct == n) hits.push_back({d, r.loss, find_bin(t.bin_edges.data(), static_cast<int>(t.bin_edges.size()), r.loss)});
  }
  return hits;
}

class BackendSuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    backend_ = backend_or_null(GetParam());
    if (!backend_ && GetParam() == "cuda") GAC_SKIP_WITHOUT_CUDA("see gac info");
    if (!backend_) GTEST_SKIP() << "no usable " << GetParam() << " device";
  }

  // Hits must equal the reference: same draws, same bins, losses equal up to
  // float rounding (exactly equal on the CPU, which runs the same code).
  void expect_same_hits(const StreamTask& task, uint64_t first, uint64_t count) {
    backend_->begin_stream(task);
    std::vector<Hit> got;
    const EvalCounts counts = backend_->evaluate(first, count, got);
    EXPECT_EQ(counts.draws, count);
    uint64_t examples = 0;
    const std::vector<Hit> want = reference_hits(task, first, count, GetParam(), &examples);
    EXPECT_EQ(counts.examples, examples);
    ASSERT_EQ(got.size(), want.size());
    // Bit for bit on every backend: the same operations in the same order.
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].draw, want[i].draw);
      EXPECT_EQ(got[i].loss, want[i].loss) << "draw " << want[i].draw;
      EXPECT_EQ(got[i].bin, want[i].bin) << "draw " << want[i].draw;
    }
  }

  std::unique_ptr<Backend> backend_;
};

}  // namespace

TEST_P(BackendSuite, MlpHitsMatchTheReference) {
  ModelConfig mc;
  for (bool early : {true, false}) expect_same_hits(random_task(mc, 1, 1, 2, 4, 10, early, 1), 100, 3000);
}

TEST_P(BackendSuite, EveryPriorMatchesTheReference) {
  for (PriorKind kind : {PriorKind::kaiming, PriorKind::normal, PriorKind::sphere}) {
    for (Arch arch : {Arch::mlp, Arch::lenet}) {
      ModelConfig mc;
      mc.arch = arch;
      const bool image = arch == Arch::lenet;
      StreamTask task = random_task(mc, 1, image ? 28 : 1, image ? 28 : 2, 3, 5, true, 9);
      PriorConfig pc;
      pc.kind = kind;
      pc.sigma = 0.7;
      pc.sphere_radius = 20.0;
      task.prior = make_prior_spec(pc, build_model(mc, 1, image ? 28 : 1, image ? 28 : 2, 2));
      expect_same_hits(task, 5, image ? 150 : 2000);
    }
  }
}

TEST_P(BackendSuite, RegularPriorMatchesTheReference) {
  for (Arch arch : {Arch::mlp, Arch::lenet}) {
    ModelConfig mc;
    mc.arch = arch;
    const bool image = arch == Arch::lenet;
    StreamTask task = random_task(mc, 1, image ? 28 : 1, image ? 28 : 2, 3, 5, true, 11);
    PriorConfig pc;
    pc.kind = PriorKind::regular;
    task.prior = make_prior_spec(pc, build_model(mc, 1, image ? 28 : 1, image ? 28 : 2, 2));
    expect_same_hits(task, 5, image ? 150 : 2000);
  }
}

TEST_P(BackendSuite, LinearHitsMatchTheReference) {
  ModelConfig mc;
  mc.arch = Arch::linear;
  expect_same_hits(random_task(mc, 1, 1, 3, 3, 10, true, 2), 0, 2000);
}

TEST_P(BackendSuite, LeNetHitsMatchTheReference) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  for (bool early : {true, false}) expect_same_hits(random_task(mc, 1, 28, 28, 2, 10, early, 3), 0, 400);
}

TEST_P(BackendSuite, LeNetOnManyExamplesMatchesTheReference) {
  // More examples than vector lanes: the CPU kernels' second stage runs
  // survivors across examples in several passes.
  ModelConfig mc;
  mc.arch = Arch::lenet;
  StreamTask task = random_task(mc, 1, 28, 28, 40, 5, true, 8);
  for (size_t i = 0; i < task.train.size(); ++i) task.train.y[i] = 0;  // reachable: all one class
  for (bool early : {true, false}) {
    task.early_reject = early;
    expect_same_hits(task, 0, 300);
  }
}

TEST_P(BackendSuite, LeNetFullEvaluationOfAnOddCountMatchesTheReference) {
  // The block kernels run examples in pairs through the dense layers when
  // evaluating fully: an odd count ends with one example alone.
  ModelConfig mc;
  mc.arch = Arch::lenet;
  StreamTask task = random_task(mc, 1, 28, 28, 5, 5, false, 9);
  for (size_t i = 0; i < task.train.size(); ++i) task.train.y[i] = 0;  // reachable: all one class
  expect_same_hits(task, 0, 300);
}

TEST_P(BackendSuite, LeNetCifarShapeHitsMatchTheReference) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  expect_same_hits(random_task(mc, 3, 32, 32, 2, 10, true, 4), 0, 200);
}

TEST_P(BackendSuite, EarlyRejectionAcceptsExactlyWhatFullEvaluationAccepts) {
  ModelConfig mc;
  StreamTask task = random_task(mc, 1, 1, 2, 3, 10, true, 5);
  std::vector<Hit> early, full;
  backend_->begin_stream(task);
  const EvalCounts e = backend_->evaluate(0, 5000, early);
  task.early_reject = false;
  backend_->begin_stream(task);
  const EvalCounts f = backend_->evaluate(0, 5000, full);
  ASSERT_EQ(early.size(), full.size());
  ASSERT_GT(early.size(), 0u);
  for (size_t i = 0; i < early.size(); ++i) {
    EXPECT_EQ(early[i].draw, full[i].draw);
    EXPECT_EQ(early[i].loss, full[i].loss);
  }
  EXPECT_LT(e.examples, f.examples);
}

TEST_P(BackendSuite, RangesSplitAnywhereGiveTheSameHits) {
  ModelConfig mc;
  const StreamTask task = random_task(mc, 1, 1, 2, 4, 10, true, 6);
  backend_->begin_stream(task);
  std::vector<Hit> whole, parts;
  backend_->evaluate(0, 3000, whole);
  backend_->evaluate(0, 1234, parts);
  backend_->evaluate(1234, 1766, parts);
  ASSERT_EQ(whole.size(), parts.size());
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(whole[i].draw, parts[i].draw);
}

TEST_P(BackendSuite, ContiguousAndJumpingCallsGiveTheReferenceHits) {
  // A device backend queues the range after a call that continues the
  // previous one; the next call uses it only when it asks for that range
  // with at least as many draws.
  const std::vector<std::pair<uint64_t, uint64_t>> calls = {
      {0, 500}, {500, 500}, {1000, 500}, {1500, 200}, {1700, 700}, {2400, 100}, {5000, 300}, {5300, 300}, {5600, 300}};
  for (Arch arch : {Arch::mlp, Arch::lenet}) {
    const StreamTask task = arch_task(arch, 2, 5, 11);
    backend_->begin_stream(task);
    const uint64_t scale = arch == Arch::lenet ? 5 : 1;  // LeNet: 5x fewer draws, same pattern
    for (auto [first, count] : calls) {
      first /= scale;
      count /= scale;
      std::vector<Hit> got;
      const EvalCounts c = backend_->evaluate(first, count, got);
      uint64_t examples = 0;
      const std::vector<Hit> want = reference_hits(task, first, count, GetParam(), &examples);
      EXPECT_EQ(c.examples, examples) << "call at " << first;
      ASSERT_EQ(got.size(), want.size()) << "call at " << first;
      for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got[i].draw, want[i].draw);
        EXPECT_EQ(got[i].loss, want[i].loss);
      }
    }
  }
}

TEST_P(BackendSuite, TestScoresMatchTheReference) {
  for (Arch arch : {Arch::mlp, Arch::lenet}) {
    const StreamTask t = arch_task(arch, 2, 50, 7);
    backend_->begin_stream(t);
    const std::vector<uint64_t> draws = {3, 17, 123456789012ull};
    const std::vector<TestScore> got = backend_->score_test(draws);
    ASSERT_EQ(got.size(), draws.size());
    const ModelSpec& m = t.model;
    std::vector<float> p(m.n_params), b0(m.max_activation), b1(m.max_activation);
    for (size_t i = 0; i < draws.size(); ++i) {
      generate_params(t.prior, t.key, draws[i], m.n_params, p.data());
      const float scale = logit_scale(m, p.data(), t.loss);
      int correct = 0;
      double loss = 0;
      for (size_t e = 0; e < t.test.size(); ++e) {
        const float* z = forward_example(m, p.data(), t.test.x.data() + e * m.in_size(), b0.data(), b1.data());
        correct += argmax(z, m.n_classes) == t.test.y[e];
        loss += cross_entropy(z, m.n_classes, t.test.y[e], scale);
      }
      EXPECT_DOUBLE_EQ(got[i].accuracy, static_cast<double>(correct) / t.test.size());
      EXPECT_NEAR(got[i].loss, loss / t.test.size(), 1e-6);
    }
  }
}

// Parameters generated by a device's generate_models kernel equal the host's.
using DeviceGenerator = std::function<std::vector<float>(const PriorSpec&, StreamKey, const ModelSpec&,
                                                         const std::vector<uint64_t>&)>;
void expect_device_draws_equal_host_draws(const DeviceGenerator& generate) {
  for (PriorKind kind : {PriorKind::uniform, PriorKind::normal, PriorKind::kaiming, PriorKind::sphere}) {
    ModelConfig mc;
    mc.arch = Arch::lenet;
    const Model model = build_model(mc, 1, 28, 28, 2);
    PriorConfig pc;
    pc.kind = kind;
    const PriorSpec prior = make_prior_spec(pc, model);
    const StreamKey key = make_stream_key(42, 16, 1, 0);
    const std::vector<uint64_t> draws = {0, 1, 2, 999, 1ull << 40};
    const std::vector<float> device_params = generate(prior, key, model.spec, draws);
    std::vector<float> host(model.spec.n_params);
    for (size_t d = 0; d < draws.size(); ++d) {
      generate_params(prior, key, draws[d], model.spec.n_params, host.data());
      for (int i = 0; i < model.spec.n_params; ++i)
        ASSERT_EQ(device_params[d * model.spec.n_params + i], host[i])
            << "prior " << int(kind) << " draw " << draws[d] << " param " << i;
    }
  }
}

TEST(DeviceDraws, EmulatedDeviceRegularDrawsAreBitIdenticalToHostDraws) {
  const std::unique_ptr<Device> device = make_emulated_device();
  for (Arch arch : {Arch::mlp, Arch::lenet}) {
    ModelConfig mc;
    mc.arch = arch;
    mc.hidden = 9;
    const bool image = arch == Arch::lenet;
    const Model model = build_model(mc, 1, image ? 28 : 1, image ? 28 : 5, 10);
    PriorConfig pc;
    pc.kind = PriorKind::regular;
    const PriorSpec prior = make_prior_spec(pc, model);
    const StreamKey key = make_stream_key(43, 16, 1, 0);
    const std::vector<uint64_t> draws = {0, 1, 7, 1ull << 33};
    const std::vector<float> got = device_generate_params(*device, prior, key, model.spec, draws);
    std::vector<float> host(model.spec.n_params);
    for (size_t d = 0; d < draws.size(); ++d) {
      generate_params(prior, key, draws[d], model.spec.n_params, host.data());
      for (int i = 0; i < model.spec.n_params; ++i) ASSERT_EQ(got[d * model.spec.n_params + i], host[i]) << i;
    }
  }
}

TEST(DeviceDraws, EmulatedDeviceDrawsAreBitIdenticalToHostDraws) {
  const std::unique_ptr<Device> device = make_emulated_device();
  expect_device_draws_equal_host_draws([&](const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                           const std::vector<uint64_t>& draws) {
    return device_generate_params(*device, prior, key, m, draws);
  });
}

#if defined(GAC_HAVE_CUDA)
TEST(DeviceDraws, CudaDrawsAreBitIdenticalToHostDraws) {
  if (!backend_or_null("cuda")) GAC_SKIP_WITHOUT_CUDA("see gac info");
  expect_device_draws_equal_host_draws(cuda_generate_params);
}
#endif

// "cpu" is what users get (the best kernel); the others pin one CPU kernel.
INSTANTIATE_TEST_SUITE_P(Backends, BackendSuite, ::testing::Values("cpu", "cpu_scalar", "cpu_avx2", "cpu_avx512", "cuda",
                                                                   "emulated", "emulated_tight"),
                         [](const auto& info) { return info.param; });

// ---- nested sampling on a device (kernels/nested_kernels.h) ----------------------

namespace {

using test::NestedArch;

StreamTask nested_device_task(const NestedArch& a, PriorKind kind, uint32_t heads, LossKind loss, bool early) {
  StreamTask t = random_task(a.mc, a.c, a.h, a.w, 3, 4, early, 5);
  PriorConfig pc;
  pc.kind = kind;
  pc.sigma = 0.7;
  t.prior = make_prior_spec(pc, build_model(a.mc, a.c, a.h, a.w, 2), heads);
  t.loss = loss;
  return t;
}

// BackendSuite's set-up on the devices alone.
class NestedDeviceSuite : public BackendSuite {
 protected:
  // The device's pairs [first, first + count) against the CPU's scalar
  // reference (kernels/nested.h): the same pairs, losses and bins bit for
  // bit, the same example count. Returns the number of hits.
  size_t expect_cpu_pairs(const StreamTask& t, uint64_t first, uint64_t count, const std::string& what) {
    backend_->begin_stream(t);
    cpu_->begin_stream(t);
    std::vector<Hit> got, want;
    const EvalCounts g = backend_->evaluate(first, count, got);
    const EvalCounts w = cpu_->evaluate(first, count, want);
    EXPECT_EQ(g.draws, count) << what;
    EXPECT_EQ(g.examples, w.examples) << what;
    EXPECT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
      EXPECT_EQ(got[i].draw, want[i].draw) << what;
      EXPECT_EQ(test::float_bits(got[i].loss), test::float_bits(want[i].loss)) << what << " pair " << want[i].draw;
      EXPECT_EQ(got[i].bin, want[i].bin) << what << " pair " << want[i].draw;
    }
    return want.size();
  }

  std::unique_ptr<Backend> cpu_ = make_cpu_backend(2, "scalar");
};

}  // namespace

TEST_P(NestedDeviceSuite, PairsEqualTheCpuBitForBitOnEveryModelPriorAndLoss) {
  for (const NestedArch& a : test::nested_archs()) {
    const bool lenet = a.mc.arch == Arch::lenet;
    const uint32_t K = lenet ? 19 : 300;
    // Starting and ending inside bodies, as a resumed run or a shard may.
    const uint64_t first = K + 5, count = (lenet ? 2 : 7) * K + 11;
    size_t hits = 0;
    for (PriorKind kind : {PriorKind::uniform, PriorKind::normal, PriorKind::kaiming, PriorKind::regular})
      for (LossKind loss : {LossKind::normalized, LossKind::raw})
        for (bool early : {true, false}) {
          const std::string what = std::string(a.name) + " prior " + std::to_string(int(kind)) + " loss " +
                                   std::to_string(int(loss)) + (early ? " early" : " full");
          hits += expect_cpu_pairs(nested_device_task(a, kind, K, loss, early), first, count, what);
        }
    EXPECT_GT(hits, 0u) << a.name << ": no perfect pairs, nothing compared";
  }
}

TEST_P(NestedDeviceSuite, RangesSplitAnywhereGiveTheSamePairs) {
  // Calls cut inside bodies, a body's heads over several calls, one pair, a
  // range of many bodies: always the CPU's pairs.
  const NestedArch mlp = test::nested_archs()[0];
  const StreamTask t = nested_device_task(mlp, PriorKind::uniform, 64, LossKind::normalized, true);
  size_t hits = 0;
  for (auto [first, count] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 1}, {0, 64}, {63, 2}, {70, 500}, {570, 3}, {1000, 4000}, {(1ull << 36) + 17, 200}})
    hits += expect_cpu_pairs(t, first, count, "range at " + std::to_string(first));
  EXPECT_GT(hits, 0u);
}

TEST_P(NestedDeviceSuite, TestScoresOfPairsAreThoseOfTheirFullVectors) {
  for (const NestedArch& a : {test::nested_archs()[1], test::nested_archs()[2]}) {
    StreamTask t = nested_device_task(a, PriorKind::normal, 7, LossKind::normalized, true);
    backend_->begin_stream(t);
    cpu_->begin_stream(t);
    const std::vector<uint64_t> pairs = {0, 1, 6, 7, 7 * 1000 + 3};
    const std::vector<TestScore> got = backend_->score_test(pairs), want = cpu_->score_test(pairs);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].accuracy, want[i].accuracy) << a.name << " pair " << pairs[i];
      EXPECT_NEAR(got[i].loss, want[i].loss, 1e-6 * std::fabs(want[i].loss)) << a.name << " pair " << pairs[i];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, NestedDeviceSuite, ::testing::Values("cuda", "emulated", "emulated_tight"),
                         [](const auto& info) { return info.param; });

TEST(NestedDevice, ALostDeviceAndTooLittleMemoryAreClearErrors) {
  const NestedArch mlp = test::nested_archs()[0];
  const StreamTask t = nested_device_task(mlp, PriorKind::uniform, 64, LossKind::normalized, true);
  EmulatorConfig lost;
  lost.fail_at_launch = 3;  // the third launch of heads (100 pairs each)
  const auto backend = make_device_backend(make_emulated_device(lost), DeviceBackendOptions{"emulated", {}, 100});
  backend->begin_stream(t);
  std::vector<Hit> hits;
  EXPECT_ERROR_MENTIONS(backend->evaluate(0, 1000, hits), "lost at launch 3");
  EmulatorConfig tiny;
  tiny.memory = 2048;  // the training set fits, one block of head scratch does not
  const auto small = make_device_backend(make_emulated_device(tiny));
  small->begin_stream(t);
  EXPECT_ERROR_MENTIONS(small->evaluate(0, 1000, hits), "out of memory for nested sampling");
}
