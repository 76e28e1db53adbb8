// The candidates of the paper's searches (include/gac/search.h) as plain
// __host__ __device__ arithmetic: every evaluator (the CPU's, the device's)
// builds a candidate's parameters with these, so they agree bit for bit.
#pragma once

#include <cstdint>

#include "gac/philox.h"
#include "gac/portable_math.h"
#include "gac/prior.h"

namespace gac {

// Pattern search: move m (0 .. 2 D - 1) steps parameter m / 2 by +r (m even) or -r (m odd).
GAC_HD uint32_t pattern_move_param(uint32_t move) { return move / 2; }
GAC_HD float pattern_moved(float w, uint32_t move, float r) { return add_rn(w, move & 1 ? -r : r); }

// Greedy search: parameters 4 b .. 4 b + 3 of candidate `slot` of the batch
// at Philox counter `counter`, current + r z with z ~ N(0, I): block
// slot * ceil(D / 4) + b gives four normals by Box-Muller. Writes out[4 b + j]
// for the j with 4 b + j < d.
GAC_HD void greedy_candidate_block(const float* current, int64_t d, StreamKey key, uint64_t counter, int64_t slot,
                                   float r, int64_t b, float* out) {
  const int64_t blocks = (d + 3) / 4;
  const U32x4 bits = philox_block(key, counter, static_cast<uint32_t>(slot * blocks + b), kPurposeSearch);
  float z[4];
  normals_from_bits(bits.v[0], bits.v[1], &z[0], &z[1]);
  normals_from_bits(bits.v[2], bits.v[3], &z[2], &z[3]);
  for (int64_t j = 0; j < 4 && 4 * b + j < d; ++j) out[4 * b + j] = add_rn(current[4 * b + j], mul_rn(z[j], r));
}

// The whole of greedy candidate `slot`.
GAC_HD void greedy_candidate(const float* current, int64_t d, StreamKey key, uint64_t counter, int64_t slot, float r,
                             float* out) {
  for (int64_t b = 0; b < (d + 3) / 4; ++b) greedy_candidate_block(current, d, key, counter, slot, r, b, out);
}

}  // namespace gac
