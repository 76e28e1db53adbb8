// CUDA backend: one thread per draw runs the shared __host__ __device__ code
// of include/gac/prior.h and kernels/forward.h, so draws are bit-identical to
// the CPU backend. The training and test sets stay resident for a stream;
// only perfect draws (compacted on the device with Thrust) cross to the host.
#include <thrust/copy.h>
#include <thrust/execution_policy.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>

#include "gac/backend.h"
#include "kernels/cuda_check.h"
#include "kernels/forward.h"

namespace gac {
namespace {

struct DrawOutcome {
  int32_t perfect;
  float loss;
};

struct ThreadScratch {
  float* params;      // launch x n_params
  float* activations; // launch x 2 * max_activation
  float* logits;      // launch x n_examples x n_classes
};

__global__ void evaluate_draws(ModelSpec m, PriorSpec prior, StreamKey key, uint64_t first, uint32_t count,
                               const float* X, const int32_t* Y, int n, LossKind loss, bool early_reject,
                               ThreadScratch s, DrawOutcome* out) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  float* params = s.params + static_cast<size_t>(i) * m.n_params;
  float* buf0 = s.activations + static_cast<size_t>(i) * 2 * m.max_activation;
  float* logits = s.logits + static_cast<size_t>(i) * n * m.n_classes;
  generate_params(prior, key, first + i, m.n_params, params);
  const DrawResult r = evaluate_draw(m, params, X, Y, n, loss, early_reject, buf0, buf0 + m.max_activation, logits);
  out[i] = DrawOutcome{r.correct == n, r.loss};
}

// Test scoring: thread i handles model i / n_test, example i % n_test.
__global__ void generate_models(ModelSpec m, PriorSpec prior, StreamKey key, const uint64_t* draws, uint32_t count,
                                float* params) {
  const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < count) generate_params(prior, key, draws[i], m.n_params, params + static_cast<size_t>(i) * m.n_params);
}

__global__ void score_examples(ModelSpec m, const float* params, uint32_t models, const float* X, const int32_t* Y,
                               int n, LossKind loss, float* scratch, float* example_loss, int32_t* example_correct) {
  const uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<uint64_t>(models) * n) return;
  const uint32_t model = static_cast<uint32_t>(i / n);
  const int e = static_cast<int>(i % n);
  const float* p = params + static_cast<size_t>(model) * m.n_params;
  float* buf0 = scratch + i * 2 * m.max_activation;
  const float* z = forward_example(m, p, X + static_cast<size_t>(e) * m.in_size(), buf0, buf0 + m.max_activation);
  example_correct[i] = argmax(z, m.n_classes) == Y[e];
  example_loss[i] = cross_entropy(z, m.n_classes, Y[e], logit_scale(m, p, loss));
}

struct IsPerfect {
  const DrawOutcome* outcomes;
  __host__ __device__ bool operator()(uint32_t i) const { return outcomes[i].perfect != 0; }
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    GAC_CUDA_CHECK(cudaSetDevice(device));
    GAC_CUDA_CHECK(cudaGetDeviceProperties(&props_, device));
  }

  std::string name() const override { return "cuda"; }
  std::string description() const override {
    return "cuda (" + std::string(props_.name) + ", " + std::to_string(props_.multiProcessorCount) + " SMs)";
  }

  void begin_stream(const StreamTask& task) override {
    task_ = task;
    train_x_.upload(task.train.x.data(), task.train.x.size());
    train_y_.upload(task.train.y.data(), task.train.y.size());
    test_x_.upload(task.test.x.data(), task.test.x.size());
    test_y_.upload(task.test.y.data(), task.test.y.size());
    launch_ = 0;  // scratch depends on the model and n: sized on first use
  }

  EvalCounts evaluate(uint64_t first, uint64_t count, std::vector<Hit>& hits) override {
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.train.size());
    EvalCounts counts{count, 0};
    for (uint64_t done = 0; done < count;) {
      const uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(count - done, ensure_scratch(n)));
      ThreadScratch s{params_.get(), activations_.get(), logits_.get()};
      evaluate_draws<<<(chunk + 127) / 128, 128>>>(m, task_.prior, task_.key, first + done, chunk, train_x_.get(),
                                                   train_y_.get(), n, task_.loss, task_.early_reject, s, outcomes_.get());
      GAC_CUDA_CHECK(cudaGetLastError());
      uint32_t* end = thrust::copy_if(thrust::device, thrust::counting_iterator<uint32_t>(0),
                                      thrust::counting_iterator<uint32_t>(chunk), perfect_.get(), IsPerfect{outcomes_.get()});
      const size_t n_perfect = end - perfect_.get();
      if (n_perfect) {
        // Only the perfect draws' outcomes leave the device.
        thrust::gather(thrust::device, perfect_.get(), end, outcomes_.get(), compacted_.get());
        std::vector<uint32_t> idx(n_perfect);
        std::vector<DrawOutcome> found(n_perfect);
        GAC_CUDA_CHECK(cudaMemcpy(idx.data(), perfect_.get(), n_perfect * sizeof(uint32_t), cudaMemcpyDeviceToHost));
        GAC_CUDA_CHECK(cudaMemcpy(found.data(), compacted_.get(), n_perfect * sizeof(DrawOutcome), cudaMemcpyDeviceToHost));
        for (size_t k = 0; k < n_perfect; ++k)
          hits.push_back({first + done + idx[k], found[k].loss,
                          find_bin(task_.bin_edges.data(), static_cast<int>(task_.bin_edges.size()), found[k].loss)});
      }
      counts.examples += static_cast<uint64_t>(chunk) * n;  // upper bound with early rejection
      done += chunk;
    }
    return counts;
  }

  std::vector<TestScore> score_test(const std::vector<uint64_t>& draws) override {
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.test.size());
    std::vector<TestScore> scores(draws.size());
    if (draws.empty() || n == 0) return scores;
    DeviceBuffer<uint64_t> d_draws(draws.size());
    d_draws.upload(draws.data(), draws.size());
    DeviceBuffer<float> params(draws.size() * m.n_params);
    generate_models<<<(draws.size() + 127) / 128, 128>>>(m, task_.prior, task_.key, d_draws.get(),
                                                          static_cast<uint32_t>(draws.size()), params.get());
    GAC_CUDA_CHECK(cudaGetLastError());
    const size_t pairs = draws.size() * n;
    DeviceBuffer<float> scratch(pairs * 2 * m.max_activation), loss(pairs);
    DeviceBuffer<int32_t> correct(pairs);
    score_examples<<<(pairs + 127) / 128, 128>>>(m, params.get(), static_cast<uint32_t>(draws.size()), test_x_.get(),
                                                 test_y_.get(), n, task_.loss, scratch.get(), loss.get(), correct.get());
    GAC_CUDA_CHECK(cudaGetLastError());
    std::vector<float> h_loss(pairs);
    std::vector<int32_t> h_correct(pairs);
    GAC_CUDA_CHECK(cudaMemcpy(h_loss.data(), loss.get(), pairs * sizeof(float), cudaMemcpyDeviceToHost));
    GAC_CUDA_CHECK(cudaMemcpy(h_correct.data(), correct.get(), pairs * sizeof(int32_t), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < draws.size(); ++i) {
      double l = 0;
      int c = 0;
      for (int e = 0; e < n; ++e) {
        l += h_loss[i * n + e];
        c += h_correct[i * n + e];
      }
      scores[i] = TestScore{static_cast<double>(c) / n, l / n};
    }
    return scores;
  }

 private:
  // Sizes the per-draw scratch for the current stream: as many draws per
  // launch as a quarter of free memory holds, halving on out-of-memory.
  uint32_t ensure_scratch(int n) {
    if (launch_) return launch_;
    const ModelSpec& m = task_.model;
    size_t free_bytes = 0, total = 0;
    GAC_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    const size_t per_draw = sizeof(float) * (m.n_params + 2 * m.max_activation + static_cast<size_t>(n) * m.n_classes) +
                            2 * sizeof(DrawOutcome) + sizeof(uint32_t);
    size_t launch = std::clamp<size_t>(free_bytes / 4 / per_draw, 1024, 1 << 20);
    for (; launch >= 1; launch /= 2) {
      if (params_.try_resize(launch * m.n_params) && activations_.try_resize(launch * 2 * m.max_activation) &&
          logits_.try_resize(launch * n * m.n_classes) && outcomes_.try_resize(launch) && compacted_.try_resize(launch) &&
          perfect_.try_resize(launch))
        break;
    }
    if (launch == 0) throw Error("cuda: out of device memory even for one draw");
    launch_ = static_cast<uint32_t>(launch);
    return launch_;
  }

  int device_;
  cudaDeviceProp props_{};
  StreamTask task_;
  uint32_t launch_ = 0;
  DeviceBuffer<float> train_x_, test_x_, params_, activations_, logits_;
  DeviceBuffer<int32_t> train_y_, test_y_;
  DeviceBuffer<DrawOutcome> outcomes_, compacted_;
  DeviceBuffer<uint32_t> perfect_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (why_not) *why_not = status != cudaSuccess ? cudaGetErrorString(status) : "no CUDA device";
    cudaGetLastError();
    return nullptr;
  }
  return std::make_unique<CudaBackend>(0);
}

std::vector<float> cuda_generate_params(const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                        const std::vector<uint64_t>& draws) {
  DeviceBuffer<uint64_t> d_draws(draws.size());
  d_draws.upload(draws.data(), draws.size());
  DeviceBuffer<float> params(draws.size() * m.n_params);
  generate_models<<<(draws.size() + 127) / 128, 128>>>(m, prior, key, d_draws.get(), static_cast<uint32_t>(draws.size()),
                                                        params.get());
  GAC_CUDA_CHECK(cudaGetLastError());
  std::vector<float> out(draws.size() * m.n_params);
  GAC_CUDA_CHECK(cudaMemcpy(out.data(), params.get(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

std::vector<std::string> cuda_device_descriptions() {
  std::vector<std::string> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return out;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    out.push_back(std::to_string(d) + ": " + p.name + ", " + std::to_string(p.totalGlobalMem >> 20) + " MiB, " +
                  std::to_string(p.multiProcessorCount) + " SMs, compute capability " + std::to_string(p.major) + "." +
                  std::to_string(p.minor));
  }
  return out;
}

}  // namespace gac
