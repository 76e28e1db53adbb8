// The CPU's candidate evaluator (host/optim/candidates.h): every candidate
// evaluated in full with kernels/forward.h's evaluate_draw, the candidates of
// a batch spread over the threads, each thread on its own copy of the
// current point. Greedy batches run on the CPU backend's SIMD kernel where
// this CPU has one: candidates across the lanes (host/backends/cpu_simd.h).
#include <string>

#include "host/backends/cpu_simd.h"
#include "host/optim/candidates.h"
#include "host/optim/candidates_incremental.h"
#include "host/util/parallel_for.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"

namespace gac {
namespace {

// evaluate_draw (no early rejection) as compiled for this CPU: with FMA
// hardware every fma_rn is one instruction instead of a call into libm (the
// same bits: both round once). `flatten` inlines every callee into the FMA
// copy, so no function compiled for FMA is shared with other callers.
using EvaluateFn = DrawResult (*)(const ModelSpec&, const float*, const float*, const int32_t*, int, LossKind, float*,
                                  float*, float*);

DrawResult evaluate_plain(const ModelSpec& m, const float* params, const float* X, const int32_t* Y, int n,
                          LossKind loss, float* buf0, float* buf1, float* logits) {
  return evaluate_draw(m, params, X, Y, n, loss, false, buf0, buf1, logits);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"), flatten)) DrawResult evaluate_fma(const ModelSpec& m, const float* params,
                                                                       const float* X, const int32_t* Y, int n,
                                                                       LossKind loss, float* buf0, float* buf1,
                                                                       float* logits) {
  return evaluate_draw(m, params, X, Y, n, loss, false, buf0, buf1, logits);
}
#endif

EvaluateFn pick_evaluate() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return evaluate_fma;
#endif
  return evaluate_plain;
}

// One thread's copy of the current point and forward-pass buffers.
struct Scratch {
  std::vector<float> params, buf0, buf1, logits;
};

class CpuCandidateEvaluator final : public CandidateEvaluator {
 public:
  CpuCandidateEvaluator(const StreamTask& task, int threads) : task_(task), threads_(threads), scratch_(threads) {
    const ModelSpec& m = task.model;
    for (Scratch& s : scratch_) {
      s.buf0.resize(m.max_activation);
      s.buf1.resize(m.max_activation);
      s.logits.resize(task.train.size() * m.n_classes);
    }
  }

  Eval set_current(const std::vector<float>& current) override {
    current_ = current;
    for (Scratch& s : scratch_) s.params = current;
    return evaluate(current_.data(), scratch_[0]);
  }

  void evaluate(const PatternBatch& b, Eval* out) override {
    parallel_for(threads_, static_cast<uint64_t>(b.count), 1, [&](int t, uint64_t i) {
      Scratch& s = scratch_[t];
      float& w = s.params[pattern_move_param(b.moves[i])];
      const float old = w;
      w = pattern_moved(old, b.moves[i], b.r);
      out[i] = evaluate(s.params.data(), s);
      w = old;
    });
  }

  void evaluate(const GreedyBatch& b, Eval* out) override {
    const int64_t d = static_cast<int64_t>(current_.size());
    if (simd_) {
      evaluate_lanes(b, out);
      return;
    }
    parallel_for(threads_, static_cast<uint64_t>(b.count), 1, [&](int t, uint64_t i) {
      Scratch& s = scratch_[t];
      greedy_candidate(current_.data(), d, b.key, b.counter, static_cast<int64_t>(i) + 1, b.r, s.params.data());
      out[i] = evaluate(s.params.data(), s);
    });
    for (Scratch& s : scratch_) s.params = current_;
  }

 private:
  // Greedy candidates W at a time, one lane each (host/backends/cpu_simd.h).
  void evaluate_lanes(const GreedyBatch& b, Eval* out) const {
    const int W = simd_->lanes;
    const GreedyLanes g{current_.data(), static_cast<int64_t>(current_.size()), b.key, b.counter, b.r, b.reject_above};
    parallel_for(threads_, static_cast<uint64_t>((b.count + W - 1) / W), 1, [&](int, uint64_t group) {
      float loss[32];
      int correct[32];
      const int64_t first = static_cast<int64_t>(group) * W;
      simd_->greedy(task_, g, first + 1, loss, correct);
      for (int64_t l = 0; l < W && first + l < b.count; ++l) out[first + l] = Eval{loss[l], correct[l]};
    });
  }

  Eval evaluate(const float* params, Scratch& s) const {
    static const EvaluateFn evaluate_fn = pick_evaluate();
    const DrawResult r = evaluate_fn(task_.model, params, task_.train.x.data(), task_.train.y.data(),
                                     static_cast<int>(task_.train.size()), task_.loss, s.buf0.data(), s.buf1.data(),
                                     s.logits.data());
    return {r.loss, r.correct};
  }

  const StreamTask& task_;
  int threads_;
  const SimdKernel* simd_ = simd_supports(task_.model) ? simd_kernel_named("auto") : nullptr;
  std::vector<Scratch> scratch_;
  std::vector<float> current_;
};

}  // namespace

std::unique_ptr<CandidateEvaluator> make_cpu_candidate_evaluator(const StreamTask& task, int threads,
                                                                 bool incremental) {
  if (incremental) return make_incremental_candidate_evaluator(task, threads);
  return std::make_unique<CpuCandidateEvaluator>(task, threads);
}

}  // namespace gac
