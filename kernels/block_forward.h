// One draw evaluated by a whole thread block (the CUDA path for LeNet and any
// model with a convolution; kernels/search_kernels.h runs it).
//
// Why a block per draw: a LeNet draw has 11,074 parameters and 92k
// multiply-adds per example, far too much state for one thread, while the
// block can hold the draw's parameters in shared memory ("the image") and
// spread every layer over its threads. Each output value is still one
// thread's sequential fma chain in kernels/forward.h's order (bias, then ic,
// ky, kx / inputs in memory order), so the logits are bit-identical to the
// CPU's; only which thread computes which output, and where values sit in
// shared memory, changes.
//
// Shared memory is read in 16-byte vectors wherever the order allows, and
// laid out so that those reads are free of bank conflicts (on the GPU a
// warp's 128-bit load is served a quarter-warp at a time: eight lanes must
// fall into eight different 16-byte bank groups):
//   - the image is the parameter vector in state_dict order, each tensor
//     placed at an index congruent to its parameter offset mod 4, so every
//     Philox block of four parameters that stays inside one row is one
//     aligned 16-byte store; dense weight rows are padded to a stride that is
//     4 mod 8, so output o's row is read four weights at a time and the eight
//     rows of a quarter-warp start in eight different bank groups;
//   - each step writes its output in the layout its consumer reads (an
//     ActLayout): a dense layer's input starts at the same index mod 4 as its
//     weights; a fused conv + pool reads rows padded to a multiple of 4 with
//     a stride chosen (make_block_plan) so that its 16-byte patch loads are
//     conflict-free.
//
// A convolution followed by a 2x2 max pool (LeNet's pattern, 5x5 kernels)
// runs fused and register-tiled: each thread computes two neighbouring pooled
// outputs of one channel (2 x 4 convolution outputs) from a 6 x 8 input
// patch loaded two vectors per row, with its channel's 25 weights in
// registers, so each loaded value feeds up to 10 fma; the item's coordinates
// come from multiply-high reciprocals the plan precomputes (no run-time
// division). Each convolution output still receives bias, then ic, ky, kx in
// order, then ReLU and the pool exactly as maxpool2_forward.
//
// Warps and schedulers: an SM issues from four schedulers, warp w of a block
// on scheduler w % 4. A step with fewer items than threads (LeNet's fc
// layers: 60, 42, 2 outputs) would always load the first warps, so the block
// kernel rotates every step's items by the draw's slot mod 4 warps
// (step_thread): over any four draws each scheduler gets the same work.
//
// Every function takes the thread's index `tid` among `threads` and splits
// its work over them; block_sync() separates steps. That makes the code run
// unchanged on the host: as a block of one thread (tid = 0, threads = 1,
// block_sync a no-op), or as host threads meeting at a real barrier
// (tests/emulated_device.cpp), which is how CI checks it without a GPU.
#pragma once

#include <algorithm>

#include "gac/hd.h"
#include "gac/model.h"
#include "gac/prior.h"
#include "kernels/device_intrinsics.h"
#include "kernels/forward.h"

namespace gac {

// Full unrolling of the fixed-size register loops: device code only (the
// host compiler does not know the pragma).
#if defined(__CUDA_ARCH__)
#define GAC_UNROLL _Pragma("unroll")
#else
#define GAC_UNROLL
#endif

#if !defined(__CUDA_ARCH__)
// On the host, the barrier of the emulated block this thread plays in
// (tests/emulated_device.cpp); null for a block of one thread.
struct HostBlockBarrier {
  virtual void arrive_and_wait() = 0;

 protected:
  ~HostBlockBarrier() = default;
};
inline thread_local HostBlockBarrier* host_block_barrier = nullptr;
#endif

GAC_HD void block_sync() {
#if defined(__CUDA_ARCH__)
  __syncthreads();
#else
  if (host_block_barrier) host_block_barrier->arrive_and_wait();
#endif
}

// Where a step's output (= the next step's input) sits in its activation
// buffer: value (c, y, x) at base + c * plane + y * row + x.
struct ActLayout {
  int32_t base = 0;
  int32_t plane = 0;
  int32_t row = 0;
  GAC_HD int32_t at(int c, int y, int x) const { return base + c * plane + y * row + x; }
};

// q = n / d for 0 <= n < 2^16 and 1 <= d < 2^15 without a division:
// mulhi(2n, floor(2^31 / d) + 1) is exact while 2 n d < 2^32 (the error
// 2 n e / 2^32, e < 1, stays under 1/d).
struct Reciprocal {
  uint32_t magic = 0;
  int32_t d = 1;
};
inline Reciprocal make_reciprocal(int d) {
  return Reciprocal{static_cast<uint32_t>((uint64_t{1} << 31) / static_cast<uint32_t>(d) + 1), d};
}
GAC_HD int divide(int n, const Reciprocal& r) {
  return static_cast<int>(mulhi32(static_cast<uint32_t>(n) << 1, r.magic));
}

// Where each layer's parameters sit in the image, and how it runs.
struct BlockLayer {
  int32_t w_img = -1;     // weights (-1: none)
  int32_t w_stride = 0;   // dense: padded row length (4 mod 8)
  int32_t b_img = -1;     // bias (-1: none)
  int32_t fuse_pool = 0;  // conv 5x5 followed by maxpool2: one fused step (the pool layer is skipped)
  ActLayout out;           // where the step writes its output
  Reciprocal per_channel;  // fused conv + pool: items (pooled output pairs) per channel
  Reciprocal pairs;        // fused conv + pool: pairs per pooled row
};

// One tensor of the parameter vector (state_dict order: PriorSpec's tensors)
// and where it sits in the image: rows of `row` parameters, `stride` floats
// apart (dense weights: the padded rows; any other tensor is one row).
struct BlockSegment {
  int32_t end = 0;     // parameter index past the tensor's last
  int32_t img = 0;     // image index of its first parameter
  int32_t row = 1;     // parameters per row
  int32_t stride = 1;  // image floats from one row to the next
};

struct BlockPlan {
  static constexpr int kFusedK = 5;  // kernel size of the fused conv+pool step
  static constexpr int kMaxSegments = 2 * ModelSpec::kMaxLayers;
  BlockLayer layers[ModelSpec::kMaxLayers];
  BlockSegment segments[kMaxSegments];
  int32_t n_segments = 0;
  int32_t image_floats = 0;  // parameter image (a multiple of 4: images stay 16-byte aligned)
  int32_t act_floats = 0;    // activation buffer 0, the larger (a multiple of 4)
  int32_t act1_floats = 0;   // activation buffer 1 (a multiple of 4)
  int32_t in_floats = 0;     // one staged example (a multiple of 4)
  ActLayout in;              // the staged example's layout (the first step's input)
  int32_t resident_example = 1;  // block kernels: example 0 stays in shared memory, the next one is prefetched
                                 // (0: one buffer, each example staged when it is needed)
  Reciprocal in_rows;        // staging a padded layout: source rows per channel
  Reciprocal in_row_words;   // staging a padded layout: copies per source row
};

// The step that starts at layer l fuses a pool after it.
inline bool fusable(const ModelSpec& m, int l) {
  const Layer& L = m.layers[l];
  return L.kind == LayerKind::conv && L.k == BlockPlan::kFusedK && l + 1 < m.n_layers &&
         m.layers[l + 1].kind == LayerKind::maxpool2 && m.layers[l + 1].in_c == L.out_c &&
         m.layers[l + 1].in_h == L.out_h && m.layers[l + 1].in_w == L.out_w;
}

// Row stride of a fused conv + pool's input: a multiple of 4 wide enough for
// every pair's 8-column patch, chosen among the next eight candidates for the
// fewest 16-byte bank-group conflicts of its patch loads (each quarter-warp
// of eight consecutive items: pair fastest, then pooled row, then channel).
inline int tiled_input_row(const Layer& conv, const Layer& pool) {
  const int pairs = (pool.out_w + 1) / 2, per_channel = pool.out_h * pairs;
  const int items = conv.out_c * per_channel;
  int least = (std::max(conv.in_w, 4 * pairs + 4) + 3) / 4 * 4, best = least, best_cost = -1;
  for (int row = least; row < least + 32; row += 4) {
    int cost = 0;
    for (int q = 0; q * 8 < items && q < 64; ++q) {
      int chunks[8], n = 0;
      for (int i = q * 8; i < q * 8 + 8 && i < items; ++i) {
        const int rest = i % per_channel, chunk = (rest / pairs) * 2 * row / 4 + rest % pairs;
        bool seen = false;
        for (int k = 0; k < n; ++k) seen = seen || chunks[k] == chunk;
        if (!seen) chunks[n++] = chunk;
      }
      int worst = 0;
      for (int g = 0; g < 8; ++g) {
        int in_group = 0;
        for (int k = 0; k < n; ++k) in_group += chunks[k] % 8 == g;
        worst = std::max(worst, in_group);
      }
      cost += worst;
    }
    if (best_cost < 0 || cost < best_cost) best = row, best_cost = cost;
  }
  return best;
}

// The layout in which layer l (a step's first layer) wants its input of
// c x h x w values.
inline ActLayout input_layout(const ModelSpec& m, const BlockPlan& plan, int l, bool fused) {
  const Layer& L = m.layers[l];
  ActLayout a;
  a.row = L.in_w;
  if (fused) a.row = tiled_input_row(L, m.layers[l + 1]);
  a.plane = a.row * L.in_h;
  if (L.kind == LayerKind::dense) a.base = plan.layers[l].w_img & 3;  // in[i] aligned like w[i]
  return a;
}

// The image and layouts of model m; fuse: run each conv 5x5 + maxpool2 as
// one step (false: the generic steps).
inline BlockPlan make_block_plan(const ModelSpec& m, bool fuse = true) {
  BlockPlan plan;
  int32_t at = 0;
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    BlockLayer& B = plan.layers[l];
    if (L.w_off >= 0) {
      at += (L.w_off - at) & 3;  // congruent to the parameter offset mod 4
      B.w_img = at;
      BlockSegment& S = plan.segments[plan.n_segments++];
      S.end = L.w_off + L.weight_count();
      S.img = at;
      if (L.kind == LayerKind::dense) {
        B.w_stride = (L.in_size() + 3) / 4 * 4;
        if (B.w_stride % 8 == 0) B.w_stride += 4;  // 4 mod 8: conflict-free vector reads of a column
        S.row = L.in_size();
        S.stride = B.w_stride;
        at += L.out_c * B.w_stride;
      } else {
        S.row = S.stride = L.weight_count();
        at += L.weight_count();
      }
    }
    if (L.b_off >= 0) {
      at += (L.b_off - at) & 3;
      B.b_img = at;
      BlockSegment& S = plan.segments[plan.n_segments++];
      S.end = L.b_off + L.out_c;
      S.img = at;
      S.row = S.stride = L.out_c;
      at += L.out_c;
    }
  }
  plan.image_floats = (at + 3) / 4 * 4;
  // Each step writes in its consumer's layout; the last one plainly (the logits).
  ActLayout* producer = &plan.in;
  int32_t act_size[2] = {0, 0};  // floats each activation buffer must hold
  int last_step = 0;
  for (int l = 0, step = 0; l < m.n_layers; ++l, ++step) {
    const bool fused = fuse && fusable(m, l);
    BlockLayer& B = plan.layers[l];
    B.fuse_pool = fused ? 1 : 0;
    const Layer& L = m.layers[l];
    *producer = input_layout(m, plan, l, fused);
    const int32_t floats = producer->base + L.in_c * producer->plane;
    if (step == 0) plan.in_floats = (floats + 3) / 4 * 4;
    else act_size[(step - 1) & 1] = std::max(act_size[(step - 1) & 1], floats);
    if (fused) {
      const Layer& P = m.layers[l + 1];
      const int pairs = (P.out_w + 1) / 2;
      B.per_channel = make_reciprocal(P.out_h * pairs);
      B.pairs = make_reciprocal(pairs);
    }
    if (fused) ++l;
    producer = &B.out;
    last_step = step;
  }
  const Layer& last = m.layers[m.n_layers - 1];
  *producer = ActLayout{0, last.out_h * last.out_w, last.out_w};
  act_size[last_step & 1] = std::max(act_size[last_step & 1], last.out_size());
  plan.act_floats = (std::max(act_size[0], act_size[1]) + 3) / 4 * 4;
  plan.act1_floats = (act_size[1] + 3) / 4 * 4;
  plan.in_rows = make_reciprocal(std::max(1, m.in_h));
  plan.in_row_words = make_reciprocal(std::max(1, m.in_w));
  return plan;
}

// Image index of parameter p (state_dict order), and in *run how many
// parameters from p on follow contiguously in the image (to the end of the
// tensor or of the dense row).
GAC_HD int image_index(const ModelSpec& m, const BlockPlan& plan, int p, int* run = nullptr) {
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    const BlockLayer& B = plan.layers[l];
    if (L.w_off >= 0 && p >= L.w_off && p < L.w_off + L.weight_count()) {
      const int q = p - L.w_off;
      if (L.kind != LayerKind::dense) {
        if (run) *run = L.weight_count() - q;
        return B.w_img + q;
      }
      const int n_in = L.in_size();
      if (run) *run = n_in - q % n_in;
      return B.w_img + (q / n_in) * B.w_stride + q % n_in;
    }
    if (L.b_off >= 0 && p >= L.b_off && p < L.b_off + L.out_c) {
      if (run) *run = L.b_off + L.out_c - p;
      return B.b_img + (p - L.b_off);
    }
  }
  if (run) *run = 1;
  return -1;  // not reached for 0 <= p < n_params
}

// A parameter's place in the image, moved forward without searching: the
// segment (= prior tensor) holding parameter p, p's column in its row, and
// its image index.
struct ImageCursor {
  int32_t seg = 0;
  int32_t p = 0;
  int32_t col = 0;
  int32_t at = 0;
};

// The cursor at parameter p (0 <= p < n_params): a search and a division,
// done once per thread and launch, not per draw.
GAC_HD ImageCursor image_cursor(const BlockPlan& plan, int p) {
  ImageCursor c;
  c.p = p;
  while (c.seg + 1 < plan.n_segments && p >= plan.segments[c.seg].end) ++c.seg;
  const BlockSegment& S = plan.segments[c.seg];
  const int q = p - (c.seg > 0 ? plan.segments[c.seg - 1].end : 0);
  c.col = q % S.row;
  c.at = S.img + (q / S.row) * S.stride + c.col;
  return c;
}

// Moves the cursor on by k parameters that stay in its row (k <= row - col).
GAC_HD void advance_in_row(const BlockPlan& plan, ImageCursor& c, int k) {
  const BlockSegment& S = plan.segments[c.seg];
  c.p += k;
  c.at += k;
  c.col += k;
  if (c.col == S.row) {
    c.col = 0;
    c.at += S.stride - S.row;
    if (c.p == S.end && c.seg + 1 < plan.n_segments) c.at = plan.segments[++c.seg].img;
  }
}

// The Philox blocks one thread writes into the image: `count` consecutive
// ones from `first`, so that its cursor only steps forward. The count per
// thread is odd: a quarter-warp's eight 16-byte stores of one step then fall
// into eight different bank groups (lanes 4 * count floats apart).
struct BlockGenerator {
  ImageCursor start;
  int32_t first = 0;
  int32_t count = 0;
};

GAC_HD BlockGenerator make_block_generator(const BlockPlan& plan, int n_params, int tid, int threads) {
  const int blocks = (n_params + 3) / 4;
  const int per_thread = ((blocks + threads - 1) / threads) | 1;
  BlockGenerator g;
  g.first = tid * per_thread < blocks ? tid * per_thread : blocks;
  g.count = (g.first + per_thread < blocks ? g.first + per_thread : blocks) - g.first;
  if (g.count > 0) g.start = image_cursor(plan, 4 * g.first);
  return g;
}

// Philox4x32-10 with its ten round keys computed once per stream: the block
// kernels get them as kernel arguments, so the device XORs them in from the
// constant bank instead of adding W0/W1 to the key every round. The same
// rounds as philox4x32_10, so the same bits.
struct PhiloxKeys {
  uint32_t k0[10];
  uint32_t k1[10];
};

GAC_HD PhiloxKeys philox_keys(StreamKey key) {
  PhiloxKeys k;
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    k.k0[round] = k0;
    k.k1[round] = k1;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return k;
}

GAC_HD U32x4 philox_block_keyed(const PhiloxKeys& k, uint64_t draw, uint32_t block) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  U32x4 c{{block, kPurposeParams, static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32)}};
  GAC_UNROLL
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = mulhi32(M0, c.v[0]), lo0 = M0 * c.v[0];
    const uint32_t hi1 = mulhi32(M1, c.v[2]), lo1 = M1 * c.v[2];
    c = U32x4{{hi1 ^ c.v[1] ^ k.k0[round], lo1, hi0 ^ c.v[3] ^ k.k1[round], lo0}};
  }
  return c;
}

// The priors by what their generation code does, a template argument of the
// block kernels: no run-time switch on the kind inside the loop.
//   uniform  uniform and kaiming: a 24-bit integer times the tensor's r / 2^23
//   normal   Box-Muller times the tensor's sigma
//   sphere   Box-Muller times the draw's sphere factor (in double)
enum class PriorClass : int32_t { uniform, normal, sphere };

GAC_HD PriorClass prior_class(PriorKind kind) {
  return kind == PriorKind::uniform || kind == PriorKind::kaiming ? PriorClass::uniform
         : kind == PriorKind::normal                               ? PriorClass::normal
                                                                   : PriorClass::sphere;
}

// prior_raw of kernels' prior class `C`.
template <PriorClass C>
GAC_HD void prior_raw_as(const PhiloxKeys& keys, uint64_t draw, uint32_t block, float raw[4]) {
  const U32x4 r = philox_block_keyed(keys, draw, block);
  if (C == PriorClass::uniform) {
    GAC_UNROLL
    for (int j = 0; j < 4; ++j) raw[j] = static_cast<float>(static_cast<int32_t>(r.v[j] >> 8) - (1 << 23));
  } else {
    normals_from_bits(r.v[0], r.v[1], &raw[0], &raw[1]);
    normals_from_bits(r.v[2], r.v[3], &raw[2], &raw[3]);
  }
}

// prior_factor of tensor `tensor` for prior class C (1 for the sphere).
template <PriorClass C>
GAC_HD float prior_factor_as(const PriorSpec& prior, int tensor) {
  if (C == PriorClass::uniform) return mul_rn(prior.scale[tensor], 0x1.0p-23f);
  if (C == PriorClass::normal) return prior.scale[tensor];
  return 1.0f;
}

// A raw value as generate_params leaves it: times the tensor's factor, and
// for the sphere times the draw's factor instead (times 1 changes no float).
template <PriorClass C>
GAC_HD float prior_value_as(float raw, float factor, double sphere) {
  if (C == PriorClass::sphere) return static_cast<float>(dmul_rn(raw, sphere));
  return mul_rn(raw, factor);
}

// The cursor past the end of its row: on to the next row or tensor, with
// the row length and factor of where it lands.
template <PriorClass C>
GAC_HD void next_row(const BlockPlan& plan, const PriorSpec& prior, ImageCursor& c, int& row, float& factor) {
  const BlockSegment& S = plan.segments[c.seg];
  c.col = 0;
  c.at += S.stride - S.row;
  if (c.p == S.end && c.seg + 1 < plan.n_segments) {
    c.at = plan.segments[++c.seg].img;
    row = plan.segments[c.seg].row;
    factor = prior_factor_as<C>(prior, c.seg);
  }
}

// The parameters of `draw` into the image, each thread its blocks of `g`.
// `sphere` is the draw's sphere factor (sphere prior only; see
// sphere_factor). A block of four parameters inside one row is one aligned
// 16-byte store (the image places every tensor congruent to its parameter
// offset mod 4); one that crosses a row or tensor end is stored value by
// value. Ends with block_sync().
// Philox block b of the draw at cursor c (row: c's row length, factor: its
// tensor's prior factor), the cursor moved past it.
template <PriorClass C>
GAC_HD void generate_block_as(const BlockPlan& plan, const PriorSpec& prior, const PhiloxKeys& keys, uint64_t draw,
                              uint32_t b, int n_params, double sphere, float* img, ImageCursor& c, int& row,
                              float& factor) {
  float raw[4];
  prior_raw_as<C>(keys, draw, b, raw);
  if (c.col + 4 <= row && (c.at & 3) == 0) {  // the common case
    float v[4];
    GAC_UNROLL
    for (int j = 0; j < 4; ++j) v[j] = prior_value_as<C>(raw[j], factor, sphere);
    store4(img + c.at, v);
    c.p += 4;
    c.at += 4;
    c.col += 4;
    if (c.col == row) next_row<C>(plan, prior, c, row, factor);
  } else {
    for (int j = 0; j < 4 && c.p < n_params; ++j) {
      img[c.at] = prior_value_as<C>(raw[j], factor, sphere);
      ++c.p;
      ++c.at;
      if (++c.col == row) next_row<C>(plan, prior, c, row, factor);
    }
  }
}

template <PriorClass C>
GAC_HD void block_generate_as(const BlockPlan& plan, const BlockGenerator& g, int n_params, const PriorSpec& prior,
                              const PhiloxKeys& keys, uint64_t draw, double sphere, float* img) {
  ImageCursor c = g.start;
  int row = plan.segments[c.seg].row;
  float factor = prior_factor_as<C>(prior, c.seg);
  for (int b = g.first; b < g.first + g.count; ++b)
    generate_block_as<C>(plan, prior, keys, draw, static_cast<uint32_t>(b), n_params, sphere, img, c, row, factor);
  block_sync();
}

// block_generate_as for the prior's class, chosen at run time (host tests).
GAC_HD void block_generate(const BlockPlan& plan, const BlockGenerator& g, int n_params, const PriorSpec& prior,
                           StreamKey key, uint64_t draw, double sphere, float* img) {
  const PhiloxKeys keys = philox_keys(key);
  switch (prior_class(prior.kind)) {
    case PriorClass::uniform:
      block_generate_as<PriorClass::uniform>(plan, g, n_params, prior, keys, draw, sphere, img);
      break;
    case PriorClass::normal:
      block_generate_as<PriorClass::normal>(plan, g, n_params, prior, keys, draw, sphere, img);
      break;
    case PriorClass::sphere:
      block_generate_as<PriorClass::sphere>(plan, g, n_params, prior, keys, draw, sphere, img);
      break;
  }
}

// Copies contiguous parameters (state_dict order) into the image.
GAC_HD void block_load_image(const ModelSpec& m, const BlockPlan& plan, const float* params, float* img, int tid,
                             int threads) {
  const BlockGenerator g = make_block_generator(plan, m.n_params, tid, threads);
  ImageCursor c = g.start;
  const int end = 4 * (g.first + g.count) < m.n_params ? 4 * (g.first + g.count) : m.n_params;
  for (int p = 4 * g.first; p < end; ++p) {
    img[c.at] = params[p];
    advance_in_row(plan, c, 1);
  }
  block_sync();
}

// One example from global memory into `dst` in the plan's input layout, each
// thread its share, without waiting (async_copy: the caller waits, then
// synchronizes the block). Aligned contiguous examples go 16 bytes at a time.
GAC_HD void block_stage_example(const ModelSpec& m, const BlockPlan& plan, const float* src, float* dst, int tid,
                                int threads) {
  const ActLayout& in = plan.in;
  const int D = m.in_size();
  if (in.row == m.in_w && in.plane == m.in_h * m.in_w) {  // the layout is the example's own
    dst += in.base;
    if (D % 4 == 0 && in.base % 4 == 0) {
      for (int k = tid; 4 * k < D; k += threads) async_copy(dst + 4 * k, src + 4 * k, 4);
    } else {
      for (int k = tid; k < D; k += threads) async_copy(dst + k, src + k, 1);
    }
    return;
  }
  for (int k = tid; k < D; k += threads) {  // padded rows: per value
    const int row_index = divide(k, plan.in_row_words), x = k - row_index * m.in_w;
    const int c = divide(row_index, plan.in_rows), y = row_index - c * m.in_h;
    async_copy(dst + in.at(c, y, x), src + k, 1);
  }
}

// ---- steps: each splits its work items over the threads ---------------------

// The thread's place among a step's workers, rotated by `rotation` warps:
// a step with fewer items than threads (LeNet's fc layers: 60, 42, 2
// outputs; conv2's 64 pairs) would always load the first warps, and warp w
// issues from scheduler w % 4. The block kernel rotates by the draw's slot
// mod 4, so over any four draws every scheduler gets the same work. A
// bijection of [0, threads) for any block size.
GAC_HD int step_thread(int tid, int threads, int rotation) {
  const int offset = rotation * 32 < threads ? rotation * 32 : 0;
  const int t = tid + offset;
  return t < threads ? t : t - threads;
}

// acc + w[0] in[0] + ... + w[3] in[3] in that order, w and in 16-byte aligned.
GAC_HD float dense_chunk(const float* w, const float* in, float acc) {
  float wv[4], xv[4];
  load4(w, wv);
  load4(in, xv);
  GAC_UNROLL
  for (int j = 0; j < 4; ++j) acc = fma_rn(wv[j], xv[j], acc);
  return acc;
}

// dense_forward's output o: bias, then the inputs in order, the middle four
// at a time from 16-byte aligned addresses (in + i and w + i are congruent
// mod 4 by the layouts).
GAC_HD float dense_output(const Layer& L, const BlockLayer& B, const float* img, const float* in, int o) {
  const int n_in = L.in_size();
  float acc = B.b_img >= 0 ? img[B.b_img + o] : 0.0f;
  const float* w = img + B.w_img + o * B.w_stride;
  const int head = (4 - (B.w_img & 3)) & 3;
  int i = 0;
  for (; i < head && i < n_in; ++i) acc = fma_rn(w[i], in[i], acc);
  for (; i + 4 <= n_in; i += 4) acc = dense_chunk(w + i, in + i, acc);
  for (; i < n_in; ++i) acc = fma_rn(w[i], in[i], acc);
  return L.relu ? relu(acc) : acc;
}

GAC_HD void block_dense(const Layer& L, const BlockLayer& B, const ActLayout& in_layout, const float* img,
                        const float* in, float* out, int tid, int threads, int rotation = 0) {
  in += in_layout.base;
  for (int o = step_thread(tid, threads, rotation); o < L.out_c; o += threads)
    out[B.out.at(o, 0, 0)] = dense_output(L, B, img, in, o);
}

// conv_forward, one output per work item (models the fused step does not cover).
GAC_HD void block_conv(const Layer& L, const BlockLayer& B, const ActLayout& in_layout, const float* img,
                       const float* in, float* out, int tid, int threads, int rotation = 0) {
  const int k = L.k, plane = L.out_h * L.out_w;
  for (int idx = step_thread(tid, threads, rotation); idx < L.out_size(); idx += threads) {
    const int oc = idx / plane, oy = (idx % plane) / L.out_w, ox = idx % L.out_w;
    float acc = B.b_img >= 0 ? img[B.b_img + oc] : 0.0f;
    const float* W = img + B.w_img + oc * L.in_c * k * k;
    for (int ic = 0; ic < L.in_c; ++ic)
      for (int ky = 0; ky < k; ++ky) {
        const float* row = in + in_layout.at(ic, oy + ky, ox);
        const float* w = W + (ic * k + ky) * k;
        for (int kx = 0; kx < k; ++kx) acc = fma_rn(w[kx], row[kx], acc);
      }
    out[B.out.at(oc, oy, ox)] = L.relu ? relu(acc) : acc;
  }
}

GAC_HD void block_maxpool(const Layer& L, const BlockLayer& B, const ActLayout& in_layout, const float* in,
                          float* out, int tid, int threads, int rotation = 0) {
  const int plane = L.out_h * L.out_w;
  for (int idx = step_thread(tid, threads, rotation); idx < L.out_size(); idx += threads) {
    const int c = idx / plane, y = (idx % plane) / L.out_w, x = idx % L.out_w;
    const float* r0 = in + in_layout.at(c, 2 * y, 2 * x);
    const float* r1 = r0 + in_layout.row;
    out[B.out.at(c, y, x)] = max2(max2(r0[0], r0[1]), max2(r1[0], r1[1]));
  }
}

// One input channel's terms of conv_pool_pair's accumulators: W its K x K
// weights, src the patch's top left, `row` the input's row stride.
template <int K>
GAC_HD void conv_pair_channel(const float* W, const float* src, int row, float acc[2][4]) {
  // Kernel row r serves conv row 0 at input row r and conv row 1 at input
  // row r + 1: two rows of weights are live at a time (registers: four
  // blocks of 256 threads share an SM at 64 a thread).
  float w_up[K] = {}, w_low[K];
  GAC_UNROLL
  for (int r = 0; r <= K; ++r) {
    GAC_UNROLL
    for (int kx = 0; kx < K; ++kx) {
      w_low[kx] = w_up[kx];
      if (r < K) w_up[kx] = W[r * K + kx];
    }
    float v[8];
    load4(src + r * row, v);
    load4(src + r * row + 4, v + 4);
    if (r < K) {
      GAC_UNROLL
      for (int kx = 0; kx < K; ++kx) {
        GAC_UNROLL
        for (int dx = 0; dx < 4; ++dx) acc[0][dx] = fma_rn(w_up[kx], v[dx + kx], acc[0][dx]);
      }
    }
    if (r > 0) {
      GAC_UNROLL
      for (int kx = 0; kx < K; ++kx) {
        GAC_UNROLL
        for (int dx = 0; dx < 4; ++dx) acc[1][dx] = fma_rn(w_low[kx], v[dx + kx], acc[1][dx]);
      }
    }
  }
}

// Pooled outputs (py, 2 pair) and (py, 2 pair + 1) of channel oc: the 2 x 4
// convolution outputs under them, acc[dy][dx] at conv row 2 py + dy, column
// 4 pair + dx. Input row r of the 6 x 8 patch feeds conv row dy with kernel
// row ky = r - dy, so walking r upwards gives every accumulator its ky in
// order, and kx in order within a row: conv_forward's sum.
template <int K>
GAC_HD void conv_pool_pair(const Layer& L, const Layer& P, const BlockLayer& B, const ActLayout& in_layout,
                           const float* img, const float* in, float* out, int oc, int py, int pair) {
  static_assert(K == 5, "the patch is two 16-byte vectors wide");
  const float bias = B.b_img >= 0 ? img[B.b_img + oc] : 0.0f;
  float acc[2][4];
  GAC_UNROLL
  for (int dy = 0; dy < 2; ++dy) {
    GAC_UNROLL
    for (int dx = 0; dx < 4; ++dx) acc[dy][dx] = bias;
  }
  const float* W = img + B.w_img + oc * L.in_c * K * K;
  const float* src = in + in_layout.at(0, 2 * py, 4 * pair);
  for (int ic = 0; ic < L.in_c; ++ic, W += K * K, src += in_layout.plane) conv_pair_channel<K>(W, src, in_layout.row, acc);
  GAC_UNROLL
  for (int dy = 0; dy < 2; ++dy) {
    GAC_UNROLL
    for (int dx = 0; dx < 4; ++dx) acc[dy][dx] = L.relu ? relu(acc[dy][dx]) : acc[dy][dx];
  }
  float* dst = out + B.out.at(oc, py, 2 * pair);
  dst[0] = max2(max2(acc[0][0], acc[0][1]), max2(acc[1][0], acc[1][1]));
  if (2 * pair + 1 < P.out_w) dst[1] = max2(max2(acc[0][2], acc[0][3]), max2(acc[1][2], acc[1][3]));
}

// Convolution (K x K) + ReLU + 2x2 max pool, two pooled outputs per work
// item (conv_pool_pair), items numbered pair fastest, then pooled row, then
// channel.
template <int K>
GAC_HD void block_conv_pool(const Layer& L, const Layer& P, const BlockLayer& B, const ActLayout& in_layout,
                            const float* img, const float* in, float* out, int tid, int threads, int rotation = 0) {
  const int items = L.out_c * B.per_channel.d;
  for (int item = step_thread(tid, threads, rotation); item < items; item += threads) {
    const int oc = divide(item, B.per_channel), rest = item - oc * B.per_channel.d;
    const int py = divide(rest, B.pairs), pair = rest - py * B.pairs.d;
    conv_pool_pair<K>(L, P, B, in_layout, img, in, out, oc, py, pair);
  }
}

// The output size of each step of block_forward (a fused conv + pool is one
// step), summed: the floats of one example's trace.
GAC_HD int block_trace_floats(const ModelSpec& m, const BlockPlan& plan) {
  int total = 0;
  for (int l = 0; l < m.n_layers; ++l) {
    if (plan.layers[l].fuse_pool) ++l;
    total += m.layers[l].out_size();
  }
  return total;
}

struct NoHook {
  GAC_HD void operator()() const {}
};

// All layers on one example `x` (staged in plan.in's layout). act0/act1
// hold plan.act_floats and plan.act1_floats. Returns the logits
// (contiguous); every step ends with block_sync(), so all threads may read
// them. `after_first_step` runs in every thread once the first step is done
// with `x` (the block kernel prefetches the next example into it); every
// step's work is rotated by `rotation` warps (step_thread). With `trace`
// (tests), every step's output is also copied there, one after the other,
// plainly.
template <class Hook = NoHook>
GAC_HD const float* block_forward(const ModelSpec& m, const BlockPlan& plan, const float* img, const float* x,
                                  float* act0, float* act1, int tid, int threads, float* trace = nullptr,
                                  Hook after_first_step = Hook{}, int rotation = 0) {
  const float* in = x;
  ActLayout in_layout = plan.in;
  int step = 0;
  for (int l = 0; l < m.n_layers; ++l, ++step) {
    const Layer& L = m.layers[l];
    const BlockLayer& B = plan.layers[l];
    float* out = step & 1 ? act1 : act0;
    if (B.fuse_pool) {
      block_conv_pool<BlockPlan::kFusedK>(L, m.layers[l + 1], B, in_layout, img, in, out, tid, threads, rotation);
      ++l;  // the pool layer ran too
    } else if (L.kind == LayerKind::dense) {
      block_dense(L, B, in_layout, img, in, out, tid, threads, rotation);
    } else if (L.kind == LayerKind::conv) {
      block_conv(L, B, in_layout, img, in, out, tid, threads, rotation);
    } else {
      block_maxpool(L, B, in_layout, in, out, tid, threads, rotation);
    }
    block_sync();
    if (step == 0) after_first_step();
    const Layer& O = m.layers[l];
    if (trace) {  // `out` is rewritten two steps on, after another barrier
      const int plane = O.out_h * O.out_w;
      for (int i = tid; i < O.out_size(); i += threads)
        trace[i] = out[B.out.at(i / plane, (i % plane) / O.out_w, i % O.out_w)];
      trace += O.out_size();
    }
    in = out;
    in_layout = B.out;
  }
  return in + in_layout.base;
}

// The first layer from l on that has weights (n_layers: none).
GAC_HD int next_weight_layer(const ModelSpec& m, int l) {
  while (l < m.n_layers && m.layers[l].w_off < 0) ++l;
  return l;
}

GAC_HD float sphere_scaled(float w, bool sphere, double factor) {
  return sphere ? static_cast<float>(dmul_rn(w, factor)) : w;
}

// logit_scale of `draw` with its parameters generated one after the other
// and none stored: each weight tensor's squares are summed as they come, in
// weight_norm_product's order. `sphere` is the draw's sphere factor (sphere
// prior only). One thread's sequential work: the batched finish kernels run
// it for perfect draws, one thread each.
GAC_HD float streamed_logit_scale(const ModelSpec& m, const PriorSpec& prior, StreamKey key, uint64_t draw,
                                  double sphere, LossKind loss) {
  if (loss == LossKind::raw) return 1.0f;
  const bool is_sphere = prior.kind == PriorKind::sphere;
  double product = 1.0, sq = 0.0;
  int l = next_weight_layer(m, 0);
  int w_begin = l < m.n_layers ? m.layers[l].w_off : m.n_params;
  int w_end = l < m.n_layers ? w_begin + m.layers[l].weight_count() : m.n_params;
  for_each_prior_value(prior, key, draw, m.n_params, [&](int i, float w) {
    if (i < w_begin) return;
    w = sphere_scaled(w, is_sphere, sphere);
    sq = dfma_rn(w, w, sq);
    if (i + 1 < w_end) return;
    product = dmul_rn(product, ddiv_rn(dsqrt_rn(sq), m.norm_divisor));
    sq = 0.0;
    l = next_weight_layer(m, l + 1);
    w_begin = l < m.n_layers ? m.layers[l].w_off : m.n_params;
    w_end = l < m.n_layers ? w_begin + m.layers[l].weight_count() : m.n_params;
  });
  return static_cast<float>(ddiv_rn(1.0, product));
}

}  // namespace gac
