// Linear and MLP models whose draws fit a block's shared memory (the paper's
// MLPs: the kink 2->10->2 has 42 parameters): a tile of `threads` draws per
// block, with no round trip through device memory.
//
// The thread-per-draw kernels of kernels/search_kernels.h (dense_group and
// CUB compactions between example groups) keep every draw's parameters and
// logits in device memory: ~600 bytes of HBM traffic a draw and a dozen
// launches. Here a block takes a tile of consecutive slots, thread t generates
// slot t's parameters into column t of shared memory ([n_params][threads]:
// lanes touch consecutive words) and runs example group 0 ([0, 1)); the
// survivors are compacted inside the block (block_append: a warp ballot and a
// prefix over the warps' counts, order kept), so the next group's warps are
// full of live draws again, each thread reading its draw's column; and so on
// for [1, 2), [2, 4), ... Within a group no thread leaves early, as in the
// CUB version. A draw that survives every group is perfect: its thread runs
// the n examples again for the logits and sums the loss as evaluate_draw
// does (perfect draws are rare; nothing else is stored), and appends (slot,
// loss) to the launch's hit list with an atomic (the host sorts the hits).
// Device memory: the hit list, flat in the number of draws.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/block_forward.h"  // block_sync
#include "kernels/device_intrinsics.h"
#include "kernels/strided_forward.h"

namespace gac {

struct DenseTileArgs {
  ModelSpec m;
  PriorSpec prior;
  StreamKey key;
  uint64_t first;           // draw of slot 0
  uint32_t count;           // slots in this launch
  const float* X;           // training examples [n][in_size]
  const int32_t* Y;         // labels [n]
  int n;
  LossKind loss;
  int n_groups;             // 0: generate the parameters only (the bench's generation rate)
  int early_reject;         // groups [0,1), [1,2), [2,4), ... (example_groups); else one group [0, n)
  uint32_t* next_tile;      // work counter, zero at launch
  uint32_t* n_hits;         // zero at launch
  uint32_t* hit_slot;       // [count]: perfect slots, in no particular order
  float* hit_loss;          // [count]: their mean training loss
  unsigned long long* examples;  // example evaluations done
};

// A block's shared memory, in 32-bit words: parameters and activations per
// thread, two queues of survivors, the warps' counts and the tile number.
GAC_HD size_t dense_tile_smem_words(const ModelSpec& m, int threads) {
  return static_cast<size_t>(m.n_params + 2 * m.max_activation + 2) * threads + threads + 4;
}

struct DenseTileMemory {
  float* params;     // [n_params][threads]
  float* act;        // [2 * max_activation][threads]
  uint32_t* queue0;     // survivors of the even groups
  uint32_t* queue1;     // survivors of the odd groups
  uint32_t* warp_base;  // [warps + 1]: the last one is the running count
  uint32_t* tile;
};

GAC_HD DenseTileMemory carve_dense_tile_memory(const ModelSpec& m, uint32_t* smem, int threads) {
  DenseTileMemory mem;
  mem.params = reinterpret_cast<float*>(smem);
  mem.act = mem.params + static_cast<size_t>(m.n_params) * threads;
  mem.queue0 = reinterpret_cast<uint32_t*>(mem.act + static_cast<size_t>(2 * m.max_activation) * threads);
  mem.queue1 = mem.queue0 + threads;
  mem.warp_base = mem.queue1 + threads;
  mem.tile = mem.warp_base + threads + 2;
  return mem;
}

// Every thread's `value` whose `keep` holds, appended in thread order to
// out[*count ...], *count advanced: a ballot per warp, then thread 0 turns
// the warps' counts into offsets. Called by all threads (uniform control
// flow); ends with a barrier, after which out and *count are visible.
GAC_HD void block_append(bool keep, uint32_t value, uint32_t* out, uint32_t* warp_base, int tid, int threads) {
  const int width = warp_width(), lane = warp_lane(), warp = tid / width, warps = (threads + width - 1) / width;
  const uint32_t votes = warp_ballot(keep);
  if (lane == 0) warp_base[warp] = static_cast<uint32_t>(popcount32(votes));
  block_sync();
  if (tid == 0) {
    uint32_t at = warp_base[warps];
    for (int w = 0; w < warps; ++w) {
      const uint32_t kept = warp_base[w];
      warp_base[w] = at;
      at += kept;
    }
    warp_base[warps] = at;
  }
  block_sync();
  if (keep) out[warp_base[warp] + popcount32(votes & ((1u << lane) - 1u))] = value;
  block_sync();
}

// The end of example group g (host/backends/device_launch.h's example_groups).
GAC_HD int tile_group_end(const DenseTileArgs& a, int g) {
  if (!a.early_reject) return a.n;
  return g < 30 && (1 << g) < a.n ? 1 << g : a.n;
}

// Examples [e0, e1) of the draw whose parameters are in `p`: true when
// every one is classified correctly (all are run: no early exit in a group).
GAC_HD bool dense_tile_group(const DenseTileArgs& a, Strided p, Strided buf0, Strided buf1, int e0, int e1) {
  const int C = a.m.n_classes, D = a.m.in_size();
  bool ok = true;
  for (int e = e0; e < e1; ++e) {
    const Strided z = dense_model_forward_at(a.m, p, a.X + static_cast<size_t>(e) * D, buf0, buf1);
    ok = ok && argmax_at(z, C) == a.Y[e];
  }
  return ok;
}

// The mean training loss of a perfect draw, as evaluate_draw sums it.
GAC_HD float dense_tile_loss(const DenseTileArgs& a, Strided p, Strided buf0, Strided buf1) {
  const int C = a.m.n_classes, D = a.m.in_size();
  const float scale = logit_scale_at(a.m, p, a.loss);
  float sum = 0.0f;
  for (int e = 0; e < a.n; ++e) {
    const Strided z = dense_model_forward_at(a.m, p, a.X + static_cast<size_t>(e) * D, buf0, buf1);
    sum = add_rn(sum, cross_entropy_at(z, 0, C, a.Y[e], scale));
  }
  return sum / static_cast<float>(a.n);
}

// One thread `tid` of `threads` in a block: takes tiles until none is left.
GAC_HD void dense_tile_thread(const DenseTileArgs& a, DenseTileMemory mem, int tid, int threads) {
  const Strided buf0{mem.act + tid, static_cast<size_t>(threads)};
  const Strided buf1{mem.act + static_cast<size_t>(a.m.max_activation) * threads + tid, static_cast<size_t>(threads)};
  unsigned long long examples = 0;
  for (;;) {
    if (tid == 0) *mem.tile = atomic_fetch_add(a.next_tile, 1u);
    block_sync();
    const uint64_t tile_first = static_cast<uint64_t>(*mem.tile) * threads;
    if (tile_first >= a.count) break;
    const uint64_t slot = tile_first + tid;
    const bool active = slot < a.count;
    if (active) generate_params(a.prior, a.key, a.first + slot, a.m.n_params, Strided{mem.params + tid, static_cast<size_t>(threads)});
    if (a.n_groups > 0) {
      // Group 0 on every draw of the tile, then the survivors' groups.
      const bool ok = active && dense_tile_group(a, Strided{mem.params + tid, static_cast<size_t>(threads)}, buf0,
                                                 buf1, 0, tile_group_end(a, 0));
      if (active) examples += tile_group_end(a, 0);
      if (tid == 0) mem.warp_base[(threads + warp_width() - 1) / warp_width()] = 0;
      block_append(ok, static_cast<uint32_t>(tid), mem.queue0, mem.warp_base, tid, threads);
      const int last = (threads + warp_width() - 1) / warp_width();
      for (int g = 1; g < a.n_groups; ++g) {
        const uint32_t alive = mem.warp_base[last];
        const uint32_t* in = g & 1 ? mem.queue0 : mem.queue1;  // (selects: an indexed array would live in local memory)
        uint32_t* out = g & 1 ? mem.queue1 : mem.queue0;
        block_sync();  // every thread has read the count before it is reset
        if (tid == 0) mem.warp_base[last] = 0;
        for (uint32_t base = 0; base < alive; base += threads) {
          const bool has = base + tid < alive;
          const uint32_t column = has ? in[base + tid] : 0;
          const int e0 = tile_group_end(a, g - 1), e1 = tile_group_end(a, g);
          const bool survives = has && dense_tile_group(a, Strided{mem.params + column, static_cast<size_t>(threads)},
                                                        buf0, buf1, e0, e1);
          if (has) examples += e1 - e0;
          block_append(survives, column, out, mem.warp_base, tid, threads);
        }
      }
      const uint32_t perfect = mem.warp_base[last];
      const uint32_t* hits = a.n_groups & 1 ? mem.queue0 : mem.queue1;
      for (uint32_t i = tid; i < perfect; i += threads) {
        const uint32_t column = hits[i];
        const float loss = dense_tile_loss(a, Strided{mem.params + column, static_cast<size_t>(threads)}, buf0, buf1);
        const uint32_t at = atomic_fetch_add(a.n_hits, 1u);
        a.hit_slot[at] = static_cast<uint32_t>(tile_first + column);
        a.hit_loss[at] = loss;
      }
    }
    block_sync();  // the parameters, queues and tile number are rewritten for the next tile
  }
  if (examples) atomic_fetch_add(a.examples, examples);
}

}  // namespace gac
