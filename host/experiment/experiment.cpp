// The experiment a config defines: its data, model and prior, and the task
// of each stream.
#include "gac/experiment.h"

#include <algorithm>
#include <ostream>
#include <utility>

#include "gac/philox.h"
#include "gac/text.h"

namespace gac {

Experiment prepare_experiment(const RunConfig& cfg) {
  Experiment ex;
  ex.cfg = cfg;
  DataConfig data_cfg = cfg.data;
  data_cfg.seed = class_choice_seed(cfg.seed);
  ex.data = load_dataset(data_cfg);
  ex.model = build_model(cfg.model, ex.data.c, ex.data.h, ex.data.w, ex.data.n_classes);
  ex.prior = make_prior_spec(cfg.prior, ex.model, static_cast<uint32_t>(cfg.heads));
  return ex;
}

void print_classes(std::ostream& out, const Experiment& ex, const std::string& prefix) {
  if (ex.data.synthetic) return;
  if (!ex.data.class_ids.empty()) {
    out << prefix << "classes " << classes_text(ex.data.class_ids) << " (original labels) in every training set\n";
    return;
  }
  out << prefix << "classes (original labels) drawn afresh for each training set, by repeat:\n";
  constexpr int kShown = 20;  // a run of a million training sets prints a line, not megabytes
  const int shown = std::min(ex.cfg.repeats, kShown);
  for (int n : ex.cfg.ns) {
    out << prefix << "  n=" << n << ":";
    for (int r = 0; r < shown; ++r)
      out << "  " << classes_text(training_set_classes(ex.data, data_seed(ex.cfg.seed, n, r)), ",");
    if (ex.cfg.repeats > shown) out << "  ... (" << ex.cfg.repeats - shown << " more)";
    out << "\n";
  }
  if (ex.cfg.repeats > shown) out << prefix << "  (every training set's classes: gac report DIR --json)\n";
}

std::string optimizer_text(const RunConfig& cfg) {
  if (cfg.optimizer == "pattern" || cfg.optimizer == "greedy") {
    const SearchConfig& s = cfg.search;
    const SearchKind kind = cfg.optimizer == "pattern" ? SearchKind::pattern : SearchKind::greedy;
    return std::string(cfg.optimizer == "pattern" ? "pattern search" : "greedy random search") +
           " from each draw (budget " + std::to_string(s.budget) + " candidate-examples per batch, at most " +
           std::to_string(s.max_calls) + " calls, accuracy checked every " +
           std::to_string(search_check_every(kind, s)) + ")";
  }
  if (cfg.optimizer != "sgd") return "guess and check";
  const SgdConfig& s = cfg.sgd;
  const std::string batch = std::to_string(s.batch_size) + (s.poison_repeats > 0 ? "" : " (at most n/2)");
  const std::string poison = s.poison_repeats > 0 ? ", poisoned: training set x" + std::to_string(s.poison_repeats) +
                                                        " + test split with changed labels"
                                                  : "";
  return "SGD from each draw (lr " + shortest(s.lr) + ", momentum " + shortest(s.momentum) + ", batch " + batch + ", " +
         std::to_string(s.epochs) + " epochs" + poison + ")";
}

std::string stream_data_stem(int n, int repeat) {
  // (Appended, not "n" + std::to_string(n): GCC 12 warns falsely about that here, -Wrestrict.)
  return std::string("n").append(std::to_string(n)).append("_r").append(std::to_string(repeat)).append("_");
}

StreamTask stream_task(const Experiment& ex, int n, int repeat, int shard) {
  return stream_task(ex, n, repeat, shard, training_set_classes(ex.data, data_seed(ex.cfg.seed, n, repeat)));
}

StreamTask stream_task(const Experiment& ex, int n, int repeat, int shard, const std::vector<int>& classes) {
  DataConfig data_cfg = ex.cfg.data;
  data_cfg.seed = class_choice_seed(ex.cfg.seed);
  TrainTest tt = make_train_test(ex.data, data_cfg, n, data_seed(ex.cfg.seed, n, repeat), classes);
  StreamTask task;
  task.model = ex.model.spec;
  task.prior = ex.prior;
  task.key = make_stream_key(ex.cfg.seed, n, repeat, shard);
  task.loss = ex.cfg.loss;
  task.early_reject = ex.cfg.early_reject;
  task.bin_edges.assign(ex.cfg.bins.begin(), ex.cfg.bins.end());
  task.train = std::move(tt.train);
  task.test = std::move(tt.test);
  task.source = std::move(tt.source);
  return task;
}

}  // namespace gac
