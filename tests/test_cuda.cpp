// The CUDA backend against the CPU backend, and the CUDA kernels' arithmetic
// against the reference.
//
// CudaKernelsOnHost: the __host__ __device__ code the kernels run
// (kernels/strided_forward.h, kernels/block_forward.h) executed on the host,
// a block emulated as one thread. Bit-identity with kernels/forward.h and
// include/gac/prior.h is checked here on every machine, GPU or not.
//
// Devices/DeviceBackendTest: each layer against the reference, and the
// device backend next to the CPU backend on the same streams (a kink MLP
// config, a 1x28x28 NPY LeNet config) up to a whole run, on a CUDA GPU
// (skipped when there is none) and on the emulated device
// (tests/emulated_device.h), which runs the same backend code and kernel
// bodies on host threads everywhere.
//
// EmulatedDeviceTest: what only the emulator can observe (allocations that
// fail, the pipeline's overlap, peak device memory, launch checks) and
// variants (128-thread blocks, both image places).
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>

#include "gac/backend.h"
#include "gac/config.h"
#include "host/backends/device_backend.h"
#include "gac/npy.h"
#include "gac/run.h"
#include "kernels/block_forward.h"
#include "kernels/strided_forward.h"
#include "emulated_device.h"
#include "test_util.h"

using namespace gac;
namespace fs = std::filesystem;

namespace {

Model model_of(Arch arch, int c, int h, int w, int classes, double width = 0.5, int hidden = 10, int layers = 1,
               bool hidden_bias = false) {
  ModelConfig mc;
  mc.arch = arch;
  mc.width = width;
  mc.hidden = hidden;
  mc.layers = layers;
  mc.hidden_bias = hidden_bias;
  return build_model(mc, c, h, w, classes);
}

PriorSpec prior_of(PriorKind kind, const Model& model) {
  PriorConfig pc;
  pc.kind = kind;
  pc.sphere_radius = 3.0;
  pc.sigma = 0.7;
  pc.radius = 0.9;
  return make_prior_spec(pc, model);
}

constexpr PriorKind kPriors[] = {PriorKind::uniform, PriorKind::normal, PriorKind::kaiming, PriorKind::sphere};

}  // namespace

// ---- the kernels' arithmetic, on the host --------------------------------------

TEST(CudaKernelsOnHost, LaneInterleavedDrawsEqualGenerateParams) {
  for (const Model& model : {model_of(Arch::mlp, 1, 1, 2, 2), model_of(Arch::lenet, 1, 28, 28, 2)})
    for (PriorKind kind : kPriors) {
      const PriorSpec prior = prior_of(kind, model);
      const StreamKey key = make_stream_key(9, 16, 0, 0);
      const int np = model.spec.n_params;
      const size_t stride = 5;  // five interleaved slots; the draw sits in slot 3
      std::vector<float> lanes(static_cast<size_t>(np) * stride, -7.0f), ref(np);
      for (uint64_t draw : {0ull, 1ull, 777ull, 1ull << 40}) {
        generate_params(prior, key, draw, np, Strided{lanes.data() + 3, stride});
        generate_params(prior, key, draw, np, ref.data());
        for (int i = 0; i < np; ++i)
          ASSERT_EQ(test::float_bits(lanes[i * stride + 3]), test::float_bits(ref[i])) << model.arch_name << " prior " << int(kind) << " param " << i;
      }
    }
}

TEST(CudaKernelsOnHost, StridedDenseForwardAndLossEqualTheReference) {
  const Model models[] = {model_of(Arch::mlp, 1, 1, 2, 2), model_of(Arch::mlp, 1, 1, 5, 3, 0.5, 7, 3, true),
                          model_of(Arch::linear, 1, 1, 4, 4), model_of(Arch::mlp, 1, 1, 3, 2, 0.5, 1, 2)};
  for (const Model& model : models) {
    const ModelSpec& m = model.spec;
    ASSERT_TRUE(is_dense_only(m));
    const int n = 9, C = m.n_classes, D = m.in_size();
    const std::vector<float> X = test::random_floats(static_cast<size_t>(n) * D, 11);
    std::vector<int32_t> Y(n);
    for (int e = 0; e < n; ++e) Y[e] = e % C;
    const size_t stride = 3, slot = 1;
    std::vector<float> P(m.n_params * stride), A(2 * m.max_activation * stride), Z(n * C * stride);
    std::vector<float> p(m.n_params), b0(m.max_activation), b1(m.max_activation), logits(n * C);
    for (PriorKind kind : kPriors)
      for (LossKind loss : {LossKind::normalized, LossKind::raw})
        for (uint64_t draw = 0; draw < 40; ++draw) {
          const PriorSpec prior = prior_of(kind, model);
          const StreamKey key = make_stream_key(3, 9, 0, 0);
          const Strided ps{P.data() + slot, stride}, z{Z.data() + slot, stride};
          const Strided a0{A.data() + slot, stride}, a1{A.data() + m.max_activation * stride + slot, stride};
          generate_params(prior, key, draw, m.n_params, ps);
          generate_params(prior, key, draw, m.n_params, p.data());
          for (int e = 0; e < n; ++e) {
            const Strided got = dense_model_forward_at(m, ps, X.data() + e * D, a0, a1);
            const float* want = forward_example(m, p.data(), X.data() + e * D, b0.data(), b1.data());
            for (int c = 0; c < C; ++c) {
              ASSERT_EQ(test::float_bits(got[c]), test::float_bits(want[c])) << model.arch_name << " draw " << draw << " example " << e;
              z[e * C + c] = got[c];
            }
            ASSERT_EQ(argmax_at(got, C), argmax(want, C));
            const float scale = logit_scale(m, p.data(), loss);
            ASSERT_EQ(test::float_bits(cross_entropy_at(got, 0, C, Y[e], scale)), test::float_bits(cross_entropy(want, C, Y[e], scale)));
          }
          ASSERT_EQ(test::float_bits(logit_scale_at(m, ps, loss)), test::float_bits(logit_scale(m, p.data(), loss)));
          const DrawResult r = evaluate_draw(m, p.data(), X.data(), Y.data(), n, loss, false, b0.data(), b1.data(),
                                             logits.data());
          ASSERT_EQ(test::float_bits(training_loss_at(m, ps, z, Y.data(), n, loss)), test::float_bits(r.loss)) << "draw " << draw;
        }
  }
}

namespace {

// Runs the block code on the host as a block of one thread.
struct HostBlock {
  const ModelSpec& m;
  BlockPlan plan;
  std::vector<float> img, act0, act1;
  std::vector<float> staged;
  HostBlock(const ModelSpec& spec, const BlockPlan& p)
      : m(spec), plan(p), img(p.image_floats, NAN), act0(p.act_floats, NAN), act1(p.act_floats, NAN),
        staged(p.in_floats, NAN) {}
  void generate(const PriorSpec& prior, StreamKey key, uint64_t draw) {
    const double sphere = prior.kind == PriorKind::sphere ? sphere_factor(prior, key, draw, m.n_params) : 1.0;
    block_generate(plan, make_block_generator(plan, m.n_params, 0, 1), m.n_params, prior, key, draw, sphere, img.data());
  }
  const float* forward(const float* x) {
    block_stage_example(m, plan, x, staged.data(), 0, 1);
    async_copy_wait_all();
    return block_forward(m, plan, img.data(), staged.data(), act0.data(), act1.data(), 0, 1);
  }
};

// The image of `draw` generated by `threads` threads, run one after the
// other (each with its own share of the blocks).
std::vector<float> image_by_threads(const ModelSpec& m, const BlockPlan& plan, const PriorSpec& prior, StreamKey key,
                                    uint64_t draw, int threads) {
  std::vector<float> img(plan.image_floats, NAN);
  const double sphere = prior.kind == PriorKind::sphere ? sphere_factor(prior, key, draw, m.n_params) : 1.0;
  for (int t = 0; t < threads; ++t)
    block_generate(plan, make_block_generator(plan, m.n_params, t, threads), m.n_params, prior, key, draw, sphere,
                   img.data());
  return img;
}

std::vector<Model> conv_models() {
  return {model_of(Arch::lenet, 1, 28, 28, 2), model_of(Arch::lenet, 3, 32, 32, 10),
          model_of(Arch::lenet, 1, 28, 28, 3, 1.0), model_of(Arch::lenet, 1, 29, 31, 2)};
}

}  // namespace

TEST(CudaKernelsOnHost, ImageIndexIsABijectionWithCorrectRuns) {
  for (const Model& model : conv_models()) {
    const ModelSpec& m = model.spec;
    const BlockPlan plan = make_block_plan(m);
    std::vector<int> seen(plan.image_floats, 0);
    for (int p = 0; p < m.n_params; ++p) {
      int run = 0;
      const int at = image_index(m, plan, p, &run);
      ASSERT_GE(at, 0);
      ASSERT_LT(at, plan.image_floats);
      ASSERT_EQ(seen[at]++, 0) << "image slot " << at << " used twice";
      ASSERT_GE(run, 1);
      ASSERT_LE(p + run, m.n_params);
      for (int k = 1; k < run && k < 8; ++k) ASSERT_EQ(image_index(m, plan, p + k), at + k);
    }
    // The cursor, stepped one parameter at a time or started anywhere, is
    // where image_index says; the plan's segments are the prior's tensors.
    ImageCursor c = image_cursor(plan, 0);
    for (int p = 0; p < m.n_params; ++p) {
      ASSERT_EQ(c.p, p);
      ASSERT_EQ(c.at, image_index(m, plan, p)) << "stepped to parameter " << p;
      ASSERT_EQ(image_cursor(plan, p).at, c.at) << "started at parameter " << p;
      advance_in_row(plan, c, 1);
    }
    const PriorSpec prior = prior_of(PriorKind::kaiming, model);
    ASSERT_EQ(plan.n_segments, prior.n_tensors);
    for (int t = 0; t < prior.n_tensors; ++t) EXPECT_EQ(plan.segments[t].end, prior.tensor_end[t]);
    for (int l = 0; l < m.n_layers; ++l)
      if (m.layers[l].kind == LayerKind::dense) {
        EXPECT_EQ(plan.layers[l].w_stride % 8, 4) << "4 mod 8: conflict-free vector reads";
      }
  }
}

TEST(CudaKernelsOnHost, BlockForwardEqualsTheReference) {
  for (const Model& model : conv_models())
    for (bool fused : {true, false}) {
      const ModelSpec& m = model.spec;
      const BlockPlan plan = make_block_plan(m, fused);  // unfused: the generic conv and pool steps
      if (fused && m.layers[0].kind == LayerKind::conv) {
        ASSERT_EQ(plan.layers[0].fuse_pool, 1);
      }
      HostBlock block(m, plan);
      const int D = m.in_size(), C = m.n_classes, n = 3;
      const std::vector<float> X = test::random_floats(static_cast<size_t>(n) * D, 5, -2, 2);
      std::vector<float> p(m.n_params), b0(m.max_activation), b1(m.max_activation);
      for (PriorKind kind : kPriors) {
        const PriorSpec prior = prior_of(kind, model);
        const StreamKey key = make_stream_key(1, 2, 3, 4);
        for (uint64_t draw : {0ull, 5ull, 1ull << 33}) {
          block.generate(prior, key, draw);
          generate_params(prior, key, draw, m.n_params, p.data());
          for (int i = 0; i < m.n_params; ++i)
            ASSERT_EQ(test::float_bits(block.img[image_index(m, plan, i)]), test::float_bits(p[i])) << "prior " << int(kind) << " param " << i;
          for (int e = 0; e < n; ++e) {
            const float* got = block.forward(X.data() + e * D);
            const float* want = forward_example(m, p.data(), X.data() + e * D, b0.data(), b1.data());
            for (int c = 0; c < C; ++c)
              ASSERT_EQ(test::float_bits(got[c]), test::float_bits(want[c])) << model.arch_name << " " << m.in_h << "x" << m.in_w
                                                     << (fused ? " fused" : " unfused") << " draw " << draw << " class " << c;
          }
          const double sphere = kind == PriorKind::sphere ? sphere_factor(prior, key, draw, m.n_params) : 1.0;
          for (LossKind loss : {LossKind::normalized, LossKind::raw})
            ASSERT_EQ(test::float_bits(streamed_logit_scale(m, prior, key, draw, sphere, loss)), test::float_bits(logit_scale(m, p.data(), loss)))
                << "prior " << int(kind);
        }
      }
      // Copying contiguous parameters in gives the same image, on any number of threads.
      for (int threads : {1, 3, 128}) {
        std::vector<float> copy(plan.image_floats, NAN);
        for (int t = 0; t < threads; ++t) block_load_image(m, plan, p.data(), copy.data(), t, threads);
        for (int i = 0; i < m.n_params; ++i) ASSERT_EQ(test::float_bits(copy[image_index(m, plan, i)]), test::float_bits(p[i])) << threads;
      }
    }
}

TEST(CudaKernelsOnHost, EveryThreadOfABlockDoesItsShare) {
  // Each step split over 128 "threads" run one after the other writes what
  // the one-thread run writes: the work partition covers every output once.
  const Model model = model_of(Arch::lenet, 1, 28, 28, 2);
  const ModelSpec& m = model.spec;
  const BlockPlan plan = make_block_plan(m);
  const PriorSpec uniform = make_prior_spec(PriorConfig{}, model);
  const StreamKey key = make_stream_key(0, 0, 0, 0);
  const std::vector<float> img = image_by_threads(m, plan, uniform, key, 42, 1);
  // Generation: any number of threads writes the one-thread image, each
  // parameter once (the image starts as NaN), whatever the rotation of its stores.
  for (const Model& other : conv_models()) {
    const BlockPlan other_plan = make_block_plan(other.spec);
    for (PriorKind kind : kPriors) {
      const PriorSpec prior = prior_of(kind, other);
      const std::vector<float> one = image_by_threads(other.spec, other_plan, prior, key, 7, 1);
      for (int threads : {2, 3, 33, 128, 1000}) {
        const std::vector<float> many = image_by_threads(other.spec, other_plan, prior, key, 7, threads);
        for (int i = 0; i < other_plan.image_floats; ++i)
          ASSERT_EQ(test::float_bits(one[i]), test::float_bits(many[i])) << threads << " threads, prior " << int(kind) << ", image float " << i;
      }
    }
  }
  std::vector<float> x = test::random_floats(plan.in_floats, 8);  // the staged layout, padding included
  std::vector<float> one(plan.act_floats, NAN), many(plan.act_floats, NAN);
  const Layer& conv1 = m.layers[0];
  for (int t = 0; t < 128; ++t)
    block_conv_pool<5>(conv1, m.layers[1], plan.layers[0], plan.in, img.data(), x.data(), many.data(), t, 128);
  block_conv_pool<5>(conv1, m.layers[1], plan.layers[0], plan.in, img.data(), x.data(), one.data(), 0, 1);
  for (int i = 0; i < plan.act_floats; ++i) ASSERT_EQ(test::float_bits(one[i]), test::float_bits(many[i])) << i;
  const Layer& fc1 = m.layers[4];
  ASSERT_EQ(fc1.kind, LayerKind::dense);
  const ActLayout& fc1_in = plan.layers[2].out;  // what the fused conv2 + pool step wrote
  const std::vector<float> in = test::random_floats(fc1_in.base + fc1.in_size(), 9);
  for (int t = 0; t < 128; ++t) block_dense(fc1, plan.layers[4], fc1_in, img.data(), in.data(), many.data(), t, 128);
  block_dense(fc1, plan.layers[4], fc1_in, img.data(), in.data(), one.data(), 0, 1);
  for (int i = 0; i < plan.act_floats; ++i) ASSERT_EQ(test::float_bits(one[i]), test::float_bits(many[i])) << i;
}

// ---- the backend on a device ----------------------------------------------------

namespace {

// Sets an environment variable for one scope (the CUDA backend reads its
// test hooks when it is made), then puts back exactly what was there: set to
// its old value, or unset. (Unsetting it instead once deleted the
// GAC_REQUIRE_CUDA=1 that scripts/gpu-check exports, so every later CUDA
// test skipped rather than failed.)
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct DeviceOptions {
  uint32_t max_launch = 0;  // 0: the backend's default
  size_t memory_cap = 0;
};

// "cuda": the GPU, or null (and *why) without one; "emulated": the emulator.
std::unique_ptr<Backend> device_backend(const std::string& kind, std::string* why, DeviceOptions o = {},
                                        EmulatorConfig config = {}) {
  if (kind == "emulated") {
    DeviceBackendOptions options;
    options.name = "emulated";
    if (o.max_launch) options.max_launch = o.max_launch;
    options.memory_cap = o.memory_cap;
    return make_device_backend(make_emulated_device(config), options);
  }
#if defined(GAC_HAVE_CUDA)
  const ScopedEnv launch("GAC_CUDA_MAX_LAUNCH", std::to_string(o.max_launch));
  const ScopedEnv cap("GAC_CUDA_MEMORY_CAP", std::to_string(o.memory_cap));
  return make_cuda_backend(why);
#else
  *why = "built without CUDA";
  return nullptr;
#endif
}

// A test that needs a CUDA device is the "cuda" instance of a suite (or
// DeviceDraws.Cuda*): tests/strict_cuda.py requires each of those to fail
// without a device under GAC_REQUIRE_CUDA=1, and to pass with one.
#define DEVICE_BACKEND_OR_SKIP(name, ...)                                       \
  std::string why_##name;                                                       \
  std::unique_ptr<Backend> name = device_backend(GetParam(), &why_##name, ##__VA_ARGS__); \
  if (!name) GAC_SKIP_WITHOUT_CUDA(why_##name)

class DeviceBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gac_cuda_test_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static RunConfig kink_config(bool early = true, const std::string& loss = "normalized") {
    return parse_config(R"(
[data]
kind = "kink"
test_size = 1000
[model]
arch = "mlp"
hidden = 10
[run]
seed = 7
n = [2, 4, 8]
bins = [0.0, 0.55, 0.6, 0.65, 0.69, 10.0]
)",
                        "kink.toml", {"run.early_reject=" + std::string(early ? "true" : "false"), "run.loss=\"" + loss + "\""});
  }

  // 1x28x28 images (uniform noise) and labels 0/1 as NPY files.
  RunConfig lenet_config(bool early = true) {
    auto write = [&](const std::string& name, int count, uint64_t seed) {
      const std::vector<float> x = test::random_floats(static_cast<size_t>(count) * 784, seed, 0, 1);
      std::vector<int32_t> y(count);
      for (int i = 0; i < count; ++i) y[i] = (i * 7 + static_cast<int>(seed)) % 3 == 0;
      write_file_atomic(dir_ / (name + "_x.npy"), npy_bytes_f32(x.data(), {count, 1, 28, 28}));
      write_file_atomic(dir_ / (name + "_y.npy"), npy_bytes_i32(y.data(), {count}));
    };
    write("train", 64, 1);
    write("test", 150, 2);
    std::ostringstream toml;
    toml << "[data]\nkind = \"npy\"\n"
         << "train_x = \"" << (dir_ / "train_x.npy").string() << "\"\ntrain_y = \"" << (dir_ / "train_y.npy").string()
         << "\"\ntest_x = \"" << (dir_ / "test_x.npy").string() << "\"\ntest_y = \"" << (dir_ / "test_y.npy").string()
         << "\"\n[model]\narch = \"lenet\"\nwidth = 0.5\n[run]\nseed = 3\nn = [2, 4]\n"
         << "bins = [0.0, 0.66, 0.68, 0.69, 0.6925, 0.693, 0.6931, 10.0]\n"
         << "early_reject = " << (early ? "true" : "false") << "\n";
    return parse_config(toml.str(), "lenet.toml");
  }

  fs::path dir_;
};

std::vector<Hit> run_range(Backend& backend, const StreamTask& task, uint64_t first, uint64_t count,
                           EvalCounts* counts = nullptr) {
  backend.begin_stream(task);
  std::vector<Hit> hits;
  const EvalCounts c = backend.evaluate(first, count, hits);
  EXPECT_EQ(c.draws, count);
  if (counts) *counts = c;
  for (size_t i = 1; i < hits.size(); ++i) EXPECT_LT(hits[i - 1].draw, hits[i].draw) << "hits out of draw order";
  return hits;
}

// Perfect draws must be the same on both backends (their logits are the same
// bits), with bit-identical losses and the same bins. Every difference is
// listed with both losses; a bin difference is tolerated only for a loss
// within 1e-6 of a bin edge, and is then printed.
void expect_same_hits(const std::vector<Hit>& cpu, const std::vector<Hit>& cuda, const std::vector<float>& edges,
                      const std::string& what) {
  std::map<uint64_t, const Hit*> a, b;
  for (const Hit& h : cpu) a[h.draw] = &h;
  for (const Hit& h : cuda) b[h.draw] = &h;
  auto near_edge = [&](float loss) {
    for (float e : edges)
      if (std::fabs(loss - e) <= 1e-6f) return true;
    return false;
  };
  std::ostringstream failures, tolerated;
  int n_fail = 0, n_tolerated = 0, accepted = 0;
  std::map<uint64_t, int> draws;
  for (const auto& [d, h] : a) draws[d] = 0;
  for (const auto& [d, h] : b) draws[d] = 0;
  for (const auto& [d, unused] : draws) {
    const Hit* c = a.count(d) ? a[d] : nullptr;
    const Hit* g = b.count(d) ? b[d] : nullptr;
    if (c && c->bin >= 0) ++accepted;
    if (!c || !g) {
      ++n_fail;
      failures << "  draw " << d << ": perfect on " << (c ? "cpu" : "cuda") << " only, loss "
               << (c ? c->loss : g->loss) << "\n";
      continue;
    }
    if (c->bin != g->bin) {
      if (near_edge(c->loss) || near_edge(g->loss)) {
        ++n_tolerated;
        tolerated << "  draw " << d << ": bin " << c->bin << " (cpu loss " << c->loss << ") vs " << g->bin
                  << " (cuda loss " << g->loss << "), at a bin edge\n";
      } else {
        ++n_fail;
        failures << "  draw " << d << ": bin " << c->bin << " (cpu loss " << c->loss << ") vs " << g->bin
                 << " (cuda loss " << g->loss << ")\n";
      }
    } else if (test::float_bits(c->loss) != test::float_bits(g->loss)) {
      ++n_fail;
      failures.precision(9);
      failures << "  draw " << d << ": same bin, losses differ: cpu " << c->loss << ", cuda " << g->loss << "\n";
    }
  }
  if (n_tolerated) std::cout << what << ": " << n_tolerated << " bin-edge difference(s):\n" << tolerated.str();
  EXPECT_EQ(n_fail, 0) << what << ": " << n_fail << " difference(s) between cpu and cuda:\n" << failures.str();
  EXPECT_EQ(cpu.size(), cuda.size()) << what;
  std::cout << what << ": " << cpu.size() << " perfect draws, " << accepted << " in a bin\n";
}

void compare_backends(Backend& cuda, const Experiment& ex, uint64_t first, uint64_t count, const std::string& what) {
  const std::unique_ptr<Backend> cpu = make_cpu_backend(0);
  for (int n : ex.cfg.ns) {
    const StreamTask task = stream_task(ex, n, 0);
    const std::vector<Hit> want = run_range(*cpu, task, first, count);
    const std::vector<Hit> got = run_range(cuda, task, first, count);
    expect_same_hits(want, got, task.bin_edges, what + " n=" + std::to_string(n));
  }
}

}  // namespace

TEST_P(DeviceBackendTest, KinkMlpAcceptsTheSameDrawsAsTheCpu) {
  DEVICE_BACKEND_OR_SKIP(cuda);
  for (bool early : {true, false})
    for (const char* loss : {"normalized", "raw"}) {
      const Experiment ex = prepare_experiment(kink_config(early, loss));
      compare_backends(*cuda, ex, 1000, 200000, std::string("kink mlp ") + loss + (early ? " early" : " full"));
    }
}

TEST_P(DeviceBackendTest, NpyLeNetAcceptsTheSameDrawsAsTheCpu) {
  DEVICE_BACKEND_OR_SKIP(cuda);
  for (bool early : {true, false}) {
    const Experiment ex = prepare_experiment(lenet_config(early));
    compare_backends(*cuda, ex, 50, 3000, std::string("npy lenet") + (early ? " early" : " full"));
  }
}

TEST_P(DeviceBackendTest, EarlyRejectionOnAndOffGiveIdenticalHits) {
  DEVICE_BACKEND_OR_SKIP(cuda);
  for (int which = 0; which < 2; ++which) {
    const Experiment early_ex = prepare_experiment(which == 0 ? kink_config(true) : lenet_config(true));
    const Experiment full_ex = prepare_experiment(which == 0 ? kink_config(false) : lenet_config(false));
    const uint64_t count = which == 0 ? 300000 : 5000;
    size_t total = 0;
    for (int n : early_ex.cfg.ns) {
      EvalCounts ce, cf;
      const std::vector<Hit> early = run_range(*cuda, stream_task(early_ex, n, 0), 0, count, &ce);
      const std::vector<Hit> full = run_range(*cuda, stream_task(full_ex, n, 0), 0, count, &cf);
      ASSERT_EQ(early.size(), full.size()) << "n=" << n;
      total += early.size();
      for (size_t i = 0; i < early.size(); ++i) {
        EXPECT_EQ(early[i].draw, full[i].draw);
        EXPECT_EQ(test::float_bits(early[i].loss), test::float_bits(full[i].loss)) << "draw " << early[i].draw;
        EXPECT_EQ(early[i].bin, full[i].bin);
      }
      EXPECT_EQ(cf.examples, count * n);
      EXPECT_LT(ce.examples, cf.examples) << "early rejection saved no work at n=" << n;
    }
    EXPECT_GT(total, 0u) << "no perfect draws: the comparison shows nothing";
  }
}

TEST_P(DeviceBackendTest, TinyLaunchesAndAMemoryCapGiveTheSameHits) {
  const std::vector<std::pair<std::string, DeviceOptions>> hooks = {
      {"max_launch=97", {97, 0}},      // many launches per call: the two-queue pipeline, odd tails
      {"max_launch=1000", {1000, 0}},  // more perfect draws than ride along with a launch (second copy)
      {"memory_cap=65536", {0, 65536}},  // launches shrink until they fit
  };
  for (const auto& [what, options] : hooks) {
    DEVICE_BACKEND_OR_SKIP(cuda, options);
    compare_backends(*cuda, prepare_experiment(kink_config(true)), 0, 20000, "kink " + what);
    compare_backends(*cuda, prepare_experiment(lenet_config(true)), 0, 600, "lenet " + what);
  }
}

TEST_P(DeviceBackendTest, CallsSplitAnywhereGiveTheSameHits) {
  DEVICE_BACKEND_OR_SKIP(cuda);
  const Experiment ex = prepare_experiment(kink_config(true));
  const StreamTask task = stream_task(ex, 4, 0);
  const std::vector<Hit> whole = run_range(*cuda, task, 0, 100000);
  std::vector<Hit> parts;
  cuda->begin_stream(task);
  for (uint64_t first = 0, step = 1; first < 100000; first += step, step = step * 3 + 1)
    cuda->evaluate(first, std::min<uint64_t>(step, 100000 - first), parts);
  ASSERT_EQ(whole.size(), parts.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(whole[i].draw, parts[i].draw);
    EXPECT_EQ(test::float_bits(whole[i].loss), test::float_bits(parts[i].loss));
  }
}

TEST_P(DeviceBackendTest, TestScoresEqualTheCpu) {
  DEVICE_BACKEND_OR_SKIP(cuda);
  const std::unique_ptr<Backend> cpu = make_cpu_backend(0);
  for (int which = 0; which < 2; ++which) {
    const Experiment ex = prepare_experiment(which == 0 ? kink_config(true) : lenet_config(true));
    const StreamTask task = stream_task(ex, ex.cfg.ns[0], 0);
    std::vector<uint64_t> draws;
    for (const Hit& h : run_range(*cpu, task, 0, which == 0 ? 20000 : 2000))
      if (draws.size() < 100) draws.push_back(h.draw);
    draws.push_back(123456789012ull);  // any draw can be scored, perfect or not
    ASSERT_GT(draws.size(), 1u);
    cpu->begin_stream(task);
    cuda->begin_stream(task);
    const std::vector<TestScore> want = cpu->score_test(draws), got = cuda->score_test(draws);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].accuracy, want[i].accuracy) << "draw " << draws[i];
      EXPECT_NEAR(got[i].loss, want[i].loss, 1e-6 * std::fabs(want[i].loss)) << "draw " << draws[i];
    }
  }
}

// Each layer on the device against kernels/forward.h's layer functions, bit
// for bit, on fresh random parameters and inputs (a fused conv + ReLU + pool
// is one step: it is held against conv_forward then maxpool2_forward).
TEST_P(DeviceBackendTest, EachLayerEqualsTheReference) {
  DEVICE_BACKEND_OR_SKIP(unused);
  std::unique_ptr<Device> emulated = GetParam() == "emulated" ? make_emulated_device() : nullptr;
  auto trace = [&](const ModelSpec& m, const std::vector<float>& p, const std::vector<float>& X, int n) {
#if defined(GAC_HAVE_CUDA)
    if (!emulated) return cuda_trace_layers(m, p, X, n);
#endif
    return device_trace_layers(*emulated, m, p, X, n);
  };
  const Model models[] = {model_of(Arch::lenet, 1, 28, 28, 2), model_of(Arch::lenet, 3, 32, 32, 10),
                          model_of(Arch::lenet, 1, 28, 28, 3, 1.0), model_of(Arch::lenet, 1, 29, 31, 2),
                          model_of(Arch::mlp, 1, 1, 5, 3, 0.5, 7, 3, true)};
  uint64_t seed = 100;
  for (const Model& model : models) {
    const ModelSpec& m = model.spec;
    const int n = 3, D = m.in_size();
    const std::vector<float> p = test::random_floats(m.n_params, ++seed, -0.5, 0.5);
    const std::vector<float> X = test::random_floats(static_cast<size_t>(n) * D, ++seed, -2, 2);
    const BlockPlan plan = make_block_plan(m);
    const std::vector<float> got = trace(m, p, X, n);
    ASSERT_EQ(got.size(), static_cast<size_t>(n) * block_trace_floats(m, plan));
    std::vector<float> in, out;
    for (int e = 0; e < n; ++e) {
      const float* step = got.data() + static_cast<size_t>(e) * block_trace_floats(m, plan);
      in.assign(X.begin() + e * D, X.begin() + (e + 1) * D);
      for (int l = 0; l < m.n_layers; ++l) {
        const Layer& L = m.layers[l];
        out.assign(L.out_size(), NAN);
        if (L.kind == LayerKind::dense) dense_forward(L, p.data(), in.data(), out.data());
        else if (L.kind == LayerKind::conv) conv_forward(L, p.data(), in.data(), out.data());
        else maxpool2_forward(L, in.data(), out.data());
        in.swap(out);
        if (plan.layers[l].fuse_pool) continue;  // the device's step ends after the pool
        for (int i = 0; i < L.out_size(); ++i)
          ASSERT_EQ(test::float_bits(step[i]), test::float_bits(in[i])) << model.arch_name << " " << m.in_c << "x" << m.in_h << "x" << m.in_w
                                                << " layer " << l << " example " << e << " output " << i;
        step += L.out_size();
      }
    }
  }
}

// The whole run loop (accept, store, test scoring, the range queued ahead)
// on the device stores exactly what it stores on the CPU.
TEST_P(DeviceBackendTest, AWholeRunStoresWhatTheCpuRunStores) {
  DEVICE_BACKEND_OR_SKIP(device);
  const std::shared_ptr<Backend> shared_device = std::move(device);
  for (int which = 0; which < 2; ++which) {
    RunConfig cfg = which == 0 ? kink_config(true) : lenet_config(true);
    cfg.target = 3;
    cfg.repeats = 2;
    cfg.max_draws = which == 0 ? 200000 : 4000;  // the LeNet cells run out of budget: "budget" streams too
    cfg.batch = which == 0 ? 5000 : 500;         // many calls per stream
    const std::string name = which == 0 ? "kink" : "lenet";
    std::ostringstream log;
    RunOptions cpu_opts{dir_ / (name + "_cpu"), false, make_cpu_backend(1)};
    RunOptions device_opts{dir_ / (name + "_device"), false, shared_device};
    ASSERT_TRUE(run_experiment(cfg, cpu_opts, log).complete);
    ASSERT_TRUE(run_experiment(cfg, device_opts, log).complete);
    const std::string want = test::fingerprint(cpu_opts.dir), got = test::fingerprint(device_opts.dir);
    EXPECT_NE(want.find("model "), std::string::npos) << name << ": no model stored, nothing compared";
    EXPECT_EQ(got, want) << name;
  }
}

// ---- what only the emulated device can observe --------------------------------------

class EmulatedDeviceTest : public DeviceBackendTest {};

TEST_F(EmulatedDeviceTest, BlocksOf128ThreadsAsOnTheGpu) {
  // The CUDA kernels' block size: most threads idle in the small layers,
  // the per-layer norms spread over as many threads as there are layers.
  EmulatorConfig config;
  config.sms = 1;
  config.block_threads = 128;
  std::string why;
  const std::unique_ptr<Backend> device = device_backend("emulated", &why, {}, config);
  const Experiment ex = prepare_experiment(lenet_config(true));
  compare_backends(*device, ex, 0, 200, "lenet, 128 threads a block");
  const StreamTask task = stream_task(ex, 2, 0);
  const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  cpu->begin_stream(task);
  device->begin_stream(task);
  const std::vector<uint64_t> draws = {1, 2, 3};
  const std::vector<TestScore> want = cpu->score_test(draws), got = device->score_test(draws);
  for (size_t i = 0; i < draws.size(); ++i) {
    EXPECT_EQ(got[i].accuracy, want[i].accuracy);
    EXPECT_EQ(got[i].loss, want[i].loss);
  }
}

TEST_F(EmulatedDeviceTest, BothImagePlacesGiveTheSameHitsAndScores) {
  const Experiment ex = prepare_experiment(lenet_config(true));
  const StreamTask task = stream_task(ex, 2, 0);
  const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  cpu->begin_stream(task);
  const std::vector<uint64_t> draws = {4, 5, 6};
  const std::vector<TestScore> want = cpu->score_test(draws);
  for (ImagePlace place : {ImagePlace::shared, ImagePlace::global}) {
    DeviceBackendOptions options;
    options.name = place == ImagePlace::shared ? "emulated, image shared" : "emulated, image global";
    options.image = place;
    const std::unique_ptr<Backend> device = make_device_backend(make_emulated_device(), options);
    compare_backends(*device, ex, 0, 400, options.name);
    device->begin_stream(task);
    const std::vector<TestScore> got = device->score_test(draws);
    for (size_t i = 0; i < draws.size(); ++i) {
      EXPECT_EQ(got[i].accuracy, want[i].accuracy) << options.name;
      EXPECT_EQ(got[i].loss, want[i].loss) << options.name;
    }
  }
}

TEST_F(EmulatedDeviceTest, FailedAllocationsShrinkLaunchesAndKeepTheHits) {
  EmulatorConfig config;
  config.memory = size_t{1} << 20;      // the kink MLP's tiles need 8 bytes a draw: 100,000 draws do not fit
  config.overstate_free_memory = true;  // the first sizes tried do not fit
  config.stats = std::make_shared<EmulatorStats>();
  std::string why;
  const std::unique_ptr<Backend> device = device_backend("emulated", &why, {}, config);
  compare_backends(*device, prepare_experiment(kink_config(true)), 0, 100000, "kink, 1 MiB");
  compare_backends(*device, prepare_experiment(lenet_config(true)), 0, 600, "lenet, 1 MiB");
  EXPECT_GT(config.stats->failed_allocations, 0) << "the out-of-memory path never ran";
  EXPECT_LE(config.stats->peak_bytes, config.memory);
}

TEST_F(EmulatedDeviceTest, TheHostWaitsOnOneLaunchWhileTheNextIsQueued) {
  EmulatorConfig config;
  config.stats = std::make_shared<EmulatorStats>();
  std::string why;
  const std::unique_ptr<Backend> device = device_backend("emulated", &why, {97, 0}, config);
  compare_backends(*device, prepare_experiment(kink_config(true)), 0, 5000, "kink, 97 a launch");
  EXPECT_GT(config.stats->waits_with_other_queue_busy, 0) << "no launch overlapped the host's wait for another";
}

TEST_F(EmulatedDeviceTest, TheNextRangeRunsWhileTheHostWorks) {
  // One launch per call: only the range queued ahead overlaps the host.
  EmulatorConfig config;
  config.stats = std::make_shared<EmulatorStats>();
  std::string why;
  const std::unique_ptr<Backend> device = device_backend("emulated", &why, {}, config);
  const Experiment ex = prepare_experiment(kink_config(true));
  const StreamTask task = stream_task(ex, 4, 0);
  const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
  device->begin_stream(task);
  cpu->begin_stream(task);
  std::vector<Hit> got, want;
  for (uint64_t first = 0; first < 50000; first += 5000) {
    device->evaluate(first, 5000, got);
    cpu->evaluate(first, 5000, want);
  }
  expect_same_hits(want, got, task.bin_edges, "kink, calls of 5000");
  EXPECT_GT(config.stats->waits_with_other_queue_busy, 0) << "no call found the next range queued";
}

TEST_F(EmulatedDeviceTest, DeviceMemoryIsFlatInTheNumberOfDraws) {
  const Experiment ex = prepare_experiment(kink_config(true));
  const StreamTask task = stream_task(ex, 8, 0);
  size_t peak[2];
  for (int i = 0; i < 2; ++i) {
    EmulatorConfig config;
    config.memory = size_t{32} << 20;
    config.stats = std::make_shared<EmulatorStats>();
    std::string why;
    // Launches of at most 65,536 draws (the kink MLP's tiles need 8 bytes a
    // draw: memory alone would let the larger range take larger launches).
    const std::unique_ptr<Backend> device = device_backend("emulated", &why, {1u << 16, 0}, config);
    run_range(*device, task, 0, i == 0 ? 1u << 17 : 1u << 20);
    peak[i] = config.stats->peak_bytes;
  }
  EXPECT_GT(peak[0], 0u);
  EXPECT_EQ(peak[0], peak[1]) << "8x the draws took more device memory";
}

TEST_F(EmulatedDeviceTest, ALaunchOfNoDrawsIsRefused) {
  DeviceBackendOptions options;
  options.max_launch = 0;
  EXPECT_ERROR_MENTIONS(make_device_backend(make_emulated_device(), options), "max_launch");
}

TEST_F(EmulatedDeviceTest, TooLittleSharedMemoryIsAClearError) {
  EmulatorConfig config;
  config.smem_per_block = 4096;  // LeNet's activations alone need more
  std::string why;
  const std::unique_ptr<Backend> device = device_backend("emulated", &why, {}, config);
  const Experiment lenet = prepare_experiment(lenet_config(true));
  try {
    device->begin_stream(stream_task(lenet, 2, 0));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shared memory"), std::string::npos) << e.what();
  }
  // The same device still runs models without convolutions.
  compare_backends(*device, prepare_experiment(kink_config(true)), 0, 2000, "kink after a refused lenet");
}

TEST_F(EmulatedDeviceTest, GenerationAloneBetweenCallsChangesNoHit) {
  // The bench's generation-only launches (the draw roofline) between two
  // evaluate calls, the first of which queued the range after it.
  for (int which = 0; which < 2; ++which) {
    const Experiment ex = prepare_experiment(which == 0 ? kink_config(true) : lenet_config(true));
    const StreamTask task = stream_task(ex, ex.cfg.ns[0], 0);
    const uint64_t half = which == 0 ? 20000 : 300;
    std::string why;
    const std::unique_ptr<Backend> device = device_backend("emulated", &why, {97, 0});
    const std::unique_ptr<Backend> cpu = make_cpu_backend(1);
    device->begin_stream(task);
    cpu->begin_stream(task);
    std::vector<Hit> got, want;
    device->evaluate(0, half, got);
    EXPECT_TRUE(device->generate_only(half, 1000));
    device->evaluate(half, half, got);
    cpu->evaluate(0, 2 * half, want);
    expect_same_hits(want, got, task.bin_edges, which == 0 ? "kink" : "lenet");
  }
}

namespace {
void a_cuda_case_without_a_device() { GAC_SKIP_WITHOUT_CUDA("none here"); }

std::optional<std::string> env_value(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}
}  // namespace

TEST(CudaOnThisMachine, RequiringCudaTurnsASkipIntoAFailure) {
  // scripts/gpu-check sets GAC_REQUIRE_CUDA=1: a GPU machine whose driver
  // is too old must fail the CUDA cases, not skip them all and pass.
  const ScopedEnv require("GAC_REQUIRE_CUDA", "1");
  EXPECT_FATAL_FAILURE(a_cuda_case_without_a_device(), "GAC_REQUIRE_CUDA=1 but no usable CUDA device: none here");
}

TEST(TestHelpers, AScopedVariablePutsBackExactlyWhatWasThere) {
  // The strict CUDA check (tests/strict_cuda.py) exports GAC_REQUIRE_CUDA=1
  // for the whole binary: no test may take it away from the tests after it.
  const char* name = "GAC_TEST_SCOPED_ENV";
  unsetenv(name);
  {
    const ScopedEnv inner(name, "1");
    EXPECT_EQ(env_value(name), "1");
  }
  EXPECT_EQ(env_value(name), std::nullopt);
  setenv(name, "outer", 1);
  {
    const ScopedEnv inner(name, "inner");
    EXPECT_EQ(env_value(name), "inner");
    {
      const ScopedEnv innermost(name, "");
      EXPECT_EQ(env_value(name), "");
    }
    EXPECT_EQ(env_value(name), "inner");
  }
  EXPECT_EQ(env_value(name), "outer");
  unsetenv(name);
}

#if defined(GAC_HAVE_CUDA)
TEST(CudaOnThisMachine, AutoTakesTheCpuQuietlyWhenThereIsNoGpu) {
  // A machine without an NVIDIA GPU or driver is no news on every command:
  // only `gac info` says why there is no device. A GPU that is there but
  // unusable (an old driver, say) is worth the note.
  std::string why;
  bool no_gpu = false;
  if (make_cuda_backend(&why, &no_gpu)) GTEST_SKIP() << "a CUDA device is usable here";
  std::string note;
  EXPECT_EQ(make_backend("auto", 1, &note)->name(), "cpu");
  std::string why_none;
  if (no_gpu) {
    EXPECT_EQ(note, "");
    EXPECT_TRUE(cuda_device_descriptions(&why_none).empty());
    EXPECT_NE(why_none, "");
  } else {
    EXPECT_NE(note.find(why), std::string::npos) << note;
  }
}
#endif

INSTANTIATE_TEST_SUITE_P(Devices, DeviceBackendTest, ::testing::Values("cuda", "emulated"),
                         [](const auto& info) { return info.param; });
