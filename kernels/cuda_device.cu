// The Device interface (kernels/device.h) on a CUDA GPU: the kernels of
// kernels/search_kernels.h as __global__ functions, CUB's DeviceSelect for
// the compaction (kernels/cuda_select.cu), cudaMalloc'd memory (no managed
// memory) and two streams.
// Everything else (sizing, the pipeline, hits, scores) is
// host/backends/device_backend.cpp, which the tests also run on an emulated device.
//
// Test hooks for a GPU machine (environment, read when the backend is made):
//   GAC_CUDA_MAX_LAUNCH=N   at most N draws per launch
//   GAC_CUDA_MEMORY_CAP=B   launch buffers beyond B bytes (both launches
//                           together) count as not fitting: the
//                           out-of-memory shrink path
//   GAC_CUDA_IMAGE=shared|global   where the block kernels keep a draw's
//                           parameters (default: chosen by occupancy), to
//                           benchmark the two variants
#include <algorithm>
#include <cstdlib>
#include <string>

#include "host/backends/device_backend.h"
#include "host/backends/multi_backend.h"
#include "host/optim/candidates_device.h"
#include "kernels/cuda_check.h"
#include "kernels/cuda_select.h"
#include "kernels/search_kernels.h"

// Draws must be bit-identical to the CPU's: no approximate math.
#if defined(__USE_FAST_MATH__)
#error "gac's kernels must not be built with --use_fast_math"
#endif

namespace gac {
namespace {

constexpr int kDenseThreads = 128;  // threads per block, one-thread-per-item kernels
// Threads per block of the block-per-draw kernels: eight warps, two per
// scheduler. With the image in shared memory, LeNet takes 55 KB a block:
// four would fit an sm_90 SM (228 KB) at 64 registers a thread, but ptxas
// 13.0 spills at 64, so the bound asks for three (85 registers, 24 warps);
// earlier GPUs (164 KB or less) hold at most two, and so does any SM with
// the image in global memory.
constexpr int kBlockThreads = 256;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr int blocks_per_sm_bound(bool smem_image) { return smem_image ? 3 : 2; }
#else
constexpr int blocks_per_sm_bound(bool) { return 2; }
#endif

// ---- kernels ------------------------------------------------------------------

__device__ __forceinline__ size_t grid_tid() { return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ size_t grid_threads() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

__global__ void __launch_bounds__(kDenseThreads) dense_group_kernel(DenseArgs a, int e0, int e1, int first_group) {
  dense_group_thread(a, e0, e1, first_group != 0, grid_tid(), grid_threads());
}

__global__ void __launch_bounds__(kDenseThreads) dense_finish_kernel(DenseArgs a, LossKind loss, float* hit_loss) {
  dense_finish_thread(a, loss, hit_loss, grid_tid(), grid_threads());
}

// (kDenseThreads, 4): with the bound on threads alone ptxas 13.0 spills at 56
// registers; with it, 96 and none (5 blocks, 20 warps per SM).
__global__ void __launch_bounds__(kDenseThreads, 4) dense_tiles_kernel(DenseTileArgs a) {
  extern __shared__ uint32_t tile_smem[];
  dense_tile_thread(a, carve_dense_tile_memory(a.m, tile_smem, blockDim.x), threadIdx.x, blockDim.x);
}

// The image is in shared memory (kSmemImage) or in a.images, and the
// prior's class: template arguments, so that the pointer choice and the
// prior's code fold away.
template <bool kSmemImage, PriorClass kPrior>
__global__ void __launch_bounds__(kBlockThreads, blocks_per_sm_bound(kSmemImage)) block_evaluate_kernel(BlockArgs a) {
  extern __shared__ __align__(16) float smem[];
  __shared__ BlockShared shared;
  const BlockMemory mem = carve_block_memory(a.plan, kSmemImage, smem, a.images, blockIdx.x);
  block_evaluate_thread<kPrior>(a, shared, mem, threadIdx.x, blockDim.x);
}

// The block_evaluate_kernel instance for an image place and a prior.
template <bool kSmemImage>
auto evaluate_kernel_for(PriorClass prior) {
  return prior == PriorClass::uniform ? block_evaluate_kernel<kSmemImage, PriorClass::uniform>
         : prior == PriorClass::normal ? block_evaluate_kernel<kSmemImage, PriorClass::normal>
                                       : block_evaluate_kernel<kSmemImage, PriorClass::sphere>;
}
auto evaluate_kernel_for(bool smem_image, PriorClass prior) {
  return smem_image ? evaluate_kernel_for<true>(prior) : evaluate_kernel_for<false>(prior);
}
constexpr PriorClass kPriorClasses[] = {PriorClass::uniform, PriorClass::normal, PriorClass::sphere};

__global__ void __launch_bounds__(kDenseThreads) sphere_factors_kernel(BlockArgs a) {
  sphere_factor_thread(a, grid_tid(), grid_threads());
}

__global__ void __launch_bounds__(kDenseThreads)
    block_finish_kernel(BlockArgs a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss) {
  block_finish_thread(a, hits, n_hits, hit_loss, grid_tid(), grid_threads());
}

__global__ void generate_models_kernel(ModelSpec m, PriorSpec prior, StreamKey key, LossKind loss,
                                       const uint64_t* draws, uint32_t count, float* params, float* scales) {
  const size_t i = grid_tid();
  if (i < count) generate_model_thread(m, prior, key, loss, draws, static_cast<uint32_t>(i), params, scales);
}

__global__ void __launch_bounds__(kDenseThreads) dense_score_kernel(ScoreArgs a) {
  dense_score_thread(a, grid_tid(), grid_threads());
}

// (kBlockThreads, 2) here and for the trace: with the bound on threads
// alone, ptxas 13.0 spills a few bytes at under 64 registers; with it, none.
template <bool kSmemImage>
__global__ void __launch_bounds__(kBlockThreads, 2) block_score_kernel(ScoreArgs a) {
  extern __shared__ __align__(16) float smem[];
  const BlockMemory mem = carve_block_memory(a.plan, kSmemImage, smem, a.act, blockIdx.x);
  block_score_thread(a, mem, blockIdx.x, gridDim.x, threadIdx.x, blockDim.x);
}

__global__ void __launch_bounds__(kDenseThreads) pattern_candidates_kernel(CandidateArgs a) {
  pattern_candidate_thread(a, grid_tid(), grid_threads());
}
__global__ void __launch_bounds__(kDenseThreads) greedy_candidates_kernel(CandidateArgs a) {
  greedy_candidate_thread(a, grid_tid(), grid_threads());
}
__global__ void __launch_bounds__(kDenseThreads) candidate_scales_kernel(CandidateArgs a) {
  candidate_scale_thread(a, grid_tid(), grid_threads());
}

__global__ void __launch_bounds__(kBlockThreads, 2) block_trace_kernel(TraceArgs a) {
  extern __shared__ __align__(16) float smem[];
  const BlockMemory mem = carve_block_memory(a.plan, false, smem, a.images, blockIdx.x);
  block_trace_thread(a, mem, blockIdx.x, threadIdx.x, blockDim.x);
}

__global__ void __launch_bounds__(kDenseThreads) nested_bodies_kernel(NestedArgs a) {
  nested_body_thread(a, grid_tid(), grid_threads());
}
__global__ void __launch_bounds__(kDenseThreads) nested_features_kernel(NestedArgs a) {
  nested_feature_thread(a, grid_tid(), grid_threads());
}
__global__ void __launch_bounds__(kDenseThreads) nested_heads_kernel(NestedArgs a) {
  nested_head_thread(a, grid_tid(), grid_threads());
}
__global__ void __launch_bounds__(kDenseThreads)
    nested_finish_kernel(NestedArgs a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss) {
  nested_finish_thread(a, hits, n_hits, hit_loss, grid_tid(), grid_threads());
}

// ---- the device ------------------------------------------------------------------

uint64_t env_u64(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  const std::string text = v;
  if (text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos)
    throw Error(std::string("environment variable ") + name + " must be a whole number, got '" + text + "'");
  return std::stoull(text);
}

// The test hooks of the header comment. Read before looking for a device, so
// that a bad value is an error on any machine.
DeviceBackendOptions options_from_environment() {
  DeviceBackendOptions options;
  options.name = "cuda";
  if (const uint64_t cap = env_u64("GAC_CUDA_MAX_LAUNCH"))
    options.max_launch = static_cast<uint32_t>(std::min<uint64_t>(cap, options.max_launch));
  options.memory_cap = env_u64("GAC_CUDA_MEMORY_CAP");
  if (const char* image = std::getenv("GAC_CUDA_IMAGE"); image && *image) {
    const std::string v = image;
    if (v != "shared" && v != "global")
      throw Error("environment variable GAC_CUDA_IMAGE must be 'shared' or 'global', got '" + v + "'");
    options.image = v == "shared" ? ImagePlace::shared : ImagePlace::global;
  }
  return options;
}

template <class Kernel>
int occupancy(Kernel kernel, int threads, size_t smem) {
  int blocks = 0;
  GAC_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, smem));
  return blocks;
}

template <class Kernel>
size_t static_smem_of(Kernel kernel) {
  cudaFuncAttributes attr{};
  GAC_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  return attr.sharedSizeBytes;
}

// Makes `device` current and returns it: CudaDevice's first member, so the
// streams after it are created on that device.
int select_device(int device) {
  GAC_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(int device) : device_(select_device(device)) {
    cudaDeviceProp p{};
    GAC_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    props_.name = p.name;
    props_.sms = p.multiProcessorCount;
    props_.total_memory = p.totalGlobalMem;
    props_.smem_per_block = p.sharedMemPerBlockOptin;
    props_.major = p.major;
    props_.minor = p.minor;
    props_.dense_threads = kDenseThreads;
  }

  const DeviceProps& props() const override { return props_; }
  size_t free_memory() override {
    size_t free_bytes = 0, total = 0;
    GAC_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    return free_bytes;
  }

  void* try_alloc(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the (non-sticky) error so later checks do not see it
      return nullptr;
    }
    GAC_CUDA_CHECK(status);
    return p;
  }
  // cudaFree waits for the device to finish; unchecked: it also runs while
  // unwinding from an error, where a second exception would terminate.
  void release(void* p) override { cudaFree(p); }
  void* alloc_pinned(size_t bytes) override {
    void* p = nullptr;
    GAC_CUDA_CHECK(cudaMallocHost(&p, bytes));
    return p;
  }
  void release_pinned(void* p) override { cudaFreeHost(p); }

  // Synchronous copies run on the legacy default stream, which waits for
  // (and is waited for by) the two blocking streams.
  void upload(void* dst, const void* src, size_t bytes) override {
    GAC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  }
  void download(void* dst, const void* src, size_t bytes) override {
    GAC_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  }
  void upload_async(void* dst, const void* src, size_t bytes, int q) override {
    if (bytes) GAC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream(q)));
  }
  void download_async(void* dst, const void* src, size_t bytes, int q) override {
    if (bytes) GAC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream(q)));
  }
  void zero_async(void* dst, size_t bytes, int q) override {
    GAC_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream(q)));
  }
  void synchronize(int q) override { GAC_CUDA_CHECK(cudaStreamSynchronize(stream(q))); }

  int blocks_per_sm(DeviceKernel kernel, bool smem_image, size_t smem) override {
    switch (kernel) {
      case DeviceKernel::dense_group: return occupancy(dense_group_kernel, kDenseThreads, 0);
      case DeviceKernel::dense_tiles: return occupancy(dense_tiles_kernel, kDenseThreads, smem);
      case DeviceKernel::dense_score: return occupancy(dense_score_kernel, kDenseThreads, 0);
      case DeviceKernel::block_evaluate: {  // the least of the prior classes' instances
        int blocks = INT32_MAX;
        for (PriorClass prior : kPriorClasses)
          blocks = std::min(blocks, occupancy(evaluate_kernel_for(smem_image, prior), kBlockThreads, smem));
        return blocks;
      }
      case DeviceKernel::block_score:
        return smem_image ? occupancy(block_score_kernel<true>, kBlockThreads, smem)
                          : occupancy(block_score_kernel<false>, kBlockThreads, smem);
      case DeviceKernel::block_finish: return occupancy(block_finish_kernel, kDenseThreads, 0);
      case DeviceKernel::sphere_factors: return occupancy(sphere_factors_kernel, kDenseThreads, 0);
    }
    return 1;
  }
  size_t static_smem(DeviceKernel kernel, bool smem_image) override {
    switch (kernel) {
      case DeviceKernel::dense_group: return static_smem_of(dense_group_kernel);
      case DeviceKernel::dense_tiles: return static_smem_of(dense_tiles_kernel);
      case DeviceKernel::dense_score: return static_smem_of(dense_score_kernel);
      case DeviceKernel::block_evaluate: {
        size_t bytes = 0;
        for (PriorClass prior : kPriorClasses)
          bytes = std::max(bytes, static_smem_of(evaluate_kernel_for(smem_image, prior)));
        return bytes;
      }
      case DeviceKernel::block_score:
        return smem_image ? static_smem_of(block_score_kernel<true>) : static_smem_of(block_score_kernel<false>);
      case DeviceKernel::block_finish: return static_smem_of(block_finish_kernel);
      case DeviceKernel::sphere_factors: return static_smem_of(sphere_factors_kernel);
    }
    return 0;
  }
  // Raised to all the device allows rather than to `bytes`: the attribute
  // is per kernel and process-wide, and another backend's smaller setting
  // must not break this one's launches.
  void allow_dynamic_smem(bool smem_image, size_t bytes) override {
    const cudaFuncAttribute attr = cudaFuncAttributeMaxDynamicSharedMemorySize;
    const auto allow = [&](auto kernel) {
      const size_t most = props_.smem_per_block - static_smem_of(kernel);
      if (bytes > most) throw Error("cuda: " + std::to_string(bytes) + " bytes of shared memory per block do not fit");
      GAC_CUDA_CHECK(cudaFuncSetAttribute(kernel, attr, static_cast<int>(most)));
    };
    for (PriorClass prior : kPriorClasses) allow(evaluate_kernel_for(smem_image, prior));
    if (smem_image) allow(block_score_kernel<true>);
    else allow(block_score_kernel<false>);
  }
  size_t select_temp_bytes(uint32_t items) override { return cuda_select_temp_bytes(items); }
  void select_indices(void* temp, size_t temp_bytes, const uint8_t* flags, uint32_t count, uint32_t* out,
                      uint32_t* n_out, int q) override {
    cuda_select_indices(temp, temp_bytes, flags, count, out, n_out, stream(q));
  }

  void dense_group(int grid, const DenseArgs& a, int e0, int e1, bool first_group, int q) override {
    dense_group_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a, e0, e1, first_group ? 1 : 0);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void dense_finish(int grid, const DenseArgs& a, LossKind loss, float* hit_loss, int q) override {
    dense_finish_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a, loss, hit_loss);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void dense_tiles(int grid, const DenseTileArgs& a, int q) override {
    const size_t smem = dense_tile_smem_words(a.m, kDenseThreads) * sizeof(uint32_t);
    dense_tiles_kernel<<<grid, kDenseThreads, smem, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void block_evaluate(int grid, size_t smem, bool smem_image, const BlockArgs& a, int q) override {
    evaluate_kernel_for(smem_image, prior_class(a.prior.kind))<<<grid, kBlockThreads, smem, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void sphere_factors(int grid, const BlockArgs& a, int q) override {
    sphere_factors_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void block_finish(int grid, const BlockArgs& a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss,
                    int q) override {
    block_finish_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a, hits, n_hits, hit_loss);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void generate_models(const ModelSpec& m, const PriorSpec& prior, StreamKey key, LossKind loss,
                       const uint64_t* draws, uint32_t count, float* params, float* scales, int q) override {
    generate_models_kernel<<<(count + 127) / 128, 128, 0, stream(q)>>>(m, prior, key, loss, draws, count, params,
                                                                        scales);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void nested_bodies(int grid, const NestedArgs& a, int q) override {
    nested_bodies_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void nested_features(int grid, const NestedArgs& a, int q) override {
    nested_features_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void nested_heads(int grid, const NestedArgs& a, int q) override {
    nested_heads_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void nested_finish(int grid, const NestedArgs& a, const uint32_t* hits, const uint32_t* n_hits, float* hit_loss,
                     int q) override {
    nested_finish_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a, hits, n_hits, hit_loss);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void dense_score(int grid, const ScoreArgs& a, int q) override {
    dense_score_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void block_score(int grid, size_t smem, bool smem_image, const ScoreArgs& a, int q) override {
    if (smem_image) block_score_kernel<true><<<grid, kBlockThreads, smem, stream(q)>>>(a);
    else block_score_kernel<false><<<grid, kBlockThreads, smem, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void block_trace(int examples, const TraceArgs& a, int q) override {
    const size_t smem = block_smem_floats(a.plan, false) * sizeof(float);
    // Like the other block kernels, past CUDA's 48 KB default only by opting in.
    const size_t most = props_.smem_per_block - static_smem_of(block_trace_kernel);
    if (smem > most) throw Error("cuda: " + std::to_string(smem) + " bytes of shared memory per block do not fit");
    GAC_CUDA_CHECK(
        cudaFuncSetAttribute(block_trace_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(most)));
    block_trace_kernel<<<examples, kBlockThreads, smem, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }

  void pattern_candidates(int grid, const CandidateArgs& a, int q) override {
    pattern_candidates_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void greedy_candidates(int grid, const CandidateArgs& a, int q) override {
    greedy_candidates_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }
  void candidate_scales(int grid, const CandidateArgs& a, int q) override {
    candidate_scales_kernel<<<grid, kDenseThreads, 0, stream(q)>>>(a);
    GAC_CUDA_CHECK_LAUNCH();
  }

 private:
  cudaStream_t stream(int q) const { return streams_[q].get(); }

  int device_;  // initialized first: see select_device
  DeviceProps props_;
  CudaStream streams_[kQueues];
};

std::string cuda_version(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// Why device 0 is not usable ("" when it is), and whether that is simply
// because the machine has no NVIDIA GPU or driver (auto then takes the CPU
// without a note).
struct CudaStatus {
  std::string why;
  bool no_gpu = false;
};

CudaStatus cuda_status() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    cudaGetLastError();
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);  // 0: no driver installed
    cudaRuntimeGetVersion(&runtime);
    if (status == cudaErrorInsufficientDriver && driver > 0)
      return {"the NVIDIA driver supports CUDA " + cuda_version(driver) + " but this gac's runtime is CUDA " +
                  cuda_version(runtime) + " (CUDA 13 needs driver 580 or newer): update the driver",
              false};
    if (status == cudaErrorInsufficientDriver || status == cudaErrorNoDevice || count == 0)
      return {std::string("no NVIDIA GPU or driver found (CUDA: ") +
                  (status != cudaSuccess ? cudaGetErrorString(status) : "0 devices") + ")",
              true};
    return {cudaGetErrorString(status), false};
  }
  status = cudaSetDevice(0);
  if (status == cudaSuccess) status = cudaFree(nullptr);  // creates the context: a broken driver shows here
  if (status != cudaSuccess) {
    cudaGetLastError();
    return {cudaGetErrorString(status), false};
  }
  // A card older than every architecture this build has code for.
  cudaFuncAttributes attr{};
  status = cudaFuncGetAttributes(&attr, dense_group_kernel);
  if (status != cudaSuccess) {
    cudaGetLastError();
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, 0);
    return {std::string(p.name) + " (compute capability " + std::to_string(p.major) + "." + std::to_string(p.minor) +
                "): " + cudaGetErrorString(status) + "; this gac has code for CUDA architectures " GAC_CUDA_ARCHS,
            false};
  }
  return {};
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::string* why_not, bool* no_gpu, const std::string& devices) {
  const DeviceBackendOptions options = options_from_environment();
  const CudaStatus status = cuda_status();
  if (no_gpu) *no_gpu = status.no_gpu;
  if (!status.why.empty()) {
    if (why_not) *why_not = status.why;
    return nullptr;
  }
  int count = 0;
  GAC_CUDA_CHECK(cudaGetDeviceCount(&count));
  const std::vector<int> list = parse_device_list(devices, count);
  if (list.size() == 1) return make_device_backend(std::make_unique<CudaDevice>(list[0]), options);
  // Each device is made, and driven from then on, by a host thread of its
  // own (host/backends/multi_backend.h): it stays current there.
  std::vector<BackendFactory> factories;
  for (int d : list)
    factories.push_back([d, options] { return make_device_backend(std::make_unique<CudaDevice>(d), options); });
  return make_multi_backend(std::move(factories));
}

std::unique_ptr<Device> make_cuda_device(std::string* why_not) {
  const CudaStatus status = cuda_status();
  if (!status.why.empty()) {
    if (why_not) *why_not = status.why;
    return nullptr;
  }
  return std::make_unique<CudaDevice>(0);
}

std::vector<float> cuda_generate_params(const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                        const std::vector<uint64_t>& draws) {
  CudaDevice device(0);
  return device_generate_params(device, prior, key, m, draws);
}

std::vector<float> cuda_trace_layers(const ModelSpec& m, const std::vector<float>& params, const std::vector<float>& X,
                                     int n) {
  CudaDevice device(0);
  return device_trace_layers(device, m, params, X, n);
}

std::vector<std::string> cuda_device_descriptions(std::string* why_none) {
  std::vector<std::string> out;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    cudaGetLastError();
    if (why_none) *why_none = cuda_status().why;
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
