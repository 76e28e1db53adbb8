// The orchestrator. Draws of a stream are consumed strictly in index order
// and a stream stops at the exact draw that fills its last bin, so what is
// stored depends only on the config: never on batch size, threads, backend
// speed or where a killed run was resumed.
#include "gac/run.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gac/error.h"
#include "gac/npy.h"
#include "gac/store.h"
#include "host/report/format.h"

namespace gac {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string duration(double s) {
  char buf[32];
  if (!std::isfinite(s)) return "?";
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%.1fmin", s / 60);
  else if (s < 86400 * 2) std::snprintf(buf, sizeof buf, "%.1fh", s / 3600);
  else std::snprintf(buf, sizeof buf, "%.1fd", s / 86400);
  return buf;
}

bool all_filled(const StreamState& st, int target) {
  for (int s : st.stored)
    if (s < target) return false;
  return true;
}

// Progress of the current stream on stderr: rewritten in place on a
// terminal, one line every 10 s in a log file (SLURM).
class Progress {
 public:
  Progress(std::ostream& log, bool enabled) : log_(log), enabled_(enabled), tty_(isatty(STDERR_FILENO)) {}

  void update(const StreamState& st, const RunConfig& cfg, double draws_per_s, bool final) {
    if (!enabled_) return;
    const double since_start = seconds_since(start_);
    if (!final && (since_start < 1.0 || seconds_since(last_) < (tty_ ? 0.5 : 10.0))) return;
    if (final && !printed_) return;  // runs under a second print nothing
    last_ = Clock::now();
    printed_ = true;
    std::ostringstream line;
    line << "[" << duration(since_start) << "] n=" << st.n << " repeat " << st.repeat + 1 << "/" << cfg.repeats << " | "
         << human_count(static_cast<double>(st.draws)) << " draws, " << human_count(draws_per_s) << "/s | bins";
    double eta = 0;
    for (size_t j = 0; j < st.stored.size(); ++j) {
      line << " " << st.stored[j] << "/" << cfg.target;
      if (st.stored[j] >= cfg.target) continue;
      // Expected draws to fill bin j at its observed rate (unknown without a hit).
      const double need = cfg.target - st.stored[j];
      eta = std::max(eta, st.hits[j] ? need * st.draws / st.hits[j] / std::max(draws_per_s, 1.0) : INFINITY);
    }
    const double budget_s = (static_cast<double>(cfg.max_draws) - st.draws) / std::max(draws_per_s, 1.0);
    if (st.status == "running" && eta > budget_s)
      line << " | ETA budget in " << duration(budget_s);
    else if (st.status == "running")
      line << " | ETA " << duration(eta);
    else
      line << " | " << st.status;
    if (tty_) log_ << "\r\033[K" << line.str() << (final ? "\n" : "") << std::flush;
    else log_ << line.str() << "\n" << std::flush;
  }

 private:
  std::ostream& log_;
  bool enabled_, tty_, printed_ = false;
  Clock::time_point start_ = Clock::now(), last_ = Clock::now();
};

RunMeta run_meta(const Experiment& ex) {
  RunMeta meta;
  meta.bin_edges = ex.cfg.bins;
  meta.target = ex.cfg.target;
  meta.ns = ex.cfg.ns;
  meta.repeats = ex.cfg.repeats;
  meta.n_params = ex.model.spec.n_params;
  return meta;
}

// Scores the newly accepted draws and commits them with the stream state.
void commit(Store& store, Backend& backend, const StreamTask& task, const StreamState& st, const std::vector<Hit>& accepted) {
  std::vector<uint64_t> draws;
  for (const Hit& h : accepted) draws.push_back(h.draw);
  const std::vector<TestScore> scores = backend.score_test(draws);
  std::vector<StoredModel> models;
  std::vector<std::vector<float>> weights;
  for (size_t i = 0; i < accepted.size(); ++i) {
    weights.emplace_back(task.model.n_params);
    generate_params(task.prior, task.key, accepted[i].draw, task.model.n_params, weights.back().data());
    StoredModel m;
    m.n = st.n;
    m.repeat = st.repeat;
    m.shard = st.shard;
    m.draw = accepted[i].draw;
    m.bin = accepted[i].bin;
    m.train_loss = accepted[i].loss;
    m.train_acc = 1.0;
    m.test_acc = scores[i].accuracy;
    m.test_loss = scores[i].loss;
    models.push_back(m);
  }
  store.commit(st, models, weights);
}

void save_examples(const std::filesystem::path& stem, const Examples& e, const Dataset& data) {
  const auto rows = static_cast<int64_t>(e.size());
  const std::vector<int64_t> shape = data.c == 1 && data.h == 1 ? std::vector<int64_t>{rows, data.w}
                                                                : std::vector<int64_t>{rows, data.c, data.h, data.w};
  write_file_atomic(stem.string() + "x.npy", npy_bytes_f32(e.x.data(), shape));
  write_file_atomic(stem.string() + "y.npy", npy_bytes_i32(e.y.data(), {rows}));
}

// DIR/data/n{n}_r{repeat}_*: the exact examples a stream's models were
// accepted on, and what rebuilds its test set from the split files (see
// README), so anyone can re-check a model with numpy alone.
void save_stream_data(const std::filesystem::path& dir, int n, int repeat, const StreamTask& task, const Dataset& data) {
  std::filesystem::create_directories(dir / "data");
  const std::filesystem::path stem = dir / "data" / stream_data_stem(n, repeat);
  save_examples(stem.string() + "train_", task.train, data);
  if (data.synthetic) save_examples(stem.string() + "test_", task.test, data);  // small: the split itself
  const auto save_rows = [&](const char* name, const std::vector<int64_t>& rows) {
    const std::vector<int32_t> rows32(rows.begin(), rows.end());
    write_file_atomic(stem.string() + name, npy_bytes_i32(rows32.data(), {static_cast<int64_t>(rows32.size())}));
  };
  save_rows("train_rows.npy", task.source.train_rows);
  save_rows("test_rows.npy", task.source.test_rows);
  const nlohmann::json source = {{"classes", task.source.classes}, {"mean", task.source.mean}, {"std", task.source.sd}};
  write_file_atomic(stem.string() + "source.json", source.dump() + "\n");
}

}  // namespace

Experiment prepare_experiment(const RunConfig& cfg) {
  Experiment ex;
  ex.cfg = cfg;
  DataConfig data_cfg = cfg.data;
  data_cfg.seed = class_choice_seed(cfg.seed);
  ex.data = load_dataset(data_cfg);
  ex.model = build_model(cfg.model, ex.data.c, ex.data.h, ex.data.w, ex.data.n_classes);
  ex.prior = make_prior_spec(cfg.prior, ex.model);
  return ex;
}

void print_classes(std::ostream& out, const Experiment& ex, const std::string& prefix) {
  if (ex.data.synthetic) return;
  if (!ex.data.class_ids.empty()) {
    out << prefix << "classes " << classes_text(ex.data.class_ids) << " (original labels) in every training set\n";
    return;
  }
  out << prefix << "classes (original labels) drawn afresh for each training set, by repeat:\n";
  for (int n : ex.cfg.ns) {
    out << prefix << "  n=" << n << ":";
    for (int r = 0; r < ex.cfg.repeats; ++r)
      out << "  " << classes_text(training_set_classes(ex.data, data_seed(ex.cfg.seed, n, r)), ",");
    out << "\n";
  }
}

std::string stream_data_stem(int n, int repeat) {
  return "n" + std::to_string(n) + "_r" + std::to_string(repeat) + "_";
}

StreamTask stream_task(const Experiment& ex, int n, int repeat) {
  return stream_task(ex, n, repeat, training_set_classes(ex.data, data_seed(ex.cfg.seed, n, repeat)));
}

StreamTask stream_task(const Experiment& ex, int n, int repeat, const std::vector<int>& classes) {
  DataConfig data_cfg = ex.cfg.data;
  data_cfg.seed = class_choice_seed(ex.cfg.seed);
  TrainTest tt = make_train_test(ex.data, data_cfg, n, data_seed(ex.cfg.seed, n, repeat), classes);
  StreamTask task;
  task.model = ex.model.spec;
  task.prior = ex.prior;
  task.key = make_stream_key(ex.cfg.seed, n, repeat, ex.cfg.shard);
  task.loss = ex.cfg.loss;
  task.early_reject = ex.cfg.early_reject;
  task.bin_edges.assign(ex.cfg.bins.begin(), ex.cfg.bins.end());
  task.train = std::move(tt.train);
  task.test = std::move(tt.test);
  task.source = std::move(tt.source);
  return task;
}

RunOutcome run_experiment(const RunConfig& cfg, const RunOptions& opts, std::ostream& log) {
  const Clock::time_point start = Clock::now();
  const Experiment ex = prepare_experiment(cfg);
  // Every training set is checked before any work (classes drawn per
  // training set differ in how many examples they hold), so a bad n fails at
  // once and no directory is created.
  for (int n : cfg.ns)
    for (int r = 0; r < cfg.repeats; ++r) check_training_set(ex.data, ex.cfg.data, n, data_seed(cfg.seed, n, r));

  RunOutcome outcome;
  // The backend before the store: no usable backend, no run directory.
  const std::shared_ptr<Backend> backend =
      opts.backend ? opts.backend : make_backend(cfg.backend, cfg.threads, &outcome.backend_note);
  Store store(opts.dir, identity_toml(cfg), layout_json(ex.model), run_meta(ex));
  if (!outcome.backend_note.empty()) log << "gac: " << outcome.backend_note << "\n";
  log << "gac: " << ex.model.arch_name << " (" << ex.model.spec.n_params << " parameters) on " << ex.data.name << ", "
      << ex.data.n_classes << " classes; backend " << backend->description() << "; output " << opts.dir.string() << "\n";
  print_classes(log, ex, "gac: ");

  const int n_bins = static_cast<int>(cfg.bins.size()) - 1;
  Progress progress(log, opts.progress);
  for (int n : cfg.ns)
    for (int r = 0; r < cfg.repeats; ++r) {
      const StreamTask task = stream_task(ex, n, r);
      save_stream_data(opts.dir, n, r, task, ex.data);
      StreamState st = store.load_state(n, r, cfg.shard).value_or(StreamState{});
      if (st.hits.empty()) {
        st.n = n;
        st.repeat = r;
        st.shard = cfg.shard;
        st.hits.assign(n_bins, 0);
        st.stored.assign(n_bins, 0);
      }
      st.classes = task.source.classes;
      if (st.status == "filled") continue;
      if (st.draws >= cfg.max_draws) {
        if (st.status != "budget") {
          st.status = "budget";
          std::vector<StoredModel> none;
          store.commit(st, none, {});
        }
        continue;
      }
      st.status = "running";
      backend->begin_stream(task);
      const uint64_t batch = cfg.batch ? cfg.batch : backend->preferred_batch();
      std::vector<Hit> hits, accepted;
      Clock::time_point last_commit = Clock::now();
      while (st.status == "running") {
        const uint64_t count = std::min<uint64_t>(batch, cfg.max_draws - st.draws);
        const Clock::time_point t0 = Clock::now();
        hits.clear();
        backend->evaluate(st.draws, count, hits);
        uint64_t end = st.draws + count;
        for (const Hit& h : hits) {
          ++st.perfect;
          if (h.bin < 0) continue;
          ++st.hits[h.bin];
          if (st.stored[h.bin] < cfg.target) {
            ++st.stored[h.bin];
            accepted.push_back(h);
          }
          if (all_filled(st, cfg.target)) {
            end = h.draw + 1;  // the stream ends at the draw that fills it
            break;
          }
        }
        const double dt = seconds_since(t0);
        const double rate = (end - st.draws) / std::max(dt, 1e-9);
        st.seconds += dt;
        st.draws = end;
        if (all_filled(st, cfg.target)) st.status = "filled";
        else if (st.draws >= cfg.max_draws) st.status = "budget";
        else if (cfg.time_limit > 0 && seconds_since(start) >= cfg.time_limit) st.status = "time";
        if (!accepted.empty() || st.status != "running" || seconds_since(last_commit) >= 1.0) {
          commit(store, *backend, task, st, accepted);
          accepted.clear();
          last_commit = Clock::now();
        }
        progress.update(st, cfg, rate, st.status != "running");
      }
      if (st.status == "time") {
        outcome.time_limit_hit = true;
        log << "gac: time limit of " << cfg.time_limit << " s reached; run the same command again to continue\n";
        return outcome;
      }
    }
  outcome.complete = true;
  return outcome;
}

}  // namespace gac
