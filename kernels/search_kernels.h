// The device search kernels, as plain __host__ __device__ functions: the body
// of each kernel, for one thread (one-thread-per-item kernels) or one thread
// of one block (block kernels). kernels/cuda_device.cu wraps each in a
// __global__ function; tests/emulated_device.cpp runs the same bodies on host
// threads, a block's threads meeting at a real barrier in block_sync(), so CI
// exercises every line here without a GPU.
//
// Two ways to evaluate draws:
//
// Linear and MLP models (dense_*): one thread per draw, early rejection by
// example groups with the surviving draws compacted between groups. With one
// thread running all examples and leaving at its first miss, a warp runs as
// long as its longest-lived lane, and most lanes would sit idle after example
// 0 or 1. Instead every launch checks example 0 for all draws, then example 1
// for the survivors, then examples 2-3, 4-7, ... (groups doubling in size),
// and between groups a compaction (CUB DeviceSelect) packs the surviving slots
// into a dense list, so the next group's warps are full of live draws again.
// Within a group no thread exits early: a doomed draw wastes at most one
// group's work. Full evaluation is one group of all examples. Storage is
// lane-interleaved (kernels/strided_forward.h) so that a warp's lanes touch
// neighbouring addresses:
//   params  [n_params][capacity], by slot: generated once, by the first group
//   logits  [n * n_classes][capacity], by slot: kept until the loss is summed
//   act     [2 * max_activation][act_threads], by thread: per-example scratch
// Once the last group leaves only perfect draws, dense_finish sums each one's
// cross-entropy in example order from the stored logits, as evaluate_draw does.
//
// Models with convolutions (block_*): a thread block per draw
// (kernels/block_forward.h). The block generates its draw's parameters
// straight into shared memory and keeps them there for every example: at
// 11,074 LeNet parameters, a round trip through global memory would cost more
// than an example's 92k fma. Models too big for shared memory keep the image
// in a per-block slice of global memory instead (the same code, another
// pointer). The whole block decides together after each example (thread 0
// writes the verdict to shared memory, all threads read it after a barrier),
// so leaving at the first miss is uniform across the block's warps. The grid
// is persistent and blocks take the next slot from an atomic counter: draws
// cost very different times (one example or all of them), and a fixed share
// per block would leave the early finishers idle. A perfect draw's loss needs
// its weight norms, sequential double sums over thousands of weights: the
// block only keeps the draw's logits, and block_finish sums the loss of every
// perfect draw of the launch afterwards, one thread each (as dense_finish
// does). The sphere prior's factor is such a sum too: sphere_factors computes
// it for every draw of the launch, one thread each, before block_evaluate.
//
// block_trace writes every layer's output, so the tests can hold each layer
// against the reference on a device.
//
// Test scoring (generate_model, dense_score, block_score): the accepted
// models are generated on the device and every (model, test example) pair
// gets its correctness and cross-entropy; the host sums them in example order
// in double, as the CPU backend does. No cuBLAS: a GEMM sums in its own
// blocked order, so an argmax near a tie could flip and the accuracy would
// differ from the CPU's, which it must equal exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/block_forward.h"
#include "kernels/strided_forward.h"

namespace gac {

// ---- linear and MLP: a thread per draw ------------------------------------------

struct DenseArgs {
  ModelSpec m;
  PriorSpec prior;
  StreamKey key;
  uint64_t first;           // draw of slot 0
  uint32_t count;           // slots in this launch
  size_t capacity;          // stride of params and logits (>= count)
  size_t act_threads;       // stride of act (>= the launch's total threads)
  const float* X;           // training examples [n][in_size]
  const int32_t* Y;         // labels [n]
  int n;
  float* params;
  float* logits;
  float* act;
  uint8_t* alive_flag;      // [capacity] 1 while the slot's draw has classified every example so far
  const uint32_t* alive;    // surviving slots (after the previous group)
  const uint32_t* n_alive;  // their number, on the device (written by the compaction)
};

// Examples [e0, e1) for every live draw. The first group walks all slots,
// generates their parameters and sets alive_flag; later groups walk the
// compacted list and clear the flag of draws that miss an example.
GAC_HD void dense_group_thread(const DenseArgs& a, int e0, int e1, bool first_group, size_t tid, size_t threads) {
  const uint32_t total = first_group ? a.count : *a.n_alive;
  const int C = a.m.n_classes, D = a.m.in_size();
  const Strided buf0{a.act + tid, a.act_threads};
  const Strided buf1{a.act + a.m.max_activation * a.act_threads + tid, a.act_threads};
  for (size_t i = tid; i < total; i += threads) {
    const uint32_t slot = first_group ? static_cast<uint32_t>(i) : a.alive[i];
    const Strided p{a.params + slot, a.capacity};
    const Strided logits{a.logits + slot, a.capacity};
    if (first_group) generate_params(a.prior, a.key, a.first + slot, a.m.n_params, p);
    bool ok = true;
    for (int e = e0; e < e1; ++e) {
      const Strided z = dense_model_forward_at(a.m, p, a.X + static_cast<size_t>(e) * D, buf0, buf1);
      for (int c = 0; c < C; ++c) logits[e * C + c] = z[c];
      ok = ok && argmax_at(z, C) == a.Y[e];
    }
    if (first_group) a.alive_flag[slot] = ok ? 1 : 0;
    else if (!ok) a.alive_flag[slot] = 0;
  }
}

// Mean training loss of each perfect draw (the survivors of the last group),
// at hit_loss[i] for the i-th survivor.
GAC_HD void dense_finish_thread(const DenseArgs& a, LossKind loss, float* hit_loss, size_t tid, size_t threads) {
  const uint32_t total = *a.n_alive;
  for (size_t i = tid; i < total; i += threads) {
    const uint32_t slot = a.alive[i];
    const Strided p{a.params + slot, a.capacity};
    const Strided logits{a.logits + slot, a.capacity};
    hit_loss[i] = training_loss_at(a.m, p, logits, a.Y, a.n, loss);
  }
}

// ---- models with convolutions: a block per draw ----------------------------------

// A block's shared scalars (static shared memory on the device).
struct BlockShared {
  int ok;          // the verdict on the current example
  uint32_t slot;   // the draw being evaluated
};

// A block's working memory, carved from its dynamic shared memory: the
// parameter image (unless it lives in global memory), example 0 (resident
// for the whole launch: every draw starts there), a buffer for the other
// examples (the next one is prefetched into it), and two activation buffers.
// Every piece is a multiple of 4 floats: 16-byte aligned. Without
// plan.resident_example (too little shared memory) x1 is x0: one buffer.
struct BlockMemory {
  float* img;
  float* x0;
  float* x1;
  float* act0;
  float* act1;
  float* act0b;  // with plan.pair_tail: the second example's activations in full evaluation
  float* act1b;
};

// Dynamic shared memory of the block kernels, in floats.
GAC_HD size_t block_smem_floats(const BlockPlan& plan, bool smem_image) {
  return (smem_image ? static_cast<size_t>(plan.image_floats) : 0) +
         (plan.resident_example ? 2 : 1) * static_cast<size_t>(plan.in_floats) +
         (plan.pair_tail ? 2 : 1) * (static_cast<size_t>(plan.act_floats) + plan.act1_floats);
}

// `images` holds one image per block when smem_image is false.
GAC_HD BlockMemory carve_block_memory(const BlockPlan& plan, bool smem_image, float* smem, float* images, int block) {
  BlockMemory mem;
  mem.img = smem_image ? smem : images + static_cast<size_t>(block) * plan.image_floats;
  mem.x0 = smem_image ? smem + plan.image_floats : smem;
  mem.x1 = plan.resident_example ? mem.x0 + plan.in_floats : mem.x0;
  mem.act0 = mem.x1 + plan.in_floats;
  mem.act1 = mem.act0 + plan.act_floats;
  mem.act0b = plan.pair_tail ? mem.act1 + plan.act1_floats : mem.act0;
  mem.act1b = mem.act0b + plan.act_floats;
  return mem;
}

struct BlockArgs {
  ModelSpec m;
  BlockPlan plan;
  PriorSpec prior;
  PhiloxKeys keys;          // the stream key's round keys (philox_keys)
  uint64_t first;           // draw of slot 0
  uint32_t count;           // slots in this launch
  const float* X;           // training examples [n][in_size]
  const int32_t* Y;
  int n;                    // 0: generate the parameters only (the bench's generation rate)
  LossKind loss;
  int early_reject;
  float* logits;            // [count][n * n_classes], by slot
  float* images;            // [blocks][plan.image_floats] when the image is not in shared memory
  uint8_t* perfect;         // [count] 1: classified every example
  double* sphere;           // [count] each draw's sphere factor (sphere prior), else null
  unsigned long long* examples;  // example evaluations done (one atomic add per draw)
  uint32_t* next_slot;      // work counter, zero at launch
  StreamKey key;            // for block_finish
};

// The sphere prior's factor of each slot's draw, one thread per slot: the
// sum over all parameters is sequential (the reference's order), so it runs
// across draws rather than inside the block that evaluates one.
GAC_HD void sphere_factor_thread(const BlockArgs& a, size_t tid, size_t threads) {
  for (size_t slot = tid; slot < a.count; slot += threads)
    a.sphere[slot] = sphere_factor(a.prior, a.key, a.first + slot, a.m.n_params);
}

// Which buffer holds example e of a block's draw, and the copies that bring
// it. With plan.resident_example, example 0 is staged once and stays in x0;
// while example e runs, example e + 1 is copied into x1 asynchronously (from
// the start of example 0, which does not use x1; after the first step of
// any other, the last reader of x1), and every thread waits for its own
// copies before the barrier that ends example e: the next example is there
// without a wait in the common case, and a draw that stops at example 0
// leaves example 1 in x1 for the next draw. Without it, each example is
// staged into the one buffer when it is needed. Every call is made by all
// threads with the same arguments, so the state is the same in each.
struct ExampleStager {
  const BlockArgs& a;
  BlockMemory mem;
  int tid, threads;
  int staged = -1;       // the example in x1 (or on its way)
  bool pending = false;  // this thread has copies in flight

  GAC_HD void stage(int e, float* dst) {
    block_stage_example(a.m, a.plan, a.X + static_cast<size_t>(e) * a.m.in_size(), dst, tid, threads);
  }
  // Once per launch, before the first barrier.
  GAC_HD void start() {
    if (a.n == 0 || !a.plan.resident_example) return;
    stage(0, mem.x0);
    async_copy_wait_all();  // published by the barrier after the first slot is taken
  }
  GAC_HD void prefetch(int e) {
    if (e >= a.n || staged == e) return;
    stage(e, mem.x1);
    staged = e;
    pending = true;
  }
  // Example e, where every thread can read it.
  GAC_HD const float* begin(int e) {
    if (!a.plan.resident_example) {
      stage(e, mem.x0);
      async_copy_wait_all();
      block_sync();
      return mem.x0;
    }
    if (e == 0) prefetch(1);
    return e == 0 ? mem.x0 : mem.x1;
  }
  GAC_HD void after_first_step(int e) {
    if (a.plan.resident_example && e > 0) prefetch(e + 1);
  }
  // Before the barrier that ends example e.
  GAC_HD void before_verdict() {
    if (!pending) return;
    async_copy_wait_all();
    pending = false;
  }
};

// One thread `tid` of `threads` in block `block`: takes slots until none is
// left. Every barrier is reached by all threads of the block: the loop's
// exits depend only on values read from shared memory after a barrier.
template <PriorClass C>
GAC_HD void block_evaluate_thread(const BlockArgs& a, BlockShared& sh, BlockMemory mem, int tid, int threads) {
  const int n_classes = a.m.n_classes;
  const BlockGenerator gen = make_block_generator(a.plan, a.m.n_params, tid, threads);
  ExampleStager examples{a, mem, tid, threads};
  examples.start();
  for (;;) {
    if (tid == 0) sh.slot = atomic_fetch_add(a.next_slot, 1u);
    block_sync();
    const uint32_t slot = sh.slot;  // rewritten only after the barrier that ends this iteration
    if (slot >= a.count) break;
    const double sphere = C == PriorClass::sphere ? a.sphere[slot] : 1.0;
    block_generate_as<C>(a.plan, gen, a.m.n_params, a.prior, a.keys, a.first + slot, sphere, mem.img);
    bool perfect = true;
    const int rotation = static_cast<int>(slot & 3);
    int e = 0;  // examples done
    while (e < a.n) {
      // Full evaluation runs examples e and e + 1 together through the dense
      // tail (each weight loaded once for both), after each one's conv steps:
      // one call site of the steps (a second would double the kernel's code
      // and its registers), example e's, then e + 1's up to the dense tail.
      // Example e + 1's copies are awaited before the barrier that ends
      // example e's second step (or after its only one).
      const bool pair = !a.early_reject && a.plan.pair_tail > 0 && e + 1 < a.n;
      BlockPass p{};
      for (int k = 0; k < (pair ? 2 : 1); ++k) {
        p = block_steps(a.m, a.plan, mem.img, BlockPass{examples.begin(e + k), a.plan.in},
                        pair ? a.plan.pair_tail : a.m.n_layers, k ? mem.act0b : mem.act0, k ? mem.act1b : mem.act1,
                        tid, threads, nullptr, [&examples, next = e + k] { examples.after_first_step(next); },
                        rotation, [&examples, wait = pair && k == 0] {
                          if (wait) examples.before_verdict();
                        });
        if (pair && k == 0 && p.step < 2) {
          examples.before_verdict();
          block_sync();
        }
      }
      const float* z = p.in + p.layout.base;  // example e's logits (e + 1's with `pair`)
      const float* z_first = z;
      if (pair) {  // example e's pass stands where e + 1's does, in the first pair of buffers
        BlockPass p0 = p;
        p0.in = p.in == mem.act0b ? mem.act0 : mem.act1;
        block_dense_pair_steps(a.m, a.plan, mem.img, p0, p, mem.act0, mem.act1, mem.act0b, mem.act1b, tid, threads,
                               rotation);
        z_first = p0.in + p0.layout.base;
        z = p.in + p.layout.base;
      }
      examples.before_verdict();
      // The verdict's thread, in warp slot mod 4 like the steps' rotation:
      // over any four draws each scheduler writes the logits equally often.
      if (tid == step_thread(0, threads, rotation)) {
        bool all_ok = true;
        for (int k = 0; k < (pair ? 2 : 1); ++k) {
          const float* zk = k == 0 ? z_first : z;
          float* const logits = a.logits + (static_cast<size_t>(slot) * a.n + e + k) * n_classes;
          for (int c = 0; c < n_classes; ++c) logits[c] = zk[c];
          all_ok = all_ok && argmax(zk, n_classes) == a.Y[e + k];
        }
        sh.ok = all_ok;
      }
      block_sync();
      const bool ok = sh.ok != 0;  // the same value in every thread: uniform control flow
      e += pair ? 2 : 1;
      perfect = perfect && ok;
      if (!ok && a.early_reject) break;
    }
    // A perfect draw's loss needs its weight norms: long sequential sums,
    // left to block_finish (one thread per perfect draw) so the block moves on.
    if (tid == 0) {
      a.perfect[slot] = perfect ? 1 : 0;
      atomic_fetch_add(a.examples, static_cast<unsigned long long>(e));
    }
    block_sync();  // the image, sh.ok and sh.slot are rewritten for the next draw
  }
  async_copy_wait_all();
}

// Mean training loss of each perfect draw (slots hits[0 .. *n_hits), in
// order), at hit_loss[i], from its stored logits and its logit scale, as
// evaluate_draw computes it. One thread per draw.
GAC_HD void block_finish_thread(const BlockArgs& a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss,
                                size_t tid, size_t threads) {
  const int C = a.m.n_classes;
  for (size_t i = tid; i < *n_hits; i += threads) {
    const uint32_t slot = hits[i];
    const double sphere = a.sphere ? a.sphere[slot] : 1.0;
    const float scale = streamed_logit_scale(a.m, a.prior, a.key, a.first + slot, sphere, a.loss);
    const float* logits = a.logits + static_cast<size_t>(slot) * a.n * C;
    float sum = 0.0f;
    for (int e = 0; e < a.n; ++e) sum = add_rn(sum, cross_entropy(logits + e * C, C, a.Y[e], scale));
    hit_loss[i] = sum / static_cast<float>(a.n);
  }
}

// ---- test scoring -------------------------------------------------------------------

// Parameters of draws[i] at params[i * n_params] (state_dict order) and, when
// scales is not null, its logit scale.
GAC_HD void generate_model_thread(const ModelSpec& m, const PriorSpec& prior, StreamKey key, LossKind loss,
                                  const uint64_t* draws, uint32_t i, float* params, float* scales) {
  float* p = params + static_cast<size_t>(i) * m.n_params;
  generate_params(prior, key, draws[i], m.n_params, p);
  if (scales) scales[i] = logit_scale(m, p, loss);
}

struct ScoreArgs {
  ModelSpec m;
  BlockPlan plan;
  uint32_t models;
  const float* params;   // [models][n_params]
  const float* scales;   // [models]
  const float* X;        // test examples [n][in_size]
  const int32_t* Y;
  int n;
  float* act;            // dense: [2 * max_activation][total threads]; block: per-block images
  uint8_t* correct;      // [models][n]
  float* loss;           // [models][n]
};

// Dense models: one thread per (model, example) pair. Neighbouring threads
// share the model, so its parameter reads are broadcasts.
GAC_HD void dense_score_thread(const ScoreArgs& a, size_t tid, size_t threads) {
  const size_t pairs = static_cast<size_t>(a.models) * a.n;
  const int C = a.m.n_classes, D = a.m.in_size();
  const Strided buf0{a.act + tid, threads};
  const Strided buf1{a.act + a.m.max_activation * threads + tid, threads};
  for (size_t i = tid; i < pairs; i += threads) {
    const size_t model = i / a.n;
    const int e = static_cast<int>(i % a.n);
    const float* p = a.params + model * a.m.n_params;
    const Strided z = dense_model_forward_at(a.m, p, a.X + static_cast<size_t>(e) * D, buf0, buf1);
    a.correct[i] = argmax_at(z, C) == a.Y[e] ? 1 : 0;
    a.loss[i] = cross_entropy_at(z, 0, C, a.Y[e], a.scales[model]);
  }
}

constexpr int kScoreChunk = 32;  // test examples per block work item

// Other models: a block per (model, chunk of kScoreChunk examples), work
// items strided over the `blocks` blocks.
GAC_HD void block_score_thread(const ScoreArgs& a, BlockMemory mem, int block, int blocks, int tid, int threads) {
  const int C = a.m.n_classes, D = a.m.in_size();
  const int chunks = (a.n + kScoreChunk - 1) / kScoreChunk;
  const size_t items = static_cast<size_t>(a.models) * chunks;
  for (size_t item = block; item < items; item += blocks) {
    const size_t model = item / chunks;
    const int e0 = static_cast<int>(item % chunks) * kScoreChunk;
    const int e1 = e0 + kScoreChunk < a.n ? e0 + kScoreChunk : a.n;
    block_load_image(a.m, a.plan, a.params + model * a.m.n_params, mem.img, tid, threads);
    for (int e = e0; e < e1; ++e) {
      block_stage_example(a.m, a.plan, a.X + static_cast<size_t>(e) * D, mem.x1, tid, threads);
      async_copy_wait_all();
      block_sync();
      const float* z = block_forward(a.m, a.plan, mem.img, mem.x1, mem.act0, mem.act1, tid, threads);
      if (tid == 0) {
        const size_t pair = model * a.n + e;
        a.correct[pair] = argmax(z, C) == a.Y[e] ? 1 : 0;
        a.loss[pair] = cross_entropy(z, C, a.Y[e], a.scales[model]);
      }
      block_sync();  // xs and the activations are rewritten next
    }
  }
}

// ---- every layer's output (tests) -----------------------------------------------

struct TraceArgs {
  ModelSpec m;
  BlockPlan plan;
  const float* params;  // one model, state_dict order
  const float* X;       // examples [n][in_size], one block each
  float* images;        // [n][plan.image_floats]
  float* trace;         // [n][block_trace_floats]
};

// Block `block` runs example `block` and writes each step's output.
GAC_HD void block_trace_thread(const TraceArgs& a, BlockMemory mem, int block, int tid, int threads) {
  const int D = a.m.in_size();
  block_load_image(a.m, a.plan, a.params, mem.img, tid, threads);
  block_stage_example(a.m, a.plan, a.X + static_cast<size_t>(block) * D, mem.x1, tid, threads);
  async_copy_wait_all();
  block_sync();
  block_forward(a.m, a.plan, mem.img, mem.x1, mem.act0, mem.act1, tid, threads,
                a.trace + static_cast<size_t>(block) * block_trace_floats(a.m, a.plan));
}

}  // namespace gac
