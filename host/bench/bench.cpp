// `gac bench`: draws/s, example-evaluations/s and GFLOP/s of each backend on
// the standard scenarios, next to the machine's SGEMM rate (the ceiling) and
// the paper's PyTorch figures. Each scenario is built exactly as a run would
// build it (TOML config -> prepare_experiment -> stream_task), so the bench
// measures the code path `gac run` uses.
#include "gac/bench.h"
#include "host/report/format.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

#include "gac/backend.h"
#include "gac/config.h"
#include "gac/error.h"
#include "gac/npy.h"
#include "gac/run.h"

#if defined(GAC_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(GAC_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>
#endif

namespace gac {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The paper's batched PyTorch code on the 2-core reference machine with
// OpenBLAS (SPEC.md, "Performance"): the figures every ratio is taken to.
struct Reference {
  const char* scenario;
  int n;
  double draws_per_s;
};
constexpr Reference kPyTorchReference[] = {{"lenet-28", 16, 640.0}, {"kink-mlp", 16, 106000.0}};

std::optional<double> reference_for(const std::string& scenario, int n) {
  for (const Reference& r : kPyTorchReference)
    if (scenario == r.scenario && n == r.n) return r.draws_per_s;
  return std::nullopt;
}

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

struct Scenario {
  std::string name;
  std::string what;          // one line for the table's legend
  std::vector<int> ns;       // default training-set sizes
  uint64_t probe_batch;      // first batch of the sizing probe: small enough for the scalar CPU code
};

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> list = {
      {"kink-mlp", "kink data (2-D, 2 classes), MLP 2->10->2", {16}, 4096},
      {"lenet-28", "LeNet w0.5, 1x28x28, 2 classes (Fashion-MNIST 0/1, or synthetic)", {2, 16, 32}, 32},
      {"lenet-32", "LeNet w0.5, 3x32x32, 2 classes (synthetic images)", {16}, 32},
  };
  return list;
}

// "cpu:KERNEL" picks one CPU kernel (e.g. cpu:scalar, the reference loop), so
// that kernels can be compared in one run.
const char* kBackendHelp = "cpu, cuda, or cpu:KERNEL (cpu:scalar, cpu:avx2, cpu:avx512)";
bool valid_backend_name(const std::string& name) {
  return name == "cpu" || name == "cuda" || (name.rfind("cpu:", 0) == 0 && name.size() > 4);
}

struct NamedBackend {
  std::string label;  // as requested: cpu, cuda, cpu:scalar, ...
  std::unique_ptr<Backend> backend;
};

NamedBackend open_backend(const std::string& label, int threads) {
  if (label.rfind("cpu:", 0) == 0) return {label, make_cpu_backend(threads, label.substr(4))};
  return {label, make_backend(label, threads)};
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// A directory for synthetic data files, removed when the bench ends.
class TempDir {
 public:
  const fs::path& path() {
    if (path_.empty()) {
      path_ = fs::temp_directory_path() / ("gac-bench-" + std::to_string(getpid()));
      fs::create_directories(path_);
    }
    return path_;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }

 private:
  fs::path path_;
};

// Random images in [0,1) with alternating labels 0/1, as .npy files: stands
// in for a real image set where none is installed (speed does not depend on
// what the pixels are).
std::string write_synthetic_images(TempDir& tmp, const std::string& stem, int c, int h, int w) {
  const int n_train = 256, n_test = 16;
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::string toml;
  for (const auto& [split, count] : {std::pair{"train", n_train}, std::pair{"test", n_test}}) {
    std::vector<float> x(static_cast<size_t>(count) * c * h * w);
    std::vector<int32_t> y(count);
    for (float& v : x) v = pixel(rng);
    for (int i = 0; i < count; ++i) y[i] = i % 2;
    const fs::path xf = tmp.path() / (stem + "_" + split + "_x.npy"), yf = tmp.path() / (stem + "_" + split + "_y.npy");
    write_file_atomic(xf, npy_bytes_f32(x.data(), {count, c, h, w}));
    write_file_atomic(yf, npy_bytes_i32(y.data(), {count}));
    // TOML literal strings: the path is taken as is, with no escapes.
    toml += std::string(split) + "_x = '" + xf.string() + "'\n" + split + "_y = '" + yf.string() + "'\n";
  }
  return "kind = \"npy\"\nstandardize = true\n" + toml;
}

bool have_fashion_mnist() {
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    if (!fs::exists(fs::path(kFashionDir) / f) && !fs::exists(fs::path(kFashionDir) / (std::string(f) + ".gz")))
      return false;
  return true;
}

// The scenario's config, as a user would write it. `data_name` says which data it uses.
RunConfig scenario_config(const Scenario& s, const std::vector<int>& ns, TempDir& tmp, std::string& data_name) {
  std::string data, model;
  if (s.name == "kink-mlp") {
    data = "kind = \"kink\"\nmargin = 0.25\ntest_size = 16\n";
    model = "arch = \"mlp\"\nhidden = 10\nlayers = 1\n";
    data_name = "kink";
  } else if (s.name == "lenet-28") {
    if (have_fashion_mnist()) {
      data = std::string("kind = \"idx\"\npath = '") + kFashionDir + "'\nclasses = [0, 1]\n";
      data_name = "fashion-mnist 0/1";
    } else {
      data = write_synthetic_images(tmp, "lenet28", 1, 28, 28);
      data_name = "synthetic 1x28x28";
    }
    model = "arch = \"lenet\"\nwidth = 0.5\n";
  } else {
    data = write_synthetic_images(tmp, "lenet32", 3, 32, 32);
    data_name = "synthetic 3x32x32";
    model = "arch = \"lenet\"\nwidth = 0.5\n";
  }
  std::string n_list;
  for (int n : ns) n_list += (n_list.empty() ? "" : ", ") + std::to_string(n);
  const std::string text = "[data]\n" + data + "\n[model]\n" + model +
                           "\n[prior]\nkind = \"uniform\"\nradius = 1.0\n"
                           "\n[run]\nseed = 0\nn = [" + n_list + "]\nloss = \"normalized\"\n";
  return parse_config(text, "bench:" + s.name, {});
}

// Resident set in MiB from /proc/self/status (`key` is VmRSS or VmHWM); NaN if unreadable.
double proc_status_mib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;  // kB
  return NAN;
}

// Resets the kernel's resident high-water mark (VmHWM), so that it then
// measures one measurement alone rather than the data loading before it.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Process-wide peak RSS since start (getrusage; Linux reports KiB).
double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

struct Measurement {
  std::string scenario, data, backend, backend_description;
  int n = 0;
  bool early_reject = true;
  int n_params = 0;
  double flops_per_example = 0;
  uint64_t batch = 0, calls = 0, draws = 0, examples = 0, hits = 0;
  double seconds = 0;
  double window_rss_mib = NAN;  // peak RSS during this measurement (VmHWM after a reset)
  double peak_rss_mib = 0;      // process peak so far (getrusage ru_maxrss, data loading included)
  double draws_per_s() const { return draws / seconds; }
  double examples_per_s() const { return examples / seconds; }
  double gflops() const { return examples * flops_per_example / seconds / 1e9; }
};

// Times backend.evaluate on consecutive draw ranges for `seconds`. The batch
// is sized first (so one call takes about `call_s`), then one warm-up call
// at that size, then the timed calls.
Measurement measure(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch,
                    double& process_peak_mib) {
  constexpr uint64_t kMaxBatch = uint64_t{1} << 28;
  const double call_s = std::clamp(seconds / 8, 0.02, 0.25);
  backend.begin_stream(task);
  std::vector<Hit> hits;
  uint64_t next = 0;  // draws are never repeated: each call takes fresh indices
  auto timed_call = [&](uint64_t batch, EvalCounts* counts) {
    hits.clear();
    const Clock::time_point t0 = Clock::now();
    const EvalCounts c = backend.evaluate(next, batch, hits);
    const double t = seconds_since(t0);
    next += batch;
    if (counts) *counts = c;
    return t;
  };

  // Sizing: grow the batch until a call takes a measurable time, then scale it to call_s.
  uint64_t batch = std::max<uint64_t>(1, probe_batch);
  double t = timed_call(batch, nullptr);
  while (t < call_s / 4 && batch < kMaxBatch) {
    const double grow = t > 0 ? std::clamp(call_s / t, 2.0, 16.0) : 16.0;
    batch = std::min<uint64_t>(kMaxBatch, static_cast<uint64_t>(batch * grow));
    t = timed_call(batch, nullptr);
  }
  batch = std::clamp<uint64_t>(static_cast<uint64_t>(batch * (call_s / std::max(t, 1e-9))), 1, kMaxBatch);
  if (batch > 64) batch = batch / 64 * 64;  // whole SIMD blocks: no partly filled vector per call
  timed_call(batch, nullptr);  // warm-up at the final size (a GPU backend may grow its buffers here)

  Measurement m;
  m.batch = batch;
  // Resetting the high-water mark also resets what getrusage reports, so the
  // process's peak so far is kept here.
  process_peak_mib = std::max(process_peak_mib, peak_rss_mib());
  const bool window = reset_peak_rss();
  const Clock::time_point start = Clock::now();
  do {
    EvalCounts c;
    timed_call(batch, &c);
    m.calls += 1;
    m.draws += c.draws;
    m.examples += c.examples;
    m.hits += hits.size();
  } while (seconds_since(start) < seconds);
  m.seconds = seconds_since(start);
  m.window_rss_mib = window ? proc_status_mib("VmHWM") : proc_status_mib("VmRSS");
  process_peak_mib = std::max(process_peak_mib, peak_rss_mib());
  m.peak_rss_mib = process_peak_mib;
  return m;
}

// The rate a dense SGEMM reaches on the same hardware: what a well-tuned
// kernel can get out of it, so the fraction of it says how much is left.
struct Ceiling {
  bool available = false;
  double gflops = 0;    // the fastest call's rate
  std::string what;     // e.g. "OpenBLAS SGEMM 2048^3 (SkylakeX kernels), 2 threads"
  std::string why_not;  // when unavailable
  std::string warning;  // when the figure is known to understate the hardware
  double fp32_peak_gflops = 0;  // GPU only: theoretical FP32 FMA rate (0: unknown)
};

Ceiling cpu_sgemm_ceiling(int threads, double seconds) {
  Ceiling c;
#if defined(GAC_HAVE_OPENBLAS)
  const int N = 2048;
  const int used = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(used);
  // Non-trivial values: zeros or denormals could run at a different speed.
  std::vector<float> a(static_cast<size_t>(N) * N), b(a.size()), out(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i % 17) * 0.01f - 0.08f;
    b[i] = static_cast<float>(i % 13) * 0.01f - 0.06f;
  }
  auto gemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a.data(), N, b.data(), N, 0.0f, out.data(), N);
  };
  gemm();  // warm-up: thread pool start, page faults
  // The fastest call is the ceiling: on a shared machine the mean would
  // count other jobs' interference as the hardware's limit.
  const double flop = 2.0 * N * N * N;
  const Clock::time_point start = Clock::now();
  do {
    const Clock::time_point t0 = Clock::now();
    gemm();
    c.gflops = std::max(c.gflops, flop / seconds_since(t0) / 1e9);
  } while (seconds_since(start) < seconds);
  c.available = true;
  const std::string core = openblas_get_corename();
  c.what = "OpenBLAS SGEMM " + std::to_string(N) + "^3 (" + core + " kernels), " + std::to_string(used) + " threads";
  // OpenBLAS picks its kernels from the CPU model when it loads; on a model
  // it does not know (0.3.21 on Sapphire/Emerald Rapids) it falls back to
  // SSE3 "Prescott" kernels at a fraction of the machine's rate. That can
  // only be changed before the library loads, so say how.
  const bool generic = core == "Prescott" || core == "Core2" || core == "Penryn" || core == "Dunnington" ||
                       core == "Nehalem" || core == "Atom" || core == "unknown";
  if (generic && (__builtin_cpu_supports("avx512f") || __builtin_cpu_supports("avx2")))
    c.warning = "OpenBLAS did not recognise this CPU and runs its generic " + core +
                " kernels, so this ceiling is too low; rerun with OPENBLAS_CORETYPE=" +
                (__builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell") + " in the environment";
#else
  (void)threads;
  (void)seconds;
  c.why_not = "this gac was built without OpenBLAS (install libopenblas-dev and rebuild)";
#endif
  return c;
}

#if defined(GAC_HAVE_CUDA)
// FP32 lanes per SM by compute capability (the CUDA programming guide's
// throughput table); 0 when not known.
int fp32_lanes_per_sm(int major, int minor) {
  if (major == 7 || (major == 8 && minor == 0)) return 64;
  if (major >= 8) return 128;
  return 0;
}

Ceiling cuda_sgemm_ceiling(double seconds) {
  Ceiling c;
  const int N = 8192;
  float* buf = nullptr;
  cublasHandle_t handle = nullptr;
  curandGenerator_t gen = nullptr;
  auto release = [&] {
    if (gen) curandDestroyGenerator(gen);
    if (handle) cublasDestroy(handle);
    if (buf) cudaFree(buf);
  };
  auto fail = [&](const std::string& why) {
    release();
    c.why_not = why;
    return c;
  };
  int dev = 0, sms = 0, clock_khz = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return fail("no CUDA device");
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
    return fail("cudaDeviceGetAttribute failed");
  c.fp32_peak_gflops = 2.0 * sms * fp32_lanes_per_sm(major, minor) * clock_khz * 1e3 / 1e9;

  const size_t elems = static_cast<size_t>(N) * N;
  if (cudaMalloc(&buf, 3 * elems * sizeof(float)) != cudaSuccess) return fail("cudaMalloc failed");
  float *a = buf, *b = buf + elems, *out = buf + 2 * elems;
  // Random operands: an all-zero matrix draws less power and can clock higher.
  if (curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_DEFAULT) != CURAND_STATUS_SUCCESS ||
      curandGenerateUniform(gen, buf, 2 * elems) != CURAND_STATUS_SUCCESS)
    return fail("cuRAND failed");
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return fail("cublasCreate failed");
  // Default math: true FP32, no TF32 tensor cores (the backend computes in FP32).
  if (cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) return fail("cublasSetMathMode failed");
  const float one = 1.0f, zero = 0.0f;
  auto gemm = [&] { return cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, N, N, N, &one, a, N, b, N, &zero, out, N); };
  if (gemm() != CUBLAS_STATUS_SUCCESS || cudaDeviceSynchronize() != cudaSuccess) return fail("cublasSgemm failed");
  const double flop = 2.0 * N * N * N;
  const Clock::time_point start = Clock::now();
  do {  // best of groups of 5 calls, as on the CPU
    const Clock::time_point t0 = Clock::now();
    for (int i = 0; i < 5; ++i)
      if (gemm() != CUBLAS_STATUS_SUCCESS) return fail("cublasSgemm failed");
    if (cudaDeviceSynchronize() != cudaSuccess) return fail("cublasSgemm failed");
    c.gflops = std::max(c.gflops, 5 * flop / seconds_since(t0) / 1e9);
  } while (seconds_since(start) < seconds);
  c.available = true;
  c.what = "cuBLAS SGEMM " + std::to_string(N) + "^3";
  release();
  return c;
}
#endif

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

json nullable(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

std::vector<std::string> bench_scenario_names() {
  std::vector<std::string> names;
  for (const Scenario& s : scenarios()) names.push_back(s.name);
  return names;
}

int run_bench(const BenchOptions& opts, std::ostream& out, std::ostream& log) {
  // Every name is checked before any work, so a typo fails at once.
  std::vector<const Scenario*> chosen;
  for (const std::string& name : opts.scenarios) {
    const auto it = std::find_if(scenarios().begin(), scenarios().end(), [&](const Scenario& s) { return s.name == name; });
    if (it == scenarios().end())
      throw Error("bench: unknown scenario '" + name + "' (valid: " + join(bench_scenario_names()) + ")");
    if (std::find(chosen.begin(), chosen.end(), &*it) == chosen.end()) chosen.push_back(&*it);
  }
  if (opts.scenarios.empty())
    for (const Scenario& s : scenarios()) chosen.push_back(&s);
  for (const std::string& name : opts.backends)
    if (!valid_backend_name(name)) throw Error("bench: unknown backend '" + name + "' (valid: " + kBackendHelp + ")");
  if (!(opts.seconds > 0) || !std::isfinite(opts.seconds))
    throw Error("bench: --seconds must be positive, got " + std::to_string(opts.seconds));
  if (opts.threads < 0) throw Error("bench: --threads must be >= 0 (0 = all cores)");
  for (int n : opts.ns)
    if (n < 1) throw Error("bench: --n must be positive, got " + std::to_string(n));

  // Backends: the requested ones must work; by default CUDA joins when usable.
  std::vector<NamedBackend> backends;
  if (opts.backends.empty()) {
    backends.push_back(open_backend("cpu", opts.threads));
    try {
      backends.push_back(open_backend("cuda", opts.threads));
    } catch (const Error& e) {
      log << "bench: cuda not measured: " << e.what() << "\n";
    }
  } else {
    for (const std::string& name : opts.backends) {
      const bool dup = std::any_of(backends.begin(), backends.end(), [&](const auto& b) { return b.label == name; });
      if (!dup) backends.push_back(open_backend(name, opts.threads));
    }
  }

  TempDir tmp;
  double process_peak_mib = 0;
  std::vector<Measurement> results;
  std::vector<std::pair<std::string, std::string>> legend;  // scenario -> description
  for (const Scenario* s : chosen) {
    const std::vector<int>& ns = opts.ns.empty() ? s->ns : opts.ns;
    std::string data_name;
    const Experiment ex = prepare_experiment(scenario_config(*s, ns, tmp, data_name));
    legend.emplace_back(s->name, s->what + ": " + std::to_string(ex.model.spec.n_params) + " parameters, " +
                                     fixed(ex.model.flops_per_example / 1e3, 2) + " kFLOP/example, data " + data_name);
    for (int n : ns) {
      StreamTask task = stream_task(ex, n, 0);
      for (auto& [label, backend] : backends)
        for (bool early : {true, false}) {
          if (!early && !opts.early_both) continue;
          task.early_reject = early;
          log << "bench: " << s->name << " n=" << n << " " << label << " early rejection "
              << (early ? "on" : "off") << " ..." << std::flush;
          Measurement m = measure(*backend, task, opts.seconds, s->probe_batch, process_peak_mib);
          m.scenario = s->name;
          m.data = data_name;
          m.backend = label;
          m.backend_description = backend->description();
          m.n = n;
          m.early_reject = early;
          m.n_params = ex.model.spec.n_params;
          m.flops_per_example = ex.model.flops_per_example;
          log << " " << human_count(m.draws_per_s()) << " draws/s\n";
          results.push_back(m);
        }
    }
  }

  // Ceilings last: OpenBLAS leaves its own threads behind, which must not
  // compete with the measurements above.
  auto has = [&](const std::string& name) {
    return std::any_of(results.begin(), results.end(), [&](const Measurement& m) { return m.backend == name; });
  };
  const double ceiling_s = std::min(1.0, opts.seconds);
  log << "bench: measuring the SGEMM ceiling ...\n";
  const Ceiling cpu_ceiling = cpu_sgemm_ceiling(opts.threads, ceiling_s);
  if (!cpu_ceiling.warning.empty()) log << "bench: warning: " << cpu_ceiling.warning << "\n";
  Ceiling cuda_ceiling;
  cuda_ceiling.why_not = "this gac was built without CUDA";
#if defined(GAC_HAVE_CUDA)
  if (has("cuda")) cuda_ceiling = cuda_sgemm_ceiling(ceiling_s);
  else cuda_ceiling.why_not = "cuda not measured";
#endif
  auto ceiling_of = [&](const Measurement& m) -> const Ceiling& { return m.backend == "cuda" ? cuda_ceiling : cpu_ceiling; };
  auto fraction = [&](const Measurement& m) {
    const Ceiling& c = ceiling_of(m);
    return c.available ? m.gflops() / c.gflops : NAN;
  };
  auto ratio = [&](const Measurement& m) {
    const auto ref = reference_for(m.scenario, m.n);
    return ref ? m.draws_per_s() / *ref : NAN;
  };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  if (opts.json) {
    auto ceiling_json = [](const Ceiling& c) {
      json j = {{"available", c.available}, {"gflops", c.available ? json(c.gflops) : json(nullptr)}, {"what", c.what}};
      if (!c.available) j["why_not"] = c.why_not;
      if (!c.warning.empty()) j["warning"] = c.warning;
      if (c.fp32_peak_gflops > 0) j["fp32_peak_gflops"] = c.fp32_peak_gflops;
      return j;
    };
    json doc;
    doc["gac_version"] = GAC_VERSION;
    doc["date"] = utc_now();
    doc["machine"] = {{"cpu_model", cpu_model()}, {"cores", cores}, {"threads", opts.threads > 0 ? opts.threads : static_cast<int>(cores)}};
    doc["ceiling"] = {{"cpu", ceiling_json(cpu_ceiling)}};
    if (has("cuda")) doc["ceiling"]["cuda"] = ceiling_json(cuda_ceiling);
    doc["seconds_per_measurement"] = opts.seconds;
    json refs = json::array();
    for (const Reference& r : kPyTorchReference)
      refs.push_back({{"scenario", r.scenario}, {"n", r.n}, {"draws_per_s", r.draws_per_s},
                      {"source", "the paper's batched PyTorch code on a 2-core machine with OpenBLAS (SPEC.md)"}});
    doc["pytorch_reference"] = refs;
    json rows = json::array();
    for (const Measurement& m : results) {
      json row = {{"scenario", m.scenario},
                  {"data", m.data},
                  {"n", m.n},
                  {"backend", m.backend},
                  {"backend_description", m.backend_description},
                  {"early_reject", m.early_reject},
                  {"params", m.n_params},
                  {"flops_per_example", m.flops_per_example},
                  {"batch", m.batch},
                  {"calls", m.calls},
                  {"seconds", m.seconds},
                  {"draws", m.draws},
                  {"examples", m.examples},
                  {"perfect_draws", m.hits},
                  {"draws_per_s", m.draws_per_s()},
                  {"examples_per_s", m.examples_per_s()},
                  {"gflops", m.gflops()},
                  {"ceiling_gflops", ceiling_of(m).available ? json(ceiling_of(m).gflops) : json(nullptr)},
                  {"fraction_of_ceiling", nullable(fraction(m))},
                  {"pytorch_reference_draws_per_s", nullable(reference_for(m.scenario, m.n).value_or(NAN))},
                  {"ratio_to_pytorch_reference", nullable(ratio(m))},
                  {"rss_mib", nullable(m.window_rss_mib)},
                  {"peak_rss_mib", m.peak_rss_mib}};
      if (ceiling_of(m).fp32_peak_gflops > 0) row["fraction_of_fp32_peak"] = m.gflops() / ceiling_of(m).fp32_peak_gflops;
      rows.push_back(row);
    }
    doc["measurements"] = rows;
    out << doc.dump(2) << "\n";
    return 0;
  }

  out << "gac bench: " << cpu_model() << ", " << cores << " cores; " << opts.seconds << " s per measurement\n";
  auto ceiling_line = [&](const char* name, const Ceiling& c) {
    out << "ceiling (" << name << "): "
        << (c.available ? c.what + ": " + fixed(c.gflops, 1) + " GFLOP/s" : "unavailable: " + c.why_not);
    if (c.fp32_peak_gflops > 0) out << " (FP32 peak " << fixed(c.fp32_peak_gflops, 0) << " GFLOP/s)";
    out << "\n";
    if (!c.warning.empty()) out << "  warning: " << c.warning << "\n";
  };
  ceiling_line("cpu", cpu_ceiling);
  if (has("cuda")) ceiling_line("cuda", cuda_ceiling);
  out << "PyTorch reference (the paper's batched code, 2-core machine): ";
  for (size_t i = 0; i < std::size(kPyTorchReference); ++i)
    out << (i ? ", " : "") << human_count(kPyTorchReference[i].draws_per_s) << " draws/s " << kPyTorchReference[i].scenario
        << " n=" << kPyTorchReference[i].n;
  out << "\n\n";

  char line[256];
  std::snprintf(line, sizeof line, "%-9s %3s %-10s %-5s %9s %11s %9s %7s %9s %8s %8s\n", "scenario", "n", "backend", "early",
                "draws/s", "ex-evals/s", "GFLOP/s", "%ceil", "xPyTorch", "RSS MiB", "peak MiB");
  out << line;
  for (const Measurement& m : results) {
    const double r = ratio(m);
    std::snprintf(line, sizeof line, "%-9s %3d %-10s %-5s %9s %11s %9s %7s %9s %8s %8s\n", m.scenario.c_str(), m.n,
                  m.backend.c_str(), m.early_reject ? "on" : "off", human_count(m.draws_per_s()).c_str(),
                  human_count(m.examples_per_s()).c_str(), fixed(m.gflops(), 2).c_str(),
                  std::isfinite(fraction(m)) ? (fixed(100 * fraction(m), 1) + "%").c_str() : "-",
                  std::isfinite(r) ? (fixed(r, r >= 10 ? 0 : 2) + "x").c_str() : "-", fixed(m.window_rss_mib, 1).c_str(),
                  fixed(m.peak_rss_mib, 1).c_str());
    out << line;
  }
  out << "\n";
  for (const auto& [name, what] : legend) out << name << ": " << what << "\n";
  for (auto& [label, backend] : backends) out << label << ": " << backend->description() << "\n";
  out << "early on: stop at a draw's first misclassified example; off: every example of every draw (full evaluation).\n"
         "GFLOP/s counts the example evaluations done; %ceil is that over the SGEMM rate; xPyTorch is draws/s over the\n"
         "reference figure; RSS is the peak during the measurement, peak MiB the process's (data loading included).\n";
  return 0;
}

}  // namespace gac
