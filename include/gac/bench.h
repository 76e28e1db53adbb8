// `gac bench`: throughput of the backends on standard scenarios, next to the
// ceiling (a CPU's measured FP32 FMA peak; a GPU's cuBLAS SGEMM rate), the
// SGEMM rate, and each scenario's draw roofline.
// Speed is only ever measured here, never asserted in tests.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace gac {

struct BenchOptions {
  std::vector<std::string> scenarios;  // empty: all standard scenarios
  std::vector<std::string> backends;   // empty: "cpu", plus "cuda" when a device is usable
  double seconds = 2.0;                // timed length of each measurement
  int threads = 0;                     // CPU threads (backend, FMA peak and SGEMM); 0 = all cores
  bool early_both = true;              // also measure with early rejection off (full evaluation)
  std::vector<int> ns;                 // training-set sizes; empty: each scenario's own
  std::vector<int> heads;              // nested sampling's K values measured beside plain draws (docs/nested.md)
  bool json = false;                   // one JSON document instead of the table
};

// One session of timed calls of a reference kernel (an SGEMM, or the CPU's
// FMA peak kernel): the rate of each call, or why there are none. The bench
// runs one session before its throughput measurements and one after, and
// takes the best call of both.
struct CeilingSession {
  std::vector<double> gflops;
  std::string what;             // e.g. "OpenBLAS SGEMM 2048^3 (SkylakeX kernels), 2 threads"
  std::string why_not;          // when there are no calls
  std::string warning;          // when the figure is known to understate the hardware
  double fp32_peak_gflops = 0;  // GPU only: SMs x FP32 lanes x 2 x clock (0: unknown)
};

#if defined(GAC_HAVE_CUDA)
// cuBLAS FP32 SGEMM 8192^3 on the current device, cuBLAS loaded at run time
// (host/bench/cuda_sgemm.cu); calls for about `seconds`.
CeilingSession cuda_sgemm_session(double seconds);
#endif

// Names of the standard scenarios, in the order they run.
std::vector<std::string> bench_scenario_names();

// Runs the measurements; results go to `out` (table or JSON), progress to
// `log`. Returns the exit code. Throws gac::Error for an unknown scenario or
// backend name (the message lists the valid ones), or for an explicitly
// requested backend that cannot run here.
int run_bench(const BenchOptions& opts, std::ostream& out, std::ostream& log);

}  // namespace gac
