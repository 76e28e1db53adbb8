// The CPU's ceilings: its FP32 FMA peak and OpenBLAS's SGEMM rate (loaded at
// run time; cuBLAS's is host/bench/cuda_sgemm.cu); and the draw roofline.
#include "host/bench/ceilings.h"
#include "host/util/parallel_for.h"

#include <dlfcn.h>

#include <algorithm>
#include <latch>
#include <thread>

#include "host/bench/fma_peak.h"

namespace gac {
namespace {

// OpenBLAS, loaded at run time (the bench alone needs it): cblas_sgemm and
// the two calls that set its threads and name its kernels.
struct OpenBlas {
  enum { kRowMajor = 101, kNoTrans = 111 };  // CBLAS_ORDER, CBLAS_TRANSPOSE
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
  Sgemm sgemm = nullptr;
  void (*set_num_threads)(int) = nullptr;
  char* (*get_corename)() = nullptr;
  std::string error;
};

const OpenBlas& openblas() {
  static const OpenBlas lib = [] {
    OpenBlas b;
    void* h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      b.error = std::string("OpenBLAS not found (") + dlerror() + "): install libopenblas0 for the CPU's SGEMM figure";
      return b;
    }
    b.sgemm = reinterpret_cast<OpenBlas::Sgemm>(dlsym(h, "cblas_sgemm"));
    b.set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(h, "openblas_set_num_threads"));
    b.get_corename = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_corename"));
    if (!b.sgemm || !b.set_num_threads || !b.get_corename) b.error = "libopenblas.so.0 lacks cblas_sgemm";
    return b;
  }();
  return lib;
}

// Seconds for `kernel` to run `iterations` on each of `threads` threads at once.
double time_fma_kernel(const FmaKernel& kernel, int threads, uint64_t iterations) {
  std::vector<float> results(threads);  // kept, so that no run is skipped
  std::latch ready(threads), start(1);
  std::vector<std::jthread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ready.count_down();
      start.wait();
      results[t] = kernel.run(iterations);
    });
  ready.wait();  // every thread started: time the work, not the thread creation
  const Clock::time_point t0 = Clock::now();
  start.count_down();
  pool.clear();  // joins
  return seconds_since(t0);
}

}  // namespace

CeilingSession cpu_fma_peak_session(int threads, double seconds) {
  const FmaKernel& kernel = widest_fma_kernel();
  const int used = threads > 0 ? threads : available_cpus();
  // Calls of ~20 ms: long next to starting the threads, short next to a
  // session, so that many calls give a best one. Sized on this thread alone,
  // by the fastest of three probes (another job may hold the core for one).
  constexpr double kCallSeconds = 0.02;
  auto probe = [&kernel](uint64_t iterations) {
    double fastest = INFINITY;
    for (int i = 0; i < 3; ++i) {
      const Clock::time_point t0 = Clock::now();
      kernel.run(iterations);
      fastest = std::min(fastest, seconds_since(t0));
    }
    return fastest;
  };
  uint64_t iterations = 1024;
  double t = probe(iterations);
  while (t < kCallSeconds / 4 && iterations < (uint64_t{1} << 40)) t = probe(iterations *= 4);
  iterations = std::max<uint64_t>(1, static_cast<uint64_t>(iterations * (kCallSeconds / std::max(t, 1e-9))));
  time_fma_kernel(kernel, used, iterations);  // warm-up: the clock may drop for wide vectors
  CeilingSession s;
  const double flops = used * kernel.flops(iterations);
  const Clock::time_point start = Clock::now();
  do {
    s.gflops.push_back(flops / time_fma_kernel(kernel, used, iterations) / 1e9);
  } while (seconds_since(start) < seconds);
  s.what = std::string("FP32 FMA peak: ") + kernel.name + ", " + std::to_string(kernel.chains) + " chains of " +
           std::to_string(kernel.vector_bits) + "-bit " + (kernel.vector_bits > 32 ? "FMAs" : "multiply-adds") +
           " per thread, " + std::to_string(used) + " threads";
  return s;
}

CeilingSession cpu_sgemm_session(int threads, double seconds) {
  CeilingSession s;
  const OpenBlas& blas = openblas();
  if (!blas.error.empty()) {
    s.why_not = blas.error;
    return s;
  }
  const int N = 2048;
  const int used = threads > 0 ? threads : available_cpus();
  blas.set_num_threads(used);
  // Non-trivial values: zeros or denormals could run at a different speed.
  std::vector<float> a(static_cast<size_t>(N) * N), b(a.size()), out(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i % 17) * 0.01f - 0.08f;
    b[i] = static_cast<float>(i % 13) * 0.01f - 0.06f;
  }
  auto gemm = [&] {
    blas.sgemm(OpenBlas::kRowMajor, OpenBlas::kNoTrans, OpenBlas::kNoTrans, N, N, N, 1.0f, a.data(), N, b.data(), N, 0.0f,
               out.data(), N);
  };
  gemm();  // warm-up: thread pool start, page faults
  const double flop = 2.0 * N * N * N;
  const Clock::time_point start = Clock::now();
  do {
    const Clock::time_point t0 = Clock::now();
    gemm();
    s.gflops.push_back(flop / seconds_since(t0) / 1e9);
  } while (seconds_since(start) < seconds);
  const std::string core = blas.get_corename();
  s.what = "OpenBLAS SGEMM " + std::to_string(N) + "^3 (" + core + " kernels), " + std::to_string(used) + " threads";
  // OpenBLAS picks its kernels from the CPU model when it loads; on a model
  // it does not know (0.3.21 on Sapphire/Emerald Rapids) it falls back to
  // SSE3 "Prescott" kernels at a fraction of the machine's rate. That can
  // only be changed before the library loads, so say how.
  const bool generic = core == "Prescott" || core == "Core2" || core == "Penryn" || core == "Dunnington" ||
                       core == "Nehalem" || core == "Atom" || core == "unknown";
  if (generic && (__builtin_cpu_supports("avx512f") || __builtin_cpu_supports("avx2")))
    s.warning = "OpenBLAS did not recognise this CPU and runs its generic " + core +
                " kernels, so this SGEMM figure is too low; rerun with OPENBLAS_CORETYPE=" +
                (__builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell") + " in the environment";
  return s;
}

double draw_roofline(const Measurement& m, const std::vector<Measurement>& results) {
  if (!m.early_reject || !std::isfinite(m.uniforms_per_s) || m.draws == 0) return NAN;
  const auto full = std::find_if(results.begin(), results.end(), [&](const Measurement& f) {
    return !f.early_reject && f.scenario == m.scenario && f.n == m.n && f.backend == m.backend;
  });
  if (full == results.end()) return NAN;
  const double generate_s = m.n_params / m.uniforms_per_s;
  const double forward_s = std::max(0.0, 1.0 / full->draws_per_s() - generate_s);
  const double examples_per_draw = static_cast<double>(m.examples) / m.draws;
  return 1.0 / (generate_s + examples_per_draw / m.n * forward_s);
}

}  // namespace gac
