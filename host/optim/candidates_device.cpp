// The device's candidate evaluator (host/optim/candidates_device.h). Per
// batch, on one queue: the candidates' parameters and logit scales
// (kernels/candidate_kernels.h), then every (candidate, training example)
// pair's correctness and cross-entropy with test scoring's kernels
// (kernels/search_kernels.h: dense_score, block_score). The host sums each
// candidate's losses in example order as evaluate_draw does, so the Eval is
// the CPU evaluator's bit for bit. Everything is allocated once, for the
// largest batch, when the evaluator is made.
#include "host/optim/candidates_device.h"

#include <algorithm>
#include <string>

#include "gac/error.h"
#include "kernels/strided_forward.h"

namespace gac {
namespace {

constexpr int kQueue = 0;

class DeviceCandidateEvaluator final : public CandidateEvaluator {
 public:
  DeviceCandidateEvaluator(const StreamTask& task, Device& device, int64_t max_count)
      : task_(task), dev_(device), n_(static_cast<int>(task.train.size())),
        capacity_(static_cast<uint32_t>(std::max<int64_t>(1, max_count))), x_(device), current_(device),
        params_(device), scales_(device), act_(device), loss_(device), y_(device), moves_(device),
        correct_(device), h_moves_(device), h_loss_(device), h_correct_(device) {
    if (max_count >= (int64_t{1} << 32))
      throw Error("search on " + device.props().name + ": " + std::to_string(max_count) +
                  " candidates per batch exceed the device's 32-bit slots: lower optimizer.budget");
    choose_score_kernel();
    const size_t need = bytes();
    if (need > dev_.free_memory()) throw budget_error(capacity_, need);
    const ModelSpec& m = task.model;
    const size_t pairs = static_cast<size_t>(capacity_) * n_;
    const bool ok = x_.try_resize(task.train.x.size()) && y_.try_resize(task.train.y.size()) &&
                    current_.try_resize(m.n_params) && params_.try_resize(capacity_ * size_t(m.n_params)) &&
                    scales_.try_resize(capacity_) && moves_.try_resize(capacity_) && act_.try_resize(act_floats_) &&
                    loss_.try_resize(pairs) && correct_.try_resize(pairs);
    if (!ok) throw budget_error(capacity_, need);
    x_.upload(task.train.x.data(), task.train.x.size());
    y_.upload(task.train.y.data(), task.train.y.size());
    h_moves_.resize(capacity_);
    h_loss_.resize(pairs);
    h_correct_.resize(pairs);
  }

  Eval set_current(const std::vector<float>& current) override {
    current_.upload(current.data(), current.size());
    dev_.upload(params_.get(), current.data(), current.size() * sizeof(float));
    Eval e;
    score(1, &e);
    return e;
  }

  void evaluate(const PatternBatch& b, Eval* out) override {
    const uint32_t count = checked_count(b.count);
    if (count == 0) return;
    std::copy_n(b.moves, count, h_moves_.get());
    dev_.upload_async(moves_.get(), h_moves_.get(), count * sizeof(uint32_t), kQueue);
    CandidateArgs a = args(count, b.r);
    a.moves = moves_.get();
    dev_.pattern_candidates(candidate_grid(count * size_t(task_.model.n_params)), a, kQueue);
    score(count, out);
  }

  void evaluate(const GreedyBatch& b, Eval* out) override {
    const uint32_t count = checked_count(b.count);
    if (count == 0) return;
    CandidateArgs a = args(count, b.r);
    a.key = b.key;
    a.counter = b.counter;
    dev_.greedy_candidates(candidate_grid(count * size_t((task_.model.n_params + 3) / 4)), a, kQueue);
    score(count, out);
  }

 private:
  Error budget_error(int64_t count, size_t need) const {
    return Error("search on " + dev_.props().name + ": a batch of " + std::to_string(count) + " candidates on " +
                 std::to_string(n_) + " training examples needs " + std::to_string(need >> 20) +
                 " MiB of device memory, more than the device has free (" + std::to_string(dev_.free_memory() >> 20) +
                 " MiB): lower optimizer.budget");
  }

  uint32_t checked_count(int64_t count) const {
    if (count < 0 || count > capacity_)
      throw Error("device candidate evaluator: a batch of " + std::to_string(count) + " candidates, made for " +
                  std::to_string(capacity_));
    return static_cast<uint32_t>(count);
  }

  CandidateArgs args(uint32_t count, float r) const {
    CandidateArgs a{};
    a.m = task_.model;
    a.loss = task_.loss;
    a.current = current_.get();
    a.count = count;
    a.r = r;
    a.params = params_.get();
    a.scales = scales_.get();
    return a;
  }

  int candidate_grid(size_t items) const {
    const size_t threads = dev_.props().dense_threads;
    return static_cast<int>(std::clamp<size_t>((items + threads - 1) / threads, 1, size_t(dev_.props().sms) * 32));
  }

  int resident_blocks(DeviceKernel kernel, size_t smem) {
    return dev_.props().sms * std::max(1, dev_.blocks_per_sm(kernel, smem_image_, smem));
  }

  // Dense models: a thread per pair. Others: a block per (candidate, chunk
  // of examples), the candidate's image in shared memory when it fits.
  void choose_score_kernel() {
    const ModelSpec& m = task_.model;
    const size_t pairs = static_cast<size_t>(capacity_) * n_;
    dense_ = is_dense_only(m);
    if (dense_) {
      const size_t threads = dev_.props().dense_threads;
      grid_ = static_cast<int>(
          std::min<size_t>((pairs + threads - 1) / threads, resident_blocks(DeviceKernel::dense_score, 0)));
      act_floats_ = static_cast<size_t>(grid_) * threads * 2 * m.max_activation;
      return;
    }
    plan_ = make_block_plan(m);
    plan_.resident_example = 0;  // scoring stages each example as it comes
    const size_t limit = dev_.props().smem_per_block;
    smem_image_ = block_smem_floats(plan_, true) * sizeof(float) + dev_.static_smem(DeviceKernel::block_score, true) <= limit;
    smem_bytes_ = block_smem_floats(plan_, smem_image_) * sizeof(float);
    if (smem_bytes_ + dev_.static_smem(DeviceKernel::block_score, smem_image_) > limit)
      throw Error("search on " + dev_.props().name + ": the model's activations need " + std::to_string(smem_bytes_) +
                  " bytes of shared memory per block; this device allows " + std::to_string(limit));
    dev_.allow_dynamic_smem(smem_image_, smem_bytes_);
    const size_t items = static_cast<size_t>(capacity_) * ((n_ + kScoreChunk - 1) / kScoreChunk);
    grid_ = static_cast<int>(std::min<size_t>(items, resident_blocks(DeviceKernel::block_score, smem_bytes_)));
    act_floats_ = smem_image_ ? 0 : static_cast<size_t>(grid_) * plan_.image_floats;
  }

  size_t bytes() const {
    const ModelSpec& m = task_.model;
    const size_t pairs = static_cast<size_t>(capacity_) * n_;
    return sizeof(float) * (task_.train.x.size() + m.n_params + capacity_ * (size_t(m.n_params) + 1) + act_floats_ +
                            pairs) +
           sizeof(int32_t) * task_.train.y.size() + sizeof(uint32_t) * capacity_ + pairs;
  }

  // Scales and scores candidates 0 .. count-1 of params_; out[s] their Evals.
  void score(uint32_t count, Eval* out) {
    dev_.candidate_scales(candidate_grid(count), args(count, 0.0f), kQueue);
    const ScoreArgs a{task_.model, plan_, count, params_.get(), scales_.get(), x_.get(), y_.get(), n_,
                      act_.get(), correct_.get(), loss_.get()};
    const size_t pairs = static_cast<size_t>(count) * n_;
    if (dense_) {
      const size_t threads = dev_.props().dense_threads;
      dev_.dense_score(static_cast<int>(std::min<size_t>(grid_, (pairs + threads - 1) / threads)), a, kQueue);
    } else {
      const size_t items = static_cast<size_t>(count) * ((n_ + kScoreChunk - 1) / kScoreChunk);
      dev_.block_score(static_cast<int>(std::min<size_t>(grid_, items)), smem_bytes_, smem_image_, a, kQueue);
    }
    dev_.download_async(h_loss_.get(), loss_.get(), pairs * sizeof(float), kQueue);
    dev_.download_async(h_correct_.get(), correct_.get(), pairs, kQueue);
    dev_.synchronize(kQueue);
    for (uint32_t s = 0; s < count; ++s) {  // evaluate_draw's sum: float, in example order
      const float* loss = h_loss_.get() + static_cast<size_t>(s) * n_;
      const uint8_t* correct = h_correct_.get() + static_cast<size_t>(s) * n_;
      float sum = 0.0f;
      int c = 0;
      for (int e = 0; e < n_; ++e) {
        sum = add_rn(sum, loss[e]);
        c += correct[e];
      }
      out[s] = Eval{sum / static_cast<float>(n_), c};
    }
  }

  const StreamTask& task_;
  Device& dev_;
  int n_;
  uint32_t capacity_;
  bool dense_ = true, smem_image_ = false;
  BlockPlan plan_{};
  size_t smem_bytes_ = 0, act_floats_ = 0;
  int grid_ = 1;
  DeviceArray<float> x_, current_, params_, scales_, act_, loss_;
  DeviceArray<int32_t> y_;
  DeviceArray<uint32_t> moves_;
  DeviceArray<uint8_t> correct_;
  PinnedArray<uint32_t> h_moves_;
  PinnedArray<float> h_loss_;
  PinnedArray<uint8_t> h_correct_;
};

}  // namespace

std::unique_ptr<CandidateEvaluator> make_device_candidate_evaluator(const StreamTask& task, Device& device,
                                                                    int64_t max_count) {
  return std::make_unique<DeviceCandidateEvaluator>(task, device, max_count);
}

}  // namespace gac
