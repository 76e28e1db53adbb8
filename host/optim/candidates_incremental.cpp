// The incremental pattern-search evaluator (candidates_incremental.h).
//
// Activations are kept in lanes (candidates_incremental_kernel.h): every
// channel of every layer for all n examples, examples innermost, so the SIMD
// kernel runs one example per lane. A move of parameter p in layer l0
// changes one output channel c0 of l0 (dense: one unit; conv: one feature
// map), which a max-pool keeps to channel c0; the first conv or dense layer
// after that changes in full, and so does everything after it. A candidate
// therefore recomputes channel c0 up to that layer and the rest in full, into
// its thread's buffers, reading unchanged channels from the cache. That first
// layer, when dense, starts each unit from the current point's sum before
// input channel c0 (kept by set_current) instead of from its bias: the same
// fmas from there on. The search's next point is one move away, so
// set_current updates the cache the same way.
//
// Where it pays: LeNet's fc layers hold ~90% of its parameters, and a move
// there skips both convolutions; linear models and MLPs recompute one unit
// and what follows. A move in the first conv still recomputes the second
// conv in full (little gain), but costs no more than a full evaluation.
#include "host/optim/candidates_incremental.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gac/error.h"
#include "host/optim/candidates_incremental_kernel.h"
#include "host/optim/candidates_incremental_workers.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"

namespace gac {
namespace {

// One candidate's moved layer's sum of squares (weight_norm's sequential
// double sum), continued from the weight after the moved one: `left` more
// squares, x[0], x[1], ..., onto `sq`.
struct SquareChain {
  const float* x;
  int left;
  double sq;
  int slot, layer;  // the candidate's slot in the batch and its moved layer
};
constexpr int kChainGroup = 8;  // chains interleaved on one thread

// Runs K chains (longest first) to their ends: all K while the shortest
// lasts, then the K - 1 longer ones, and so on. Each chain adds its squares
// in its own order; running several side by side only hides the fma latency
// that bounds one chain.
template <int K>
void finish_chains(SquareChain* c) {
  const int steps = c[K - 1].left;
  double sq[K];
  const float* x[K];
  for (int k = 0; k < K; ++k) sq[k] = c[k].sq, x[k] = c[k].x;
  for (int i = 0; i < steps; ++i)
    for (int k = 0; k < K; ++k) sq[k] = dfma_rn(x[k][i], x[k][i], sq[k]);
  for (int k = 0; k < K; ++k) c[k].sq = sq[k], c[k].x += steps, c[k].left -= steps;
  if constexpr (K > 1) finish_chains<K - 1>(c);
}

void finish_chains_plain(SquareChain* c, int count) {
  static_assert(kChainGroup == 8, "the switch below covers 1 .. 8 chains");
  switch (count) {
    case 8: return finish_chains<8>(c);
    case 7: return finish_chains<7>(c);
    case 6: return finish_chains<6>(c);
    case 5: return finish_chains<5>(c);
    case 4: return finish_chains<4>(c);
    case 3: return finish_chains<3>(c);
    case 2: return finish_chains<2>(c);
    case 1: return finish_chains<1>(c);
    default: return;
  }
}

// As candidates_cpu.cpp: with FMA hardware every dfma_rn is one instruction
// instead of a call into libm (the same bits); `flatten` inlines every callee
// so no function compiled for FMA is shared with other callers.
using FinishChainsFn = decltype(&finish_chains_plain);
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"), flatten)) void finish_chains_fma(SquareChain* c, int count) {
  finish_chains_plain(c, count);
}
#endif

bool has_fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// Where parameter p sits: its layer, the output channel it feeds, whether it is a weight.
struct ParamSite {
  int layer, channel;
  bool weight;
};

ParamSite param_site(const ModelSpec& m, int p) {
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    if (L.w_off >= 0 && p >= L.w_off && p < L.w_off + L.weight_count())
      return {l, (p - L.w_off) / (L.weight_count() / L.out_c), true};
    if (L.b_off >= 0 && p >= L.b_off && p < L.b_off + L.out_c) return {l, p - L.b_off, false};
  }
  return {-1, -1, false};  // not reached: every parameter belongs to a layer
}

// One layer's activations in lanes and a pointer per channel.
struct LaneBuffer {
  std::vector<float> data;
  std::vector<float*> channels;
  void resize(int n_channels, int hw, int lanes) {
    const size_t stride = static_cast<size_t>(hw) * lanes;
    data.assign(stride * n_channels, 0.0f);
    channels.resize(n_channels);
    for (int c = 0; c < n_channels; ++c) channels[c] = data.data() + stride * c;
  }
};

// One thread's copy of the current point, its layers' buffers and the
// channel pointers a candidate reads (cached channels with its own swapped in).
struct Scratch {
  std::vector<float> params, loss;  // loss: each example's cross-entropy (kernel's score)
  std::vector<int32_t> hit;
  std::vector<LaneBuffer> own;
  std::vector<std::vector<float*>> view;
};

class IncrementalEvaluator final : public CandidateEvaluator {
 public:
  IncrementalEvaluator(const StreamTask& task, int threads, const IncrementalKernel& kernel)
      : task_(task), m_(task.model), kernel_(kernel), threads_(threads), n_(static_cast<int>(task.train.size())),
        lanes_((n_ + kIncrementalLanePad - 1) / kIncrementalLanePad * kIncrementalLanePad), scratch_(threads),
        finish_chains_(has_fma() ? finish_chains_fma : finish_chains_plain) {
    const int hw = m_.in_h * m_.in_w, D = m_.in_size();
    input_.resize(m_.in_c, hw, lanes_);
    for (int e = 0; e < n_; ++e)
      for (int i = 0; i < D; ++i) input_.data[static_cast<size_t>(i) * lanes_ + e] = task.train.x[size_t(e) * D + i];
    labels_.assign(lanes_, 0);
    std::copy(task.train.y.begin(), task.train.y.end(), labels_.begin());
    cache_.resize(m_.n_layers);
    partials_.resize(m_.n_layers);
    for (int l = 0; l < m_.n_layers; ++l) {
      const Layer& L = m_.layers[l];
      cache_[l].resize(L.out_c, out_hw(l), lanes_);
      const size_t partial_floats = static_cast<size_t>(L.in_size() / in_hw(l)) * L.out_c * lanes_;
      if (l > 0 && L.kind == LayerKind::dense && partial_floats <= kMaxPartialFloats) partials_[l].resize(partial_floats);
    }
    for (Scratch& s : scratch_) {
      s.loss.resize(lanes_);
      s.hit.resize(lanes_);
      s.own.resize(m_.n_layers);
      s.view.resize(m_.n_layers);
      for (int l = 0; l < m_.n_layers; ++l) s.own[l].resize(m_.layers[l].out_c, out_hw(l), lanes_);
    }
    prefix_.assign(m_.n_params, 0.0);
    norms_.assign(m_.n_layers, 0.0);
  }

  // A point one parameter away from the current one (the search's next point)
  // updates the cache as a candidate would compute it; any other runs in full.
  Eval set_current(const std::vector<float>& current) override {
    int changed = -1, n_changed = 0;
    for (size_t j = 0; j < current.size() && have_current_ && n_changed < 2; ++j)
      if (std::memcmp(&current[j], &current_[j], sizeof(float)) != 0) changed = static_cast<int>(j), ++n_changed;
    full_synced_ = false;
    if (!have_current_ || n_changed > 1) {
      current_ = current;
      for (Scratch& s : scratch_) s.params = current;
      forward_in_full();
      for (int l = 0; l < m_.n_layers; ++l)
        if (m_.layers[l].w_off >= 0) sum_squares_from(l, m_.layers[l].w_off);
    } else if (n_changed == 1) {
      current_[changed] = current[changed];
      for (Scratch& s : scratch_) s.params[changed] = current[changed];
      const ParamSite site = param_site(m_, changed);
      propagate(site, current_.data(), nullptr);
      if (site.weight) sum_squares_from(site.layer, changed);
    }
    have_current_ = true;
    scale_ = 1.0f;
    if (task_.loss != LossKind::raw) {
      double product = 1.0;
      for (int l = 0; l < m_.n_layers; ++l)
        if (m_.layers[l].w_off >= 0) product = dmul_rn(product, norms_[l]);
      scale_ = static_cast<float>(ddiv_rn(1.0, product));
    }
    return score(cache_.back().channels.data(), scale_, scratch_[0]);
  }

  // One hand-out of work items to the workers: first the groups of norm
  // chains, then the candidates. A candidate waits for its chain's group
  // after its forward pass; the groups were all handed out before it, so each
  // is finished or under way.
  void evaluate(const PatternBatch& b, Eval* out) override {
    const uint64_t groups = prepare_chains(b);
    workers_.run(groups + static_cast<uint64_t>(b.count), [&](int t, uint64_t i) {
      if (i < groups) return finish_group(i);
      const int64_t slot = static_cast<int64_t>(i - groups);
      out[slot] = evaluate_move(scratch_[t], b.moves[slot], b.r, slot);
    });
  }

  // Every parameter moves: nothing to reuse.
  void evaluate(const GreedyBatch& b, Eval* out) override {
    if (!full_) full_ = make_cpu_candidate_evaluator(task_, threads_);
    if (!full_synced_) full_->set_current(current_);
    full_synced_ = true;
    full_->evaluate(b, out);
  }

 private:
  // A dense layer's partial sums ([input channel][unit][lanes]) take at most this many floats.
  static constexpr size_t kMaxPartialFloats = size_t{1} << 24;

  int out_hw(int l) const { return m_.layers[l].out_h * m_.layers[l].out_w; }
  int in_hw(int l) const { return l == 0 ? m_.in_h * m_.in_w : out_hw(l - 1); }
  const float* const* input_of(int l) const { return l == 0 ? input_.channels.data() : cache_[l - 1].channels.data(); }
  // Dense layer l's sums before each input channel at the current point, or nullptr (not kept).
  float* partials(int l) { return partials_[l].empty() ? nullptr : partials_[l].data(); }

  void forward_in_full() {
    for (int l = 0; l < m_.n_layers; ++l) {
      const Layer& L = m_.layers[l];
      if (partials(l))
        kernel_.dense(L, current_.data(), input_of(l), in_hw(l), 0, nullptr, partials(l), cache_[l].channels.data(),
                      0, L.out_c, lanes_);
      else
        kernel_.layer(L, current_.data(), input_of(l), in_hw(l), cache_[l].channels.data(), 0, L.out_c, lanes_);
    }
  }

  // Layer l's sum of squares kept before each weight from weight j on, and its norm.
  void sum_squares_from(int l, int j) {
    const Layer& L = m_.layers[l];
    double sq = prefix_[j];
    for (const int end = L.w_off + L.weight_count(); j < end; ++j) {
      prefix_[j] = sq;
      sq = dfma_rn(current_[j], current_[j], sq);
    }
    norms_[l] = ddiv_rn(dsqrt_rn(sq), m_.norm_divisor);
  }

  // What a change of the parameter at `site` changes, from `params`: channel
  // site.channel of its layer and of the max-pools after it, then everything
  // from the next conv or dense layer on. A dense layer whose input differs in
  // one channel continues its sums from the cached ones before that channel.
  // Into the cache with s == nullptr (set_current, partial sums too), else into
  // the thread's buffers, reading unchanged channels from the cache. Returns
  // the logits' channels.
  const float* const* propagate(const ParamSite& site, const float* params, Scratch* s) {
    const float* const* in = input_of(site.layer);
    int changed = site.channel;  // the one channel of the last layer's output that changed; -1: all
    for (int l = site.layer; l < m_.n_layers; ++l) {
      const Layer& L = m_.layers[l];
      float* const* out = s ? s->own[l].channels.data() : cache_[l].channels.data();
      if (l == site.layer || (changed >= 0 && L.kind == LayerKind::maxpool2)) {
        const int c = site.channel;
        if (s) {
          s->view[l] = cache_[l].channels;
          s->view[l][c] = s->own[l].channels[c];
          out = s->view[l].data();
          kernel_.layer(L, params, in, in_hw(l), out, c, c + 1, lanes_);
          // The same channel as the cache's: nothing after it changes.
          if (std::memcmp(out[c], cache_[l].channels[c], sizeof(float) * out_hw(l) * lanes_) == 0)
            return cache_.back().channels.data();
        } else if (partials(l)) {
          kernel_.dense(L, params, in, in_hw(l), 0, nullptr, partials(l), out, c, c + 1, lanes_);
        } else {
          kernel_.layer(L, params, in, in_hw(l), out, c, c + 1, lanes_);
        }
      } else if (partials(l)) {
        const int from = std::max(changed, 0);
        const float* sums = changed >= 0 ? partials(l) + static_cast<size_t>(from) * L.out_c * lanes_ : nullptr;
        kernel_.dense(L, params, in, in_hw(l), from, sums, s ? nullptr : partials(l), out, 0, L.out_c, lanes_);
        changed = -1;
      } else {
        kernel_.layer(L, params, in, in_hw(l), out, 0, L.out_c, lanes_);
        changed = -1;
      }
      in = out;
    }
    return in;
  }

  // scales_[i]: the logit scale of slot i + 1. A weight move continues its
  // layer's sum of squares from the move to the layer's end; the chains run
  // kChainGroup at a time on a thread, grouped by length (finish_group), and
  // each layer's norm enters the product in layer order as in
  // weight_norm_product. Returns the number of groups.
  uint64_t prepare_chains(const PatternBatch& b) {
    scales_.assign(b.count, scale_);
    chain_group_.assign(b.count, -1);
    chains_.clear();
    if (task_.loss == LossKind::raw) return 0;
    for (int64_t i = 0; i < b.count; ++i) {
      const int p = static_cast<int>(pattern_move_param(b.moves[i]));
      const ParamSite site = param_site(m_, p);
      if (!site.weight) continue;
      const Layer& L = m_.layers[site.layer];
      const float w = pattern_moved(current_[p], b.moves[i], b.r);
      chains_.push_back({current_.data() + p + 1, L.w_off + L.weight_count() - p - 1, dfma_rn(w, w, prefix_[p]),
                         static_cast<int>(i), site.layer});
    }
    std::sort(chains_.begin(), chains_.end(), [](const SquareChain& a, const SquareChain& b) {
      return a.left != b.left ? a.left > b.left : a.slot < b.slot;
    });
    for (size_t k = 0; k < chains_.size(); ++k) chain_group_[chains_[k].slot] = static_cast<int>(k / kChainGroup);
    const size_t groups = (chains_.size() + kChainGroup - 1) / kChainGroup;
    group_done_ = std::make_unique<std::atomic<bool>[]>(groups);
    return groups;
  }

  void finish_group(uint64_t g) {
    SquareChain* c = chains_.data() + g * kChainGroup;
    const int count = static_cast<int>(std::min<size_t>(kChainGroup, chains_.size() - g * kChainGroup));
    finish_chains_(c, count);
    for (int k = 0; k < count; ++k) {
      double product = 1.0;
      for (int l = 0; l < m_.n_layers; ++l)
        if (m_.layers[l].w_off >= 0)
          product = dmul_rn(product, l == c[k].layer ? ddiv_rn(dsqrt_rn(c[k].sq), m_.norm_divisor) : norms_[l]);
      scales_[c[k].slot] = static_cast<float>(ddiv_rn(1.0, product));
    }
    group_done_[g].store(true, std::memory_order_release);
  }

  float scale_of(int64_t slot) const {
    if (const int g = chain_group_[slot]; g >= 0)
      while (!group_done_[g].load(std::memory_order_acquire)) std::this_thread::yield();
    return scales_[slot];
  }

  // The logits' correct count and mean loss at logit scale `scale`, as
  // evaluate_draw: per example in the kernel, summed in example order.
  Eval score(const float* const* logits, float scale, Scratch& s) const {
    kernel_.score(logits, m_.n_classes, labels_.data(), scale, s.loss.data(), s.hit.data(), lanes_);
    Eval r;
    float sum = 0.0f;
    for (int e = 0; e < n_; ++e) {
      r.correct += s.hit[e];
      sum = add_rn(sum, s.loss[e]);
    }
    r.loss = sum / static_cast<float>(n_);
    return r;
  }

  Eval evaluate_move(Scratch& s, uint32_t move, float r, int64_t slot) {
    const int p = static_cast<int>(pattern_move_param(move));
    float& w = s.params[p];
    const float old = w;
    w = pattern_moved(old, move, r);
    const float* const* logits = propagate(param_site(m_, p), s.params.data(), &s);
    w = old;
    return score(logits, scale_of(slot), s);
  }

  const StreamTask& task_;
  const ModelSpec& m_;
  const IncrementalKernel& kernel_;
  int threads_, n_, lanes_;
  LaneBuffer input_;
  std::vector<int32_t> labels_;  // the training labels, padded to lanes_
  std::vector<LaneBuffer> cache_;              // the current point's output of every layer
  std::vector<std::vector<float>> partials_;   // dense layers' sums before each input channel (kernel's dense)
  std::vector<double> prefix_;                 // weight j: its layer's sum of squares before j (weight_norm's order)
  std::vector<double> norms_;                  // weight_norm of every weight layer
  float scale_ = 1.0f;
  std::vector<float> current_;
  bool have_current_ = false;
  std::vector<Scratch> scratch_;
  std::vector<SquareChain> chains_;  // a batch's weight moves (candidate_scales)
  std::vector<float> scales_;        // a batch's logit scales
  std::vector<int> chain_group_;     // a batch's slots' chain groups (-1: none)
  std::unique_ptr<std::atomic<bool>[]> group_done_;
  FinishChainsFn finish_chains_;
  std::unique_ptr<CandidateEvaluator> full_;  // greedy batches
  bool full_synced_ = false;
  IncrementalWorkers workers_{threads_};  // last: its threads end before the rest goes
};

constexpr const char* kKernelNames[] = {"avx512", "avx2", "generic"};  // widest first

// The kernel `name` names, if this build has it and this CPU runs it.
const IncrementalKernel* runnable_kernel(const std::string& name) {
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  if (name == "avx512") {  // what CMakeLists.txt builds candidates_incremental_avx512.cpp for
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    return avx512 && fma ? incremental_kernel_avx512() : nullptr;
  }
  if (name == "avx2") return __builtin_cpu_supports("avx2") && fma ? incremental_kernel_avx2() : nullptr;
  return name == "generic" ? incremental_kernel_generic() : nullptr;
}

}  // namespace

std::vector<std::string> incremental_kernels() {
  std::vector<std::string> names;
  for (const char* name : kKernelNames)
    if (runnable_kernel(name)) names.push_back(name);
  return names;
}

const IncrementalKernel& incremental_kernel(const std::string& name) {
  for (const char* k : kKernelNames)
    if (name == "auto" || name == k)
      if (const IncrementalKernel* kernel = runnable_kernel(k)) return *kernel;
  throw Error("incremental kernel '" + name + "' is not available on this CPU or build (try auto, avx512, avx2, generic)");
}

std::unique_ptr<CandidateEvaluator> make_incremental_candidate_evaluator(const StreamTask& task, int threads,
                                                                         const std::string& kernel) {
  return std::make_unique<IncrementalEvaluator>(task, std::max(threads, 1), incremental_kernel(kernel));
}

}  // namespace gac
