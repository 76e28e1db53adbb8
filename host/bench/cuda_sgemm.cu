// `gac bench`'s ceiling on a GPU: the rate of cuBLAS's FP32 SGEMM on the
// same device. cuBLAS is loaded at run time (dlopen), never linked: the
// product path needs no cuBLAS, and a machine without it (or a GPU bundle
// that does not carry its ~500 MB) only loses this one figure, with a note.
#include <cublas_v2.h>  // types only: every function comes through dlsym
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gac/bench.h"
#include "gac/philox.h"
#include "kernels/cuda_check.h"

namespace gac {
namespace {

// Random operands in [-1, 1): an all-zero matrix draws less power and can
// clock higher than real data.
__global__ void fill_uniform_kernel(float* p, size_t n) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
    p[i] = static_cast<float>(static_cast<int32_t>(philox_block(StreamKey{1, 2}, i, 0).v[0])) * 0x1.0p-31f;
}

// The cuBLAS functions the ceiling calls.
struct Cublas {
  void* library = nullptr;
  std::string path;
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
};

// cuBLAS of this build's CUDA major version: GAC_CUBLAS (a path) if set,
// else the loader's search (LD_LIBRARY_PATH, ldconfig), else the toolkit's
// usual places. Returns "" or why it is unavailable.
std::string load_cublas(Cublas& c) {
  const std::string soname = "libcublas.so." + std::to_string(CUDART_VERSION / 1000);
  std::vector<std::string> tries;
  if (const char* env = std::getenv("GAC_CUBLAS"); env && *env) tries.push_back(env);
  tries.push_back(soname);
  if (const char* home = std::getenv("CUDA_HOME"); home && *home) tries.push_back(std::string(home) + "/lib64/" + soname);
  tries.push_back("/usr/local/cuda/lib64/" + soname);
  tries.push_back("/usr/local/cuda/targets/x86_64-linux/lib/" + soname);
  std::string errors;
  for (const std::string& path : tries) {
    c.library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (c.library) {
      c.path = path;
      break;
    }
    errors += (errors.empty() ? "" : "; ") + std::string(dlerror());
  }
  if (!c.library)
    return "cuBLAS not found (" + errors + "); set GAC_CUBLAS=/path/to/" + soname + " or LD_LIBRARY_PATH";
  c.create = reinterpret_cast<decltype(c.create)>(dlsym(c.library, "cublasCreate_v2"));
  c.destroy = reinterpret_cast<decltype(c.destroy)>(dlsym(c.library, "cublasDestroy_v2"));
  c.set_math_mode = reinterpret_cast<decltype(c.set_math_mode)>(dlsym(c.library, "cublasSetMathMode"));
  c.sgemm = reinterpret_cast<decltype(c.sgemm)>(dlsym(c.library, "cublasSgemm_v2"));
  if (!c.create || !c.destroy || !c.set_math_mode || !c.sgemm) return c.path + " lacks the cuBLAS functions the bench calls";
  return "";
}

// FP32 lanes per SM by compute capability (the CUDA programming guide's
// throughput table); 0 when not known.
int fp32_lanes_per_sm(int major, int minor) {
  if (major == 7 || (major == 8 && minor == 0)) return 64;
  if (major >= 8) return 128;
  return 0;
}

}  // namespace

CeilingSession cuda_sgemm_session(double seconds) {
  CeilingSession s;
  const int N = 8192;
  int dev = 0, sms = 0, clock_khz = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    s.why_not = "no CUDA device";
    return s;
  }
  s.fp32_peak_gflops = 2.0 * sms * fp32_lanes_per_sm(major, minor) * clock_khz * 1e3 / 1e9;
  static Cublas cublas;  // loaded once per process, never unloaded
  static const std::string load_error = load_cublas(cublas);
  if (!load_error.empty()) {
    s.why_not = load_error;
    return s;
  }
  float* buf = nullptr;
  cublasHandle_t handle = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  try {
    const size_t elems = static_cast<size_t>(N) * N;
    GAC_CUDA_CHECK(cudaMalloc(&buf, 3 * elems * sizeof(float)));
    float *a = buf, *b = buf + elems, *out = buf + 2 * elems;
    fill_uniform_kernel<<<1024, 256>>>(buf, 2 * elems);
    GAC_CUDA_CHECK_LAUNCH();
    GAC_CUDA_CHECK(cudaEventCreate(&start));
    GAC_CUDA_CHECK(cudaEventCreate(&stop));
    if (cublas.create(&handle) != CUBLAS_STATUS_SUCCESS) throw Error("cublasCreate failed");
    // Default math: true FP32, no TF32 tensor cores (the backend computes in FP32).
    if (cublas.set_math_mode(handle, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) throw Error("cublasSetMathMode failed");
    const float one = 1.0f, zero = 0.0f;
    auto gemm = [&] {
      if (cublas.sgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &one, a, N, b, N, &zero, out, N) != CUBLAS_STATUS_SUCCESS)
        throw Error("cublasSgemm failed");
    };
    gemm();  // warm-up: kernel selection, clocks
    GAC_CUDA_CHECK(cudaDeviceSynchronize());
    const double flop = 2.0 * N * N * N;
    double elapsed = 0;
    do {  // every call timed on its own with events
      GAC_CUDA_CHECK(cudaEventRecord(start));
      gemm();
      GAC_CUDA_CHECK(cudaEventRecord(stop));
      GAC_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      GAC_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      s.gflops.push_back(flop / (ms * 1e-3) / 1e9);
      elapsed += ms * 1e-3;
    } while (elapsed < seconds);
    s.what = "cuBLAS SGEMM " + std::to_string(N) + "^3 (" + cublas.path + ")";
  } catch (const Error& e) {
    s.why_not = e.what();
    s.gflops.clear();
  }
  if (handle) cublas.destroy(handle);
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (buf) cudaFree(buf);
  return s;
}

}  // namespace gac
