// The SIMD kernel of the incremental pattern-search evaluator
// (host/optim/candidates_incremental.cpp): one layer of kernels/forward.h run
// on many training examples at once, lane = example. Each lane performs
// exactly forward.h's operations in its order (bias first, then the inputs in
// memory order, one fma_rn each), so its outputs are bit-identical to
// forward_example's (tests/test_candidates.cpp checks that).
//
// One kernel per instruction set, each in its own file with its own flags
// (candidates_incremental_{avx512,avx2,generic}.cpp, including
// candidates_incremental_lanes.h), chosen at run time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gac/model.h"

namespace gac {

// Activations in lanes: channel c of a layer's output is its own array of
// out_h * out_w rows of kIncrementalLanePad-aligned example lanes
// ([y][x][example]); a layer reads its input through one pointer per channel,
// so a candidate can swap in the one channel it changed.
constexpr int kIncrementalLanePad = 16;  // the widest kernel's lanes: examples are padded to a multiple

struct IncrementalKernel {
  const char* name;
  // Output channels [c_begin, c_end) of layer L for `lanes` examples (a
  // multiple of kIncrementalLanePad). `in` has one pointer per input channel,
  // each channel in_hw rows (dense layers read the channels as one flat
  // vector, in memory order); out[c] receives channel c.
  void (*layer)(const Layer& L, const float* params, const float* const* in, int in_hw, float* const* out,
                int c_begin, int c_end, int lanes);
  // Units [o_begin, o_end) of dense layer L, each sum continued from input
  // channel c_from: `from` holds the sums before c_from (unit after unit,
  // `lanes` each) or is nullptr (c_from = 0: the sums start at the bias).
  // With `partials` ([in channel][unit][lanes]), the sums before every input
  // channel c >= c_from are also stored there. Same bits as `layer`.
  void (*dense)(const Layer& L, const float* params, const float* const* in, int in_hw, int c_from,
                const float* from, float* partials, float* const* out, int o_begin, int o_end, int lanes);
  // forward.h's argmax and cross_entropy (at logit scale `scale`) of every
  // example: logits[c] holds class c's logits in lanes, labels[e] example e's
  // label (padded to `lanes`); loss[e] gets its cross-entropy, hit[e] 1 where
  // its argmax is its label, else 0. Same bits as forward.h.
  void (*score)(const float* const* logits, int n_classes, const int32_t* labels, float scale, float* loss,
                int32_t* hit, int lanes);
};

// Each kernel, or nullptr where this build has none for its instruction set.
const IncrementalKernel* incremental_kernel_avx512();
const IncrementalKernel* incremental_kernel_avx2();
const IncrementalKernel* incremental_kernel_generic();  // the build's baseline flags: always there

// "auto" (the widest kernel this CPU runs), "avx512", "avx2" or "generic".
// Throws gac::Error naming the choices for a kernel this CPU or build lacks.
const IncrementalKernel& incremental_kernel(const std::string& name);
std::vector<std::string> incremental_kernels();  // the kernels this CPU runs, widest first

}  // namespace gac
