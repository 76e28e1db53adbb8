// The SGD trainer: groups of W consecutive draws (one SIMD vector's worth)
// trained together by the widest SIMD kernel this CPU runs
// (host/optim/sgd_kernel.h), groups spread over all cores; train_one runs
// the one-model reference of kernels/sgd_step.h.
#include "gac/sgd.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "gac/error.h"
#include "host/backends/cpu_simd.h"
#include "host/optim/poison.h"
#include "host/optim/sgd_kernel.h"
#include "host/util/parallel_for.h"
#include "kernels/sgd_step.h"
#include "kernels/strided_forward.h"

namespace gac {
namespace {

bool hit_order(const SgdHit& a, const SgdHit& b) { return a.draw != b.draw ? a.draw < b.draw : a.bin < b.bin; }

// A thread's lane-minor working memory (sgd_kernel.h), whole 64-byte vectors.
struct LaneBuffers {
  simd::AlignedBuffer params, grad, velocity, acts, d0, d1, logits;
};

// Lane l of W-lane lane-minor floats, for the one-model code.
Strided lane_of(float* values, int W, int l) { return Strided{values + l, static_cast<size_t>(W)}; }

// Trains draws [first, first + count), count <= W = kernel.lanes, one per
// lane, calling emit(lane, bin, loss, step, lane-minor params) for every
// accepted snapshot, in time order: sgd_trajectory for every lane, with the
// heavy arithmetic in `kernel`. Returns the SGD steps taken over all lanes.
template <class Emit>
uint64_t train_group(const SgdLaneKernel& kernel, const SgdProblem& p, uint64_t first, int count, LaneBuffers& b,
                     Emit&& emit) {
  const ModelSpec& m = p.model;
  const int W = kernel.lanes;
  auto get = [W](simd::AlignedBuffer& buffer, int values) { return buffer.get(static_cast<size_t>(values) * W); };
  const SgdScratch s{get(b.params, m.n_params),         get(b.grad, m.n_params), get(b.velocity, m.n_params),
                     get(b.acts, total_activations(m)), get(b.d0, m.max_activation), get(b.d1, m.max_activation),
                     get(b.logits, p.n * m.n_classes)};
  std::fill(s.params, s.params + static_cast<size_t>(m.n_params) * W, 0.0f);  // unused lanes stay zero
  for (int l = 0; l < count; ++l) generate_params(p.prior, p.key, first + l, m.n_params, lane_of(s.params, W, l));

  uint32_t active = (1u << count) - 1u;
  int lowest[kMaxSgdLanes], steps_taken[kMaxSgdLanes] = {};
  for (int l = 0; l < W; ++l) lowest[l] = p.n_edges - 1;
  auto check = [&](int step) {
    const uint32_t perfect = kernel.classify(p, s, active);
    float loss[kMaxSgdLanes] = {};
    if (perfect) kernel.mean_loss(p, s, loss);
    for (uint32_t a = active; a; a &= a - 1) {
      const int l = std::countr_zero(a);
      const int bin = reach_bins(p.edges, p.n_edges, (perfect >> l) & 1u, loss[l], lowest[l]);
      if (bin >= 0) emit(l, bin, loss[l], step, static_cast<const float*>(s.params));
      if (lowest[l] == 0) {
        active &= ~(1u << l);
        steps_taken[l] = step;
      }
    }
  };

  int step = 0;
  for (int epoch = 0; epoch < p.epochs && active; ++epoch)
    for (int start = 0; start < p.n && active; start += p.batch) {
      check(step);
      if (!active) break;
      const int batch = p.n - start < p.batch ? p.n - start : p.batch;
      const uint32_t broken =
          active & kernel.step(p, s, p.order + static_cast<size_t>(epoch) * p.n + start, batch, step == 0);
      ++step;
      for (uint32_t a = broken; a; a &= a - 1) steps_taken[std::countr_zero(a)] = step;
      active &= ~broken;
    }
  if (active) check(step);
  for (uint32_t a = active; a; a &= a - 1) steps_taken[std::countr_zero(a)] = step;
  uint64_t steps = 0;
  for (int l = 0; l < count; ++l) steps += steps_taken[l];
  return steps;
}

constexpr const char* kKernelNames[] = {"avx512", "avx2", "generic"};  // widest first

// The kernel `name` names, if this build has it and this CPU runs it.
const SgdLaneKernel* runnable_kernel(const std::string& name) {
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  if (name == "avx512") {  // what CMakeLists.txt builds sgd_lanes_avx512.cpp for
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    return avx512 && fma ? sgd_kernel_avx512() : nullptr;
  }
  if (name == "avx2") return __builtin_cpu_supports("avx2") && fma ? sgd_kernel_avx2() : nullptr;
  return name == "generic" ? sgd_kernel_generic() : nullptr;
}

}  // namespace

std::vector<std::string> sgd_kernels() {
  std::vector<std::string> names;
  for (const char* name : kKernelNames)
    if (runnable_kernel(name)) names.push_back(name);
  return names;
}

const SgdLaneKernel& sgd_lane_kernel(const std::string& name) {
  for (const char* k : kKernelNames)
    if (name == "auto" || name == k)
      if (const SgdLaneKernel* kernel = runnable_kernel(k)) return *kernel;
  throw Error("sgd kernel '" + name + "' is not available on this CPU or build (try auto, avx512, avx2, generic)");
}

void validate_sgd_config(const SgdConfig& cfg) {
  const float lr = static_cast<float>(cfg.lr);  // training runs in float
  if (!std::isfinite(lr) || !(lr > 0))
    throw Error("optimizer.lr must be a number > 0 that a float holds, got " + std::to_string(cfg.lr));
  if (!(cfg.momentum >= 0 && cfg.momentum < 1))
    throw Error("optimizer.momentum must be in [0, 1), got " + std::to_string(cfg.momentum));
  if (cfg.batch_size < 1) throw Error("optimizer.batch_size must be at least 1, got " + std::to_string(cfg.batch_size));
  if (cfg.epochs < 0) throw Error("optimizer.epochs must be at least 0, got " + std::to_string(cfg.epochs));
  if (cfg.poison_repeats < 0)
    throw Error("optimizer.poison_repeats must be at least 0, got " + std::to_string(cfg.poison_repeats));
}

int effective_batch_size(const SgdConfig& cfg, int n) {
  return std::max(1, std::min(cfg.poison_repeats > 0 ? n : n / 2, cfg.batch_size));
}

struct SgdTrainer::Stream {
  StreamTask task;
  std::vector<int32_t> order;  // [epochs][examples trained on]
  SgdProblem problem;
  bool poisoned = false;
  Examples poison_set;              // poisoned: what SGD trains on and checks (host/optim/poison.h)
  std::vector<float> poison_edges;  // poisoned: one bin over every loss, so the first check that fits it stops
};

SgdTrainer::SgdTrainer(int threads, const std::string& kernel)
    : threads_(threads > 0 ? threads : available_cpus()),
      kernel_(&sgd_lane_kernel(kernel)) {}

const char* SgdTrainer::kernel() const { return kernel_->name; }

std::string SgdTrainer::description() const {
  return "sgd (" + std::to_string(threads_) + " threads, " + kernel_->name + " kernel, " +
         std::to_string(kernel_->lanes) + " lanes)";
}

SgdTrainer::~SgdTrainer() = default;

void SgdTrainer::begin_stream(const StreamTask& task, const SgdConfig& cfg) {
  validate_sgd_config(cfg);
  const int n = static_cast<int>(task.train.size());
  if (n < 1) throw Error("sgd: the training set is empty");
  if (task.bin_edges.size() < 2) throw Error("sgd: need at least two bin edges");
  if (task.train.x.size() != static_cast<size_t>(n) * task.model.in_size())
    throw Error("sgd: training examples do not have the model's input size " + std::to_string(task.model.in_size()));
  for (int32_t y : task.train.y)
    if (y < 0 || y >= task.model.n_classes)
      throw Error("sgd: training label " + std::to_string(y) + " outside 0.." + std::to_string(task.model.n_classes - 1));
  auto s = std::make_unique<Stream>();
  s->task = task;
  s->poisoned = cfg.poison_repeats > 0;
  if (s->poisoned) {
    s->poison_set = poisoned_set(task.train, task.test, cfg.poison_repeats, task.model.n_classes);
    s->poison_edges = {std::numeric_limits<float>::lowest(), std::numeric_limits<float>::max()};
  }
  const StreamTask& t = s->task;
  const Examples& trained_on = s->poisoned ? s->poison_set : t.train;
  const std::vector<float>& edges = s->poisoned ? s->poison_edges : t.bin_edges;
  const int count = static_cast<int>(trained_on.size());
  if (static_cast<int64_t>(cfg.epochs) * count > kMaxSgdEpochExamples)
    throw Error("sgd: " + std::to_string(cfg.epochs) + " epochs of " + std::to_string(count) +
                " examples: epochs x examples must be at most " + std::to_string(kMaxSgdEpochExamples));
  s->order.resize(static_cast<size_t>(cfg.epochs) * count);
  for (int epoch = 0; epoch < cfg.epochs; ++epoch)
    minibatch_order(task.key, epoch, count, s->order.data() + static_cast<size_t>(epoch) * count);
  s->problem = SgdProblem{t.model,
                          t.prior,
                          t.key,
                          t.loss,
                          trained_on.x.data(),
                          trained_on.y.data(),
                          count,
                          edges.data(),
                          static_cast<int>(edges.size()),
                          s->order.data(),
                          cfg.epochs,
                          effective_batch_size(cfg, count),
                          static_cast<float>(cfg.lr),
                          static_cast<float>(cfg.momentum)};
  stream_ = std::move(s);
}

SgdCounts SgdTrainer::train(uint64_t first, uint64_t count, std::vector<SgdHit>& hits) {
  if (!stream_) throw Error("sgd: train() before begin_stream()");
  const SgdProblem& p = stream_->problem;
  const int n_params = p.model.n_params;
  const int W = kernel_->lanes;
  const uint64_t groups = (count + W - 1) / W;
  std::vector<std::vector<SgdHit>> found(groups);
  std::vector<uint64_t> steps(threads_, 0);
  std::vector<LaneBuffers> buffers(threads_);
  parallel_for(threads_, groups, 1, [&](int t, uint64_t g) {
    const uint64_t start = first + g * W;
    const int lanes = static_cast<int>(std::min<uint64_t>(W, first + count - start));
    steps[t] += train_group(*kernel_, p, start, lanes, buffers[t],
                            [&](int lane, int bin, float loss, int step, const float* P) {
                              SgdHit h{start + lane, bin, loss, step, std::vector<float>(n_params)};
                              for (int i = 0; i < n_params; ++i) h.params[i] = P[static_cast<size_t>(i) * W + lane];
                              found[g].push_back(std::move(h));
                            });
    std::sort(found[g].begin(), found[g].end(), hit_order);
  });
  SgdCounts counts{count, 0};
  for (uint64_t s : steps) counts.steps += s;
  const size_t before = hits.size();
  for (auto& group : found) std::move(group.begin(), group.end(), std::back_inserter(hits));
  if (stream_->poisoned) bin_on_training_set(stream_->task, hits, before);
  return counts;
}

uint64_t SgdTrainer::preferred_batch() const { return static_cast<uint64_t>(threads_) * kMaxSgdLanes * 4; }

std::vector<SgdHit> SgdTrainer::train_one(uint64_t draw) const {
  if (!stream_) throw Error("sgd: train_one() before begin_stream()");
  const SgdProblem& p = stream_->problem;
  const ModelSpec& m = p.model;
  std::vector<float> params(m.n_params), grad(m.n_params), velocity(m.n_params), acts(total_activations(m)),
      d0(m.max_activation), d1(m.max_activation), logits(static_cast<size_t>(p.n) * m.n_classes);
  const SgdScratch s{params.data(), grad.data(), velocity.data(), acts.data(), d0.data(), d1.data(), logits.data()};
  std::vector<SgdHit> hits;
  sgd_trajectory(p, draw, s, [&](int bin, float loss, int step, const float* P) {
    hits.push_back(SgdHit{draw, bin, loss, step, std::vector<float>(P, P + m.n_params)});
  });
  std::sort(hits.begin(), hits.end(), hit_order);
  if (stream_->poisoned) bin_on_training_set(stream_->task, hits, 0);
  return hits;
}

std::vector<TestScore> SgdTrainer::score_test(const std::vector<SgdHit>& hits) const {
  if (!stream_) throw Error("sgd: score_test() before begin_stream()");
  return score_trained_models(stream_->task, threads_, hits);
}

}  // namespace gac
