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
  bool finished = false;  // the search ended (fit or gave up) before the time was up or its steps made
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

// One search from draw 0. With `steps`, its calls are capped at `steps` (one
// step a call until it fits or gives up; its accuracy checks stay where the
// paper's cap puts them) and it runs to its end; else it is stopped after
// `seconds` and at least one batch.
SearchRow measure_search(const Experiment& ex, const std::string& kind, bool incremental, int n,
                         const SearchBenchOptions& opts, int threads) {
  const SearchKind search_kind = kind == "pattern" ? SearchKind::pattern : SearchKind::greedy;
  SearchConfig cfg = ex.cfg.search;
  cfg.incremental = incremental;
  if (opts.steps > 0) {
    cfg.check_every = search_check_every(search_kind, cfg);
    cfg.max_calls = opts.steps;
  }
  SearchStats stats;
  std::atomic<int> stop{0};
  auto opt = make_search_optimizer(search_kind, cfg, threads, &stop, nullptr, &stats);
  opt->begin_stream(stream_task(ex, n, 0));
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
  if (opts.steps > 0) search.join();
  const auto deadline = start + std::chrono::duration<double>(opts.seconds);
  // At least one whole batch: a greedy batch of LeNet takes seconds.
  while (!done && (std::chrono::steady_clock::now() < deadline || stats.batches == 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool finished = opts.steps > 0 ? stats.steps < static_cast<uint64_t>(opts.steps) : done.load();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  SearchRow r{kind, incremental ? "incremental" : "full", n, search_candidates(cfg, n), elapsed,
              stats.batches.load(), stats.candidates.load(), stats.steps.load(), finished};
  stop = 1;
  if (search.joinable()) search.join();
  if (failure) std::rethrow_exception(failure);
  return r;
}

void write_table(const std::vector<SearchRow>& rows, const std::string& data, int threads, int64_t steps,
                 std::ostream& out) {
  out << "searches: LeNet w1, 10 classes of " << data << ", uniform[-1, 1] draw 0, the paper's MNIST budgets, "
      << threads << " threads" << (steps > 0 ? ", " + std::to_string(steps) + " steps each" : "") << "\n\n";
  out << "search   evaluation   n     slots  seconds  batches  candidates/s  steps/s\n";
  for (const SearchRow& r : rows) {
    char line[160];
    std::snprintf(line, sizeof line, "%-8s %-12s %-5d %-6lld %-8.3g %-8llu %-13s %s%s\n", r.kind.c_str(),
                  r.evaluation.c_str(), r.n, static_cast<long long>(r.slots), r.seconds,
                  static_cast<unsigned long long>(r.batches), human_count(r.candidates / r.seconds).c_str(),
                  fixed(r.steps / r.seconds, 2).c_str(), r.finished ? " (search ended)" : "");
    out << line;
  }
  out << "\nsteps: improvements (one per call until the search fits); candidates: slots 1.. of each batch.\n"
         "A search's early calls improve at once and later ones take many batches: steps/s fall as it goes,\n"
         "so compare steps/s only over the same time or steps (--steps) from the same start.\n";
}

void write_json(const std::vector<SearchRow>& rows, const std::string& data, int threads, int64_t steps,
                std::ostream& out) {
  nlohmann::json j;
  j["data"] = data;
  j["threads"] = threads;
  j["steps_limit"] = steps;  // 0: each search ran for a time
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
  if (opts.steps < 0) throw Error("bench: --steps must be positive, got " + std::to_string(opts.steps));
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
        rows.push_back(measure_search(ex, kind, incremental, n, opts, threads));
        log << " " << human_count(rows.back().candidates / rows.back().seconds) << " candidates/s\n";
      }
    }
  if (opts.json) write_json(rows, data, threads, opts.steps, out);
  else write_table(rows, data, threads, opts.steps, out);
  return 0;
}

}  // namespace gac
