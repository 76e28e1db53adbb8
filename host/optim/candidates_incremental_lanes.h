// The lane-wise layers of the incremental evaluator's kernel
// (host/optim/candidates_incremental_kernel.h): lane l of every vector is one
// training example; each lane performs kernels/forward.h's operations on its
// example in forward.h's order, so its values are bit-identical to it.
//
// Included only by candidates_incremental_{avx512,avx2,generic}.cpp, each
// compiled with its own instruction set, after defining GAC_LANES_ISA
// (host/util/lane_vec.h: Vec, W and the lane-wise fma, exp and log).
// Everything here is in an anonymous namespace, as there. With 512 and 256
// the fma of the hot loops is the intrinsic: objdump shows vfmadd231ps in
// them and no call into libm.
#pragma once

#include <cstdint>
#include <cstring>

#include "host/optim/candidates_incremental_kernel.h"
#include "host/util/lane_vec.h"

namespace gac::incremental_lanes {
namespace {

using namespace gac::lanes;
static_assert(kIncrementalLanePad % W == 0);
constexpr int kBlock = 8;  // vectors of examples kept in registers at once

// dense_forward's output units o .. o + U - 1 (weights w, w + w_stride, ...
// in memory order over the channels of `in`) on B vectors of examples from
// lane vector v0, from input channel c_from on: each sum starts at `from`
// (the units' sums before channel c_from, `lanes` apart) or, without it, at
// the unit's bias. With `partials`, the sums before each channel c >= c_from
// go to partials[c * stride] (units `lanes` apart). U units at once share
// each input's loads.
template <int U, int B>
void dense_units(const float* w, size_t w_stride, const float* bias, bool relu, const float* const* in, int c_from,
                 int in_c, int in_hw, int lanes, int v0, const float* from, float* partials, size_t stride,
                 float* const* out) {
  Vec acc[U][B];
  for (int u = 0; u < U; ++u)
    for (int k = 0; k < B; ++k) acc[u][k] = from ? load(from + u * lanes + (v0 + k) * W) : splat(bias[u]);
  for (int c = c_from; c < in_c; ++c) {
    if (partials)
      for (int u = 0; u < U; ++u)
        for (int k = 0; k < B; ++k) store(partials + c * stride + u * lanes + (v0 + k) * W, acc[u][k]);
    const float* row = in[c] + v0 * W;
    for (int j = 0; j < in_hw; ++j, row += lanes, ++w) {
      Vec x[B];
      for (int k = 0; k < B; ++k) x[k] = load(row + k * W);
      for (int u = 0; u < U; ++u) {
        const Vec wv = splat(w[u * w_stride]);
        for (int k = 0; k < B; ++k) acc[u][k] = vfma(wv, x[k], acc[u][k]);
      }
    }
  }
  for (int u = 0; u < U; ++u)
    for (int k = 0; k < B; ++k) store(out[u] + (v0 + k) * W, relu ? vrelu(acc[u][k]) : acc[u][k]);
}

// conv_forward's output pixels (oy, ox .. ox + X - 1) of one channel
// (weights W_oc) on B vectors of examples, each pixel's sum in conv_forward's
// order. Neighbouring pixels share their input columns: column ox + t feeds
// pixel ox + x through weight kx = t - x, so each column is loaded once.
template <int X, int B>
void conv_pixels(const Layer& L, const float* W_oc, float bias, const float* const* in, int oy, int ox, int lanes,
                 int v0, float* out) {
  const int k = L.k;
  Vec acc[X][B];
  for (int x = 0; x < X; ++x)
    for (int b = 0; b < B; ++b) acc[x][b] = splat(bias);
  for (int ic = 0; ic < L.in_c; ++ic)
    for (int ky = 0; ky < k; ++ky) {
      const float* row = in[ic] + (static_cast<size_t>(oy + ky) * L.in_w + ox) * lanes + v0 * W;
      const float* w = W_oc + (ic * k + ky) * k;
      for (int t = 0; t < k + X - 1; ++t, row += lanes) {
        Vec col[B];
        for (int b = 0; b < B; ++b) col[b] = load(row + b * W);
        for (int x = 0; x < X; ++x)
          if (t - x >= 0 && t - x < k) {
            const Vec wv = splat(w[t - x]);
            for (int b = 0; b < B; ++b) acc[x][b] = vfma(wv, col[b], acc[x][b]);
          }
      }
    }
  for (int x = 0; x < X; ++x)
    for (int b = 0; b < B; ++b)
      store(out + static_cast<size_t>(x) * lanes + (v0 + b) * W, L.relu ? vrelu(acc[x][b]) : acc[x][b]);
}

// Calls body.template operator()<B>(v0) over the lanes / W vectors in blocks of up to kBlock.
template <typename Body>
void over_blocks(int lanes, Body&& body) {
  const int vectors = lanes / W;
  int v0 = 0;
  for (; v0 + kBlock <= vectors; v0 += kBlock) body.template operator()<kBlock>(v0);
  switch (vectors - v0) {
    case 7: body.template operator()<7>(v0); break;
    case 6: body.template operator()<6>(v0); break;
    case 5: body.template operator()<5>(v0); break;
    case 4: body.template operator()<4>(v0); break;
    case 3: body.template operator()<3>(v0); break;
    case 2: body.template operator()<2>(v0); break;
    case 1: body.template operator()<1>(v0); break;
    default: break;
  }
}

// Dense units and conv pixels two at a time where the registers hold 2 x
// kBlock accumulators (AVX-512's 32).
constexpr int kDenseUnits = W == 16 ? 2 : 1;
constexpr int kConvPixels = W == 16 ? 2 : 1;

void dense(const Layer& L, const float* p, const float* const* in, int in_hw, int c_from, const float* from,
           float* partials, float* const* out, int o_begin, int o_end, int lanes) {
  const int in_c = L.in_size() / in_hw;
  const size_t stride = static_cast<size_t>(L.out_c) * lanes;  // one input channel's partial sums
  auto units = [&]<int U>(int o) {
    const float* w = p + L.w_off + static_cast<size_t>(o) * L.in_size() + static_cast<size_t>(c_from) * in_hw;
    float bias[U];
    for (int u = 0; u < U; ++u) bias[u] = L.b_off >= 0 ? p[L.b_off + o + u] : 0.0f;
    const float* f = from ? from + static_cast<size_t>(o) * lanes : nullptr;
    float* part = partials ? partials + static_cast<size_t>(o) * lanes : nullptr;
    over_blocks(lanes, [&]<int B>(int v0) {
      dense_units<U, B>(w, L.in_size(), bias, L.relu, in, c_from, in_c, in_hw, lanes, v0, f, part, stride, out + o);
    });
  };
  int o = o_begin;
  for (; o + kDenseUnits <= o_end; o += kDenseUnits) units.template operator()<kDenseUnits>(o);
  for (; o < o_end; ++o) units.template operator()<1>(o);
}

void layer(const Layer& L, const float* p, const float* const* in, int in_hw, float* const* out, int c_begin,
           int c_end, int lanes) {
  static_assert(kBlock == 8, "over_blocks handles remainders below 8");
  if (L.kind == LayerKind::dense) return dense(L, p, in, in_hw, 0, nullptr, nullptr, out, c_begin, c_end, lanes);
  for (int c = c_begin; c < c_end; ++c) {
    const float bias = L.b_off >= 0 ? p[L.b_off + c] : 0.0f;
    if (L.kind == LayerKind::conv) {
      const float* W_oc = p + L.w_off + static_cast<size_t>(c) * L.in_c * L.k * L.k;
      auto pixels = [&]<int X>(int oy, int ox) {
        float* o = out[c] + (static_cast<size_t>(oy) * L.out_w + ox) * lanes;
        over_blocks(lanes, [&]<int B>(int v0) { conv_pixels<X, B>(L, W_oc, bias, in, oy, ox, lanes, v0, o); });
      };
      for (int oy = 0; oy < L.out_h; ++oy) {
        int ox = 0;
        for (; ox + kConvPixels <= L.out_w; ox += kConvPixels) pixels.template operator()<kConvPixels>(oy, ox);
        for (; ox < L.out_w; ++ox) pixels.template operator()<1>(oy, ox);
      }
    } else {  // maxpool2, channel by channel
      for (int y = 0; y < L.out_h; ++y)
        for (int x = 0; x < L.out_w; ++x) {
          const float* r0 = in[c] + (static_cast<size_t>(2 * y) * L.in_w + 2 * x) * lanes;
          const float* r1 = r0 + static_cast<size_t>(L.in_w) * lanes;
          float* o = out[c] + (static_cast<size_t>(y) * L.out_w + x) * lanes;
          for (int v = 0; v < lanes; v += W)
            store(o + v, vmax2(vmax2(load(r0 + v), load(r0 + lanes + v)),
                               vmax2(load(r1 + v), load(r1 + lanes + v))));
        }
    }
  }
}

// forward.h's argmax and cross_entropy for every lane (example): loss[e]
// and hit[e] (1 where the argmax is labels[e]).
void score(const float* const* logits, int n_classes, const int32_t* labels, float scale, float* loss, int32_t* hit,
           int lanes) {
  for (int v = 0; v < lanes; v += W) {
    IVec label;
    std::memcpy(&label, labels + v, sizeof label);
    const Vec z0 = load(logits[0] + v), s = splat(scale);
    Vec best_z = z0, mx = z0 * s, z_label = z0;
    IVec best{};
    for (int c = 1; c < n_classes; ++c) {
      const Vec z = load(logits[c] + v);
      const IVec above = z > best_z;
      best_z = above ? z : best_z;
      best = above ? c : best;
      const Vec zs = z * s;
      mx = zs > mx ? zs : mx;
      z_label = label == c ? z : z_label;
    }
    Vec sum{};
    for (int c = 0; c < n_classes; ++c) sum = sum + vexp(load(logits[c] + v) * s + -mx);
    store(loss + v, vlog(sum) + (mx + -(z_label * s)));
    const IVec h = (best == label) & 1;
    std::memcpy(hit + v, &h, sizeof h);
  }
}

constexpr IncrementalKernel kernel(const char* name) { return {name, &layer, &dense, &score}; }

}  // namespace
}  // namespace gac::incremental_lanes
