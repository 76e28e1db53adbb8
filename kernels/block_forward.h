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
// Where values sit in shared memory (the image, the activations' layouts):
// kernels/block_plan.h; how a draw's parameters get into the image:
// kernels/block_generate.h.
//
// A convolution followed by a 2x2 max pool (LeNet's pattern, 5x5 kernels)
// runs fused and register-tiled: each thread computes a 2 x 2 tile of pooled
// outputs of one channel (4 x 4 convolution outputs) from an 8 x 8 input
// patch loaded two vectors per row, with four rows of its channel's weights
// in registers, so each loaded value feeds up to 20 fma; the item's coordinates
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

#include "gac/hd.h"
#include "gac/model.h"
#include "kernels/block_generate.h"
#include "kernels/block_plan.h"
#include "kernels/device_intrinsics.h"
#include "kernels/forward.h"

namespace gac {

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
  for (int k = tid; k < D; k += threads) {  // padded rows (shapes the standard models do not have): per value
    const int row_index = k / m.in_w, x = k - row_index * m.in_w;
    const int c = row_index / m.in_h, y = row_index - c * m.in_h;
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

// dense_chunk for two examples: each weight loaded once for both, each
// accumulator's terms in dense_chunk's order.
GAC_HD void dense_chunk_pair(const float* w, const float* in0, const float* in1, float acc[2]) {
  float wv[4], x0[4], x1[4];
  load4(w, wv);
  load4(in0, x0);
  load4(in1, x1);
  GAC_UNROLL
  for (int j = 0; j < 4; ++j) acc[0] = fma_rn(wv[j], x0[j], acc[0]);
  GAC_UNROLL
  for (int j = 0; j < 4; ++j) acc[1] = fma_rn(wv[j], x1[j], acc[1]);
}

// dense_output of two examples (inputs in0, in1) at once: out[k] is
// dense_output's value for in_k, bit for bit.
GAC_HD void dense_output_pair(const Layer& L, const BlockLayer& B, const float* img, const float* in0,
                              const float* in1, int o, float out[2]) {
  const int n_in = L.in_size();
  const float bias = B.b_img >= 0 ? img[B.b_img + o] : 0.0f;
  float acc[2] = {bias, bias};
  const float* w = img + B.w_img + o * B.w_stride;
  const int head = (4 - (B.w_img & 3)) & 3;
  int i = 0;
  for (; i < head && i < n_in; ++i) acc[0] = fma_rn(w[i], in0[i], acc[0]), acc[1] = fma_rn(w[i], in1[i], acc[1]);
  for (; i + 4 <= n_in; i += 4) dense_chunk_pair(w + i, in0 + i, in1 + i, acc);
  for (; i < n_in; ++i) acc[0] = fma_rn(w[i], in0[i], acc[0]), acc[1] = fma_rn(w[i], in1[i], acc[1]);
  for (int k = 0; k < 2; ++k) out[k] = L.relu ? relu(acc[k]) : acc[k];
}

GAC_HD void block_dense_pair(const Layer& L, const BlockLayer& B, const ActLayout& in_layout, const float* img,
                             const float* in0, const float* in1, float* out0, float* out1, int tid, int threads,
                             int rotation) {
  in0 += in_layout.base;
  in1 += in_layout.base;
  for (int o = step_thread(tid, threads, rotation); o < L.out_c; o += threads) {
    float v[2];
    dense_output_pair(L, B, img, in0, in1, o, v);
    out0[B.out.at(o, 0, 0)] = v[0];
    out1[B.out.at(o, 0, 0)] = v[1];
  }
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

// One input channel's terms of conv_pool_tile's accumulators: W its K x K
// weights, src the patch's top left, `row` the input's row stride.
template <int K, int R>
GAC_HD void conv_tile_channel(const float* W, const float* src, int row, float (&acc)[R][4]) {
  // Kernel row ky serves conv row dy at input row ky + dy: w[d] holds kernel
  // row r - d, so R rows of weights are live at a time.
  float w[R][K] = {};
  GAC_UNROLL
  for (int r = 0; r < K + R - 1; ++r) {
    GAC_UNROLL
    for (int kx = 0; kx < K; ++kx) {
      GAC_UNROLL
      for (int d = R - 1; d > 0; --d) w[d][kx] = w[d - 1][kx];
      if (r < K) w[0][kx] = W[r * K + kx];
    }
    float v[8];
    load4(src + r * row, v);
    load4(src + r * row + 4, v + 4);
    GAC_UNROLL
    for (int dy = 0; dy < R; ++dy) {
      if (r - dy < 0 || r - dy >= K) continue;
      GAC_UNROLL
      for (int kx = 0; kx < K; ++kx) {
        GAC_UNROLL
        for (int dx = 0; dx < 4; ++dx) acc[dy][dx] = fma_rn(w[dy][kx], v[dx + kx], acc[dy][dx]);
      }
    }
  }
}

// Pooled outputs (py + j, 2 pair) and (py + j, 2 pair + 1), j < R / 2, of
// channel oc: the R x 4 convolution outputs under them, acc[dy][dx] at conv
// row 2 py + dy, column 4 pair + dx. Input row r of the (K + R - 1) x 8
// patch feeds conv row dy with kernel row ky = r - dy, so walking r upwards
// gives every accumulator its ky in order, and kx in order within a row:
// conv_forward's sum.
template <int K, int R>
GAC_HD void conv_pool_tile(const Layer& L, const Layer& P, const BlockLayer& B, const ActLayout& in_layout,
                           const float* img, const float* in, float* out, int oc, int py, int pair) {
  static_assert(K == 5, "the patch is two 16-byte vectors wide");
  const float bias = B.b_img >= 0 ? img[B.b_img + oc] : 0.0f;
  float acc[R][4];
  GAC_UNROLL
  for (int dy = 0; dy < R; ++dy) {
    GAC_UNROLL
    for (int dx = 0; dx < 4; ++dx) acc[dy][dx] = bias;
  }
  const float* W = img + B.w_img + oc * L.in_c * K * K;
  const float* src = in + in_layout.at(0, 2 * py, 4 * pair);
  for (int ic = 0; ic < L.in_c; ++ic, W += K * K, src += in_layout.plane)
    conv_tile_channel<K, R>(W, src, in_layout.row, acc);
  GAC_UNROLL
  for (int dy = 0; dy < R; ++dy) {
    GAC_UNROLL
    for (int dx = 0; dx < 4; ++dx) acc[dy][dx] = L.relu ? relu(acc[dy][dx]) : acc[dy][dx];
  }
  GAC_UNROLL
  for (int j = 0; j < R / 2; ++j) {
    float* dst = out + B.out.at(oc, py + j, 2 * pair);
    dst[0] = max2(max2(acc[2 * j][0], acc[2 * j][1]), max2(acc[2 * j + 1][0], acc[2 * j + 1][1]));
    if (2 * pair + 1 < P.out_w) dst[1] = max2(max2(acc[2 * j][2], acc[2 * j][3]), max2(acc[2 * j + 1][2], acc[2 * j + 1][3]));
  }
}

// Convolution (K x K) + ReLU + 2x2 max pool, a 2 x 2 tile of pooled outputs
// per work item (conv_pool_tile: the 4 x 4 convolution outputs under it
// share each weight and patch load), items numbered pair fastest, then pair
// of pooled rows, then channel. An odd pooled height's last row takes tiles
// of 1 x 2 (its patch would pass the input's last row).
template <int K>
GAC_HD void block_conv_pool(const Layer& L, const Layer& P, const BlockLayer& B, const ActLayout& in_layout,
                            const float* img, const float* in, float* out, int tid, int threads, int rotation = 0) {
  const int items = L.out_c * B.per_channel.d;
  for (int item = step_thread(tid, threads, rotation); item < items; item += threads) {
    const int oc = divide(item, B.per_channel), rest = item - oc * B.per_channel.d;
    const int qy = divide(rest, B.pairs), pair = rest - qy * B.pairs.d;
    if (2 * qy + 1 < P.out_h) conv_pool_tile<K, 4>(L, P, B, in_layout, img, in, out, oc, 2 * qy, pair);
    else conv_pool_tile<K, 2>(L, P, B, in_layout, img, in, out, oc, 2 * qy, pair);
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

// Where a pass of block_forward's steps stands: its input and that input's
// layout, the next layer and the step count (which activation buffer is next).
struct BlockPass {
  const float* in;
  ActLayout layout;
  int l = 0, step = 0;
};

// block_forward's steps from p.l up to layer `end` (a step boundary);
// `before_later_syncs` runs in every thread before the barrier that ends
// each step but the first.
template <class Hook = NoHook, class Wait = NoHook>
GAC_HD BlockPass block_steps(const ModelSpec& m, const BlockPlan& plan, const float* img, BlockPass p, int end,
                             float* act0, float* act1, int tid, int threads, float* trace = nullptr,
                             Hook after_first_step = Hook{}, int rotation = 0, Wait before_later_syncs = Wait{}) {
  for (; p.l < end; ++p.l, ++p.step) {
    const Layer& L = m.layers[p.l];
    const BlockLayer& B = plan.layers[p.l];
    float* out = p.step & 1 ? act1 : act0;
    if (B.fuse_pool) {
      block_conv_pool<BlockPlan::kFusedK>(L, m.layers[p.l + 1], B, p.layout, img, p.in, out, tid, threads, rotation);
      ++p.l;  // the pool layer ran too
    } else if (L.kind == LayerKind::dense) {
      block_dense(L, B, p.layout, img, p.in, out, tid, threads, rotation);
    } else if (L.kind == LayerKind::conv) {
      block_conv(L, B, p.layout, img, p.in, out, tid, threads, rotation);
    } else {
      block_maxpool(L, B, p.layout, p.in, out, tid, threads, rotation);
    }
    if (p.step > 0) before_later_syncs();
    block_sync();
    if (p.step == 0) after_first_step();
    const Layer& O = m.layers[p.l];
    if (trace) {  // `out` is rewritten two steps on, after another barrier
      const int plane = O.out_h * O.out_w;
      for (int i = tid; i < O.out_size(); i += threads)
        trace[i] = out[B.out.at(i / plane, (i % plane) / O.out_w, i % O.out_w)];
      trace += O.out_size();
    }
    p.in = out;
    p.layout = B.out;
  }
  return p;
}

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
  const BlockPass p = block_steps(m, plan, img, BlockPass{x, plan.in}, m.n_layers, act0, act1, tid, threads, trace,
                                  after_first_step, rotation);
  return p.in + p.layout.base;
}

// The dense tail's steps (layers plan.pair_tail on) of two examples at the
// same step, a's in act0a/act1a and b's in act0b/act1b: each weight is
// loaded once for both (full evaluation: the kernel runs every example).
GAC_HD void block_dense_pair_steps(const ModelSpec& m, const BlockPlan& plan, const float* img, BlockPass& a,
                                   BlockPass& b, float* act0a, float* act1a, float* act0b, float* act1b, int tid,
                                   int threads, int rotation) {
  for (; a.l < m.n_layers; ++a.l, ++a.step) {
    const BlockLayer& B = plan.layers[a.l];
    float* out_a = a.step & 1 ? act1a : act0a;
    float* out_b = a.step & 1 ? act1b : act0b;
    block_dense_pair(m.layers[a.l], B, a.layout, img, a.in, b.in, out_a, out_b, tid, threads, rotation);
    block_sync();
    a.in = out_a;
    b.in = out_b;
    a.layout = b.layout = B.out;
  }
  b.l = a.l;
  b.step = a.step;
}

}  // namespace gac
