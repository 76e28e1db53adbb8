// make_optimizer: the Optimizer each [optimizer] kind names.
#include "gac/optimizer.h"

#include "gac/config.h"
#include "gac/error.h"
#include "gac/search.h"
#include "gac/sgd.h"
#include "host/optim/candidates_device.h"
#include "host/util/parallel_for.h"
#include "kernels/forward.h"

namespace gac {
namespace {

// SGD behind the Optimizer interface: an SgdTrainer and its settings.
class SgdOptimizer final : public Optimizer {
 public:
  SgdOptimizer(const SgdConfig& cfg, int threads) : cfg_(cfg), trainer_(threads) {}

  void begin_stream(const StreamTask& task) override { trainer_.begin_stream(task, cfg_); }
  TrainCounts train(uint64_t first, uint64_t count, std::vector<TrainedModel>& models) override {
    return trainer_.train(first, count, models);
  }
  std::vector<TrainedModel> train_one(uint64_t draw) const override { return trainer_.train_one(draw); }
  std::vector<TestScore> score_test(const std::vector<TrainedModel>& models) const override {
    return trainer_.score_test(models);
  }
  uint64_t preferred_batch() const override { return trainer_.preferred_batch(); }
  // The trainer runs this many consecutive draws together on each thread
  // (host/optim/sgd_lanes.h): whole groups leave no thread idle.
  uint64_t call_group() const override { return 16 * static_cast<uint64_t>(trainer_.threads()); }
  int threads() const override { return trainer_.threads(); }
  std::string description() const override { return trainer_.description(); }

 private:
  SgdConfig cfg_;
  SgdTrainer trainer_;
};

// Where a search scores its candidates: exec.backend "cuda" on the GPU (an
// error without a usable one), "auto" there when one is usable, else (and
// for "cpu") on the CPU (nullptr).
std::shared_ptr<Device> search_device(const std::string& backend) {
  if (backend != "cuda" && backend != "auto") return nullptr;
  std::string why = "this gac was built without CUDA";
#if defined(GAC_HAVE_CUDA)
  if (std::shared_ptr<Device> device = make_cuda_device(&why)) return device;
#endif
  if (backend == "cuda") throw Error("--backend cuda: no usable CUDA device for the search: " + why);
  return nullptr;
}

}  // namespace

std::vector<TestScore> score_trained_models(const StreamTask& t, int threads, const std::vector<TrainedModel>& hits) {
  const ModelSpec& m = t.model;
  const int n = static_cast<int>(t.test.size());
  std::vector<TestScore> scores(hits.size());
  std::vector<std::vector<float>> buffers(threads, std::vector<float>(2 * static_cast<size_t>(m.max_activation)));
  parallel_for(threads, hits.size(), 1, [&](int thread, uint64_t i) {
    float* buf0 = buffers[thread].data();
    float* buf1 = buf0 + m.max_activation;
    const float* params = hits[i].params.data();
    const float scale = logit_scale(m, params, t.loss);
    int correct = 0;
    double loss = 0;
    for (int e = 0; e < n; ++e) {
      const float* z = forward_example(m, params, t.test.x.data() + static_cast<size_t>(e) * m.in_size(), buf0, buf1);
      correct += argmax(z, m.n_classes) == t.test.y[e];
      loss += cross_entropy(z, m.n_classes, t.test.y[e], scale);
    }
    scores[i] = n > 0 ? TestScore{static_cast<double>(correct) / n, loss / n} : TestScore{0.0, 0.0};
  });
  return scores;
}

std::string optimizer_title(const std::string& kind) {
  if (kind == "sgd") return "SGD";
  if (kind == "pattern") return "pattern search";
  if (kind == "greedy") return "greedy search";
  return "guess and check";
}

std::unique_ptr<Optimizer> make_optimizer(const RunConfig& cfg, int threads, const std::atomic<int>* stop) {
  if (cfg.optimizer == "sgd") return std::make_unique<SgdOptimizer>(cfg.sgd, threads);
  if (cfg.optimizer == "pattern" || cfg.optimizer == "greedy")
    return make_search_optimizer(cfg.optimizer == "pattern" ? SearchKind::pattern : SearchKind::greedy, cfg.search,
                                 threads, stop, search_device(cfg.backend));
  return nullptr;
}

}  // namespace gac
