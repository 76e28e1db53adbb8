// The batched SGD trainer's SIMD kernel: W trajectories at once (W = its
// `lanes`: one native vector of floats), lane l of every value belonging to
// one model. Values are "lane-minor" (value i of all lanes is the W floats at
// [i*W, i*W + W)); buffers are 64-byte aligned.
//
// host/optim/sgd_lanes.h holds the lane-wise code. It is compiled once per
// instruction set, each in its own file with its own flags
// (sgd_lanes_avx512.cpp, sgd_lanes_avx2.cpp, sgd_lanes_generic.cpp), and
// sgd.cpp picks one at run time and runs the trajectories' bookkeeping
// (draws, bins, steps) around it. Every kernel is bit-identical to the
// one-model reference of kernels/sgd_step.h (tests/test_sgd.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "gac/model.h"
#include "kernels/sgd_step.h"

namespace gac {

constexpr int kMaxSgdLanes = 16;

// `s` is lane-minor working memory: each of SgdScratch's buffers times W.
struct SgdLaneKernel {
  const char* name;
  int lanes;  // W: 16 (AVX-512), 8 (AVX2) or 4 (generic), at most kMaxSgdLanes
  // The first half of the check, evaluate_draw's for every lane in `active`:
  // forward passes over the training set, logits kept in s.logits, stopping
  // early once no active lane is still perfect. Returns the lanes that
  // classify every example.
  uint32_t (*classify)(const SgdProblem& p, SgdScratch s, uint32_t active);
  // Its second half: each lane's loss as evaluate_draw computes it from the
  // kept logits (loss[W] out).
  void (*mean_loss)(const SgdProblem& p, SgdScratch s, float* loss);
  // One SGD step on examples order[0 .. count) (minibatch_gradient, then
  // sgd_update). Returns the lanes holding a parameter that is not finite.
  uint32_t (*step)(const SgdProblem& p, SgdScratch s, const int32_t* order, int count, bool first_step);

  // Pieces, for tests: exp_portable and log_portable of W values; one layer's
  // forward pass (in -> out), then its backward pass (d_out, changed in
  // place by a ReLU; grad += ; d_in =), lane-minor, `in` not shared.
  void (*exp_log)(const float* x, float* exp, float* log);
  void (*layer)(const Layer& L, const float* P, const float* in, float* out, float* d_out, float* grad, float* d_in);
};

// Each kernel, or nullptr where this build has none for its instruction set.
const SgdLaneKernel* sgd_kernel_avx512();
const SgdLaneKernel* sgd_kernel_avx2();
const SgdLaneKernel* sgd_kernel_generic();  // the build's baseline flags: always there

// "auto" (the widest kernel this CPU runs), "avx512", "avx2" or "generic".
// Throws gac::Error naming the choices for a kernel this CPU or build lacks.
const SgdLaneKernel& sgd_lane_kernel(const std::string& name);

}  // namespace gac
