// What the machine allows: the ceiling of each device (a CPU's measured FP32
// FMA peak, a GPU's cuBLAS SGEMM), the CPU's SGEMM rate beside it, and the
// draw roofline of an early-rejection measurement.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gac/bench.h"
#include "host/bench/measure.h"

namespace gac {

// The rate a reference kernel reaches on the same hardware, so that the
// fraction of it says how much is left: the FMA peak (no kernel does more
// floating-point work) or a dense SGEMM (what a well-tuned library gets).
// Measured in two sessions, before and after the throughput measurements;
// the best call of both is the ceiling (on a shared machine the mean would
// count other jobs' interference as the hardware's limit), and the slowest
// call shows how much the machine's speed moved meanwhile.
struct Ceiling {
  CeilingSession before, after;
  std::vector<double> calls() const {
    std::vector<double> all = before.gflops;
    all.insert(all.end(), after.gflops.begin(), after.gflops.end());
    return all;
  }
  bool available() const { return !calls().empty(); }
  double best() const {
    const auto all = calls();
    return all.empty() ? NAN : *std::max_element(all.begin(), all.end());
  }
  double slowest() const {
    const auto all = calls();
    return all.empty() ? NAN : *std::min_element(all.begin(), all.end());
  }
  const CeilingSession& any() const { return before.gflops.empty() ? after : before; }
  std::string why_not() const { return before.why_not.empty() ? after.why_not : before.why_not; }
};

inline double best_of(const CeilingSession& s) {
  return s.gflops.empty() ? NAN : *std::max_element(s.gflops.begin(), s.gflops.end());
}

// OpenBLAS SGEMM 2048^3 on `threads` threads (0 = every CPU available) for about `seconds`.
CeilingSession cpu_sgemm_session(int threads, double seconds);

// The widest FMA peak kernel (fma_peak.h) on `threads` threads at once (0 =
// every CPU available), calls of about 20 ms for about `seconds`.
CeilingSession cpu_fma_peak_session(int threads, double seconds);

// The draw roofline of an early-rejection row: the draws/s this backend
// would reach if every draw cost only its generation at the measured
// generation rate, plus the examples it actually evaluated at the forward
// rate of the same scenario's full evaluation (whose draw time, less its
// generation, is n examples' worth). Full-evaluation rows are their own
// roofline by this definition, so they get none (NaN); so does a row
// without a full-evaluation row of its scenario, n and backend in `results`.
double draw_roofline(const Measurement& m, const std::vector<Measurement>& results);

}  // namespace gac
