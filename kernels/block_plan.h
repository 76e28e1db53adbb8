// The layout of a block-per-draw kernel's shared memory (kernels/block_forward.h
// runs it): where each parameter sits in the image, where each step writes its
// output, and the multiply-high reciprocals that spare the kernels a division.
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
#pragma once

#include <algorithm>

#include "gac/hd.h"
#include "gac/model.h"
#include "gac/philox.h"

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
  Reciprocal per_channel;  // fused conv + pool: items (2 x 2 tiles of pooled outputs) per channel
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
  int32_t pair_tail = 0;     // first layer of the dense tail after a conv step (0: none): full evaluation runs
                             // two examples through it at once, in a second pair of activation buffers
  int32_t resident_example = 1;  // block kernels: example 0 stays in shared memory, the next one is prefetched
                                 // (0: one buffer, each example staged when it is needed)
};

// The step that starts at layer l fuses a pool after it: a 5x5 conv
// followed by a 2x2 max pool, with fewer than 2^16 items (the reciprocals'
// range; larger layers take the generic steps).
inline bool fusable(const ModelSpec& m, int l) {
  const Layer& L = m.layers[l];
  if (!(L.kind == LayerKind::conv && L.k == BlockPlan::kFusedK && l + 1 < m.n_layers)) return false;
  const Layer& P = m.layers[l + 1];
  return P.kind == LayerKind::maxpool2 && P.in_c == L.out_c && P.in_h == L.out_h && P.in_w == L.out_w &&
         static_cast<int64_t>(L.out_c) * P.out_h * ((P.out_w + 1) / 2) < (1 << 16);
}

// Row stride of a fused conv + pool's input: a multiple of 4 wide enough for
// every pair's 8-column patch, chosen among the next eight candidates for the
// fewest 16-byte bank-group conflicts of its patch loads (each quarter-warp
// of eight consecutive items: pair fastest, then pooled row, then channel).
inline int tiled_input_row(const Layer& conv, const Layer& pool) {
  const int pairs = (pool.out_w + 1) / 2, per_channel = (pool.out_h + 1) / 2 * pairs;
  const int items = conv.out_c * per_channel;
  int least = (std::max(conv.in_w, 4 * pairs + 4) + 3) / 4 * 4, best = least, best_cost = -1;
  for (int row = least; row < least + 32; row += 4) {
    int cost = 0;
    for (int q = 0; q * 8 < items && q < 64; ++q) {
      int chunks[8], n = 0;
      for (int i = q * 8; i < q * 8 + 8 && i < items; ++i) {
        const int rest = i % per_channel, chunk = (rest / pairs) * 4 * row / 4 + rest % pairs;
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
      B.per_channel = make_reciprocal((P.out_h + 1) / 2 * pairs);
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
  int tail = m.n_layers;
  while (tail > 0 && m.layers[tail - 1].kind == LayerKind::dense) --tail;
  plan.pair_tail = tail > 0 && tail < m.n_layers ? tail : 0;
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

}  // namespace gac
