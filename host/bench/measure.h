// One timed measurement of a backend on a scenario.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>

#include "gac/backend.h"

namespace gac {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Measurement {
  std::string scenario, data, backend, backend_description;
  int n = 0;
  bool early_reject = true;
  int n_params = 0;
  double flops_per_example = 0;
  uint64_t batch = 0, calls = 0, draws = 0, examples = 0, hits = 0;
  uint32_t heads = 1;       // K of nested sampling (docs/nested.md): draws are pairs; 1 = plain
  uint64_t same_body = 0;   // pairs of perfect draws that share a body: sum over bodies of h_b (h_b - 1) / 2
  double seconds = 0;
  double rss_mib = NAN;  // the process's peak resident set during this measurement (NaN: not measurable here)
  double uniforms_per_s = NAN;  // the backend's generation rate on this scenario (Philox and prior)
  double draws_per_s() const { return draws / seconds; }
  double examples_per_s() const { return examples / seconds; }
  double gflops() const { return examples * flops_per_example / seconds / 1e9; }
  // Of the perfect draws, bodies as clusters (gac/stats.h); 1 for plain draws.
  double design_effect() const;
  // Perfect draws per second worth as much as independent ones: hits / deff per second.
  double effective_per_s() const { return hits / std::max(1.0, design_effect()) / seconds; }
};

// The perfect draws of consecutive calls, added in draw order, and how many
// pairs of them share a body (`heads` draws per body).
struct HitTally {
  uint64_t heads = 1, hits = 0, same_body = 0;
  uint64_t body = ~uint64_t{0}, in_body = 0;
  void add(uint64_t draw);
};

// backend.evaluate on `task`: draws/s, examples, perfect draws (with nested
// sampling, task.prior.heads > 1: pairs, and the perfect pairs' clustering).
Measurement measure_evaluation(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch);

// The backend's generation alone (Backend::generate_only) on `task`, in
// uniforms per second; NaN when the backend cannot generate alone.
double measure_generation(Backend& backend, const StreamTask& task, double seconds, uint64_t probe_batch);

}  // namespace gac
