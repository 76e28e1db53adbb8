// `gac bench`: draws/s, example-evaluations/s and GFLOP/s of each backend on
// the standard scenarios, next to the ceiling (a CPU's measured FP32 FMA
// peak, a GPU's cuBLAS SGEMM), the SGEMM rate and each scenario's draw
// roofline. Each scenario is built exactly as a run would build it (TOML
// config -> prepare_experiment -> stream_task), so the bench measures the
// code path `gac run` uses. Ratios to PyTorch are not printed here: they
// mean something only when PyTorch is measured beside gac on the same
// machine at the same time, which bench/compare does.
#include "gac/bench.h"
#include "host/report/format.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <ostream>
#include <thread>

#include "gac/backend.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/nested.h"
#include "host/bench/ceilings.h"
#include "host/bench/measure.h"
#include "host/bench/output.h"
#include "host/bench/scenarios.h"

namespace gac {
namespace {

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

// Checks every option before any work, so a typo fails at once; returns the
// chosen scenarios.
std::vector<const Scenario*> check_options(const BenchOptions& opts) {
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
  for (int k : opts.heads)
    if (k < 2 || static_cast<uint32_t>(k) > kMaxHeads)
      throw Error("bench: --heads must be between 2 and " + std::to_string(kMaxHeads) + " (1 is the plain rows), got " +
                  std::to_string(k));
  return chosen;
}

// Backends: the requested ones must work; by default CUDA joins when usable.
std::vector<NamedBackend> open_backends(const BenchOptions& opts, std::ostream& log) {
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
  return backends;
}

// One measurement of `task`, labelled.
Measurement labelled_measurement(const BenchOptions& opts, const Scenario& s, const Experiment& ex, NamedBackend& b,
                                 const StreamTask& task, const std::string& data_name, double uniforms, std::ostream& log) {
  log << "bench: " << s.name << " n=" << task.train.size() << " " << b.label;
  if (task.prior.heads > 1) log << " heads " << task.prior.heads;
  log << " early rejection " << (task.early_reject ? "on" : "off") << " ..." << std::flush;
  Measurement m = measure_evaluation(*b.backend, task, opts.seconds, s.probe_batch);
  m.scenario = s.name;
  m.data = data_name;
  m.backend = b.label;
  m.backend_description = b.backend->description();
  m.n = static_cast<int>(task.train.size());
  m.early_reject = task.early_reject;
  m.n_params = ex.model.spec.n_params;
  m.flops_per_example = ex.model.flops_per_example;
  m.uniforms_per_s = uniforms;
  log << " " << human_count(m.draws_per_s()) << " draws/s\n";
  return m;
}

// Every measurement of one scenario: per backend, generation alone, then each
// n with early rejection on (and off), then nested sampling's K values.
void measure_scenario(const BenchOptions& opts, const Scenario& s, std::vector<NamedBackend>& backends, TempDir& tmp,
                      BenchResults& r, std::ostream& log) {
  const std::vector<int>& ns = opts.ns.empty() ? s.ns : opts.ns;
  std::string data_name;
  const Experiment ex = prepare_experiment(scenario_config(s, ns, tmp, data_name));
  r.legend.emplace_back(s.name, s.what + ": " + std::to_string(ex.model.spec.n_params) + " parameters, " +
                                   fixed(ex.model.flops_per_example / 1e3, 2) + " kFLOP/example, data " + data_name);
  for (NamedBackend& named : backends) {
    const std::string& label = named.label;
    log << "bench: " << s.name << " " << label << " generation alone ..." << std::flush;
    const double uniforms = measure_generation(*named.backend, stream_task(ex, ns[0], 0), opts.seconds, s.probe_batch);
    log << " " << (std::isfinite(uniforms) ? human_count(uniforms) + " uniforms/s" : "not measurable") << "\n";
    for (int n : ns) {
      StreamTask task = stream_task(ex, n, 0);
      for (bool early : {true, false})
        if (early || opts.early_both) {
          task.early_reject = early;
          r.measurements.push_back(labelled_measurement(opts, s, ex, named, task, data_name, uniforms, log));
        }
      for (int k : opts.heads) {
        StreamTask pairs = stream_task(ex, n, 0);
        pairs.prior = make_prior_spec(ex.cfg.prior, ex.model, static_cast<uint32_t>(k));
        r.nested.push_back(labelled_measurement(opts, s, ex, named, pairs, data_name, uniforms, log));
      }
    }
  }
}

// The ceilings, then every scenario, then the ceilings again.
BenchResults measure_all(const BenchOptions& opts, const std::vector<const Scenario*>& chosen,
                         std::vector<NamedBackend>& backends, std::ostream& log) {
  BenchResults r;
  r.want_cuda = std::any_of(backends.begin(), backends.end(), [](const auto& b) { return b.label == "cuda"; });
  r.want_cpu = std::any_of(backends.begin(), backends.end(), [](const auto& b) { return b.label != "cuda"; });
  const double ceiling_s = std::min(0.5, opts.seconds / 2);
  r.cpu_ceiling.before.why_not = r.cpu_sgemm.before.why_not = "no cpu backend measured";
  // The FMA peak runs before OpenBLAS, whose threads keep spinning for a
  // moment after their last call; so the CPU measurements start after a pause.
  auto measure_ceilings = [&](bool before) {
    log << "bench: measuring the ceilings (" << (before ? "before" : "after") << ") ...\n";
    auto session = [before](Ceiling& c) -> CeilingSession& { return before ? c.before : c.after; };
    if (r.want_cpu) {
      session(r.cpu_ceiling) = cpu_fma_peak_session(opts.threads, ceiling_s);
      session(r.cpu_sgemm) = cpu_sgemm_session(opts.threads, ceiling_s);
    }
#if defined(GAC_HAVE_CUDA)
    if (r.want_cuda) session(r.cuda_ceiling) = cuda_sgemm_session(ceiling_s);
#endif
  };
  measure_ceilings(true);
  if (r.cpu_sgemm.available()) std::this_thread::sleep_for(std::chrono::duration<double>(ceiling_s));

  TempDir tmp;
  for (const Scenario* s : chosen) measure_scenario(opts, *s, backends, tmp, r, log);
  measure_ceilings(false);
  if (!r.cpu_sgemm.any().warning.empty()) log << "bench: warning: " << r.cpu_sgemm.any().warning << "\n";
  for (auto& [label, backend] : backends) r.backends.emplace_back(label, backend->description());
  return r;
}

}  // namespace

int run_bench(const BenchOptions& opts, std::ostream& out, std::ostream& log) {
  const std::vector<const Scenario*> chosen = check_options(opts);
  std::vector<NamedBackend> backends = open_backends(opts, log);
  const BenchResults results = measure_all(opts, chosen, backends, log);
  if (opts.json)
    write_bench_json(opts, results, out);
  else
    write_bench_table(opts, results, out);
  return 0;
}

}  // namespace gac
