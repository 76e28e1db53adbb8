// `gac bench --search` (host/bench/search_bench.h).
#include "host/bench/search_bench.h"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "gac/config.h"
#include "gac/error.h"
#include "gac/experiment.h"
#include "gac/search.h"
#include "host/report/format.h"
#include "host/util/parallel_for.h"

namespace gac {
namespace {

struct SearchRow {
  std::string kind, evaluation;  // evaluation: "incremental" or "full"
  int n = 0;
  int64_t slots = 0;  // candidates per batch
  double seconds = 0;
  uint64_t batches = 0, candidates = 0, steps = 0;
  bool finished = false;  // the search ended (fit or gave up) before the time was up
};

std::string default_data() {
  const char* dir = std::getenv("GAC_FASHION_MNIST");
  return dir && *dir ? dir : "/usr/share/datasets/fashion-mnist";
}

// The paper's MNIST config of `kind` (configs/table4_mnist_*.toml) on `data`.
RunConfig search_config(const std::string& kind, int n, const std::string& data) {
  const std::string budget = kind == "pattern" ? "10000" : "200000";
  return parse_config("[data]\nkind = \"idx\"\npath = '" + data +
                          "'\nclasses = \"all\"\n[model]\narch = \"lenet\"\nwidth = 1.0\n"
                          "[prior]\nkind = \"uniform\"\nradius = 1.0\n[optimizer]\nkind = \"" +
                          kind + "\"\nbudget = " + budget + "\nmax_calls = 80000\n[run]\nseed = 0\nn = [" +
                          std::to_string(n) + "]\nbins = [-999.0, 999.0]\nloss = \"normalized\"\n",
                      "bench --search");
}

// One search from draw 0, stopped after `seconds` and at least one batch.
SearchRow measure_search(const Experiment& ex, const std::string& kind, bool incremental, int n, double seconds,
                         int threads) {
  SearchConfig cfg = ex.cfg.search;
  cfg.incremental = incremental;
  const StreamTask task = stream_task(ex, n, 0);
  SearchStats stats;
  std::atomic<int> stop{0};
  auto opt = make_search_optimizer(kind == "pattern" ? SearchKind::pattern : SearchKind::greedy, cfg, threads, &stop,
                                   nullptr, &stats);
  opt->begin_stream(task);
  std::atomic<bool> done{false};
  std::exception_ptr failure;
  const auto start = std::chrono::steady_clock::now();
  std::thread search([&] {
    try {
      std::vector<TrainedModel> models;
      opt->train(0, 1, models);
    } catch (...) {
      failure = std::current_exception();
    }
    done = true;
  });
  const auto deadline = start + std::chrono::duration<double>(seconds);
  // At least one whole batch: a greedy batch of LeNet takes seconds.
  while (!done && (std::chrono::steady_clock::now() < deadline || stats.batches == 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool finished = done;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  SearchRow r{kind, incremental ? "incremental" : "full", n, search_candidates(cfg, n), elapsed,
              stats.batches.load(), stats.candidates.load(), stats.steps.load(), finished};
  stop = 1;
  search.join();
  if (failure) std::rethrow_exception(failure);
  return r;
}

void write_table(const std::vector<SearchRow>& rows, const std::string& data, int threads, std::ostream& out) {
  out << "searches: LeNet w1, 10 classes of " << data << ", uniform[-1, 1] draw 0, the paper's MNIST budgets, "
      << threads << " threads\n\n";
  out << "search   evaluation   n     slots  seconds  batches  candidates/s  steps/s\n";
  for (const SearchRow& r : rows) {
    char line[160];
    std::snprintf(line, sizeof line, "%-8s %-12s %-5d %-6lld %-8.1f %-8llu %-13s %s%s\n", r.kind.c_str(),
                  r.evaluation.c_str(), r.n, static_cast<long long>(r.slots), r.seconds,
                  static_cast<unsigned long long>(r.batches), human_count(r.candidates / r.seconds).c_str(),
                  fixed(r.steps / r.seconds, 2).c_str(), r.finished ? " (search ended)" : "");
    out << line;
  }
  out << "\nsteps: improvements (one per call until the search fits); candidates: slots 1.. of each batch.\n"
         "A search's early calls improve at once and later ones take many batches: steps/s fall as it goes,\n"
         "so compare steps/s only over the same time from the same start.\n";
}

void write_json(const std::vector<SearchRow>& rows, const std::string& data, int threads, std::ostream& out) {
  nlohmann::json j;
  j["data"] = data;
  j["threads"] = threads;
  j["searches"] = nlohmann::json::array();
  for (const SearchRow& r : rows)
    j["searches"].push_back({{"kind", r.kind}, {"evaluation", r.evaluation}, {"n", r.n}, {"slots", r.slots},
                             {"seconds", r.seconds}, {"batches", r.batches}, {"candidates", r.candidates},
                             {"steps", r.steps}, {"candidates_per_s", r.candidates / r.seconds},
                             {"steps_per_s", r.steps / r.seconds}, {"finished", r.finished}});
  out << j.dump(2) << "\n";
}

}  // namespace

int run_search_bench(const SearchBenchOptions& opts, std::ostream& out, std::ostream& log) {
  for (const std::string& k : opts.kinds)
    if (k != "pattern" && k != "greedy") throw Error("bench: --search takes pattern or greedy, got '" + k + "'");
  if (!(opts.seconds > 0) || !std::isfinite(opts.seconds))
    throw Error("bench: --seconds must be positive, got " + std::to_string(opts.seconds));
  const std::vector<int> ns = opts.ns.empty() ? std::vector<int>{100} : opts.ns;
  const std::string data = opts.data.empty() ? default_data() : opts.data;
  const int threads = opts.threads > 0 ? opts.threads : available_cpus();
  std::vector<SearchRow> rows;
  for (const std::string& kind : opts.kinds)
    for (int n : ns) {
      const Experiment ex = prepare_experiment(search_config(kind, n, data));
      for (bool incremental : kind == "pattern" ? std::vector<bool>{true, false} : std::vector<bool>{false}) {
        log << "bench: " << kind << " search n=" << n << (kind == "pattern" ? incremental ? " incremental" : " full" : "")
            << " ..." << std::flush;
        rows.push_back(measure_search(ex, kind, incremental, n, opts.seconds, threads));
        log << " " << human_count(rows.back().candidates / rows.back().seconds) << " candidates/s\n";
      }
    }
  if (opts.json) write_json(rows, data, threads, out);
  else write_table(rows, data, threads, out);
  return 0;
}

}  // namespace gac
