// Greedy-search candidates on the CPU backend's SIMD kernels
// (host/backends/cpu_simd.h: SimdKernel::greedy) against the scalar
// reference (kernels/search_moves.h's greedy_candidate, kernels/forward.h's
// evaluate_draw): the same normals, parameters and Eval bits on every kernel
// this CPU runs; a candidate stopped early is one whose loss is above the
// threshold, and every other one is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gac/experiment.h"
#include "gac/model.h"
#include "gac/prior.h"
#include "host/backends/cpu_simd.h"
#include "host/optim/candidates.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"
#include "candidate_test_util.h"

using namespace gac;
using gac::test::random_point;
using gac::test::random_task;

namespace {

std::vector<const SimdKernel*> kernels_here() {
  std::vector<const SimdKernel*> out;
  for (const char* name : {"avx512", "avx2"}) {
    try {
      if (const SimdKernel* k = simd_kernel_named(name)) out.push_back(k);
    } catch (const std::exception&) {  // this CPU or build lacks it
    }
  }
  return out;
}

// The scalar reference's Eval of greedy candidate `slot`.
Eval reference_eval(const StreamTask& t, const GreedyLanes& g, int64_t slot) {
  const ModelSpec& m = t.model;
  std::vector<float> params(m.n_params), b0(m.max_activation), b1(m.max_activation),
      logits(t.train.size() * m.n_classes);
  greedy_candidate(g.current, g.d, g.key, g.counter, slot, g.r, params.data());
  const DrawResult r = evaluate_draw(m, params.data(), t.train.x.data(), t.train.y.data(),
                                     static_cast<int>(t.train.size()), t.loss, false, b0.data(), b1.data(),
                                     logits.data());
  return {r.loss, r.correct};
}

void expect_kernels_match_reference(const ModelConfig& model, int in_c, int in_h, int in_w, int classes, int n) {
  const auto kernels = kernels_here();
  if (kernels.empty()) GTEST_SKIP() << "no SIMD kernel on this CPU or build";
  for (LossKind loss : {LossKind::normalized, LossKind::raw}) {
    const StreamTask task = random_task(model, in_c, in_h, in_w, classes, n, loss, 11 + n);
    const std::vector<float> current = random_point(task.model, 5 + n);
    for (const SimdKernel* k : kernels)
      for (float r : {1.0f, 0.0371f})
        for (int64_t first : {int64_t{1}, int64_t{1} + k->lanes, int64_t{1999}}) {
          SCOPED_TRACE(std::string(k->name) + " r " + std::to_string(r) + " first slot " + std::to_string(first));
          GreedyLanes g{current.data(), task.model.n_params, StreamKey{0x1234u, 0xBEEFu + static_cast<uint32_t>(first)},
                        (uint64_t{7} << 32) + 3 * first, r, HUGE_VALF};
          // Parameters, bit for bit.
          simd::AlignedBuffer buffer;
          float* lanes = buffer.get(static_cast<size_t>(task.model.n_params) * k->lanes);
          k->greedy_params(g, first, lanes);
          std::vector<float> want(task.model.n_params);
          for (int l = 0; l < k->lanes; ++l) {
            greedy_candidate(current.data(), g.d, g.key, g.counter, first + l, r, want.data());
            for (int i = 0; i < task.model.n_params; ++i)
              ASSERT_EQ(std::bit_cast<uint32_t>(want[i]),
                        std::bit_cast<uint32_t>(lanes[static_cast<size_t>(i) * k->lanes + l]))
                  << "lane " << l << " parameter " << i;
          }
          // Every Eval exact without a threshold.
          std::vector<Eval> ref(k->lanes);
          float got_loss[32];
          int got_correct[32];
          k->greedy(task, g, first, got_loss, got_correct);
          for (int l = 0; l < k->lanes; ++l) {
            ref[l] = reference_eval(task, g, first + l);
            EXPECT_EQ(std::bit_cast<uint32_t>(ref[l].loss), std::bit_cast<uint32_t>(got_loss[l])) << "lane " << l;
            EXPECT_EQ(ref[l].correct, got_correct[l]) << "lane " << l;
          }
          // With the median loss as the threshold: a stopped lane lies above it, the others are exact.
          std::vector<float> sorted;
          for (const Eval& e : ref) sorted.push_back(e.loss);
          std::sort(sorted.begin(), sorted.end());
          g.reject_above = sorted[sorted.size() / 2];
          k->greedy(task, g, first, got_loss, got_correct);
          // The last example's check stops every lane whose mean loss is above it.
          for (int l = 0; l < k->lanes; ++l) {
            if (ref[l].loss > g.reject_above) {
              EXPECT_EQ(got_loss[l], kRejected.loss) << "lane " << l;
              EXPECT_EQ(got_correct[l], kRejected.correct) << "lane " << l;
            } else {
              EXPECT_EQ(std::bit_cast<uint32_t>(ref[l].loss), std::bit_cast<uint32_t>(got_loss[l])) << "lane " << l;
              EXPECT_EQ(ref[l].correct, got_correct[l]) << "lane " << l;
            }
          }
        }
  }
}

}  // namespace

TEST(GreedyCandidates, BoxMullerMatchesTheReferenceOnEdgeAndRandomWords) {
  const auto kernels = kernels_here();
  if (kernels.empty()) GTEST_SKIP() << "no SIMD kernel on this CPU or build";
  const std::vector<uint32_t> edges = {0u, 1u, 0xFFu, 0x100u, 0x1FFu, 0x3FFFFFFFu, 0x40000000u, 0x7FFFFFFFu,
                                       0x80000000u, 0xBFFFFFFFu, 0xC0000000u, 0xFFFFFF00u, 0xFFFFFFFFu};
  std::vector<uint32_t> a, b;  // every pair of edge words, then random pairs
  for (uint32_t x : edges)
    for (uint32_t y : edges) {
      a.push_back(x);
      b.push_back(y);
    }
  std::mt19937 rng(42);
  while (a.size() < 65536) {
    a.push_back(rng());
    b.push_back(rng());
  }
  for (const SimdKernel* k : kernels) {
    const int W = k->lanes;
    std::vector<float> z0(W), z1(W);
    for (size_t i = 0; i + W <= a.size(); i += W) {
      k->box_muller(&a[i], &b[i], z0.data(), z1.data());
      for (int l = 0; l < W; ++l) {
        float w0, w1;
        normals_from_bits(a[i + l], b[i + l], &w0, &w1);
        ASSERT_EQ(std::bit_cast<uint32_t>(w0), std::bit_cast<uint32_t>(z0[l])) << k->name << " a " << a[i + l];
        ASSERT_EQ(std::bit_cast<uint32_t>(w1), std::bit_cast<uint32_t>(z1[l])) << k->name << " b " << b[i + l];
      }
    }
  }
}

TEST(GreedyCandidates, LinearMatchesTheReference) {
  ModelConfig c;
  c.arch = Arch::linear;
  expect_kernels_match_reference(c, 1, 1, 9, 3, 21);
}

TEST(GreedyCandidates, MlpMatchesTheReference) {
  ModelConfig c;
  c.arch = Arch::mlp;
  c.hidden = 7;
  c.layers = 2;
  expect_kernels_match_reference(c, 1, 1, 5, 4, 19);
}

TEST(GreedyCandidates, LenetMatchesTheReference) {
  ModelConfig c;
  c.arch = Arch::lenet;
  c.width = 0.5;
  expect_kernels_match_reference(c, 1, 28, 28, 10, 7);  // MNIST-sized
  c.width = 0.25;
  expect_kernels_match_reference(c, 3, 32, 32, 10, 5);  // CIFAR-10-sized, narrow
}
