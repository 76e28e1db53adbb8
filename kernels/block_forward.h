// One draw evaluated by a whole thread block (the CUDA path for LeNet and any
// model with a convolution; kernels/search_kernels.h runs it).
//
// Why a block per draw: a LeNet draw has 11,074 parameters and 92k
// multiply-adds per example, far too much state for one thread, while the
// block can hold the draw's parameters in shared memory ("the image") and
// spread every layer over its threads. Each output value is still one
// thread's sequential fma chain in kernels/forward.h's order (bias, then ic,
// ky, kx / inputs in memory order), so the logits are bit-identical to the
// CPU's; only which thread computes which output changes.
//
// The image is the parameter vector in state_dict order with one change:
// dense weight rows are padded to an odd stride. Threads of a warp compute
// neighbouring outputs o, reading W[o][i] at the same i: with an even row
// length those reads fall into few shared-memory banks (row length 128 puts
// all 32 lanes in one bank); an odd stride spreads them over all 32.
//
// A convolution followed by a 2x2 max pool (LeNet's pattern, 5x5 kernels)
// runs fused: each thread computes the 2x2 convolution outputs under one
// pooled output, each in the reference order, then applies ReLU and the pool
// exactly as maxpool2_forward does. The 6x6 input patch and the 25 weights
// of one input channel sit in registers, so each value loaded from shared
// memory feeds several fma (the unfused loop loads two values per fma).
//
// Every function takes the thread's index `tid` among `threads` and splits
// its work over them; block_sync() separates steps. That makes the code run
// unchanged on the host: as a block of one thread (tid = 0, threads = 1,
// block_sync a no-op), or as host threads meeting at a real barrier
// (tests/emulated_device.cpp), which is how CI checks it without a GPU.
#pragma once

#include "gac/hd.h"
#include "gac/model.h"
#include "gac/prior.h"
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

// Where each layer's parameters sit in the image, and how it runs.
struct BlockLayer {
  int32_t w_img = -1;     // weights (-1: none)
  int32_t w_stride = 0;   // dense: padded row length
  int32_t b_img = -1;     // bias (-1: none)
  int32_t fuse_pool = 0;  // conv 5x5 followed by maxpool2: one fused step (the pool layer is skipped)
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
  int32_t image_floats = 0;  // parameter image
  int32_t act_floats = 0;    // each of the two activation buffers
  int32_t in_floats = 0;     // the staged example
};

inline BlockPlan make_block_plan(const ModelSpec& m) {
  BlockPlan plan;
  int32_t at = 0;
  plan.in_floats = m.in_size();
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    BlockLayer& B = plan.layers[l];
    if (L.w_off >= 0) {
      B.w_img = at;
      BlockSegment& S = plan.segments[plan.n_segments++];
      S.end = L.w_off + L.weight_count();
      S.img = at;
      if (L.kind == LayerKind::dense) {
        B.w_stride = L.in_size() | 1;  // odd: conflict-free column reads
        S.row = L.in_size();
        S.stride = B.w_stride;
        at += L.out_c * B.w_stride;
      } else {
        S.row = S.stride = L.weight_count();
        at += L.weight_count();
      }
    }
    if (L.b_off >= 0) {
      B.b_img = at;
      BlockSegment& S = plan.segments[plan.n_segments++];
      S.end = L.b_off + L.out_c;
      S.img = at;
      S.row = S.stride = L.out_c;
      at += L.out_c;
    }
  }
  plan.image_floats = at;
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    const bool fuse = L.kind == LayerKind::conv && L.k == BlockPlan::kFusedK && l + 1 < m.n_layers &&
                      m.layers[l + 1].kind == LayerKind::maxpool2 && m.layers[l + 1].in_c == L.out_c &&
                      m.layers[l + 1].in_h == L.out_h && m.layers[l + 1].in_w == L.out_w;
    plan.layers[l].fuse_pool = fuse ? 1 : 0;
    const Layer& last = fuse ? m.layers[l + 1] : L;
    if (last.out_size() > plan.act_floats) plan.act_floats = last.out_size();
    if (fuse) ++l;
  }
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
// thread is odd: the four stores of a block then start, across a warp's
// lanes, in 8 different banks, and each lane writing its four values in an
// order rotated by (lane / 8) % 4 spreads every store over all 32 banks.
struct BlockGenerator {
  ImageCursor start;
  int32_t first = 0;
  int32_t count = 0;
  int32_t rotate = 0;
};

GAC_HD BlockGenerator make_block_generator(const BlockPlan& plan, int n_params, int tid, int threads) {
  const int blocks = (n_params + 3) / 4;
  const int per_thread = ((blocks + threads - 1) / threads) | 1;
  BlockGenerator g;
  g.first = tid * per_thread < blocks ? tid * per_thread : blocks;
  g.count = (g.first + per_thread < blocks ? g.first + per_thread : blocks) - g.first;
  g.rotate = (tid >> 3) & 3;
  if (g.count > 0) g.start = image_cursor(plan, 4 * g.first);
  return g;
}

// dst[(j + r) % 4] = v[(j + r) % 4] for j = 0..3, in that order of j: the
// values are rotated through selects, so no register is indexed at run time.
GAC_HD void store4_rotated(float* dst, const float v[4], int r) {
  const bool r1 = (r & 1) != 0, r2 = (r & 2) != 0;
  const float a0 = r1 ? v[1] : v[0], a1 = r1 ? v[2] : v[1], a2 = r1 ? v[3] : v[2], a3 = r1 ? v[0] : v[3];
  dst[r & 3] = r2 ? a2 : a0;
  dst[(r + 1) & 3] = r2 ? a3 : a1;
  dst[(r + 2) & 3] = r2 ? a0 : a2;
  dst[(r + 3) & 3] = r2 ? a1 : a3;
}

GAC_HD float sphere_scaled(float w, bool sphere, double factor) {
  return sphere ? static_cast<float>(dmul_rn(w, factor)) : w;
}

// The parameters of `draw` into the image, each thread its blocks of `g`.
// `sphere` is the draw's sphere factor (sphere prior only; see
// sphere_factor): each value is scaled as it is stored, as generate_params
// scales it. Ends with block_sync().
GAC_HD void block_generate(const BlockPlan& plan, const BlockGenerator& g, int n_params, const PriorSpec& prior,
                           StreamKey key, uint64_t draw, double sphere, float* img) {
  const bool is_sphere = prior.kind == PriorKind::sphere;
  ImageCursor c = g.start;
  for (int b = g.first; b < g.first + g.count; ++b) {
    float raw[4];
    prior_raw(prior, key, draw, static_cast<uint32_t>(b), raw);
    if (c.col + 4 <= plan.segments[c.seg].row) {  // the common case: four neighbours in one row of one tensor
      const float factor = prior_factor(prior, c.seg);
      float v[4];
      GAC_UNROLL
      for (int j = 0; j < 4; ++j) v[j] = sphere_scaled(mul_rn(raw[j], factor), is_sphere, sphere);
      store4_rotated(img + c.at, v, g.rotate);
      advance_in_row(plan, c, 4);
    } else {  // the block crosses the end of a row or tensor, or of the parameters
      GAC_UNROLL
      for (int j = 0; j < 4; ++j)
        if (c.p < n_params) {
          img[c.at] = sphere_scaled(prior_scaled(prior, raw[j], c.seg), is_sphere, sphere);
          advance_in_row(plan, c, 1);
        }
    }
  }
  block_sync();
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

// ---- layers: each splits its outputs over the threads -----------------------

GAC_HD void block_dense(const Layer& L, const BlockLayer& B, const float* img, const float* in, float* out, int tid,
                        int threads) {
  const int n_in = L.in_size();
  for (int o = tid; o < L.out_c; o += threads) {
    float acc = B.b_img >= 0 ? img[B.b_img + o] : 0.0f;
    const float* w = img + B.w_img + o * B.w_stride;
    for (int i = 0; i < n_in; ++i) acc = fma_rn(w[i], in[i], acc);
    out[o] = L.relu ? relu(acc) : acc;
  }
}

// conv_forward, one output per work item.
GAC_HD void block_conv(const Layer& L, const BlockLayer& B, const float* img, const float* in, float* out, int tid,
                       int threads) {
  const int k = L.k, plane = L.out_h * L.out_w;
  for (int idx = tid; idx < L.out_size(); idx += threads) {
    const int oc = idx / plane, oy = (idx % plane) / L.out_w, ox = idx % L.out_w;
    float acc = B.b_img >= 0 ? img[B.b_img + oc] : 0.0f;
    const float* W = img + B.w_img + oc * L.in_c * k * k;
    for (int ic = 0; ic < L.in_c; ++ic)
      for (int ky = 0; ky < k; ++ky) {
        const float* row = in + (ic * L.in_h + oy + ky) * L.in_w + ox;
        const float* w = W + (ic * k + ky) * k;
        for (int kx = 0; kx < k; ++kx) acc = fma_rn(w[kx], row[kx], acc);
      }
    out[idx] = L.relu ? relu(acc) : acc;
  }
}

GAC_HD void block_maxpool(const Layer& L, const float* in, float* out, int tid, int threads) {
  const int plane = L.out_h * L.out_w;
  for (int idx = tid; idx < L.out_size(); idx += threads) {
    const int c = idx / plane, y = (idx % plane) / L.out_w, x = idx % L.out_w;
    const float* r0 = in + (c * L.in_h + 2 * y) * L.in_w + 2 * x;
    const float* r1 = r0 + L.in_w;
    out[idx] = max2(max2(r0[0], r0[1]), max2(r1[0], r1[1]));
  }
}

// Convolution (K x K) + ReLU + 2x2 max pool; one pooled output per work item.
// acc[0..3] are the convolution outputs at (2y, 2x), (2y, 2x+1), (2y+1, 2x),
// (2y+1, 2x+1); each receives bias, then ic, ky, kx in order.
template <int K>
GAC_HD void block_conv_pool(const Layer& L, const Layer& P, const BlockLayer& B, const float* img, const float* in,
                            float* out, int tid, int threads) {
  const int plane = P.out_h * P.out_w;
  for (int idx = tid; idx < P.out_size(); idx += threads) {
    const int oc = idx / plane, y = (idx % plane) / P.out_w, x = idx % P.out_w;
    const float bias = B.b_img >= 0 ? img[B.b_img + oc] : 0.0f;
    float acc[4] = {bias, bias, bias, bias};
    const float* W = img + B.w_img + oc * L.in_c * K * K;
    for (int ic = 0; ic < L.in_c; ++ic) {
      // The (K+1) x (K+1) input patch under the four outputs, and this
      // channel's weights, in registers.
      const float* src = in + (ic * L.in_h + 2 * y) * L.in_w + 2 * x;
      float patch[K + 1][K + 1], w[K][K];
      GAC_UNROLL
      for (int r = 0; r <= K; ++r) {
        GAC_UNROLL
        for (int c = 0; c <= K; ++c) patch[r][c] = src[r * L.in_w + c];
      }
      GAC_UNROLL
      for (int ky = 0; ky < K; ++ky) {
        GAC_UNROLL
        for (int kx = 0; kx < K; ++kx) w[ky][kx] = W[(ic * K + ky) * K + kx];
      }
      GAC_UNROLL
      for (int ky = 0; ky < K; ++ky) {
        GAC_UNROLL
        for (int kx = 0; kx < K; ++kx) {
          acc[0] = fma_rn(w[ky][kx], patch[ky][kx], acc[0]);
          acc[1] = fma_rn(w[ky][kx], patch[ky][kx + 1], acc[1]);
          acc[2] = fma_rn(w[ky][kx], patch[ky + 1][kx], acc[2]);
          acc[3] = fma_rn(w[ky][kx], patch[ky + 1][kx + 1], acc[3]);
        }
      }
    }
    GAC_UNROLL
    for (int j = 0; j < 4; ++j) acc[j] = L.relu ? relu(acc[j]) : acc[j];
    out[idx] = max2(max2(acc[0], acc[1]), max2(acc[2], acc[3]));
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

// All layers on one example `x` (already where the block can read it).
// act0/act1 hold plan.act_floats each. Returns the logits' buffer; every
// step ends with block_sync(), so all threads may read it. With `trace`
// (tests), every step's output is also copied there, one after the other.
GAC_HD const float* block_forward(const ModelSpec& m, const BlockPlan& plan, const float* img, const float* x,
                                  float* act0, float* act1, int tid, int threads, float* trace = nullptr) {
  const float* in = x;
  int step = 0;
  for (int l = 0; l < m.n_layers; ++l, ++step) {
    const Layer& L = m.layers[l];
    const BlockLayer& B = plan.layers[l];
    float* out = step & 1 ? act1 : act0;
    if (B.fuse_pool) {
      block_conv_pool<BlockPlan::kFusedK>(L, m.layers[l + 1], B, img, in, out, tid, threads);
      ++l;  // the pool layer ran too
    } else if (L.kind == LayerKind::dense) {
      block_dense(L, B, img, in, out, tid, threads);
    } else if (L.kind == LayerKind::conv) {
      block_conv(L, B, img, in, out, tid, threads);
    } else {
      block_maxpool(L, in, out, tid, threads);
    }
    block_sync();
    if (trace) {  // `out` is rewritten two steps on, after another barrier
      const int size = m.layers[l].out_size();
      for (int i = tid; i < size; i += threads) trace[i] = out[i];
      trace += size;
    }
    in = out;
  }
  return in;
}

// The first layer from l on that has weights (n_layers: none).
GAC_HD int next_weight_layer(const ModelSpec& m, int l) {
  while (l < m.n_layers && m.layers[l].w_off < 0) ++l;
  return l;
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
