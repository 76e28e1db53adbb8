// The shared __host__ __device__ arithmetic: Philox, priors, models, forward
// pass and loss, each against an independent plain implementation.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>

#include "gac/error.h"
#include "gac/model.h"
#include "gac/philox.h"
#include "gac/prior.h"
#include "kernels/forward.h"

using namespace gac;

TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Kat {
    U32x4 ctr;
    uint32_t k0, k1;
    U32x4 expected;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const U32x4 got = philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], k.expected.v[i]) << "word " << i;
  }
}

TEST(Philox, StreamKeysDifferPerStream) {
  std::set<std::pair<uint32_t, uint32_t>> keys;
  for (int n : {2, 4, 8})
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 3; ++s) {
        const StreamKey k = make_stream_key(7, n, r, s);
        keys.insert({k.k0, k.k1});
      }
  EXPECT_EQ(keys.size(), 27u);
}

TEST(SplitMix64, BelowIsInRangeAndShuffleIsAPermutation) {
  SplitMix64 rng(3);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.below(7), 7u);
  std::vector<int> v(100);
  for (int i = 0; i < 100; ++i) v[i] = i;
  rng.shuffle(v.data(), v.size());
  EXPECT_EQ(std::set<int>(v.begin(), v.end()).size(), 100u);
  SplitMix64 a(5), b(5);
  EXPECT_EQ(a.next(), b.next());
}

TEST(Prior, PortableLogAndSinCosAreAccurate) {
  for (float x = 1e-7f; x <= 1.0f; x *= 1.37f) EXPECT_NEAR(log_portable(x), std::log(x), 4e-7 * std::fabs(std::log(x)) + 1e-7);
  EXPECT_EQ(log_portable(1.0f), 0.0f);
  EXPECT_TRUE(std::isnan(log_portable(NAN)));
  EXPECT_TRUE(std::isnan(log_portable(-1.0f)));
  for (float x = 0.0f; x > -87.0f; x -= 0.0137f) EXPECT_NEAR(exp_portable(x), std::exp(x), 3e-7 * std::exp(x)) << x;
  EXPECT_EQ(exp_portable(0.0f), 1.0f);
  EXPECT_EQ(exp_portable(-100.0f), 0.0f);
  EXPECT_TRUE(std::isnan(exp_portable(NAN)));
  for (int i = 0; i < 4096; ++i) {
    const float t = i / 4096.0f;
    float c, s;
    sincos_2pi_portable(t, &c, &s);
    EXPECT_NEAR(c, std::cos(2 * M_PI * t), 3e-7);
    EXPECT_NEAR(s, std::sin(2 * M_PI * t), 3e-7);
  }
}

TEST(Prior, UniformFromBitsIsExactAndInRange) {
  EXPECT_EQ(uniform_from_bits(0, 1.0f), -1.0f);
  EXPECT_EQ(uniform_from_bits(0x80000000u, 1.0f), 0.0f);
  EXPECT_EQ(uniform_from_bits(0xffffffffu, 1.0f), 1.0f - 0x1.0p-23f);
  EXPECT_EQ(uniform_from_bits(0xffffffffu, 2.0f), 2.0f - 0x1.0p-22f);
}

namespace {

Model mlp_model() {
  ModelConfig mc;
  mc.arch = Arch::mlp;
  mc.hidden = 10;
  return build_model(mc, 1, 1, 2, 2);
}

struct Moments {
  double mean = 0, var = 0, lo = 1e30, hi = -1e30;
};

Moments moments(const std::vector<float>& v) {
  Moments m;
  for (float x : v) {
    m.mean += x;
    m.lo = std::min<double>(m.lo, x);
    m.hi = std::max<double>(m.hi, x);
  }
  m.mean /= v.size();
  for (float x : v) m.var += (x - m.mean) * (x - m.mean);
  m.var /= v.size();
  return m;
}

std::vector<float> many_draws(const PriorSpec& prior, int n_params, int draws) {
  std::vector<float> all(static_cast<size_t>(n_params) * draws);
  const StreamKey key = make_stream_key(1, 2, 3, 0);
  for (int d = 0; d < draws; ++d) generate_params(prior, key, d, n_params, all.data() + static_cast<size_t>(d) * n_params);
  return all;
}

}  // namespace

TEST(Prior, UniformHasTheRightMoments) {
  const Model m = mlp_model();
  PriorConfig pc;
  pc.radius = 2.0;
  const auto v = many_draws(make_prior_spec(pc, m), m.spec.n_params, 5000);
  const Moments mo = moments(v);
  EXPECT_NEAR(mo.mean, 0.0, 0.02);
  EXPECT_NEAR(mo.var, 4.0 / 3.0, 0.02);
  EXPECT_GE(mo.lo, -2.0);
  EXPECT_LT(mo.hi, 2.0);
}

TEST(Prior, NormalHasTheRightMoments) {
  const Model m = mlp_model();
  PriorConfig pc;
  pc.kind = PriorKind::normal;
  pc.sigma = 0.5;
  const auto v = many_draws(make_prior_spec(pc, m), m.spec.n_params, 5000);
  const Moments mo = moments(v);
  EXPECT_NEAR(mo.mean, 0.0, 0.01);
  EXPECT_NEAR(mo.var, 0.25, 0.005);
  double kurt = 0;
  for (float x : v) kurt += std::pow((x - mo.mean) / std::sqrt(mo.var), 4);
  EXPECT_NEAR(kurt / v.size(), 3.0, 0.1);
}

TEST(Prior, KaimingUsesEachLayersFanIn) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  const Model m = build_model(mc, 1, 28, 28, 2);
  PriorConfig pc;
  pc.kind = PriorKind::kaiming;
  const PriorSpec spec = make_prior_spec(pc, m);
  const auto v = many_draws(spec, m.spec.n_params, 50);
  for (const TensorInfo& t : m.tensors) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(t.fan_in));
    double hi = 0;
    for (int d = 0; d < 50; ++d)
      for (int i = 0; i < t.size; ++i) hi = std::max(hi, std::fabs(double(v[static_cast<size_t>(d) * m.spec.n_params + t.offset + i])));
    EXPECT_LE(hi, bound) << t.name;
    EXPECT_GT(hi, 0.9 * bound) << t.name;
  }
}

// The largest |value| of each tensor over `draws` draws, divided by `bound(t)`.
void expect_tensor_bounds(const Model& m, const PriorSpec& spec, const std::function<double(const TensorInfo&)>& bound) {
  const int draws = 50;
  const auto v = many_draws(spec, m.spec.n_params, draws);
  for (const TensorInfo& t : m.tensors) {
    double hi = 0;
    for (int d = 0; d < draws; ++d)
      for (int i = 0; i < t.size; ++i)
        hi = std::max(hi, std::fabs(double(v[static_cast<size_t>(d) * m.spec.n_params + t.offset + i])));
    EXPECT_LE(hi, bound(t)) << t.name;
    EXPECT_GT(hi, 0.9 * bound(t)) << t.name;
  }
}

TEST(Prior, RegularIsKaimingForLeNet) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  mc.width = 1.0;
  const Model m = build_model(mc, 1, 28, 28, 10);
  PriorConfig regular, kaiming;
  regular.kind = PriorKind::regular;
  kaiming.kind = PriorKind::kaiming;
  const auto a = many_draws(make_prior_spec(regular, m), m.spec.n_params, 3);
  const auto b = many_draws(make_prior_spec(kaiming, m), m.spec.n_params, 3);
  EXPECT_EQ(a, b);
  expect_tensor_bounds(m, make_prior_spec(regular, m), [](const TensorInfo& t) { return 1.0 / std::sqrt(double(t.fan_in)); });
}

TEST(Prior, RegularMlpUsesFanOutForWeightsAndOneForBiases) {
  for (Arch arch : {Arch::mlp, Arch::linear}) {
    ModelConfig mc;
    mc.arch = arch;
    mc.hidden = 7;
    mc.layers = 2;
    mc.hidden_bias = true;
    const Model m = build_model(mc, 1, 1, 30, 3);
    PriorConfig pc;
    pc.kind = PriorKind::regular;
    expect_tensor_bounds(m, make_prior_spec(pc, m), [](const TensorInfo& t) {
      return t.is_weight ? 1.0 / std::sqrt(double(t.shape[0])) : 1.0;  // weights [out, in]: fan_out = out
    });
  }
}

TEST(Prior, SphereHasTheRequestedNorm) {
  const Model m = mlp_model();
  PriorConfig pc;
  pc.kind = PriorKind::sphere;
  pc.sphere_radius = 3.0;
  const auto v = many_draws(make_prior_spec(pc, m), m.spec.n_params, 20);
  for (int d = 0; d < 20; ++d) {
    double sq = 0;
    for (int i = 0; i < m.spec.n_params; ++i) sq += double(v[d * m.spec.n_params + i]) * v[d * m.spec.n_params + i];
    EXPECT_NEAR(std::sqrt(sq), 3.0, 1e-5);
  }
}

TEST(Prior, DrawsArePureFunctionsOfKeyAndIndex) {
  const Model m = mlp_model();
  const PriorSpec spec = make_prior_spec(PriorConfig{}, m);
  std::vector<float> a(m.spec.n_params), b(m.spec.n_params), c(m.spec.n_params);
  const StreamKey key = make_stream_key(9, 16, 0, 0);
  generate_params(spec, key, 12345, m.spec.n_params, a.data());
  generate_params(spec, key, 999, m.spec.n_params, c.data());
  generate_params(spec, key, 12345, m.spec.n_params, b.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Model, LeNetMatchesThePaper) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  mc.width = 0.5;
  const Model m = build_model(mc, 1, 28, 28, 2);
  EXPECT_EQ(m.spec.n_params, 11074);
  EXPECT_EQ(m.flops_per_example, 183768.0);
  const std::vector<std::string> names = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                                          "fc1.bias",     "fc2.weight", "fc2.bias",     "fc3.weight", "fc3.bias"};
  ASSERT_EQ(m.tensors.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(m.tensors[i].name, names[i]);
  EXPECT_EQ(m.tensors[0].shape, (std::vector<int>{3, 1, 5, 5}));
  EXPECT_EQ(m.tensors[4].shape, (std::vector<int>{60, 128}));
  EXPECT_EQ(m.spec.norm_divisor, 3.0f);
  const Model cifar = build_model(mc, 3, 32, 32, 2);
  EXPECT_EQ(cifar.tensors[4].shape, (std::vector<int>{60, 200}));
}

TEST(Model, MlpHasPaperBiasesAndOptionalHiddenBiases) {
  ModelConfig mc;
  mc.arch = Arch::mlp;
  mc.hidden = 10;
  mc.layers = 2;
  Model m = build_model(mc, 1, 1, 2, 2);
  ASSERT_EQ(m.tensors.size(), 4u);
  EXPECT_EQ(m.tensors[0].name, "layers.0.weight");
  EXPECT_EQ(m.tensors[1].name, "layers.2.weight");
  EXPECT_EQ(m.tensors[2].name, "layers.4.weight");
  EXPECT_EQ(m.tensors[3].name, "layers.4.bias");
  EXPECT_EQ(m.spec.n_params, 20 + 100 + 20 + 2);
  mc.hidden_bias = true;
  m = build_model(mc, 1, 1, 2, 2);
  EXPECT_EQ(m.spec.n_params, 20 + 10 + 100 + 10 + 20 + 2);
  EXPECT_EQ(m.tensors[1].name, "layers.0.bias");
}

TEST(Model, LeNetRejectsInputsThatDoNotFit) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  EXPECT_THROW(build_model(mc, 1, 1, 784, 2), Error);
  try {
    build_model(mc, 1, 10, 10, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
  }
}

namespace {

// Independent double-precision forward pass of LeNet-style layers.
std::vector<double> reference_forward(const ModelSpec& m, const std::vector<float>& p, const std::vector<float>& x) {
  std::vector<double> a(x.begin(), x.end());
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    std::vector<double> out(L.out_size(), 0.0);
    for (int oc = 0; oc < L.out_c; ++oc)
      for (int oy = 0; oy < L.out_h; ++oy)
        for (int ox = 0; ox < L.out_w; ++ox) {
          double v;
          if (L.kind == LayerKind::maxpool2) {
            v = -1e300;
            for (int dy = 0; dy < 2; ++dy)
              for (int dx = 0; dx < 2; ++dx) v = std::max(v, a[(oc * L.in_h + 2 * oy + dy) * L.in_w + 2 * ox + dx]);
          } else if (L.kind == LayerKind::conv) {
            v = p[L.b_off + oc];
            for (int ic = 0; ic < L.in_c; ++ic)
              for (int ky = 0; ky < L.k; ++ky)
                for (int kx = 0; kx < L.k; ++kx)
                  v += double(p[L.w_off + ((oc * L.in_c + ic) * L.k + ky) * L.k + kx]) *
                       a[(ic * L.in_h + oy + ky) * L.in_w + ox + kx];
          } else {
            v = L.b_off >= 0 ? p[L.b_off + oc] : 0.0;
            for (int i = 0; i < L.in_size(); ++i) v += double(p[L.w_off + oc * L.in_size() + i]) * a[i];
          }
          out[(oc * L.out_h + oy) * L.out_w + ox] = L.relu && v < 0 ? 0.0 : v;
        }
    a = std::move(out);
  }
  return a;
}

}  // namespace

TEST(Forward, MatchesADoublePrecisionReferenceOnRandomInputs) {
  SplitMix64 rng(11);
  for (int arch = 0; arch < 3; ++arch) {
    ModelConfig mc;
    mc.arch = static_cast<Arch>(arch);
    mc.layers = 2;
    mc.hidden_bias = true;
    const int c = arch == 2 ? 3 : 1, h = arch == 2 ? 32 : 1, w = arch == 2 ? 32 : 5;
    const Model m = build_model(mc, c, h, w, 3);
    const PriorSpec prior = make_prior_spec(PriorConfig{}, m);
    std::vector<float> p(m.spec.n_params), x(m.spec.in_size()), b0(m.spec.max_activation), b1(m.spec.max_activation);
    for (int trial = 0; trial < 5; ++trial) {
      generate_params(prior, make_stream_key(trial, 1, 2, 3), trial, m.spec.n_params, p.data());
      for (float& v : x) v = static_cast<float>(rng.uniform() * 2 - 1);
      const float* z = forward_example(m.spec, p.data(), x.data(), b0.data(), b1.data());
      const auto ref = reference_forward(m.spec, p, x);
      for (int k = 0; k < 3; ++k) EXPECT_NEAR(z[k], ref[k], 1e-4 * (1 + std::fabs(ref[k]))) << m.arch_name;
    }
  }
}

TEST(Loss, CrossEntropyIsStableAndArgmaxTiesGoLow) {
  const float z[3] = {1000.0f, 999.0f, -1000.0f};
  EXPECT_NEAR(cross_entropy(z, 3, 0, 1.0f), std::log1p(std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(cross_entropy(z, 3, 1, 1.0f), 1.0 + std::log1p(std::exp(-1.0)), 1e-5);
  EXPECT_NEAR(cross_entropy(z, 3, 0, 1e-3f), std::log(std::exp(1.0) + std::exp(0.999) + std::exp(-1.0)) - 1.0, 1e-6);
  const float tie[3] = {2.0f, 5.0f, 5.0f};
  EXPECT_EQ(argmax(tie, 3), 1);
  const float all[2] = {0.0f, 0.0f};
  EXPECT_EQ(argmax(all, 2), 0);
}

TEST(Loss, NormalizedLogitsDivideByTheProductOfLayerNorms) {
  ModelConfig mc;
  mc.arch = Arch::lenet;
  const Model m = build_model(mc, 1, 28, 28, 2);
  std::vector<float> p(m.spec.n_params, 0.5f);
  double expected = 1;
  for (const TensorInfo& t : m.tensors)
    if (t.is_weight) expected *= std::sqrt(0.25 * t.size) / 3.0;
  EXPECT_NEAR(weight_norm_product(m.spec, p.data()), expected, 1e-9 * expected);
  EXPECT_EQ(logit_scale(m.spec, p.data(), LossKind::raw), 1.0f);
}

TEST(Loss, BinsAreHalfOpenOnTheLeft) {
  const float e[4] = {0.3f, 0.35f, 0.4f, 0.45f};
  EXPECT_EQ(find_bin(e, 4, 0.3f), -1);
  EXPECT_EQ(find_bin(e, 4, 0.30001f), 0);
  EXPECT_EQ(find_bin(e, 4, 0.35f), 0);
  EXPECT_EQ(find_bin(e, 4, 0.36f), 1);
  EXPECT_EQ(find_bin(e, 4, 0.45f), 2);
  EXPECT_EQ(find_bin(e, 4, 0.46f), -1);
  EXPECT_EQ(find_bin(e, 4, NAN), -1);
}

TEST(Loss, EarlyRejectionGivesTheSameResultForPerfectDraws) {
  ModelConfig mc;
  const Model m = build_model(mc, 1, 1, 2, 2);
  const PriorSpec prior = make_prior_spec(PriorConfig{}, m);
  std::vector<float> X = {0.5f, -0.5f, -0.5f, 0.2f, 0.1f, 0.9f, -0.7f, -0.3f};
  std::vector<int32_t> Y = {1, 0, 0, 1};
  std::vector<float> p(m.spec.n_params), b0(m.spec.max_activation), b1(m.spec.max_activation), logits(8);
  int perfect = 0;
  for (uint64_t d = 0; d < 2000; ++d) {
    generate_params(prior, make_stream_key(1, 4, 0, 0), d, m.spec.n_params, p.data());
    const DrawResult full = evaluate_draw(m.spec, p.data(), X.data(), Y.data(), 4, LossKind::normalized, false, b0.data(), b1.data(), logits.data());
    const DrawResult early = evaluate_draw(m.spec, p.data(), X.data(), Y.data(), 4, LossKind::normalized, true, b0.data(), b1.data(), logits.data());
    ASSERT_EQ(full.correct == 4, early.correct == 4);
    if (full.correct == 4) {
      ++perfect;
      EXPECT_EQ(full.loss, early.loss);
    }
  }
  EXPECT_GT(perfect, 10);
}
