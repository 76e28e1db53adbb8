// Incremental pattern-search candidates (host/optim/candidates_incremental.h).
#include "host/optim/candidates_incremental.h"

#include <cstring>
#include <vector>

#include "host/util/parallel_for.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"

namespace gac {
namespace {

// The current point's outputs of every layer on every training example, and its weight norms.
struct Cache {
  std::vector<std::vector<float>> acts;  // [layer][example * out_size]
  std::vector<double> norms;             // [layer] weight_norm (weight layers)
};

// Where a parameter sits: its layer and the output unit (dense) or channel (conv) it feeds.
struct Place {
  int layer;
  int unit;
  bool weight;  // a weight (its layer's norm changes), not a bias
};

struct Scratch {
  std::vector<float> params, unit, buf0, buf1, logits;
};

// What a candidate's evaluation reads.
struct Context {
  const ModelSpec& m;
  const float* X;
  const int32_t* Y;
  int n;
  LossKind loss;
  const Cache& cache;
};

// Mean loss (in example order, as evaluate_draw) of the logits, with the
// weight norm product of the cached norms but layer `moved`'s, recomputed.
float mean_loss(const Context& c, const float* params, const float* logits, int moved) {
  const ModelSpec& m = c.m;
  float scale = 1.0f;
  if (c.loss != LossKind::raw) {
    double product = 1.0;
    for (int l = 0; l < m.n_layers; ++l) {
      const Layer& L = m.layers[l];
      if (L.w_off < 0) continue;
      product = dmul_rn(product, l == moved ? weight_norm(m, L, params + L.w_off) : c.cache.norms[l]);
    }
    scale = static_cast<float>(ddiv_rn(1.0, product));
  }
  const int C = m.n_classes;
  float sum = 0.0f;
  for (int e = 0; e < c.n; ++e) sum = add_rn(sum, cross_entropy(logits + e * C, C, c.Y[e], scale));
  return sum / static_cast<float>(c.n);
}

// s.params holds the candidate: the current point with the parameter at `at` moved.
Eval evaluate_move_body(const Context& c, const Place& at, Scratch& s) {
  const ModelSpec& m = c.m;
  const Layer& L = m.layers[at.layer];
  const int C = m.n_classes, D = m.in_size(), in_size = L.in_size(), out_size = L.out_size();
  const std::vector<float>& out_cache = c.cache.acts[at.layer];
  Eval r;
  for (int e = 0; e < c.n; ++e) {
    const float* in = at.layer == 0 ? c.X + static_cast<size_t>(e) * D
                                    : c.cache.acts[at.layer - 1].data() + static_cast<size_t>(e) * in_size;
    float* out = s.unit.data();
    std::memcpy(out, out_cache.data() + static_cast<size_t>(e) * out_size, sizeof(float) * out_size);
    if (L.kind == LayerKind::dense) {
      const float acc = dense_unit(L, s.params.data(), in, at.unit);
      out[at.unit] = L.relu ? relu(acc) : acc;
    } else {
      conv_channel_forward(L, s.params.data(), in, out, at.unit);
    }
    const float* z = forward_layers_from(m, s.params.data(), out, s.buf0.data(), s.buf1.data(), at.layer + 1, m.n_layers);
    std::memcpy(s.logits.data() + e * C, z, sizeof(float) * C);
    r.correct += argmax(z, C) == c.Y[e];
  }
  r.loss = mean_loss(c, s.params.data(), s.logits.data(), at.weight ? at.layer : -1);
  return r;
}

// The current point's forward pass on every example into the cache, and its evaluation.
Eval fill_cache_body(const Context& c, const float* params, Cache& cache, Scratch& s) {
  const ModelSpec& m = c.m;
  const int C = m.n_classes, D = m.in_size();
  Eval r;
  for (int e = 0; e < c.n; ++e) {
    const float* in = c.X + static_cast<size_t>(e) * D;
    for (int l = 0; l < m.n_layers; ++l) {
      const Layer& L = m.layers[l];
      float* out = cache.acts[l].data() + static_cast<size_t>(e) * L.out_size();
      forward_layers_from(m, params, in, out, out, l, l + 1);  // one layer: writes `out`, whichever its parity
      in = out;
    }
    std::memcpy(s.logits.data() + e * C, in, sizeof(float) * C);
    r.correct += argmax(in, C) == c.Y[e];
  }
  for (int l = 0; l < m.n_layers; ++l) {
    const Layer& L = m.layers[l];
    cache.norms[l] = L.w_off >= 0 ? weight_norm(m, L, params + L.w_off) : 0.0;
  }
  r.loss = mean_loss(c, params, s.logits.data(), -1);
  return r;
}

// As compiled for this CPU: with FMA hardware every fma_rn is one instruction
// instead of a call into libm (the same bits: both round once); `flatten`
// inlines every callee into these copies only.
Eval evaluate_move_plain(const Context& c, const Place& at, Scratch& s) { return evaluate_move_body(c, at, s); }
Eval fill_cache_plain(const Context& c, const float* params, Cache& cache, Scratch& s) {
  return fill_cache_body(c, params, cache, s);
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"), flatten)) Eval evaluate_move_fma(const Context& c, const Place& at, Scratch& s) {
  return evaluate_move_body(c, at, s);
}
__attribute__((target("avx2,fma"), flatten)) Eval fill_cache_fma(const Context& c, const float* params, Cache& cache,
                                                                 Scratch& s) {
  return fill_cache_body(c, params, cache, s);
}
#endif

bool cpu_has_fma() {
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

class IncrementalEvaluator final : public CandidateEvaluator {
 public:
  IncrementalEvaluator(const StreamTask& task, int threads)
      : task_(task), threads_(threads), full_(make_cpu_candidate_evaluator(task, threads)), scratch_(threads),
        fma_(cpu_has_fma()) {
    const ModelSpec& m = task.model;
    const size_t n = task.train.size();
    cache_.acts.resize(m.n_layers);
    cache_.norms.assign(m.n_layers, 0.0);
    for (int l = 0; l < m.n_layers; ++l) cache_.acts[l].resize(n * m.layers[l].out_size());
    for (Scratch& s : scratch_) {
      s.unit.resize(m.max_activation);
      s.buf0.resize(m.max_activation);
      s.buf1.resize(m.max_activation);
      s.logits.resize(n * m.n_classes);
    }
    places_.resize(m.n_params);
    for (int l = 0; l < m.n_layers; ++l) {
      const Layer& L = m.layers[l];
      const int per_unit = L.out_c ? L.weight_count() / L.out_c : 0;
      for (int i = 0; L.w_off >= 0 && i < L.weight_count(); ++i) places_[L.w_off + i] = {l, i / per_unit, true};
      for (int o = 0; L.b_off >= 0 && o < L.out_c; ++o) places_[L.b_off + o] = {l, o, false};
    }
  }

  Eval set_current(const std::vector<float>& current) override {
    full_->set_current(current);
    for (Scratch& s : scratch_) s.params = current;
    const Context c = context();
    return fma_ ? fill_cache(c, current.data(), cache_, scratch_[0]) : fill_cache_plain(c, current.data(), cache_, scratch_[0]);
  }

  void evaluate(const PatternBatch& b, Eval* out) override {
    const Context c = context();
    parallel_for(threads_, static_cast<uint64_t>(b.count), 1, [&](int t, uint64_t i) {
      Scratch& s = scratch_[t];
      const uint32_t p = pattern_move_param(b.moves[i]);
      const float old = s.params[p];
      s.params[p] = pattern_moved(old, b.moves[i], b.r);
      out[i] = fma_ ? evaluate_move(c, places_[p], s) : evaluate_move_plain(c, places_[p], s);
      s.params[p] = old;
    });
  }

  void evaluate(const GreedyBatch& b, Eval* out) override { full_->evaluate(b, out); }

 private:
  Context context() const {
    return Context{task_.model, task_.train.x.data(), task_.train.y.data(), static_cast<int>(task_.train.size()),
                   task_.loss, cache_};
  }
#if defined(__x86_64__) && defined(__GNUC__)
  static Eval evaluate_move(const Context& c, const Place& at, Scratch& s) { return evaluate_move_fma(c, at, s); }
  static Eval fill_cache(const Context& c, const float* p, Cache& cache, Scratch& s) { return fill_cache_fma(c, p, cache, s); }
#else
  static Eval evaluate_move(const Context& c, const Place& at, Scratch& s) { return evaluate_move_plain(c, at, s); }
  static Eval fill_cache(const Context& c, const float* p, Cache& cache, Scratch& s) { return fill_cache_plain(c, p, cache, s); }
#endif

  const StreamTask& task_;
  int threads_;
  std::unique_ptr<CandidateEvaluator> full_;  // greedy batches
  std::vector<Scratch> scratch_;
  std::vector<Place> places_;
  Cache cache_;
  bool fma_;
};

}  // namespace

std::unique_ptr<CandidateEvaluator> make_incremental_candidate_evaluator(const StreamTask& task, int threads) {
  return std::make_unique<IncrementalEvaluator>(task, threads);
}

}  // namespace gac
