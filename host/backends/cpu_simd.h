// SIMD across draws for the CPU backend: lane l of every vector belongs to
// draw first + l. Each lane performs exactly the operations of the scalar
// reference (kernels/forward.h, include/gac/prior.h) in the same order, so
// results are bit-identical to it — the backend suite checks that.
//
// Layout: parameters and activations are "lane-minor": value i of all lanes
// is the W floats at [i * W, i * W + W). The example being evaluated is the
// same for every lane, so the first layer reads it as a broadcast scalar.
//
// Included by one .cpp per instruction set (cpu_simd_avx512.cpp, ...), each
// compiled for that ISA; cpu_backend.cpp picks one at run time.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gac/backend.h"
#include "kernels/forward.h"
#include "host/util/lane_math.h"
#include "kernels/search_moves.h"

namespace gac {

// Candidates of one greedy-search batch (kernels/search_moves.h:
// greedy_candidate(current, d, key, counter, slot, r)). A candidate whose
// partial loss sum already proves its mean loss above `reject_above` may
// stop early: it cannot win (the search keeps only a lower loss).
struct GreedyLanes {
  const float* current;
  int64_t d;
  StreamKey key;
  uint64_t counter;
  float r;
  float reject_above;
};

// One ISA's kernel. evaluate checks draws [first, first + count), appends
// perfect draws to `hits` in order and returns example evaluations; score
// fills the test accuracy and loss of each of `draws`; generate only
// generates the parameters of [first, first + count) (the bench's rate);
// greedy evaluates greedy candidates first_slot .. first_slot + lanes - 1 on
// the training set in full, the mean loss and correct count of each as
// evaluate_draw's, or loss +inf and correct -1 for one stopped early; for
// its tests, greedy_params writes those candidates' lane-minor parameters
// and box_muller is normals_from_bits on `lanes` pairs of words.
struct SimdKernel {
  const char* name;
  int lanes;
  uint64_t (*evaluate)(const StreamTask& task, uint64_t first, uint64_t count, std::vector<Hit>& hits);
  void (*score)(const StreamTask& task, const uint64_t* draws, size_t count, TestScore* out);
  void (*generate)(const StreamTask& task, uint64_t first, uint64_t count);
  void (*greedy)(const StreamTask& task, const GreedyLanes& g, int64_t first_slot, float* loss, int* correct);
  void (*greedy_params)(const GreedyLanes& g, int64_t first_slot, float* P);
  void (*box_muller)(const uint32_t* a, const uint32_t* b, float* z0, float* z1);
};

// Models the SIMD kernels handle: at most 64 classes (see lane_logits).
inline bool simd_supports(const ModelSpec& m) { return m.n_classes <= 64; }

// Parameters of draws[0 .. lanes) by the scalar generator, lane-minor into P:
// the normal and sphere priors. Defined in portable code (cpu_backend.cpp):
// a shared inline function instantiated in a file compiled for AVX-512 could
// be the copy the linker keeps for every caller, and fault on older CPUs.
void generate_lanes_scalar(const StreamTask& task, const uint64_t* draws, int lanes, float* P);

namespace simd {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// 64-byte aligned float buffer that only grows.
class AlignedBuffer {
 public:
  float* get(size_t count) {
    if (count > size_) {
      ptr_.reset(static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64)));
      if (!ptr_) throw std::bad_alloc();
      size_ = count;
    }
    return ptr_.get();
  }

 private:
  std::unique_ptr<float, FreeDeleter> ptr_;
  size_t size_ = 0;
};

// GCC vectors of W lanes (a vector_size that depends on a template
// parameter is not allowed, hence one specialization per width).
template <int W>
struct LaneVectors;
template <>
struct LaneVectors<8> {
  typedef float F __attribute__((vector_size(32)));
  typedef int32_t I __attribute__((vector_size(32)));
  typedef uint32_t U __attribute__((vector_size(32)));
};
template <>
struct LaneVectors<16> {
  typedef float F __attribute__((vector_size(64)));
  typedef int32_t I __attribute__((vector_size(64)));
  typedef uint32_t U __attribute__((vector_size(64)));
};

template <class V>
struct Kernel {
  using F = typename V::F;
  using I = typename V::I;
  static constexpr int W = V::W;

  // ---- parameters -------------------------------------------------------

  // Philox4x32-10 on W counters at once (include/gac/philox.h, lane-wise),
  // for NB blocks interleaved: one block's rounds form a serial chain of
  // multiply latencies, several independent chains keep the units busy.
  template <int NB>
  static void philox(I c[NB][4], uint32_t k0, uint32_t k1) {
    const I m0 = V::iset1(0xD2511F53u), m1 = V::iset1(0xCD9E8D57u);
    for (int round = 0; round < 10; ++round) {
      const I key0 = V::iset1(k0), key1 = V::iset1(k1);
      for (int b = 0; b < NB; ++b) {
        I hi0, lo0, hi1, lo1;
        V::mulhilo(c[b][0], m0, hi0, lo0);
        V::mulhilo(c[b][2], m1, hi1, lo1);
        c[b][0] = V::ixor3(hi1, c[b][1], key0);
        c[b][1] = lo1;
        c[b][2] = V::ixor3(hi0, c[b][3], key1);
        c[b][3] = lo0;
      }
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
  }

  // Writes the uniforms of NB consecutive Philox blocks from `block` on.
  template <int NB>
  static void uniform_blocks(const StreamTask& t, I lo, I hi, int block, const float* scale23, int& tensor, float* P) {
    I c[NB][4];
    for (int b = 0; b < NB; ++b) {
      c[b][0] = V::iset1(static_cast<uint32_t>(block + b));
      c[b][1] = V::iset1(kPurposeParams);
      c[b][2] = lo;
      c[b][3] = hi;
    }
    philox<NB>(c, t.key.k0, t.key.k1);
    const int p0 = 4 * block, p_end = std::min(p0 + 4 * NB, t.model.n_params);
    if (p_end <= t.prior.tensor_end[tensor]) {  // the common case: all in one tensor
      for (int p = p0; p < p_end; ++p)
        V::store(P + static_cast<size_t>(p) * W, V::uniform(c[(p - p0) / 4][(p - p0) % 4], scale23[tensor]));
      return;
    }
    for (int p = p0; p < p_end; ++p) {
      while (tensor + 1 < t.prior.n_tensors && p >= t.prior.tensor_end[tensor]) ++tensor;
      V::store(P + static_cast<size_t>(p) * W, V::uniform(c[(p - p0) / 4][(p - p0) % 4], scale23[tensor]));
    }
  }

  // Lane-minor parameters of draws[0 .. W).
  static void generate(const StreamTask& t, const uint64_t* draws, float* P) {
    const PriorSpec& prior = t.prior;
    const int n_params = t.model.n_params;
    if (!is_uniform_prior(prior.kind) || prior.heads > 1) {
      generate_lanes_scalar(t, draws, W, P);  // normal and sphere priors, nested sampling's pairs
      return;
    }
    const I lo = V::draw_lo(draws), hi = V::draw_hi(draws);
    float scale23[PriorSpec::kMaxTensors];
    for (int i = 0; i < prior.n_tensors; ++i) scale23[i] = mul_rn(prior.scale[i], 0x1.0p-23f);
    constexpr int kInterleave = 4;
    const int blocks = (n_params + 3) / 4;
    int tensor = 0, b = 0;
    for (; b + kInterleave <= blocks; b += kInterleave) uniform_blocks<kInterleave>(t, lo, hi, b, scale23, tensor, P);
    for (; b < blocks; ++b) uniform_blocks<1>(t, lo, hi, b, scale23, tensor, P);
  }

  // ---- layers -------------------------------------------------------------
  //
  // Two ways to fill the lanes, chosen at compile time:
  //  - across draws: lane l is draw first + l; parameters are lane vectors and
  //    the first layer's input (the example) a broadcast scalar;
  //  - across examples: lane j is example j of one draw `lane`; parameters are
  //    broadcasts of that draw's values and every input is a lane vector.
  // Either way each lane performs the scalar reference's operations in order.

  template <bool BcastIn>
  static F in_at(const float* in, size_t i) {
    if constexpr (BcastIn) return V::set1(in[i]);
    else return V::load(in + i * W);
  }

  template <bool BcastW>
  static F param(const float* P, int lane, size_t i) {
    if constexpr (BcastW) return V::set1(P[i * W + lane]);
    else return V::load(P + i * W);
  }

  template <bool BcastIn, bool BcastW, int B>
  static void dense_rows(const Layer& L, const float* P, int lane, const float* in, float* out, int o) {
    const int n_in = L.in_size();
    F acc[B];
    for (int k = 0; k < B; ++k) acc[k] = L.b_off >= 0 ? param<BcastW>(P, lane, L.b_off + o + k) : V::zero();
    const size_t w = static_cast<size_t>(L.w_off + o * n_in);
    for (int i = 0; i < n_in; ++i) {
      const F x = in_at<BcastIn>(in, i);
      for (int k = 0; k < B; ++k) acc[k] = V::fma(param<BcastW>(P, lane, w + static_cast<size_t>(k) * n_in + i), x, acc[k]);
    }
    for (int k = 0; k < B; ++k) V::store(out + static_cast<size_t>(o + k) * W, L.relu ? V::relu(acc[k]) : acc[k]);
  }

  template <bool BcastIn, bool BcastW>
  static void dense(const Layer& L, const float* P, int lane, const float* in, float* out) {
    int o = 0;
    for (; o + 4 <= L.out_c; o += 4) dense_rows<BcastIn, BcastW, 4>(L, P, lane, in, out, o);
    for (; o < L.out_c; ++o) dense_rows<BcastIn, BcastW, 1>(L, P, lane, in, out, o);
  }

  // OB output channels x XB output columns of one output row of a 5x5
  // convolution, accumulated in registers; each input row segment is loaded
  // once for all kx.
  template <bool BcastIn, bool BcastW, int OB, int XB>
  static void conv5_tile(const Layer& L, const float* P, int lane, const float* in, float* out, int oc, int oy, int ox) {
    constexpr int K = 5;
    F acc[OB][XB];
    for (int a = 0; a < OB; ++a) {
      const F bias = L.b_off >= 0 ? param<BcastW>(P, lane, L.b_off + oc + a) : V::zero();
      for (int j = 0; j < XB; ++j) acc[a][j] = bias;
    }
    for (int ic = 0; ic < L.in_c; ++ic)
      for (int ky = 0; ky < K; ++ky) {
        F x[XB + K - 1];
        const size_t row = static_cast<size_t>(ic * L.in_h + oy + ky) * L.in_w + ox;
        for (int j = 0; j < XB + K - 1; ++j) x[j] = in_at<BcastIn>(in, row + j);
        for (int kx = 0; kx < K; ++kx)
          for (int a = 0; a < OB; ++a) {
            const F w = param<BcastW>(P, lane, L.w_off + (((oc + a) * L.in_c + ic) * K + ky) * K + kx);
            for (int j = 0; j < XB; ++j) acc[a][j] = V::fma(w, x[j + kx], acc[a][j]);
          }
      }
    for (int a = 0; a < OB; ++a)
      for (int j = 0; j < XB; ++j)
        V::store(out + static_cast<size_t>(((oc + a) * L.out_h + oy) * L.out_w + ox + j) * W,
                 L.relu ? V::relu(acc[a][j]) : acc[a][j]);
  }

  // One output value, any kernel size.
  template <bool BcastIn, bool BcastW>
  static void conv_one(const Layer& L, const float* P, int lane, const float* in, float* out, int oc, int oy, int ox) {
    const int K = L.k;
    F acc = L.b_off >= 0 ? param<BcastW>(P, lane, L.b_off + oc) : V::zero();
    for (int ic = 0; ic < L.in_c; ++ic)
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx) {
          const F w = param<BcastW>(P, lane, L.w_off + ((oc * L.in_c + ic) * K + ky) * K + kx);
          acc = V::fma(w, in_at<BcastIn>(in, static_cast<size_t>(ic * L.in_h + oy + ky) * L.in_w + ox + kx), acc);
        }
    V::store(out + static_cast<size_t>((oc * L.out_h + oy) * L.out_w + ox) * W, L.relu ? V::relu(acc) : acc);
  }

  template <bool BcastIn, bool BcastW, int OB>
  static void conv_channels(const Layer& L, const float* P, int lane, const float* in, float* out, int oc) {
    constexpr int XB = 4;
    for (int oy = 0; oy < L.out_h; ++oy) {
      int ox = 0;
      if (L.k == 5)
        for (; ox + XB <= L.out_w; ox += XB) conv5_tile<BcastIn, BcastW, OB, XB>(L, P, lane, in, out, oc, oy, ox);
      for (; ox < L.out_w; ++ox)
        for (int a = 0; a < OB; ++a) conv_one<BcastIn, BcastW>(L, P, lane, in, out, oc + a, oy, ox);
    }
  }

  template <bool BcastIn, bool BcastW>
  static void conv(const Layer& L, const float* P, int lane, const float* in, float* out) {
    int oc = 0;
    for (; oc + 4 <= L.out_c; oc += 4) conv_channels<BcastIn, BcastW, 4>(L, P, lane, in, out, oc);
    for (; oc + 3 <= L.out_c; oc += 3) conv_channels<BcastIn, BcastW, 3>(L, P, lane, in, out, oc);
    for (; oc + 2 <= L.out_c; oc += 2) conv_channels<BcastIn, BcastW, 2>(L, P, lane, in, out, oc);  // LeNet w1's 6
    for (; oc < L.out_c; ++oc) conv_channels<BcastIn, BcastW, 1>(L, P, lane, in, out, oc);
  }

  static void maxpool2(const Layer& L, const float* in, float* out) {
    for (int c = 0; c < L.out_c; ++c)
      for (int y = 0; y < L.out_h; ++y)
        for (int x = 0; x < L.out_w; ++x) {
          const float* r0 = in + static_cast<size_t>((c * L.in_h + 2 * y) * L.in_w + 2 * x) * W;
          const float* r1 = r0 + static_cast<size_t>(L.in_w) * W;
          const F m = V::max2(V::max2(V::load(r0), V::load(r0 + W)), V::max2(V::load(r1), V::load(r1 + W)));
          V::store(out + static_cast<size_t>((c * L.out_h + y) * L.out_w + x) * W, m);
        }
  }

  template <bool BcastIn, bool BcastW>
  static void layer(const Layer& L, const float* P, int lane, const float* in, float* out) {
    if (L.kind == LayerKind::dense) dense<BcastIn, BcastW>(L, P, lane, in, out);
    else if (L.kind == LayerKind::conv) conv<BcastIn, BcastW>(L, P, lane, in, out);
    else maxpool2(L, in, out);
  }

  // Across draws: all layers on one example `x`; returns lane-minor logits.
  static const float* forward_draws(const ModelSpec& m, const float* P, const float* x, float* buf0, float* buf1) {
    const float* in = x;
    float* bufs[2] = {buf0, buf1};
    for (int l = 0; l < m.n_layers; ++l) {
      float* out = bufs[l & 1];
      l == 0 ? layer<true, false>(m.layers[l], P, -1, in, out) : layer<false, false>(m.layers[l], P, -1, in, out);
      in = out;
    }
    return in;
  }

  // Across examples: draw `lane` on W examples given lane-minor in `xs`.
  static const float* forward_examples(const ModelSpec& m, const float* P, int lane, const float* xs, float* buf0,
                                       float* buf1) {
    const float* in = xs;
    float* bufs[2] = {buf0, buf1};
    for (int l = 0; l < m.n_layers; ++l) {
      float* out = bufs[l & 1];
      layer<false, true>(m.layers[l], P, lane, in, out);
      in = out;
    }
    return in;
  }

  // Lanes whose argmax (first maximum) equals their lane of `labels`.
  static uint32_t argmax_is(const float* z, int n_classes, F labels) {
    F best = V::load(z);
    F index = V::zero();
    for (int c = 1; c < n_classes; ++c) {
      const F v = V::load(z + static_cast<size_t>(c) * W);
      const typename V::M greater = V::gt(v, best);
      best = V::blend(greater, v, best);
      index = V::blend(greater, V::set1(static_cast<float>(c)), index);
    }
    return V::eq_bits(index, labels);
  }

  // Product of (weight norm / divisor) per lane, as weight_norm_product().
  static void norm_products(const ModelSpec& m, const float* P, double out[W]) {
    for (int l = 0; l < W; ++l) out[l] = 1.0;
    for (int i = 0; i < m.n_layers; ++i) {
      const Layer& L = m.layers[i];
      if (L.w_off < 0) continue;
      alignas(64) double sq[W];
      V::sum_squares(P + static_cast<size_t>(L.w_off) * W, L.weight_count(), sq);
      for (int l = 0; l < W; ++l) out[l] = out[l] * (std::sqrt(sq[l]) / static_cast<double>(m.norm_divisor));
    }
  }

  // ---- one group of W draws -------------------------------------------------
  //
  // Early rejection in two stages. Stage 1 runs the first kStage1 examples
  // across the W draws: with classes dealt round-robin this rejects most
  // draws (those predicting a single class, say). Lanes are not re-packed,
  // so a vector keeps paying for its longest-lived lane; when few lanes
  // survive, stage 2 takes each survivor alone and runs its remaining
  // examples across the lanes, W examples per pass, stopping at the first
  // pass with a miss.
  static constexpr int kStage1 = 2;

  struct Scratch {
    AlignedBuffer params, buf0, buf1, logits, examples, labels;
  };

  // Examples [from, size) of `ex`, lane-minor: pass k holds examples
  // from + k*W + j in lane j (labels -1 past the end: never correct).
  static void transpose_examples(const Examples& ex, int from, int D, AlignedBuffer& xbuf, AlignedBuffer& ybuf) {
    const int n = static_cast<int>(ex.size());
    const int passes = (n - from + W - 1) / W;
    float* xs = xbuf.get(static_cast<size_t>(passes) * D * W);
    float* ys = ybuf.get(static_cast<size_t>(passes) * W);
    for (int k = 0; k < passes; ++k)
      for (int j = 0; j < W; ++j) {
        const int e = from + k * W + j;
        ys[k * W + j] = e < n ? static_cast<float>(ex.y[e]) : -1.0f;
        for (int i = 0; i < D; ++i)
          xs[(static_cast<size_t>(k) * D + i) * W + j] = e < n ? ex.x[static_cast<size_t>(e) * D + i] : 0.0f;
      }
  }

  // Stage 2 for draw `lane`: true if it classifies every remaining example;
  // adds the example evaluations the scalar reference would count.
  static bool survives_rest(const StreamTask& t, const float* P, int lane, Scratch& s, float* logits, float* b0,
                            float* b1, uint64_t& examples) {
    const ModelSpec& m = t.model;
    const int n = static_cast<int>(t.train.size()), C = m.n_classes, D = m.in_size();
    for (int k = 0, e0 = kStage1; e0 < n; ++k, e0 += W) {
      const int in_pass = std::min(W, n - e0);
      const float* z = forward_examples(m, P, lane, s.examples.get(0) + static_cast<size_t>(k) * D * W, b0, b1);
      for (int j = 0; j < in_pass; ++j)
        for (int c = 0; c < C; ++c) logits[(static_cast<size_t>(e0 + j) * C + c) * W + lane] = z[c * W + j];
      const uint32_t in_mask = in_pass >= 32 ? ~0u : (1u << in_pass) - 1u;
      const uint32_t missed = in_mask & ~argmax_is(z, C, V::load(s.labels.get(0) + static_cast<size_t>(k) * W));
      if (missed) {
        examples += std::countr_zero(missed) + 1;
        return false;
      }
      examples += in_pass;
    }
    return true;
  }

  static uint64_t evaluate_group(const StreamTask& t, uint64_t first, int count, Scratch& s, std::vector<Hit>& hits) {
    const ModelSpec& m = t.model;
    const int n = static_cast<int>(t.train.size()), C = m.n_classes, D = m.in_size();
    float* P = s.params.get(static_cast<size_t>(m.n_params) * W);
    float* b0 = s.buf0.get(static_cast<size_t>(m.max_activation) * W);
    float* b1 = s.buf1.get(static_cast<size_t>(m.max_activation) * W);
    float* logits = s.logits.get(static_cast<size_t>(n) * C * W);
    uint64_t draws[W];
    for (int l = 0; l < W; ++l) draws[l] = first + l;
    generate(t, draws, P);
    const uint32_t valid = count >= 32 ? ~0u : (1u << count) - 1u;
    uint32_t alive = valid & (W == 32 ? ~0u : (1u << W) - 1u);
    uint64_t examples = 0;
    int e = 0;
    for (; e < n; ++e) {
      // Stage 2 pays a pass per survivor; staying across draws pays a pass
      // per remaining example for the whole vector: switch when few survive.
      if (t.early_reject && e == kStage1 && std::popcount(alive) <= W / 4) break;
      examples += t.early_reject ? std::popcount(alive) : std::popcount(valid);
      const float* z = forward_draws(m, P, t.train.x.data() + static_cast<size_t>(e) * D, b0, b1);
      std::copy(z, z + static_cast<size_t>(C) * W, logits + static_cast<size_t>(e) * C * W);
      alive &= argmax_is(z, C, V::set1(static_cast<float>(t.train.y[e])));
      if (t.early_reject && !alive) break;
    }
    for (uint32_t a = e == kStage1 && e < n ? alive : 0; a; a &= a - 1) {
      const int l = std::countr_zero(a);
      if (!survives_rest(t, P, l, s, logits, b0, b1, examples)) alive &= ~(1u << l);
    }
    if (!alive) return examples;
    alignas(64) double products[W];
    if (t.loss == LossKind::normalized) norm_products(m, P, products);
    float lane_logits[64];
    for (uint32_t a = alive; a; a &= a - 1) {
      const int l = std::countr_zero(a);
      const float scale = t.loss == LossKind::raw ? 1.0f : static_cast<float>(1.0 / products[l]);
      float sum = 0.0f;
      for (int e = 0; e < n; ++e) {
        for (int c = 0; c < C; ++c) lane_logits[c] = logits[(static_cast<size_t>(e) * C + c) * W + l];
        sum = add_rn(sum, cross_entropy(lane_logits, C, t.train.y[e], scale));
      }
      const float loss = sum / static_cast<float>(n);
      hits.push_back({first + l, loss, find_bin(t.bin_edges.data(), static_cast<int>(t.bin_edges.size()), loss)});
    }
    return examples;
  }

  static uint64_t evaluate(const StreamTask& t, uint64_t first, uint64_t count, std::vector<Hit>& hits) {
    thread_local Scratch s;
    if (t.early_reject && static_cast<int>(t.train.size()) > kStage1)
      transpose_examples(t.train, kStage1, t.model.in_size(), s.examples, s.labels);
    uint64_t examples = 0;
    for (uint64_t done = 0; done < count; done += W)
      examples += evaluate_group(t, first + done, static_cast<int>(std::min<uint64_t>(W, count - done)), s, hits);
    return examples;
  }

  // The parameters of draws [first, first + count), W at a time, into this
  // thread's scratch (which outlives the call, so the stores stay).
  static void generate_range(const StreamTask& t, uint64_t first, uint64_t count) {
    thread_local Scratch s;
    float* P = s.params.get(static_cast<size_t>(t.model.n_params) * W);
    for (uint64_t done = 0; done < count; done += W) {
      uint64_t draws[W];
      for (int l = 0; l < W; ++l) draws[l] = first + done + l;
      generate(t, draws, P);
    }
  }

  // Test accuracy and loss of `draws`, W at a time, each run across the test
  // examples (W per pass). The same sums as the scalar scoring, in order.
  static void score(const StreamTask& t, const uint64_t* draws, size_t count, TestScore* out) {
    thread_local Scratch s;
    const ModelSpec& m = t.model;
    const int n = static_cast<int>(t.test.size()), C = m.n_classes, D = m.in_size();
    if (n == 0) {
      for (size_t i = 0; i < count; ++i) out[i] = TestScore{0.0, 0.0};
      return;
    }
    transpose_examples(t.test, 0, D, s.examples, s.labels);
    float* P = s.params.get(static_cast<size_t>(m.n_params) * W);
    float* b0 = s.buf0.get(static_cast<size_t>(m.max_activation) * W);
    float* b1 = s.buf1.get(static_cast<size_t>(m.max_activation) * W);
    for (size_t g = 0; g < count; g += W) {
      const int lanes = static_cast<int>(std::min<size_t>(W, count - g));
      uint64_t group[W];
      for (int l = 0; l < W; ++l) group[l] = draws[g + std::min(l, lanes - 1)];
      generate(t, group, P);
      alignas(64) double products[W];
      if (t.loss == LossKind::normalized) norm_products(m, P, products);
      for (int l = 0; l < lanes; ++l) {
        const float scale = t.loss == LossKind::raw ? 1.0f : static_cast<float>(1.0 / products[l]);
        int correct = 0;
        double loss = 0;
        float z_lane[64];
        for (int k = 0, e0 = 0; e0 < n; ++k, e0 += W) {
          const float* z = forward_examples(m, P, l, s.examples.get(0) + static_cast<size_t>(k) * D * W, b0, b1);
          const uint32_t in_pass = std::min(W, n - e0);
          const uint32_t right = argmax_is(z, C, V::load(s.labels.get(0) + static_cast<size_t>(k) * W));
          correct += std::popcount(right & (in_pass >= 32 ? ~0u : (1u << in_pass) - 1u));
          for (uint32_t j = 0; j < in_pass; ++j) {
            for (int c = 0; c < C; ++c) z_lane[c] = z[c * W + j];
            loss += cross_entropy(z_lane, C, t.test.y[e0 + j], scale);
          }
        }
        out[g + l] = TestScore{static_cast<double>(correct) / n, loss / n};
      }
    }
  }

  // ---- greedy search candidates -----------------------------------------
  //
  // Lane l is candidate first_slot + l. GCC vector types give lane-wise IEEE
  // operators (the build never contracts a * b + c into an FMA), so each
  // lane performs the scalar steps of kernels/search_moves.h exactly.
  using VF = typename LaneVectors<W>::F;
  using VI = typename LaneVectors<W>::I;
  using VU = typename LaneVectors<W>::U;

  static VF vfma(VF a, VF b, VF c) { return (VF)V::fma((F)a, (F)b, (F)c); }
  static VF splat(float x) { return x - VF{}; }  // x - (+0) is x, -0 included

  // normals_from_bits (gac/prior.h), lane-wise.
  static void normals(VU a, VU b, VF& z0, VF& z1) {
    // A closure, not a function pointer: the compiler inlines it into the polynomials.
    const auto fma = [](VF a, VF b, VF c) { return vfma(a, b, c); };
    const VF u1 = __builtin_convertvector((VI)((a >> 8) + 1u), VF) * 0x1.0p-24f;
    const VF u2 = __builtin_convertvector((VI)(b >> 8), VF) * 0x1.0p-24f;
    const VF r = (VF)V::sqrt((F)(-2.0f * lane_math::log<VF, VI>(u1, fma)));
    VF c, s;
    lane_math::sincos_2pi<VF, VI>(u2, c, s, fma);
    z0 = r * c;
    z1 = r * s;
  }

  // Lane-minor parameters of greedy candidates first_slot .. first_slot + W - 1:
  // Philox blocks slot * ceil(d / 4) + b, kNB blocks interleaved.
  static void greedy_generate(const GreedyLanes& g, int64_t first_slot, float* P) {
    constexpr int kNB = 4;
    const int64_t blocks = (g.d + 3) / 4;
    VU slot_base;
    for (int l = 0; l < W; ++l) slot_base[l] = static_cast<uint32_t>((first_slot + l) * blocks);
    const VF r = splat(g.r);
    for (int64_t b0 = 0; b0 < blocks; b0 += kNB) {
      const int nb = static_cast<int>(std::min<int64_t>(kNB, blocks - b0));
      I c[kNB][4];
      for (int k = 0; k < kNB; ++k) {
        c[k][0] = (I)(slot_base + static_cast<uint32_t>(b0 + k));
        c[k][1] = V::iset1(kPurposeSearch);
        c[k][2] = V::iset1(static_cast<uint32_t>(g.counter));
        c[k][3] = V::iset1(static_cast<uint32_t>(g.counter >> 32));
      }
      philox<kNB>(c, g.key.k0, g.key.k1);
      for (int k = 0; k < nb; ++k) {
        VF z[4];
        normals((VU)c[k][0], (VU)c[k][1], z[0], z[1]);
        normals((VU)c[k][2], (VU)c[k][3], z[2], z[3]);
        for (int j = 0; j < 4; ++j) {
          const int64_t p = 4 * (b0 + k) + j;
          if (p < g.d) V::store(P + p * W, (F)(splat(g.current[p]) + z[j] * r));
        }
      }
    }
  }

  // Dense layers on kE examples at once: each weight vector is loaded once
  // for kE examples. A LeNet w1's fc1 holds 30,720 weights, 2 MB in lanes,
  // more than L2: one example at a time would stream it from L3 per example.
  static constexpr int kE = 4;

  template <bool BcastIn, int B, int E>
  static void dense_rows_examples(const Layer& L, const float* P, const float* const* in, float* const* out, int o) {
    const int n_in = L.in_size();
    F acc[E][B];
    for (int k = 0; k < B; ++k) {
      const F bias = L.b_off >= 0 ? V::load(P + static_cast<size_t>(L.b_off + o + k) * W) : V::zero();
      for (int e = 0; e < E; ++e) acc[e][k] = bias;
    }
    const float* w = P + static_cast<size_t>(L.w_off + o * n_in) * W;
    for (int i = 0; i < n_in; ++i) {
      F x[E];
      for (int e = 0; e < E; ++e) x[e] = in_at<BcastIn>(in[e], i);
      for (int k = 0; k < B; ++k) {
        const F wk = V::load(w + (static_cast<size_t>(k) * n_in + i) * W);
        for (int e = 0; e < E; ++e) acc[e][k] = V::fma(wk, x[e], acc[e][k]);
      }
    }
    for (int e = 0; e < E; ++e)
      for (int k = 0; k < B; ++k)
        V::store(out[e] + static_cast<size_t>(o + k) * W, L.relu ? V::relu(acc[e][k]) : acc[e][k]);
  }

  template <bool BcastIn, int E>
  static void dense_examples(const Layer& L, const float* P, const float* const* in, float* const* out) {
    int o = 0;
    for (; o + 4 <= L.out_c; o += 4) dense_rows_examples<BcastIn, 4, E>(L, P, in, out, o);
    for (; o < L.out_c; ++o) dense_rows_examples<BcastIn, 1, E>(L, P, in, out, o);
  }

  // forward_draws on E examples from x (D floats each): the layers before
  // the trailing dense ones per example, those on all E at once. Example
  // e's buffers are bufs[0..1] + e * stride; returns its logits in z[e].
  template <int E>
  static void forward_draws_examples(const ModelSpec& m, const float* P, const float* x, int D, float* const bufs[2],
                                     size_t stride, const float** z) {
    int dense_from = m.n_layers;
    while (dense_from > 0 && m.layers[dense_from - 1].kind == LayerKind::dense) --dense_from;
    const float* in[E];
    float* out[E];
    for (int e = 0; e < E; ++e) {
      in[e] = x + static_cast<size_t>(e) * D;
      for (int l = 0; l < dense_from; ++l) {
        float* o = bufs[l & 1] + e * stride;
        l == 0 ? layer<true, false>(m.layers[l], P, -1, in[e], o) : layer<false, false>(m.layers[l], P, -1, in[e], o);
        in[e] = o;
      }
    }
    for (int l = dense_from; l < m.n_layers; ++l) {
      for (int e = 0; e < E; ++e) out[e] = bufs[l & 1] + e * stride;
      l == 0 ? dense_examples<true, E>(m.layers[l], P, in, out) : dense_examples<false, E>(m.layers[l], P, in, out);
      for (int e = 0; e < E; ++e) in[e] = out[e];
    }
    for (int e = 0; e < E; ++e) z[e] = in[e];
  }

  // Mean training loss and correct count of the W candidates in P, as
  // evaluate_draw without early rejection: the loss summed in example order.
  // A lane stops once its partial sum / n exceeds reject_above (float adds
  // of the non-negative cross-entropies never decrease a sum, and rounding
  // a quotient is monotone, so its mean loss would too).
  static void score_lanes(const StreamTask& t, const float* P, float reject_above, Scratch& s, float* loss,
                          int* correct) {
    const ModelSpec& m = t.model;
    const int n = static_cast<int>(t.train.size()), C = m.n_classes, D = m.in_size();
    const size_t stride = static_cast<size_t>(m.max_activation) * W;
    float* const bufs[2] = {s.buf0.get(stride * kE), s.buf1.get(stride * kE)};
    alignas(64) double products[W];
    if (t.loss == LossKind::normalized) norm_products(m, P, products);
    float scale[W], sum[W];
    for (int l = 0; l < W; ++l) {
      scale[l] = t.loss == LossKind::raw ? 1.0f : static_cast<float>(1.0 / products[l]);
      sum[l] = 0.0f;
      correct[l] = 0;
    }
    const float nf = static_cast<float>(n);
    uint32_t alive = W == 32 ? ~0u : (1u << W) - 1u;
    float lane_logits[64];
    for (int e0 = 0; e0 < n && alive; e0 += kE) {
      const int ne = std::min(kE, n - e0);
      const float* z[kE];
      const float* x = t.train.x.data() + static_cast<size_t>(e0) * D;
      if (ne == kE) forward_draws_examples<kE>(m, P, x, D, bufs, stride, z);
      else
        for (int e = 0; e < ne; ++e) {  // each in its own buffers: z[e] must outlive the next
          float* const own[2] = {bufs[0] + e * stride, bufs[1] + e * stride};
          forward_draws_examples<1>(m, P, x + static_cast<size_t>(e) * D, D, own, stride, z + e);
        }
      for (int e = 0; e < ne && alive; ++e) {
        const int32_t y = t.train.y[e0 + e];
        const uint32_t right = argmax_is(z[e], C, V::set1(static_cast<float>(y)));
        for (uint32_t a = alive; a; a &= a - 1) {
          const int l = std::countr_zero(a);
          for (int c = 0; c < C; ++c) lane_logits[c] = z[e][c * W + l];
          sum[l] = add_rn(sum[l], cross_entropy(lane_logits, C, y, scale[l]));
          correct[l] += (right >> l) & 1u;
          if (sum[l] / nf > reject_above) alive &= ~(1u << l);
        }
      }
    }
    for (int l = 0; l < W; ++l) {
      const bool kept = (alive >> l) & 1u;
      loss[l] = kept ? sum[l] / nf : HUGE_VALF;
      if (!kept) correct[l] = -1;
    }
  }

  static void box_muller(const uint32_t* a, const uint32_t* b, float* z0, float* z1) {
    VU va, vb;
    VF v0, v1;
    std::memcpy(&va, a, sizeof va);
    std::memcpy(&vb, b, sizeof vb);
    normals(va, vb, v0, v1);
    std::memcpy(z0, &v0, sizeof v0);
    std::memcpy(z1, &v1, sizeof v1);
  }

  static void greedy(const StreamTask& t, const GreedyLanes& g, int64_t first_slot, float* loss, int* correct) {
    thread_local Scratch s;
    float* P = s.params.get(static_cast<size_t>(t.model.n_params) * W);
    greedy_generate(g, first_slot, P);
    score_lanes(t, P, g.reject_above, s, loss, correct);
  }
};

}  // namespace simd

// The kernel `name` names (auto, avx512, avx2; nullptr for scalar, or for
// auto on a CPU without them); an error for one this CPU or build lacks.
const SimdKernel* simd_kernel_named(const std::string& name);

// Each ISA's kernel, or nullptr when the build did not compile it (the
// caller also checks that the CPU runs it).
const SimdKernel* simd_kernel_avx512();
const SimdKernel* simd_kernel_avx2();

}  // namespace gac
