// The SGD baseline: each layer's backward pass against finite differences
// and hand-computed gradients, the update against torch.optim.SGD by hand,
// the minibatch order, the bin snapshot rule (also against the paper's
// per-bin train_sgd), training a toy model, and the batched trainer against
// the one-model reference bit for bit (any split of draws, any thread count),
// for every SIMD kernel this CPU runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "gac/backend.h"
#include "gac/config.h"
#include "gac/error.h"
#include "gac/sgd.h"
#include "host/optim/sgd_kernel.h"
#include "kernels/backward.h"
#include "kernels/sgd_step.h"
#include "test_util.h"

using namespace gac;

namespace {

// ---- an independent double-precision forward pass ----------------------

std::vector<double> layer_forward_double(const Layer& L, const std::vector<double>& p, const std::vector<double>& in) {
  std::vector<double> out(L.out_size());
  for (int oc = 0; oc < L.out_c; ++oc)
    for (int oy = 0; oy < L.out_h; ++oy)
      for (int ox = 0; ox < L.out_w; ++ox) {
        double v;
        if (L.kind == LayerKind::maxpool2) {
          v = -INFINITY;
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx) v = std::max(v, in[(oc * L.in_h + 2 * oy + dy) * L.in_w + 2 * ox + dx]);
        } else if (L.kind == LayerKind::conv) {
          v = L.b_off >= 0 ? p[L.b_off + oc] : 0.0;
          for (int ic = 0; ic < L.in_c; ++ic)
            for (int ky = 0; ky < L.k; ++ky)
              for (int kx = 0; kx < L.k; ++kx)
                v += p[L.w_off + ((oc * L.in_c + ic) * L.k + ky) * L.k + kx] *
                     in[(ic * L.in_h + oy + ky) * L.in_w + ox + kx];
        } else {
          v = L.b_off >= 0 ? p[L.b_off + oc] : 0.0;
          for (int i = 0; i < L.in_size(); ++i) v += p[L.w_off + oc * L.in_size() + i] * in[i];
        }
        out[(oc * L.out_h + oy) * L.out_w + ox] = L.relu && v < 0 ? 0.0 : v;
      }
  return out;
}

// Mean cross-entropy of raw logits over examples `batch` of (X, Y).
double mean_loss_double(const ModelSpec& m, const std::vector<double>& p, const std::vector<float>& X,
                        const std::vector<int32_t>& Y, const std::vector<int>& batch) {
  double total = 0;
  for (int e : batch) {
    std::vector<double> a(X.begin() + static_cast<long>(e) * m.in_size(), X.begin() + static_cast<long>(e + 1) * m.in_size());
    for (int l = 0; l < m.n_layers; ++l) a = layer_forward_double(m.layers[l], p, a);
    double mx = *std::max_element(a.begin(), a.end()), sum = 0;
    for (double z : a) sum += std::exp(z - mx);
    total += std::log(sum) + mx - a[Y[e]];
  }
  return total / static_cast<double>(batch.size());
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

std::vector<float> uniform_floats(SplitMix64& rng, size_t count, double scale) {
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>((rng.uniform() * 2 - 1) * scale);
  return v;
}

// Central difference of f at v[i] (in double: the step is far below float precision).
template <class F>
double central_difference(F f, std::vector<double>& v, size_t i) {
  const double h = 1e-6 * std::max(1.0, std::fabs(v[i])), keep = v[i];
  v[i] = keep + h;
  const double up = f();
  v[i] = keep - h;
  const double down = f();
  v[i] = keep;
  return (up - down) / (2 * h);
}

void expect_close_to(const std::vector<float>& analytic, const std::vector<double>& numeric, const char* what) {
  double scale = 1e-6;
  for (double v : numeric) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < numeric.size(); ++i)
    EXPECT_NEAR(analytic[i], numeric[i], 2e-4 * scale) << what << " [" << i << "]";
}

Layer dense_layer(int in, int out, bool bias, bool relu) {
  return Layer{LayerKind::dense, in, 1, 1, out, 1, 1, 0, 0, bias ? out * in : -1, relu ? 1 : 0};
}

Layer conv_layer(int c, int h, int w, int out, int k, bool relu) {
  return Layer{LayerKind::conv, c, h, w, out, h - k + 1, w - k + 1, k, 0, out * c * k * k, relu ? 1 : 0};
}

Layer maxpool_layer(int c, int h, int w) { return Layer{LayerKind::maxpool2, c, h, w, c, h / 2, w / 2, 2, -1, -1, 0}; }

int layer_params(const Layer& L) { return L.weight_count() + (L.b_off >= 0 ? L.out_c : 0); }

// One layer's backward pass against central differences of
// f(p, in) = sum(r * layer(p, in)), r random: d_out = r.
void check_layer_backward(const Layer& L, uint64_t seed) {
  SplitMix64 rng(seed);
  const std::vector<float> p = uniform_floats(rng, layer_params(L), 0.5);
  const std::vector<float> in = uniform_floats(rng, L.in_size(), 1.0);
  const std::vector<float> r = uniform_floats(rng, L.out_size(), 1.0);
  std::vector<float> out(L.out_size()), d_out = r, grad(p.size(), 0.0f), d_in(L.in_size());
  if (L.kind == LayerKind::dense) dense_forward(L, p.data(), in.data(), out.data());
  else if (L.kind == LayerKind::conv) conv_forward(L, p.data(), in.data(), out.data());
  else maxpool2_forward(L, in.data(), out.data());
  if (L.kind == LayerKind::dense) dense_backward(L, p.data(), in.data(), out.data(), d_out.data(), grad.data(), d_in.data());
  else if (L.kind == LayerKind::conv) conv_backward(L, p.data(), in.data(), out.data(), d_out.data(), grad.data(), d_in.data());
  else maxpool2_backward(L, in.data(), r.data(), d_in.data());

  std::vector<double> pd = to_double(p), ind = to_double(in);
  auto f = [&] {
    const std::vector<double> o = layer_forward_double(L, pd, ind);
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += r[i] * o[i];
    return s;
  };
  std::vector<double> num_grad(p.size()), num_in(in.size());
  for (size_t i = 0; i < p.size(); ++i) num_grad[i] = central_difference(f, pd, i);
  for (size_t i = 0; i < in.size(); ++i) num_in[i] = central_difference(f, ind, i);
  expect_close_to(grad, num_grad, "parameter gradient");
  expect_close_to(d_in, num_in, "input gradient");
}

}  // namespace

TEST(Backward, DenseMatchesFiniteDifferences) {
  check_layer_backward(dense_layer(7, 5, true, false), 1);
  check_layer_backward(dense_layer(7, 5, false, true), 2);
  check_layer_backward(dense_layer(3, 9, true, true), 3);
}

TEST(Backward, ConvMatchesFiniteDifferences) {
  check_layer_backward(conv_layer(1, 9, 8, 3, 5, true), 4);
  check_layer_backward(conv_layer(3, 8, 10, 4, 5, true), 5);
  check_layer_backward(conv_layer(2, 6, 6, 2, 3, false), 6);
}

TEST(Backward, MaxPoolMatchesFiniteDifferences) {
  check_layer_backward(maxpool_layer(3, 8, 8), 7);
  check_layer_backward(maxpool_layer(2, 7, 5), 8);  // odd sizes: the last row and column feed no window
}

TEST(Backward, HandComputedDenseConvAndPool) {
  // Dense 2 -> 2 with bias on x = (1, 0), label 0, W = I, b = 0: z = (1, 0),
  // softmax = (e, 1)/(e + 1), dz = softmax - (1, 0); dW = dz x^T, db = dz.
  const Layer L = dense_layer(2, 2, true, false);
  const std::vector<float> p = {1, 0, 0, 1, 0, 0}, x = {1, 0};
  std::vector<float> z(2), dz(2), grad(6, 0.0f), d_in(2);
  dense_forward(L, p.data(), x.data(), z.data());
  cross_entropy_grad(z.data(), 2, 0, 1.0f, dz.data());
  dense_backward(L, p.data(), x.data(), z.data(), dz.data(), grad.data(), d_in.data());
  const double q = 1 / (std::exp(1.0) + 1);  // 0.2689414
  const double expected[6] = {-q, 0, q, 0, -q, q};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(grad[i], expected[i], 1e-7) << i;
  EXPECT_NEAR(d_in[0], -q, 1e-7);  // W^T dz
  EXPECT_NEAR(d_in[1], q, 1e-7);

  // Conv 2x2 kernel on a 2x2 input: one output; its gradient is the input.
  const Layer C = conv_layer(1, 2, 2, 1, 2, true);
  const std::vector<float> cp = {1, 0, 0, 1, 0}, cin = {1, 2, 3, 4};
  std::vector<float> cout(1), cd = {1}, cgrad(5, 0.0f), cd_in(4);
  conv_forward(C, cp.data(), cin.data(), cout.data());
  EXPECT_EQ(cout[0], 5.0f);
  conv_backward(C, cp.data(), cin.data(), cout.data(), cd.data(), cgrad.data(), cd_in.data());
  EXPECT_EQ(cgrad, (std::vector<float>{1, 2, 3, 4, 1}));
  EXPECT_EQ(cd_in, (std::vector<float>{1, 0, 0, 1}));
  // The same with the ReLU closed (output -5): nothing passes.
  const std::vector<float> neg = {-1, 0, 0, -1, 0};
  std::fill(cgrad.begin(), cgrad.end(), 0.0f);
  cd = {1};
  conv_forward(C, neg.data(), cin.data(), cout.data());
  conv_backward(C, neg.data(), cin.data(), cout.data(), cd.data(), cgrad.data(), cd_in.data());
  EXPECT_EQ(cgrad, std::vector<float>(5, 0.0f));
  EXPECT_EQ(cd_in, std::vector<float>(4, 0.0f));

  // Max pooling with ties: the first maximum in reading order takes the gradient (PyTorch).
  const Layer M = maxpool_layer(1, 2, 4);
  const std::vector<float> pin = {1, 3, 2, 2, 3, 0, 2, 2};
  const std::vector<float> pd = {10, 20};
  std::vector<float> pd_in(8);
  maxpool2_backward(M, pin.data(), pd.data(), pd_in.data());
  EXPECT_EQ(pd_in, (std::vector<float>{0, 10, 20, 0, 0, 0, 0, 0}));
}

TEST(Backward, CrossEntropyGradientMatchesFiniteDifferences) {
  SplitMix64 rng(9);
  for (int C : {2, 3, 10}) {
    std::vector<float> z = uniform_floats(rng, C, 4.0), dz(C);
    const int label = static_cast<int>(rng.below(C));
    cross_entropy_grad(z.data(), C, label, 1.0f / 3.0f, dz.data());
    std::vector<double> zd = to_double(z), num(C);
    auto f = [&] {
      double mx = *std::max_element(zd.begin(), zd.end()), sum = 0;
      for (double v : zd) sum += std::exp(v - mx);
      return (std::log(sum) + mx - zd[label]) / 3.0;
    };
    for (int c = 0; c < C; ++c) num[c] = central_difference(f, zd, c);
    expect_close_to(dz, num, "dlogits");
  }
}

namespace {

// minibatch_gradient of a whole model against central differences of the
// double-precision mean loss over the same batch.
void check_model_gradient(const ModelConfig& mc, int c, int h, int w, int classes, uint64_t seed) {
  const Model model = build_model(mc, c, h, w, classes);
  const ModelSpec& m = model.spec;
  SplitMix64 rng(seed);
  const int n = 5;
  const std::vector<float> X = uniform_floats(rng, static_cast<size_t>(n) * m.in_size(), 1.0);
  std::vector<int32_t> Y(n);
  for (int32_t& y : Y) y = static_cast<int32_t>(rng.below(classes));
  // Kaiming-sized weights keep the logits moderate, so float and double agree closely.
  std::vector<float> params(m.n_params);
  for (const TensorInfo& t : model.tensors)
    for (int i = 0; i < t.size; ++i) params[t.offset + i] = static_cast<float>((rng.uniform() * 2 - 1) / std::sqrt(t.fan_in));
  std::vector<float> grad(m.n_params), acts(total_activations(m)), d0(m.max_activation), d1(m.max_activation);
  const SgdProblem p{m, PriorSpec{}, StreamKey{}, LossKind::raw, X.data(), Y.data(), n, nullptr, 0, nullptr, 0, 3, 0.1f, 0.0f};
  const int32_t batch[3] = {4, 1, 2};
  SgdScratch s{params.data(), grad.data(), nullptr, acts.data(), d0.data(), d1.data(), nullptr};
  minibatch_gradient(p, batch, 3, s);

  std::vector<double> pd = to_double(params);
  auto f = [&] { return mean_loss_double(m, pd, X, Y, {4, 1, 2}); };
  // Every parameter of a small model; an even sample of a large one (each tensor included).
  const int stride = std::max(1, m.n_params / 400);
  std::vector<float> analytic;
  std::vector<double> numeric;
  for (int i = 0; i < m.n_params; i += stride) {
    analytic.push_back(grad[i]);
    numeric.push_back(central_difference(f, pd, i));
  }
  for (const TensorInfo& t : model.tensors) {  // the first and last entry of each tensor too
    for (int i : {t.offset, t.offset + t.size - 1}) {
      analytic.push_back(grad[i]);
      numeric.push_back(central_difference(f, pd, i));
    }
  }
  expect_close_to(analytic, numeric, model.arch_name.c_str());
}

}  // namespace

TEST(Backward, WholeModelsMatchFiniteDifferences) {
  ModelConfig mlp;
  mlp.arch = Arch::mlp;
  mlp.hidden = 6;
  mlp.layers = 2;
  mlp.hidden_bias = true;
  check_model_gradient(mlp, 1, 1, 4, 3, 21);
  mlp.hidden_bias = false;
  check_model_gradient(mlp, 1, 1, 2, 2, 22);
  ModelConfig lenet;
  lenet.arch = Arch::lenet;
  lenet.width = 0.5;
  check_model_gradient(lenet, 1, 16, 16, 2, 23);
  check_model_gradient(lenet, 3, 20, 18, 4, 24);
}

// ---- the batched trainer's kernels ----------------------------------------

namespace {

// Runs a test once per SGD kernel (host/optim/sgd_kernel.h), each pinned by
// name; one this CPU or build lacks is skipped.
class SgdKernelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    try {
      kernel_ = &sgd_lane_kernel(GetParam());
    } catch (const Error&) {
      GTEST_SKIP() << "the " << GetParam() << " kernel does not run on this CPU";
    }
  }
  const SgdLaneKernel& kernel() const { return *kernel_; }

 private:
  const SgdLaneKernel* kernel_ = nullptr;
};

class SgdLanes : public SgdKernelTest {};
class SgdBatched : public SgdKernelTest {};

const auto kKernels = ::testing::Values("generic", "avx2", "avx512");

}  // namespace

INSTANTIATE_TEST_SUITE_P(Kernels, SgdLanes, kKernels, [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Kernels, SgdBatched, kKernels, [](const auto& info) { return info.param; });

TEST(SgdKernels, AutoPicksTheWidestThisCpuRunsAndTheTrainerSaysWhich) {
  std::string widest = "generic";
  for (const char* name : {"avx2", "avx512"}) {  // narrowest to widest
    try {
      EXPECT_STREQ(sgd_lane_kernel(name).name, name);
      widest = name;
    } catch (const Error&) {
    }
  }
  EXPECT_STREQ(sgd_lane_kernel("auto").name, widest.c_str());
  const std::vector<std::string> runnable = sgd_kernels();
  ASSERT_FALSE(runnable.empty());
  EXPECT_EQ(runnable.front(), widest);
  EXPECT_EQ(runnable.back(), "generic");  // there on every CPU
  const std::map<std::string, int> lanes = {{"avx512", 16}, {"avx2", 8}, {"generic", 4}};  // one vector each
  for (const std::string& name : runnable) EXPECT_EQ(sgd_lane_kernel(name).lanes, lanes.at(name)) << name;
  const SgdTrainer trainer(3);
  EXPECT_EQ(trainer.kernel(), widest);
  EXPECT_EQ(trainer.description(), "sgd (3 threads, " + widest + " kernel, " + std::to_string(lanes.at(widest)) + " lanes)");
  EXPECT_EQ(SgdTrainer(1, "generic").description(), "sgd (1 threads, generic kernel, 4 lanes)");
  EXPECT_ERROR_MENTIONS(SgdTrainer(1, "sse9"), "sgd kernel 'sse9' is not available");
}

TEST_P(SgdLanes, LossFunctionsMatchThePortableScalarOnesBitForBit) {
  // The batched trainer's lane-wise exp and log against exp_portable and
  // log_portable, on a sweep and on the edge cases each of them branches on.
  std::vector<float> xs = {0.0f, -0.0f, -87.0f, -86.99999f, -87.00001f, -100.0f, -1e-30f, -1e-45f, -0.5f, 0.5f,
                           1.0f, 1.41421356f, 1.4142137f, 2.0f, 1e-38f, 1e-45f, 3.40282347e38f, -1.0f,
                           INFINITY, -INFINITY, NAN};
  for (float x = -90.0f; x <= 3.0f; x += 0.0137f) xs.push_back(x);
  for (float x = 1e-40f; x < 1e38f; x *= 1.7f) xs.push_back(x);
  auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; };
  const int W = kernel().lanes;
  for (size_t i = 0; i < xs.size(); i += W) {
    float v[kMaxSgdLanes], e[kMaxSgdLanes], g[kMaxSgdLanes];
    for (int l = 0; l < W; ++l) v[l] = xs[std::min(i + l, xs.size() - 1)];
    kernel().exp_log(v, e, g);
    for (int l = 0; l < W; ++l) {
      if (v[l] <= 0.0f || std::isnan(v[l])) {  // exp_portable's domain: shifted logits
        EXPECT_TRUE(same(e[l], exp_portable(v[l]))) << "exp " << v[l];
      }
      EXPECT_TRUE(same(g[l], log_portable(v[l]))) << "log " << v[l];
    }
  }
}

namespace {

// Lane buffers are whole SIMD vectors: 64-byte aligned.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t{64}); }
  bool operator==(const Aligned64&) const { return true; }
};
using LaneFloats = std::vector<float, Aligned64<float>>;

// One layer on W lanes (lane-minor input, W parameter vectors) against the
// reference on each lane alone, forward and backward, bit for bit. Values
// come from a few levels, so that max pooling meets many exact ties.
void check_layer_lanes(const SgdLaneKernel& kernel, const Layer& L, uint64_t seed) {
  const int W = kernel.lanes;
  SplitMix64 rng(seed);
  const int np = layer_params(L), ni = L.in_size(), no = L.out_size();
  auto level = [&] { return static_cast<float>(static_cast<int>(rng.below(5)) - 2) * 0.5f; };
  LaneFloats P(static_cast<size_t>(np) * W), in(static_cast<size_t>(ni) * W), d(static_cast<size_t>(no) * W);
  for (float& v : P) v = level();
  for (float& v : in) v = level();
  for (float& v : d) v = level();
  LaneFloats out(d.size()), d_out = d, grad(P.size(), 0.0f), d_in(in.size());
  kernel.layer(L, P.data(), in.data(), out.data(), d_out.data(), grad.data(), d_in.data());
  auto lane = [W](const LaneFloats& v, int l) {
    std::vector<float> r(v.size() / W);
    for (size_t i = 0; i < r.size(); ++i) r[i] = v[i * W + l];
    return r;
  };
  for (int l = 0; l < W; ++l) {
    const std::vector<float> p = lane(P, l), x = lane(in, l);
    std::vector<float> o(no), dl = lane(d, l), g(np, 0.0f), di(ni);
    if (L.kind == LayerKind::dense) {
      dense_forward(L, p.data(), x.data(), o.data());
      dense_backward(L, p.data(), x.data(), o.data(), dl.data(), g.data(), di.data());
    } else if (L.kind == LayerKind::conv) {
      conv_forward(L, p.data(), x.data(), o.data());
      conv_backward(L, p.data(), x.data(), o.data(), dl.data(), g.data(), di.data());
    } else {
      maxpool2_forward(L, x.data(), o.data());
      maxpool2_backward(L, x.data(), dl.data(), di.data());
    }
    EXPECT_EQ(lane(out, l), o) << "forward, lane " << l;
    EXPECT_EQ(lane(grad, l), g) << "parameter gradient, lane " << l;
    EXPECT_EQ(lane(d_in, l), di) << "input gradient, lane " << l;
  }
}

}  // namespace

TEST_P(SgdLanes, EachLayerMatchesTheReferenceOnEveryLane) {
  check_layer_lanes(kernel(), dense_layer(7, 6, true, true), 31);
  check_layer_lanes(kernel(), dense_layer(5, 3, false, false), 32);
  check_layer_lanes(kernel(), conv_layer(2, 9, 10, 5, 5, true), 33);  // the 5x5 paths, a remainder of channels and columns
  check_layer_lanes(kernel(), conv_layer(3, 6, 7, 2, 3, false), 34);  // any other kernel size
  check_layer_lanes(kernel(), maxpool_layer(3, 8, 6), 35);
  check_layer_lanes(kernel(), maxpool_layer(2, 5, 7), 36);            // odd sizes
}

// ---- the update, the order, the bin rule ---------------------------------

TEST(SgdUpdate, MomentumFollowsTorchOptimSgdByHand) {
  // torch.optim.SGD(lr=0.1, momentum=0.9), p0 = 1, gradient 1 at every step:
  // buf = 1, 1.9, 2.71; p = 0.9, 0.71, 0.439.
  float p = 1.0f, v = 0.0f;
  const float g = 1.0f;
  const float expected_buf[3] = {1.0f, 1.9f, 2.71f}, expected_p[3] = {0.9f, 0.71f, 0.439f};
  for (int step = 0; step < 3; ++step) {
    sgd_update(1, 0.1f, 0.9f, step == 0, &g, &v, &p);
    EXPECT_NEAR(v, expected_buf[step], 1e-6) << step;
    EXPECT_NEAR(p, expected_p[step], 1e-6) << step;
  }
  // A later gradient of another size: buf = 0.9 * 2.71 - 2 = 0.439, p = 0.439 - 0.0439.
  const float g2 = -2.0f;
  sgd_update(1, 0.1f, 0.9f, false, &g2, &v, &p);
  EXPECT_NEAR(v, 0.439f, 1e-6);
  EXPECT_NEAR(p, 0.3951f, 1e-6);
  // Without momentum: plain p -= lr * g, the buffer untouched.
  float q = 1.0f, unused = 7.0f;
  sgd_update(1, 0.25f, 0.0f, false, &g2, &unused, &q);
  EXPECT_EQ(q, 1.5f);
  EXPECT_EQ(unused, 7.0f);
}

TEST(SgdOrder, IsAPermutationPerEpochAndAPureFunction) {
  const StreamKey key = make_stream_key(1, 16, 0, 0);
  std::set<std::vector<int32_t>> seen;
  for (int epoch = 0; epoch < 20; ++epoch) {
    std::vector<int32_t> a(16), b(16);
    minibatch_order(key, epoch, 16, a.data());
    minibatch_order(key, epoch, 16, b.data());
    EXPECT_EQ(a, b);
    std::vector<int32_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 16; ++i) EXPECT_EQ(sorted[i], i);
    seen.insert(a);
  }
  EXPECT_EQ(seen.size(), 20u);  // a fresh order every epoch
  std::vector<int32_t> other(16), same_epoch(16);
  minibatch_order(make_stream_key(2, 16, 0, 0), 0, 16, other.data());
  minibatch_order(key, 0, 16, same_epoch.data());
  EXPECT_NE(other, same_epoch);  // and per stream
}

TEST(SgdOrder, EveryOrderOfThreeIsEquallyLikely) {
  std::map<std::vector<int32_t>, int> counts;
  const int epochs = 60000;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::vector<int32_t> o(3);
    minibatch_order(StreamKey{5, 6}, epoch, 3, o.data());
    ++counts[o];
  }
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [order, count] : counts) EXPECT_NEAR(count, epochs / 6, 400) << order[0] << order[1] << order[2];
}

TEST(SgdBins, SnapshotRuleOnAConstructedTrajectory) {
  const float edges[] = {0.3f, 0.4f, 0.5f, 0.6f};  // bins 0 (0.3,0.4], 1 (0.4,0.5], 2 (0.5,0.6]
  int lowest = 3;
  EXPECT_EQ(reach_bins(edges, 4, false, 0.2f, lowest), -1);  // not perfect: reaches nothing
  EXPECT_EQ(reach_bins(edges, 4, true, 0.7f, lowest), -1);   // above every bin
  EXPECT_EQ(reach_bins(edges, 4, true, 0.6f, lowest), 2);    // bin 2 reached at its upper edge (inclusive)
  EXPECT_EQ(lowest, 2);
  EXPECT_EQ(reach_bins(edges, 4, true, 0.55f, lowest), -1);  // bin 2 already has its snapshot
  EXPECT_EQ(reach_bins(edges, 4, true, 0.35f, lowest), 0);   // one step skips past bin 1: it accepts nothing
  EXPECT_EQ(lowest, 0);                                       // every bin reached: the trajectory ends

  lowest = 3;
  EXPECT_EQ(reach_bins(edges, 4, true, 0.45f, lowest), 1);
  EXPECT_EQ(reach_bins(edges, 4, true, NAN, lowest), -1);     // a diverged model reaches nothing
  EXPECT_EQ(lowest, 1);                                       // bin 0 never reached
  EXPECT_EQ(reach_bins(edges, 4, true, 0.3f, lowest), -1);    // at or below the lowest edge: reached, not accepted
  EXPECT_EQ(lowest, 0);
}

// ---- trajectories ----------------------------------------------------------

namespace {

// The paper's kink set drawn at random: y = -|x| (label 1) and 0.25 above it (label 0).
Examples kink_examples(int n, uint64_t seed) {
  SplitMix64 rng(seed);
  Examples ex;
  for (int i = 0; i < n; ++i) {
    const int label = i % 2;
    const float x = static_cast<float>(rng.uniform() * 2 - 1);
    ex.x.push_back(x);
    ex.x.push_back(-std::fabs(x) + (label == 0 ? 0.25f : 0.0f));
    ex.y.push_back(label);
  }
  return ex;
}

Examples random_images(int n, int c, int side, uint64_t seed) {
  SplitMix64 rng(seed);
  Examples ex;
  for (int i = 0; i < n * c * side * side; ++i) ex.x.push_back(static_cast<float>(rng.uniform() * 2 - 1));
  for (int i = 0; i < n; ++i) ex.y.push_back(i % 2);
  return ex;
}

StreamTask make_task(const Model& model, Examples train, std::vector<float> edges, uint64_t seed) {
  StreamTask t;
  t.model = model.spec;
  t.prior = make_prior_spec(PriorConfig{}, model);
  t.key = make_stream_key(seed, train.size(), 0, 0);
  t.bin_edges = std::move(edges);
  t.train = std::move(train);
  t.test = t.train;
  return t;
}

// Many narrow bins over the range a 2-class normalized loss takes, so that a
// trajectory passes through many of them (and their snapshots compare many steps).
std::vector<float> fine_edges(float from, float to, int bins) {
  std::vector<float> e;
  for (int i = 0; i <= bins; ++i) e.push_back(from + (to - from) * i / bins);
  return e;
}

StreamTask kink_task(int n, int hidden, uint64_t seed, std::vector<float> edges) {
  ModelConfig mc;
  mc.arch = Arch::mlp;
  mc.hidden = hidden;
  return make_task(build_model(mc, 1, 1, 2, 2), kink_examples(n, seed), std::move(edges), seed);
}

StreamTask lenet_task(int n, int side, uint64_t seed, std::vector<float> edges) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  mc.width = 0.5;
  return make_task(build_model(mc, 1, side, side, 2), random_images(n, 1, side, seed), std::move(edges), seed);
}

void expect_same_hits(const std::vector<SgdHit>& a, const std::vector<SgdHit>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].draw, b[i].draw) << what << " hit " << i;
    EXPECT_EQ(a[i].bin, b[i].bin) << what << " hit " << i;
    EXPECT_EQ(a[i].step, b[i].step) << what << " hit " << i;
    EXPECT_EQ(std::memcmp(&a[i].loss, &b[i].loss, sizeof(float)), 0) << what << " hit " << i;
    ASSERT_EQ(a[i].params.size(), b[i].params.size());
    EXPECT_EQ(std::memcmp(a[i].params.data(), b[i].params.data(), a[i].params.size() * sizeof(float)), 0)
        << what << ": parameters of draw " << a[i].draw << " bin " << a[i].bin << " differ";
  }
}

std::vector<SgdHit> train_one_each(const SgdTrainer& trainer, uint64_t first, uint64_t count) {
  std::vector<SgdHit> hits;
  for (uint64_t d = first; d < first + count; ++d)
    for (SgdHit& h : trainer.train_one(d)) hits.push_back(std::move(h));
  return hits;
}

// The batched trainer against the one-model reference, over several splits
// of the draws and thread counts. Returns the hits.
std::vector<SgdHit> expect_batched_equals_reference(const std::string& kernel, const StreamTask& task,
                                                    const SgdConfig& cfg, uint64_t count, const std::string& what) {
  SgdTrainer one(1);
  one.begin_stream(task, cfg);
  const std::vector<SgdHit> reference = train_one_each(one, 0, count);
  for (int threads : {1, 2, 3}) {
    SgdTrainer trainer(threads, kernel);
    trainer.begin_stream(task, cfg);
    for (uint64_t split : {count, uint64_t{7}, uint64_t{16}, uint64_t{1}}) {
      if (split > count) continue;
      std::vector<SgdHit> hits;
      const SgdCounts a = trainer.train(0, split, hits);
      const SgdCounts b = trainer.train(split, count - split, hits);
      EXPECT_EQ(a.draws + b.draws, count);
      expect_same_hits(hits, reference, what + ", threads " + std::to_string(threads) + ", split " + std::to_string(split));
    }
  }
  return reference;
}

// The check's loss of every lane (the logit scale in double, then the
// cross-entropy) against evaluate_draw's, on the reference's logits of
// prior draws, whether they classify the set or not.
void expect_lane_losses_equal_evaluate_draw(const SgdLaneKernel& kernel, const StreamTask& task, LossKind loss) {
  const ModelSpec& m = task.model;
  const int W = kernel.lanes, n = static_cast<int>(task.train.size()), C = m.n_classes;
  const SgdProblem p{m,       task.prior, task.key, loss, task.train.x.data(), task.train.y.data(), n,
                     nullptr, 0,          nullptr,  0,    1,                   0.1f,                0.0f};
  LaneFloats params(static_cast<size_t>(m.n_params) * W), logits(static_cast<size_t>(n) * C * W);
  std::vector<float> one(m.n_params), buf0(m.max_activation), buf1(m.max_activation), z(n * C);
  for (uint64_t group = 0; group < 8; ++group) {
    float expected[kMaxSgdLanes], got[kMaxSgdLanes];
    for (int l = 0; l < W; ++l) {
      generate_params(task.prior, task.key, group * W + l, m.n_params, one.data());
      for (int i = 0; i < m.n_params; ++i) params[static_cast<size_t>(i) * W + l] = one[i];
      expected[l] = evaluate_draw(m, one.data(), p.x, p.y, n, loss, false, buf0.data(), buf1.data(), z.data()).loss;
      for (int i = 0; i < n * C; ++i) logits[static_cast<size_t>(i) * W + l] = z[i];
    }
    kernel.mean_loss(p, SgdScratch{params.data(), nullptr, nullptr, nullptr, nullptr, nullptr, logits.data()}, got);
    for (int l = 0; l < W; ++l)
      EXPECT_EQ(std::memcmp(&got[l], &expected[l], sizeof(float)), 0)
          << "draw " << group * W + l << ": " << got[l] << " against " << expected[l];
  }
}

}  // namespace

TEST_P(SgdLanes, LossOfEveryLaneIsEvaluateDrawsBitForBit) {
  for (LossKind loss : {LossKind::normalized, LossKind::raw}) {
    expect_lane_losses_equal_evaluate_draw(kernel(), kink_task(11, 10, 1, {0.1f, 0.5f}), loss);
    expect_lane_losses_equal_evaluate_draw(kernel(), lenet_task(4, 16, 4, {0.1f, 0.5f}), loss);  // norm divisor 3
  }
}

TEST_P(SgdBatched, BatchedEqualsOneModelReferenceBitForBitOnMlps) {
  // Kink MLPs first classify all points after some tens of epochs, at normalized
  // losses near 0.62-0.66, where the bins are.
  SgdConfig cfg;
  cfg.lr = 0.5;
  cfg.batch_size = 3;
  cfg.epochs = 60;
  // n = 11: minibatches of 3, 3, 3, 2 (the last one smaller).
  const StreamTask task = kink_task(11, 10, 1, fine_edges(0.60f, 0.68f, 40));
  const auto hits = expect_batched_equals_reference(GetParam(), task, cfg, 37, "mlp");
  int late = 0;
  for (const SgdHit& h : hits) late += h.step > 10;
  EXPECT_GT(late, 20) << "the comparison should cover snapshots after many steps";

  cfg.lr = 0.1;
  cfg.momentum = 0.9;
  cfg.batch_size = 2;
  const auto momentum_hits = expect_batched_equals_reference(GetParam(), kink_task(8, 4, 2, fine_edges(0.60f, 0.68f, 40)),
                                                             cfg, 21, "mlp, momentum");
  EXPECT_GT(momentum_hits.size(), 5u);

  ModelConfig deep;
  deep.arch = Arch::mlp;
  deep.hidden = 5;
  deep.layers = 3;
  deep.hidden_bias = true;
  StreamTask deep_task = make_task(build_model(deep, 1, 1, 2, 2), kink_examples(6, 3), fine_edges(0.5f, 0.7f, 40), 3);
  EXPECT_GT(expect_batched_equals_reference(GetParam(), deep_task, cfg, 19, "deep mlp with hidden biases").size(), 5u);
}

TEST_P(SgdBatched, BatchedEqualsOneModelReferenceBitForBitOnLeNet) {
  SgdConfig cfg;
  cfg.lr = 0.01;
  cfg.epochs = 3;
  const StreamTask task = lenet_task(4, 16, 4, fine_edges(0.5f, 0.7f, 40));
  const auto hits = expect_batched_equals_reference(GetParam(), task, cfg, 18, "lenet 16x16");
  EXPECT_FALSE(hits.empty());
  cfg.momentum = 0.5;
  cfg.epochs = 1;
  expect_batched_equals_reference(GetParam(), lenet_task(4, 28, 5, fine_edges(0.5f, 0.7f, 40)), cfg, 17,
                                  "lenet 28x28, momentum");
}

TEST_P(SgdBatched, ResumingEqualsOneCall) {
  SgdConfig cfg;
  cfg.lr = 0.1;
  cfg.epochs = 5;
  const StreamTask task = kink_task(16, 10, 7, fine_edges(0.5f, 0.7f, 20));
  SgdTrainer trainer(2, GetParam());
  trainer.begin_stream(task, cfg);
  std::vector<SgdHit> whole, parts;
  const SgdCounts all = trainer.train(0, 100, whole);
  const SgdCounts first = trainer.train(0, 45, parts);
  SgdTrainer restarted(2, GetParam());  // a new process resuming at draw 45
  restarted.begin_stream(task, cfg);
  const SgdCounts second = restarted.train(45, 55, parts);
  expect_same_hits(parts, whole, "resumed");
  EXPECT_EQ(first.steps + second.steps, all.steps);
  EXPECT_FALSE(whole.empty());
  for (size_t i = 1; i < whole.size(); ++i)
    EXPECT_TRUE(whole[i - 1].draw < whole[i].draw || (whole[i - 1].draw == whole[i].draw && whole[i - 1].bin < whole[i].bin));
}

TEST_P(SgdBatched, ZeroEpochsAcceptsExactlyWhatGuessAndCheckAccepts) {
  SgdConfig cfg;
  cfg.epochs = 0;
  StreamTask task = kink_task(4, 10, 8, {0.3f, 0.5f, 0.6f, 0.65f, 0.69f});
  SgdTrainer trainer(2, GetParam());
  trainer.begin_stream(task, cfg);
  std::vector<SgdHit> sgd;
  trainer.train(0, 3000, sgd);
  std::vector<Hit> gac;
  auto cpu = make_cpu_backend(2);
  cpu->begin_stream(task);
  cpu->evaluate(0, 3000, gac);
  std::vector<Hit> binned;
  for (const Hit& h : gac)
    if (h.bin >= 0) binned.push_back(h);
  ASSERT_EQ(sgd.size(), binned.size());
  ASSERT_GT(sgd.size(), 10u);
  std::vector<uint64_t> draws;
  for (size_t i = 0; i < sgd.size(); ++i) {
    EXPECT_EQ(sgd[i].draw, binned[i].draw);
    EXPECT_EQ(sgd[i].bin, binned[i].bin);
    EXPECT_EQ(sgd[i].loss, binned[i].loss);  // bit for bit: the check is GAC's evaluation
    EXPECT_EQ(sgd[i].step, 0);
    draws.push_back(sgd[i].draw);
  }
  // And their test scores are the CPU backend's.
  const auto a = trainer.score_test(sgd);
  const auto b = cpu->score_test(draws);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].accuracy, b[i].accuracy);
    EXPECT_EQ(a[i].loss, b[i].loss);
  }
}

namespace {

struct Check {
  bool perfect;
  float loss;
};

// The paper's train_sgd for one bin (edges[j], edges[j+1]], momentum 0: a
// model whose check passes (accuracy 1, loss <= edges[j+1]) gets a zero
// gradient, i.e. stays where it is; at the end it is accepted if its loss is
// in the bin. Returns whether it is accepted, and its parameters and loss.
bool paper_train_one_bin(const SgdProblem& p, uint64_t draw, int j, std::vector<float>& params, float& loss) {
  const ModelSpec& m = p.model;
  params.resize(m.n_params);
  std::vector<float> grad(m.n_params), acts(total_activations(m)), d0(m.max_activation), d1(m.max_activation),
      logits(static_cast<size_t>(p.n) * m.n_classes);
  SgdScratch s{params.data(), grad.data(), nullptr, acts.data(), d0.data(), d1.data(), logits.data()};
  generate_params(p.prior, p.key, draw, m.n_params, params.data());
  auto check = [&] {
    const DrawResult r = evaluate_draw(m, params.data(), p.x, p.y, p.n, p.loss, false, d0.data(), d1.data(), logits.data());
    return Check{r.correct == p.n, r.loss};
  };
  for (int epoch = 0; epoch < p.epochs; ++epoch)
    for (int start = 0; start < p.n; start += p.batch) {
      const Check c = check();
      if (c.perfect && c.loss <= p.edges[j + 1]) continue;  // zero gradient: no update
      minibatch_gradient(p, p.order + static_cast<size_t>(epoch) * p.n + start, std::min(p.batch, p.n - start), s);
      sgd_update(m.n_params, p.lr, 0.0f, false, grad.data(), nullptr, params.data());
    }
  const Check c = check();
  loss = c.loss;
  return c.perfect && p.edges[j] < c.loss && c.loss <= p.edges[j + 1];
}

}  // namespace

TEST(SgdTrainer, AllBinsInOnePassEqualThePapersPerBinTraining) {
  const std::vector<float> edges = {0.60f, 0.63f, 0.635f, 0.64f, 0.645f, 0.65f, 0.66f};
  const int n = 11, epochs = 60;
  const StreamTask task = kink_task(n, 10, 11, edges);
  SgdConfig cfg;
  cfg.lr = 0.5;
  cfg.batch_size = 3;
  cfg.epochs = epochs;
  SgdTrainer trainer(2);
  trainer.begin_stream(task, cfg);
  // The same problem the trainer builds.
  std::vector<int32_t> order(static_cast<size_t>(epochs) * n);
  for (int e = 0; e < epochs; ++e) minibatch_order(task.key, e, n, order.data() + static_cast<size_t>(e) * n);
  const SgdProblem p{task.model, task.prior, task.key, task.loss, task.train.x.data(), task.train.y.data(), n,
                     edges.data(), static_cast<int>(edges.size()), order.data(), epochs, 3, 0.5f, 0.0f};
  int accepted = 0, skipped = 0;
  for (uint64_t draw = 0; draw < 40; ++draw) {
    const std::vector<SgdHit> hits = trainer.train_one(draw);
    std::map<int, const SgdHit*> by_bin;
    for (const SgdHit& h : hits) by_bin[h.bin] = &h;
    for (int j = 0; j + 1 < static_cast<int>(edges.size()); ++j) {
      std::vector<float> params;
      float loss;
      const bool paper = paper_train_one_bin(p, draw, j, params, loss);
      ASSERT_EQ(paper, by_bin.count(j) == 1) << "draw " << draw << " bin " << j;
      if (!paper) continue;
      ++accepted;
      EXPECT_EQ(loss, by_bin[j]->loss);
      EXPECT_EQ(params, by_bin[j]->params) << "draw " << draw << " bin " << j;
    }
    // A bin without a model above one with a model was reached, but skipped past in one step.
    for (int j = 1; j + 1 < static_cast<int>(edges.size()); ++j)
      skipped += !by_bin.count(j) && !hits.empty() && hits.front().bin < j;
  }
  EXPECT_GT(accepted, 10);
  EXPECT_GT(skipped, 0);
}

TEST(SgdTrainer, TrainsALinearModelOnASeparableSetLikeAPlainDoubleSimulation) {
  // Four separable points in 2-D, a linear model, no bin ever reached (so the
  // trajectory runs all epochs): the final parameters and loss must match a
  // plain double-precision SGD with the same start and minibatch order.
  ModelConfig mc;
  mc.arch = Arch::linear;
  const Model model = build_model(mc, 1, 1, 2, 2);
  Examples ex;
  ex.x = {1.0f, 0.5f, 0.8f, -0.3f, -1.0f, 0.2f, -0.6f, -0.9f};
  ex.y = {0, 0, 1, 1};
  const StreamTask task = make_task(model, ex, {0.0f, 1e-9f}, 3);
  const int n = 4, epochs = 200, batch = 2;
  const float lr = 0.5f;
  std::vector<int32_t> order(static_cast<size_t>(epochs) * n);
  for (int e = 0; e < epochs; ++e) minibatch_order(task.key, e, n, order.data() + static_cast<size_t>(e) * n);
  const SgdProblem p{task.model, task.prior, task.key, LossKind::raw, task.train.x.data(), task.train.y.data(), n,
                     task.bin_edges.data(), 2, order.data(), epochs, batch, lr, 0.0f};
  const ModelSpec& m = task.model;
  std::vector<float> params(m.n_params), grad(m.n_params), acts(total_activations(m)), d0(m.max_activation),
      d1(m.max_activation), logits(n * 2);
  int hits = 0;
  const int steps = sgd_trajectory(p, 0, SgdScratch{params.data(), grad.data(), nullptr, acts.data(), d0.data(),
                                                    d1.data(), logits.data()},
                                   [&](int, float, int, const float*) { ++hits; });
  EXPECT_EQ(hits, 0);
  EXPECT_EQ(steps, epochs * 2);

  std::vector<float> start(m.n_params);
  generate_params(task.prior, task.key, 0, m.n_params, start.data());
  std::vector<double> w = to_double(start);  // W [2][2] then b [2]
  auto loss_of = [&](const std::vector<double>& v, const std::vector<int>& batch_examples) {
    return mean_loss_double(m, v, ex.x, ex.y, batch_examples);
  };
  const double initial = loss_of(w, {0, 1, 2, 3});
  for (int e = 0; e < epochs; ++e)
    for (int s = 0; s < n; s += batch) {
      const std::vector<int> b = {order[e * n + s], order[e * n + s + 1]};
      std::vector<double> g(w.size(), 0.0);
      for (int k : b) {
        const double z0 = w[4] + w[0] * ex.x[2 * k] + w[1] * ex.x[2 * k + 1];
        const double z1 = w[5] + w[2] * ex.x[2 * k] + w[3] * ex.x[2 * k + 1];
        const double p1 = 1 / (1 + std::exp(z0 - z1)), dz1 = (p1 - (ex.y[k] == 1)) / 2, dz0 = -dz1;
        g[0] += dz0 * ex.x[2 * k], g[1] += dz0 * ex.x[2 * k + 1], g[4] += dz0;
        g[2] += dz1 * ex.x[2 * k], g[3] += dz1 * ex.x[2 * k + 1], g[5] += dz1;
      }
      for (size_t i = 0; i < w.size(); ++i) w[i] -= lr * g[i];
    }
  for (int i = 0; i < m.n_params; ++i) EXPECT_NEAR(params[i], w[i], 1e-4 * (1 + std::fabs(w[i]))) << i;
  const double final_loss = loss_of(w, {0, 1, 2, 3});
  EXPECT_NEAR(loss_of(to_double(params), {0, 1, 2, 3}), final_loss, 1e-5);
  EXPECT_LT(final_loss, 0.05);  // trained: from about log 2 or worse to nearly separated
  EXPECT_LT(final_loss, initial);
}

namespace {

// The SGD steps the one-model reference (sgd_trajectory) takes on draws
// [0, count), summed.
uint64_t reference_steps(const StreamTask& task, const SgdConfig& cfg, uint64_t count) {
  const int n = static_cast<int>(task.train.size());
  std::vector<int32_t> order(static_cast<size_t>(cfg.epochs) * n);
  for (int e = 0; e < cfg.epochs; ++e) minibatch_order(task.key, e, n, order.data() + static_cast<size_t>(e) * n);
  const SgdProblem p{task.model, task.prior, task.key, task.loss, task.train.x.data(), task.train.y.data(), n,
                     task.bin_edges.data(), static_cast<int>(task.bin_edges.size()), order.data(), cfg.epochs,
                     effective_batch_size(cfg, n), static_cast<float>(cfg.lr), static_cast<float>(cfg.momentum)};
  const ModelSpec& m = task.model;
  std::vector<float> params(m.n_params), grad(m.n_params), velocity(m.n_params), acts(total_activations(m)),
      d0(m.max_activation), d1(m.max_activation), logits(static_cast<size_t>(n) * m.n_classes);
  const SgdScratch s{params.data(), grad.data(), velocity.data(), acts.data(), d0.data(), d1.data(), logits.data()};
  uint64_t steps = 0;
  for (uint64_t d = 0; d < count; ++d) steps += sgd_trajectory(p, d, s, [](int, float, int, const float*) {});
  return steps;
}

}  // namespace

TEST_P(SgdBatched, DivergingModelsReachNoBinAndEndEarly) {
  SgdConfig cfg;
  cfg.lr = 1e30;  // the first step overflows
  cfg.epochs = 50;
  const StreamTask task = kink_task(8, 10, 12, {0.0f, 0.69f, 0.7f});
  SgdTrainer trainer(2, GetParam());
  trainer.begin_stream(task, cfg);
  std::vector<SgdHit> hits;
  const SgdCounts counts = trainer.train(0, 40, hits);
  for (const SgdHit& h : hits) EXPECT_LE(h.step, 3) << "draw " << h.draw;  // only before it blew up
  EXPECT_LT(counts.steps, 40u * 10);  // of 40 x 200 without the early end
  EXPECT_EQ(counts.steps, reference_steps(task, cfg, 40));
  expect_same_hits(hits, train_one_each(trainer, 0, 40), "diverging");

  // Inputs 100x larger: the first step sends weights to +-inf while the
  // biases stay finite (no NaN yet); a trajectory ends there as well.
  StreamTask big = task;
  for (float& x : big.train.x) x *= 100.0f;
  cfg.lr = 1e37;
  trainer.begin_stream(big, cfg);
  hits.clear();
  EXPECT_EQ(trainer.train(0, 40, hits).steps, reference_steps(big, cfg, 40));
  expect_same_hits(hits, train_one_each(trainer, 0, 40), "diverging to infinity");
}

TEST_P(SgdBatched, EndsATrajectoryOnceEveryBinIsReached) {
  SgdConfig cfg;
  cfg.lr = 0.1;
  cfg.epochs = 200;
  // One wide bin that a trained kink model reaches quickly.
  const StreamTask task = kink_task(8, 10, 13, {0.1f, 0.69f});
  SgdTrainer trainer(1, GetParam());
  trainer.begin_stream(task, cfg);
  std::vector<SgdHit> hits;
  const SgdCounts counts = trainer.train(0, 32, hits);
  ASSERT_FALSE(hits.empty());
  uint64_t steps_of_hits = 0;
  for (const SgdHit& h : hits) steps_of_hits += h.step;
  // Models with a hit stopped there; the others ran every step: 200 epochs of 4 minibatches of 2.
  const uint64_t full = 200 * 4;
  EXPECT_EQ(counts.steps, steps_of_hits + (32 - hits.size()) * full);
}

TEST(SgdConfigTest, BadValuesAreOneClearError) {
  auto with = [](auto change) {
    SgdConfig c;
    change(c);
    return c;
  };
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.lr = 0; })), "optimizer.lr");
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.lr = NAN; })), "optimizer.lr");
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.lr = 1e-50; })), "optimizer.lr");  // 0 as a float
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.lr = 1e40; })), "optimizer.lr");   // inf as a float
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.momentum = 1.0; })), "optimizer.momentum");
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.momentum = -0.1; })), "optimizer.momentum");
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.batch_size = 0; })), "optimizer.batch_size");
  EXPECT_ERROR_MENTIONS(validate_sgd_config(with([](SgdConfig& c) { c.epochs = -1; })), "optimizer.epochs");
  EXPECT_NO_THROW(validate_sgd_config(SgdConfig{}));
  SgdTrainer trainer(1);
  StreamTask empty = kink_task(4, 2, 1, {0.1f, 0.5f});
  empty.train = Examples{};
  EXPECT_ERROR_MENTIONS(trainer.begin_stream(empty, SgdConfig{}), "training set is empty");
  StreamTask one_edge = kink_task(4, 2, 1, {0.1f});
  EXPECT_ERROR_MENTIONS(trainer.begin_stream(one_edge, SgdConfig{}), "two bin edges");
  StreamTask short_rows = kink_task(4, 2, 1, {0.1f, 0.5f});
  short_rows.train.x.pop_back();
  EXPECT_ERROR_MENTIONS(trainer.begin_stream(short_rows, SgdConfig{}), "input size");
  StreamTask bad_label = kink_task(4, 2, 1, {0.1f, 0.5f});
  bad_label.train.y[2] = 2;
  EXPECT_ERROR_MENTIONS(trainer.begin_stream(bad_label, SgdConfig{}), "label 2");
  std::vector<SgdHit> hits;
  EXPECT_ERROR_MENTIONS(trainer.train(0, 1, hits), "before begin_stream");
}

TEST(SgdConfigTest, EffectiveBatchIsThePapersMinOfHalfNAndBatchSize) {
  SgdConfig c;
  c.batch_size = 2;
  EXPECT_EQ(effective_batch_size(c, 16), 2);
  EXPECT_EQ(effective_batch_size(c, 2), 1);
  EXPECT_EQ(effective_batch_size(c, 1), 1);  // never 0
  c.batch_size = 3;
  EXPECT_EQ(effective_batch_size(c, 11), 3);
  c.batch_size = 64;
  EXPECT_EQ(effective_batch_size(c, 16), 8);
}
