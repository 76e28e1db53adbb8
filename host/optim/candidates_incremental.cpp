// The incremental pattern-search evaluator (candidates_incremental.h).
//
// Activations are kept in lanes (candidates_incremental_kernel.h): every
// channel of every layer for all n examples, examples innermost, so the SIMD
// kernel runs one example per lane. A move of parameter p in layer l0
// changes one output channel c0 of l0 (dense: one unit; conv: one feature
// map), which a max-pool keeps to channel c0; the first conv or dense layer
// after that changes in full, and so does everything after it. A candidate
// therefore recomputes channel c0 up to that layer and the rest in full, into
// its thread's buffers, reading unchanged channels from the cache.
//
// Where it pays: LeNet's fc layers hold ~90% of its parameters, and a move
// there skips both convolutions; linear models and MLPs recompute one unit
// and what follows. A move in the first conv still recomputes the second
// conv in full (little gain), but costs no more than a full evaluation.
#include "host/optim/candidates_incremental.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gac/error.h"
#include "host/optim/candidates_incremental_kernel.h"
#include "host/util/parallel_for.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"

namespace gac {
namespace {

// Correct count and mean loss of the logits in lanes (channel c = class c)
// at logit scale `scale`, exactly as evaluate_draw: per example argmax and
// cross_entropy, summed in example order. `z` holds n_classes floats.
Eval score_plain(const float* const* logits, const ModelSpec& m, const int32_t* Y, int n, float scale, float* z) {
  const int C = m.n_classes;
  Eval r;
  float sum = 0.0f;
  for (int e = 0; e < n; ++e) {
    for (int c = 0; c < C; ++c) z[c] = logits[c][e];
    if (argmax(z, C) == Y[e]) ++r.correct;
    sum = add_rn(sum, cross_entropy(z, C, Y[e], scale));
  }
  r.loss = sum / static_cast<float>(n);
  return r;
}

// The logit scale after weight p of layer l0 became `w`: layer l0's sum of
// squares continues from the one before p (prefix[p]), the other layers'
// norms come from `norms`; the product in layer order as weight_norm_product.
float moved_scale_plain(const ModelSpec& m, const float* params, const double* prefix, const double* norms, int l0,
                        int p, float w) {
  const Layer& L0 = m.layers[l0];
  double sq = dfma_rn(w, w, prefix[p]);
  for (int j = p + 1, end = L0.w_off + L0.weight_count(); j < end; ++j) sq = dfma_rn(params[j], params[j], sq);
  const double moved = ddiv_rn(dsqrt_rn(sq), m.norm_divisor);
  double product = 1.0;
  for (int l = 0; l < m.n_layers; ++l)
    if (m.layers[l].w_off >= 0) product = dmul_rn(product, l == l0 ? moved : norms[l]);
  return static_cast<float>(ddiv_rn(1.0, product));
}

// As candidates_cpu.cpp: with FMA hardware every fma_rn is one instruction
// instead of a call into libm (the same bits); `flatten` inlines every callee
// so no function compiled for FMA is shared with other callers.
using ScoreFn = decltype(&score_plain);
using MovedScaleFn = decltype(&moved_scale_plain);
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"), flatten)) Eval score_fma(const float* const* logits, const ModelSpec& m,
                                                            const int32_t* Y, int n, float scale, float* z) {
  return score_plain(logits, m, Y, n, scale, z);
}
__attribute__((target("avx2,fma"), flatten)) float moved_scale_fma(const ModelSpec& m, const float* params,
                                                                   const double* prefix, const double* norms,
                                                                   int l0, int p, float w) {
  return moved_scale_plain(m, params, prefix, norms, l0, p, w);
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
  std::vector<float> params, z;
  std::vector<LaneBuffer> own;
  std::vector<std::vector<float*>> view;
};

class IncrementalEvaluator final : public CandidateEvaluator {
 public:
  IncrementalEvaluator(const StreamTask& task, int threads, const IncrementalKernel& kernel)
      : task_(task), m_(task.model), kernel_(kernel), threads_(threads), n_(static_cast<int>(task.train.size())),
        lanes_((n_ + kIncrementalLanePad - 1) / kIncrementalLanePad * kIncrementalLanePad), scratch_(threads),
        score_(has_fma() ? score_fma : score_plain), moved_scale_(has_fma() ? moved_scale_fma : moved_scale_plain) {
    const int hw = m_.in_h * m_.in_w, D = m_.in_size();
    input_.resize(m_.in_c, hw, lanes_);
    for (int e = 0; e < n_; ++e)
      for (int i = 0; i < D; ++i) input_.data[static_cast<size_t>(i) * lanes_ + e] = task.train.x[size_t(e) * D + i];
    cache_.resize(m_.n_layers);
    for (int l = 0; l < m_.n_layers; ++l) cache_[l].resize(m_.layers[l].out_c, out_hw(l), lanes_);
    for (Scratch& s : scratch_) {
      s.z.resize(m_.n_classes);
      s.own.resize(m_.n_layers);
      s.view.resize(m_.n_layers);
      for (int l = 0; l < m_.n_layers; ++l) s.own[l].resize(m_.layers[l].out_c, out_hw(l), lanes_);
    }
    norms_.assign(m_.n_layers, 0.0);
  }

  Eval set_current(const std::vector<float>& current) override {
    current_ = current;
    full_synced_ = false;
    for (Scratch& s : scratch_) s.params = current;
    for (int l = 0; l < m_.n_layers; ++l)
      kernel_.layer(m_.layers[l], current_.data(), input_of(l), in_hw(l), cache_[l].channels.data(), 0,
                    m_.layers[l].out_c, lanes_);
    scale_ = 1.0f;
    if (task_.loss != LossKind::raw) {
      prefix_.assign(current_.size(), 0.0);
      double product = 1.0;
      for (int l = 0; l < m_.n_layers; ++l) {
        const Layer& L = m_.layers[l];
        if (L.w_off < 0) continue;
        double sq = 0.0;  // weight_norm's sum, with the sum before each weight kept
        for (int j = L.w_off; j < L.w_off + L.weight_count(); ++j) {
          prefix_[j] = sq;
          sq = dfma_rn(current_[j], current_[j], sq);
        }
        norms_[l] = ddiv_rn(dsqrt_rn(sq), m_.norm_divisor);
        product = dmul_rn(product, norms_[l]);
      }
      scale_ = static_cast<float>(ddiv_rn(1.0, product));
    }
    return score_(cache_.back().channels.data(), m_, task_.train.y.data(), n_, scale_, scratch_[0].z.data());
  }

  void evaluate(const PatternBatch& b, Eval* out) override {
    parallel_for(threads_, static_cast<uint64_t>(b.count), 1,
                 [&](int t, uint64_t i) { out[i] = evaluate_move(scratch_[t], b.moves[i], b.r); });
  }

  // Every parameter moves: nothing to reuse.
  void evaluate(const GreedyBatch& b, Eval* out) override {
    if (!full_) full_ = make_cpu_candidate_evaluator(task_, threads_);
    if (!full_synced_) full_->set_current(current_);
    full_synced_ = true;
    full_->evaluate(b, out);
  }

 private:
  int out_hw(int l) const { return m_.layers[l].out_h * m_.layers[l].out_w; }
  int in_hw(int l) const { return l == 0 ? m_.in_h * m_.in_w : out_hw(l - 1); }
  const float* const* input_of(int l) const { return l == 0 ? input_.channels.data() : cache_[l - 1].channels.data(); }

  Eval evaluate_move(Scratch& s, uint32_t move, float r) const {
    const int p = static_cast<int>(pattern_move_param(move));
    const ParamSite site = param_site(m_, p);
    float& w = s.params[p];
    const float old = w;
    w = pattern_moved(old, move, r);
    // Channel site.channel of the moved layer and of the max-pools after it,
    // then everything from the next conv or dense layer on.
    const float* const* in = input_of(site.layer);
    bool one_channel = true;
    for (int l = site.layer; l < m_.n_layers; ++l) {
      const Layer& L = m_.layers[l];
      one_channel = one_channel && (l == site.layer || L.kind == LayerKind::maxpool2);
      std::vector<float*>& view = s.view[l];
      if (one_channel) {
        view = cache_[l].channels;
        view[site.channel] = s.own[l].channels[site.channel];
        kernel_.layer(L, s.params.data(), in, in_hw(l), view.data(), site.channel, site.channel + 1, lanes_);
      } else {
        view = s.own[l].channels;
        kernel_.layer(L, s.params.data(), in, in_hw(l), view.data(), 0, L.out_c, lanes_);
      }
      in = view.data();
    }
    const float scale = task_.loss != LossKind::raw && site.weight
                            ? moved_scale_(m_, current_.data(), prefix_.data(), norms_.data(), site.layer, p, w)
                            : scale_;
    w = old;
    return score_(in, m_, task_.train.y.data(), n_, scale, s.z.data());
  }

  const StreamTask& task_;
  const ModelSpec& m_;
  const IncrementalKernel& kernel_;
  int threads_, n_, lanes_;
  LaneBuffer input_;
  std::vector<LaneBuffer> cache_;  // the current point's output of every layer
  std::vector<double> prefix_;     // weight j: its layer's sum of squares before j (weight_norm's order)
  std::vector<double> norms_;      // weight_norm of every weight layer
  float scale_ = 1.0f;
  std::vector<float> current_;
  mutable std::vector<Scratch> scratch_;
  ScoreFn score_;
  MovedScaleFn moved_scale_;
  std::unique_ptr<CandidateEvaluator> full_;  // greedy batches
  bool full_synced_ = false;
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
