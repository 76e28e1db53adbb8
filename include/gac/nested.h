// Nested sampling (sampler.heads = K > 1; docs/nested.md): every drawn body
// -- all parameters but the last layer's -- is tried with K heads (last
// layers). Draw index p of a stream is then the pair (body p / K, head p % K):
//
//   - the body of pair p is the body of plain draw p / K (its Philox blocks);
//   - head 0 of a body is that plain draw's own last layer, so K = 1 is plain
//     guess and check bit for bit, and pair (b, 0) is plain draw b;
//   - head h >= 1 takes parameter i from word i % 4 of Philox block i / 4
//     with counter (i / 4, kPurposeHead | h, body): a key of its own, so
//     every pair is a prior draw regenerable from its index alone.
//
// A Philox block that holds both body and head parameters (a last layer not
// starting at a multiple of 4) gives each side its values from its own block
// (after Box-Muller, for the normal prior), so the body is the same for all
// heads. Only product priors nest: the sphere prior's one global norm ties
// the head to the body (config refuses it).
//
// Why it is exact: each pair's parameters follow the prior, so every pair
// accepted is a draw of guess and check's law; pairs of one body are
// dependent, which the report's cluster-robust rates account for (bodies as
// clusters). The loss of a pair is the same double and float arithmetic as a
// full evaluation of its vector (kernels/nested.h).
#pragma once

#include <cstdint>

#include "gac/hd.h"
#include "gac/philox.h"

namespace gac {

// Counter word 1 of head h >= 1's blocks (the high bit: no other purpose uses it).
constexpr uint32_t kPurposeHead = 0x80000000u;
constexpr uint32_t kMaxHeads = 1u << 24;  // heads per body a run may ask for

struct Pair {
  uint64_t body;
  uint32_t head;
};

GAC_HD Pair pair_of(uint64_t draw, uint32_t heads) {
  return heads <= 1 ? Pair{draw, 0} : Pair{draw / heads, static_cast<uint32_t>(draw % heads)};
}

// Counter word 1 of the blocks of `head`'s parameters.
GAC_HD uint32_t head_purpose(uint32_t head) { return head == 0 ? kPurposeParams : kPurposeHead | head; }

}  // namespace gac
