// One timed measurement of a backend on a scenario: the batch sized first,
// then timed calls on fresh draws, and the resident set meanwhile.
#include "host/bench/measure.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "gac/stats.h"

namespace gac {
namespace {

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

// Times call(first, count) on consecutive draw ranges for `seconds`. The
// batch is sized first (so one call takes about `call_s`), then one warm-up
// call at that size, then the timed calls.
template <class Call>
Measurement measure(Call call, double seconds, uint64_t probe_batch, uint64_t heads = 1) {
  constexpr uint64_t kMaxBatch = uint64_t{1} << 28;
  const double call_s = std::clamp(seconds / 8, 0.02, 0.25);
  uint64_t next = 0;  // draws are never repeated: each call takes fresh indices
  HitTally tally{heads};
  auto timed_call = [&](uint64_t batch, EvalCounts* counts) {
    const Clock::time_point t0 = Clock::now();
    const EvalCounts c = call(next, batch, tally);
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
  tally = HitTally{heads};
  const Clock::time_point start = Clock::now();
  do {
    EvalCounts c;
    timed_call(batch, &c);
    m.calls += 1;
    m.draws += c.draws;
    m.examples += c.examples;
  } while (seconds_since(start) < seconds);
  m.seconds = seconds_since(start);
  m.hits = tally.hits;
  m.heads = static_cast<uint32_t>(heads);
  m.same_body = tally.same_body;
  if (window) m.rss_mib = proc_status_mib("VmHWM");
  return m;
}

}  // namespace

void HitTally::add(uint64_t draw) {
  ++hits;
  if (draw / heads != body) body = draw / heads, in_body = 0;
  same_body += in_body++;  // the new hit pairs with each earlier hit of its body
}

double Measurement::design_effect() const { return gac::design_effect(draws, hits, same_body, static_cast<int>(heads)); }

Measurement measure_evaluation(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch) {
  backend.begin_stream(task);
  std::vector<Hit> hits;
  return measure(
      [&](uint64_t first, uint64_t count, HitTally& tally) {
        hits.clear();
        const EvalCounts c = backend.evaluate(first, count, hits);
        for (const Hit& h : hits) tally.add(h.draw);
        return c;
      },
      seconds, probe_batch, std::max<uint32_t>(1, task.prior.heads));
}

double measure_generation(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch) {
  backend.begin_stream(task);
  if (!backend.generate_only(0, 1)) return NAN;
  const Measurement m = measure(
      [&](uint64_t first, uint64_t count, HitTally&) {
        backend.generate_only(first, count);
        return EvalCounts{count, 0};
      },
      seconds, probe_batch);
  return m.draws_per_s() * task.model.n_params;
}

}  // namespace gac
