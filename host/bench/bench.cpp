// `gac bench`: draws/s, example-evaluations/s and GFLOP/s of each backend on
// the standard scenarios, next to the machine's SGEMM rate (the ceiling) and
// each scenario's draw roofline. Each scenario is built exactly as a run
// would build it (TOML config -> prepare_experiment -> stream_task), so the
// bench measures the code path `gac run` uses. Ratios to PyTorch are not
// printed here: they mean something only when PyTorch is measured beside gac
// on the same machine at the same time, which bench/compare does.
#include "gac/bench.h"
#include "host/report/format.h"
#include "host/util/parallel_for.h"

#include <dlfcn.h>
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
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

#include "gac/backend.h"
#include "gac/config.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/npy.h"


namespace gac {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Fashion-MNIST's IDX files: Debian's dataset-fashion-mnist, or the
// directory GAC_FASHION_MNIST names (a GPU bundle carries a slice).
std::string fashion_dir() {
  const char* dir = std::getenv("GAC_FASHION_MNIST");
  return dir && *dir ? dir : "/usr/share/datasets/fashion-mnist";
}

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
    if (!fs::exists(fs::path(fashion_dir()) / f) && !fs::exists(fs::path(fashion_dir()) / (std::string(f) + ".gz")))
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
      data = "kind = \"idx\"\npath = '" + fashion_dir() + "'\nclasses = [0, 1]\n";
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

struct Measurement {
  std::string scenario, data, backend, backend_description;
  int n = 0;
  bool early_reject = true;
  int n_params = 0;
  double flops_per_example = 0;
  uint64_t batch = 0, calls = 0, draws = 0, examples = 0, hits = 0;
  double seconds = 0;
  double rss_mib = NAN;  // the process's peak resident set during this measurement (NaN: not measurable here)
  double uniforms_per_s = NAN;  // the backend's generation rate on this scenario (Philox and prior)
  double draws_per_s() const { return draws / seconds; }
  double examples_per_s() const { return examples / seconds; }
  double gflops() const { return examples * flops_per_example / seconds / 1e9; }
};

// Times call(first, count) on consecutive draw ranges for `seconds`. The
// batch is sized first (so one call takes about `call_s`), then one warm-up
// call at that size, then the timed calls.
template <class Call>
Measurement measure(Call call, double seconds, uint64_t probe_batch) {
  constexpr uint64_t kMaxBatch = uint64_t{1} << 28;
  const double call_s = std::clamp(seconds / 8, 0.02, 0.25);
  uint64_t next = 0;  // draws are never repeated: each call takes fresh indices
  uint64_t hits = 0;
  auto timed_call = [&](uint64_t batch, EvalCounts* counts) {
    const Clock::time_point t0 = Clock::now();
    const EvalCounts c = call(next, batch, hits);
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
  const bool window = reset_peak_rss();
  hits = 0;
  const Clock::time_point start = Clock::now();
  do {
    EvalCounts c;
    timed_call(batch, &c);
    m.calls += 1;
    m.draws += c.draws;
    m.examples += c.examples;
  } while (seconds_since(start) < seconds);
  m.seconds = seconds_since(start);
  m.hits = hits;
  if (window) m.rss_mib = proc_status_mib("VmHWM");
  return m;
}

// backend.evaluate on `task`: draws/s, examples, perfect draws.
Measurement measure_evaluation(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch) {
  backend.begin_stream(task);
  std::vector<Hit> hits;
  return measure(
      [&](uint64_t first, uint64_t count, uint64_t& n_hits) {
        hits.clear();
        const EvalCounts c = backend.evaluate(first, count, hits);
        n_hits += hits.size();
        return c;
      },
      seconds, probe_batch);
}

// The backend's generation alone (Backend::generate_only) on `task`, in
// uniforms per second; NaN when the backend cannot generate alone.
double measure_generation(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch) {
  backend.begin_stream(task);
  if (!backend.generate_only(0, 1)) return NAN;
  const Measurement m = measure(
      [&](uint64_t first, uint64_t count, uint64_t&) {
        backend.generate_only(first, count);
        return EvalCounts{count, 0};
      },
      seconds, probe_batch);
  return m.draws_per_s() * task.model.n_params;
}

// The rate a dense SGEMM reaches on the same hardware: what a well-tuned
// kernel can get out of it, so the fraction of it says how much is left.
// Measured in two sessions, before and after the throughput measurements;
// the best call of both is the ceiling (on a shared machine the mean would
// count other jobs' interference as the hardware's limit), and the slowest
// call shows how much the machine's speed moved meanwhile.
struct Ceiling {
  SgemmSession before, after;
  std::vector<double> calls() const {
    std::vector<double> all = before.gflops;
    all.insert(all.end(), after.gflops.begin(), after.gflops.end());
    return all;
  }
  bool available() const { return !calls().empty(); }
  double best() const {
    const auto all = calls();
    return all.empty() ? NAN : *std::max_element(all.begin(), all.end());
  }
  double slowest() const {
    const auto all = calls();
    return all.empty() ? NAN : *std::min_element(all.begin(), all.end());
  }
  const SgemmSession& any() const { return before.gflops.empty() ? after : before; }
  std::string why_not() const { return before.why_not.empty() ? after.why_not : before.why_not; }
};

double best_of(const SgemmSession& s) {
  return s.gflops.empty() ? NAN : *std::max_element(s.gflops.begin(), s.gflops.end());
}

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
      b.error = std::string("OpenBLAS not found (") + dlerror() + "): install libopenblas0 for the CPU ceiling";
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

SgemmSession cpu_sgemm_session(int threads, double seconds) {
  SgemmSession s;
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
                " kernels, so this ceiling is too low; rerun with OPENBLAS_CORETYPE=" +
                (__builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell") + " in the environment";
  return s;
}

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

  // Ceilings first and last: OpenBLAS's threads keep spinning for a moment
  // after their last call, so the CPU measurements start after a pause.
  const bool want_cuda = std::any_of(backends.begin(), backends.end(), [](const auto& b) { return b.label == "cuda"; });
  const bool want_cpu = std::any_of(backends.begin(), backends.end(), [](const auto& b) { return b.label != "cuda"; });
  const double ceiling_s = std::min(0.5, opts.seconds / 2);
  Ceiling cpu_ceiling, cuda_ceiling;
  cpu_ceiling.before.why_not = "no cpu backend measured";
  auto measure_ceilings = [&](bool before) {
    log << "bench: measuring the SGEMM ceiling (" << (before ? "before" : "after") << ") ...\n";
    if (want_cpu) (before ? cpu_ceiling.before : cpu_ceiling.after) = cpu_sgemm_session(opts.threads, ceiling_s);
#if defined(GAC_HAVE_CUDA)
    if (want_cuda) (before ? cuda_ceiling.before : cuda_ceiling.after) = cuda_sgemm_session(ceiling_s);
#endif
  };
  measure_ceilings(true);
  if (cpu_ceiling.available()) std::this_thread::sleep_for(std::chrono::duration<double>(ceiling_s));

  TempDir tmp;
  std::vector<Measurement> results;
  std::vector<std::pair<std::string, std::string>> legend;  // scenario -> description
  for (const Scenario* s : chosen) {
    const std::vector<int>& ns = opts.ns.empty() ? s->ns : opts.ns;
    std::string data_name;
    const Experiment ex = prepare_experiment(scenario_config(*s, ns, tmp, data_name));
    legend.emplace_back(s->name, s->what + ": " + std::to_string(ex.model.spec.n_params) + " parameters, " +
                                     fixed(ex.model.flops_per_example / 1e3, 2) + " kFLOP/example, data " + data_name);
    for (auto& [label, backend] : backends) {
      log << "bench: " << s->name << " " << label << " generation alone ..." << std::flush;
      const double uniforms = measure_generation(*backend, stream_task(ex, ns[0], 0), opts.seconds, s->probe_batch);
      log << " " << (std::isfinite(uniforms) ? human_count(uniforms) + " uniforms/s" : "not measurable") << "\n";
      for (int n : ns) {
        StreamTask task = stream_task(ex, n, 0);
        for (bool early : {true, false}) {
          if (!early && !opts.early_both) continue;
          task.early_reject = early;
          log << "bench: " << s->name << " n=" << n << " " << label << " early rejection " << (early ? "on" : "off")
              << " ..." << std::flush;
          Measurement m = measure_evaluation(*backend, task, opts.seconds, s->probe_batch);
          m.scenario = s->name;
          m.data = data_name;
          m.backend = label;
          m.backend_description = backend->description();
          m.n = n;
          m.early_reject = early;
          m.n_params = ex.model.spec.n_params;
          m.flops_per_example = ex.model.flops_per_example;
          m.uniforms_per_s = uniforms;
          log << " " << human_count(m.draws_per_s()) << " draws/s\n";
          results.push_back(m);
        }
      }
    }
  }
  measure_ceilings(false);
  if (!cpu_ceiling.any().warning.empty()) log << "bench: warning: " << cpu_ceiling.any().warning << "\n";

  auto ceiling_of = [&](const Measurement& m) -> const Ceiling& { return m.backend == "cuda" ? cuda_ceiling : cpu_ceiling; };
  auto fraction = [&](const Measurement& m) {
    const Ceiling& c = ceiling_of(m);
    return c.available() ? m.gflops() / c.best() : NAN;
  };
  // The draw roofline of an early-rejection row: the draws/s this backend
  // would reach if every draw cost only its generation at the measured
  // generation rate, plus the examples it actually evaluated at the forward
  // rate of the same scenario's full evaluation (whose draw time, less its
  // generation, is n examples' worth). Full-evaluation rows are their own
  // roofline by this definition, so they get none.
  auto roofline = [&](const Measurement& m) -> double {
    if (!m.early_reject || !std::isfinite(m.uniforms_per_s) || m.draws == 0) return NAN;
    const auto full = std::find_if(results.begin(), results.end(), [&](const Measurement& f) {
      return !f.early_reject && f.scenario == m.scenario && f.n == m.n && f.backend == m.backend;
    });
    if (full == results.end()) return NAN;
    const double generate_s = m.n_params / m.uniforms_per_s;
    const double forward_s = std::max(0.0, 1.0 / full->draws_per_s() - generate_s);
    const double examples_per_draw = static_cast<double>(m.examples) / m.draws;
    return 1.0 / (generate_s + examples_per_draw / m.n * forward_s);
  };
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const char* rss_definition =
      "the process's peak resident set during the measurement (VmHWM, reset just before it); null where the "
      "kernel does not allow the reset";
  const char* roofline_definition =
      "early-rejection rows: 1 / (parameters / uniforms_per_s + examples per draw / n * (1 / full-evaluation "
      "draws_per_s - parameters / uniforms_per_s)), all measured here on the same backend and scenario";

  if (opts.json) {
    auto ceiling_json = [](const Ceiling& c) {
      json j = {{"available", c.available()}, {"gflops", nullable(c.best())}, {"what", c.any().what}};
      if (!c.available()) j["why_not"] = c.why_not();
      j["before_gflops"] = nullable(best_of(c.before));
      j["after_gflops"] = nullable(best_of(c.after));
      j["slowest_call_gflops"] = nullable(c.slowest());
      j["calls"] = c.calls().size();
      if (!c.any().warning.empty()) j["warning"] = c.any().warning;
      if (c.any().fp32_peak_gflops > 0) j["fp32_peak_gflops"] = c.any().fp32_peak_gflops;
      return j;
    };
    json doc;
    doc["gac_version"] = GAC_VERSION;
    doc["date"] = utc_now();
    doc["machine"] = {{"cpu_model", cpu_model()}, {"cores", cores}, {"threads", opts.threads > 0 ? opts.threads : static_cast<int>(cores)}};
    doc["ceiling"] = {{"cpu", ceiling_json(cpu_ceiling)}};
    if (want_cuda) doc["ceiling"]["cuda"] = ceiling_json(cuda_ceiling);
    doc["seconds_per_measurement"] = opts.seconds;
    doc["rss_definition"] = rss_definition;
    doc["roofline_definition"] = roofline_definition;
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
                  {"ceiling_gflops", nullable(ceiling_of(m).best())},
                  {"fraction_of_ceiling", nullable(fraction(m))},
                  {"uniforms_per_s", nullable(m.uniforms_per_s)},
                  {"roofline_draws_per_s", nullable(roofline(m))},
                  {"fraction_of_roofline", nullable(m.draws_per_s() / roofline(m))},
                  {"rss_mib", nullable(m.rss_mib)}};
      if (ceiling_of(m).any().fp32_peak_gflops > 0) row["fraction_of_fp32_peak"] = m.gflops() / ceiling_of(m).any().fp32_peak_gflops;
      rows.push_back(row);
    }
    doc["measurements"] = rows;
    out << doc.dump(2) << "\n";
    return 0;
  }

  out << "gac bench: " << cpu_model() << ", " << cores << " cores; " << opts.seconds << " s per measurement\n";
  auto ceiling_line = [&](const char* name, const Ceiling& c) {
    out << "ceiling (" << name << "): ";
    if (!c.available()) {
      out << "unavailable: " << c.why_not() << "\n";
      return;
    }
    out << c.any().what << ": " << fixed(c.best(), 1) << " GFLOP/s, the best of " << c.calls().size()
        << " calls (best before " << fixed(best_of(c.before), 1) << ", after " << fixed(best_of(c.after), 1)
        << "; slowest call " << fixed(c.slowest(), 1) << ")";
    if (c.any().fp32_peak_gflops > 0) out << "; FP32 peak " << fixed(c.any().fp32_peak_gflops, 0) << " GFLOP/s";
    out << "\n";
    if (!c.any().warning.empty()) out << "  warning: " << c.any().warning << "\n";
  };
  if (want_cpu) ceiling_line("cpu", cpu_ceiling);
  if (want_cuda) ceiling_line("cuda", cuda_ceiling);
  out << "\n";

  auto percent = [](double v) { return std::isfinite(v) ? fixed(100 * v, 1) + "%" : std::string("-"); };
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %3s %-10s %-5s %9s %11s %9s %7s %7s %8s\n", "scenario", "n", "backend", "early",
                "draws/s", "ex-evals/s", "GFLOP/s", "%ceil", "%roof", "RSS MiB");
  out << line;
  for (const Measurement& m : results) {
    std::snprintf(line, sizeof line, "%-9s %3d %-10s %-5s %9s %11s %9s %7s %7s %8s\n", m.scenario.c_str(), m.n,
                  m.backend.c_str(), m.early_reject ? "on" : "off", human_count(m.draws_per_s()).c_str(),
                  human_count(m.examples_per_s()).c_str(), fixed(m.gflops(), 2).c_str(), percent(fraction(m)).c_str(),
                  percent(m.draws_per_s() / roofline(m)).c_str(), fixed(m.rss_mib, 1).c_str());
    out << line;
  }
  out << "\n";
  for (const auto& [name, what] : legend) out << name << ": " << what << "\n";
  for (auto& [label, backend] : backends) out << label << ": " << backend->description() << "\n";
  std::vector<std::string> generation_lines;
  for (const Measurement& m : results) {
    const std::string g = m.scenario + " " + m.backend + " " +
                          (std::isfinite(m.uniforms_per_s) ? human_count(m.uniforms_per_s) : std::string("-"));
    if (std::find(generation_lines.begin(), generation_lines.end(), g) == generation_lines.end()) generation_lines.push_back(g);
  }
  out << "generation alone, uniforms/s:";
  for (const std::string& g : generation_lines) out << "  " << g;
  out << "\n"
         "early on: stop at a draw's first misclassified example; off: every example of every draw (full evaluation).\n"
         "GFLOP/s counts the example evaluations done; %ceil is that over the best SGEMM call; %roof is draws/s over\n"
         "the draw roofline (early rows: generation at the rate above plus the examples evaluated at the full rows'\n"
         "forward rate); RSS is the process's peak resident set during the measurement. Ratios to PyTorch: bench/compare.\n";
  return 0;
}

}  // namespace gac
