// The orchestrator. Draws of a unit are consumed strictly in index order and
// a unit stops at the exact draw that fills its last bin, so what is stored
// depends only on the config and the number of tasks: never on batch size,
// threads, backend speed, the order units run in, or where a killed or
// stopped run was resumed.
#include "gac/run.h"

#include <csignal>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>
#include <map>
#include <set>
#include <span>
#include <tuple>
#include <utility>

#include "gac/error.h"
#include "gac/memory.h"
#include "gac/npy.h"
#include "gac/optimizer.h"
#include "gac/shards.h"
#include "gac/store.h"
#include "gac/verify.h"
#include "host/report/format.h"
#include "host/run/progress.h"
#include "host/util/parallel_for.h"

namespace gac {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kCommitSeconds = 1.0;      // a running unit commits about once a second
constexpr double kCallSeconds = 0.5;        // evaluate() calls last about this long, so a stop is prompt
constexpr uint64_t kFirstCall = 4096;       // draws of a unit's first call, before its speed is known
constexpr double kFirstSliceSeconds = 1.0;  // interleaved order: round r gives each unit 2^r seconds,
constexpr double kMaxSliceSeconds = 60.0;   // at most a minute

std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "set from a signal handler");
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string signal_name(int signal) {
  const char* name = sigabbrev_np(signal);
  return name ? std::string("SIG") + name : "signal " + std::to_string(signal);
}

RunMeta run_meta(const Experiment& ex) {
  RunMeta meta;
  meta.bin_edges = ex.cfg.bins;
  meta.target = ex.cfg.target;
  meta.ns = ex.cfg.ns;
  meta.repeats = ex.cfg.repeats;
  meta.n_params = ex.model.spec.n_params;
  meta.data_files = fingerprint_data_files(ex.cfg.data);
  meta.shards = ex.cfg.tasks;
  meta.shard = ex.cfg.tasks > 1 ? ex.cfg.task : -1;
  meta.optimizer = ex.cfg.optimizer;
  meta.heads = ex.cfg.heads;
  return meta;
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
// docs/output.md), so anyone can re-check a model with numpy alone.
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

// Nested sampling (docs/nested.md): the body whose pairs are being checked
// and its hits so far, per bin, for StreamState::same_body.
struct OpenBody {
  uint64_t heads = 1;
  uint64_t body = UINT64_MAX;
  std::vector<uint64_t> hits;

  // Counts hit `h` (with a bin) in its body; returns the earlier hits of that body in its bin.
  uint64_t add(const Hit& h, size_t bins) {
    if (h.draw / heads != body) {
      body = h.draw / heads;
      hits.assign(bins, 0);
    }
    return hits[h.bin]++;
  }
};

// Guess and check: counts every perfect draw of `hits` (one evaluate() call
// that ended at `end`), keeps it while its bin is short of the unit's target,
// and ends the unit at the draw that fills its last bin. Returns the end of
// the draws now checked. `open`: nested sampling's body statistics (null: plain draws).
uint64_t accept_hits(StreamState& st, int target, std::span<const Hit> hits, uint64_t end, std::vector<Hit>& accepted,
                     OpenBody* open) {
  for (const Hit& h : hits) {
    ++st.perfect;
    if (h.bin < 0) continue;
    ++st.hits[h.bin];
    if (open) st.same_body[h.bin] += open->add(h, st.hits.size());
    if (st.stored[h.bin] < target) {
      ++st.stored[h.bin];
      accepted.push_back(h);
    }
    if (all_filled(st, target)) return h.draw + 1;
  }
  return end;
}

// An optimizer's models: the same rule for models ordered by (draw, bin),
// where one draw may give a model in several bins. Every model of a draw
// counts; the unit ends after the draw that fills its last bin. `perfect`
// counts the draws that gave a model.
uint64_t accept_trained(StreamState& st, int target, std::vector<TrainedModel>& hits, uint64_t end,
                        std::vector<TrainedModel>& accepted) {
  for (size_t i = 0; i < hits.size(); ++i) {
    const uint64_t draw = hits[i].draw;
    const int bin = hits[i].bin;
    if (i == 0 || hits[i - 1].draw != draw) ++st.perfect;
    ++st.hits[bin];
    if (st.stored[bin] < target) {
      ++st.stored[bin];
      accepted.push_back(std::move(hits[i]));
    }
    const bool last_of_draw = i + 1 == hits.size() || hits[i + 1].draw != draw;
    if (last_of_draw && all_filled(st, target)) return draw + 1;
  }
  return end;
}

StoredModel stored_model(const StreamState& st, uint64_t draw, int bin, float loss, const TestScore& score) {
  StoredModel m;
  m.n = st.n;
  m.repeat = st.repeat;
  m.shard = st.shard;
  m.draw = draw;
  m.bin = bin;
  m.train_loss = loss;
  m.train_acc = 1.0;
  m.test_acc = score.accuracy;
  m.test_loss = score.loss;
  return m;
}

// The search checkpoints of one stream, in the run's ledger.
class LedgerCheckpoints final : public CheckpointSink {
 public:
  LedgerCheckpoints(Store& store, const Unit& unit) : store_(store), unit_(unit) {}
  std::optional<SearchCheckpoint> load(uint64_t draw) override {
    return store_.load_checkpoint(unit_.n, unit_.repeat, unit_.shard, draw);
  }
  void save(const SearchCheckpoint& c) override { store_.save_checkpoint(unit_.n, unit_.repeat, unit_.shard, c); }

 private:
  Store& store_;
  Unit unit_;
};

// One task's run: its units in rounds of growing time slices (interleaved,
// so that every cell moves under a time limit) or one after another.
class TaskRun {
 public:
  // Guess and check runs on `backend`; other optimizers (backend null) on `optimizer`.
  TaskRun(const Experiment& ex, const RunOptions& opts, Backend* backend, Optimizer* optimizer, Store& store,
          std::ostream& log, RunOutcome& outcome)
      : ex_(ex), cfg_(ex.cfg), opts_(opts), backend_(backend), optimizer_(optimizer), store_(store), outcome_(outcome),
        progress_(log, opts.progress, ex.cfg) {
    const int bins = static_cast<int>(cfg_.bins.size()) - 1;
    std::map<std::tuple<int, int, int>, StreamState> stored;  // one query, not one per unit: runs of a million streams
    for (StreamState& st : store.states()) stored.emplace(std::tuple(st.n, st.repeat, st.shard), std::move(st));
    for (const Unit& unit : task_units(cfg_)) {
      UnitRun u;
      u.unit = unit;
      if (auto it = stored.find({unit.n, unit.repeat, unit.shard}); it != stored.end()) {
        u.st = std::move(it->second);
        u.has_row = true;
      } else {
        u.st.n = unit.n;
        u.st.repeat = unit.repeat;
        u.st.shard = unit.shard;
        u.st.hits.assign(bins, 0);
        u.st.stored.assign(bins, 0);
        u.st.classes = training_set_classes(ex.data, data_seed(cfg_.seed, unit.n, unit.repeat));
      }
      units_.push_back(std::move(u));
    }
  }

  void run() {
    const bool interleaved = cfg_.order == "interleaved";
    for (int round = 0;; ++round) {
      const double slice = interleaved ? std::min(kMaxSliceSeconds, std::ldexp(kFirstSliceSeconds, round)) : INFINITY;
      bool any = false;
      for (size_t i = 0; i < units_.size(); ++i) {
        if (finished(units_[i])) {
          settle(units_[i]);
          continue;
        }
        any = true;
        if (!run_slice(i, slice)) {
          stop_all();
          return;
        }
      }
      if (!any) break;
    }
    outcome_.complete = true;
    if (current_ < units_.size()) progress_.update(units_, current_, last_rate_, true);
  }

  const std::vector<UnitRun>& units() const { return units_; }
  ~TaskRun() {
    if (optimizer_) optimizer_->set_checkpoints(nullptr, 0);  // checkpoints_ goes with this run
  }

 private:
  bool stop_requested() {
    if (const int signal = opts_.stop ? opts_.stop->load() : 0) {
      outcome_.stop_signal = signal;
      return true;
    }
    if (cfg_.time_limit > 0 && seconds_since(start_) >= cfg_.time_limit) {
      outcome_.time_limit_hit = true;
      return true;
    }
    return false;
  }
  std::string stop_status() const { return outcome_.stop_signal ? "interrupted" : "time"; }

  // Runs unit i for about `seconds`; false when the run must stop.
  bool run_slice(size_t i, double seconds) {
    if (stop_requested()) return false;
    UnitRun& u = units_[i];
    current_ = i;
    const StreamTask task = stream_task(ex_, u.unit.n, u.unit.repeat, u.unit.shard);
    if (saved_.insert({u.unit.n, u.unit.repeat}).second) save_stream_data(opts_.dir, u.unit.n, u.unit.repeat, task, ex_.data);
    u.st.classes = task.source.classes;
    if (optimizer_) {
      optimizer_->begin_stream(task);
      checkpoints_ = std::make_unique<LedgerCheckpoints>(store_, u.unit);
      optimizer_->set_checkpoints(checkpoints_.get(), cfg_.checkpoint_seconds);
    } else {
      backend_->begin_stream(task);
    }
    if (!optimizer_ && ex_.prior.heads > 1) reopen_body(u);
    u.st.status = "running";

    const uint64_t batch = cfg_.batch ? cfg_.batch : optimizer_ ? optimizer_->preferred_batch() : backend_->preferred_batch();
    // Calls of about kCallSeconds, at the speed seen so far, growing at most 4x at a time.
    const uint64_t group = optimizer_ ? optimizer_->call_group() : 1;
    double count = u.st.seconds > 0 ? kCallSeconds * u.st.draws / u.st.seconds : optimizer_ ? group : kFirstCall;
    const Clock::time_point slice_start = Clock::now();
    Clock::time_point last_commit = slice_start;
    for (;;) {
      const uint64_t whole_groups = (static_cast<uint64_t>(std::clamp(count, 1.0, 1e18)) + group - 1) / group * group;
      const uint64_t asked = std::min({whole_groups, batch, u.unit.max_draws - u.st.draws});
      const Step step = optimizer_ ? train_step(u, asked) : guess_and_check(u, asked, task);
      const double rate = step.draws / std::max(step.seconds, 1e-9);
      count = std::min(4.0 * asked, kCallSeconds * asked / std::max(step.seconds, 1e-9));

      const bool done = finished(u);
      const bool stop = !done && stop_requested();
      const bool slice_over = seconds_since(slice_start) >= seconds;
      if (done) u.st.status = all_filled(u.st, u.unit.target) ? "filled" : "budget";
      if (stop) u.st.status = stop_status();
      if (done || stop || slice_over || seconds_since(last_commit) >= kCommitSeconds ||
          pending_bytes() >= cfg_.commit_bytes) {
        commit(u, &task);
        last_commit = Clock::now();
      }
      last_rate_ = rate;
      progress_.update(units_, i, rate, false);
      if (stop) return false;
      if (done || slice_over) return true;
    }
  }

  struct Step {
    uint64_t draws = 0;  // draws checked
    double seconds = 0;
  };

  // One step of guess and check: the unit's next `count` draws (fewer when
  // one of them fills its last bin), the models kept added to accepted_.
  Step guess_and_check(UnitRun& u, uint64_t count, const StreamTask& task) {
    const Clock::time_point start = Clock::now();
    const uint64_t first = u.st.draws;
    hits_.clear();
    backend_->evaluate(first, count, hits_);
    const uint64_t end = accept_within_budget(u, task, first + count);
    u.st.draws = first;  // the step counts from its first draw
    return advance(u, end, start);
  }

  // Accepts one call's hits (it checked draws up to `end`); where they hold
  // more models than exec.commit_bytes allows in memory, the hits before
  // the budget is reached are committed first, with the draws before the
  // next hit: what is stored never depends on where commits fall.
  uint64_t accept_within_budget(UnitRun& u, const StreamTask& task, uint64_t end) {
    const size_t model_bytes = static_cast<size_t>(task.model.n_params) * sizeof(float);
    const std::span<const Hit> hits(hits_);
    OpenBody* open = open_body_.heads > 1 ? &open_body_ : nullptr;
    size_t from = 0;
    for (;;) {
      const size_t room = std::max<size_t>(1, (cfg_.commit_bytes - std::min(cfg_.commit_bytes, pending_bytes())) / model_bytes);
      if (hits.size() - from <= room) return accept_hits(u.st, u.unit.target, hits.subspan(from), end, accepted_, open);
      const uint64_t next = hits[from + room].draw;
      u.st.draws = accept_hits(u.st, u.unit.target, hits.subspan(from, room), next, accepted_, open);
      if (all_filled(u.st, u.unit.target)) return u.st.draws;
      from += room;
      commit(u, &task);
    }
  }

  // The weights of the models kept and not yet committed: what the next
  // commit holds in memory (exec.commit_bytes bounds it).
  size_t pending_bytes() const {
    size_t floats = accepted_.size() * static_cast<size_t>(ex_.model.spec.n_params);
    for (const TrainedModel& m : trained_accepted_) floats += m.params.size();
    return floats * sizeof(float);
  }

  // Nested sampling: the hits of the body that unit u's checked pairs end in
  // (pairs of it before u.st.draws, checked again: at most heads - 1), so
  // that same_body goes on as in an uninterrupted run.
  void reopen_body(UnitRun& u) {
    const uint64_t heads = ex_.prior.heads, begin = u.st.draws / heads * heads;
    if (u.st.same_body.empty()) u.st.same_body.assign(u.st.hits.size(), 0);
    open_body_ = OpenBody{heads, begin / heads, std::vector<uint64_t>(u.st.hits.size(), 0)};
    if (begin == u.st.draws) return;
    hits_.clear();
    backend_->evaluate(begin, u.st.draws - begin, hits_);
    for (const Hit& h : hits_)
      if (h.bin >= 0) open_body_.add(h, u.st.hits.size());
  }

  // One step of an optimizer: the next `count` draws trained (fewer when a
  // stop interrupts a long search: it goes on from its checkpoint on resume),
  // the models kept, with their parameters, added to trained_accepted_.
  Step train_step(UnitRun& u, uint64_t count) {
    const Clock::time_point start = Clock::now();
    trained_.clear();
    const TrainCounts done = optimizer_->train(u.st.draws, count, trained_);
    const Step step =
        advance(u, accept_trained(u.st, u.unit.target, trained_, u.st.draws + done.draws, trained_accepted_), start);
    u.st.failed = u.st.draws - u.st.perfect;  // draws that gave no model (perfect: those that gave one)
    return step;
  }

  // The unit has now checked draws [0, end); the step began at `start`.
  Step advance(UnitRun& u, uint64_t end, Clock::time_point start) {
    const Step step{end - u.st.draws, seconds_since(start)};
    u.st.draws = end;
    u.st.seconds += step.seconds;
    return step;
  }

  // Scores the newly accepted models and commits them with the unit's state.
  // A guess-and-check model is its draw; a trained model's parameters come
  // from its optimizer and are stored as they are (only re-training makes them again).
  void commit(UnitRun& u, const StreamTask* task) {
    std::vector<StoredModel> models;
    std::vector<std::vector<float>> weights;
    if (!accepted_.empty()) {
      std::vector<uint64_t> draws;
      for (const Hit& h : accepted_) draws.push_back(h.draw);
      const std::vector<TestScore> scores = backend_->score_test(draws);
      for (size_t i = 0; i < accepted_.size(); ++i) {
        weights.emplace_back(task->model.n_params);
        generate_params(task->prior, task->key, accepted_[i].draw, task->model.n_params, weights.back().data());
        models.push_back(stored_model(u.st, accepted_[i].draw, accepted_[i].bin, accepted_[i].loss, scores[i]));
      }
    }
    if (!trained_accepted_.empty()) {
      const std::vector<TestScore> scores = optimizer_->score_test(trained_accepted_);
      for (size_t i = 0; i < trained_accepted_.size(); ++i) {
        TrainedModel& h = trained_accepted_[i];
        models.push_back(stored_model(u.st, h.draw, h.bin, h.loss, scores[i]));
        if (h.calls > 0) {  // a search's
          models.back().search_steps = h.step;
          models.back().search_calls = h.calls;
          models.back().search_radius = h.radius;
        }
        weights.push_back(std::move(h.params));
      }
    }
    store_.commit(u.st, models, weights);
    accepted_.clear();
    trained_accepted_.clear();
    u.has_row = true;
    ++outcome_.commits;
  }

  // A finished unit's ledger row says why it finished (also after a
  // config change: a smaller budget, or a grown target already met).
  void settle(UnitRun& u) {
    const std::string status = all_filled(u.st, u.unit.target) ? "filled" : "budget";
    if (u.has_row && u.st.status == status) return;
    u.st.status = status;
    commit(u, nullptr);
  }

  // Every unit begun and not finished records why the run stopped.
  void stop_all() {
    const std::string status = stop_status();
    for (UnitRun& u : units_)
      if (u.has_row && !finished(u) && u.st.status != status) {
        u.st.status = status;
        commit(u, nullptr);
      }
  }

  const Experiment& ex_;
  const RunConfig& cfg_;
  const RunOptions& opts_;
  Backend* backend_;
  Optimizer* optimizer_;
  Store& store_;
  RunOutcome& outcome_;
  Progress progress_;
  std::vector<UnitRun> units_;
  std::vector<Hit> hits_;                // the perfect draws of one evaluate() call
  OpenBody open_body_;                   // nested sampling: the body being checked (reopen_body)
  std::vector<Hit> accepted_;            // guess and check's models since the last commit
  std::vector<TrainedModel> trained_;           // the models of one train() call
  std::vector<TrainedModel> trained_accepted_;  // the optimizer's models since the last commit
  std::unique_ptr<LedgerCheckpoints> checkpoints_;  // the optimizer's, for the unit run last
  std::set<std::pair<int, int>> saved_;  // (n, repeat) whose training set this process saved
  size_t current_ = SIZE_MAX;            // the unit run last
  double last_rate_ = 0;                 // its draws/s
  const Clock::time_point start_ = Clock::now();
};

// The last line of a run on stderr: what this task has, and what to do next.
void summarize(const TaskRun& run, const RunConfig& cfg, const RunOutcome& outcome, double seconds, bool progress,
               std::ostream& log) {
  const RunEstimate e = estimate(run.units(), static_cast<int>(cfg.bins.size()) - 1);
  const std::string totals = std::to_string(e.done) + "/" + std::to_string(run.units().size()) + " streams done, " +
                             std::to_string(e.models) + "/" + std::to_string(e.wanted) + " models, " +
                             human_integer(e.draws) + " draws";
  if (outcome.complete) {
    if (progress)
      log << "gac: finished: " << totals << " in " << duration_text(seconds) << " (" << outcome.commits << " commits)\n";
    return;
  }
  const std::string why = outcome.stop_signal ? "stopped by " + signal_name(outcome.stop_signal)
                                              : "time limit of " + duration_text(cfg.time_limit) + " reached";
  log << "gac: " << why << ": " << totals << ", all committed; run the same command again to continue\n";
}

}  // namespace

RunOutcome run_experiment(const RunConfig& cfg, const RunOptions& opts, std::ostream& log) {
  const Clock::time_point start = Clock::now();
  const Experiment ex = prepare_experiment(cfg);
  // Every training set is checked before any work (classes drawn per
  // training set differ in how many examples they hold), so a bad n fails at
  // once and no directory is created.
  for (int n : cfg.ns) {
    std::vector<uint64_t> seeds(cfg.repeats);
    for (int r = 0; r < cfg.repeats; ++r) seeds[r] = data_seed(cfg.seed, n, r);
    check_training_sets(ex.data, ex.cfg.data, n, seeds);
  }

  RunOutcome outcome;
  // The backend before the store: no usable backend, no run directory.
  // SGD trains on the CPU, whatever the backend; the searches score their
  // candidates on the GPU when exec.backend picks it (host/optim/optimizer.cpp).
  std::shared_ptr<Backend> backend;
  std::unique_ptr<Optimizer> trainer = make_optimizer(cfg, cfg.threads > 0 ? cfg.threads : available_cpus(), opts.stop);
  const bool trained = trainer != nullptr;  // an optimizer trains from the draws
  if (trained) {
    if (cfg.backend == "cuda" && cfg.optimizer == "sgd")
      outcome.backend_note =
          optimizer_title(cfg.optimizer) + " trains on the CPU; exec.backend = \"cuda\" applies to guess and check and the searches";
  } else {
    backend = opts.backend ? opts.backend : make_backend(cfg.backend, cfg.threads, &outcome.backend_note, cfg.devices);
  }
  if (trained || backend->name() == "cpu") check_cpu_memory(ex, cfg.threads);
  const std::string config_file = (opts.dir / "config.toml").string();
  Store store(opts.dir, identity_toml(cfg), layout_json(ex.model), run_meta(ex),
              [&](const std::string& stored) { return extension_problem(parse_config(stored, config_file), cfg); });
  repair_run_directory(store, ex, log);
  if (!outcome.backend_note.empty()) log << "gac: " << outcome.backend_note << "\n";
  log << "gac: " << ex.model.arch_name << " (" << ex.model.spec.n_params << " parameters) on " << ex.data.name << ", "
      << ex.data.n_classes << " classes; "
      << (trained ? optimizer_text(cfg) + "; trainer " + trainer->description()
              : "backend " + backend->description())
      << "; output " << opts.dir.string();
  if (cfg.tasks > 1) log << "; task " << (cfg.task < 0 ? "all" : std::to_string(cfg.task)) << " of " << cfg.tasks;
  log << "\n";
  print_classes(log, ex, "gac: ");

  TaskRun run(ex, opts, backend.get(), trainer.get(), store, log, outcome);
  run.run();
  summarize(run, cfg, outcome, seconds_since(start), opts.progress, log);
  return outcome;
}

const std::atomic<int>& install_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) sigaction(signal, &action, nullptr);
  return g_stop_signal;
}

}  // namespace gac
