// CPU backend over all cores. Draws are split into blocks handed out through
// an atomic counter; each thread keeps its own scratch, so memory does not
// grow with the draw count. A block is checked by the best SIMD kernel this
// CPU runs (host/backends/cpu_simd.h), or by the scalar reference of kernels/forward.h;
// both give bit-identical results.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "gac/backend.h"
#include "gac/error.h"
#include "host/backends/cpu_nested.h"
#include "host/backends/cpu_simd.h"
#include "host/util/parallel_for.h"

namespace gac {

void generate_lanes_scalar(const StreamTask& task, const uint64_t* draws, int lanes, float* P) {
  const int n_params = task.model.n_params;
  thread_local std::vector<float> one;
  one.resize(n_params);
  for (int l = 0; l < lanes; ++l) {
    generate_params(task.prior, task.key, draws[l], n_params, one.data());
    for (int i = 0; i < n_params; ++i) P[static_cast<size_t>(i) * lanes + l] = one[i];
  }
}

const SimdKernel* simd_kernel_named(const std::string& name) {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if ((name == "auto" || name == "avx512") && avx512 && simd_kernel_avx512()) return simd_kernel_avx512();
  if ((name == "auto" || name == "avx2") && avx2 && simd_kernel_avx2()) return simd_kernel_avx2();
  if (name == "auto" || name == "scalar") return nullptr;
  throw Error("cpu kernel '" + name + "' is not available on this CPU or build (try auto, avx512, avx2, scalar)");
}

namespace {

struct Scratch {
  std::vector<float> params, buf0, buf1, logits;
  Scratch(const ModelSpec& m, size_t n_examples)
      : params(m.n_params), buf0(m.max_activation), buf1(m.max_activation), logits(n_examples * m.n_classes) {}
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, const std::string& kernel)
      : threads_(threads > 0 ? threads : available_cpus()),
        simd_(simd_kernel_named(kernel)) {}

  std::string name() const override { return "cpu"; }
  std::string description() const override {
    return "cpu (" + std::to_string(threads_) + " threads, " + (simd_ ? simd_->name : "scalar") + " kernel)";
  }

  void begin_stream(const StreamTask& task) override { task_ = task; }

  EvalCounts evaluate(uint64_t first, uint64_t count, std::vector<Hit>& hits) override {
    if (task_.prior.heads > 1)
      return evaluate_nested(task_, simd_ && simd_supports(task_.model) ? nested_kernel_for(simd_) : nullptr, threads_,
                             first, count, hits);
    std::vector<std::vector<Hit>> found(threads_);
    std::vector<uint64_t> examples(threads_, 0);
    if (simd()) {
      // Blocks of whole vectors of draws; the kernel keeps per-thread scratch.
      const uint64_t block = 16 * static_cast<uint64_t>(simd_->lanes);
      const uint64_t blocks = (count + block - 1) / block;
      parallel_for(threads_, blocks, 1, [&](int t, uint64_t b) {
        const uint64_t start = b * block;
        examples[t] += simd_->evaluate(task_, first + start, std::min(block, count - start), found[t]);
      });
      return merge(found, examples, count, hits);
    }
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.train.size());
    std::vector<Scratch> scratch(threads_, Scratch(m, n));
    parallel_for(threads_, count, 256, [&](int t, uint64_t i) {
      Scratch& s = scratch[t];
      const uint64_t draw = first + i;
      generate_params(task_.prior, task_.key, draw, m.n_params, s.params.data());
      const DrawResult r = evaluate_draw(m, s.params.data(), task_.train.x.data(), task_.train.y.data(), n, task_.loss,
                                         task_.early_reject, s.buf0.data(), s.buf1.data(), s.logits.data());
      examples[t] += task_.early_reject ? std::min(n, r.correct + 1) : n;
      if (r.correct == n)
        found[t].push_back({draw, r.loss, find_bin(task_.bin_edges.data(), static_cast<int>(task_.bin_edges.size()), r.loss)});
    });
    return merge(found, examples, count, hits);
  }

  // The same generation evaluate() runs (the SIMD kernel's, or the scalar
  // reference), on the same threads, with nothing evaluated.
  bool generate_only(uint64_t first, uint64_t count) override {
    const ModelSpec& m = task_.model;
    if (simd()) {
      const uint64_t block = 16 * static_cast<uint64_t>(simd_->lanes);
      parallel_for(threads_, (count + block - 1) / block, 1, [&](int, uint64_t b) {
        simd_->generate(task_, first + b * block, std::min(block, count - b * block));
      });
      return true;
    }
    std::vector<Scratch> scratch(threads_, Scratch(m, 0));
    parallel_for(threads_, count, 256, [&](int t, uint64_t i) {
      generate_params(task_.prior, task_.key, first + i, m.n_params, scratch[t].params.data());
    });
    return true;
  }

  std::vector<TestScore> score_test(const std::vector<uint64_t>& draws) override {
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.test.size());
    std::vector<TestScore> scores(draws.size());
    if (simd_ && simd_supports(m)) {  // pairs too: their lanes come from the scalar generator
      const uint64_t block = simd_->lanes;
      parallel_for(threads_, (draws.size() + block - 1) / block, 1, [&](int, uint64_t b) {
        const size_t start = b * block;
        simd_->score(task_, draws.data() + start, std::min<size_t>(block, draws.size() - start), scores.data() + start);
      });
      return scores;
    }
    std::vector<Scratch> scratch(threads_, Scratch(m, 1));
    parallel_for(threads_, draws.size(), 1, [&](int t, uint64_t i) {
      Scratch& s = scratch[t];
      generate_params(task_.prior, task_.key, draws[i], m.n_params, s.params.data());
      const float scale = logit_scale(m, s.params.data(), task_.loss);
      int correct = 0;
      double loss = 0;
      for (int e = 0; e < n; ++e) {
        const float* z = forward_example(m, s.params.data(), task_.test.x.data() + static_cast<size_t>(e) * m.in_size(),
                                         s.buf0.data(), s.buf1.data());
        correct += argmax(z, m.n_classes) == task_.test.y[e];
        loss += cross_entropy(z, m.n_classes, task_.test.y[e], scale);
      }
      scores[i] = n > 0 ? TestScore{static_cast<double>(correct) / n, loss / n} : TestScore{0.0, 0.0};
    });
    return scores;
  }

 private:
  // Whether the SIMD kernel evaluates the current stream's draws: nested
  // sampling's pairs have an engine of their own (cpu_nested.cpp).
  bool simd() const { return simd_ && simd_supports(task_.model) && task_.prior.heads <= 1; }

  // Per-thread hits, in draw order, appended to `hits`.
  static EvalCounts merge(std::vector<std::vector<Hit>>& found, const std::vector<uint64_t>& examples, uint64_t count,
                          std::vector<Hit>& hits) {
    const size_t old = hits.size();
    EvalCounts counts{count, 0};
    for (size_t t = 0; t < found.size(); ++t) {
      hits.insert(hits.end(), found[t].begin(), found[t].end());
      counts.examples += examples[t];
    }
    std::sort(hits.begin() + old, hits.end(), [](const Hit& a, const Hit& b) { return a.draw < b.draw; });
    return counts;
  }

  int threads_;
  const SimdKernel* simd_;
  StreamTask task_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, const std::string& kernel) {
  return std::make_unique<CpuBackend>(threads, kernel);
}

std::unique_ptr<Backend> make_backend(const std::string& kind, int threads, std::string* note,
                                      const std::string& devices) {
  if (kind == "cpu") return make_cpu_backend(threads);
  if (kind != "cuda" && kind != "auto") throw Error("--backend: unknown backend '" + kind + "' (expected auto, cpu or cuda)");
  std::string why;
  bool no_gpu = true;  // nothing worth a note on every command of a machine without a GPU
#if defined(GAC_HAVE_CUDA)
  if (auto cuda = make_cuda_backend(&why, &no_gpu, devices)) return cuda;
#else
  (void)devices;
  why = "this gac was built without CUDA";
#endif
  if (kind == "cuda") throw Error("--backend cuda: no usable CUDA device: " + why);
  if (note && !no_gpu) *note = "no usable CUDA device (" + why + "); using the CPU backend";
  return make_cpu_backend(threads);
}

}  // namespace gac
