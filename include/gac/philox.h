// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11), the
// generator cuRAND and Random123 ship. A draw's parameters are a pure function
// of (stream key, draw index, parameter index), which is what lets any stored
// model be regenerated from its index and the CPU and CUDA backends agree.
#pragma once

#include "gac/hd.h"

namespace gac {

struct U32x4 {
  uint32_t v[4];
};

GAC_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

GAC_HD U32x4 philox4x32_10(U32x4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = mulhi32(M0, c.v[0]), lo0 = M0 * c.v[0];
    const uint32_t hi1 = mulhi32(M1, c.v[2]), lo1 = M1 * c.v[2];
    c = U32x4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += W0;
    k1 += W1;
  }
  return c;
}

// The key of one stream of draws. `purpose` separates independent uses of
// one key (parameters, data shuffles) in counter word 1.
struct StreamKey {
  uint32_t k0 = 0, k1 = 0;
};

enum : uint32_t { kPurposeParams = 0, kPurposeData = 1 };
enum : uint32_t { kPurposeSgdOrder = 2 };  // SGD's minibatch order (kernels/sgd_step.h)
enum : uint32_t { kPurposeSearch = 3 };    // pattern and greedy search moves (host/optim/search.cpp)

// Block `block` (four 32-bit words) of draw `draw`.
GAC_HD U32x4 philox_block(StreamKey key, uint64_t draw, uint32_t block, uint32_t purpose = kPurposeParams) {
  return philox4x32_10(U32x4{{block, purpose, static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32)}},
                       key.k0, key.k1);
}

GAC_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Key of the parameter stream of (run seed, n, repeat, shard).
inline StreamKey make_stream_key(uint64_t seed, uint64_t n, uint64_t repeat, uint64_t shard) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ n);
  h = splitmix64(h ^ (repeat << 1));
  h = splitmix64(h ^ (shard << 2));
  return StreamKey{static_cast<uint32_t>(h), static_cast<uint32_t>(h >> 32)};
}

// Host-side deterministic generator for data handling (class choice,
// subsets, shuffles): same results on every platform, unlike std::shuffle.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t x = state_;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }
  // Unbiased integer in [0, bound), bound > 0.
  uint64_t below(uint64_t bound) {
    const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % bound);
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % bound;
  }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  template <class T>
  void shuffle(T* first, uint64_t count) {
    for (uint64_t i = count; i > 1; --i) {
      const uint64_t j = below(i);
      T tmp = first[i - 1];
      first[i - 1] = first[j];
      first[j] = tmp;
    }
  }

 private:
  uint64_t state_;
};

}  // namespace gac
