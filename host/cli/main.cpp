// gac: guess-and-check training. One binary, CLI11 subcommands.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "gac/backend.h"
#include "gac/bench.h"
#include "gac/config.h"
#include "gac/error.h"
#include "gac/report.h"
#include "gac/run.h"
#include "gac/store.h"
#include "gac/verify.h"

namespace fs = std::filesystem;
using namespace gac;

namespace {

struct ConfigArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string backend;
  int threads = -1;
};

void add_config_options(CLI::App* cmd, ConfigArgs& a, bool config_required) {
  auto* opt = cmd->add_option("config", a.config, "TOML config file");
  if (config_required) opt->required();
  cmd->add_option("--set", a.sets, "override a config key: section.key=value (repeatable)");
  cmd->add_option("--backend", a.backend, "auto, cpu or cuda (default: exec.backend, auto)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--threads", a.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 4096));
}

RunConfig resolve(const ConfigArgs& a) {
  RunConfig cfg = load_config(a.config, a.sets);
  if (!a.backend.empty()) cfg.backend = a.backend;
  if (a.threads >= 0) cfg.threads = a.threads;
  return cfg;
}

int cmd_run(const ConfigArgs& a, const std::string& out, bool quiet) {
  const RunConfig cfg = resolve(a);
  RunOptions opts;
  opts.dir = !out.empty() ? fs::path(out) : !cfg.output.empty() ? fs::path(cfg.output) : fs::path("runs") / fs::path(a.config).stem();
  opts.progress = !quiet;
  const RunOutcome outcome = run_experiment(cfg, opts, std::cerr);
  const auto store = Store::open_existing(opts.dir);
  std::cout << format_report(*store, ReportFormat::table);
  if (!outcome.complete) std::cerr << "gac: run stopped before every stream finished (time limit)\n";
  return 0;
}

int cmd_info(const ConfigArgs& a) {
  std::cout << "gac " << GAC_VERSION << "\n";
  std::cout << "compiler: " << __VERSION__ << "\n";
#if defined(GAC_HAVE_CUDA)
  std::cout << "cuda: built for architectures " << GAC_CUDA_ARCHS << "\n";
  const auto devices = cuda_device_descriptions();
  if (devices.empty()) std::cout << "cuda devices: none\n";
  for (const auto& d : devices) std::cout << "cuda device: " << d << "\n";
#else
  std::cout << "cuda: not built\n";
#endif
  std::string note;
  const auto backend = make_backend(a.backend.empty() ? "auto" : a.backend, a.threads < 0 ? 0 : a.threads, &note);
  std::cout << "backend (auto): " << backend->description() << "\n";
  if (!note.empty()) std::cout << "note: " << note << "\n";
  if (a.config.empty()) return 0;

  const Experiment ex = prepare_experiment(resolve(a));
  const Model& m = ex.model;
  std::cout << "\nconfig: " << a.config << "\n"
            << "data: " << ex.data.name << ", " << ex.data.n_classes << " classes, input " << ex.data.c << "x" << ex.data.h
            << "x" << ex.data.w << ", " << ex.data.train.size() << " training / " << ex.data.test.size() << " test examples\n"
            << "model: " << m.arch_name << ", " << m.spec.n_params << " parameters, " << m.flops_per_example
            << " FLOP per example (" << m.flops_per_example / 1e3 << " kFLOP)\n";
  for (const auto& t : m.tensors) {
    std::cout << "  " << t.name << " [";
    for (size_t i = 0; i < t.shape.size(); ++i) std::cout << (i ? ", " : "") << t.shape[i];
    std::cout << "] offset " << t.offset << "\n";
  }
  return 0;
}

}  // namespace

// Debian's OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to
// generic SSE3 kernels, which would make `gac bench`'s SGEMM ceiling far too
// low. The kernel set is chosen when the library loads, so the bench re-runs
// itself once with OPENBLAS_CORETYPE naming the widest kernels this CPU runs.
void choose_openblas_kernels_for_bench(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "bench" || std::getenv("OPENBLAS_CORETYPE")) return;
  __builtin_cpu_init();
  const char* core = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : nullptr;
  if (!core) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);  // on failure, carry on with the default kernels
}

int main(int argc, char** argv) {
  choose_openblas_kernels_for_bench(argc, argv);
  CLI::App app{"gac: train neural networks by guess and check"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gac ") + GAC_VERSION);

  ConfigArgs run_args, info_args;
  std::string out_dir, report_dir, verify_dir;
  bool quiet = false, csv = false, json = false;
  int verify_limit = 0;

  auto* run = app.add_subcommand("run", "draw models until every loss bin is filled");
  add_config_options(run, run_args, true);
  run->add_option("-o,--output", out_dir, "run directory (default: runs/<config name>)");
  run->add_flag("-q,--quiet", quiet, "no progress on stderr");

  auto* report = app.add_subcommand("report", "per-cell results of a run directory");
  report->add_option("dir", report_dir, "run directory")->required();
  auto* csv_flag = report->add_flag("--csv", csv, "CSV instead of a table");
  report->add_flag("--json", json, "JSON instead of a table")->excludes(csv_flag);

  auto* verify = app.add_subcommand("verify", "regenerate stored models from their draw indices and re-score them");
  verify->add_option("dir", verify_dir, "run directory")->required();
  verify->add_option("--limit", verify_limit, "check at most this many models (0 = all)")->check(CLI::NonNegativeNumber);

  auto* info = app.add_subcommand("info", "build, backends, devices; with a config: its model and data");
  add_config_options(info, info_args, false);

  BenchOptions bench_opts;
  bool no_full = false;
  auto* bench = app.add_subcommand("bench", "draws/s, GFLOP/s and fraction of the SGEMM ceiling on standard scenarios");
  std::string scenario_list;
  for (const auto& name : bench_scenario_names()) scenario_list += (scenario_list.empty() ? "" : ", ") + name;
  bench->add_option("--scenario", bench_opts.scenarios, "scenario to run (repeatable): " + scenario_list);
  bench->add_option("--backend", bench_opts.backends,
                    "backend to measure (repeatable): cpu, cuda, or one CPU kernel: cpu:scalar, cpu:avx2, cpu:avx512");
  bench->add_option("--seconds", bench_opts.seconds, "timed seconds per measurement")->check(CLI::PositiveNumber);
  bench->add_option("--threads", bench_opts.threads, "CPU threads (0 = all cores)")->check(CLI::Range(0, 4096));
  bench->add_option("--n", bench_opts.ns, "training-set size (repeatable; default: each scenario's)")
      ->check(CLI::PositiveNumber);
  bench->add_flag("--no-full", no_full, "skip the full-evaluation (early rejection off) measurements");
  bench->add_flag("--json", bench_opts.json, "one JSON document instead of the table");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*run) return cmd_run(run_args, out_dir, quiet);
    if (*report) {
      const auto store = Store::open_existing(report_dir);
      std::cout << format_report(*store, csv ? ReportFormat::csv : json ? ReportFormat::json : ReportFormat::table);
      return 0;
    }
    if (*verify) return verify_run(verify_dir, verify_limit, std::cout) ? 0 : 1;
    if (*info) return cmd_info(info_args);
    if (*bench) {
      bench_opts.early_both = !no_full;
      return run_bench(bench_opts, std::cout, std::cerr);
    }
  } catch (const Error& e) {
    std::cerr << "gac: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "gac: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
