// Pattern search and greedy random search (include/gac/search.h): the moves,
// the calls and the bookkeeping. A CandidateEvaluator
// (host/optim/candidates.h) scores the candidates; one search runs at a time,
// so the result never depends on the thread count.
#include "gac/search.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "gac/error.h"
#include "host/optim/candidates.h"
#include "host/optim/candidates_device.h"
#include "host/util/parallel_for.h"
#include "kernels/forward.h"
#include "kernels/search_moves.h"

namespace gac {
namespace {

// A uniform integer in [0, bound) from 64 random bits (multiply-shift: bias below bound / 2^64).
uint64_t below(uint64_t bits, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(bits) * bound) >> 64);
}

// The 64-bit words 2 first .. 2 (first + kWordBlocks) - 1 of a search
// counter's Philox stream: word 2b + h is v[2h] << 32 | v[2h + 1] of
// philox_block(key, counter, b, kPurposeSearch). Philox4x32-10
// (include/gac/philox.h) on kWordBlocks counters at once, lane by lane, in
// GCC's vectors: compiled below for AVX-512 and AVX2 too, the same integers.
constexpr int kWordBlocks = 16;
typedef uint32_t WordLanes __attribute__((vector_size(kWordBlocks * sizeof(uint32_t))));
typedef uint64_t WideLanes __attribute__((vector_size(kWordBlocks * sizeof(uint64_t))));

void search_words_plain(StreamKey key, uint64_t counter, uint32_t first, uint64_t* out) {
  WordLanes c0, c1 = WordLanes{} + uint32_t{kPurposeSearch}, c2 = WordLanes{} + static_cast<uint32_t>(counter),
                c3 = WordLanes{} + static_cast<uint32_t>(counter >> 32);
  for (int l = 0; l < kWordBlocks; ++l) c0[l] = first + l;
  uint32_t k0 = key.k0, k1 = key.k1;
  for (int round = 0; round < 10; ++round) {
    const WideLanes p0 = __builtin_convertvector(c0, WideLanes) * 0xD2511F53u;
    const WideLanes p1 = __builtin_convertvector(c2, WideLanes) * 0xCD9E8D57u;
    c0 = __builtin_convertvector(p1 >> 32, WordLanes) ^ c1 ^ k0;
    c1 = __builtin_convertvector(p1, WordLanes);
    c2 = __builtin_convertvector(p0 >> 32, WordLanes) ^ c3 ^ k1;
    c3 = __builtin_convertvector(p0, WordLanes);
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int l = 0; l < kWordBlocks; ++l) {
    out[2 * l] = uint64_t{c0[l]} << 32 | c1[l];
    out[2 * l + 1] = uint64_t{c2[l]} << 32 | c3[l];
  }
}

using SearchWordsFn = decltype(&search_words_plain);
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"), flatten)) void search_words_avx512(
    StreamKey key, uint64_t counter, uint32_t first, uint64_t* out) {
  search_words_plain(key, counter, first, out);
}
__attribute__((target("avx2"), flatten)) void search_words_avx2(StreamKey key, uint64_t counter, uint32_t first,
                                                                  uint64_t* out) {
  search_words_plain(key, counter, first, out);
}
#endif

SearchWordsFn pick_search_words() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw"))
    return search_words_avx512;
  if (__builtin_cpu_supports("avx2")) return search_words_avx2;
#endif
  return search_words_plain;
}

// Philox counters: pattern search's shuffle `sweep` of call `call`, greedy
// search's batch `batch` of call `call` (sweeps and batches of one call stay
// below 2^16 and 2^12: the radius reaches 0 in fewer than 200 halvings; a
// greedy call has 3000 batches).
uint64_t pattern_counter(uint64_t call, uint32_t sweep) { return call << 16 | sweep; }
uint64_t greedy_counter(uint64_t call, int batch) { return call << 12 | static_cast<uint64_t>(batch); }

enum class CallEnd { improved, gave_up, stopped };

// What one search carries from call to call.
struct SearchState {
  std::vector<float> current;
  Eval eval;
  float radius = 1.0f;
  uint64_t steps = 0;
  int64_t calls = 0;
};

class SearchOptimizer final : public Optimizer {
 public:
  SearchOptimizer(SearchKind kind, const SearchConfig& cfg, int threads, const std::atomic<int>* stop,
                  std::shared_ptr<Device> device, SearchStats* stats)
      : kind_(kind), cfg_(cfg), threads_(threads > 0 ? threads : available_cpus()), stop_(stop),
        device_(std::move(device)), stats_(stats) {}

  void begin_stream(const StreamTask& task) override {
    const char* what = name();
    const int n = static_cast<int>(task.train.size());
    if (n < 1) throw Error(std::string(what) + ": the training set is empty");
    if (task.bin_edges.size() < 2) throw Error(std::string(what) + ": need at least two bin edges");
    if (task.train.x.size() != static_cast<size_t>(n) * task.model.in_size())
      throw Error(std::string(what) + ": training examples do not have the model's input size");
    for (int32_t y : task.train.y)
      if (y < 0 || y >= task.model.n_classes)
        throw Error(std::string(what) + ": training label " + std::to_string(y) + " outside the model's classes");
    const int64_t m = search_candidates(cfg_, n);
    if (kind_ == SearchKind::greedy && m * ((task.model.n_params + 3) / 4) >= (int64_t{1} << 32))
      throw Error("greedy search: " + std::to_string(m) + " candidates of " + std::to_string(task.model.n_params) +
                  " parameters exceed the Philox counter space (lower optimizer.budget)");
    device_evaluator_.reset();
    task_ = task;
    candidates_ = m;
    has_stream_ = true;
    // The device keeps the stream's training set and holds the largest batch (or refuses it) before any search.
    if (device_) device_evaluator_ = make_device_candidate_evaluator(task_, *device_, m - 1);
  }

  TrainCounts train(uint64_t first, uint64_t count, std::vector<TrainedModel>& models) override {
    TrainCounts counts;
    for (uint64_t d = first; d < first + count; ++d) {
      std::vector<TrainedModel> found;
      uint64_t steps = 0;
      if (!search(d, found, steps, checkpoints_)) break;  // stopped: resumed from its checkpoint
      ++counts.draws;
      counts.steps += steps;
      counts.failed += found.empty();
      std::move(found.begin(), found.end(), std::back_inserter(models));
    }
    return counts;
  }

  std::vector<TrainedModel> train_one(uint64_t draw) const override {
    std::vector<TrainedModel> found;
    uint64_t steps = 0;
    if (!search(draw, found, steps)) throw Error(std::string(name()) + ": stopped");
    return found;
  }

  std::vector<TestScore> score_test(const std::vector<TrainedModel>& models) const override {
    require_stream();
    return score_trained_models(task_, threads_, models);
  }

  // A search takes seconds to hours: a few draws per call keep a stop prompt.
  uint64_t preferred_batch() const override { return 4; }
  uint64_t call_group() const override { return 1; }
  int threads() const override { return threads_; }
  void set_checkpoints(CheckpointSink* sink, double every_seconds) override {
    checkpoints_ = sink;
    checkpoint_seconds_ = every_seconds;
  }
  std::string description() const override {
    const std::string where = device_ ? "on " + device_->props().name : std::to_string(threads_) + " threads";
    return std::string(name()) + " (" + where + ", budget " +
           std::to_string(cfg_.budget) + " candidate-examples per batch)";
  }

 private:
  const char* name() const { return kind_ == SearchKind::pattern ? "pattern search" : "greedy search"; }
  bool stopping() const { return stop_ && stop_->load() != 0; }
  void require_stream() const {
    if (!has_stream_) throw Error(std::string(name()) + ": used before begin_stream()");
  }

  // The first slot of the lowest loss among slots 1..count (evals[s - 1]),
  // 0 (the current point) when none is lower.
  int64_t best_slot(int64_t count, const Eval& current, const std::vector<Eval>& evals) const {
    if (stats_) {
      stats_->batches.fetch_add(1, std::memory_order_relaxed);
      stats_->candidates.fetch_add(static_cast<uint64_t>(count), std::memory_order_relaxed);
    }
    int64_t best = 0;
    float best_loss = current.loss;
    for (int64_t i = 0; i < count; ++i)
      if (evals[i].loss < best_loss) {
        best = i + 1;
        best_loss = evals[i].loss;
      }
    if (best && stats_) stats_->steps.fetch_add(1, std::memory_order_relaxed);
    return best;
  }

  // The moves 0 .. 2D-1 (parameter move/2, minus when odd) in Fisher-Yates
  // order, swap i taking word i of the counter's stream (search_words).
  static void shuffle_moves(std::vector<uint32_t>& order, StreamKey key, uint64_t counter) {
    static const SearchWordsFn search_words = pick_search_words();
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    uint64_t words[2 * kWordBlocks];
    uint32_t partners[2 * kWordBlocks];
    for (uint64_t i = order.size() - 1; i > 0;) {
      const uint64_t first = i / 2 >= kWordBlocks - 1 ? i / 2 - (kWordBlocks - 1) : 0;  // the blocks up to word i
      search_words(key, counter, static_cast<uint32_t>(first), words);
      // The partners first, their places fetched ahead of the swaps (random reads of a large list).
      for (uint64_t k = i; k > 0 && k / 2 >= first; --k) {
        partners[k - 2 * first] = static_cast<uint32_t>(below(words[k - 2 * first], k + 1));
        __builtin_prefetch(&order[partners[k - 2 * first]], 1);
      }
      for (; i > 0 && i / 2 >= first; --i) std::swap(order[i], order[partners[i - 2 * first]]);
    }
  }

  CallEnd pattern_call(SearchState& st, StreamKey key, uint64_t call, CandidateEvaluator& ev,
                       std::vector<Eval>& evals) const {
    std::vector<uint32_t> order(2 * st.current.size()), batch;
    uint32_t sweep = 0;
    shuffle_moves(order, key, pattern_counter(call, sweep));
    size_t next = 0;
    for (;;) {
      if (stopping()) return CallEnd::stopped;
      if (st.radius == 0.0f) return CallEnd::gave_up;  // every move is a no-op from here on
      const float r = st.radius;
      const size_t count = std::min<size_t>(candidates_ - 1, order.size() - next);
      batch.assign(order.begin() + next, order.begin() + next + count);
      next += count;
      if (next == order.size()) {  // the list is used up: reshuffle and halve
        shuffle_moves(order, key, pattern_counter(call, ++sweep));
        st.radius *= 0.5f;
        next = 0;
      }
      ev.evaluate(PatternBatch{r, batch.data(), static_cast<int64_t>(count)}, evals.data());
      const int64_t best = best_slot(static_cast<int64_t>(count), st.eval, evals);
      if (best) {
        const uint32_t move = batch[best - 1];
        float& w = st.current[pattern_move_param(move)];
        w = pattern_moved(w, move, r);
        st.eval = evals[best - 1];
        ev.set_current(st.current);
        return CallEnd::improved;
      }
    }
  }

  CallEnd greedy_call(SearchState& st, StreamKey key, uint64_t call, CandidateEvaluator& ev,
                      std::vector<Eval>& evals) const {
    for (int h = 0; h < kGreedyHalvings; ++h) {
      for (int b = 0; b < kGreedyStallBatches; ++b) {
        if (stopping()) return CallEnd::stopped;
        const uint64_t counter = greedy_counter(call, h * kGreedyStallBatches + b);
        const float r = st.radius;
        ev.evaluate(GreedyBatch{r, key, counter, candidates_ - 1, st.eval.loss}, evals.data());
        const int64_t best = best_slot(candidates_ - 1, st.eval, evals);
        if (best) {
          std::vector<float> next(st.current.size());
          greedy_candidate(st.current.data(), static_cast<int64_t>(next.size()), key, counter, best, r, next.data());
          st.current = std::move(next);
          st.eval = evals[best - 1];
          ev.set_current(st.current);
          return CallEnd::improved;
        }
      }
      st.radius *= 0.5f;
    }
    return CallEnd::gave_up;
  }

  // The state after `c`'s calls, when `c` fits this search (else the search starts afresh).
  bool restore(const std::optional<SearchCheckpoint>& c, SearchState& st) const {
    if (!c || c->params.size() != st.current.size() || c->calls < 0 || c->calls >= cfg_.max_calls) return false;
    st.current = c->params;
    st.eval = Eval{c->loss, c->correct};
    st.radius = c->radius;
    st.steps = c->steps;
    st.calls = c->calls;
    return true;
  }

  static void save(CheckpointSink& sink, uint64_t draw, const SearchState& st) {
    sink.save(SearchCheckpoint{draw, st.current, st.eval.loss, st.eval.correct, st.radius, st.steps, st.calls});
  }

  // Draw `draw`'s search; its model, if any, appended to `found`. False when
  // stopped. With `sink`, it goes on from the draw's checkpoint and saves one
  // between calls (include/gac/checkpoint.h).
  bool search(uint64_t draw, std::vector<TrainedModel>& found, uint64_t& steps, CheckpointSink* sink = nullptr) const {
    using Clock = std::chrono::steady_clock;
    require_stream();
    const ModelSpec& m = task_.model;
    const int n = static_cast<int>(task_.train.size());
    SearchState st;
    st.current.resize(m.n_params);
    std::unique_ptr<CandidateEvaluator> cpu_ev;
    if (!device_evaluator_)
      cpu_ev = make_cpu_candidate_evaluator(task_, threads_, kind_ == SearchKind::pattern && cfg_.incremental);
    CandidateEvaluator* ev = device_evaluator_ ? device_evaluator_.get() : cpu_ev.get();
    if (sink && restore(sink->load(draw), st)) {
      ev->set_current(st.current);  // its Eval is the one saved: the bits of the run that saved it
    } else {
      generate_params(task_.prior, task_.key, draw, m.n_params, st.current.data());
      st.eval = ev->set_current(st.current);
    }
    std::vector<Eval> evals(candidates_);
    const StreamKey key = search_key(task_.key, draw);
    const int64_t check_every = search_check_every(kind_, cfg_);
    Clock::time_point saved = Clock::now();
    for (int64_t call = st.calls; call < cfg_.max_calls; ++call) {
      const float radius = st.radius;  // a call halves it as it goes: a stop saves the call's start
      const CallEnd end = kind_ == SearchKind::pattern ? pattern_call(st, key, call, *ev, evals)
                                                       : greedy_call(st, key, call, *ev, evals);
      if (end == CallEnd::stopped) {
        st.radius = radius;  // current and eval change only when a call improves (and ends)
        if (sink && st.calls > 0) save(*sink, draw, st);
        return false;
      }
      ++st.calls;
      st.steps += end == CallEnd::improved;
      if (end == CallEnd::gave_up) break;
      if ((call % check_every == 0 || call + 1 == cfg_.max_calls) && st.eval.correct == n) break;
      const bool more = call + 1 < cfg_.max_calls;
      if (sink && more && std::chrono::duration<double>(Clock::now() - saved).count() >= checkpoint_seconds_) {
        save(*sink, draw, st);
        saved = Clock::now();
      }
    }
    steps = st.steps;
    const int bin = find_bin(task_.bin_edges.data(), static_cast<int>(task_.bin_edges.size()), st.eval.loss);
    if (st.eval.correct == n && bin >= 0) {
      TrainedModel model{draw, bin, st.eval.loss, static_cast<int32_t>(std::min<uint64_t>(st.steps, INT32_MAX)),
                         std::move(st.current)};
      model.calls = st.calls;
      model.radius = st.radius;
      found.push_back(std::move(model));
    }
    return true;
  }

  SearchKind kind_;
  SearchConfig cfg_;
  int threads_;
  const std::atomic<int>* stop_;
  std::shared_ptr<Device> device_;
  SearchStats* stats_;
  StreamTask task_;
  int64_t candidates_ = 2;
  bool has_stream_ = false;
  CheckpointSink* checkpoints_ = nullptr;
  double checkpoint_seconds_ = 60;
  // One search runs at a time (train_one too), so one device evaluator serves them all.
  mutable std::unique_ptr<CandidateEvaluator> device_evaluator_;
};

}  // namespace

int64_t search_candidates(const SearchConfig& cfg, int n) { return std::max<int64_t>(2, cfg.budget / std::max(n, 1)); }

int64_t search_check_every(SearchKind kind, const SearchConfig& cfg) {
  if (cfg.check_every > 0) return cfg.check_every;
  return std::max<int64_t>(1, cfg.max_calls / (kind == SearchKind::pattern ? 100 : 300));
}

StreamKey search_key(StreamKey key, uint64_t draw) {
  const uint64_t h = splitmix64(splitmix64((uint64_t{key.k1} << 32 | key.k0) ^ 0x5EA2C40000000003ull) ^ draw);
  return StreamKey{static_cast<uint32_t>(h), static_cast<uint32_t>(h >> 32)};
}

std::unique_ptr<Optimizer> make_search_optimizer(SearchKind kind, const SearchConfig& cfg, int threads,
                                                 const std::atomic<int>* stop, std::shared_ptr<Device> device,
                                                 SearchStats* stats) {
  return std::make_unique<SearchOptimizer>(kind, cfg, threads, stop, std::move(device), stats);
}

}  // namespace gac
