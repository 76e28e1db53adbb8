// `gac bench`: throughput on the standard scenarios.
#include <iostream>
#include <memory>

#include "gac/bench.h"
#include "gac/error.h"
#include "host/bench/search_bench.h"
#include "host/cli/commands.h"

namespace gac::cli {

Command add_bench(CLI::App& app) {
  struct Args {
    BenchOptions opts;
    SearchBenchOptions search;
    bool no_full = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "bench", "draws/s, GFLOP/s and fraction of the ceiling (a CPU's FMA peak, a GPU's SGEMM) on standard scenarios");
  std::string scenario_list;
  for (const auto& name : bench_scenario_names()) scenario_list += (scenario_list.empty() ? "" : ", ") + name;
  BenchOptions& o = a->opts;
  cmd->add_option("--scenario", o.scenarios, "scenario to run (repeatable): " + scenario_list);
  cmd->add_option("--backend", o.backends,
                  "backend to measure (repeatable): cpu, cuda, or one CPU kernel: cpu:scalar, cpu:avx2, cpu:avx512");
  auto* seconds = cmd->add_option("--seconds", o.seconds, "timed seconds per measurement")->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o.threads, "CPU threads (0 = all cores)")->check(whole_number(0, 4096));
  cmd->add_option("--n", o.ns, "training-set size (repeatable or comma-separated; default: each scenario's)")
      ->check(CLI::PositiveNumber)
      ->delimiter(',');
  cmd->add_option("--heads", o.heads,
                  "also measure nested sampling with K heads per body (repeatable, K >= 2; docs/nested.md), early "
                  "rejection on, beside the plain rows")
      ->delimiter(',');
  cmd->add_flag("--no-full", a->no_full, "skip the full-evaluation (early rejection off) measurements");
  cmd->add_flag("--json", o.json, "one JSON document instead of the table");
  cmd->add_option("--search", a->search.kinds,
                  "measure the paper's searches instead (pattern, greedy; repeatable or comma-separated): one search "
                  "per row on LeNet w1, 10 classes, the paper's MNIST budgets, --n (default 100)")
      ->delimiter(',');
  cmd->add_option("--search-data", a->search.data,
                  "IDX directory of MNIST's layout for --search (default: Debian's Fashion-MNIST)");
  cmd->add_option("--steps", a->search.steps,
                  "with --search: stop each search after this many steps (improvements) instead of --seconds, so "
                  "runs compare over the same steps from the same start")
      ->check(CLI::PositiveNumber)
      ->excludes(seconds);
  return [a] {
    if (a->search.kinds.empty() && a->search.steps > 0) throw Error("bench: --steps applies to --search only");
    if (!a->search.kinds.empty()) {
      SearchBenchOptions& s = a->search;
      s.ns = a->opts.ns;
      s.threads = a->opts.threads;
      s.json = a->opts.json;
      s.seconds = a->opts.seconds;
      return run_search_bench(s, std::cout, std::cerr);
    }
    a->opts.early_both = !a->no_full;
    return run_bench(a->opts, std::cout, std::cerr);
  };
}

}  // namespace gac::cli
